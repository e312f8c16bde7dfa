package graph

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	m := mdl(14,
		[]*ValueInfo{tvi("x", 1, 3, 8, 8)},
		[]*ValueInfo{tvi("y"), tvi("nowhere")},
		[]*Initializer{
			f32init("w", []int{4, 3, 3, 3}, func(int) float32 { return 1 }),
			{Name: "bad", Value: &tensor.Tensor{DType: tensor.Float32, Shape: []int{2, 3}, F32: make([]float32, 5)}},
		},
		nd("conv1", "Conv", s("x9", "w"), s("c")),
		nd("relu", "Relu", s("c"), s("r")),
		nd("twice", "Relu", s("c"), s("r")), // r produced twice
		nd("a", "Add", s("r", "b_out"), s("a_out")),
		nd("b", "Mul", s("a_out", "x"), s("b_out")), // a ↔ b cycle
		nd("noop", "", s("x"), s("y")),
	)
	m.OpsetImports = nil
	err := Validate(m)
	if err == nil {
		t.Fatal("Validate = nil, want errors")
	}
	msg := err.Error()
	for _, want := range []string{
		`graph: node "conv1" (Conv): input "x9" is produced by no node, initializer or graph input`,
		`graph: value "r" is defined 2 times: by node "relu" (Relu) and by node "twice" (Relu)`,
		`graph: cycle: node "a" (Add) → node "b" (Mul) → back to "a"`,
		`graph: graph output "nowhere" is produced by no node, initializer or graph input`,
		`graph: node "noop" (): empty op type`,
		`graph: initializer "bad": shape [2 3] needs 6 elements but the data holds 5 float32 values`,
		`graph: model imports no ai.onnx opset`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Validate error lacks %q; got:\n%s", want, msg)
		}
	}
	var cyc *CycleError
	if !errors.As(err, &cyc) || len(cyc.Nodes) != 2 || cyc.Nodes[0].Name != "a" || cyc.Nodes[1].Name != "b" {
		t.Errorf("errors.As(*CycleError) = %v, want the cycle a → b", cyc)
	}
	var und *UndefinedValueError
	if !errors.As(err, &und) || und.Name != "x9" || und.Node.Name != "conv1" {
		t.Errorf("errors.As(*UndefinedValueError) = %+v, want x9 of conv1", und)
	}
	var dup *DuplicateValueError
	if !errors.As(err, &dup) || dup.Name != "r" {
		t.Errorf("errors.As(*DuplicateValueError) = %+v, want r", dup)
	}
	var ie *InitializerError
	if !errors.As(err, &ie) || ie.Name != "bad" {
		t.Errorf("errors.As(*InitializerError) = %+v, want bad", ie)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 7 {
		t.Errorf("Validate reported %d problems, want 7:\n%s", n, msg)
	}
}

func TestValidateCases(t *testing.T) {
	x := []*ValueInfo{tvi("x", 1, 4)}
	tests := []struct {
		name string
		m    *Model
		want []string // substrings; nil means valid
	}{
		{"valid", mdl(13, x, []*ValueInfo{tvi("y")}, nil, nd("r", "Relu", s("x"), s("y"))), nil},
		{"nodes out of file order are fine", mdl(13, x, []*ValueInfo{tvi("y")}, nil,
			nd("b", "Relu", s("h"), s("y")), nd("a", "Relu", s("x"), s("h"))), nil},
		{"omitted optional input", mdl(13, x, []*ValueInfo{tvi("y")}, nil, nd("c", "Clip", s("x", "", ""), s("y"))), nil},
		{"graph output is an input", mdl(13, x, []*ValueInfo{tvi("x")}, nil), nil},
		{"initializer listed as input", mdl(13, []*ValueInfo{tvi("x", 1, 4), tvi("w", 4)}, []*ValueInfo{tvi("y")},
			[]*Initializer{f32init("w", []int{4}, func(int) float32 { return 0 })}, nd("a", "Add", s("x", "w"), s("y"))), nil},
		{"self loop", mdl(13, x, []*ValueInfo{tvi("y")}, nil, nd("loop", "Add", s("x", "y"), s("y"))),
			[]string{`cycle: node "loop" (Add) → back to "loop"`}},
		{"node output shadows an initializer", mdl(13, x, []*ValueInfo{tvi("w")},
			[]*Initializer{f32init("w", []int{4}, func(int) float32 { return 0 })}, nd("r", "Relu", s("x"), s("w"))),
			[]string{`value "w" is defined 2 times: by initializer and by node "r" (Relu)`}},
		{"nil tensor", mdl(13, x, []*ValueInfo{tvi("x")}, []*Initializer{{Name: "e"}}), []string{`initializer "e": no tensor value`}},
		{"float16 bytes", mdl(13, x, []*ValueInfo{tvi("x")}, []*Initializer{{Name: "h", Value: &tensor.Tensor{DType: tensor.Float16, Shape: []int{3}, Raw: make([]byte, 4)}}}),
			[]string{`initializer "h": shape [3] needs 6 bytes of float16 data but the data holds 4`}},
		{"no graph", &Model{}, []string{"model has no graph"}},
		{"unnamed node", mdl(13, x, []*ValueInfo{tvi("y")}, nil, nd("", "Relu", s("q"), s("y"))),
			[]string{`node producing "y" (Relu): input "q" is produced by no node`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.m)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateCutsShort(t *testing.T) {
	var nodes []*Node
	for i := range 30 {
		nodes = append(nodes, nd(fmt.Sprint("n", i), "Relu", s(fmt.Sprint("missing", i)), s(fmt.Sprint("o", i))))
	}
	err := Validate(mdl(13, nil, nil, nil, nodes...))
	errs := err.(interface{ Unwrap() []error }).Unwrap()
	if len(errs) != maxProblems+1 {
		t.Fatalf("Validate listed %d errors, want %d", len(errs), maxProblems+1)
	}
	if got, want := errs[maxProblems].Error(), "graph: ... and 10 more problems"; got != want {
		t.Errorf("last error = %q, want %q", got, want)
	}
}

func names(ns []*Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestSort(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*Node
		want  []string
	}{
		{"already sorted stays", []*Node{
			nd("a", "Relu", s("x"), s("a")), nd("b", "Relu", s("a"), s("b")), nd("c", "Relu", s("x"), s("c")),
			nd("d", "Add", s("b", "c"), s("d")),
		}, []string{"a", "b", "c", "d"}},
		{"independent nodes keep file order", []*Node{
			nd("z", "Relu", s("x"), s("z")), nd("y", "Relu", s("x"), s("y")), nd("w", "Relu", s("x"), s("w")),
		}, []string{"z", "y", "w"}},
		{"reversed chain", []*Node{
			nd("c", "Relu", s("b"), s("c")), nd("b", "Relu", s("a"), s("b")), nd("a", "Relu", s("x"), s("a")),
		}, []string{"a", "b", "c"}},
		{"mixed", []*Node{
			nd("c", "Relu", s("b"), s("c")), nd("a", "Relu", s("x"), s("a")), nd("b", "Relu", s("a"), s("b")),
			nd("d", "Relu", s("x"), s("d")),
		}, []string{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Graph{Nodes: tt.nodes}
			for range 3 { // stable: the same answer every time
				got, err := Sort(g)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(names(got), tt.want) {
					t.Fatalf("Sort = %v, want %v", names(got), tt.want)
				}
			}
		})
	}
}

func TestSortCycle(t *testing.T) {
	g := &Graph{Nodes: []*Node{
		nd("pre", "Relu", s("x"), s("p")),
		nd("c", "Add", s("b", "p"), s("c")),
		nd("a", "Relu", s("c"), s("a")),
		nd("b", "Relu", s("a"), s("b")),
		nd("post", "Relu", s("c"), s("q")),
	}}
	_, err := Sort(g)
	var cyc *CycleError
	if !errors.As(err, &cyc) {
		t.Fatalf("Sort = %v, want a *CycleError", err)
	}
	// The cycle starts at its earliest node in file order and follows the data.
	if got, want := names(cyc.Nodes), []string{"c", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("cycle = %v, want %v", got, want)
	}
	if got, want := err.Error(), `graph: cycle: node "c" (Add) → node "a" (Relu) → node "b" (Relu) → back to "c"`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

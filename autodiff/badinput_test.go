package autodiff

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// opsModel builds a one-graph model at opset 13 with float32 graph inputs
// of the given declared shapes (-1 for a symbolic dimension), the given
// initializers and nodes, and the named outputs.
func opsModel(inputs map[string][]int64, order []string, inits map[string]*tensor.Tensor, nodes []*graph.Node, outputs ...string) *graph.Model {
	g := &graph.Graph{Name: "g", Nodes: nodes}
	for _, name := range order {
		ty := &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true}
		for _, d := range inputs[name] {
			if d < 0 {
				ty.Shape = append(ty.Shape, graph.Dim{Param: "N", HasParam: true})
			} else {
				ty.Shape = append(ty.Shape, graph.Dim{Value: d, HasValue: true})
			}
		}
		g.Inputs = append(g.Inputs, &graph.ValueInfo{Name: name, Type: ty})
	}
	for name, v := range inits {
		g.Initializers = append(g.Initializers, &graph.Initializer{Name: name, Value: v})
	}
	for _, o := range outputs {
		g.Outputs = append(g.Outputs, &graph.ValueInfo{Name: o})
	}
	return &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Version: 13}}, Graph: g}
}

func opsNode(name, op string, in, out []string, attrs ...*graph.Attribute) *graph.Node {
	return &graph.Node{Name: name, OpType: op, Inputs: in, Outputs: out, Attrs: attrs}
}

func TestCompileRejectsWrongInputShapes(t *testing.T) {
	m := opsModel(map[string][]int64{"x": {-1, 3, 4}}, []string{"x"}, nil,
		[]*graph.Node{opsNode("flat", "Flatten", []string{"x"}, []string{"y"})}, "y")
	tests := []struct {
		name   string
		shapes [][]int
		want   string
	}{
		{"rank", [][]int{{2, 3}}, "rank"},
		{"dimension", [][]int{{2, 5, 4}}, "dimension 1 is 5"},
		{"too few", nil, "no shape given"},
		{"too many", [][]int{{2, 3, 4}, {1}}, "2 input shapes given"},
	}
	for _, tt := range tests {
		_, err := Compile(m, tt.shapes, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile with %s wrong: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
	if _, err := Compile(m, [][]int{{7, 3, 4}}, nil); err != nil {
		t.Errorf("Compile with batch 7 for a symbolic batch: %v", err)
	}
}

func TestCompileNamesNodeOfImpossibleReshape(t *testing.T) {
	m := opsModel(map[string][]int64{"x": {2, 3}}, []string{"x"},
		map[string]*tensor.Tensor{"shape": int64s(4, 2)},
		[]*graph.Node{opsNode("reshape_head", "Reshape", []string{"x", "shape"}, []string{"y"})}, "y")
	_, err := Compile(m, [][]int{{2, 3}}, nil)
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node.Name != "reshape_head" {
		t.Fatalf("Compile with an impossible reshape: error %v, want a *NodeError for node reshape_head", err)
	}
	for _, want := range []string{`"reshape_head"`, "Reshape", "[2 3]", "[4 2]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestProgramGatherIndexOutOfRange(t *testing.T) {
	// The indices are a graph input, known only at run time.
	m := opsModel(map[string][]int64{"x": {4, 2}}, []string{"x", "i"}, nil,
		[]*graph.Node{opsNode("pick", "Gather", []string{"x", "i"}, []string{"y"})}, "y")
	m.Graph.Inputs[1].Type = &graph.Type{IsTensor: true, Elem: tensor.Int64}
	p, err := Compile(m, [][]int{{4, 2}, {3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(p.Input(1).I64, []int64{0, -4, 3})
	if err := p.Forward(); err != nil {
		t.Fatalf("Forward with valid indices: %v", err)
	}
	copy(p.Input(1).I64, []int64{0, 4, 1})
	err = p.Forward()
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node.Name != "pick" || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Forward with index 4 of 4: error %v, want an out-of-range error naming node pick", err)
	}
}

func TestProgramGradientThroughShapeOps(t *testing.T) {
	// y = Softmax(Reshape(Transpose(x)) + b), a small graph through several
	// of this package's ops, with PyTorch's dynamic reshape chain (Shape →
	// Gather → Unsqueeze → Concat) that must fold at compile time.
	m := opsModel(map[string][]int64{"x": {-1, 3, 2}}, []string{"x"},
		map[string]*tensor.Tensor{
			"b":     tensor.FromFloat32([]float32{0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, 6),
			"zero":  &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{0}},
			"minus": int64s(-1),
		},
		[]*graph.Node{
			opsNode("t", "Transpose", []string{"x"}, []string{"xt"}, intsAttr("perm", 0, 2, 1)),
			opsNode("shape", "Shape", []string{"xt"}, []string{"s"}),
			opsNode("batch", "Gather", []string{"s", "zero"}, []string{"n"}),
			opsNode("unsq", "Unsqueeze", []string{"n", "axes0"}, []string{"n1"}),
			opsNode("cat", "Concat", []string{"n1", "minus"}, []string{"target"}, intAttr("axis", 0)),
			opsNode("r", "Reshape", []string{"xt", "target"}, []string{"flat"}),
			opsNode("add", "Add", []string{"flat", "b"}, []string{"z"}),
			opsNode("sm", "Softmax", []string{"z"}, []string{"y"}),
		}, "y")
	m.Graph.Initializers = append(m.Graph.Initializers, &graph.Initializer{Name: "axes0", Value: int64s(0)})
	p, err := Compile(m, [][]int{{2, 3, 2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Value("target"); got == nil || got.I64[0] != 2 || got.I64[1] != -1 {
		t.Fatalf("folded reshape target = %v, want [2 -1]", got)
	}
	x := p.Input(0)
	for i := range x.F32 {
		x.F32[i] = float32(i%5) * 0.3
	}
	if err := p.Forward(); err != nil {
		t.Fatal(err)
	}
	// Loss: y[0][0]. Compare dL/db with central differences on the program.
	loss := func() float64 {
		if err := p.Forward(); err != nil {
			t.Fatal(err)
		}
		return float64(p.Output(0).F32[0])
	}
	loss()
	g := p.OutputGrad(0)
	clear(g.F32)
	g.F32[0] = 1
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
	gb := append([]float32(nil), p.Grad("b").F32...)
	b := p.Value("b")
	for i := range b.F32 {
		orig := b.F32[i]
		b.F32[i] = orig + 1e-2
		up := loss()
		b.F32[i] = orig - 1e-2
		down := loss()
		b.F32[i] = orig
		num := (up - down) / 2e-2
		// Central difference with h = 1e-2 on a softmax: truncation
		// h²/6·|f'''| < 1e-4, plus float32 rounding ~1e-5.
		if d := float64(gb[i]) - num; d > 2e-4 || d < -2e-4 {
			t.Errorf("dL/db[%d] = %v, finite differences give %v", i, gb[i], num)
		}
	}
}

// TestNaNPropagates: a NaN in an input reaches the outputs it feeds (IEEE
// arithmetic, no checks in the kernels) and nothing else; neither pass
// panics or errors.
func TestNaNPropagates(t *testing.T) {
	m := opsModel(map[string][]int64{"x": {2, 3}}, []string{"x"},
		map[string]*tensor.Tensor{"b": tensor.FromFloat32([]float32{1, 2, 3}, 3)},
		[]*graph.Node{
			opsNode("add", "Add", []string{"x", "b"}, []string{"z"}),
			opsNode("sm", "Softmax", []string{"z"}, []string{"y"}),
			opsNode("mean", "ReduceMean", []string{"y"}, []string{"r"}, intsAttr("axes", 1)),
		}, "y", "r")
	p, err := Compile(m, [][]int{{2, 3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(p.Input(0).F32, []float32{0, float32(math.NaN()), 0, 1, 2, 3})
	if err := p.Forward(); err != nil {
		t.Fatal(err)
	}
	y, r := p.Output(0).F32, p.Output(1).F32
	for i, v := range y {
		if row0 := i < 3; row0 != math.IsNaN(float64(v)) {
			t.Errorf("Softmax output %d = %v; want NaN exactly in the row holding the NaN input", i, v)
		}
	}
	if !math.IsNaN(float64(r[0])) || math.IsNaN(float64(r[1])) {
		t.Errorf("ReduceMean = %v, want [NaN, finite]", r)
	}
	clear(p.OutputGrad(0).F32)
	copy(p.OutputGrad(1).F32, []float32{1, 1})
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
	if g := p.Grad("x").F32; math.IsNaN(float64(g[4])) {
		t.Errorf("gradient of the finite row = %v, want finite values", g[3:])
	}
}

// TestDataOpsDoNotAllocate: Forward and Backward of this package's data
// ops run without allocating (one worker; more workers start goroutines).
func TestDataOpsDoNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	x := randomTensor(rng, 2, 3, 4)
	tests := []struct {
		node *graph.Node
		in   []*tensor.Tensor
	}{
		{newTestNode("Add", 2, 1), []*tensor.Tensor{x, randomTensor(rng, 3, 1)}},
		{newTestNode("Mul", 2, 1), []*tensor.Tensor{x, randomTensor(rng, 2, 3, 4)}},
		{newTestNode("Div", 2, 1), []*tensor.Tensor{x, randomTensor(rng, 4)}},
		{newTestNode("Sum", 3, 1), []*tensor.Tensor{x, x, randomTensor(rng, 4)}},
		{newTestNode("Reshape", 2, 1), []*tensor.Tensor{x, int64s(4, -1)}},
		{newTestNode("Transpose", 1, 1), []*tensor.Tensor{x}},
		{newTestNode("Concat", 2, 1, intAttr("axis", 1)), []*tensor.Tensor{x, x}},
		{newTestNode("Split", 1, 2, intAttr("axis", 2)), []*tensor.Tensor{x}},
		{newTestNode("Slice", 5, 1), []*tensor.Tensor{x, int64s(3), int64s(0), int64s(2), int64s(-1)}},
		{newTestNode("Pad", 2, 1, stringAttr("mode", "reflect")), []*tensor.Tensor{x, int64s(0, 1, 2, 0, 1, 1)}},
		{newTestNode("Gather", 2, 1, intAttr("axis", 1)), []*tensor.Tensor{x, int64s(2, 0)}},
		{newTestNode("ReduceMean", 1, 1, intsAttr("axes", 0, 2)), []*tensor.Tensor{x}},
		{newTestNode("Softmax", 1, 1, intAttr("axis", 1)), []*tensor.Tensor{x}},
		{newTestNode("LogSoftmax", 1, 1), []*tensor.Tensor{x}},
		{newTestNode("LRN", 1, 1, intAttr("size", 3)), []*tensor.Tensor{x}},
		{newTestNode("Cast", 1, 1, intAttr("to", int64(tensor.Float32))), []*tensor.Tensor{x}},
	}
	for _, tt := range tests {
		k, outs := setupKernel(t, tt.node, 18, tt.in, nil)
		ctx := &RunContext{Workers: 1}
		out := make([]*tensor.Tensor, len(outs))
		gout := make([]*tensor.Tensor, len(outs))
		for i, o := range outs {
			out[i] = allocTensor(o.DType, o.Shape)
			gout[i] = allocTensor(o.DType, o.Shape)
		}
		gin := make([]*tensor.Tensor, len(tt.in))
		for i, v := range tt.in {
			if v.DType == tensor.Float32 {
				gin[i] = tensor.New(v.Shape...)
			}
		}
		allocs := testing.AllocsPerRun(5, func() {
			if err := k.Forward(ctx, tt.in, out); err != nil {
				t.Fatal(err)
			}
			if err := k.Backward(ctx, tt.in, out, gout, gin); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Forward+Backward, want 0", tt.node.OpType, allocs)
		}
	}
}

func TestCompileListsEveryUnsupportedOp(t *testing.T) {
	m := opsModel(map[string][]int64{"x": {2, 3}}, []string{"x"}, nil,
		[]*graph.Node{
			opsNode("a", "Foo", []string{"x"}, []string{"y"}),
			opsNode("b", "Relu6Fancy", []string{"y"}, []string{"z"}),
			opsNode("b2", "Relu6Fancy", []string{"z"}, []string{"z2"}),
			opsNode("b3", "Relu6Fancy", []string{"z2"}, []string{"z3"}),
			{Name: "c", OpType: "Add", Domain: "com.example", Inputs: []string{"z3", "z3"}, Outputs: []string{"w"}},
		}, "w")
	_, err := Compile(m, [][]int{{2, 3}}, nil)
	var ue *UnsupportedOpError
	if !errors.As(err, &ue) || len(ue.Nodes) != 5 {
		t.Fatalf("Compile: error %v, want an *UnsupportedOpError listing 5 nodes", err)
	}
	for _, want := range []string{`Foo (node "a")`, `Relu6Fancy (node "b" and 2 more)`, `com.example.Add (node "c")`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestAbsurdOutputSizesAreErrors(t *testing.T) {
	tests := []struct {
		node *graph.Node
		in   []*tensor.Tensor
	}{
		{newTestNode("ConstantOfShape", 1, 1), []*tensor.Tensor{int64s(1<<20, 1<<20)}},
		{newTestNode("ConstantOfShape", 1, 1), []*tensor.Tensor{int64s(1 << 62)}},
		{newTestNode("Pad", 2, 1), []*tensor.Tensor{tensor.New(2, 2), int64s(0, 0, 1<<40, 0)}},
		{newTestNode("Pad", 2, 1), []*tensor.Tensor{tensor.New(2, 2), int64s(0, 1<<20, 1<<20, 0)}},
		{newTestNode("Expand", 2, 1), []*tensor.Tensor{tensor.New(2, 1), int64s(1<<20, 2, 1<<20)}},
		{newTestNode("Tile", 2, 1), []*tensor.Tensor{tensor.New(2, 2), int64s(1<<20, 1<<20)}},
		{newTestNode("Tile", 2, 1), []*tensor.Tensor{tensor.New(2, 2), int64s(1<<62, 1)}},
		{newTestNode("Resize", 4, 1), []*tensor.Tensor{tensor.New(1, 1, 2, 2), nil, nil, int64s(1, 1, 1<<20, 1<<20)}},
		{newTestNode("Resize", 4, 1), []*tensor.Tensor{tensor.New(1, 1, 2, 2), nil, nil, int64s(1, 1, 1<<50, 1)}},
		{newTestNode("ConvTranspose", 2, 1, intsAttr("output_shape", 1<<20, 1<<20), intsAttr("strides", 1<<19, 1<<19)),
			[]*tensor.Tensor{tensor.New(1, 1, 3, 3), tensor.New(1, 1, 1, 1)}},
	}
	for _, tt := range tests {
		_, _, err := trySetupKernel(tt.node, 18, tt.in, nil)
		if err == nil || !strings.Contains(err.Error(), "absurd") {
			t.Errorf("%s with %v: error %v, want an absurd-size error", tt.node.OpType, tt.in[len(tt.in)-1].I64, err)
		}
	}
}

// TestKernelsMatchShapeInference: every op the engine runs has a shape
// rule in graph (inspect counts its MACs, the passes see its shapes) and
// every op graph infers has a kernel, so a model inspect accepts is one
// check and compress run.
func TestKernelsMatchShapeInference(t *testing.T) {
	kernels, rules := SupportedOps(), graph.InferableOps()
	for _, op := range kernels {
		if !slices.Contains(rules, op) {
			t.Errorf("%s has a kernel but no shape rule in graph", op)
		}
	}
	for _, op := range rules {
		if !slices.Contains(kernels, op) {
			t.Errorf("%s has a shape rule in graph but no kernel", op)
		}
	}
}

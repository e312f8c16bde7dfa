package graph_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// fnFixture is a PyTorch 1.13 export (opset 15) whose two ConvBNReLU
// blocks are calls to one model-local function (see make_model.py in it).
var fnFixture = filepath.Join("testdata", "functions_convbn_op15")

// fnWithin reports the first element of got outside |g−w| ≤ 1e-5 + 1e-4·|w|
// (-1 if none) and the largest absolute difference.
func fnWithin(got, want *tensor.Tensor) (bad int, worst float64) {
	if !slices.Equal(got.Shape, want.Shape) || len(got.F32) != len(want.F32) {
		return 0, math.Inf(1)
	}
	bad = -1
	for i, w := range want.F32 {
		d := math.Abs(float64(got.F32[i]) - float64(w))
		worst = max(worst, d)
		if bad < 0 && !(d <= 1e-5+1e-4*math.Abs(float64(w))) {
			bad = i
		}
	}
	return bad, worst
}

func fnReadFixture(t *testing.T) (m *graph.Model, in, want *tensor.Tensor) {
	t.Helper()
	m, err := onnxio.ReadFile(filepath.Join(fnFixture, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if in, err = onnxio.ReadTensorFile(filepath.Join(fnFixture, "test_data_set_0", "input_0.pb")); err != nil {
		t.Fatal(err)
	}
	if want, err = onnxio.ReadTensorFile(filepath.Join(fnFixture, "test_data_set_0", "output_0.pb")); err != nil {
		t.Fatal(err)
	}
	return m, in, want
}

// fnForward runs m in the Go engine on in.
func fnForward(t *testing.T, m *graph.Model, in *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	prog, err := autodiff.Compile(m, [][]int{in.Shape}, &autodiff.Options{Params: []string{}})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	copy(prog.Input(0).F32, in.F32)
	if err := prog.Forward(); err != nil {
		t.Fatalf("forward: %v", err)
	}
	return prog.Output(0).Clone()
}

// TestInlineFunctionsTorchExport inlines the functions of a real PyTorch
// export and runs the result in the Go engine against PyTorch's output.
func TestInlineFunctionsTorchExport(t *testing.T) {
	path := filepath.Join(fnFixture, "model.onnx")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, in, want := fnReadFixture(t)

	// Without inlining the model is carried unchanged: written back it is
	// the file read.
	b, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, orig) {
		t.Errorf("read and written without inlining: %d bytes, the file has %d (not identical)", len(b), len(orig))
	}
	// ... and the engine cannot run it: the calls are unknown ops.
	if _, err := autodiff.Compile(m.Clone(), [][]int{in.Shape}, &autodiff.Options{Params: []string{}}); err == nil {
		t.Errorf("Compile accepted the model with function calls; this test no longer shows the gap it closes")
	}

	fns, err := onnxio.Functions(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 1 || fns[0].Name != "ConvBNReLU" || fns[0].Domain != "__main__" {
		t.Fatalf("Functions: %d functions, want 1 (__main__.ConvBNReLU)", len(fns))
	}
	n, err := onnxio.InlineFunctions(m)
	if err != nil {
		t.Fatalf("InlineFunctions: %v", err)
	}
	if n != 2 {
		t.Errorf("InlineFunctions inlined %d calls, want 2", n)
	}
	if err := graph.Validate(m); err != nil {
		t.Fatalf("Validate after inlining: %v", err)
	}
	for _, nd := range m.Graph.Nodes {
		if nd.Domain != "" || nd.OpType == "ConvBNReLU" {
			t.Errorf("node %q (%s, domain %q) remains after inlining", nd.Name, nd.OpType, nd.Domain)
		}
	}
	for _, o := range m.OpsetImports {
		if o.Domain == "__main__" {
			t.Errorf("opset import of the function domain %q kept though no node uses it", o.Domain)
		}
	}
	if fns, err := onnxio.Functions(m); err != nil || len(fns) != 0 {
		t.Errorf("after inlining the model still carries %d functions (%v)", len(fns), err)
	}
	// The strides of each block come from its call (ref_attr_name).
	strides := map[string][]int64{}
	for _, nd := range m.Graph.Nodes {
		if nd.OpType == "Conv" {
			strides[nd.Name] = nd.AttrInts("strides", nil)
		}
	}
	for name, s := range map[string][]int64{
		"/block1/ConvBNReLU/Conv_0": {1, 1},
		"/block2/ConvBNReLU/Conv_0": {2, 2},
	} {
		if got, ok := strides[name]; !ok || !slices.Equal(got, s) {
			t.Errorf("Conv %q: strides %v (present %v), want %v; convs: %v", name, got, ok, s, strides)
		}
	}

	got := fnForward(t, m, in)
	if bad, worst := fnWithin(got, want); bad >= 0 {
		t.Errorf("Go engine vs PyTorch: element %d: got %g, want %g (max abs diff %.3g; shapes %v, %v)",
			bad, got.F32[min(bad, len(got.F32)-1)], want.F32[min(bad, len(want.F32)-1)], worst, got.Shape, want.Shape)
	} else {
		t.Logf("Go engine vs PyTorch: max abs diff %.3g", worst)
	}

	// Written and read back, the inlined model has no functions and runs
	// the same.
	b, err = onnxio.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnxio.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if fns, _ := onnxio.Functions(back); len(fns) != 0 {
		t.Errorf("written model holds %d functions, want none", len(fns))
	}
	if bad, worst := fnWithin(fnForward(t, back, in), want); bad >= 0 {
		t.Errorf("read back: Go engine vs PyTorch: element %d outside tolerance (max abs diff %.3g)", bad, worst)
	}
}

// TestInlineFunctionsTorchExportORT runs the inlined model, as written, in
// onnxruntime: the file compress would write is valid ONNX and computes
// what PyTorch did.
func TestInlineFunctionsTorchExportORT(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	if err := runtime.Init(lib); err != nil {
		t.Fatalf("runtime.Init(%s): %v", lib, err)
	}
	m, in, want := fnReadFixture(t)
	if _, err := onnxio.InlineFunctions(m); err != nil {
		t.Fatal(err)
	}
	b, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.OpenBytes(b, &runtime.SessionOptions{IntraOpThreads: 1, DisableSpinning: true})
	if err != nil {
		t.Fatalf("onnxruntime refuses the inlined model: %v", err)
	}
	defer s.Close()
	outs, err := s.Run([]*tensor.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	if bad, worst := fnWithin(outs[0], want); bad >= 0 {
		t.Errorf("onnxruntime on the inlined model vs PyTorch: element %d outside tolerance (max abs diff %.3g)", bad, worst)
	}
}

// ---- hand-built models ----

func fnVI(name string) *graph.ValueInfo {
	return &graph.ValueInfo{Name: name, Type: &graph.Type{IsTensor: true, Elem: tensor.Float32}}
}

func fnModel(nodes ...*graph.Node) *graph.Model {
	return &graph.Model{
		IRVersion:    8,
		OpsetImports: []graph.OpsetImport{{Version: 15}, {Domain: "local", Version: 1}},
		Graph: &graph.Graph{
			Name:    "g",
			Nodes:   nodes,
			Inputs:  []*graph.ValueInfo{fnVI("x")},
			Outputs: []*graph.ValueInfo{fnVI("y")},
		},
	}
}

func fnCall(name, fn string, ins, outs []string, attrs ...*graph.Attribute) *graph.Node {
	return &graph.Node{Name: name, OpType: fn, Domain: "local", Inputs: ins, Outputs: outs, Attrs: attrs}
}

func fnBody(name, op string, ins, outs []string, attrs ...*graph.Attribute) *graph.Node {
	return &graph.Node{Name: name, OpType: op, Inputs: ins, Outputs: outs, Attrs: attrs}
}

func fnRef(name, to string, typ graph.AttrType) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: typ, RefAttrName: to}
}

func fnOf(name string, ins, outs []string, nodes ...*graph.Node) *graph.Function {
	return &graph.Function{Name: name, Domain: "local", Inputs: ins, Outputs: outs, Nodes: nodes,
		OpsetImports: []graph.OpsetImport{{Version: 15}}}
}

func fnNode(m *graph.Model, name string) *graph.Node {
	for _, n := range m.Graph.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func fnNodeNames(m *graph.Model) []string {
	var s []string
	for _, n := range m.Graph.Nodes {
		s = append(s, n.Name)
	}
	return s
}

// TestInlineFunctionsAttrRefs: a reference takes the call's value, else the
// function's default, else is dropped; other attributes are kept.
func TestInlineFunctionsAttrRefs(t *testing.T) {
	f := fnOf("F", []string{"X"}, []string{"Y"},
		fnBody("a", "LeakyRelu", []string{"X"}, []string{"T"}, fnRef("alpha", "slope", graph.AttrFloat)),
		fnBody("b", "HardSigmoid", []string{"T"}, []string{"Y"},
			fnRef("alpha", "hs_alpha", graph.AttrFloat), fnRef("beta", "hs_beta", graph.AttrFloat),
			&graph.Attribute{Name: "keep", Type: graph.AttrInt, I: 7}))
	f.Attributes = []string{"slope", "hs_beta"}
	f.AttributeDefaults = []*graph.Attribute{{Name: "hs_alpha", Type: graph.AttrFloat, F: 0.25}}
	m := fnModel(fnCall("c", "F", []string{"x"}, []string{"y"},
		&graph.Attribute{Name: "slope", Type: graph.AttrFloat, F: 0.125}))
	n, err := graph.InlineFunctions(m, []*graph.Function{f})
	if err != nil || n != 1 {
		t.Fatalf("InlineFunctions = %d, %v; want 1, nil", n, err)
	}
	if err := graph.Validate(m); err != nil {
		t.Fatal(err)
	}
	a, b := fnNode(m, "c/a"), fnNode(m, "c/b")
	if a == nil || b == nil {
		t.Fatalf("nodes %q, want c/a and c/b", fnNodeNames(m))
	}
	if at := a.Attr("alpha"); at == nil || at.F != 0.125 || at.RefAttrName != "" || at.Type != graph.AttrFloat {
		t.Errorf("c/a alpha = %+v, want the call's 0.125 and no reference", at)
	}
	if at := b.Attr("alpha"); at == nil || at.F != 0.25 || at.RefAttrName != "" {
		t.Errorf("c/b alpha = %+v, want the default 0.25", at)
	}
	if at := b.Attr("beta"); at != nil {
		t.Errorf("c/b beta = %+v, want it dropped (no value at the call, no default)", at)
	}
	if b.AttrInt("keep", 0) != 7 {
		t.Errorf("c/b lost its plain attribute")
	}
	if !slices.Equal(a.Inputs, []string{"x"}) || !slices.Equal(b.Outputs, []string{"y"}) || a.Outputs[0] != "c/T" || b.Inputs[0] != "c/T" {
		t.Errorf("wiring: a %v → %v, b %v → %v; want x → c/T → y", a.Inputs, a.Outputs, b.Inputs, b.Outputs)
	}
	// The function itself is not modified.
	if f.Nodes[0].Name != "a" || f.Nodes[0].Attrs[0].RefAttrName != "slope" || f.Nodes[0].Inputs[0] != "X" {
		t.Errorf("InlineFunctions modified the function body: %+v", f.Nodes[0])
	}

	// A reference whose type does not match what the call gives.
	m = fnModel(fnCall("c", "F", []string{"x"}, []string{"y"}, &graph.Attribute{Name: "slope", Type: graph.AttrInt, I: 1}))
	if _, err := graph.InlineFunctions(m, []*graph.Function{f}); err == nil || !strings.Contains(err.Error(), "slope") {
		t.Errorf("type mismatch: err = %v, want an error naming the attribute", err)
	}
}

// TestInlineFunctionsOptionalInput: an optional input the call omits (by
// leaving it off the end, or with "") becomes "" in the body.
func TestInlineFunctionsOptionalInput(t *testing.T) {
	f := fnOf("F", []string{"X", "Lo", "Hi"}, []string{"Y"},
		fnBody("clip", "Clip", []string{"X", "Lo", "Hi"}, []string{"Y"}))
	m := fnModel(
		fnBody("lo", "Constant", nil, []string{"lo"}, &graph.Attribute{Name: "value_float", Type: graph.AttrFloat, F: 0}),
		fnCall("c1", "F", []string{"x", "lo"}, []string{"t"}),
		fnCall("c2", "F", []string{"t", "", "lo"}, []string{"y"}),
	)
	if _, err := graph.InlineFunctions(m, []*graph.Function{f}); err != nil {
		t.Fatal(err)
	}
	if err := graph.Validate(m); err != nil {
		t.Fatal(err)
	}
	if n := fnNode(m, "c1/clip"); n == nil || !slices.Equal(n.Inputs, []string{"x", "lo", ""}) {
		t.Errorf("c1/clip = %+v, want inputs [x lo \"\"]", n)
	}
	if n := fnNode(m, "c2/clip"); n == nil || !slices.Equal(n.Inputs, []string{"t", "", "lo"}) {
		t.Errorf("c2/clip = %+v, want inputs [t \"\" lo]", n)
	}
	// More actual inputs than formal ones is an error.
	m = fnModel(fnCall("c", "F", []string{"x", "x", "x", "x"}, []string{"y"}))
	if _, err := graph.InlineFunctions(m, []*graph.Function{f}); err == nil {
		t.Errorf("a call with 4 inputs of a 3-input function was accepted")
	}
}

// TestInlineFunctionsNested: a function calling another is inlined all the
// way down, names nest, attribute references pass through both levels, and
// the inner function's opset imports are merged into the model's.
func TestInlineFunctionsNested(t *testing.T) {
	inner := fnOf("G", []string{"A"}, []string{"B"},
		fnBody("act", "LeakyRelu", []string{"A"}, []string{"B"}, fnRef("alpha", "ga", graph.AttrFloat)),
		&graph.Node{Name: "side", OpType: "Custom", Domain: "com.example", Inputs: []string{"A"}, Outputs: []string{"unused"}})
	inner.OpsetImports = append(inner.OpsetImports, graph.OpsetImport{Domain: "com.example", Version: 3})
	outer := fnOf("F", []string{"X"}, []string{"Y"},
		fnBody("r", "Relu", []string{"X"}, []string{"T"}),
		fnCall("g", "G", []string{"T"}, []string{"Y"}, fnRef("ga", "fa", graph.AttrFloat)))
	m := fnModel(fnCall("top", "F", []string{"x"}, []string{"y"}, &graph.Attribute{Name: "fa", Type: graph.AttrFloat, F: 0.5}))
	n, err := graph.InlineFunctions(m, []*graph.Function{outer, inner})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("inlined %d calls, want 2", n)
	}
	if err := graph.Validate(m); err != nil {
		t.Fatal(err)
	}
	want := []string{"top/r", "top/g/act", "top/g/side"}
	if got := fnNodeNames(m); !slices.Equal(got, want) {
		t.Fatalf("nodes %q, want %q", got, want)
	}
	act := fnNode(m, "top/g/act")
	if act.Attr("alpha") == nil || act.Attr("alpha").F != 0.5 {
		t.Errorf("top/g/act alpha = %+v, want 0.5 from the outer call", act.Attr("alpha"))
	}
	if !slices.Equal(act.Inputs, []string{"top/T"}) || !slices.Equal(act.Outputs, []string{"y"}) {
		t.Errorf("top/g/act: %v → %v, want [top/T] → [y]", act.Inputs, act.Outputs)
	}
	if side := fnNode(m, "top/g/side"); side.Outputs[0] != "top/g/unused" {
		t.Errorf("inner local value named %q, want top/g/unused", side.Outputs[0])
	}
	var domains []string
	for _, o := range m.OpsetImports {
		domains = append(domains, o.Domain)
		if o.Domain == "com.example" && o.Version != 3 {
			t.Errorf("com.example imported at %d, want 3", o.Version)
		}
	}
	if !slices.Contains(domains, "com.example") || slices.Contains(domains, "local") {
		t.Errorf("opset domains %q: want com.example merged in and the unused function domain \"local\" dropped", domains)
	}

	// Functions but no call: nothing to inline, the unused function domain
	// import goes.
	m = fnModel(fnBody("r", "Relu", []string{"x"}, []string{"y"}))
	if n, err := graph.InlineFunctions(m, []*graph.Function{outer, inner}); n != 0 || err != nil || len(m.OpsetImports) != 1 || fnNodeNames(m)[0] != "r" {
		t.Errorf("no call: InlineFunctions = %d, %v; opsets %v, nodes %q; want 0, nil, only ai.onnx, [r]", n, err, m.OpsetImports, fnNodeNames(m))
	}

	// A conflicting version of a domain the model imports.
	inner.OpsetImports[0].Version = 13
	m = fnModel(fnCall("top", "F", []string{"x"}, []string{"y"}))
	before := fnNodeNames(m)
	_, err = graph.InlineFunctions(m, []*graph.Function{outer, inner})
	if err == nil || !strings.Contains(err.Error(), `"local.G"`) || !strings.Contains(err.Error(), "13") {
		t.Errorf("opset conflict: err = %v, want an error naming local.G and version 13", err)
	}
	if !slices.Equal(fnNodeNames(m), before) {
		t.Errorf("model changed by a failed inlining: %q", fnNodeNames(m))
	}
}

// TestInlineFunctionsRecursive: direct and indirect recursion are errors
// naming the function, and leave the model as it was.
func TestInlineFunctionsRecursive(t *testing.T) {
	self := fnOf("Self", []string{"X"}, []string{"Y"}, fnCall("again", "Self", []string{"X"}, []string{"Y"}))
	a := fnOf("A", []string{"X"}, []string{"Y"}, fnCall("toB", "B", []string{"X"}, []string{"Y"}))
	b := fnOf("B", []string{"X"}, []string{"Y"},
		fnBody("r", "Relu", []string{"X"}, []string{"T"}),
		fnCall("toA", "A", []string{"T"}, []string{"Y"}))
	for _, c := range []struct {
		fns  []*graph.Function
		top  string
		want string
	}{
		{[]*graph.Function{self}, "Self", "(local.Self → local.Self)"},
		{[]*graph.Function{a, b}, "A", "(local.A → local.B → local.A)"},
	} {
		m := fnModel(fnCall("c", c.top, []string{"x"}, []string{"y"}))
		_, err := graph.InlineFunctions(m, c.fns)
		var fe *graph.FunctionError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "recursive") {
			t.Errorf("%s: err = %v, want a *FunctionError naming %q", c.top, err, c.want)
			continue
		}
		if got := fnNodeNames(m); !slices.Equal(got, []string{"c"}) || len(m.OpsetImports) != 2 {
			t.Errorf("%s: model changed by a failed inlining: nodes %q, opsets %v", c.top, got, m.OpsetImports)
		}
	}
}

// TestInlineFunctionsNameCollisions: two calls of one function with the
// same node name (and two unnamed ones), next to values that already bear
// the names inlining would pick, get distinct names.
func TestInlineFunctionsNameCollisions(t *testing.T) {
	f := fnOf("F", []string{"X"}, []string{"Y"},
		fnBody("n", "Relu", []string{"X"}, []string{"T"}),
		fnBody("", "Sigmoid", []string{"T"}, []string{"Y"}))
	m := fnModel(
		fnBody("blk/n", "Relu", []string{"x"}, []string{"blk/T"}), // squats on the first call's names
		fnCall("blk", "F", []string{"blk/T"}, []string{"a"}),
		fnCall("blk", "F", []string{"a"}, []string{"b"}),
		fnCall("", "F", []string{"b"}, []string{"c"}),
		fnCall("", "F", []string{"c"}, []string{"y"}),
	)
	n, err := graph.InlineFunctions(m, []*graph.Function{f})
	if err != nil || n != 4 {
		t.Fatalf("InlineFunctions = %d, %v; want 4, nil", n, err)
	}
	if err := graph.Validate(m); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := []string{"blk/n", "blk/n_1", "blk/Sigmoid", "blk/n_2", "blk/Sigmoid_1", "c/n", "c/Sigmoid", "y/n", "y/Sigmoid"}
	if got := fnNodeNames(m); !slices.Equal(got, want) {
		t.Errorf("node names %q, want %q", got, want)
	}
	seen := map[string]bool{}
	for _, nd := range m.Graph.Nodes {
		for _, o := range nd.Outputs {
			if seen[o] {
				t.Errorf("value %q defined twice", o)
			}
			seen[o] = true
		}
	}
	if nd := fnNode(m, "blk/n_1"); nd == nil || nd.Outputs[0] != "blk/T_1" {
		t.Errorf("first call's local value: %+v, want blk/T_1 (blk/T is taken)", nd)
	}
	// Deterministic: a second run on a fresh model gives the same names.
	m2 := fnModel(
		fnBody("blk/n", "Relu", []string{"x"}, []string{"blk/T"}),
		fnCall("blk", "F", []string{"blk/T"}, []string{"a"}),
		fnCall("blk", "F", []string{"a"}, []string{"b"}),
		fnCall("", "F", []string{"b"}, []string{"c"}),
		fnCall("", "F", []string{"c"}, []string{"y"}),
	)
	if _, err := graph.InlineFunctions(m2, []*graph.Function{f}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fnNodeNames(m2), fnNodeNames(m)) {
		t.Errorf("second run named the nodes %q, first %q", fnNodeNames(m2), fnNodeNames(m))
	}
}

// TestInlineFunctionsPassThrough: a formal output that is a formal input
// is copied with an Identity node; a body that reads an undefined name is
// an error.
func TestInlineFunctionsPassThrough(t *testing.T) {
	f := fnOf("F", []string{"X"}, []string{"X"})
	m := fnModel(fnCall("c", "F", []string{"x"}, []string{"y"}))
	if _, err := graph.InlineFunctions(m, []*graph.Function{f}); err != nil {
		t.Fatal(err)
	}
	if err := graph.Validate(m); err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Nodes) != 1 || m.Graph.Nodes[0].OpType != "Identity" || !slices.Equal(m.Graph.Nodes[0].Inputs, []string{"x"}) {
		t.Errorf("nodes %+v, want one Identity x → y", m.Graph.Nodes)
	}

	bad := fnOf("Bad", []string{"X"}, []string{"Y"}, fnBody("r", "Add", []string{"X", "outer"}, []string{"Y"}))
	m = fnModel(fnCall("c", "Bad", []string{"x"}, []string{"y"}))
	if _, err := graph.InlineFunctions(m, []*graph.Function{bad}); err == nil || !strings.Contains(err.Error(), `"outer"`) {
		t.Errorf("body reading an outer name: err = %v, want an error naming it", err)
	}
}

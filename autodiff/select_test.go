package autodiff

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func bools(shape []int, v ...int64) *tensor.Tensor {
	t := tensor.FromInt64(v, shape...)
	t.DType = tensor.Bool
	return t
}

// TestEqualWhereExpand runs the three ops on small broadcast cases
// against values worked out by hand, as ViT's export chains them:
// Where(Equal(shape, -1), ones, shape) gives Expand's target shape.
func TestEqualWhereExpand(t *testing.T) {
	shape := int64s(2, -1, -1)
	eq, err := runKernel(newTestNode("Equal", 2, 1), 13, shape, int64s(-1))
	if err != nil {
		t.Fatal(err)
	}
	if eq[0].DType != tensor.Bool || !slices.Equal(eq[0].I64, []int64{0, 1, 1}) {
		t.Fatalf("Equal = %s %v, want bool [0 1 1]", eq[0].DType, eq[0].I64)
	}
	wh, err := runKernel(newTestNode("Where", 3, 1), 16, eq[0], int64s(1, 1, 1), shape)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(wh[0].I64, []int64{2, 1, 1}) {
		t.Fatalf("Where = %v, want [2 1 1]", wh[0].I64)
	}
	token := tensor.FromFloat32([]float32{1, 2, 3}, 1, 1, 3)
	ex, err := trySetupAndRun(t, "Expand", token, wh[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ex.Shape, []int{2, 1, 3}) || !slices.Equal(ex.F32, []float32{1, 2, 3, 1, 2, 3}) {
		t.Fatalf("Expand = %v %v, want [2 1 3] [1 2 3 1 2 3]", ex.Shape, ex.F32)
	}
	// Equal on floats: NaN equals nothing; broadcast across rows.
	nan := float32(math.NaN())
	feq, err := runKernel(newTestNode("Equal", 2, 1), 13, tensor.FromFloat32([]float32{1, nan, 3, 4}, 2, 2), tensor.FromFloat32([]float32{1, nan}, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(feq[0].I64, []int64{1, 0, 0, 0}) {
		t.Errorf("Equal on floats = %v, want [1 0 0 0]", feq[0].I64)
	}
	// Where on floats with a broadcast condition and scalar branch.
	fw, err := runKernel(newTestNode("Where", 3, 1), 16, bools([]int{2, 1}, 1, 0), tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 2), tensor.FromFloat32([]float32{-1}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fw[0].F32, []float32{1, 2, -1, -1}) {
		t.Errorf("Where on floats = %v, want [1 2 -1 -1]", fw[0].F32)
	}
}

// trySetupAndRun runs a node whose second input is a compile-time constant.
func trySetupAndRun(t *testing.T, op string, x, c *tensor.Tensor) (*tensor.Tensor, error) {
	t.Helper()
	kern, outs, err := trySetupKernel(newTestNode(op, 2, 1), 13, []*tensor.Tensor{x, c}, []int{1})
	if err != nil {
		return nil, err
	}
	y := allocTensor(outs[0].DType, outs[0].Shape)
	return y, kern.Forward(&RunContext{Workers: 1}, []*tensor.Tensor{x, c}, []*tensor.Tensor{y})
}

// TestWhereExpandGradients checks Where's gradients (to the branch each
// element took, summed over broadcast axes) and Expand's (summed over the
// expanded axes) against finite differences.
func TestWhereExpandGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 31))
	cond := bools([]int{3, 1}, 1, 0, 1)
	gradCheckWith(t, gradCheckConfig{Node: newTestNode("Where", 3, 1), Opset: 16,
		Inputs: []*tensor.Tensor{cond, randomTensor(rng, 3, 4), randomTensor(rng, 4)}, Wrt: []int{1, 2}})
	gradCheckWith(t, gradCheckConfig{Node: newTestNode("Expand", 2, 1), Opset: 13,
		Inputs: []*tensor.Tensor{randomTensor(rng, 3, 1), int64s(2, 3, 4)}, ConstInputs: []int{1}, Wrt: []int{0}})
}

func TestExpandBadShape(t *testing.T) {
	rng := rand.New(rand.NewPCG(32, 32))
	x := randomTensor(rng, 3, 2)
	for _, c := range []struct {
		shape *tensor.Tensor
		want  string
	}{
		{int64s(4, 3), "broadcast"},
		{int64s(-2, 3, 2), "negative"},
	} {
		if _, err := trySetupAndRun(t, "Expand", x, c.shape); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Expand to %v: error %v, want one containing %q", c.shape.I64, err, c.want)
		}
	}
	k := &expandKernel{}
	if _, err := k.Setup([]Value{{DType: tensor.Float32, Shape: []int{3, 2}, Present: true}, {DType: tensor.Int64, Shape: []int{2}, Present: true}}); err == nil || !strings.Contains(err.Error(), "constant") {
		t.Errorf("Expand with a run-time shape: error %v, want one saying the shape must be constant", err)
	}
}

// TestModNotRangeScatterND runs the ops Swin's export uses for its window
// masks on hand-worked cases.
func TestModNotRangeScatterND(t *testing.T) {
	// Mod: integers follow the divisor's sign unless fmod=1.
	a, b := int64s(7, -7, 7, -7), int64s(3, 3, -3, -3)
	for _, c := range []struct {
		fmod int64
		want []int64
	}{{0, []int64{1, 2, -2, -1}}, {1, []int64{1, -1, 1, -1}}} {
		out, err := runKernel(newTestNode("Mod", 2, 1, intAttr("fmod", c.fmod)), 13, a, b)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0].I64, c.want) {
			t.Errorf("Mod fmod=%d = %v, want %v", c.fmod, out[0].I64, c.want)
		}
	}
	fm, err := runKernel(newTestNode("Mod", 2, 1, intAttr("fmod", 1)), 13, tensor.FromFloat32([]float32{5.5, -5.5}, 2), tensor.FromFloat32([]float32{2}, 1))
	if err != nil || !slices.Equal(fm[0].F32, []float32{1.5, -1.5}) {
		t.Errorf("float Mod = %v (%v), want [1.5 -1.5]", fm, err)
	}
	if _, err := runKernel(newTestNode("Mod", 2, 1), 13, tensor.FromFloat32([]float32{1}, 1), tensor.FromFloat32([]float32{2}, 1)); err == nil || !strings.Contains(err.Error(), "fmod=1") {
		t.Errorf("float Mod without fmod: %v, want an error asking for fmod=1", err)
	}
	not, err := runKernel(newTestNode("Not", 1, 1), 13, bools([]int{3}, 1, 0, 1))
	if err != nil || !slices.Equal(not[0].I64, []int64{0, 1, 0}) {
		t.Errorf("Not = %v (%v), want [0 1 0]", not, err)
	}
	rg, err := runKernel(newTestNode("Range", 3, 1), 13, int64s(10), int64s(1), int64s(-3))
	if err != nil || !slices.Equal(rg[0].I64, []int64{10, 7, 4}) {
		t.Errorf("Range(10, 1, -3) = %v (%v), want [10 7 4]", rg, err)
	}
	// ScatterND: rows 2 and 0 of a 3×2 tensor replaced; a repeated index
	// keeps the later update.
	data := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	idx := tensor.FromInt64([]int64{2, 0, 2}, 3, 1)
	upd := tensor.FromFloat32([]float32{10, 20, 30, 40, 50, 60}, 3, 2)
	kern, outs, err := trySetupKernel(newTestNode("ScatterND", 3, 1), 16, []*tensor.Tensor{data, idx, upd}, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	y := allocTensor(outs[0].DType, outs[0].Shape)
	if err := kern.Forward(&RunContext{Workers: 1}, []*tensor.Tensor{data, idx, upd}, []*tensor.Tensor{y}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(y.F32, []float32{30, 40, 3, 4, 50, 60}) {
		t.Errorf("ScatterND = %v, want [30 40 3 4 50 60]", y.F32)
	}
}

// TestScatterNDModGradients checks ScatterND's gradients (data where no
// update landed, the winning updates) and float Mod's against finite
// differences.
func TestScatterNDModGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 33))
	gradCheckWith(t, gradCheckConfig{Node: newTestNode("ScatterND", 3, 1), Opset: 16,
		Inputs:      []*tensor.Tensor{randomTensor(rng, 4, 3), tensor.FromInt64([]int64{1, 3, 1}, 3, 1), randomTensor(rng, 3, 3)},
		ConstInputs: []int{1}, Wrt: []int{0, 2}})
	a, b := randomTensor(rng, 2, 5), randomTensor(rng, 5)
	for i := range a.F32 {
		a.F32[i] = 3*a.F32[i] + 0.05 // keep a/b away from integers (Mod's jumps)
	}
	for i := range b.F32 {
		b.F32[i] = 0.7 + 0.1*b.F32[i]
	}
	for i, v := range a.F32 {
		q := float64(v) / float64(b.F32[i%5])
		if math.Abs(q-math.Round(q)) < 0.05 {
			a.F32[i] += 0.1 * b.F32[i%5]
		}
	}
	gradCheck(t, newTestNode("Mod", 2, 1, intAttr("fmod", 1)), 13, []*tensor.Tensor{a, b}, []int{0, 1}, 0)
}

// TestComparisonsArgTile: the comparison and logical ops (NaN compares
// false), ArgMax/ArgMin (first extreme, last with select_last_index, NaN
// the extreme), Tile's values and gradient, and PRelu's.
func TestComparisonsArgTile(t *testing.T) {
	nan := float32(math.NaN())
	a, b := tensor.FromFloat32([]float32{1, 2, nan, 4}, 4), tensor.FromFloat32([]float32{2}, 1)
	for op, want := range map[string][]int64{
		"Greater": {0, 0, 0, 1}, "Less": {1, 0, 0, 0}, "GreaterOrEqual": {0, 1, 0, 1}, "LessOrEqual": {1, 1, 0, 0}, "Equal": {0, 1, 0, 0},
	} {
		got, err := runKernel(newTestNode(op, 2, 1), 16, a, b)
		if err != nil || !slices.Equal(got[0].I64, want) {
			t.Errorf("%s = %v (%v), want %v", op, got, err, want)
		}
	}
	p, q := bools([]int{4}, 1, 1, 0, 0), bools([]int{4}, 1, 0, 1, 0)
	for op, want := range map[string][]int64{"And": {1, 0, 0, 0}, "Or": {1, 1, 1, 0}, "Xor": {0, 1, 1, 0}} {
		got, err := runKernel(newTestNode(op, 2, 1), 7, p, q)
		if err != nil || !slices.Equal(got[0].I64, want) {
			t.Errorf("%s = %v (%v), want %v", op, got, err, want)
		}
	}
	if _, err := runKernel(newTestNode("And", 2, 1), 7, a, a); err == nil || !strings.Contains(err.Error(), "bool inputs") {
		t.Errorf("And on floats: %v, want an error asking for bools", err)
	}
	x := tensor.FromFloat32([]float32{3, 1, 3, 0, 5, nan, 5, 2}, 2, 4)
	for _, c := range []struct {
		op    string
		attrs []*graph.Attribute
		shape []int
		want  []int64
	}{
		{"ArgMax", []*graph.Attribute{intAttr("axis", 1)}, []int{2, 1}, []int64{0, 1}},
		{"ArgMax", []*graph.Attribute{intAttr("axis", -1), intAttr("keepdims", 0), intAttr("select_last_index", 1)}, []int{2}, []int64{2, 1}},
		{"ArgMin", []*graph.Attribute{intAttr("axis", 1), intAttr("keepdims", 0)}, []int{2}, []int64{3, 1}},
		{"ArgMax", []*graph.Attribute{intAttr("axis", 0)}, []int{1, 4}, []int64{1, 1, 1, 1}},
	} {
		got, err := runKernel(newTestNode(c.op, 1, 1, c.attrs...), 13, x)
		if err != nil || !slices.Equal(got[0].Shape, c.shape) || !slices.Equal(got[0].I64, c.want) {
			t.Errorf("%s %v = %v (%v), want %v %v", c.op, c.attrs, got, err, c.shape, c.want)
		}
	}
	tl, err := trySetupAndRun(t, "Tile", tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 2), int64s(2, 1))
	if err != nil || !slices.Equal(tl.Shape, []int{4, 2}) || !slices.Equal(tl.F32, []float32{1, 2, 3, 4, 1, 2, 3, 4}) {
		t.Errorf("Tile = %v (%v), want [4 2] [1 2 3 4 1 2 3 4]", tl, err)
	}
	rng := rand.New(rand.NewPCG(34, 34))
	gradCheckWith(t, gradCheckConfig{Node: newTestNode("Tile", 2, 1), Opset: 13,
		Inputs: []*tensor.Tensor{randomTensor(rng, 2, 3), int64s(2, 3)}, ConstInputs: []int{1}, Wrt: []int{0}})
	gradCheck(t, newTestNode("PRelu", 2, 1), 16, []*tensor.Tensor{randomTensor(rng, 2, 3, 2, 2), randomTensor(rng, 3, 1, 1)}, []int{0, 1}, 0)
}

package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// reduceCase is one reduction: its node and opset, the axes input (nil:
// none), and the expected shape and values on opsIota(2, 3, 2).
type reduceCase struct {
	name  string
	node  *graph.Node
	opset int64
	axes  *tensor.Tensor
	shape []int
	want  []float32
}

// runReduceCases checks each case's values and its gradient against
// finite differences (on random data from seed).
func runReduceCases(t *testing.T, seed uint64, tests []reduceCase) {
	t.Helper()
	x := opsIota(2, 3, 2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []*tensor.Tensor{x}
			if tt.axes != nil {
				in = append(in, tt.axes)
			}
			got, err := runKernel(tt.node, tt.opset, in...)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(got[0].Shape, tt.shape, cmpopts.EquateEmpty()) || !cmp.Equal(got[0].F32, tt.want) {
				t.Errorf("%s = %v %v, want %v %v", tt.node.OpType, got[0].Shape, got[0].F32, tt.shape, tt.want)
			}
			in[0] = randomTensor(rand.New(rand.NewPCG(seed, seed)), 2, 3, 2)
			gradCheck(t, tt.node, tt.opset, in, []int{0}, gradCheckTol)
		})
	}
}

func TestReduceMean(t *testing.T) {
	runReduceCases(t, 5, []reduceCase{
		{"all, keepdims", newTestNode("ReduceMean", 1, 1), 13, nil, []int{1, 1, 1}, []float32{5.5}},
		{"axis 1 attribute", newTestNode("ReduceMean", 1, 1, intsAttr("axes", 1)), 13, nil, []int{2, 1, 2}, []float32{2, 3, 8, 9}},
		{"axes -1,0 no keepdims", newTestNode("ReduceMean", 1, 1, intsAttr("axes", -1, 0), intAttr("keepdims", 0)), 13, nil, []int{3}, []float32{3.5, 5.5, 7.5}},
		{"axes input", newTestNode("ReduceMean", 2, 1), 18, int64s(2), []int{2, 3, 1}, []float32{0.5, 2.5, 4.5, 6.5, 8.5, 10.5}},
		{"empty axes reduce all", newTestNode("ReduceMean", 2, 1, intAttr("keepdims", 0)), 18, int64s(), []int{}, []float32{5.5}},
		{"noop_with_empty_axes", newTestNode("ReduceMean", 1, 1, intAttr("noop_with_empty_axes", 1)), 18, nil, []int{2, 3, 2}, opsIota(2, 3, 2).F32},
	})
}

func TestReduceMeanAccuracy(t *testing.T) {
	// A long reduction of values with a large mean: accumulating in
	// float32 would lose about 1e-4 relative; the kernel accumulates in
	// float64.
	n := 1 << 20
	x := tensor.New(n)
	for i := range x.F32 {
		x.F32[i] = 1000 + float32(i%7)/7
	}
	got, err := runKernel(newTestNode("ReduceMean", 1, 1), 13, x)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, v := range x.F32 {
		want += float64(v)
	}
	want /= float64(n)
	// float32 rounding of the result alone: half an ulp of ~1000.
	if d := math.Abs(float64(got[0].F32[0]) - want); d > 6.2e-5 {
		t.Errorf("ReduceMean of 2^20 values = %v, want %v (diff %g)", got[0].F32[0], want, d)
	}
}

// TestReduceSumMaxGlobalMaxPool: values on iota data (x[i] = i) and
// gradients against finite differences; ReduceSum takes its axes as an
// input from opset 13, ReduceMax from 18; GlobalMaxPool keeps [N, C, 1, 1].
func TestReduceSumMaxGlobalMaxPool(t *testing.T) {
	runReduceCases(t, 6, []reduceCase{
		{"sum axis 1 attribute", newTestNode("ReduceSum", 1, 1, intsAttr("axes", 1)), 11, nil, []int{2, 1, 2}, []float32{6, 9, 24, 27}},
		{"sum axes input, no keepdims", newTestNode("ReduceSum", 2, 1, intAttr("keepdims", 0)), 13, int64s(0, 2), []int{3}, []float32{14, 22, 30}},
		{"max axis -1", newTestNode("ReduceMax", 1, 1, intsAttr("axes", -1)), 13, nil, []int{2, 3, 1}, []float32{1, 3, 5, 7, 9, 11}},
		{"max all, axes input", newTestNode("ReduceMax", 2, 1), 18, int64s(), []int{1, 1, 1}, []float32{11}},
		{"global max pool", newTestNode("GlobalMaxPool", 1, 1), 13, nil, []int{2, 3, 1}, []float32{1, 3, 5, 7, 9, 11}},
		{"sum square axis 2", newTestNode("ReduceSumSquare", 1, 1, intsAttr("axes", 2)), 13, nil, []int{2, 3, 1}, []float32{1, 13, 41, 85, 145, 221}},
		{"l2 axis 2 no keepdims", newTestNode("ReduceL2", 1, 1, intsAttr("axes", 2), intAttr("keepdims", 0)), 13, nil, []int{2, 3},
			[]float32{1, float32(math.Sqrt(13)), float32(math.Sqrt(41)), float32(math.Sqrt(85)), float32(math.Sqrt(145)), float32(math.Sqrt(221))}},
	})
	// A NaN is its group's maximum.
	nan := float32(math.NaN())
	got, err := runKernel(newTestNode("ReduceMax", 1, 1, intsAttr("axes", 1)), 13, tensor.FromFloat32([]float32{1, nan, 3, 4, 5, 6}, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(got[0].F32[0])) || got[0].F32[1] != 6 {
		t.Errorf("ReduceMax with a NaN = %v, want [NaN 6]", got[0].F32)
	}
}

// backwardOnes runs node forward on inputs and backward with a gradient
// of ones on output 0, returning each input's gradient.
func backwardOnes(t *testing.T, node *graph.Node, opset int64, inputs ...*tensor.Tensor) [][]float32 {
	t.Helper()
	k, outs := setupKernel(t, node, opset, inputs, nil)
	outT := make([]*tensor.Tensor, len(outs))
	for i, o := range outs {
		outT[i] = allocTensor(o.DType, o.Shape)
	}
	ctx := &RunContext{Workers: 1}
	if err := k.Forward(ctx, inputs, outT); err != nil {
		t.Fatal(err)
	}
	g := allocTensor(tensor.Float32, outs[0].Shape)
	for i := range g.F32 {
		g.F32[i] = 1
	}
	gin := make([]*tensor.Tensor, len(inputs))
	for i, in := range inputs {
		if in.DType == tensor.Float32 {
			gin[i] = allocTensor(tensor.Float32, in.Shape)
		}
	}
	if err := k.Backward(ctx, inputs, outT, []*tensor.Tensor{g}, gin); err != nil {
		t.Fatal(err)
	}
	got := make([][]float32, len(gin))
	for i, gi := range gin {
		if gi != nil {
			got[i] = gi.F32
		}
	}
	return got
}

// TestExtremeTiesShareGradient: Max, Min (with broadcasting) and
// ReduceMax share a tied extreme's gradient evenly, as PyTorch's
// maximum, minimum and amax do; a NaN result's gradient goes to the first
// NaN; GlobalMaxPool gives it to the first maximum.
func TestExtremeTiesShareGradient(t *testing.T) {
	nan := float32(math.NaN())
	f := func(v ...float32) *tensor.Tensor { return tensor.FromFloat32(v, len(v)) }
	third := float32(1) / 3
	for _, c := range []struct {
		name string
		node *graph.Node
		in   []*tensor.Tensor
		want [][]float32
	}{
		{"Max of two", newTestNode("Max", 2, 1), []*tensor.Tensor{f(1, 2, 3), f(1, 5, 3)},
			[][]float32{{0.5, 0, 0.5}, {0.5, 1, 0.5}}},
		{"Max of three, broadcast", newTestNode("Max", 3, 1), []*tensor.Tensor{f(2, 2), f(2), f(2, 1)},
			[][]float32{{third, 0.5}, {third + 0.5}, {third, 0}}},
		{"Min of two", newTestNode("Min", 2, 1), []*tensor.Tensor{f(4, -1), f(4, 0)},
			[][]float32{{0.5, 1}, {0.5, 0}}},
		{"Max with NaN", newTestNode("Max", 2, 1), []*tensor.Tensor{f(nan, 1), f(nan, 1)},
			[][]float32{{1, 0.5}, {0, 0.5}}},
		{"ReduceMax", newTestNode("ReduceMax", 1, 1, intsAttr("axes", 1)),
			[]*tensor.Tensor{tensor.FromFloat32([]float32{1, 3, 3, 2, nan, nan, 7, 7, 7}, 3, 3)},
			[][]float32{{0, 0.5, 0.5, 0, 1, 0, third, third, third}}},
		{"GlobalMaxPool", newTestNode("GlobalMaxPool", 1, 1), []*tensor.Tensor{tensor.FromFloat32([]float32{5, 5, 1, 5}, 1, 1, 2, 2)},
			[][]float32{{1, 0, 0, 0}}},
	} {
		got := backwardOnes(t, c.node, 13, c.in...)
		for i, w := range c.want {
			if !cmp.Equal(got[i], w, cmpopts.EquateApprox(0, 1e-7)) {
				t.Errorf("%s: gradient of input %d = %v, want %v", c.name, i, got[i], w)
			}
		}
	}
}

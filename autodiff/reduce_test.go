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

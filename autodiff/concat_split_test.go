package autodiff

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestConcat(t *testing.T) {
	a := tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 2)
	b := tensor.FromFloat32([]float32{5, 6}, 2, 1)
	c := tensor.New(2, 0)
	got, err := runKernel(newTestNode("Concat", 3, 1, intAttr("axis", -1)), 13, a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 2, 5, 3, 4, 6}; !cmp.Equal(got[0].Shape, []int{2, 3}) || !cmp.Equal(got[0].F32, want) {
		t.Errorf("Concat axis -1 = %v %v, want [2 3] %v", got[0].Shape, got[0].F32, want)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, axis := range []int64{0, 1, 2, -1} {
		shapes := [][]int{{2, 3, 4}, {2, 3, 4}, {2, 3, 4}}
		ax := (int(axis) + 3) % 3
		shapes[1][ax], shapes[2][ax] = 1, 2
		in := []*tensor.Tensor{randomTensor(rng, shapes[0]...), randomTensor(rng, shapes[1]...), randomTensor(rng, shapes[2]...)}
		gradCheck(t, newTestNode("Concat", 3, 1, intAttr("axis", axis)), 13, in, []int{0, 1, 2}, gradCheckTol)
	}
	_, err = runKernel(newTestNode("Concat", 2, 1, intAttr("axis", 0)), 13, a, b)
	if err == nil || !strings.Contains(err.Error(), "differ outside axis") {
		t.Errorf("Concat of [2 2] and [2 1] on axis 0: error %v, want a shape mismatch", err)
	}
}

func TestSplit(t *testing.T) {
	x := opsIota(2, 6)
	tests := []struct {
		name  string
		node  *graph.Node
		opset int64
		split *tensor.Tensor
		want  [][]int
	}{
		{"equal", newTestNode("Split", 1, 3, intAttr("axis", 1)), 13, nil, [][]int{{2, 2}, {2, 2}, {2, 2}}},
		{"attribute", newTestNode("Split", 1, 2, intAttr("axis", 1), intsAttr("split", 1, 5)), 11, nil, [][]int{{2, 1}, {2, 5}}},
		{"input", newTestNode("Split", 2, 3, intAttr("axis", -1)), 13, int64s(4, 0, 2), [][]int{{2, 4}, {2, 0}, {2, 2}}},
		{"axis 0", newTestNode("Split", 1, 2), 13, nil, [][]int{{1, 6}, {1, 6}}},
		{"num_outputs uneven", newTestNode("Split", 1, 4, intAttr("axis", 1), intAttr("num_outputs", 4)), 18, nil, [][]int{{2, 2}, {2, 2}, {2, 2}, {2, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []*tensor.Tensor{x}
			if tt.split != nil {
				in = append(in, tt.split)
			}
			got, err := runKernel(tt.node, tt.opset, in...)
			if err != nil {
				t.Fatal(err)
			}
			// The parts, concatenated back along the axis, give x again.
			var shapes [][]int
			var parts []*tensor.Tensor
			for _, g := range got {
				shapes = append(shapes, g.Shape)
				parts = append(parts, g)
			}
			if !cmp.Equal(shapes, tt.want) {
				t.Fatalf("Split shapes %v, want %v", shapes, tt.want)
			}
			axis := tt.node.AttrInt("axis", 0)
			back, err := runKernel(newTestNode("Concat", len(parts), 1, intAttr("axis", axis)), 13, parts...)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(back[0].F32, x.F32) {
				t.Errorf("Concat(Split(x)) = %v, want %v", back[0].F32, x.F32)
			}
			in[0] = randomTensor(rand.New(rand.NewPCG(2, 2)), 2, 6)
			gradCheck(t, tt.node, tt.opset, in, []int{0}, gradCheckTol)
		})
	}
	_, err := runKernel(newTestNode("Split", 1, 4, intAttr("axis", 1)), 13, x)
	if err == nil || !strings.Contains(err.Error(), "evenly") {
		t.Errorf("Split of 6 into 4 without sizes: error %v, want one saying it does not split evenly", err)
	}
	_, err = runKernel(newTestNode("Split", 2, 2, intAttr("axis", 1)), 13, x, int64s(2, 3))
	if err == nil || !strings.Contains(err.Error(), "sums to 5") {
		t.Errorf("Split with sizes summing to 5: error %v, want a sum error", err)
	}
}

func TestSlice(t *testing.T) {
	x := opsIota(3, 4)
	huge := int64(1<<63 - 1)
	tests := []struct {
		name                      string
		starts, ends, axes, steps []int64
		want                      []float32
		shape                     []int
	}{
		{"basic", []int64{0, 1}, []int64{2, 3}, nil, nil, []float32{1, 2, 5, 6}, []int{2, 2}},
		{"axes", []int64{1}, []int64{huge}, []int64{1}, nil, []float32{1, 2, 3, 5, 6, 7, 9, 10, 11}, []int{3, 3}},
		{"negative axis and start", []int64{-2}, []int64{huge}, []int64{-1}, nil, []float32{2, 3, 6, 7, 10, 11}, []int{3, 2}},
		{"step 2", []int64{0}, []int64{4}, []int64{1}, []int64{2}, []float32{0, 2, 4, 6, 8, 10}, []int{3, 2}},
		{"negative step", []int64{-1, 2}, []int64{-huge - 1, 0}, []int64{0, 1}, []int64{-2, -1}, []float32{10, 9, 2, 1}, []int{2, 2}},
		{"reverse all", []int64{huge}, []int64{-huge - 1}, []int64{1}, []int64{-1}, []float32{3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8}, []int{3, 4}},
		{"clamped", []int64{-100, 2}, []int64{100, 1000}, nil, nil, []float32{2, 3, 6, 7, 10, 11}, []int{3, 2}},
		{"empty", []int64{2}, []int64{1}, []int64{0}, nil, []float32{}, []int{0, 4}},
		{"start past end", []int64{10}, []int64{20}, []int64{1}, nil, []float32{}, []int{3, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []*tensor.Tensor{x, int64s(tt.starts...), int64s(tt.ends...)}
			if tt.axes != nil || tt.steps != nil {
				axes := tt.axes
				if axes == nil {
					for i := range tt.starts {
						axes = append(axes, int64(i))
					}
				}
				in = append(in, int64s(axes...))
			}
			if tt.steps != nil {
				in = append(in, int64s(tt.steps...))
			}
			node := newTestNode("Slice", len(in), 1)
			got, err := runKernel(node, 13, in...)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(got[0].Shape, tt.shape) || !cmp.Equal(got[0].F32, tt.want) {
				t.Errorf("Slice = %v %v, want %v %v", got[0].Shape, got[0].F32, tt.shape, tt.want)
			}
			in[0] = randomTensor(rand.New(rand.NewPCG(3, 3)), 3, 4)
			gradCheck(t, node, 13, in, []int{0}, gradCheckTol)
		})
	}
	// Opset < 10: attributes.
	node := newTestNode("Slice", 1, 1, intsAttr("starts", 1), intsAttr("ends", 3), intsAttr("axes", 1))
	got, err := runKernel(node, 9, x)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 2, 5, 6, 9, 10}; !cmp.Equal(got[0].F32, want) {
		t.Errorf("Slice opset 9 = %v, want %v", got[0].F32, want)
	}
	gradCheck(t, node, 9, []*tensor.Tensor{randomTensor(rand.New(rand.NewPCG(3, 4)), 3, 4)}, []int{0}, gradCheckTol)
	_, err = runKernel(newTestNode("Slice", 5, 1), 13, x, int64s(0), int64s(1), int64s(0), int64s(0))
	if err == nil || !strings.Contains(err.Error(), "steps") {
		t.Errorf("Slice with step 0: error %v, want a steps error", err)
	}
}

// TestConcatSplitParallelMatchesSerial: large concatenations split their
// rows over workers; the results must equal one worker's exactly.
func TestConcatSplitParallelMatchesSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	a, b := randomTensor(rng, 8, 3, 64, 64), randomTensor(rng, 8, 2, 64, 64)
	run := func(node *graph.Node, in []*tensor.Tensor, workers int) []float32 {
		k, outs := setupKernel(t, node, 13, in, nil)
		ctx := &RunContext{Workers: workers}
		var out, gout []*tensor.Tensor
		for _, o := range outs {
			out = append(out, allocTensor(o.DType, o.Shape))
			gout = append(gout, randomTensor(rand.New(rand.NewPCG(15, 15)), o.Shape...))
		}
		if err := k.Forward(ctx, in, out); err != nil {
			t.Fatal(err)
		}
		gin := make([]*tensor.Tensor, len(in))
		for i, v := range in {
			gin[i] = tensor.New(v.Shape...)
		}
		if err := k.Backward(ctx, in, out, gout, gin); err != nil {
			t.Fatal(err)
		}
		var all []float32
		for _, o := range out {
			all = append(all, o.F32...)
		}
		for _, g := range gin {
			all = append(all, g.F32...)
		}
		return all
	}
	for _, tt := range []struct {
		node *graph.Node
		in   []*tensor.Tensor
	}{
		{newTestNode("Concat", 2, 1, intAttr("axis", 1)), []*tensor.Tensor{a, b}},
		{newTestNode("Split", 2, 2, intAttr("axis", 1)), []*tensor.Tensor{a, int64s(1, 2)}},
	} {
		serial, parallel := run(tt.node, tt.in, 1), run(tt.node, tt.in, 2)
		if !slices.Equal(serial, parallel) {
			t.Errorf("%s: 2 workers give different results from 1", tt.node.OpType)
		}
	}
}

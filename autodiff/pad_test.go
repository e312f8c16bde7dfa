package autodiff

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestPadModes(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, 2, 3}, 1, 3)
	tests := []struct {
		mode string
		pads []int64
		want []float32
	}{
		{"constant", []int64{0, 2, 0, 1}, []float32{9, 9, 1, 2, 3, 9}},
		{"edge", []int64{0, 2, 0, 1}, []float32{1, 1, 1, 2, 3, 3}},
		{"reflect", []int64{0, 2, 0, 2}, []float32{3, 2, 1, 2, 3, 2, 1}},
		{"wrap", []int64{0, 2, 0, 1}, []float32{2, 3, 1, 2, 3, 1}},
		{"constant", []int64{0, -1, 0, 1}, []float32{2, 3, 9}}, // a negative pad crops
	}
	for _, tt := range tests {
		node := newTestNode("Pad", 3, 1, stringAttr("mode", tt.mode))
		got, err := runKernel(node, 13, x, int64s(tt.pads...), &tensor.Tensor{DType: tensor.Float32, Shape: []int{}, F32: []float32{9}})
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(got[0].F32, tt.want) {
			t.Errorf("Pad %s %v = %v, want %v", tt.mode, tt.pads, got[0].F32, tt.want)
		}
	}
}

func TestPadForms(t *testing.T) {
	x := opsIota(2, 3)
	tests := []struct {
		name  string
		node  *graph.Node
		opset int64
		in    []*tensor.Tensor
		shape []int
	}{
		{"opset 2 attributes", newTestNode("Pad", 1, 1, intsAttr("pads", 1, 0, 0, 2), floatAttr("value", 1)), 2, []*tensor.Tensor{x}, []int{3, 5}},
		{"opset 11 no value", newTestNode("Pad", 2, 1), 11, []*tensor.Tensor{x, int64s(0, 1, 0, 1)}, []int{2, 5}},
		{"opset 18 axes", newTestNode("Pad", 4, 1), 18, []*tensor.Tensor{x, int64s(2, 1), nil, int64s(-1)}, []int{2, 6}},
		{"opset 18 reflect 2-D", newTestNode("Pad", 2, 1, stringAttr("mode", "reflect")), 18, []*tensor.Tensor{x, int64s(1, 2, 1, 2)}, []int{4, 7}},
		{"edge", newTestNode("Pad", 2, 1, stringAttr("mode", "edge")), 13, []*tensor.Tensor{x, int64s(1, 1, 3, 0)}, []int{6, 4}},
		{"wrap", newTestNode("Pad", 2, 1, stringAttr("mode", "wrap")), 19, []*tensor.Tensor{x, int64s(1, 4, 0, 2)}, []int{3, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.node.Inputs != nil && len(tt.in) > 2 && tt.in[2] == nil {
				tt.node.Inputs[2] = ""
			}
			got, err := runKernel(tt.node, tt.opset, tt.in...)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(got[0].Shape, tt.shape) {
				t.Errorf("Pad shape %v, want %v", got[0].Shape, tt.shape)
			}
			in := append([]*tensor.Tensor(nil), tt.in...)
			in[0] = randomTensor(rand.New(rand.NewPCG(4, 4)), 2, 3)
			gradCheck(t, tt.node, tt.opset, in, []int{0}, gradCheckTol)
		})
	}
	// The constant_value input gets the gradient of the padded positions.
	rng := rand.New(rand.NewPCG(4, 5))
	gradCheck(t, newTestNode("Pad", 3, 1), 13, []*tensor.Tensor{randomTensor(rng, 2, 3), int64s(1, 0, 1, 2), randomTensor(rng)}, []int{0, 2}, gradCheckTol)
}

func TestPadErrors(t *testing.T) {
	x := opsIota(2, 3)
	tests := []struct {
		node *graph.Node
		in   []*tensor.Tensor
		want string
	}{
		{newTestNode("Pad", 2, 1), []*tensor.Tensor{x, int64s(1, 1)}, "want 4"},
		{newTestNode("Pad", 2, 1), []*tensor.Tensor{x, int64s(0, -3, 0, -1)}, "below zero"},
		{newTestNode("Pad", 2, 1, stringAttr("mode", "edge")), []*tensor.Tensor{tensor.New(0, 3), int64s(1, 0, 0, 0)}, "size 0"},
	}
	for _, tt := range tests {
		_, err := runKernel(tt.node, 13, tt.in...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Pad %v: error %v, want one mentioning %q", tt.in[1].I64, err, tt.want)
		}
	}
	_, err := kernels["Pad"](newTestNode("Pad", 2, 1, stringAttr("mode", "symmetric")), 13)
	if err == nil || !strings.Contains(err.Error(), "symmetric") {
		t.Errorf("Pad mode symmetric: error %v, want one naming the mode", err)
	}
}

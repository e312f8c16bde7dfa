package autodiff

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// runResize runs a Resize-13 node on x with constant scales or sizes.
func runResize(t *testing.T, x *tensor.Tensor, scales []float32, sizes []int64, attrs ...*graph.Attribute) (*tensor.Tensor, error) {
	t.Helper()
	node := newTestNode("Resize", 4, 1, attrs...)
	in := []*tensor.Tensor{x, tensor.FromFloat32(nil, 0), tensor.FromFloat32(nil, 0), tensor.FromInt64(nil, 0)}
	if scales != nil {
		in[2] = tensor.FromFloat32(scales, len(scales))
	}
	if sizes != nil {
		in[3] = tensor.FromInt64(sizes, len(sizes))
	}
	kern, outs, err := trySetupKernel(node, 13, in, []int{1, 2})
	if err != nil {
		return nil, err
	}
	y := allocTensor(outs[0].DType, outs[0].Shape)
	return y, kern.Forward(&RunContext{Workers: 2}, in, []*tensor.Tensor{y})
}

// TestResizeValues checks hand-worked cases: nearest ×2 (asymmetric,
// floor: each input repeated), linear with half_pixel on a row [0 4]
// resized to 4 (sources -0.25, 0.25, 0.75, 1.25, clamped: 0 1 3 4), and
// align_corners to 3 (0 2 4).
func TestResizeValues(t *testing.T) {
	row := tensor.FromFloat32([]float32{0, 4}, 1, 1, 1, 2)
	for _, c := range []struct {
		name   string
		scales []float32
		sizes  []int64
		attrs  []*graph.Attribute
		want   []float32
	}{
		{"nearest asymmetric floor", []float32{1, 1, 1, 2}, nil,
			[]*graph.Attribute{stringAttr("coordinate_transformation_mode", "asymmetric"), stringAttr("nearest_mode", "floor")}, []float32{0, 0, 4, 4}},
		{"linear half_pixel", nil, []int64{1, 1, 1, 4}, []*graph.Attribute{stringAttr("mode", "linear")}, []float32{0, 1, 3, 4}},
		{"linear align_corners", nil, []int64{1, 1, 1, 3},
			[]*graph.Attribute{stringAttr("mode", "linear"), stringAttr("coordinate_transformation_mode", "align_corners")}, []float32{0, 2, 4}},
	} {
		y, err := runResize(t, row, c.scales, c.sizes, c.attrs...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(y.F32, c.want) {
			t.Errorf("%s: %v, want %v", c.name, y.F32, c.want)
		}
	}
	for _, c := range []struct {
		scales []float32
		sizes  []int64
		attrs  []*graph.Attribute
		want   string
	}{
		{[]float32{2, 1, 1, 1}, nil, nil, "batch or channel"},
		{nil, nil, nil, "exactly one of scales and sizes"},
		{[]float32{1, 1, 2, 2}, nil, []*graph.Attribute{stringAttr("mode", "cubic")}, "not supported"},
		{[]float32{1, 1, 2, 2}, nil, []*graph.Attribute{stringAttr("coordinate_transformation_mode", "tf_crop_and_resize")}, "not supported"},
	} {
		if _, err := runResize(t, row, c.scales, c.sizes, c.attrs...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("scales %v sizes %v %v: error %v, want one containing %q", c.scales, c.sizes, c.attrs, err, c.want)
		}
	}
}

// TestResizeGradients checks the adjoint of nearest and linear resizes,
// up and down, against finite differences.
func TestResizeGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 51))
	for _, c := range []struct {
		sizes []int64
		attrs []*graph.Attribute
	}{
		{[]int64{2, 3, 9, 7}, []*graph.Attribute{stringAttr("mode", "linear")}},
		{[]int64{2, 3, 3, 2}, []*graph.Attribute{stringAttr("mode", "linear"), stringAttr("coordinate_transformation_mode", "align_corners")}},
		{[]int64{2, 3, 10, 3}, []*graph.Attribute{stringAttr("coordinate_transformation_mode", "pytorch_half_pixel"), stringAttr("nearest_mode", "round_prefer_ceil")}},
	} {
		x := randomTensor(rng, 2, 3, 5, 4)
		in := []*tensor.Tensor{x, tensor.FromFloat32(nil, 0), tensor.FromFloat32(nil, 0), tensor.FromInt64(c.sizes, 4)}
		gradCheckWith(t, gradCheckConfig{Node: newTestNode("Resize", 4, 1, c.attrs...), Opset: 13, Inputs: in, ConstInputs: []int{1, 2}, Wrt: []int{0}})
	}
}

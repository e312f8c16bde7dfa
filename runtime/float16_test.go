package runtime_test

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// castModel is y = Cast(x, to) for a 1-D input of the given dimension
// (a symbolic one when dim is 0).
func castModel(t *testing.T, from, to tensor.DType, dim int64) []byte {
	t.Helper()
	d := graph.Dim{Param: "n", HasParam: true}
	if dim > 0 {
		d = graph.Dim{Value: dim, HasValue: true}
	}
	typ := func(e tensor.DType) *graph.Type {
		return &graph.Type{IsTensor: true, Elem: e, Shape: []graph.Dim{d}, HasShape: true}
	}
	m := &graph.Model{
		IRVersion:    8,
		OpsetImports: []graph.OpsetImport{{Version: 13}},
		Graph: &graph.Graph{
			Name: "cast",
			Nodes: []*graph.Node{{Name: "cast", OpType: "Cast", Inputs: []string{"x"}, Outputs: []string{"y"},
				Attrs: []*graph.Attribute{{Name: "to", Type: graph.AttrInt, I: int64(to)}}}},
			Inputs:  []*graph.ValueInfo{{Name: "x", Type: typ(from)}},
			Outputs: []*graph.ValueInfo{{Name: "y", Type: typ(to)}},
		},
	}
	b, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFloat16 checks that float16 values cross the binding whole: as
// inputs (raw bytes) of any shape, and as outputs of static shape (which
// the binding alone would truncate to one byte per element). A dynamic
// float16 output gives a clear error instead.
func TestFloat16(t *testing.T) {
	initORT(t)
	values := []float32{1, 2, 0.5, -1, 65504}
	bits := []uint16{0x3C00, 0x4000, 0x3800, 0xBC00, 0x7BFF}
	raw := make([]byte, 2*len(bits))
	for i, b := range bits {
		binary.LittleEndian.PutUint16(raw[2*i:], b)
	}
	for _, dim := range []int64{5, 0} {
		s, err := runtime.OpenBytes(castModel(t, tensor.Float32, tensor.Float16, dim), nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Run([]*tensor.Tensor{tensor.FromFloat32(values, 5)})
		s.Close()
		if dim == 0 {
			if err == nil || !strings.Contains(err.Error(), "dynamic") {
				t.Errorf("dynamic float16 output: Run = %v, want an error about the dynamic shape", err)
			}
		} else if err != nil {
			t.Fatal(err)
		} else if g := out[0]; g.DType != tensor.Float16 || !slices.Equal(g.Shape, []int{5}) || !slices.Equal(g.Raw, raw) {
			t.Errorf("dim %d: Cast to float16 = %v % x, want % x", dim, g, g.Raw, raw)
		}

		s, err = runtime.OpenBytes(castModel(t, tensor.Float16, tensor.Float32, dim), nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err = s.Run([]*tensor.Tensor{{DType: tensor.Float16, Shape: []int{5}, Raw: raw}})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0].F32, values) {
			t.Errorf("dim %d: Cast from float16 = %v, want %v", dim, out[0].F32, values)
		}
	}
}

// TestUnknownRankOutput: an output declared without a shape looks like a
// scalar to onnxruntime's metadata; Run must still return it whole.
func TestUnknownRankOutput(t *testing.T) {
	initORT(t)
	m := &graph.Model{
		IRVersion:    8,
		OpsetImports: []graph.OpsetImport{{Version: 13}},
		Graph: &graph.Graph{
			Name:  "relu",
			Nodes: []*graph.Node{{Name: "relu", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}}},
			Inputs: []*graph.ValueInfo{{Name: "x", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32,
				Shape: []graph.Dim{{Value: 2, HasValue: true}, {Value: 2, HasValue: true}}, HasShape: true}}},
			Outputs: []*graph.ValueInfo{{Name: "y", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32}}},
		},
	}
	b, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.OpenBytes(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run([]*tensor.Tensor{tensor.FromFloat32([]float32{-1, 2, -3, 4}, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if g := out[0]; !slices.Equal(g.Shape, []int{2, 2}) || !slices.Equal(g.F32, []float32{0, 2, 0, 4}) {
		t.Errorf("Relu = %v %v, want [2 2] [0 2 0 4]", g, g.F32)
	}
}

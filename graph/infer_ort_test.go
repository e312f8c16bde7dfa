package graph_test

import (
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func floatVI(name string, shape []int) *graph.ValueInfo {
	t := &graph.Type{IsTensor: true, Elem: tensor.Float32}
	if shape != nil {
		t.HasShape = true
		for _, d := range shape {
			t.Shape = append(t.Shape, graph.Dim{Value: int64(d), HasValue: true})
		}
	}
	return &graph.ValueInfo{Name: name, Type: t}
}

// windowModel is one Conv or pooling node over input x.
func windowModel(opset int64, op string, x []int, w []int, attrs ...*graph.Attribute) *graph.Model {
	n := &graph.Node{Name: "n", OpType: op, Inputs: []string{"x"}, Outputs: []string{"y"}, Attrs: attrs}
	g := &graph.Graph{Name: "g", Nodes: []*graph.Node{n}, Inputs: []*graph.ValueInfo{floatVI("x", x)}, Outputs: []*graph.ValueInfo{floatVI("y", nil)}}
	if w != nil {
		wt := tensor.New(w...)
		for i := range wt.F32 {
			wt.F32[i] = float32(i%7) * 0.1
		}
		g.Initializers = []*graph.Initializer{{Name: "w", Value: wt}}
		n.Inputs = append(n.Inputs, "w")
	}
	return &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Version: opset}}, Graph: g}
}

func ints(name string, v ...int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInts, Ints: v}
}
func intA(name string, v int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInt, I: v}
}
func strA(name, v string) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrString, S: []byte(v)}
}

// TestInferShapesWindowsORT checks Conv and pooling attribute variants
// (pads, strides, dilations, groups, auto_pad, ceil_mode, 1-D to 3-D)
// against the output shapes onnxruntime produces for the same node.
func TestInferShapesWindowsORT(t *testing.T) {
	initORT(t)
	k33 := ints("kernel_shape", 3, 3)
	tests := []struct {
		name string
		m    *graph.Model
	}{
		{"conv plain", windowModel(17, "Conv", []int{1, 3, 9, 9}, []int{4, 3, 3, 3})},
		{"conv pads strides", windowModel(17, "Conv", []int{2, 3, 10, 11}, []int{4, 3, 3, 3}, ints("pads", 1, 0, 2, 1), ints("strides", 2, 3))},
		{"conv dilations", windowModel(17, "Conv", []int{1, 3, 12, 12}, []int{4, 3, 3, 3}, ints("dilations", 2, 3), ints("pads", 1, 1, 1, 1))},
		{"conv group", windowModel(17, "Conv", []int{1, 8, 7, 7}, []int{8, 2, 3, 3}, intA("group", 4), ints("pads", 1, 1, 1, 1))},
		{"conv depthwise stride", windowModel(13, "Conv", []int{1, 6, 9, 9}, []int{6, 1, 3, 3}, intA("group", 6), ints("strides", 2, 2))},
		{"conv same upper", windowModel(17, "Conv", []int{1, 3, 10, 9}, []int{2, 3, 3, 4}, strA("auto_pad", "SAME_UPPER"), ints("strides", 2, 2))},
		{"conv same lower", windowModel(11, "Conv", []int{1, 3, 10, 9}, []int{2, 3, 3, 3}, strA("auto_pad", "SAME_LOWER"), ints("strides", 3, 2))},
		{"conv valid", windowModel(17, "Conv", []int{1, 3, 10, 9}, []int{2, 3, 3, 2}, strA("auto_pad", "VALID"), ints("strides", 2, 2))},
		{"conv 1d", windowModel(17, "Conv", []int{2, 3, 17}, []int{5, 3, 4}, ints("strides", 3), ints("pads", 2, 1))},
		{"conv 3d", windowModel(17, "Conv", []int{1, 2, 5, 6, 7}, []int{3, 2, 2, 3, 3}, ints("pads", 1, 0, 1, 1, 0, 1))},
		{"maxpool", windowModel(17, "MaxPool", []int{1, 3, 9, 9}, nil, k33, ints("strides", 2, 2))},
		{"maxpool ceil", windowModel(17, "MaxPool", []int{1, 3, 10, 10}, nil, k33, ints("strides", 2, 2), intA("ceil_mode", 1))},
		{"maxpool ceil pads last window in pad", windowModel(17, "MaxPool", []int{1, 3, 5, 5}, nil, ints("kernel_shape", 2, 2), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1), intA("ceil_mode", 1))},
		{"maxpool dilations", windowModel(12, "MaxPool", []int{1, 1, 11, 11}, nil, k33, ints("dilations", 2, 2), ints("strides", 2, 1))},
		{"maxpool same upper", windowModel(17, "MaxPool", []int{1, 2, 7, 8}, nil, k33, strA("auto_pad", "SAME_UPPER"), ints("strides", 2, 3))},
		{"maxpool same lower", windowModel(17, "MaxPool", []int{1, 2, 7, 8}, nil, ints("kernel_shape", 2, 2), strA("auto_pad", "SAME_LOWER"))},
		{"maxpool valid", windowModel(17, "MaxPool", []int{1, 2, 7, 8}, nil, k33, strA("auto_pad", "VALID"), ints("strides", 2, 2))},
		{"maxpool opset 8", windowModel(8, "MaxPool", []int{1, 2, 7, 8}, nil, k33, ints("pads", 1, 1, 1, 1))},
		{"maxpool 1d ceil", windowModel(17, "MaxPool", []int{1, 2, 10}, nil, ints("kernel_shape", 3), ints("strides", 2), intA("ceil_mode", 1))},
		{"avgpool", windowModel(17, "AveragePool", []int{1, 3, 9, 9}, nil, k33, ints("pads", 1, 1, 1, 1))},
		{"avgpool ceil", windowModel(17, "AveragePool", []int{1, 3, 9, 9}, nil, k33, ints("strides", 2, 2), intA("ceil_mode", 1), ints("pads", 1, 1, 1, 1))},
		{"avgpool ceil count pad", windowModel(17, "AveragePool", []int{1, 3, 8, 9}, nil, k33, ints("strides", 3, 3), intA("ceil_mode", 1), intA("count_include_pad", 1))},
		{"avgpool dilations opset 19", windowModel(19, "AveragePool", []int{1, 1, 12, 12}, nil, k33, ints("dilations", 2, 2), ints("strides", 2, 2), intA("ceil_mode", 1))},
		{"avgpool same upper", windowModel(17, "AveragePool", []int{1, 3, 9, 10}, nil, k33, strA("auto_pad", "SAME_UPPER"), ints("strides", 2, 2))},
		{"avgpool 3d", windowModel(17, "AveragePool", []int{1, 1, 5, 6, 7}, nil, ints("kernel_shape", 2, 2, 3), ints("strides", 1, 2, 2))},
		{"global avgpool", windowModel(17, "GlobalAveragePool", []int{2, 5, 7, 3}, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := tt.m.Graph.Inputs[0]
			var xs []int
			for _, d := range x.Type.Shape {
				xs = append(xs, int(d.Value))
			}
			shapes, err := graph.InferShapes(tt.m, nil)
			if err != nil {
				t.Fatalf("InferShapes: %v", err)
			}
			b, err := onnxio.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			s, err := runtime.OpenBytes(b, &runtime.SessionOptions{IntraOpThreads: 1, DisableSpinning: true})
			if err != nil {
				t.Fatalf("onnxruntime refuses the model: %v", err)
			}
			defer s.Close()
			out, err := s.Run([]*tensor.Tensor{tensor.New(xs...)})
			if err != nil {
				t.Fatal(err)
			}
			if got := shapes["y"]; !slices.Equal(got, out[0].Shape) {
				t.Errorf("InferShapes: y = %v, onnxruntime gives %v", got, out[0].Shape)
			}
		})
	}
}

// TestInferShapesFixtures compares the inferred logits shape of every
// fixture with the stored output, and checks the symbolic-batch error.
func TestInferShapesFixtures(t *testing.T) {
	for _, dir := range fixtureDirs(t) {
		m, in, want := readFixture(t, dir)
		shapes, err := graph.InferShapes(m, map[string][]int{"input": in.Shape})
		if err != nil {
			t.Errorf("%s: InferShapes: %v", dir, err)
			continue
		}
		if got := shapes[m.Graph.Outputs[0].Name]; !slices.Equal(got, want.Shape) {
			t.Errorf("%s: output shape %v, stored output has %v", dir, got, want.Shape)
		}
		for _, n := range m.Graph.Nodes {
			for _, o := range n.Outputs {
				if _, ok := shapes[o]; !ok && o != "" {
					t.Errorf("%s: no shape for %q (output of %s)", dir, o, n.Name)
				}
			}
		}
		if d := m.Graph.Inputs[0].Type.Shape[0]; d.HasParam {
			_, err := graph.InferShapes(m, nil)
			if err == nil || err.Error() != `graph: graph input "input" has symbolic dimension 0 (batch); give its shape explicitly` {
				t.Errorf("%s: InferShapes without shapes: err = %v, want the symbolic-dimension error", dir, err)
			}
		}
	}
}

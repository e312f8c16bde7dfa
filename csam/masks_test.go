package csam

import (
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// TestSelectLayersOps: the weights of Conv, ConvTranspose and Gemm (input
// 1) and MatMul's initializer operand are prunable, in graph order; biases,
// BatchNormalization parameters and other ops' initializers are not.
func TestSelectLayersOps(t *testing.T) {
	init := func(name string, shape ...int) *graph.Initializer {
		return &graph.Initializer{Name: name, Value: tensor.New(shape...)}
	}
	nd := func(name, op string, in ...string) *graph.Node {
		return &graph.Node{Name: name, OpType: op, Inputs: in, Outputs: []string{name + ".out"}}
	}
	g := &graph.Graph{
		Nodes: []*graph.Node{
			nd("conv", "Conv", "x", "w_conv", "b_conv"),
			nd("bn", "BatchNormalization", "conv.out", "s", "b", "mu", "var"),
			nd("up", "ConvTranspose", "bn.out", "w_up"),
			nd("mm", "MatMul", "w_mm", "up.out"),
			nd("add", "Add", "mm.out", "c"),
			nd("fc", "Gemm", "add.out", "w_fc"),
		},
		Initializers: []*graph.Initializer{
			init("w_conv", 4, 3, 3, 3), init("b_conv", 4), init("s", 4), init("b", 4), init("mu", 4), init("var", 4),
			init("w_up", 4, 2, 3, 3), init("w_mm", 5, 2), init("c", 1), init("w_fc", 10, 8),
		},
	}
	layers, err := SelectLayers(g, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range layers {
		got = append(got, l.OpType+":"+l.Weight)
	}
	want := []string{"Conv:w_conv", "ConvTranspose:w_up", "MatMul:w_mm", "Gemm:w_fc"}
	if !slices.Equal(got, want) {
		t.Errorf("SelectLayers = %v, want %v", got, want)
	}
}

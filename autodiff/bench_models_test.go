package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// This file builds whole test networks with the graph IR, by hand, for the
// engine's benchmarks and whole-network tests. Anyone in the package may
// use them: coreResNet18 (CIFAR-style ResNet-18) and coreSmallCNN (a few
// layers touching every kernel of the engine core).

// coreNet accumulates a graph under construction.
type coreNet struct {
	g   *graph.Graph
	rng *rand.Rand
	n   int
}

func newCoreNet(seed uint64, input string, shape ...int) *coreNet {
	ty := &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true}
	for _, d := range shape {
		ty.Shape = append(ty.Shape, graph.Dim{Value: int64(d), HasValue: true})
	}
	return &coreNet{
		g:   &graph.Graph{Name: "core", Inputs: []*graph.ValueInfo{{Name: input, Type: ty}}},
		rng: rand.New(rand.NewPCG(seed, 0xc0de)),
	}
}

// model wraps the graph with one output, at opset 13.
func (b *coreNet) model(output string) *graph.Model {
	b.g.Outputs = []*graph.ValueInfo{{Name: output, Type: &graph.Type{IsTensor: true, Elem: tensor.Float32}}}
	return &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Version: 13}}, Graph: b.g}
}

func (b *coreNet) name(prefix string) string {
	b.n++
	return fmt.Sprintf("%s_%d", prefix, b.n)
}

func (b *coreNet) param(prefix string, t *tensor.Tensor) string {
	name := b.name(prefix)
	b.g.Initializers = append(b.g.Initializers, &graph.Initializer{Name: name, Value: t})
	return name
}

// heNormal is a weight tensor with He initialization for fanIn inputs.
func (b *coreNet) heNormal(fanIn int, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	sd := math.Sqrt(2 / float64(fanIn))
	for i := range t.F32 {
		t.F32[i] = float32(b.rng.NormFloat64() * sd)
	}
	return t
}

func (b *coreNet) node(op string, inputs []string, attrs ...*graph.Attribute) string {
	out := b.name(op)
	b.g.Nodes = append(b.g.Nodes, &graph.Node{Name: out, OpType: op, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	return out
}

func (b *coreNet) conv(x string, cin, cout, k, stride, group int, bias bool) string {
	w := b.param("w", b.heNormal(cin/group*k*k, cout, cin/group, k, k))
	in := []string{x, w}
	if bias {
		in = append(in, b.param("b", tensor.New(cout)))
	}
	p := int64(k / 2)
	return b.node("Conv", in, intsAttr("kernel_shape", int64(k), int64(k)), intsAttr("strides", int64(stride), int64(stride)),
		intsAttr("pads", p, p, p, p), intAttr("group", int64(group)))
}

func (b *coreNet) bn(x string, c int) string {
	scale, bias, mean, v := tensor.New(c), tensor.New(c), tensor.New(c), tensor.New(c)
	for i := range c {
		scale.F32[i], v.F32[i] = 1, 1
	}
	return b.node("BatchNormalization", []string{x, b.param("bn_scale", scale), b.param("bn_bias", bias),
		b.param("bn_mean", mean), b.param("bn_var", v)}, floatAttr("epsilon", 1e-5), floatAttr("momentum", 0.9))
}

func (b *coreNet) relu(x string) string { return b.node("Relu", []string{x}) }

func (b *coreNet) fc(x string, cin, cout int) string {
	w := b.param("fc_w", b.heNormal(cin, cout, cin))
	return b.node("Gemm", []string{x, w, b.param("fc_b", tensor.New(cout))}, intAttr("transB", 1))
}

// basicBlock is ResNet's two 3×3 convolutions with an identity or 1×1
// projection shortcut.
func (b *coreNet) basicBlock(x string, cin, cout, stride int) string {
	y := b.relu(b.bn(b.conv(x, cin, cout, 3, stride, 1, false), cout))
	y = b.bn(b.conv(y, cout, cout, 3, 1, 1, false), cout)
	short := x
	if stride != 1 || cin != cout {
		short = b.bn(b.conv(x, cin, cout, 1, stride, 1, false), cout)
	}
	return b.relu(b.node("Add", []string{y, short}))
}

// coreResNet18 is CIFAR-style ResNet-18 (He et al. 2016, as adapted to
// 32×32 inputs by the usual CIFAR recipes): a 3×3 stem with 64 channels and
// no max pooling, four stages of two BasicBlocks with widths 64-128-256-512
// (stride 2 from the second stage), global average pooling and a
// fully-connected layer to classes. Input "input" [batch, 3, 32, 32],
// output "logits" [batch, classes]. About 11.2 M parameters.
func coreResNet18(batch, classes int, seed uint64) *graph.Model {
	b := newCoreNet(seed, "input", batch, 3, 32, 32)
	x := b.relu(b.bn(b.conv("input", 3, 64, 3, 1, 1, false), 64))
	cin := 64
	for s, w := range []int{64, 128, 256, 512} {
		for i := range 2 {
			stride := 1
			if s > 0 && i == 0 {
				stride = 2
			}
			x = b.basicBlock(x, cin, w, stride)
			cin = w
		}
	}
	x = b.node("GlobalAveragePool", []string{x})
	x = b.node("Flatten", []string{x}, intAttr("axis", 1))
	b.fc(x, 512, classes)
	b.g.Nodes[len(b.g.Nodes)-1].Outputs[0] = "logits"
	return b.model("logits")
}

// coreSmallCNN is a small network over [batch, 3, 12, 12] inputs that uses
// every kernel of the engine core with training-relevant attributes: dense,
// strided, grouped and depthwise convolutions (with and without bias),
// BatchNormalization, the activations, max and average pooling (with
// ceil_mode and padding), Dropout, global average pooling, Gemm and MatMul.
// Output "logits" [batch, 5].
func coreSmallCNN(batch int, seed uint64) *graph.Model {
	b := newCoreNet(seed, "input", batch, 3, 12, 12)
	x := b.relu(b.bn(b.conv("input", 3, 8, 3, 1, 1, true), 8))
	x = b.node("MaxPool", []string{x}, intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2), intsAttr("pads", 1, 1, 0, 0), intAttr("ceil_mode", 1))
	x = b.node("HardSwish", []string{b.bn(b.conv(x, 8, 8, 3, 1, 8, false), 8)})                 // depthwise
	x = b.node("LeakyRelu", []string{b.conv(x, 8, 12, 3, 2, 2, true)}, floatAttr("alpha", 0.1)) // grouped, strided
	// Clip-11+ bounds are inputs; as float32 initializers they are
	// trainable parameters too.
	lo, hi := b.param("clip_min", tensor.FromFloat32([]float32{-0.5})), b.param("clip_max", tensor.FromFloat32([]float32{0.5}))
	x = b.node("Clip", []string{b.conv(x, 12, 12, 1, 1, 1, false), lo, hi})
	x = b.node("AveragePool", []string{x}, intsAttr("kernel_shape", 2, 2), intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", 2, 2), intAttr("count_include_pad", 1))
	x = b.node("Sigmoid", []string{x})
	x = b.node("Dropout", []string{x})
	x = b.node("GlobalAveragePool", []string{x})
	x = b.node("Flatten", []string{x}, intAttr("axis", 1))
	x = b.node("HardSigmoid", []string{b.fc(x, 12, 16)})
	w := b.param("mm_w", b.heNormal(16, 16, 5))
	b.node("MatMul", []string{x, w})
	b.g.Nodes[len(b.g.Nodes)-1].Outputs[0] = "logits"
	return b.model("logits")
}

package models

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// builder appends nodes and initializers to a graph under construction and
// hands out unique value names.
type builder struct {
	g     *graph.Graph
	rng   *rand.Rand
	count map[string]int
}

func newBuilder(seed uint64) *builder {
	return &builder{
		g:     &graph.Graph{Name: "main"},
		rng:   rand.New(rand.NewPCG(seed, 0x5eed)),
		count: map[string]int{},
	}
}

// name returns prefix, prefix_1, prefix_2, ... so every name is unique.
func (b *builder) name(prefix string) string {
	n := b.count[prefix]
	b.count[prefix] = n + 1
	if n == 0 {
		return prefix
	}
	return fmt.Sprintf("%s_%d", prefix, n)
}

func (b *builder) init(name string, t *tensor.Tensor) string {
	b.g.Initializers = append(b.g.Initializers, &graph.Initializer{Name: name, Value: t, Encoding: graph.Encoding{RawData: true}})
	return name
}

func (b *builder) node(op, name string, inputs []string, attrs ...*graph.Attribute) string {
	out := name + "_out"
	b.g.Nodes = append(b.g.Nodes, &graph.Node{Name: name, OpType: op, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	return out
}

func ints(name string, v ...int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInts, Ints: v}
}

func intAttr(name string, v int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInt, I: v}
}

func floatAttr(name string, v float32) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrFloat, F: v}
}

// conv adds a bias-free k×k convolution with Kaiming-normal weights
// (fan_out mode, gain √2, as torchvision initializes ResNets: He et al.
// 2015, "Delving Deep into Rectifiers", §2.2).
func (b *builder) conv(x string, cin, cout, k, stride, pad, group int, prefix string) string {
	name := b.name(prefix)
	w := tensor.New(cout, cin/group, k, k)
	std := math.Sqrt(2.0 / float64(cout*k*k/group))
	for i := range w.F32 {
		w.F32[i] = float32(b.rng.NormFloat64() * std)
	}
	wn := b.init(name+".weight", w)
	return b.node("Conv", name, []string{x, wn},
		ints("dilations", 1, 1), intAttr("group", int64(group)),
		ints("kernel_shape", int64(k), int64(k)),
		ints("pads", int64(pad), int64(pad), int64(pad), int64(pad)),
		ints("strides", int64(stride), int64(stride)))
}

// bn adds an inference-form BatchNormalization (γ=1, β=0, running mean 0,
// running variance 1). Training runs it with batch statistics.
func (b *builder) bn(x string, c int, prefix string) string {
	name := b.name(prefix)
	ones := func() *tensor.Tensor {
		t := tensor.New(c)
		for i := range t.F32 {
			t.F32[i] = 1
		}
		return t
	}
	in := []string{
		x,
		b.init(name+".weight", ones()),
		b.init(name+".bias", tensor.New(c)),
		b.init(name+".running_mean", tensor.New(c)),
		b.init(name+".running_var", ones()),
	}
	return b.node("BatchNormalization", name, in, floatAttr("epsilon", 1e-5), floatAttr("momentum", 0.9))
}

func (b *builder) relu(x, prefix string) string {
	return b.node("Relu", b.name(prefix), []string{x})
}

// convBNReLU is the conv → BN → ReLU unit every architecture here uses.
func (b *builder) convBNReLU(x string, cin, cout, k, stride, pad, group int, prefix string) string {
	y := b.conv(x, cin, cout, k, stride, pad, group, prefix+".conv")
	y = b.bn(y, cout, prefix+".bn")
	return b.relu(y, prefix+".relu")
}

func (b *builder) add(x, y, prefix string) string {
	return b.node("Add", b.name(prefix), []string{x, y})
}

// head adds global average pooling, flatten and a fully connected layer
// with PyTorch's default Linear init (U(±1/√fan_in) for weight and bias).
func (b *builder) head(x string, cin, classes int) string {
	y := b.node("GlobalAveragePool", b.name("pool"), []string{x})
	y = b.node("Flatten", b.name("flatten"), []string{y}, intAttr("axis", 1))
	w := tensor.New(classes, cin)
	bias := tensor.New(classes)
	bound := 1 / math.Sqrt(float64(cin))
	for i := range w.F32 {
		w.F32[i] = float32((2*b.rng.Float64() - 1) * bound)
	}
	for i := range bias.F32 {
		bias.F32[i] = float32((2*b.rng.Float64() - 1) * bound)
	}
	wn := b.init("fc.weight", w)
	bn := b.init("fc.bias", bias)
	return b.node("Gemm", "fc", []string{y, wn, bn},
		floatAttr("alpha", 1), floatAttr("beta", 1), intAttr("transB", 1))
}

// normalize adds (x − mean) / std per channel as the model's first nodes,
// so every perturbation downstream tools apply acts on [0,1] pixels.
func (b *builder) normalize(x string, mean, std []float32) string {
	c := len(mean)
	m := tensor.New(1, c, 1, 1)
	s := tensor.New(1, c, 1, 1)
	copy(m.F32, mean)
	copy(s.F32, std)
	y := b.node("Sub", "normalize.sub", []string{x, b.init("normalize.mean", m)})
	return b.node("Div", "normalize.div", []string{y, b.init("normalize.std", s)})
}

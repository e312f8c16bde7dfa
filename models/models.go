package models

import (
	"fmt"
	"math"
	"strings"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Config describes a reference model to build.
type Config struct {
	// Arch is one of Archs().
	Arch string
	// Width multiplies every channel count (1 = the published width).
	Width float64
	// InputSize is the image height and width (32 for CIFAR, 28 for
	// Fashion-MNIST, 64 or 96 for Flowers-102).
	InputSize int
	// InChannels is 3 for RGB, 1 for grayscale.
	InChannels int
	// Classes is the number of output logits.
	Classes int
	// Mean and Std normalize the input inside the model (one value per
	// channel). Nil means 0.5 for every channel.
	Mean, Std []float32
	// Seed seeds the weight initialization.
	Seed uint64
}

// Archs lists the architectures Build knows.
func Archs() []string {
	return []string{"resnet18", "resnet20", "resnet8", "googlenet", "mobilenetv2"}
}

// Build returns a freshly initialized model: opset 17, IR version 8, input
// "input" [N, C, H, W] with a symbolic batch N in [0,1] pixel values, output
// "logits" [N, Classes].
func Build(cfg Config) (*graph.Model, error) {
	if cfg.Width == 0 {
		cfg.Width = 1
	}
	if cfg.InChannels == 0 {
		cfg.InChannels = 3
	}
	if cfg.InputSize == 0 {
		cfg.InputSize = 32
	}
	if cfg.Classes == 0 {
		cfg.Classes = 10
	}
	switch {
	case cfg.Width <= 0 || cfg.Width > 16 || math.IsNaN(cfg.Width):
		return nil, fmt.Errorf("models: width %v out of range (0, 16]", cfg.Width)
	case cfg.InputSize < 8 || cfg.InputSize > 1024:
		return nil, fmt.Errorf("models: input size %d out of range [8, 1024]", cfg.InputSize)
	case cfg.Classes < 2:
		return nil, fmt.Errorf("models: %d classes, need at least 2", cfg.Classes)
	case cfg.InChannels != 1 && cfg.InChannels != 3:
		return nil, fmt.Errorf("models: %d input channels, want 1 or 3", cfg.InChannels)
	}
	if cfg.Mean == nil {
		cfg.Mean = fill(cfg.InChannels, 0.5)
	}
	if cfg.Std == nil {
		cfg.Std = fill(cfg.InChannels, 0.5)
	}
	if len(cfg.Mean) != cfg.InChannels || len(cfg.Std) != cfg.InChannels {
		return nil, fmt.Errorf("models: mean/std have %d/%d values for %d channels", len(cfg.Mean), len(cfg.Std), cfg.InChannels)
	}

	b := newBuilder(cfg.Seed)
	x := b.normalize("input", cfg.Mean, cfg.Std)
	var (
		y   string
		cin int
	)
	switch cfg.Arch {
	case "resnet18":
		y, cin = resnet(b, x, cfg, []int{64, 128, 256, 512}, []int{2, 2, 2, 2})
	case "resnet20":
		y, cin = resnet(b, x, cfg, []int{16, 32, 64}, []int{3, 3, 3})
	case "resnet8":
		y, cin = resnet(b, x, cfg, []int{16, 32, 64}, []int{1, 1, 1})
	case "mobilenetv2":
		y, cin = mobilenetV2(b, x, cfg)
	case "googlenet":
		y, cin = googlenet(b, x, cfg)
	default:
		return nil, fmt.Errorf("models: unknown architecture %q (known: %s)", cfg.Arch, strings.Join(Archs(), ", "))
	}
	logits := b.head(y, cin, cfg.Classes)
	// Rename the head's output to "logits".
	last := b.g.Nodes[len(b.g.Nodes)-1]
	last.Outputs[0] = "logits"
	_ = logits

	batch := graph.Dim{Param: "N", HasParam: true}
	fixed := func(v int) graph.Dim { return graph.Dim{Value: int64(v), HasValue: true} }
	b.g.Inputs = []*graph.ValueInfo{{
		Name: "input",
		Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true,
			Shape: []graph.Dim{batch, fixed(cfg.InChannels), fixed(cfg.InputSize), fixed(cfg.InputSize)}},
	}}
	b.g.Outputs = []*graph.ValueInfo{{
		Name: "logits",
		Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true,
			Shape: []graph.Dim{batch, fixed(cfg.Classes)}},
	}}
	m := &graph.Model{
		IRVersion:       8,
		OpsetImports:    []graph.OpsetImport{{Domain: "", Version: 17}},
		ProducerName:    "csam-onnx",
		ProducerVersion: Version,
		Graph:           b.g,
		Metadata: []graph.StringPair{
			{Key: "csam.arch", Value: cfg.Arch},
			{Key: "csam.width", Value: fmt.Sprint(cfg.Width)},
			{Key: "csam.input_size", Value: fmt.Sprint(cfg.InputSize)},
			{Key: "csam.classes", Value: fmt.Sprint(cfg.Classes)},
			{Key: "csam.init_seed", Value: fmt.Sprint(cfg.Seed)},
		},
	}
	return m, nil
}

// Version is the tool version recorded in models this package writes.
const Version = "0.1.0"

func fill(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// ch scales a published channel count by the width multiplier.
func ch(c int, w float64) int {
	v := int(math.Round(float64(c) * w))
	if v < 4 {
		v = 4
	}
	return v
}

// resnet builds a CIFAR-style ResNet (He et al. 2016): a 3×3 stem with no
// max-pool, then stages of BasicBlocks (two 3×3 convs), the first block of
// each stage after the first with stride 2, and a 1×1 conv + BN projection
// shortcut where the shape changes. widths[0] is also the stem width.
func resnet(b *builder, x string, cfg Config, widths, blocks []int) (string, int) {
	cin := ch(widths[0], cfg.Width)
	y := b.convBNReLU(x, cfg.InChannels, cin, 3, 1, 1, 1, "stem")
	for s, w := range widths {
		cout := ch(w, cfg.Width)
		for i := 0; i < blocks[s]; i++ {
			stride := 1
			if i == 0 && s > 0 {
				stride = 2
			}
			p := fmt.Sprintf("layer%d.%d", s+1, i)
			h := b.convBNReLU(y, cin, cout, 3, stride, 1, 1, p+".a")
			h = b.conv(h, cout, cout, 3, 1, 1, 1, p+".b.conv")
			h = b.bn(h, cout, p+".b.bn")
			short := y
			if stride != 1 || cin != cout {
				short = b.conv(y, cin, cout, 1, stride, 0, 1, p+".shortcut.conv")
				short = b.bn(short, cout, p+".shortcut.bn")
			}
			y = b.relu(b.add(h, short, p+".add"), p+".relu")
			cin = cout
		}
	}
	return y, cin
}

// mobilenetV2 builds the CIFAR variant of MobileNet-V2 (Sandler et al.
// 2018) as commonly used for 32×32 inputs: a stride-1 3×3 stem of 32
// channels, and the first two strided stages of the ImageNet model run at
// stride 1. Inverted residual blocks: 1×1 expand → ReLU → 3×3 depthwise →
// ReLU → 1×1 project (linear), with an identity shortcut where stride is 1
// and channels match. ReLU is used in place of ReLU6.
func mobilenetV2(b *builder, x string, cfg Config) (string, int) {
	type stage struct{ t, c, n, s int }
	stages := []stage{{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}
	cin := ch(32, cfg.Width)
	y := b.convBNReLU(x, cfg.InChannels, cin, 3, 1, 1, 1, "stem")
	for si, st := range stages {
		cout := ch(st.c, cfg.Width)
		for i := 0; i < st.n; i++ {
			stride := 1
			if i == 0 {
				stride = st.s
			}
			p := fmt.Sprintf("block%d.%d", si+1, i)
			hid := cin * st.t
			h := y
			if st.t != 1 {
				h = b.convBNReLU(h, cin, hid, 1, 1, 0, 1, p+".expand")
			}
			h = b.convBNReLU(h, hid, hid, 3, stride, 1, hid, p+".dw")
			h = b.conv(h, hid, cout, 1, 1, 0, 1, p+".project.conv")
			h = b.bn(h, cout, p+".project.bn")
			if stride == 1 && cin == cout {
				h = b.add(h, y, p+".add")
			}
			y = h
			cin = cout
		}
	}
	last := ch(1280, cfg.Width)
	y = b.convBNReLU(y, cin, last, 1, 1, 0, 1, "last")
	return y, last
}

// googlenet builds the CIFAR variant of GoogLeNet (Szegedy et al. 2015) as
// commonly used for 32×32 inputs: a 3×3 stem of 192 channels, Inception
// modules 3a–5b with the 5×5 branch as two 3×3 convs, max-pools (3, stride
// 2, pad 1) after 3b and 4e, and no auxiliary classifiers.
func googlenet(b *builder, x string, cfg Config) (string, int) {
	w := cfg.Width
	cin := ch(192, w)
	y := b.convBNReLU(x, cfg.InChannels, cin, 3, 1, 1, 1, "stem")
	type inc struct{ n1, n3r, n3, n5r, n5, pool int }
	mods := []struct {
		name string
		c    inc
		pool bool
	}{
		{"a3", inc{64, 96, 128, 16, 32, 32}, false},
		{"b3", inc{128, 128, 192, 32, 96, 64}, true},
		{"a4", inc{192, 96, 208, 16, 48, 64}, false},
		{"b4", inc{160, 112, 224, 24, 64, 64}, false},
		{"c4", inc{128, 128, 256, 24, 64, 64}, false},
		{"d4", inc{112, 144, 288, 32, 64, 64}, false},
		{"e4", inc{256, 160, 320, 32, 128, 128}, true},
		{"a5", inc{256, 160, 320, 32, 128, 128}, false},
		{"b5", inc{384, 192, 384, 48, 128, 128}, false},
	}
	for _, m := range mods {
		p := "inception" + m.name
		c := m.c
		b1 := b.convBNReLU(y, cin, ch(c.n1, w), 1, 1, 0, 1, p+".b1")
		b2 := b.convBNReLU(y, cin, ch(c.n3r, w), 1, 1, 0, 1, p+".b2a")
		b2 = b.convBNReLU(b2, ch(c.n3r, w), ch(c.n3, w), 3, 1, 1, 1, p+".b2b")
		b3 := b.convBNReLU(y, cin, ch(c.n5r, w), 1, 1, 0, 1, p+".b3a")
		b3 = b.convBNReLU(b3, ch(c.n5r, w), ch(c.n5, w), 3, 1, 1, 1, p+".b3b")
		b3 = b.convBNReLU(b3, ch(c.n5, w), ch(c.n5, w), 3, 1, 1, 1, p+".b3c")
		b4 := b.node("MaxPool", b.name(p+".b4pool"), []string{y},
			ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1), ints("strides", 1, 1))
		b4 = b.convBNReLU(b4, cin, ch(c.pool, w), 1, 1, 0, 1, p+".b4")
		y = b.node("Concat", b.name(p+".concat"), []string{b1, b2, b3, b4}, intAttr("axis", 1))
		cin = ch(c.n1, w) + ch(c.n3, w) + ch(c.n5, w) + ch(c.pool, w)
		if m.pool {
			y = b.node("MaxPool", b.name(p+".pool"), []string{y},
				ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1), ints("strides", 2, 2))
		}
	}
	return y, cin
}

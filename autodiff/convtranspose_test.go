package autodiff

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// convTransposeCase is one ConvTranspose configuration: X and W shapes,
// attributes, the expected output shape, and the begin pads and output
// size the reference uses.
type convTransposeCase struct {
	name      string
	x, w      []int
	bias      bool
	attrs     []*graph.Attribute
	wantY     []int
	padBeg    []int
	stride    []int
	dil       []int
	group     int
	takesDWS2 bool // the inner convolution runs on the stride-2 depthwise planes path
}

func convTransposeCases() []convTransposeCase {
	return []convTransposeCase{
		{name: "3x3", x: []int{2, 3, 4, 5}, w: []int{3, 2, 3, 3}, bias: true,
			wantY: []int{2, 2, 6, 7}, padBeg: []int{0, 0}},
		{name: "stride2-pads-output-padding", x: []int{2, 2, 3, 4}, w: []int{2, 3, 3, 3},
			attrs: []*graph.Attribute{intsAttr("strides", 2, 2), intsAttr("pads", 1, 0, 0, 1), intsAttr("output_padding", 1, 1)},
			wantY: []int{2, 3, 7, 9}, padBeg: []int{1, 0}, stride: []int{2, 2}},
		{name: "group2-dilation2", x: []int{1, 4, 5, 4}, w: []int{4, 3, 3, 2}, bias: true,
			attrs: []*graph.Attribute{intAttr("group", 2), intsAttr("dilations", 2, 1)},
			wantY: []int{1, 6, 9, 5}, padBeg: []int{0, 0}, dil: []int{2, 1}, group: 2},
		{name: "depthwise-s2-4x4-to-8x8", x: []int{2, 5, 4, 4}, w: []int{5, 1, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intAttr("group", 5), intsAttr("strides", 2, 2), intsAttr("pads", 1, 1, 1, 1), intsAttr("output_padding", 1, 1)},
			wantY: []int{2, 5, 8, 8}, padBeg: []int{1, 1}, stride: []int{2, 2}, group: 5, takesDWS2: true},
		{name: "output-shape-past-reach", x: []int{1, 1, 3, 3}, w: []int{1, 2, 3, 3},
			attrs: []*graph.Attribute{intsAttr("strides", 3, 2), intsAttr("output_shape", 10, 8)},
			wantY: []int{1, 2, 10, 8}, padBeg: []int{0, 0}, stride: []int{3, 2}},
		{name: "same-upper", x: []int{1, 2, 3, 3}, w: []int{2, 2, 3, 3},
			attrs: []*graph.Attribute{stringAttr("auto_pad", "SAME_UPPER"), intsAttr("strides", 2, 2)},
			wantY: []int{1, 2, 6, 6}, padBeg: []int{0, 0}, stride: []int{2, 2}},
		{name: "same-lower", x: []int{1, 2, 3, 3}, w: []int{2, 2, 3, 3},
			attrs: []*graph.Attribute{stringAttr("auto_pad", "SAME_LOWER"), intsAttr("strides", 2, 2)},
			wantY: []int{1, 2, 6, 6}, padBeg: []int{1, 1}, stride: []int{2, 2}},
		{name: "1d", x: []int{2, 3, 5}, w: []int{3, 4, 3}, bias: true,
			attrs: []*graph.Attribute{intsAttr("strides", 2), intsAttr("pads", 1, 1)},
			wantY: []int{2, 4, 9}, padBeg: []int{1}, stride: []int{2}},
	}
}

// refConvTranspose is the float64 definition: every input pixel i of
// channel c scatters x·w into output pixel i·stride + k·dilation - padBeg
// of each of its group's output channels (1-D or 2-D).
func refConvTranspose(x, w, b *tensor.Tensor, yShape, padBeg, stride, dil []int, group int) []float64 {
	if group == 0 {
		group = 1
	}
	nd := len(x.Shape) - 2
	at := func(v []int, i, def int) int {
		if v == nil {
			return def
		}
		return v[i]
	}
	// As 2-D: a 1-D case has height 1.
	h, wd, oh, ow, kh, kw := 1, x.Shape[2], 1, yShape[2], 1, w.Shape[2]
	sh, sw, dh, dw, ph, pw := 1, at(stride, 0, 1), 1, at(dil, 0, 1), 0, padBeg[0]
	if nd == 2 {
		h, wd, oh, ow, kh, kw = x.Shape[2], x.Shape[3], yShape[2], yShape[3], w.Shape[2], w.Shape[3]
		sh, sw, dh, dw, ph, pw = at(stride, 0, 1), at(stride, 1, 1), at(dil, 0, 1), at(dil, 1, 1), padBeg[0], padBeg[1]
	}
	n, c, m := x.Shape[0], x.Shape[1], yShape[1]
	cg, mg := c/group, m/group
	y := make([]float64, tensor.Numel(yShape))
	for s := range n {
		for ci := range c {
			g := ci / cg
			for mo := range mg {
				oc := g*mg + mo
				for i := range h {
					for j := range wd {
						xv := float64(x.F32[((s*c+ci)*h+i)*wd+j])
						for a := range kh {
							for bb := range kw {
								yi, yj := i*sh+a*dh-ph, j*sw+bb*dw-pw
								if yi < 0 || yi >= oh || yj < 0 || yj >= ow {
									continue
								}
								y[((s*m+oc)*oh+yi)*ow+yj] += xv * float64(w.F32[((ci*mg+mo)*kh+a)*kw+bb])
							}
						}
					}
				}
			}
		}
	}
	if b != nil {
		for i := range y {
			y[i] += float64(b.F32[(i/(oh*ow))%m])
		}
	}
	return y
}

// TestConvTransposeMatchesReference compares ConvTranspose's output shape
// and values with the float64 definition.
func TestConvTransposeMatchesReference(t *testing.T) {
	_, haveDW := tensor.NewDepthwise3x3(&tensor.Window{H: 8, W: 8, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, OH: 8, OW: 8})
	for _, tc := range convTransposeCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 11))
			x, w := randomTensor(rng, tc.x...), randomTensor(rng, tc.w...)
			inputs := []*tensor.Tensor{x, w}
			var b *tensor.Tensor
			if tc.bias {
				b = randomTensor(rng, tc.wantY[1])
				inputs = append(inputs, b)
			}
			node := newTestNode("ConvTranspose", len(inputs), 1, tc.attrs...)
			kern, _ := setupKernel(t, node, 17, inputs, nil)
			if got := kern.(*convTransposeKernel).inner.dwS2 != nil; got != (tc.takesDWS2 && haveDW) {
				t.Errorf("inner convolution on the stride-2 depthwise path: %v, want %v", got, tc.takesDWS2)
			}
			out, err := runKernel(node, 17, inputs...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out[0].Shape, tc.wantY) {
				t.Fatalf("output shape %v, want %v", out[0].Shape, tc.wantY)
			}
			want := refConvTranspose(x, w, b, tc.wantY, tc.padBeg, tc.stride, tc.dil, tc.group)
			for i, v := range out[0].F32 {
				if math.Abs(float64(v)-want[i]) > 1e-5 {
					t.Fatalf("y[%d] = %v, want %v", i, v, want[i])
				}
			}
		})
	}
}

// TestConvTransposeGradients checks dX, dW and dB against finite
// differences (gradCheck adds into pre-filled gradients: the path that
// adds dX through dxTmp).
func TestConvTransposeGradients(t *testing.T) {
	for _, tc := range convTransposeCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(12, 12))
			inputs := []*tensor.Tensor{randomTensor(rng, tc.x...), randomTensor(rng, tc.w...)}
			wrt := []int{0, 1}
			if tc.bias {
				inputs = append(inputs, randomTensor(rng, tc.wantY[1]))
				wrt = append(wrt, 2)
			}
			gradCheck(t, newTestNode("ConvTranspose", len(inputs), 1, tc.attrs...), 17, inputs, wrt, 0)
		})
	}
}

// TestConvTransposeFreshDX checks that a fresh dX is assigned whole: a
// buffer poisoned with NaN gets exactly the gradient that a zeroed buffer
// accumulates.
func TestConvTransposeFreshDX(t *testing.T) {
	for _, tc := range convTransposeCases() {
		rng := rand.New(rand.NewPCG(13, 13))
		x, w := randomTensor(rng, tc.x...), randomTensor(rng, tc.w...)
		node := newTestNode("ConvTranspose", 2, 1, tc.attrs...)
		kern, outs := setupKernel(t, node, 17, []*tensor.Tensor{x, w}, nil)
		y, dy := tensor.New(outs[0].Shape...), randomTensor(rng, outs[0].Shape...)
		grad := func(fresh bool, fill float32) []float32 {
			dx := tensor.New(tc.x...)
			for i := range dx.F32 {
				dx.F32[i] = fill
			}
			ctx := &RunContext{Workers: 2, Fresh: []bool{fresh}}
			if err := kern.Forward(ctx, []*tensor.Tensor{x, w}, []*tensor.Tensor{y}); err != nil {
				t.Fatal(err)
			}
			if err := kern.Backward(ctx, []*tensor.Tensor{x, w}, []*tensor.Tensor{y}, []*tensor.Tensor{dy}, []*tensor.Tensor{dx, nil}); err != nil {
				t.Fatal(err)
			}
			return dx.F32
		}
		want, got := grad(false, 0), grad(true, float32(math.NaN()))
		if !slices.Equal(math32Bits(got), math32Bits(want)) {
			t.Errorf("%s: fresh dX differs from dX added into zeros:\n got %v\nwant %v", tc.name, got, want)
		}
	}
}

// TestConvTransposeBadAttributes: attributes that give no output, or one
// the convolution cannot map back, are refused with the reason.
func TestConvTransposeBadAttributes(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	x, w := randomTensor(rng, 1, 2, 3, 3), randomTensor(rng, 2, 2, 3, 3)
	for _, c := range []struct {
		attrs []*graph.Attribute
		want  string
	}{
		{[]*graph.Attribute{intsAttr("strides", 2, 2), intsAttr("output_padding", 2, 0)}, "output_padding"},
		{[]*graph.Attribute{intsAttr("pads", 3, 3, 3, 3)}, "leave no output"},
		{[]*graph.Attribute{intsAttr("output_shape", 4, 4, 4)}, "output_shape"},
		{[]*graph.Attribute{stringAttr("auto_pad", "SAME_UPPER"), intsAttr("output_shape", 7, 7)}, "before the first"},
		{[]*graph.Attribute{stringAttr("auto_pad", "MIDDLE")}, "auto_pad"},
		{[]*graph.Attribute{intsAttr("kernel_shape", 2, 2)}, "kernel_shape"},
	} {
		_, _, err := trySetupKernel(newTestNode("ConvTranspose", 2, 1, c.attrs...), 17, []*tensor.Tensor{x, w}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("attributes %v: error %v, want one naming %q", c.attrs, err, c.want)
		}
	}
}

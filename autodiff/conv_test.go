package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// coreConvCase is one Conv configuration of the tests.
type coreConvCase struct {
	name   string
	x, w   []int // input and weight shapes
	bias   bool
	attrs  []*graph.Attribute
	wantY  []int // expected output shape
	padBeg []int // the begin padding the case implies (for the reference)
	stride []int
	dil    []int
	group  int
}

func coreConvCases() []coreConvCase {
	return []coreConvCase{
		{name: "3x3-pad1", x: []int{2, 3, 5, 5}, w: []int{4, 3, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intsAttr("pads", 1, 1, 1, 1)}, wantY: []int{2, 4, 5, 5}, padBeg: []int{1, 1}},
		{name: "stride2-asympad", x: []int{2, 2, 6, 7}, w: []int{3, 2, 3, 2},
			attrs: []*graph.Attribute{intsAttr("strides", 2, 2), intsAttr("pads", 1, 0, 0, 1)}, wantY: []int{2, 3, 3, 4}, padBeg: []int{1, 0}, stride: []int{2, 2}},
		{name: "dilation2", x: []int{1, 2, 7, 6}, w: []int{2, 2, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intsAttr("dilations", 2, 2), intsAttr("pads", 2, 1, 2, 1)}, wantY: []int{1, 2, 7, 4}, padBeg: []int{2, 1}, dil: []int{2, 2}},
		{name: "group2", x: []int{2, 4, 5, 5}, w: []int{6, 2, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intAttr("group", 2), intsAttr("pads", 1, 1, 1, 1)}, wantY: []int{2, 6, 5, 5}, padBeg: []int{1, 1}, group: 2},
		{name: "depthwise", x: []int{2, 3, 6, 6}, w: []int{3, 1, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intAttr("group", 3), intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", 2, 2)}, wantY: []int{2, 3, 3, 3}, padBeg: []int{1, 1}, stride: []int{2, 2}, group: 3},
		// Shapes that take the direct convolution where the CPU has it:
		// forward, dX and dW direct; forward and dX direct, dW through
		// im2col (fewer than 256 output pixels); only dX direct (the
		// output is 14 wide, the input 16).
		{name: "direct-all", x: []int{2, 2, 16, 16}, w: []int{3, 2, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intsAttr("pads", 1, 1, 1, 1)}, wantY: []int{2, 3, 16, 16}, padBeg: []int{1, 1}},
		{name: "direct-8wide", x: []int{2, 3, 4, 8}, w: []int{7, 3, 3, 3},
			attrs: []*graph.Attribute{intsAttr("pads", 1, 1, 1, 1)}, wantY: []int{2, 7, 4, 8}, padBeg: []int{1, 1}},
		{name: "direct-dx-only", x: []int{1, 2, 5, 16}, w: []int{3, 2, 3, 3},
			wantY: []int{1, 3, 3, 14}, padBeg: []int{0, 0}},
		{name: "depthwise-3x3-s1", x: []int{2, 3, 6, 11}, w: []int{3, 1, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intAttr("group", 3), intsAttr("pads", 1, 1, 1, 1)}, wantY: []int{2, 3, 6, 11}, padBeg: []int{1, 1}, group: 3},
		{name: "depthwise-3x3-multiplier2-asympad", x: []int{1, 2, 5, 9}, w: []int{4, 1, 3, 3},
			attrs: []*graph.Attribute{intAttr("group", 2), intsAttr("pads", 2, 0, 0, 1)}, wantY: []int{1, 4, 5, 8}, padBeg: []int{2, 0}, group: 2},
		{name: "depthwise-3x3-nopad", x: []int{2, 2, 4, 12}, w: []int{2, 1, 3, 3},
			attrs: []*graph.Attribute{intAttr("group", 2)}, wantY: []int{2, 2, 2, 10}, padBeg: []int{0, 0}, group: 2},
		{name: "depthwise-multiplier2-dilated", x: []int{1, 2, 6, 5}, w: []int{4, 1, 2, 3},
			attrs: []*graph.Attribute{intAttr("group", 2), intsAttr("dilations", 2, 1)}, wantY: []int{1, 4, 4, 3}, padBeg: []int{0, 0}, dil: []int{2, 1}, group: 2},
		// Strided depthwise convolutions run on phase-split planes.
		{name: "depthwise-s2-multiplier2-asympad", x: []int{2, 2, 7, 9}, w: []int{4, 1, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intAttr("group", 2), intsAttr("strides", 2, 2), intsAttr("pads", 1, 0, 0, 2)}, wantY: []int{2, 4, 3, 5}, padBeg: []int{1, 0}, stride: []int{2, 2}, group: 2},
		{name: "depthwise-s3x2-dilated-5x4", x: []int{1, 3, 11, 10}, w: []int{3, 1, 5, 4},
			attrs: []*graph.Attribute{intAttr("group", 3), intsAttr("strides", 2, 3), intsAttr("dilations", 1, 2), intsAttr("pads", 2, 3, 1, 1)}, wantY: []int{1, 3, 5, 3}, padBeg: []int{2, 3}, stride: []int{2, 3}, dil: []int{1, 2}, group: 3},
		// Stride 2 over 8×8 and 4×4 planes: the stride-1 many-planes
		// kernel, subsampled (dwStride2).
		{name: "depthwise-s2-8x8", x: []int{2, 5, 8, 8}, w: []int{5, 1, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intAttr("group", 5), intsAttr("strides", 2, 2), intsAttr("pads", 1, 1, 1, 1)}, wantY: []int{2, 5, 4, 4}, padBeg: []int{1, 1}, stride: []int{2, 2}, group: 5},
		{name: "depthwise-s2-4x4-pads-top-left", x: []int{3, 2, 4, 4}, w: []int{2, 1, 3, 3},
			attrs: []*graph.Attribute{intAttr("group", 2), intsAttr("strides", 2, 2), intsAttr("pads", 1, 1, 0, 0)}, wantY: []int{3, 2, 2, 2}, padBeg: []int{1, 1}, stride: []int{2, 2}, group: 2},
		{name: "1x1-direct", x: []int{2, 3, 4, 5}, w: []int{5, 3, 1, 1}, bias: true,
			wantY: []int{2, 5, 4, 5}, padBeg: []int{0, 0}},
		{name: "1x1-stride2", x: []int{3, 3, 4, 4}, w: []int{2, 3, 1, 1},
			attrs: []*graph.Attribute{intsAttr("strides", 2, 2)}, wantY: []int{3, 2, 2, 2}, padBeg: []int{0, 0}, stride: []int{2, 2}},
		{name: "same-upper", x: []int{2, 2, 5, 6}, w: []int{3, 2, 3, 4},
			attrs: []*graph.Attribute{stringAttr("auto_pad", "SAME_UPPER"), intsAttr("strides", 2, 2)}, wantY: []int{2, 3, 3, 3}, padBeg: []int{1, 1}, stride: []int{2, 2}},
		{name: "same-lower", x: []int{1, 2, 5, 6}, w: []int{2, 2, 2, 2},
			attrs: []*graph.Attribute{stringAttr("auto_pad", "SAME_LOWER")}, wantY: []int{1, 2, 5, 6}, padBeg: []int{1, 1}},
		{name: "valid", x: []int{2, 2, 5, 6}, w: []int{2, 2, 3, 3},
			attrs: []*graph.Attribute{stringAttr("auto_pad", "VALID"), intsAttr("strides", 2, 2)}, wantY: []int{2, 2, 2, 2}, padBeg: []int{0, 0}, stride: []int{2, 2}},
		{name: "1d", x: []int{2, 3, 9}, w: []int{4, 3, 3}, bias: true,
			attrs: []*graph.Attribute{intsAttr("pads", 1, 2), intsAttr("strides", 2)}, wantY: []int{2, 4, 5}, padBeg: []int{1}, stride: []int{2}},
	}
}

// coreRefConv is a float64 direct convolution (1-D or 2-D) for reference.
func coreRefConv(x, w, b *tensor.Tensor, yShape, padBeg, stride, dil []int, group int) []float64 {
	if group == 0 {
		group = 1
	}
	x4, w4, y4 := coreAs4D(x.Shape), coreAs4D(w.Shape), coreAs4D(yShape)
	pb := coreAs2(padBeg, 0)
	st := coreAs2(stride, 1)
	dl := coreAs2(dil, 1)
	n, c, h, wd := x4[0], x4[1], x4[2], x4[3]
	m, cg, kh, kw := w4[0], w4[1], w4[2], w4[3]
	oh, ow := y4[2], y4[3]
	mg := m / group
	y := make([]float64, n*m*oh*ow)
	for in := range n {
		for om := range m {
			g := om / mg
			for i := range oh {
				for j := range ow {
					var s float64
					if b != nil {
						s = float64(b.F32[om])
					}
					for ci := range cg {
						cc := g*cg + ci
						for p := range kh {
							for q := range kw {
								ih := i*st[0] - pb[0] + p*dl[0]
								iw := j*st[1] - pb[1] + q*dl[1]
								if ih < 0 || ih >= h || iw < 0 || iw >= wd {
									continue
								}
								s += float64(x.F32[((in*c+cc)*h+ih)*wd+iw]) * float64(w.F32[((om*cg+ci)*kh+p)*kw+q])
							}
						}
					}
					y[((in*m+om)*oh+i)*ow+j] = s
				}
			}
		}
	}
	_ = n
	return y
}

// coreAs4D views a rank-3 (1-D conv) shape as rank 4 with height 1.
func coreAs4D(s []int) []int {
	if len(s) == 3 {
		return []int{s[0], s[1], 1, s[2]}
	}
	return s
}

// coreAs2 pads a per-axis attribute of a 1-D case to 2 axes.
func coreAs2(v []int, def int) []int {
	switch len(v) {
	case 0:
		return []int{def, def}
	case 1:
		return []int{def, v[0]}
	}
	return v
}

func TestConvForwardMatchesReference(t *testing.T) {
	for _, tc := range coreConvCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 7))
			x, w := randomTensor(rng, tc.x...), randomTensor(rng, tc.w...)
			inputs := []*tensor.Tensor{x, w}
			var b *tensor.Tensor
			nIn := 2
			if tc.bias {
				b = randomTensor(rng, tc.w[0])
				inputs = append(inputs, b)
				nIn = 3
			}
			out, err := runKernel(newTestNode("Conv", nIn, 1, tc.attrs...), 13, inputs...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out[0].Shape, tc.wantY) {
				t.Fatalf("Conv output shape = %v, want %v", out[0].Shape, tc.wantY)
			}
			want := coreRefConv(x, w, b, tc.wantY, tc.padBeg, tc.stride, tc.dil, tc.group)
			for i, v := range out[0].F32 {
				// float32 sums of at most 27 products of values in [-1, 1).
				if math.Abs(float64(v)-want[i]) > 1e-5 {
					t.Fatalf("y[%d] = %v, want %v", i, v, want[i])
				}
			}
		})
	}
}

func TestConvGradients(t *testing.T) {
	for _, tc := range coreConvCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, 8))
			inputs := []*tensor.Tensor{randomTensor(rng, tc.x...), randomTensor(rng, tc.w...)}
			wrt := []int{0, 1}
			if tc.bias {
				inputs = append(inputs, randomTensor(rng, tc.w[0]))
				wrt = append(wrt, 2)
			}
			gradCheck(t, newTestNode("Conv", len(inputs), 1, tc.attrs...), 13, inputs, wrt, 0)
		})
	}
}

// TestConvChunkedBatch covers the path where one GEMM spans several
// samples (small output planes) and the multi-group dW reduction.
func TestConvChunkedBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	// 2×2 output planes: 64 samples per chunk would exceed N, so 3 chunks
	// need N > 64; use 130 samples of 1 channel: chunks of 64, 64, 2.
	x := randomTensor(rng, 130, 1, 2, 2)
	w := randomTensor(rng, 2, 1, 1, 1)
	inputs := []*tensor.Tensor{x, w}
	node := newTestNode("Conv", 2, 1)
	out, err := runKernel(node, 13, inputs...)
	if err != nil {
		t.Fatal(err)
	}
	want := coreRefConv(x, w, nil, []int{130, 2, 2, 2}, nil, nil, nil, 1)
	for i, v := range out[0].F32 {
		if math.Abs(float64(v)-want[i]) > 1e-6 {
			t.Fatalf("y[%d] = %v, want %v", i, v, want[i])
		}
	}
	// The loss sums 1040 outputs; its float32 rounding noise divided by the
	// step is larger than for the small cases, still well below 1e-2 while
	// a wrong gradient is off by O(1).
	gradCheck(t, node, 13, inputs, []int{1}, 1e-2)
}

func TestConvSetupErrors(t *testing.T) {
	tests := []struct {
		name  string
		x, w  []int
		attrs []*graph.Attribute
	}{
		{"channels", []int{1, 3, 5, 5}, []int{2, 2, 3, 3}, nil},
		{"group", []int{1, 3, 5, 5}, []int{2, 1, 3, 3}, []*graph.Attribute{intAttr("group", 2)}},
		{"4d", []int{1, 1, 3, 3, 3, 3}, []int{1, 1, 1, 1, 1, 1}, nil},
		{"empty-output", []int{1, 1, 2, 2}, []int{1, 1, 3, 3}, nil},
		{"pads-length", []int{1, 1, 5, 5}, []int{1, 1, 3, 3}, []*graph.Attribute{intsAttr("pads", 1, 1)}},
		{"kernel-shape", []int{1, 1, 5, 5}, []int{1, 1, 3, 3}, []*graph.Attribute{intsAttr("kernel_shape", 2, 2)}},
		{"auto-pad", []int{1, 1, 5, 5}, []int{1, 1, 3, 3}, []*graph.Attribute{stringAttr("auto_pad", "SAME")}},
		{"zero-stride", []int{1, 1, 5, 5}, []int{1, 1, 3, 3}, []*graph.Attribute{intsAttr("strides", 0, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := trySetupKernel(newTestNode("Conv", 2, 1, tt.attrs...), 13,
				[]*tensor.Tensor{tensor.New(tt.x...), tensor.New(tt.w...)}, nil)
			if err == nil {
				t.Fatalf("Conv setup with x %v, w %v, attrs %v: no error", tt.x, tt.w, fmt.Sprint(tt.attrs))
			}
		})
	}
}

func TestConv3DGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	inputs := []*tensor.Tensor{randomTensor(rng, 2, 4, 3, 4, 5), randomTensor(rng, 4, 2, 2, 3, 2), randomTensor(rng, 4)}
	node := newTestNode("Conv", 3, 1, intAttr("group", 2), intsAttr("pads", 1, 0, 1, 0, 1, 1), intsAttr("strides", 1, 2, 2), intsAttr("dilations", 2, 1, 1))
	out, err := runKernel(node, 13, inputs...)
	if err != nil {
		t.Fatal(err)
	}
	// D: (3+1-3)/1+1 = 2; H: (4+1-3)/2+1 = 2; W: (5+2-2)/2+1 = 3.
	if want := []int{2, 4, 2, 2, 3}; !slices.Equal(out[0].Shape, want) {
		t.Fatalf("3-D Conv shape = %v, want %v", out[0].Shape, want)
	}
	gradCheck(t, node, 13, inputs, []int{0, 1, 2}, 0)
}

// TestConvTransposedPathMatchesCol2im compares the two ways the kernel
// computes dX for stride-1 convolutions: im2col of dY with flipped weights
// (the default) and GEMM + col2im.
func TestConvTransposedPathMatchesCol2im(t *testing.T) {
	tests := []struct {
		name  string
		x, w  []int
		attrs []*graph.Attribute
	}{
		{"one-sample-chunks", []int{2, 3, 16, 17}, []int{4, 3, 3, 3}, []*graph.Attribute{intsAttr("pads", 1, 1, 1, 1)}},
		{"multi-sample-chunks", []int{5, 4, 6, 6}, []int{6, 2, 3, 3}, []*graph.Attribute{intsAttr("pads", 1, 0, 2, 1), intAttr("group", 2)}},
		{"dilated-1d", []int{3, 2, 20}, []int{3, 2, 3}, []*graph.Attribute{intsAttr("dilations", 2), intsAttr("pads", 3, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 21))
			in := []*tensor.Tensor{randomTensor(rng, tt.x...), randomTensor(rng, tt.w...)}
			dxs := [2]*tensor.Tensor{tensor.New(tt.x...), tensor.New(tt.x...)}
			// Same dY for both paths.
			dy := randomTensor(rng, coreConvOutShape(t, tt.attrs, in)...)
			for i, transposed := range []bool{true, false} {
				kern, _ := setupKernel(t, newTestNode("Conv", 2, 1, tt.attrs...), 13, in, nil)
				if !kern.(*convKernel).transposed {
					t.Fatal("the case does not take the transposed path")
				}
				kern.(*convKernel).transposed = transposed
				if err := kern.Backward(&RunContext{Workers: 2}, in, nil, []*tensor.Tensor{dy}, []*tensor.Tensor{dxs[i], nil}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range dxs[0].F32 {
				// Sums of up to 54 products of values in [-1, 1) in two orders.
				if d := math.Abs(float64(dxs[0].F32[i] - dxs[1].F32[i])); d > 1e-5 {
					t.Fatalf("dX[%d] = %v (transposed), %v (col2im)", i, dxs[0].F32[i], dxs[1].F32[i])
				}
			}
		})
	}
}

func coreConvOutShape(t *testing.T, attrs []*graph.Attribute, in []*tensor.Tensor) []int {
	_, outs := setupKernel(t, newTestNode("Conv", 2, 1, attrs...), 13, in, nil)
	return outs[0].Shape
}

// TestDepthwiseWeightGradBlocks: the depthwise weight gradient over
// blocks of filters gives the same bits as one filter at a time (the
// former loops, below) on the 3×3 kernel's path and the phase-split path
// (stride 2), with channel multipliers 1 and 2, 1 and 3 workers, and
// blocks of every size from one filter to all.
func TestDepthwiseWeightGradBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, c := range []struct {
		name   string
		x, w   []int
		stride int64
	}{
		{"3x3", []int{5, 6, 8, 8}, []int{6, 1, 3, 3}, 1},
		{"3x3-mult2", []int{3, 4, 4, 4}, []int{8, 1, 3, 3}, 1},
		{"stride2", []int{5, 6, 9, 9}, []int{6, 1, 3, 3}, 2},
		{"stride2-mult2", []int{3, 4, 8, 8}, []int{8, 1, 3, 3}, 2},
	} {
		x, w := randomTensor(rng, c.x...), randomTensor(rng, c.w...)
		node := newTestNode("Conv", 2, 1, intAttr("group", int64(c.x[1])), intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", c.stride, c.stride))
		kern, outs := setupKernel(t, node, 17, []*tensor.Tensor{x, w}, nil)
		k := kern.(*convKernel)
		switch {
		case c.stride == 1 && k.dw3 == nil:
			// The 3×3 kernel is assembly; a purego build has none.
			t.Logf("%s: no 3×3 depthwise kernel in this build, case not run", c.name)
			continue
		case c.stride == 2 && (k.dw3 != nil || k.phaseSize() == 0):
			t.Fatalf("%s: not on the phase-split path (dw3 %v, phase %d)", c.name, k.dw3 != nil, k.phaseSize())
		}
		dy := randomTensor(rng, outs[0].Shape...)
		for _, workers := range []int{1, 3} {
			ctx := &RunContext{Workers: workers}
			want := make([]float32, len(w.F32))
			for i := range want {
				want[i] = 0.5
			}
			depthwiseWeightGradPerFilter(k, ctx, x.F32, dy.F32, want)
			saved := depthwiseBlocksPerWorker
			for _, per := range []int{1, 2, c.w[0]} {
				depthwiseBlocksPerWorker = per
				got := make([]float32, len(w.F32))
				for i := range got {
					got[i] = 0.5
				}
				k.depthwiseBackward(ctx, x.F32, w.F32, dy.F32, nil, got, false)
				if !slices.Equal(math32Bits(want), math32Bits(got)) {
					t.Errorf("%s, %d workers, %d blocks per worker: dW differs from the per-filter loops:\n got %v\nwant %v", c.name, workers, per, got, want)
				}
			}
			depthwiseBlocksPerWorker = saved
		}
	}
}

// depthwiseWeightGradPerFilter is the depthwise weight gradient as the
// kernel computed it before the filter blocks: one filter per item, its
// samples in order.
func depthwiseWeightGradPerFilter(k *convKernel, ctx *RunContext, x, dy, dw []float32) {
	g := &k.win.Window
	khw := g.KH * g.KW
	per := k.depthwiseSpace()
	scratch := ctx.scratch(k.Workspace(max(1, ctx.Workers)))
	if k.dw3 != nil {
		tensor.ForEach(ctx.Workers, k.m, func(wk, m int) {
			xp := scratch[wk*per+9:][:k.dw3.PadSize()]
			c := m / k.mg
			var sum, one [9]float32
			for n := range k.n {
				k.dw3.Pad(x[(n*k.c+c)*k.inPlane:][:k.inPlane], xp)
				k.dw3.WeightGrad(xp, dy[(n*k.m+m)*k.outPlane:][:k.outPlane], &one)
				for t := range 9 {
					sum[t] += one[t]
				}
			}
			for t := range 9 {
				dw[m*9+t] += sum[t]
			}
		})
		return
	}
	wq := k.phaseWidth()
	tensor.ForEach(ctx.Workers, k.m, func(wk, m int) {
		xs := scratch[wk*per : (wk+1)*per]
		c := m / k.mg
		sum := dw[m*khw : (m+1)*khw]
		for n := range k.n {
			splitPhases(g, wq, x[(n*k.c+c)*k.inPlane:][:k.inPlane], xs)
			src := dy[(n*k.m+m)*k.outPlane:][:k.outPlane]
			for ki := range g.KH {
				for kj := range g.KW {
					if ohLo, ohHi, owLo, owHi, base, ld, ok := phaseRun(g, wq, ki, kj); ok {
						sum[ki*g.KW+kj] += tensor.DotRows(ohHi-ohLo, owHi-owLo, src[ohLo*g.OW+owLo:], g.OW, xs[base:], ld)
					}
				}
			}
		}
	})
}

// BenchmarkDepthwiseWeightGrad times the 3×3 depthwise weight gradient
// (1 worker) on MobileNet-V2 w0.5's shapes, blocks of filters against one
// filter at a time, alternated in every iteration.
func BenchmarkDepthwiseWeightGrad(b *testing.B) {
	for _, c := range []struct {
		x      []int
		stride int64
	}{{[]int{128, 192, 8, 8}, 1}, {[]int{128, 480, 4, 4}, 1}, {[]int{128, 72, 32, 32}, 1}, {[]int{128, 72, 32, 32}, 2}} {
		b.Run(fmt.Sprintf("%v_s%d", c.x, c.stride), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			x, w := randomTensor(rng, c.x...), randomTensor(rng, c.x[1], 1, 3, 3)
			node := newTestNode("Conv", 2, 1, intAttr("group", int64(c.x[1])), intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", c.stride, c.stride))
			kern, outs, err := trySetupKernel(node, 17, []*tensor.Tensor{x, w}, nil)
			if err != nil {
				b.Fatal(err)
			}
			k := kern.(*convKernel)
			if c.stride == 1 && k.dw3 == nil {
				b.Skip("no 3×3 depthwise kernel in this build (purego)")
			}
			dy, dw := randomTensor(rng, outs[0].Shape...), make([]float32, len(w.F32))
			ctx := &RunContext{Workers: 1}
			alternateSteps(b, "blocked", func() { k.depthwiseBackward(ctx, x.F32, w.F32, dy.F32, nil, dw, false) },
				"perfilter", func() { depthwiseWeightGradPerFilter(k, ctx, x.F32, dy.F32, dw) })
		})
	}
}

// TestDepthwisePlanesMatchesPlaneByPlane: a 3×3 pad-1 depthwise
// convolution over 4×4 or 8×8 planes gives the same bits for Y, dX (fresh
// and added) and dW with the many-planes calls and plane by plane, with 1
// and 3 workers; with a channel multiplier of 2, or 16×16 planes, it
// stays plane by plane.
func TestDepthwisePlanesMatchesPlaneByPlane(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct {
		x, w    []int
		planes4 bool
	}{{[]int{5, 7, 4, 4}, []int{7, 1, 3, 3}, true}, {[]int{4, 6, 8, 8}, []int{6, 1, 3, 3}, true},
		{[]int{3, 4, 4, 4}, []int{8, 1, 3, 3}, false}, {[]int{2, 3, 16, 16}, []int{3, 1, 3, 3}, false}} {
		x, w := randomTensor(rng, c.x...), randomTensor(rng, c.w...)
		node := newTestNode("Conv", 2, 1, intAttr("group", int64(c.x[1])), intsAttr("pads", 1, 1, 1, 1))
		kern, outs := setupKernel(t, node, 17, []*tensor.Tensor{x, w}, nil)
		k := kern.(*convKernel)
		if k.dw3 == nil {
			t.Skip("no 3×3 depthwise kernel in this build (purego)")
		}
		if k.dwPlanes() != c.planes4 {
			t.Fatalf("%v: dwPlanes %v, want %v", c.x, k.dwPlanes(), c.planes4)
		}
		dy := randomTensor(rng, outs[0].Shape...)
		for _, workers := range []int{1, 3} {
			for _, fresh := range []bool{true, false} {
				want := depthwisePass(k, &dwPlanesOn, false, workers, fresh, x, w, dy)
				got := depthwisePass(k, &dwPlanesOn, true, workers, fresh, x, w, dy)
				for i, name := range []string{"Y", "dX", "dW"} {
					if !slices.Equal(math32Bits(want[i]), math32Bits(got[i])) {
						t.Errorf("%v, %d workers, fresh %v: %s differs:\n got %v\nwant %v", c.x, workers, fresh, name, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestDepthwiseStride2MatchesPhaseSplit compares the stride-2 depthwise
// convolution through the stride-1 many-planes kernel (dwStride2) with the
// phase-split path: Y, dX (fresh and added) and dW, 1 and 3 workers. The
// sums run in another order (dX: flipped taps; dW: plane by plane), so
// they agree to rounding; the path is taken only for 3×3, pad-1 (top and
// left) windows over 8×8 or 4×4 planes, one filter per channel.
func TestDepthwiseStride2MatchesPhaseSplit(t *testing.T) {
	if _, ok := tensor.NewDepthwise3x3(&tensor.Window{H: 8, W: 8, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, OH: 8, OW: 8}); !ok {
		t.Skip("no 3×3 depthwise kernel in this build (purego)")
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for _, c := range []struct {
		x, w  []int
		pads  []int64
		taken bool
	}{
		{[]int{5, 7, 8, 8}, []int{7, 1, 3, 3}, []int64{1, 1, 1, 1}, true},
		{[]int{4, 6, 4, 4}, []int{6, 1, 3, 3}, []int64{1, 1, 1, 1}, true},
		{[]int{3, 4, 8, 8}, []int{4, 1, 3, 3}, []int64{1, 1, 0, 0}, true},
		{[]int{2, 3, 16, 16}, []int{3, 1, 3, 3}, []int64{1, 1, 1, 1}, false}, // plane too large
		{[]int{2, 3, 8, 8}, []int{6, 1, 3, 3}, []int64{1, 1, 1, 1}, false},   // two filters per channel
		{[]int{2, 3, 8, 8}, []int{3, 1, 3, 3}, []int64{0, 0, 1, 1}, false},   // padded bottom-right
		{[]int{2, 3, 7, 7}, []int{3, 1, 3, 3}, []int64{1, 1, 1, 1}, false},   // odd side
	} {
		x, w := randomTensor(rng, c.x...), randomTensor(rng, c.w...)
		node := newTestNode("Conv", 2, 1, intAttr("group", int64(c.x[1])), intsAttr("strides", 2, 2), intsAttr("pads", c.pads...))
		kern, outs := setupKernel(t, node, 17, []*tensor.Tensor{x, w}, nil)
		k := kern.(*convKernel)
		if (k.dwS2 != nil) != c.taken {
			t.Fatalf("%v pads %v: dwStride2 taken %v, want %v", c.x, c.pads, k.dwS2 != nil, c.taken)
		}
		if !c.taken {
			continue
		}
		dy := randomTensor(rng, outs[0].Shape...)
		for _, workers := range []int{1, 3} {
			for _, fresh := range []bool{true, false} {
				want := depthwisePass(k, &dwStride2On, false, workers, fresh, x, w, dy)
				got := depthwisePass(k, &dwStride2On, true, workers, fresh, x, w, dy)
				for i, name := range []string{"Y", "dX", "dW"} {
					var scale float64
					for _, v := range want[i] {
						scale = max(scale, math.Abs(float64(v)))
					}
					for j := range want[i] {
						if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-5*max(1, scale) {
							t.Fatalf("%v pads %v, %d workers, fresh %v: %s[%d] = %v, phase-split path %v", c.x, c.pads, workers, fresh, name, j, got[i][j], want[i][j])
						}
					}
				}
			}
		}
	}
}

// depthwisePass runs k's depthwise forward and backward with *flag set to
// on, and returns Y, dX and dW (dX and dW start at 0.25 and 0.5, so that
// a pass that adds into them instead of assigning shows).
func depthwisePass(k *convKernel, flag *bool, on bool, workers int, fresh bool, x, w, dy *tensor.Tensor) [][]float32 {
	defer func(was bool) { *flag = was }(*flag)
	*flag = on
	ctx := &RunContext{Workers: workers}
	y := make([]float32, len(dy.F32))
	k.depthwiseForward(ctx, x.F32, w.F32, y)
	dx, dw := make([]float32, len(x.F32)), make([]float32, len(w.F32))
	for i := range dx {
		dx[i] = 0.25
	}
	for i := range dw {
		dw[i] = 0.5
	}
	k.depthwiseBackward(ctx, x.F32, w.F32, dy.F32, dx, dw, fresh)
	return [][]float32{y, dx, dw}
}

// BenchmarkDepthwisePlanes times MobileNet-V2 w0.5's stride-1 4×4 and
// 8×8 depthwise layers (forward, dX and dW; 1 worker, batch 128) with the
// many-planes calls and plane by plane, and its stride-2 layer over 8×8
// planes through the stride-1 many-planes kernel and on phase-split
// planes, alternated (whole training passes: BenchmarkPlanesStep,
// BenchmarkDepthwiseStride2Step).
func BenchmarkDepthwisePlanes(b *testing.B) {
	for _, c := range []struct {
		ch, hw, stride int
		flag           *bool
		on, off        string
	}{{480, 4, 1, &dwPlanesOn, "planes", "perplane"}, {288, 8, 1, &dwPlanesOn, "planes", "perplane"},
		{288, 8, 2, &dwStride2On, "s1planes", "phasesplit"}} {
		b.Run(fmt.Sprintf("layer_[128_%d_%d_%d]_s%d", c.ch, c.hw, c.hw, c.stride), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			x, w := randomTensor(rng, 128, c.ch, c.hw, c.hw), randomTensor(rng, c.ch, 1, 3, 3)
			node := newTestNode("Conv", 2, 1, intAttr("group", int64(c.ch)), intsAttr("pads", 1, 1, 1, 1),
				intsAttr("strides", int64(c.stride), int64(c.stride)))
			kern, outs, err := trySetupKernel(node, 17, []*tensor.Tensor{x, w}, nil)
			if err != nil {
				b.Fatal(err)
			}
			k := kern.(*convKernel)
			if !k.dwPlanes() && !k.dwStride2() {
				b.Skip("no many-planes depthwise kernel in this build")
			}
			y, dy := make([]float32, tensor.Numel(outs[0].Shape)), randomTensor(rng, outs[0].Shape...)
			dx, dw := make([]float32, len(x.F32)), make([]float32, len(w.F32))
			ctx := &RunContext{Workers: 1}
			step := func() {
				k.depthwiseForward(ctx, x.F32, w.F32, y)
				k.depthwiseBackward(ctx, x.F32, w.F32, dy.F32, dx, dw, true)
			}
			alternateSteps(b, c.on, withFlag(c.flag, true, step), c.off, withFlag(c.flag, false, step))
		})
	}
}

// TestSplitMergePhases checks the phase split of strided depthwise
// convolutions and its merge against their definition (column iw of a row
// goes to phase iw mod SW at position iw div SW; the floats past a row's
// end in its last phases are 0), for even and odd widths, strides 2 and 3,
// the merge assigning and adding.
func TestSplitMergePhases(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, c := range []struct{ h, w, sw int }{{3, 8, 2}, {4, 9, 2}, {2, 16, 2}, {3, 1, 2}, {3, 7, 3}, {2, 13, 2}} {
		g := &tensor.Window{H: c.h, W: c.w, SW: c.sw}
		wq := (c.w + c.sw - 1) / c.sw
		src := randomTensor(rng, c.h*c.w).F32
		got := randomTensor(rng, c.h*c.sw*wq).F32
		splitPhases(g, wq, src, got)
		for ih := range c.h {
			for r := range c.sw {
				for q := range wq {
					want := float32(0)
					if iw := q*c.sw + r; iw < c.w {
						want = src[ih*c.w+iw]
					}
					if v := got[(ih*c.sw+r)*wq+q]; v != want {
						t.Fatalf("%+v: split row %d phase %d [%d] = %v, want %v", c, ih, r, q, v, want)
					}
				}
			}
		}
		for _, add := range []bool{false, true} {
			dst := randomTensor(rng, c.h*c.w).F32
			want := slices.Clone(dst)
			for ih := range c.h {
				for iw := range c.w {
					v := got[(ih*c.sw+iw%c.sw)*wq+iw/c.sw]
					if add {
						want[ih*c.w+iw] += v
					} else {
						want[ih*c.w+iw] = v
					}
				}
			}
			mergePhases(g, wq, got, dst, add)
			if !slices.Equal(math32Bits(dst), math32Bits(want)) {
				t.Fatalf("%+v add=%v: merge differs from the definition:\n got %v\nwant %v", c, add, dst, want)
			}
		}
	}
}

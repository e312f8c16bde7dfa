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

func TestPoolShapesAndValues(t *testing.T) {
	// A 4×4 image 0..15 (row-major).
	img := make([]float32, 16)
	for i := range img {
		img[i] = float32(i)
	}
	x := tensor.FromFloat32(img, 1, 1, 4, 4)
	tests := []struct {
		name  string
		op    string
		attrs []*graph.Attribute
		shape []int
		want  []float32
	}{
		{"max-2x2-s2", "MaxPool", []*graph.Attribute{intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2)},
			[]int{1, 1, 2, 2}, []float32{5, 7, 13, 15}},
		{"max-3x3-s2-ceil", "MaxPool", []*graph.Attribute{intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2), intAttr("ceil_mode", 1)},
			[]int{1, 1, 2, 2}, []float32{10, 11, 14, 15}},
		{"max-3x3-s2-floor", "MaxPool", []*graph.Attribute{intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2)},
			[]int{1, 1, 1, 1}, []float32{10}},
		{"max-pad1-dil2", "MaxPool", []*graph.Attribute{intsAttr("kernel_shape", 2, 2), intsAttr("pads", 1, 1, 1, 1), intsAttr("dilations", 2, 2), intsAttr("strides", 2, 2)},
			[]int{1, 1, 2, 2}, []float32{5, 7, 13, 15}},
		{"avg-2x2-pad1-exclude", "AveragePool", []*graph.Attribute{intsAttr("kernel_shape", 2, 2), intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", 2, 2)},
			[]int{1, 1, 3, 3}, []float32{0, 1.5, 3, 6, 7.5, 9, 12, 13.5, 15}},
		{"avg-2x2-pad1-include", "AveragePool", []*graph.Attribute{intsAttr("kernel_shape", 2, 2), intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", 2, 2), intAttr("count_include_pad", 1)},
			[]int{1, 1, 3, 3}, []float32{0, 0.75, 0.75, 3, 7.5, 4.5, 3, 6.75, 3.75}},
		{"avg-3x3-s2-ceil", "AveragePool", []*graph.Attribute{intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2), intAttr("ceil_mode", 1)},
			[]int{1, 1, 2, 2}, []float32{5, 6.5, 11, 12.5}},
		{"avg-same-upper", "AveragePool", []*graph.Attribute{intsAttr("kernel_shape", 2, 2), stringAttr("auto_pad", "SAME_UPPER")},
			[]int{1, 1, 4, 4}, []float32{2.5, 3.5, 4.5, 5, 6.5, 7.5, 8.5, 9, 10.5, 11.5, 12.5, 13, 12.5, 13.5, 14.5, 15}},
		{"global", "GlobalAveragePool", nil, []int{1, 1, 1, 1}, []float32{7.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runKernel(newTestNode(tt.op, 1, 1, tt.attrs...), 19, x)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out[0].Shape, tt.shape) {
				t.Fatalf("%s shape = %v, want %v", tt.op, out[0].Shape, tt.shape)
			}
			for i, v := range out[0].F32 {
				if math.Abs(float64(v-tt.want[i])) > 1e-6 {
					t.Fatalf("%s = %v, want %v", tt.op, out[0].F32, tt.want)
				}
			}
		})
	}
}

func TestPoolGradients(t *testing.T) {
	tests := []struct {
		name  string
		op    string
		x     []int
		attrs []*graph.Attribute
	}{
		{"max-2x2", "MaxPool", []int{2, 2, 5, 6}, []*graph.Attribute{intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2)}},
		{"max-3x3-pad-ceil", "MaxPool", []int{1, 2, 6, 6}, []*graph.Attribute{intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2), intsAttr("pads", 1, 1, 0, 0), intAttr("ceil_mode", 1)}},
		{"max-dilated", "MaxPool", []int{1, 1, 7, 7}, []*graph.Attribute{intsAttr("kernel_shape", 2, 3), intsAttr("dilations", 2, 1)}},
		{"max-1d", "MaxPool", []int{2, 2, 9}, []*graph.Attribute{intsAttr("kernel_shape", 3), intsAttr("strides", 2)}},
		{"avg-exclude", "AveragePool", []int{2, 2, 5, 5}, []*graph.Attribute{intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", 2, 2)}},
		{"avg-include", "AveragePool", []int{1, 2, 5, 5}, []*graph.Attribute{intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1), intAttr("count_include_pad", 1)}},
		{"avg-ceil", "AveragePool", []int{1, 1, 6, 7}, []*graph.Attribute{intsAttr("kernel_shape", 3, 2), intsAttr("strides", 2, 2), intAttr("ceil_mode", 1)}},
		{"global", "GlobalAveragePool", []int{2, 3, 4, 5}, nil},
		{"max-3d", "MaxPool", []int{1, 2, 4, 5, 4}, []*graph.Attribute{intsAttr("kernel_shape", 2, 3, 2), intsAttr("strides", 2, 1, 2), intsAttr("pads", 1, 0, 0, 0, 1, 1)}},
		{"avg-3d-include", "AveragePool", []int{1, 1, 4, 4, 5}, []*graph.Attribute{intsAttr("kernel_shape", 2, 2, 3), intsAttr("pads", 1, 1, 1, 0, 0, 1), intAttr("count_include_pad", 1), intAttr("ceil_mode", 1), intsAttr("strides", 2, 2, 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(10, 10))
			// Distinct, well separated values keep MaxPool away from ties
			// (a kink): a permutation of a grid with spacing 0.1 > the step.
			x := tensor.New(tt.x...)
			for i, p := range rng.Perm(len(x.F32)) {
				x.F32[i] = float32(p) * 0.1
			}
			gradCheck(t, newTestNode(tt.op, 1, 1, tt.attrs...), 19, []*tensor.Tensor{x}, []int{0}, 0)
		})
	}
}

func TestMaxPoolNaNPropagates(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, float32(math.NaN()), 3, 4}, 1, 1, 2, 2)
	out, err := runKernel(newTestNode("MaxPool", 1, 1, intsAttr("kernel_shape", 2, 2)), 13, x)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(out[0].F32[0])) {
		t.Errorf("MaxPool over a window with NaN = %v, want NaN", out[0].F32[0])
	}
}

func TestPoolSetupErrors(t *testing.T) {
	tests := []struct {
		name string
		op   string
		node *graph.Node
		x    []int
	}{
		{"no-kernel", "MaxPool", newTestNode("MaxPool", 1, 1), []int{1, 1, 4, 4}},
		{"storage-order", "MaxPool", newTestNode("MaxPool", 1, 2, intsAttr("kernel_shape", 2, 2), intAttr("storage_order", 2)), []int{1, 1, 4, 4}},
		{"4d", "AveragePool", newTestNode("AveragePool", 1, 1, intsAttr("kernel_shape", 2, 2, 2, 2)), []int{1, 1, 4, 4, 4, 4}},
		{"kernel-too-big", "MaxPool", newTestNode("MaxPool", 1, 1, intsAttr("kernel_shape", 5, 5)), []int{1, 1, 4, 4}},
		{"ceil-mode", "MaxPool", newTestNode("MaxPool", 1, 1, intsAttr("kernel_shape", 2, 2), intAttr("ceil_mode", 3)), []int{1, 1, 4, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := trySetupKernel(tt.node, 13, []*tensor.Tensor{tensor.New(tt.x...)}, nil); err == nil {
				t.Errorf("%s setup: no error", tt.op)
			}
		})
	}
}

func TestMaxPoolIndices(t *testing.T) {
	// Two planes of a 2×3 image; the maxima sit at known places.
	x := tensor.FromFloat32([]float32{
		1, 9, 2,
		3, 4, 5,
		7, 1, 1,
		1, 1, 8,
	}, 1, 2, 2, 3)
	for _, tt := range []struct {
		order int64
		want  []int64
	}{
		{0, []int64{1, 1, 6, 11}},
		{1, []int64{2, 2, 6, 11}}, // column-major within a plane: w*H + h
	} {
		out, err := runKernel(newTestNode("MaxPool", 1, 2, intsAttr("kernel_shape", 2, 2), intAttr("storage_order", tt.order)), 12, x)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out[1].I64 {
			if v != tt.want[i] {
				t.Errorf("storage_order %d: Indices = %v, want %v", tt.order, out[1].I64, tt.want)
				break
			}
		}
	}
}

// TestMaxPoolLoopsMatchTaps: the direct loops of MaxPool (maxPlane, and
// the staged planes of strided or padded windows) give the same maxima and
// the same argmax (first maximum in row-major window order; a NaN sticks;
// padding never wins, even over -∞) as the reference walk over the window
// taps, on planes full of ties, some NaNs and -∞ (one plane in seven all
// -∞), over kernels, strides, asymmetric pads, dilations and ceil mode.
func TestMaxPoolLoopsMatchTaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	checked, staged, runs, fallback := 0, 0, 0, 0
	for trial := range 200 {
		kh, kw := 1+rng.IntN(4), 1+rng.IntN(4)
		if trial%2 == 0 {
			kw = 3
		}
		sh, sw := 1+rng.IntN(2), 1+rng.IntN(2)
		dh, dw := 1+rng.IntN(2), 1
		if trial%5 == 0 {
			dw = 2
		}
		h, w := kh*dh+rng.IntN(6), kw*dw+rng.IntN(6)
		ph, pw, pb, pr := rng.IntN(kh), rng.IntN(kw), rng.IntN(kh), rng.IntN(kw)
		attrs := []*graph.Attribute{intsAttr("kernel_shape", int64(kh), int64(kw)), intsAttr("strides", int64(sh), int64(sw)),
			intsAttr("dilations", int64(dh), int64(dw)), intsAttr("pads", int64(ph), int64(pw), int64(pb), int64(pr)), intAttr("ceil_mode", int64(rng.IntN(2)))}
		img := make([]float32, 2*h*w)
		for i := range img {
			img[i] = float32(rng.IntN(4)) // many ties
			switch rng.IntN(40) {
			case 0:
				img[i] = float32(math.NaN())
			case 1, 2, 3:
				// -∞ ties with the staged path's padding.
				img[i] = float32(math.Inf(-1))
			}
		}
		if trial%7 == 0 {
			for i := range img[:h*w] {
				img[i] = float32(math.Inf(-1))
			}
		}
		kern, err := newPool(newTestNode("MaxPool", 1, 2, attrs...), 19, true)
		if err != nil {
			t.Fatal(err)
		}
		k := kern.(*poolKernel)
		outs, err := k.Setup([]Value{{DType: tensor.Float32, Shape: []int{1, 2, h, w}, Present: true}})
		if err != nil {
			continue // an empty output for this geometry
		}
		y := make([]float32, tensor.Numel(outs[0].Shape))
		if err := k.Forward(&RunContext{Workers: 2}, []*tensor.Tensor{tensor.FromFloat32(img, 1, 2, h, w)}, []*tensor.Tensor{{DType: tensor.Float32, Shape: outs[0].Shape, F32: y}, nil}); err != nil {
			t.Fatal(err)
		}
		checked++
		if k.stage != nil {
			staged++
			if k.stage.runHi > 0 {
				runs++
			}
		}
		for p := range 2 {
			src := img[p*h*w : (p+1)*h*w]
			for o := range k.outPl {
				best, arg := float32(math.Inf(-1)), int32(-1)
				k.taps(o, func(idx int) {
					v := src[idx]
					if v > best || arg < 0 || (v != v && best == best) {
						best, arg = v, int32(idx)
					}
				})
				if k.stage != nil && best == float32(math.Inf(-1)) && arg >= 0 {
					fallback++ // an all -∞ window: recomputed by maxOne when padding came first
				}
				got, gotArg := y[p*k.outPl+o], k.argmax[p*k.outPl+o]
				if gotArg != arg || math.Float32bits(got) != math.Float32bits(best) {
					t.Fatalf("trial %d (k %dx%d s %d,%d d %d,%d pads %d,%d, %dx%d): output %d = %v at %d, taps give %v at %d",
						trial, kh, kw, sh, sw, dh, dw, ph, pw, h, w, o, got, gotArg, best, arg)
				}
			}
		}
	}
	t.Logf("%d geometries, %d staged (%d copying stride-1 rows as one run), %d all -∞ windows on the staged path", checked, staged, runs, fallback)
	if checked < 150 || staged < 100 || staged == checked || runs < 30 || runs == staged || fallback < 20 {
		t.Fatalf("%d geometries checked, %d of them staged (%d with a run), %d all -∞ windows on the staged path: too few to cover every path", checked, staged, runs, fallback)
	}
}

// TestMaxPool3x3PathMatchesStaged: the 3×3, padding-1 MaxPools that
// tensor.MaxPool3x3 takes (GoogLeNet's, ResNet's stem) give the staged
// path's outputs, Indices and input gradients bit for bit, on data with
// ties, NaNs and -∞; geometries it must not take (an odd height at stride
// 2 without bottom padding, ceil mode adding a column, a width that is not
// a multiple of the vector) stay on the staged path.
func TestMaxPool3x3PathMatchesStaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		h, w, s int
		pads    []int64
		ceil    int64
		takes   bool
	}{
		{16, 16, 1, []int64{1, 1, 1, 1}, 0, true},
		{8, 8, 1, []int64{1, 1, 1, 1}, 0, true},
		{5, 24, 1, []int64{1, 1, 1, 1}, 0, true},
		{32, 32, 2, []int64{1, 1, 1, 1}, 0, true},
		{16, 16, 2, []int64{1, 1, 0, 0}, 0, true}, // the same taps: the last window ends inside
		{9, 16, 2, []int64{1, 1, 1, 1}, 0, true},
		{9, 16, 2, []int64{1, 1, 0, 0}, 0, false},  // one output row fewer
		{16, 16, 2, []int64{1, 1, 1, 1}, 1, false}, // ceil mode: an extra output column
		{12, 12, 1, []int64{1, 1, 1, 1}, 0, false},
		{16, 16, 1, []int64{1, 1, 0, 0}, 0, false},
	} {
		name := fmt.Sprintf("%dx%d_s%d_pads%v_ceil%d", c.h, c.w, c.s, c.pads, c.ceil)
		const n, ch = 2, 3
		img := make([]float32, n*ch*c.h*c.w)
		for i := range img {
			img[i] = float32(rng.IntN(4))
			switch rng.IntN(30) {
			case 0:
				img[i] = float32(math.NaN())
			case 1, 2:
				img[i] = float32(math.Inf(-1))
			}
		}
		run := func(on bool) (y, dx []float32, idx []int64) {
			defer func(was bool) { maxPool3x3On = was }(maxPool3x3On)
			maxPool3x3On = on
			kern, err := newPool(newTestNode("MaxPool", 1, 2, intsAttr("kernel_shape", 3, 3), intsAttr("strides", int64(c.s), int64(c.s)),
				intsAttr("pads", c.pads...), intAttr("ceil_mode", c.ceil)), 19, true)
			if err != nil {
				t.Fatal(err)
			}
			k := kern.(*poolKernel)
			outs, err := k.Setup([]Value{{DType: tensor.Float32, Shape: []int{n, ch, c.h, c.w}, Present: true}})
			if err != nil {
				t.Fatal(err)
			}
			if on && (k.pool3 > 0) != c.takes {
				t.Fatalf("%s: MaxPool3x3 taken is %v, want %v", name, k.pool3 > 0, c.takes)
			}
			ctx := &RunContext{Workers: 2}
			yt := &tensor.Tensor{DType: tensor.Float32, Shape: outs[0].Shape, F32: make([]float32, tensor.Numel(outs[0].Shape))}
			it := &tensor.Tensor{DType: tensor.Int64, Shape: outs[1].Shape, I64: make([]int64, tensor.Numel(outs[1].Shape))}
			x := tensor.FromFloat32(img, n, ch, c.h, c.w)
			if err := k.Forward(ctx, []*tensor.Tensor{x}, []*tensor.Tensor{yt, it}); err != nil {
				t.Fatal(err)
			}
			gy := tensor.New(outs[0].Shape...)
			gr := rand.New(rand.NewPCG(9, 9)) // the same dY both ways; sums that round differently in another order
			for i := range gy.F32 {
				gy.F32[i] = float32(gr.NormFloat64() * math.Pow(10, float64(gr.IntN(7)-3)))
			}
			gx := tensor.New(n, ch, c.h, c.w)
			if err := k.Backward(ctx, []*tensor.Tensor{x}, []*tensor.Tensor{yt, it}, []*tensor.Tensor{gy, nil}, []*tensor.Tensor{gx}); err != nil {
				t.Fatal(err)
			}
			return yt.F32, gx.F32, it.I64
		}
		y1, dx1, i1 := run(true)
		y0, dx0, i0 := run(false)
		if !slices.Equal(math32Bits(y1), math32Bits(y0)) || !slices.Equal(i1, i0) || !slices.Equal(math32Bits(dx1), math32Bits(dx0)) {
			t.Errorf("%s: MaxPool3x3 path differs from the staged path", name)
		}
	}
}

package autodiff

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("MaxPool", func(n *graph.Node, opset int64) (Kernel, error) { return newPool(n, opset, true) })
	register("AveragePool", func(n *graph.Node, opset int64) (Kernel, error) { return newPool(n, opset, false) })
	register("GlobalAveragePool", func(*graph.Node, int64) (Kernel, error) { return &globalAvgPoolKernel{}, nil })
}

// poolKernel is MaxPool and AveragePool over 1-D or 2-D windows.
//
// MaxPool: padding never wins (it counts as -∞); a NaN in a window
// propagates to the output; ties go to the first maximum in row-major
// window order, which also receives the gradient. The optional Indices
// output holds flat indices into X (row-major, or with storage_order=1
// column-major within each plane, 2-D only).
//
// AveragePool: the divisor counts the window positions inside the image,
// or with count_include_pad=1 those inside the image plus its explicit
// padding (not the extra columns ceil_mode adds).
type poolKernel struct {
	isMax        bool
	withIndices  bool
	colMajor     bool
	spec         *windowSpec
	includePad   bool
	win          resolvedWindow
	planes       int       // N*C
	argmax       []int32   // MaxPool: input index of each output's maximum, -1 for none
	tapOffs      []int32   // MaxPool, 2-D: each window tap's offset from the window's corner, row-major
	stage        *maxStage // MaxPool, 2-D with strides or borders: the staged-plane path
	pool3        int       // MaxPool 3×3, padding 1: the stride tensor.MaxPool3x3 runs at (0: not taken)
	inv          []float32 // AveragePool: 1/divisor per output pixel
	inPl, outPl  int
	outputsShape []int
}

func newPool(n *graph.Node, opset int64, isMax bool) (Kernel, error) {
	spec, err := readWindowSpec(n, true)
	if err != nil {
		return nil, err
	}
	if spec.kernel == nil {
		return nil, errors.New("kernel_shape is required")
	}
	k := &poolKernel{isMax: isMax, spec: spec}
	if isMax {
		k.withIndices = len(n.Outputs) > 1 && n.Outputs[1] != ""
		switch so := n.AttrInt("storage_order", 0); so {
		case 0:
		case 1:
			k.colMajor = true
		default:
			return nil, fmt.Errorf("storage_order is %d, want 0 or 1", so)
		}
	} else {
		switch c := n.AttrInt("count_include_pad", 0); c {
		case 0:
		case 1:
			k.includePad = true
		default:
			return nil, fmt.Errorf("count_include_pad is %d, want 0 or 1", c)
		}
	}
	return k, nil
}

func (k *poolKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("pooling takes one input X")
	}
	x := in[0]
	if x.DType != tensor.Float32 {
		return nil, fmt.Errorf("X is %s; the engine pools float32 only", x.DType)
	}
	if len(x.Shape) < 3 || len(x.Shape) > 5 {
		return nil, fmt.Errorf("X has shape %v: only 1-D, 2-D and 3-D pooling (rank 3 to 5 input) is supported", x.Shape)
	}
	if k.withIndices && k.colMajor && len(x.Shape) == 5 {
		return nil, errors.New("MaxPool Indices with storage_order=1 is supported for 1-D and 2-D pooling only")
	}
	win, out, err := k.spec.resolve(x.Shape[2:], k.spec.kernel)
	if err != nil {
		return nil, err
	}
	k.win = win
	k.planes = x.Shape[0] * x.Shape[1]
	k.inPl = win.InSize()
	k.outPl = win.OutSize()
	if k.isMax {
		k.argmax = make([]int32, k.planes*k.outPl)
		if k.inPl > math.MaxInt32 {
			return nil, fmt.Errorf("X plane of %d elements is too large", k.inPl)
		}
		for i := range win.KH {
			for j := range win.KW {
				k.tapOffs = append(k.tapOffs, int32(i*win.DH*win.W+j*win.DW))
			}
		}
		if k.flat() {
			k.pool3 = pool3x3Stride(&k.win)
			if k.pool3 == 0 {
				k.stage = newMaxStage(&k.win)
			}
		}
	} else {
		k.inv = make([]float32, k.outPl)
		g := &k.win
		for o := range k.outPl {
			cnt := 0
			k.window(o, func(id, ih, iw int) {
				in := id >= 0 && id < g.D && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W
				inPad := id >= -g.PadF && id < g.D+g.PadBack && ih >= -g.PadT && ih < g.H+g.PadB && iw >= -g.PadL && iw < g.W+g.PadR
				if in || (k.includePad && inPad) {
					cnt++
				}
			})
			if cnt > 0 {
				k.inv[o] = 1 / float32(cnt)
			}
		}
	}
	outs := []Output{{DType: tensor.Float32, Shape: append([]int{x.Shape[0], x.Shape[1]}, out...)}}
	outs = append(outs, Output{DType: tensor.Int64, Shape: outs[0].Shape})
	return outs, nil
}

// window calls fn(id, ih, iw) for every tap of output position o,
// including taps in the padding (coordinates outside the input).
func (k *poolKernel) window(o int, fn func(id, ih, iw int)) {
	g := &k.win
	ow := o % g.OW
	oh := (o / g.OW) % g.OH
	od := o / (g.OW * g.OH)
	for a := range g.KD {
		id := od*g.SD - g.PadF + a*g.DD
		for i := range g.KH {
			ih := oh*g.SH - g.PadT + i*g.DH
			for j := range g.KW {
				fn(id, ih, ow*g.SW-g.PadL+j*g.DW)
			}
		}
	}
}

// taps calls fn(input index) for every tap of output position o inside
// the input, in row-major window order.
func (k *poolKernel) taps(o int, fn func(idx int)) {
	g := &k.win
	ow := o % g.OW
	oh := (o / g.OW) % g.OH
	od := o / (g.OW * g.OH)
	for a := range g.KD {
		id := od*g.SD - g.PadF + a*g.DD
		if id < 0 || id >= g.D {
			continue
		}
		for i := range g.KH {
			ih := oh*g.SH - g.PadT + i*g.DH
			if ih < 0 || ih >= g.H {
				continue
			}
			base := (id*g.H + ih) * g.W
			for j := range g.KW {
				iw := ow*g.SW - g.PadL + j*g.DW
				if iw < 0 || iw >= g.W {
					continue
				}
				fn(base + iw)
			}
		}
	}
}

// flat reports whether the window is 1-D or 2-D (no depth), the case the
// direct loops below handle; 3-D windows go through taps.
func (k *poolKernel) flat() bool { return k.win.D == 1 && k.win.KD == 1 }

// maxStage is the staged-plane path of a 1-D or 2-D MaxPool whose
// windows move by more than one column per output or reach past the
// image's left or right edge (padding, ceil_mode). Each plane is first
// copied into a staged plane: the rows the windows cover, top padding
// included, each row split into its stride phases (phase r holds padded
// columns r, r+SW, r+2·SW, ...) and padding filled with -∞. In that
// layout every output row is one run of windows that advance by one
// element per output, which tensor.MaxTaps computes with all taps: no
// per-pixel range checks, no scalar border columns. The winner's staged
// index maps back to the input plane through a table (-1 for padding).
//
// Semantics stay those of the tap walk: -∞ padding never beats a value
// of the image, and a NaN still wins and sticks. The one difference, a
// window whose image values are all -∞ and whose first tap is padding
// (padding then "wins" the tie), shows as a padding index and that
// output is recomputed by the exact per-output loop.
type maxStage struct {
	rows, rowLen int     // staged rows, elements per staged row (phases × q)
	cols         []int32 // per staged column, its input column (-1: padding)
	toInput      []int32 // per staged element, its input index (-1: padding)
	offs         []int32 // per tap (row-major), its offset from an output's base
	padT         int
	// With stride 1 the image columns of a staged row are one run:
	// staged columns [runLo, runHi) hold input columns runIw0, runIw0+1, …
	// and copy in as one block (runHi = 0: no run, per-column table).
	runLo, runHi, runIw0 int
}

// newMaxStage returns the staged path for g, or nil where the direct
// loops already run every output through MaxTaps (stride 1, no column of
// any window outside the image) or the geometry is degenerate.
func newMaxStage(g *resolvedWindow) *maxStage {
	owA, owB := tensor.ValidRange(g.OW, g.SW, -g.PadL, g.W)
	if owB > owA {
		_, hiLast := tensor.ValidRange(g.OW, g.SW, -g.PadL+(g.KW-1)*g.DW, g.W)
		owB = min(owB, hiLast)
	}
	if g.OW <= 0 || g.OH <= 0 || (g.SW == 1 && owA == 0 && owB == g.OW) {
		return nil
	}
	q := g.OW + (g.KW-1)*g.DW/g.SW // staged columns per phase
	st := &maxStage{rows: (g.OH-1)*g.SH + (g.KH-1)*g.DH + 1, rowLen: g.SW * q, padT: g.PadT}
	st.cols = make([]int32, st.rowLen)
	for r := range g.SW {
		for c := range q {
			iw := c*g.SW + r - g.PadL
			if iw < 0 || iw >= g.W {
				iw = -1
			}
			st.cols[r*q+c] = int32(iw)
		}
	}
	st.toInput = make([]int32, st.rows*st.rowLen)
	for hp := range st.rows {
		ih := hp - g.PadT
		for x, iw := range st.cols {
			v := int32(-1)
			if ih >= 0 && ih < g.H && iw >= 0 {
				v = int32(ih*g.W) + iw
			}
			st.toInput[hp*st.rowLen+x] = v
		}
	}
	for i := range g.KH {
		for j := range g.KW {
			c := j * g.DW
			st.offs = append(st.offs, int32(i*g.DH*st.rowLen+(c%g.SW)*q+c/g.SW))
		}
	}
	if g.SW == 1 {
		lo := slices.IndexFunc(st.cols, func(iw int32) bool { return iw >= 0 })
		if lo >= 0 {
			hi := lo
			for hi < len(st.cols) && st.cols[hi] == st.cols[lo]+int32(hi-lo) {
				hi++
			}
			if !slices.ContainsFunc(st.cols[hi:], func(iw int32) bool { return iw >= 0 }) {
				st.runLo, st.runHi, st.runIw0 = lo, hi, int(st.cols[lo])
			}
		}
	}
	return st
}

// pool3x3Stride is the stride at which tensor.MaxPool3x3 computes the
// 2-D MaxPool g (a 3×3 window, padding 1 above and left, stride 1 or 2
// along both axes, and the output size that padding 1 all round gives),
// or 0.
func pool3x3Stride(g *resolvedWindow) int {
	if !maxPool3x3On || g.KH != 3 || g.KW != 3 || g.DH != 1 || g.DW != 1 || g.PadT != 1 || g.PadL != 1 ||
		g.SH != g.SW || !tensor.MaxPool3x3Fits(g.H, g.W, g.SH) {
		return 0
	}
	if oh, ow, _ := tensor.MaxPool3x3Size(g.H, g.W, g.SH); oh != g.OH || ow != g.OW {
		return 0
	}
	return g.SH
}

// maxPool3x3On lets the tests and benchmarks turn tensor.MaxPool3x3 off
// (pools then take the staged path).
var maxPool3x3On = true

// size is the staged plane's length.
func (st *maxStage) size() int { return st.rows * st.rowLen }

// Workspace implements WorkspaceUser: per worker, one staged plane, or
// the row pass of tensor.MaxPool3x3.
func (k *poolKernel) Workspace(workers int) int {
	switch {
	case k.pool3 > 0:
		_, _, n := tensor.MaxPool3x3Size(k.win.H, k.win.W, k.pool3)
		return workers * n
	case k.stage != nil:
		return workers * k.stage.size()
	}
	return 0
}

// maxStaged is maxPlane through the staged plane buf.
func (k *poolKernel) maxStaged(src, dst []float32, am []int32, buf []float32) {
	g, st := &k.win, k.stage
	ninf := float32(math.Inf(-1))
	for hp := range st.rows {
		row := buf[hp*st.rowLen : (hp+1)*st.rowLen]
		ih := hp - st.padT
		if ih < 0 || ih >= g.H {
			for x := range row {
				row[x] = ninf
			}
			continue
		}
		in := src[ih*g.W : (ih+1)*g.W]
		if st.runHi > 0 {
			for x := range row[:st.runLo] {
				row[x] = ninf
			}
			copy(row[st.runLo:st.runHi], in[st.runIw0:])
			for x := range row[st.runHi:] {
				row[st.runHi+x] = ninf
			}
			continue
		}
		for x, iw := range st.cols {
			if iw >= 0 {
				row[x] = in[iw]
			} else {
				row[x] = ninf
			}
		}
	}
	tensor.MaxTapsRows(g.OH, g.OW, st.offs, buf, 0, g.SH*st.rowLen, dst, am, g.OW)
	for o, a := range am[:k.outPl] {
		if am[o] = st.toInput[a]; am[o] < 0 {
			dst[o], am[o] = k.maxOne(src, o/g.OW, o%g.OW)
		}
	}
}

// maxOne is one output of a 1-D or 2-D MaxPool by the tap walk over the
// taps inside the image (-∞ and -1 for a window without any).
func (k *poolKernel) maxOne(src []float32, oh, ow int) (float32, int32) {
	g := &k.win
	ih0, iw0 := oh*g.SH-g.PadT, ow*g.SW-g.PadL
	iLo, iHi := tensor.ValidRange(g.KH, g.DH, ih0, g.H)
	jLo, jHi := tensor.ValidRange(g.KW, g.DW, iw0, g.W)
	if iLo >= iHi || jLo >= jHi {
		return float32(math.Inf(-1)), -1
	}
	// Start from the first tap; a later tap wins when it is larger or
	// NaN, unless the best so far is NaN.
	arg := (ih0+iLo*g.DH)*g.W + iw0 + jLo*g.DW
	best := src[arg]
	for i := iLo; i < iHi; i++ {
		row := (ih0+i*g.DH)*g.W + iw0
		for j := jLo; j < jHi; j++ {
			idx := row + j*g.DW
			if v := src[idx]; !(v <= best) && best == best {
				best, arg = v, idx
			}
		}
	}
	return best, int32(arg)
}

// maxPlane is MaxPool of one 1-D or 2-D plane with stride 1 along the
// row and every window column inside the image (the geometries without a
// maxStage): the taps inside the image in row-major window order, with
// taps' semantics (first maximum wins, a NaN propagates), without a call
// per tap.
func (k *poolKernel) maxPlane(src, dst []float32, am []int32) {
	g := &k.win
	for oh := range g.OH {
		ih0 := oh*g.SH - g.PadT
		iLo, iHi := tensor.ValidRange(g.KH, g.DH, ih0, g.H)
		o := oh * g.OW
		if iLo >= iHi {
			for ow := range g.OW {
				dst[o+ow], am[o+ow] = k.maxOne(src, oh, ow)
			}
			continue
		}
		// Every column of every window lies inside the image and the
		// windows advance one pixel per output: one vector run over the
		// taps of the kernel rows inside the image (a contiguous part of
		// the row-major tap list).
		tensor.MaxTaps(g.OW, k.tapOffs[iLo*g.KW:iHi*g.KW], src, ih0*g.W-g.PadL, dst[o:], am[o:])
	}
}

// avgPlane is AveragePool of one 1-D or 2-D plane (taps' order of
// summation), or with adjoint its backward: dx[taps] += dy·inv.
func (k *poolKernel) avgPlane(src, dst []float32, adjoint bool) {
	g := &k.win
	for oh := range g.OH {
		ih0 := oh*g.SH - g.PadT
		iLo, iHi := tensor.ValidRange(g.KH, g.DH, ih0, g.H)
		for ow := range g.OW {
			iw0 := ow*g.SW - g.PadL
			jLo, jHi := tensor.ValidRange(g.KW, g.DW, iw0, g.W)
			o := oh*g.OW + ow
			if adjoint {
				v := dst[o] * k.inv[o]
				for i := iLo; i < iHi; i++ {
					row := (ih0+i*g.DH)*g.W + iw0
					for j := jLo; j < jHi; j++ {
						src[row+j*g.DW] += v
					}
				}
				continue
			}
			var s float32
			for i := iLo; i < iHi; i++ {
				row := (ih0+i*g.DH)*g.W + iw0
				for j := jLo; j < jHi; j++ {
					s += src[row+j*g.DW]
				}
			}
			dst[o] = s * k.inv[o]
		}
	}
}

func (k *poolKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	var stage []float32
	n := k.Workspace(1)
	if n > 0 {
		stage = ctx.scratch(k.Workspace(max(1, ctx.Workers)))
	}
	tensor.ForEach(ctx.Workers, k.planes, func(w, p int) {
		src := x[p*k.inPl : (p+1)*k.inPl]
		dst := y[p*k.outPl : (p+1)*k.outPl]
		if k.flat() {
			if k.pool3 > 0 {
				tensor.MaxPool3x3(k.win.H, k.win.W, k.pool3, src, dst, k.argmax[p*k.outPl:(p+1)*k.outPl], stage[w*n:(w+1)*n])
			} else if k.isMax && k.stage != nil {
				k.maxStaged(src, dst, k.argmax[p*k.outPl:(p+1)*k.outPl], stage[w*n:(w+1)*n])
			} else if k.isMax {
				k.maxPlane(src, dst, k.argmax[p*k.outPl:(p+1)*k.outPl])
			} else {
				k.avgPlane(src, dst, false)
			}
			return
		}
		if k.isMax {
			am := k.argmax[p*k.outPl : (p+1)*k.outPl]
			for o := range dst {
				best, arg := float32(math.Inf(-1)), int32(-1)
				k.taps(o, func(idx int) {
					v := src[idx]
					if v > best || arg < 0 || (v != v && best == best) {
						best, arg = v, int32(idx)
					}
				})
				dst[o], am[o] = best, arg
			}
			return
		}
		for o := range dst {
			var s float32
			k.taps(o, func(idx int) { s += src[idx] })
			dst[o] = s * k.inv[o]
		}
	})
	if k.withIndices && len(out) > 1 && out[1] != nil {
		g := &k.win
		idx := out[1].I64
		for i, a := range k.argmax {
			p := i / k.outPl
			v := int64(a)
			if k.colMajor && a >= 0 {
				h, w := int(a)/g.W, int(a)%g.W
				v = int64(w*g.H + h)
			}
			idx[i] = int64(p*k.inPl) + v
		}
	}
	return nil
}

// assignsGrad: pooling clears each plane of a fresh dX just before it
// scatters into it (in cache, and in parallel).
func (k *poolKernel) assignsGrad(i int) bool { return i == 0 }

func (k *poolKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || gin[0] == nil {
		return nil
	}
	fresh := ctx.fresh(0)
	dy, dx := gout[0].F32, gin[0].F32
	tensor.ForEach(ctx.Workers, k.planes, func(_, p int) {
		d := dx[p*k.inPl : (p+1)*k.inPl]
		gy := dy[p*k.outPl : (p+1)*k.outPl]
		if fresh {
			clear(d)
		}
		if k.isMax {
			am := k.argmax[p*k.outPl : (p+1)*k.outPl]
			for o, a := range am {
				if a >= 0 {
					d[a] += gy[o]
				}
			}
			return
		}
		if k.flat() {
			k.avgPlane(d, gy, true)
			return
		}
		for o := range gy {
			v := gy[o] * k.inv[o]
			k.taps(o, func(idx int) { d[idx] += v })
		}
	})
	return nil
}

// globalAvgPoolKernel is GlobalAveragePool: the mean over all spatial axes.
type globalAvgPoolKernel struct {
	planes, plane int
}

func (k *globalAvgPoolKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("GlobalAveragePool takes one input X")
	}
	x := in[0]
	if x.DType != tensor.Float32 {
		return nil, fmt.Errorf("X is %s; the engine pools float32 only", x.DType)
	}
	if len(x.Shape) < 3 {
		return nil, fmt.Errorf("X has shape %v, want [N, C, spatial...]", x.Shape)
	}
	k.planes = x.Shape[0] * x.Shape[1]
	k.plane = tensor.Numel(x.Shape[2:])
	if k.plane == 0 {
		return nil, fmt.Errorf("X has shape %v: empty spatial axes", x.Shape)
	}
	out := []int{x.Shape[0], x.Shape[1]}
	for range x.Shape[2:] {
		out = append(out, 1)
	}
	return []Output{{DType: tensor.Float32, Shape: out}}, nil
}

func (k *globalAvgPoolKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	inv := 1 / float64(k.plane)
	tensor.Parallel(ctx.Workers, k.planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			var s float64
			for _, v := range x[p*k.plane : (p+1)*k.plane] {
				s += float64(v)
			}
			y[p] = float32(s * inv)
		}
	})
	return nil
}

func (k *globalAvgPoolKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || gin[0] == nil {
		return nil
	}
	dy, dx := gout[0].F32, gin[0].F32
	inv := 1 / float32(k.plane)
	tensor.Parallel(ctx.Workers, k.planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			v := dy[p] * inv
			d := dx[p*k.plane : (p+1)*k.plane]
			for i := range d {
				d[i] += v
			}
		}
	})
	return nil
}

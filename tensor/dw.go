package tensor

// Depthwise3x3 runs a 3×3, stride-1, undilated convolution of one plane
// with one filter (a depthwise convolution's unit of work) from a
// zero-padded copy of the plane: an AVX2/FMA kernel keeps the 9 weights in
// registers and reads each 8-pixel run of the output's 9 taps straight
// from the padded rows, instead of 9 passes over the output plane (one per
// tap). Its transposed use (dY padded, the filter flipped) gives the input
// gradient; WeightGrad gives the filter's gradient.
type Depthwise3x3 struct {
	h, w, padT, padL int
	oh, ow, hp, wp   int
}

// NewDepthwise3x3 returns the kernel for window g, or false when g is not
// a 2-D 3×3 window with stride 1 and dilation 1, or the CPU lacks the
// kernels.
func NewDepthwise3x3(g *Window) (*Depthwise3x3, bool) {
	d, kd, _, _, od := g.Depth()
	if !directAsm || directOff.Load() || d != 1 || kd != 1 || od != 1 || g.KH != 3 || g.KW != 3 ||
		g.SH != 1 || g.SW != 1 || max(g.DH, 1) != 1 || max(g.DW, 1) != 1 || g.OH < 1 || g.OW < 1 {
		return nil, false
	}
	return &Depthwise3x3{h: g.H, w: g.W, padT: g.PadT, padL: g.PadL, oh: g.OH, ow: g.OW, hp: g.OH + 2, wp: g.OW + 2}, true
}

// PadSize is the length of the padded plane Pad writes.
func (d *Depthwise3x3) PadSize() int { return d.hp * d.wp }

// Pad writes plane x (H×W) into xp (PadSize elements) with the window's
// zero padding.
func (d *Depthwise3x3) Pad(x, xp []float32) {
	padPlanes(1, d.h, d.w, d.padT, d.padL, d.hp, d.wp, x, xp)
}

// Forward sets y (OH×OW) to the convolution of the padded plane xp with
// the 3×3 filter w (row-major), or adds it to y with add.
func (d *Depthwise3x3) Forward(xp, w, y []float32, add bool) {
	_ = xp[d.hp*d.wp-1]
	_ = w[8]
	_ = y[d.oh*d.ow-1]
	dw3x3Rows(d.oh, d.ow, &xp[0], d.wp, &w[0], &y[0], d.ow, add)
}

// WeightGrad sets out[i*3+j] to Σ_pixels dy[pixel] · (tap (i, j) of that
// pixel in xp): one sample's gradient of the filter.
func (d *Depthwise3x3) WeightGrad(xp, dy []float32, out *[9]float32) {
	_ = xp[d.hp*d.wp-1]
	_ = dy[d.oh*d.ow-1]
	dw3x3Grad(d.oh, d.ow, &xp[0], d.wp, &dy[0], d.ow, &out[0])
}

// PlaneSide is 4 or 8 when the window is the 3×3, pad-1 one over 4×4 or
// 8×8 planes, which ForwardPlanes and WeightGradPlanes run many planes at
// a time with the rows in registers (no padded copy), and 0 otherwise: at
// these sizes a call per plane, with its padded copy, cost more than the
// plane's 144 or 576 multiply-adds (MobileNet-V2's later stages).
func (d *Depthwise3x3) PlaneSide() int {
	if (d.h == 4 || d.h == 8) && d.w == d.h && d.oh == d.h && d.ow == d.h && d.padT == 1 && d.padL == 1 {
		return d.h
	}
	return 0
}

// ForwardPlanes is Forward on each of the len(w)/9 consecutive planes of
// x (unpadded) with its own filter w[9k:9k+9], into the planes of y: the
// same bits as Pad and Forward plane by plane. PlaneSide must not be 0.
func (d *Depthwise3x3) ForwardPlanes(x, w, y []float32, add bool) {
	np, side := len(w)/9, d.PlaneSide()
	if side == 0 || len(w) != 9*np || len(x) < side*side*np || len(y) < side*side*np {
		panic("tensor: Depthwise3x3.ForwardPlanes: not 4×4 or 8×8 planes, or slices that do not hold them")
	}
	switch {
	case np == 0:
	case side == 4:
		dw4Planes(np, &x[0], &w[0], &y[0], add)
	default:
		dw8Planes(np, &x[0], &w[0], &y[0], add)
	}
}

// WeightGradPlanes adds to sums[9k:9k+9] what WeightGrad gives for plane k
// of x (unpadded) and dy, for the len(sums)/9 consecutive planes: the same
// bits as Pad, WeightGrad and the nine adds plane by plane. PlaneSide must
// not be 0.
func (d *Depthwise3x3) WeightGradPlanes(x, dy, sums []float32) {
	np, side := len(sums)/9, d.PlaneSide()
	if side == 0 || len(sums) != 9*np || len(x) < side*side*np || len(dy) < side*side*np {
		panic("tensor: Depthwise3x3.WeightGradPlanes: not 4×4 or 8×8 planes, or slices that do not hold them")
	}
	switch {
	case np == 0:
	case side == 4:
		dw4GradPlanes(np, &x[0], &dy[0], &sums[0])
	default:
		dw8GradPlanes(np, &x[0], &dy[0], &sums[0])
	}
}

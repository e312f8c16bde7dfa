package tensor

import (
	"math"
	"sync/atomic"
)

// DirectConv runs a stride-1 2-D convolution of one image without im2col:
// the image is copied once into a zero-padded buffer, and assembly
// micro-kernels read each output strip's inputs straight from it. A strip
// is 16 output pixels: 16 of one output row, or two rows of 8 when the
// output is 8 pixels wide; each tap (c, i, j) of a strip is then one or
// two contiguous runs of the padded plane. im2col writes KH·KW copies of the
// image and the GEMM then packs them once more; for the few-channel
// convolutions of CIFAR networks (K = 144…576 taps, 16…64 output channels)
// that memory traffic cost as much as the arithmetic (issue 3's profile).
//
// It covers the forward pass (Forward), the weight gradient (WeightGrad),
// and — through the transposed-convolution identity the engine already
// uses — the input gradient of a stride-1 convolution. It exists only
// where the CPU has AVX2 and FMA (NewDirectConv reports false elsewhere,
// and callers keep the im2col path).
//
// Results differ from im2col + GEMM by rounding only (both sum the same
// products in float32, in another order); they do not depend on the
// worker count, since each call works on one image.
type DirectConv struct {
	c, h, w    int
	kh, kw     int
	dh, dw     int
	padT, padL int
	oh, ow     int
	hp, wp     int // padded plane
	k          int // c·KH·KW
	offs       []int32
	xb, yb     []int32 // per strip: its start in the padded plane and in the output plane
	half       int     // where a strip's second 8 pixels start in the padded plane, relative to its first
}

var directOff atomic.Bool

// SetDirectConv turns the direct convolution (DirectConv, and the 3×3
// depthwise kernel Depthwise3x3) on or off for convolutions compiled
// afterwards (benchmarks compare both paths in one run; tests check they
// agree) and returns the previous setting. It is on by default.
func SetDirectConv(on bool) (was bool) { return !directOff.Swap(!on) }

// NewDirectConv returns the direct convolution of window g over c input
// channels, or false when g is not a 2-D stride-1 window whose output
// width is a multiple of 16 (or 8, with an even output height), or the CPU
// lacks the kernels.
func NewDirectConv(g *Window, c int) (*DirectConv, bool) {
	d, kd, _, _, od := g.Depth()
	if !directAsm || directOff.Load() || d != 1 || kd != 1 || od != 1 || g.SH != 1 || g.SW != 1 || c < 1 {
		return nil, false
	}
	if g.OH < 1 || g.KH < 1 || g.KW < 1 || !(g.OW%16 == 0 || g.OW == 8 && g.OH%2 == 0) {
		return nil, false
	}
	dc := &DirectConv{
		c: c, h: g.H, w: g.W, kh: g.KH, kw: g.KW, dh: max(g.DH, 1), dw: max(g.DW, 1),
		padT: g.PadT, padL: g.PadL, oh: g.OH, ow: g.OW,
	}
	dc.hp = g.OH + (g.KH-1)*dc.dh
	dc.wp = g.OW + (g.KW-1)*dc.dw
	dc.half = 8
	if g.OW == 8 {
		dc.half = dc.wp // a strip is two output rows
	}
	if int64(c)*int64(dc.hp)*int64(dc.wp) > math.MaxInt32/2 {
		return nil, false
	}
	dc.k = c * g.KH * g.KW
	dc.offs = make([]int32, (dc.k+3)/4*4)
	for ci := range c {
		for i := range g.KH {
			for j := range g.KW {
				dc.offs[(ci*g.KH+i)*g.KW+j] = int32(ci*dc.hp*dc.wp + i*dc.dh*dc.wp + j*dc.dw)
			}
		}
	}
	for t := dc.k; t < len(dc.offs); t++ {
		dc.offs[t] = dc.offs[dc.k-1] // padding entries: valid reads, results dropped
	}
	for oh := 0; oh < g.OH; oh++ {
		for ow := 0; ow < g.OW; ow += 16 {
			dc.xb = append(dc.xb, int32(oh*dc.wp+ow))
			dc.yb = append(dc.yb, int32(oh*g.OW+ow))
		}
		if g.OW == 8 {
			oh++ // the strip took this row's successor as its second half
		}
	}
	return dc, true
}

// PadSize is the length of the padded image buffer Pad writes.
func (dc *DirectConv) PadSize() int { return dc.c * dc.hp * dc.wp }

// K is the number of taps per output pixel, C·KH·KW.
func (dc *DirectConv) K() int { return dc.k }

// Pad writes image x (C×H×W) into xp (PadSize elements) with the window's
// zero padding around it.
func (dc *DirectConv) Pad(x, xp []float32) {
	padPlanes(dc.c, dc.h, dc.w, dc.padT, dc.padL, dc.hp, dc.wp, x, xp)
}

// padPlanes copies c planes of h×w from x into xp as planes of hp×wp, with
// padded row r holding input row r-padT and column q input column q-padL,
// zeros elsewhere (input rows and columns that fall outside are dropped).
// Rows are short (4 to 34 elements in the CIFAR models) and many, so each
// plane is cleared whole by one call and its rows copied in, rows of up to
// 8 elements by a loop, longer ones by one assembly call for the plane
// (copyRows; copy per row elsewhere): a clear or copy call per border and
// row cost more than the elements they move (BenchmarkPadPlanes).
func padPlanes(c, h, w, padT, padL, hp, wp int, x, xp []float32) {
	plane := hp * wp
	x, xp = x[:c*h*w], xp[:c*plane]
	rLo, rHi := max(0, padT), min(hp, h+padT)
	qLo, qHi := max(0, padL), min(wp, w+padL)
	n := qHi - qLo
	for ci := range c {
		dst := xp[ci*plane : (ci+1)*plane]
		src := x[ci*h*w : (ci+1)*h*w]
		clear(dst)
		if rLo >= rHi || qLo >= qHi {
			continue
		}
		off := (rLo-padT)*w + qLo - padL
		if directAsm && n > 8 {
			// One call for the plane's rows (bounds: the last row ends
			// inside both planes).
			_ = src[off+(rHi-rLo-1)*w+n-1]
			_ = dst[(rHi-1)*wp+qHi-1]
			copyRows(rHi-rLo, n, &src[off], w, &dst[rLo*wp+qLo], wp)
			continue
		}
		for r := rLo; r < rHi; r++ {
			d, s := dst[r*wp+qLo:r*wp+qHi], src[off:off+n]
			off += w
			if n > 8 {
				copy(d, s)
				continue
			}
			for j, v := range s {
				d[j] = v
			}
		}
	}
}

// PackedSize is the length of the packed weights of m output channels.
func (dc *DirectConv) PackedSize(m int) int { return (m + 5) / 6 * 6 * dc.k }

// PackWeights lays out w (m×K, row-major: output channel, then tap in
// (c, i, j) order) for Forward: blocks of 6 output channels, tap-major
// within a block, zero rows past m.
func (dc *DirectConv) PackWeights(m int, w, wp []float32) {
	k := dc.k
	w, wp = w[:m*k], wp[:dc.PackedSize(m)]
	for mb := 0; mb*6 < m; mb++ {
		blk := wp[mb*6*k : (mb+1)*6*k]
		for r := range 6 {
			if mb*6+r >= m {
				for t := range k {
					blk[t*6+r] = 0
				}
				continue
			}
			src := w[(mb*6+r)*k : (mb*6+r+1)*k]
			for t, v := range src {
				blk[t*6+r] = v
			}
		}
	}
}

// Forward computes y (m × OH·OW) = the convolution of the padded image xp
// with the packed weights wp, or adds it into y with add.
func (dc *DirectConv) Forward(xp, wp []float32, m int, y []float32, add bool) {
	p := dc.oh * dc.ow
	k := dc.k
	_ = xp[dc.PadSize()-1]
	_ = wp[dc.PackedSize(m)-1]
	_ = y[m*p-1]
	var tile [6 * 16]float32
	for s, xb := range dc.xb {
		yb := int(dc.yb[s])
		for mb := 0; mb*6 < m; mb++ {
			rows := min(6, m-mb*6)
			if rows == 6 {
				dconvFwd6x16(k, &dc.offs[0], &xp[xb], &xp[int(xb)+dc.half], &wp[mb*6*k], &y[mb*6*p+yb], p, add)
				continue
			}
			dconvFwd6x16(k, &dc.offs[0], &xp[xb], &xp[int(xb)+dc.half], &wp[mb*6*k], &tile[0], 16, false)
			for r := range rows {
				dst := y[(mb*6+r)*p+yb:][:16]
				src := tile[r*16:][:16]
				if add {
					for i, v := range src {
						dst[i] += v
					}
				} else {
					copy(dst, src)
				}
			}
		}
	}
}

// WeightGrad adds to dw (m×K) the gradient of the convolution's weights:
// dw[o][t] += Σ_pixels dy[o][pixel] · (tap t of that pixel in xp).
func (dc *DirectConv) WeightGrad(xp, dy []float32, m int, dw []float32) {
	p := dc.oh * dc.ow
	k := dc.k
	_ = xp[dc.PadSize()-1]
	_ = dy[m*p-1]
	_ = dw[m*k-1]
	n := len(dc.xb)
	var out [8]float32
	for m0 := 0; m0 < m; m0 += 2 {
		ldy, rows := p, min(2, m-m0)
		if rows == 1 {
			ldy = 0 // the second row repeats the first; its sums are dropped
		}
		// Every tap group in one call: the 2 × 4 sums of each group are
		// added into dw as the loop over groups in Go added them.
		dconvWgtRows(n, &dc.xb[0], &dc.yb[0], &dc.offs[0], k, &xp[0], dc.half, &dy[m0*p], ldy, &dw[m0*k], k, rows, &out[0])
	}
}

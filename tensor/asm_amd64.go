//go:build !purego

package tensor

import "golang.org/x/sys/cpu"

// The AVX2/FMA kernels' shared pieces, and DirectConv's micro-kernels
// (dconv_amd64.s). The other kernels are declared beside their wrappers
// (rows_amd64.go, vec_amd64.go, pool_amd64.go, dw_amd64.go).

// tailMask holds eight all-ones lanes, then eight zero lanes: the eight
// lanes starting at tailMask[8-r] select the first r floats of a vector.
// Every kernel's masked tail loads its mask from here (·tailMask(SB)).
var tailMask = [16]uint32{
	0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
}

// laneUp and laneDown are VPERMPS/VPERMD indexes that move every lane of
// an 8-lane vector one lane up (lane p takes lane p-1, lane 0 keeps its
// own) or one lane down (lane p takes p+1, lane 7 keeps its own): a row's
// left and right neighbours in the 3×3 kernels over planes
// (planes3x3_amd64.s) and the 3×3 max pool (pool_amd64.s).
var (
	laneUp   = [8]uint32{0, 0, 1, 2, 3, 4, 5, 6}
	laneDown = [8]uint32{1, 2, 3, 4, 5, 6, 7, 7}
)

// dconvFwd6x16 computes, for r in 0..5, the 16 floats at y + r·ldy as
// Σ_{t<k} w[t·6+r] · B_t, where B_t is x[offs[t] : offs[t]+8] followed by
// x2[offs[t] : offs[t]+8], assigning them, or adding them to what is there
// when add is set. k >= 1.
//
//go:noescape
func dconvFwd6x16(k int, offs *int32, x, x2 *float32, w *float32, y *float32, ldy int, add bool)

// dconvWgtRows adds to rows (1 or 2) rows of dw, ldw floats apart, the
// weight gradient of 2 output channels over all k taps: per group of 4
// taps, the 2 × 4 sums over the n strips of 16 pixels (dy rows ldy floats
// apart; ldy 0 repeats the first, whose second sums are then dropped),
// each reduced as one 8-lane accumulator and added into dw (see
// dconv_amd64.s). out is 8 floats of scratch.
//
//go:noescape
func dconvWgtRows(n int, xb *int32, yb *int32, offs *int32, k int, x *float32, half int, dy *float32, ldy int, dw *float32, ldw int, rows int, out *float32)

// directAsm is true when the CPU runs the assembly kernels.
var directAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

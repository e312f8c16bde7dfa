package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxTapsAsmMatchesGo: values and winning indices of the assembly
// equal the Go loop's, on data full of ties, NaNs and infinities, for run
// lengths around the vector width and several tap layouts.
func TestMaxTapsAsmMatchesGo(t *testing.T) {
	if !directAsm {
		t.Skip("no assembly kernels on this CPU/build")
	}
	r := rand.New(rand.NewPCG(21, 22))
	nan := float32(math.NaN())
	vals := []float32{0, 1, 1, 2, -1, nan, float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(1 << 31)}
	const w = 40
	src := make([]float32, 40*w)
	layouts := [][]int32{
		{0, 1, 2, w, w + 1, w + 2, 2 * w, 2*w + 1, 2*w + 2}, // 3×3
		{w, w + 1, w + 2, 2 * w, 2*w + 1, 2*w + 2},          // its last two rows (a top border row)
		{0, 2, 2 * w, 2*w + 2},                              // 2×2 dilated
		{0},
		{0, 1, 2, 3, 4, w, w + 1, w + 2, w + 3, w + 4, 2 * w, 2*w + 4, 3 * w, 4 * w, 4*w + 4}, // 15 taps
	}
	for trial := range 200 {
		for i := range src {
			if r.IntN(3) == 0 {
				src[i] = vals[r.IntN(len(vals))]
			} else {
				src[i] = float32(r.IntN(5))
			}
		}
		offs := layouts[trial%len(layouts)]
		n := 1 + r.IntN(35)
		start := r.IntN(w) - w/2*min(1, trial%3) // negative starts (a window above the plane's first row)
		if start+int(slicesMin(offs)) < 0 {
			start = -int(slicesMin(offs))
		}
		d1, d2 := make([]float32, n), make([]float32, n)
		a1, a2 := make([]int32, n), make([]int32, n)
		MaxTaps(n, offs, src, start, d1, a1)
		maxTapsGo(n, offs, src, start, d2, a2)
		for p := range n {
			same := math.Float32bits(d1[p]) == math.Float32bits(d2[p]) || d1[p] != d1[p] && d2[p] != d2[p]
			if !same || a1[p] != a2[p] {
				t.Fatalf("trial %d, output %d of %d: assembly %v at %d, Go %v at %d", trial, p, n, d1[p], a1[p], d2[p], a2[p])
			}
		}
	}
}

func slicesMin(s []int32) int32 {
	m := s[0]
	for _, v := range s {
		m = min(m, v)
	}
	return m
}

// TestMaxTapsRows: a plane's rows in one call give what one MaxTaps call
// per row gives, and a last row that would read or write past its buffer
// is refused before anything is written.
func TestMaxTapsRows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const w, rows, n = 12, 6, 9
	const stride = 2 * w
	src := make([]float32, (2*rows+3)*w)
	for i := range src {
		src[i] = float32(r.IntN(4))
	}
	offs := []int32{0, 1, 2, w, w + 1, w + 2, 2 * w, 2*w + 1, 2*w + 2}
	const dstStride = n + 3 // gaps between the rows stay untouched
	got, gotAm := make([]float32, rows*dstStride), make([]int32, rows*dstStride)
	for i := range got {
		got[i], gotAm[i] = -5, -5
	}
	MaxTapsRows(rows, n, offs, src, 1, stride, got, gotAm, dstStride)
	for row := range rows {
		want, wantAm := make([]float32, n), make([]int32, n)
		MaxTaps(n, offs, src, 1+row*stride, want, wantAm)
		for p := range dstStride {
			i := row*dstStride + p
			if p >= n {
				if got[i] != -5 || gotAm[i] != -5 {
					t.Fatalf("row %d: the gap at %d was written", row, p)
				}
				continue
			}
			if got[i] != want[p] || gotAm[i] != wantAm[p] {
				t.Fatalf("row %d, output %d: %v at %d, per-row call %v at %d", row, p, got[i], gotAm[i], want[p], wantAm[p])
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a last row reading past src was not refused")
		}
	}()
	MaxTapsRows(rows+2, n, offs, src, 1, stride, make([]float32, 100), make([]int32, 100), dstStride)
}

// TestMaxPool3x3MatchesTapWalk: the two-pass assembly gives the tap
// walk's values and indices, bit for bit, on planes full of ties, NaNs,
// signed zeros and infinities, for both strides and widths of one to
// several vectors, including one-row and odd-height planes.
func TestMaxPool3x3MatchesTapWalk(t *testing.T) {
	if !directAsm {
		t.Skip("no assembly kernels on this CPU/build")
	}
	r := rand.New(rand.NewPCG(31, 32))
	nan := float32(math.NaN())
	vals := []float32{0, 1, 1, 2, -1, nan, float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(1 << 31)}
	for _, s := range []int{1, 2} {
		for _, h := range []int{1, 2, 3, 4, 7, 8, 16, 33} {
			for _, w := range []int{8, 16, 24, 32, 48, 64} {
				if !MaxPool3x3Fits(h, w, s) {
					continue
				}
				oh, ow, ns := MaxPool3x3Size(h, w, s)
				src := make([]float32, h*w)
				for trial := range 20 {
					for i := range src {
						switch {
						case trial == 0:
							src[i] = float32(math.Inf(-1)) // every tap ties at -∞
						case r.IntN(4) == 0:
							src[i] = vals[r.IntN(len(vals))]
						default:
							src[i] = float32(r.IntN(3 + trial))
						}
					}
					d1, d2 := make([]float32, oh*ow), make([]float32, oh*ow)
					a1, a2 := make([]int32, oh*ow), make([]int32, oh*ow)
					MaxPool3x3(h, w, s, src, d1, a1, make([]float32, ns))
					maxPool3x3Go(h, w, s, src, d2, a2)
					for p := range d1 {
						if math.Float32bits(d1[p]) != math.Float32bits(d2[p]) || a1[p] != a2[p] {
							t.Fatalf("stride %d, %d×%d, trial %d, output %d: assembly %v at %d, tap walk %v at %d", s, h, w, trial, p, d1[p], a1[p], d2[p], a2[p])
						}
					}
				}
			}
		}
	}
}

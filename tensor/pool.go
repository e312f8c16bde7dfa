package tensor

import (
	"fmt"
	"unsafe"
)

// MaxTaps is the inner loop of max pooling over a run of n outputs whose
// windows lie inside the input and advance by one input element per
// output: for p < n, dst[p] is the first maximum of src[start+p+offs[t]]
// over the taps t in order (a later tap wins when it is larger or NaN,
// unless the best so far is NaN: the first NaN sticks), and am[p] is the
// index start+p+offs[t] of the winning tap (start may be negative where
// start plus every offset is not). It runs AVX2 assembly where
// the CPU has it, a Go loop elsewhere; both give the same values and
// indices.
func MaxTaps(n int, offs []int32, src []float32, start int, dst []float32, am []int32) {
	MaxTapsRows(1, n, offs, src, start, 0, dst, am, 0)
}

// MaxTapsRows is MaxTaps over rows runs of n outputs, run r reading from
// start + r·stride and writing dst and am from r·dstStride: one bounds
// check for a whole plane instead of one per output row.
func MaxTapsRows(rows, n int, offs []int32, src []float32, start, stride int, dst []float32, am []int32, dstStride int) {
	if n <= 0 || rows <= 0 {
		return
	}
	if len(offs) == 0 {
		panic("tensor: MaxTaps with no taps")
	}
	lo, hi := offs[0], offs[0]
	for _, o := range offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	last, lastDst := start+(rows-1)*stride, (rows-1)*dstStride
	if min(start, last)+int(lo) < 0 || max(start, last)+n-1+int(hi) >= len(src) || lastDst+n > len(dst) || lastDst+n > len(am) || stride < 0 || dstStride < 0 {
		panic(fmt.Sprintf("tensor: MaxTaps: %d rows of %d outputs from %d (stride %d) with taps %d..%d do not fit src (%d), dst (%d), am (%d) at stride %d",
			rows, n, start, stride, lo, hi, len(src), len(dst), len(am), dstStride))
	}
	for r := range rows {
		s, d := start+r*stride, r*dstStride
		if directAsm {
			maxTapsRow(n, len(offs), &offs[0], &src[0], s, &dst[d], &am[d])
			continue
		}
		maxTapsGo(n, offs, src, s, dst[d:], am[d:])
	}
}

func maxTapsGo(n int, offs []int32, src []float32, start int, dst []float32, am []int32) {
	for p := range n {
		arg := start + p + int(offs[0])
		best := src[arg]
		for _, o := range offs[1:] {
			i := start + p + int(o)
			if v := src[i]; !(v <= best) && best == best {
				best, arg = v, i
			}
		}
		dst[p], am[p] = best, int32(arg)
	}
}

// MaxPool3x3Fits reports whether MaxPool3x3 takes an h×w plane at stride
// s: stride 1 with w a multiple of 8, or stride 2 with w a multiple of 16.
func MaxPool3x3Fits(h, w, s int) bool {
	switch s {
	case 1:
		return h > 0 && w > 0 && w%8 == 0
	case 2:
		return h > 0 && w > 0 && w%16 == 0
	}
	return false
}

// MaxPool3x3Size is the output height and width of MaxPool3x3 on an h×w
// plane at stride s (1 or 2), and the scratch length it needs.
func MaxPool3x3Size(h, w, s int) (oh, ow, scratch int) {
	oh, ow = (h-1)/s+1, (w-1)/s+1
	return oh, ow, 2 * h * ow
}

// MaxPool3x3 is max pooling of one h×w plane with a 3×3 window, padding 1
// on every side and stride s (MaxPool3x3Fits must hold): dst[oh·OW+ow] is
// the first maximum, in row-major window order, of the window's taps
// inside the plane (a later tap wins when it is larger or NaN, unless the
// best so far is NaN), and am holds the winner's index in src. Padding is
// never a candidate. With the AVX2 kernels the window is taken apart into
// rows: each input row's first maximum of three columns, then each
// output's first maximum of three rows, which selects the same tap. A
// padded column or row is replaced by a copy of the window's centre,
// which cannot change the first maximum. scratch holds 2·h·OW floats
// (MaxPool3x3Size).
func MaxPool3x3(h, w, s int, src, dst []float32, am []int32, scratch []float32) {
	oh, ow, ns := MaxPool3x3Size(h, w, s)
	if !MaxPool3x3Fits(h, w, s) || len(src) < h*w || len(dst) < oh*ow || len(am) < oh*ow || len(scratch) < ns {
		panic(fmt.Sprintf("tensor: MaxPool3x3 of a %d×%d plane at stride %d: src %d, dst %d, am %d, scratch %d",
			h, w, s, len(src), len(dst), len(am), len(scratch)))
	}
	if !directAsm {
		maxPool3x3Go(h, w, s, src, dst, am)
		return
	}
	hv := scratch[:h*ow]
	hi := (*int32)(unsafe.Pointer(&scratch[h*ow]))
	if s == 1 {
		maxH3s1(h, w/8, &src[0], &hv[0], hi)
	} else {
		maxH3s2(h, w/16, &src[0], &hv[0], hi)
	}
	maxV3(oh, ow/8, s, h, w, &hv[0], hi, &dst[0], &am[0])
}

// maxPool3x3Go is MaxPool3x3 by the tap walk.
func maxPool3x3Go(h, w, s int, src, dst []float32, am []int32) {
	oh, ow, _ := MaxPool3x3Size(h, w, s)
	for y := range oh {
		for x := range ow {
			arg := -1
			var best float32
			for i := s*y - 1; i <= s*y+1; i++ {
				for j := s*x - 1; j <= s*x+1; j++ {
					if i < 0 || i >= h || j < 0 || j >= w {
						continue
					}
					if v := src[i*w+j]; arg < 0 || !(v <= best) && best == best {
						best, arg = v, i*w+j
					}
				}
			}
			dst[y*ow+x], am[y*ow+x] = best, int32(arg)
		}
	}
}

package tensor

import "fmt"

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

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
	if n <= 0 {
		return
	}
	if len(offs) == 0 {
		panic("tensor: MaxTaps with no taps")
	}
	lo, hi := offs[0], offs[0]
	for _, o := range offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	if start+int(lo) < 0 || start+n-1+int(hi) >= len(src) || len(dst) < n || len(am) < n {
		panic(fmt.Sprintf("tensor: MaxTaps: %d outputs from %d with taps %d..%d do not fit src (%d), dst (%d), am (%d)", n, start, lo, hi, len(src), len(dst), len(am)))
	}
	if directAsm {
		maxTapsRow(n, len(offs), &offs[0], &src[0], start, &dst[0], &am[0])
		return
	}
	maxTapsGo(n, offs, src, start, dst, am)
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

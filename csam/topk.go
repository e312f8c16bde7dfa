package csam

import "math"

// topKMask writes into dst a binary mask (1 = kept) that keeps the k
// largest entries of scores. Ties are broken by index: among equal scores
// the lower index is kept, so the result is deterministic. work is scratch
// space of len(scores) (reused across calls to stay allocation-free).
//
// It runs in expected O(n): a quickselect finds the k-th largest value,
// then one pass keeps everything above it and the first entries equal to
// it. This is the binarizer B_κ of CSAM-SPEC §2.1 (HYDRA's GetSubnet).
func topKMask(dst, scores, work []float32, k int) { topKMaskMag(dst, scores, nil, work, k) }

// topKMaskMag is topKMask with the ties at the threshold broken by weight
// magnitude: among equal scores the entries with the larger |w| are kept,
// then the lower index. A clipped soft mask needs this: every kept entry
// of C-SAM's mask sits at C = 1 (percentile initialization, clipping), and
// pruned entries the search or its perturbation pushes to 1 join that tie.
// By index alone the ties would go to the layer's first filters whatever
// their weights, pruning the last filters' kept weights wholesale; by
// magnitude the order among them is magnitude pruning's. w may hold the
// raw weights (their absolute value is taken); nil means ties by index.
// work is scratch of len(scores).
func topKMaskMag(dst, scores, w, work []float32, k int) {
	n := len(scores)
	if k >= n {
		for i := range dst[:n] {
			dst[i] = 1
		}
		return
	}
	if k <= 0 {
		clear(dst[:n])
		return
	}
	copy(work, scores)
	thr := kthLargest(work[:n], k)
	above, tied := 0, 0
	for _, s := range scores {
		switch {
		case s > thr:
			above++
		case s == thr:
			tied++
		}
	}
	equalKeep := k - above
	// tied < equalKeep only when scores hold NaN (no entry equals a NaN
	// threshold): keep what compares above it rather than index nothing.
	if w == nil || tied <= equalKeep {
		// Ties by index (or every tied entry is kept).
		for i, s := range scores {
			switch {
			case s > thr:
				dst[i] = 1
			case s == thr && equalKeep > 0:
				dst[i] = 1
				equalKeep--
			default:
				dst[i] = 0
			}
		}
		return
	}
	// The equalKeep largest |w| among the tied entries: magnitudes above
	// mt, then the first ones equal to it.
	mags := work[:0]
	for i, s := range scores {
		if s == thr {
			mags = append(mags, float32(math.Abs(float64(w[i]))))
		}
	}
	mt := kthLargest(mags, equalKeep)
	aboveM := 0
	for i, s := range scores {
		if s == thr && float32(math.Abs(float64(w[i]))) > mt {
			aboveM++
		}
	}
	equalM := equalKeep - aboveM
	for i, s := range scores {
		switch {
		case s > thr:
			dst[i] = 1
		case s == thr:
			a := float32(math.Abs(float64(w[i])))
			switch {
			case a > mt:
				dst[i] = 1
			case a == mt && equalM > 0:
				dst[i] = 1
				equalM--
			default:
				dst[i] = 0
			}
		default:
			dst[i] = 0
		}
	}
}

// kthLargest returns the k-th largest value of a (1-based k), reordering a.
// NaNs are treated as smaller than every number.
func kthLargest(a []float32, k int) float32 {
	lo, hi := 0, len(a)-1
	target := k - 1 // index in descending order
	for lo < hi {
		// Median of three as pivot, for sorted and reversed inputs.
		mid := lo + (hi-lo)/2
		p := median3(a[lo], a[mid], a[hi])
		i, j := lo, hi
		for i <= j {
			for greater(a[i], p) {
				i++
			}
			for greater(p, a[j]) {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case target <= j:
			hi = j
		case target >= i:
			lo = i
		default:
			return a[target]
		}
	}
	return a[target]
}

// greater orders descending with NaN last.
func greater(x, y float32) bool {
	if math.IsNaN(float64(y)) {
		return !math.IsNaN(float64(x))
	}
	return x > y
}

func median3(a, b, c float32) float32 {
	if greater(b, a) {
		a, b = b, a
	}
	if greater(c, b) {
		b, c = c, b
		if greater(b, a) {
			a, b = b, a
		}
	}
	return b
}

// keepCount is ⌈κ·n⌉, the number of entries a layer of n weights keeps at
// density κ (CSAM-SPEC §2.1), at least 1 so no layer is cut off entirely.
func keepCount(density float64, n int) int {
	k := int(math.Ceil(density*float64(n) - 1e-9))
	if k < 1 {
		k = 1
	}
	if k > n {
		k = n
	}
	return k
}

// percentile returns the p-th percentile (0..100) of a with linear
// interpolation between order statistics (numpy's default), reordering a.
func percentile(a []float32, p float64) float64 {
	n := len(a)
	if n == 0 {
		return 0
	}
	pos := p / 100 * float64(n-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	// k-th smallest = (n-k+1)-th largest.
	vlo := float64(kthLargest(a, n-lo))
	vhi := vlo
	if hi != lo {
		vhi = float64(kthLargest(a, n-hi))
	}
	return vlo + (vhi-vlo)*(pos-float64(lo))
}

package runtime

import (
	"fmt"
	"math"
)

// CC-Cert defaults from the official code (CSAM-SPEC.md §4.1).
const (
	DefaultCCN     = 100 // samples per group (nsamples)
	DefaultCCK     = 10  // groups (nbounds)
	DefaultCCDelta = 0.9 // δ, the guard against underestimating the MGF
)

// DefaultCCEpsilons are the levels ε at which certified accuracy is
// reported by default.
var DefaultCCEpsilons = []float64{1e-2, 1e-3, 1e-4}

// DefaultTemperatures is the temperature grid 𝒯 of CC-Cert's bound: 500
// evenly spaced values from 1e-4 to 1e4, as estimates/script.py passes to
// get_bounds (whose own defaults, 1e-4…50 in 50 steps, the script
// overrides). The grid is coarse (steps of ≈20) but reaches high
// temperatures, which is where margins d ≫ spread of Z are certified;
// evaluating in log space makes t = 1e4 safe, which in float32 it is not.
// A fresh slice is returned on every call.
func DefaultTemperatures() []float64 {
	const lo, hi, steps = 1e-4, 1e4, 500
	t := make([]float64, steps)
	for i := range t {
		t[i] = lo + float64(i)*(hi-lo)/(steps-1)
	}
	t[steps-1] = hi
	return t
}

// CCCertBound is CC-Cert's Chernoff–Cramér bound b̂ on P(Z ≥ d)
// (Pautov et al., AAAI 2022, Algorithm 1; CSAM-SPEC.md §4.1 steps 3–4).
// z holds k groups of n values Z_i = ‖p(x) − p(T(x))‖_∞ (group j is
// z[j·n:(j+1)·n]); d is half the gap between the top two probabilities of
// the clean input. For each group j and temperature t,
//
//	log b_j(t) = logsumexp_i(t·Z_i) − log n − t·d,
//
// b_j = min_t b_j(t), and b̂ = min(1, max_j b_j / δ), evaluated in log space
// so that no temperature overflows. d ≤ 0 gives 1: such a sample is never
// certified. CCCertBound panics if len(z) ≠ n·k, n or k < 1, delta is not in
// (0, 1] or temps is empty: callers validate their options first.
func CCCertBound(z []float64, d float64, n, k int, delta float64, temps []float64) float64 {
	if n < 1 || k < 1 || len(z) != n*k || !(delta > 0 && delta <= 1) || len(temps) == 0 {
		panic(fmt.Sprintf("runtime: CCCertBound: %d values for n=%d, k=%d; delta=%v; %d temperatures", len(z), n, k, delta, len(temps)))
	}
	if !(d > 0) {
		return 1
	}
	logN := math.Log(float64(n))
	scaled := make([]float64, n)
	worst := math.Inf(-1) // max_j min_t log b_j(t)
	for j := 0; j < k; j++ {
		group := z[j*n : (j+1)*n]
		best := math.Inf(1)
		for _, t := range temps {
			for i, v := range group {
				scaled[i] = t * v
			}
			lb := logSumExp(scaled) - logN - t*d
			if lb < best {
				best = lb
			}
		}
		if best > worst {
			worst = best
		}
	}
	lb := worst - math.Log(delta)
	if !(lb < 0) { // also catches NaN from NaN inputs
		return 1
	}
	return math.Exp(lb)
}

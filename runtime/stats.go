package runtime

import (
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// ClopperPearsonLower is the one-sided (1−alpha) Clopper–Pearson lower
// confidence bound on a binomial proportion after nA successes in n
// trials: the alpha quantile of Beta(nA, n−nA+1), and 0 when nA = 0. It is
// what Cohen et al.'s CERTIFY uses (statsmodels
// proportion_confint(nA, n, alpha=2·alpha, method="beta")[0]);
// CSAM-SPEC.md §4.2 step 3. It returns NaN for nA < 0, nA > n or alpha
// outside (0, 1).
func ClopperPearsonLower(nA, n int, alpha float64) float64 {
	if nA < 0 || nA > n || !(alpha > 0 && alpha < 1) {
		return math.NaN()
	}
	if nA == 0 {
		return 0
	}
	return distuv.Beta{Alpha: float64(nA), Beta: float64(n - nA + 1)}.Quantile(alpha)
}

// SmoothingRadius is the ℓ2 radius σ·Φ⁻¹(pA) certified by a lower bound pA
// on the top class's probability under N(0, σ²I) noise (Cohen et al. 2019,
// Theorem 1 with pB = 1 − pA). It is 0 when pA ≤ 0.5 (CERTIFY abstains).
func SmoothingRadius(sigma, pA float64) float64 {
	if !(pA > 0.5) {
		return 0
	}
	return sigma * distuv.UnitNormal.Quantile(pA)
}

// MaxSmoothingRadius is the largest radius CERTIFY can give with n noise
// samples at level alpha, reached when all n samples vote for one class:
// σ·Φ⁻¹(alpha^{1/n}) (CSAM-SPEC.md §4.2).
func MaxSmoothingRadius(sigma float64, n int, alpha float64) float64 {
	return SmoothingRadius(sigma, math.Pow(alpha, 1/float64(n)))
}

// binomTestRelErr is SciPy's relative tolerance when it collects the
// outcomes "at most as likely as the observed one" in binom_test.
const binomTestRelErr = 1 + 1e-7

// BinomTest is the exact two-sided binomial test of k successes in n
// trials against success probability p, as scipy.stats.binom_test computes
// it (the function Cohen et al.'s PREDICT calls): the total probability of
// the outcomes whose probability is at most pmf(k)·(1+1e-7). It returns NaN
// for k outside [0, n] or p outside [0, 1].
func BinomTest(k, n int, p float64) float64 {
	if k < 0 || k > n || !(p >= 0 && p <= 1) {
		return math.NaN()
	}
	if n == 0 {
		return 1
	}
	fn, fk := float64(n), float64(k)
	if fk == p*fn {
		return 1
	}
	d := binomPMF(k, n, p) * binomTestRelErr
	var pval float64
	if fk < p*fn {
		// Count the outcomes on the other side of the mode (from
		// ceil(p·n) to n) that are at most as likely as k.
		y := 0
		for i := int(math.Ceil(p * fn)); i <= n; i++ {
			if binomPMF(i, n, p) <= d {
				y++
			}
		}
		pval = binomCDF(k, n, p) + binomSF(n-y, n, p)
	} else {
		y := 0
		for i := 0; i <= int(math.Floor(p*fn)); i++ {
			if binomPMF(i, n, p) <= d {
				y++
			}
		}
		pval = binomCDF(y-1, n, p) + binomSF(k-1, n, p)
	}
	return math.Min(1, pval)
}

// binomPMF is P(X = k) for X ~ Binomial(n, p), computed in log space.
func binomPMF(k, n int, p float64) float64 {
	if k < 0 || k > n {
		return 0
	}
	switch {
	case p == 0:
		if k == 0 {
			return 1
		}
		return 0
	case p == 1:
		if k == n {
			return 1
		}
		return 0
	}
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// binomCDF is P(X ≤ k) = I_{1−p}(n−k, k+1).
func binomCDF(k, n int, p float64) float64 {
	switch {
	case k < 0:
		return 0
	case k >= n:
		return 1
	}
	return mathext.RegIncBeta(float64(n-k), float64(k+1), 1-p)
}

// binomSF is P(X > k) = I_p(k+1, n−k).
func binomSF(k, n int, p float64) float64 {
	switch {
	case k < 0:
		return 1
	case k >= n:
		return 0
	}
	return mathext.RegIncBeta(float64(k+1), float64(n-k), p)
}

// softmax writes the softmax of logits (float32) into dst in float64,
// subtracting the maximum first so that large logits do not overflow.
func softmax(dst []float64, logits []float32) {
	m := math.Inf(-1)
	for _, v := range logits {
		if float64(v) > m {
			m = float64(v)
		}
	}
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v) - m)
		dst[i] = e
		sum += e
	}
	for i := range dst[:len(logits)] {
		dst[i] /= sum
	}
}

// argmax is the index of the first largest value (as numpy and PyTorch
// break ties), or −1 when every value is NaN.
func argmax(v []float32) int {
	best := -1
	for i, x := range v {
		if x != x {
			continue
		}
		if best < 0 || x > v[best] {
			best = i
		}
	}
	return best
}

// logSumExp is log Σ exp(x_i), computed stably.
func logSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

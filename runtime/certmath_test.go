package runtime_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mathext"

	"github.com/csam-onnx/csam-onnx/runtime"
)

// bisect solves f(x) = target for an increasing f on [lo, hi] by bisection
// until the interval stops shrinking in float64.
func bisect(f func(float64) float64, target, lo, hi float64) float64 {
	for range 2000 {
		mid := lo + (hi-lo)/2
		if mid == lo || mid == hi {
			break
		}
		if f(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + (hi-lo)/2
}

// cpLowerByBisection is the Clopper–Pearson lower bound computed without
// gonum's inverse: the x with I_x(nA, n−nA+1) = α, by bisection on the
// regularized incomplete beta function.
func cpLowerByBisection(nA, n int, alpha float64) float64 {
	if nA == 0 {
		return 0
	}
	a, b := float64(nA), float64(n-nA+1)
	return bisect(func(x float64) float64 { return mathext.RegIncBeta(a, b, x) }, alpha, 0, 1)
}

// normQuantileByBisection inverts Φ(x) = erfc(−x/√2)/2 by bisection.
func normQuantileByBisection(p float64) float64 {
	return bisect(func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }, p, -40, 40)
}

func TestClopperPearsonLower(t *testing.T) {
	tests := []struct {
		nA, n int
		alpha float64
	}{
		{1, 10, 0.05},
		{5, 10, 0.001},
		{50, 100, 0.05},
		{99, 100, 0.001},
		{100, 100, 0.001},
		{700, 1000, 0.001},
		{9000, 10000, 0.001},
		{60000, 100000, 0.001},
		{99990, 100000, 0.001},
		{100000, 100000, 0.001},
		{3, 3, 0.25},
	}
	var worst float64
	for _, tt := range tests {
		got := runtime.ClopperPearsonLower(tt.nA, tt.n, tt.alpha)
		want := cpLowerByBisection(tt.nA, tt.n, tt.alpha)
		// 1e-9: the bar; bisection is exact to the last bits of
		// float64 wherever RegIncBeta is, so this bounds gonum's inverse.
		worst = math.Max(worst, math.Abs(got-want))
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("ClopperPearsonLower(%d, %d, %v) = %.15g, want %.15g (bisection), diff %.3g", tt.nA, tt.n, tt.alpha, got, want, got-want)
		}
		// The radius built on it matches an independent Φ⁻¹ too.
		const sigma = 0.5
		gotR := runtime.SmoothingRadius(sigma, got)
		wantR := 0.0
		if want > 0.5 {
			wantR = sigma * normQuantileByBisection(want)
		}
		if math.Abs(gotR-wantR) > 1e-9 {
			t.Errorf("SmoothingRadius(%v, p̲(%d, %d, %v)) = %.15g, want %.15g", sigma, tt.nA, tt.n, tt.alpha, gotR, wantR)
		}
	}
	t.Logf("%d cases: largest |gonum − bisection| = %.3g", len(tests), worst)
	if got := runtime.ClopperPearsonLower(0, 100, 0.001); got != 0 {
		t.Errorf("ClopperPearsonLower(0, 100, 0.001) = %v, want 0", got)
	}
	for _, bad := range [][3]float64{{-1, 10, 0.01}, {11, 10, 0.01}, {5, 10, 0}, {5, 10, 1}} {
		if got := runtime.ClopperPearsonLower(int(bad[0]), int(bad[1]), bad[2]); !math.IsNaN(got) {
			t.Errorf("ClopperPearsonLower(%v) = %v, want NaN", bad, got)
		}
	}
}

func TestMaxSmoothingRadius(t *testing.T) {
	// CSAM-SPEC.md §4.2: n = 1e5, α = 1e-3 give Φ⁻¹ ≈ 3.811, so radii
	// 0.457, 0.953, 1.906, 3.811 for σ = 0.12, 0.25, 0.5, 1.
	for _, tt := range []struct{ sigma, want float64 }{{0.12, 0.457}, {0.25, 0.953}, {0.5, 1.906}, {1, 3.811}} {
		got := runtime.MaxSmoothingRadius(tt.sigma, 100_000, 0.001)
		// The spec rounds to 3 decimals.
		if math.Abs(got-tt.want) > 0.0005+1e-12 {
			t.Errorf("MaxSmoothingRadius(%v, 1e5, 1e-3) = %.5f, want %.3f", tt.sigma, got, tt.want)
		}
		// And it is exactly what CERTIFY gives when every vote agrees.
		if r := runtime.SmoothingRadius(tt.sigma, runtime.ClopperPearsonLower(100_000, 100_000, 0.001)); math.Abs(r-got) > 1e-9 {
			t.Errorf("radius at nA = n = 1e5: %.12f, want MaxSmoothingRadius %.12f", r, got)
		}
	}
	if r := runtime.SmoothingRadius(1, 0.5); r != 0 {
		t.Errorf("SmoothingRadius(1, 0.5) = %v, want 0 (abstain)", r)
	}
}

func TestBinomTest(t *testing.T) {
	// Hand-computed exact p-values. For p = 1/2 the two-sided p-value of k
	// successes of n is 2·P(X ≥ max(k, n−k)) (capped at 1). For n = 4,
	// p = 1/4 the pmf is (81, 108, 54, 12, 1)/256 and the p-value sums the
	// outcomes no more likely than the observed one.
	tests := []struct {
		k, n int
		p    float64
		want float64
	}{
		{8, 10, 0.5, 2 * (45 + 10 + 1) / 1024.0},
		{2, 10, 0.5, 2 * (45 + 10 + 1) / 1024.0},
		{9, 10, 0.5, 2 * (10 + 1) / 1024.0},
		{10, 10, 0.5, 2 / 1024.0},
		{0, 10, 0.5, 2 / 1024.0},
		{5, 10, 0.5, 1},
		{6, 10, 0.5, 2 * 386 / 1024.0}, // 210+120+45+10+1 = 386
		{15, 20, 0.5, 2 * (15504 + 4845 + 1140 + 190 + 20 + 1) / 1048576.0},
		{0, 4, 0.25, (81 + 54 + 12 + 1) / 256.0},
		{3, 4, 0.25, (12 + 1) / 256.0},
		{2, 4, 0.25, (54 + 12 + 1) / 256.0},
		{1, 4, 0.25, 1},
		{7, 7, 0.5, 2 / 128.0},
	}
	for _, tt := range tests {
		got := runtime.BinomTest(tt.k, tt.n, tt.p)
		// The p-values are sums of a few dyadic fractions; the incomplete
		// beta evaluation they come from is good to ~1e-14 relative.
		if math.Abs(got-tt.want) > 1e-12*math.Max(1, tt.want) {
			t.Errorf("BinomTest(%d, %d, %v) = %.15g, want %.15g", tt.k, tt.n, tt.p, got, tt.want)
		}
	}
	if got := runtime.BinomTest(11, 10, 0.5); !math.IsNaN(got) {
		t.Errorf("BinomTest(11, 10, 0.5) = %v, want NaN", got)
	}
}

// ccDirect is CC-Cert's bound by the formula as written (no logarithms):
// b_j(t) = (1/n) Σ_i exp(t·Z_i) / exp(t·d), minimized over t, maximized
// over groups, divided by δ and capped at 1.
func ccDirect(z []float64, d float64, n, k int, delta float64, temps []float64) float64 {
	worst := 0.0
	for j := range k {
		best := math.Inf(1)
		for _, t := range temps {
			var s float64
			for _, v := range z[j*n : (j+1)*n] {
				s += math.Exp(t * v)
			}
			b := s / float64(n) / math.Exp(t*d)
			best = math.Min(best, b)
		}
		worst = math.Max(worst, best)
	}
	return math.Min(1, worst/delta)
}

func TestCCCertBoundMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	// A grid where exp(t·Z) stays finite (t·Z ≤ 60), so the direct formula
	// does not overflow.
	temps := make([]float64, 60)
	for i := range temps {
		temps[i] = 1e-4 + float64(i)
	}
	const n, k, delta = 100, 10, 0.9
	for trial := range 40 {
		z := make([]float64, n*k)
		scale := []float64{0.001, 0.01, 0.1, 0.5}[trial%4]
		for i := range z {
			z[i] = scale * rng.Float64()
		}
		d := []float64{0.05, 0.2, 0.45, scale}[trial/10]
		got := runtime.CCCertBound(z, d, n, k, delta, temps)
		want := ccDirect(z, d, n, k, delta, temps)
		// Both are float64 evaluations of the same expression; logsumexp
		// reorders the sum, so allow a few ulps of relative error.
		if math.Abs(got-want) > 1e-12*want {
			t.Errorf("trial %d (Z scale %v, d %v): CCCertBound = %.17g, direct = %.17g", trial, scale, d, got, want)
		}
	}
}

func TestCCCertBoundEdges(t *testing.T) {
	temps := runtime.DefaultTemperatures()
	if len(temps) != 500 || temps[0] != 1e-4 || temps[499] != 1e4 {
		t.Fatalf("DefaultTemperatures() = %d values %v … %v, want 500 from 1e-4 to 1e4", len(temps), temps[0], temps[len(temps)-1])
	}
	const n, k, delta = 100, 10, 0.9
	zeros := make([]float64, n*k)
	ones := make([]float64, n*k)
	for i := range ones {
		ones[i] = 1
	}
	tests := []struct {
		name string
		z    []float64
		d    float64
		want float64
		tol  float64
	}{
		// d = 0 is never certified.
		{"d=0", zeros, 0, 1, 0},
		// Z ≡ 0: b_j(t) = exp(−t·d), smallest at t = 1e4: exp(−1e4·d)/δ,
		// which underflows to 0 in float64 for d = 0.1 — and must not be
		// NaN.
		{"constant predictions", zeros, 0.1, 0, 0},
		{"constant predictions, tiny d", zeros, 1e-4, math.Exp(-1) / delta, 1e-15},
		// Z ≡ 1 ≥ d: exp(t(1−d)) ≥ 1 for every t, so the bound is 1 (the
		// direct formula overflows at t = 1e4 here).
		{"always flips", ones, 0.3, 1, 0},
	}
	for _, tt := range tests {
		got := runtime.CCCertBound(tt.z, tt.d, n, k, delta, temps)
		if math.IsNaN(got) || math.Abs(got-tt.want) > tt.tol {
			t.Errorf("%s: CCCertBound = %v, want %v", tt.name, got, tt.want)
		}
	}
	// One sampled Z at or above d in a group of n keeps that group's mean
	// of exp(t·(Z−d)) at 1/n or more for every t, so the bound is at least
	// 1/(n·δ) ≈ 0.011 > 1e-2; and when every Z is below d by a gap g, the
	// bound at t = 1e4 is at most exp(−1e4·g)/δ, below 1e-4 once g ≥ 1e-3.
	// So with n = 100 the default levels ε = 1e-2, 1e-3, 1e-4 differ only
	// for samples whose largest sampled Z lies within 1e-3 below d, which
	// is why verify's three figures usually agree.
	for _, d := range []float64{0.05, 0.3, 0.9} {
		z := make([]float64, n*k)
		for i := range z {
			z[i] = d / 2
		}
		z[3*n+17] = d
		got := runtime.CCCertBound(z, d, n, k, delta, temps)
		if want := 1 / (float64(n) * delta); got < want*(1-1e-12) {
			t.Errorf("one Z = d of %d: CCCertBound = %v, want >= 1/(n·δ) = %v", n*k, got, want)
		}
		z[3*n+17] = d / 2
		if got := runtime.CCCertBound(z, d, n, k, delta, temps); !(got < 1e-4) {
			t.Errorf("every Z = d/2 (d = %v): CCCertBound = %v, want < 1e-4 (certified at every default ε)", d, got)
		}
	}
	// Bad arguments are programmer errors.
	defer func() {
		if recover() == nil {
			t.Errorf("CCCertBound with len(z) ≠ n·k did not panic")
		}
	}()
	runtime.CCCertBound(zeros[:10], 0.1, n, k, delta, temps)
}

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ulps is the distance between two floats in units in the last place
// (their bit patterns' distance when the signs agree); NaN is at distance
// 0 from NaN only.
func ulps(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxInt64
	}
	if a == b {
		return 0
	}
	if math.Signbit(float64(a)) != math.Signbit(float64(b)) {
		return math.MaxInt64
	}
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	return max(d, -d)
}

// expInputs: every special value and range edge, then random values over
// the whole domain and densely around 0.
func expInputs() []float32 {
	nan := float32(math.NaN())
	x := []float32{0, float32(math.Copysign(0, -1)), 1, -1, nan, float32(math.Inf(1)), float32(math.Inf(-1)),
		88.72, 88.7228, 88.73, 89, 100, -87.33, -87.34, -100, -103.9, -103.98, -104, -110, 1e-30, -1e-30,
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0.34657359, -0.34657359}
	rng := rand.New(rand.NewPCG(3, 3))
	for range 20000 {
		x = append(x, float32(rng.Float64()*220-110), float32(rng.NormFloat64()), float32(rng.Float64()*12-6))
	}
	x = append(x, 0.625, -0.625, 0.62500006, 1, 0.99999994, 1.0000001, 4, -4, 3.9999998, 4.0000005, 9, 44, 45)
	return x
}

// checkUnary compares got with the float64 function f rounded to float32:
// within maxUlps, or within two of the smallest subnormal where the
// exact value is subnormal.
func checkUnary(t *testing.T, name string, x, got []float32, f func(float64) float64, maxUlps int64) {
	t.Helper()
	bad := 0
	for i, v := range x {
		want := float32(f(float64(v)))
		d := ulps(got[i], want)
		if d <= maxUlps || (math.Abs(float64(want)) < 0x1p-126 && math.Abs(float64(got[i]-want)) <= 0x1p-148) {
			continue
		}
		if bad++; bad <= 5 {
			t.Errorf("%s(%g) = %g, want %g (%d ulp)", name, v, got[i], want, d)
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d more wrong values", name, bad-5)
	}
}

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// TestExpMatchesFloat64: Exp, Sigmoid and Tanh within 2 ulp of the exact
// value, Erf within 3
// (subnormal results within two subnormal steps), +Inf, 0 and NaN where
// they belong, in the AVX2 kernel (where the CPU has it) and the Go loop,
// at every length the kernels split differently (two vectors, one, a
// masked tail); nothing past len(x) is written.
func TestExpMatchesFloat64(t *testing.T) {
	x := expInputs()
	goLoop := func(f func(x, y []float32)) func(x, y []float32) {
		return func(x, y []float32) { f(x, y[:len(x)]) }
	}
	for _, fn := range []struct {
		name string
		run  func(x, y []float32)
		f    func(float64) float64
		ulps int64
	}{{"Exp", Exp, math.Exp, 2}, {"Sigmoid", Sigmoid, sigmoid64, 2}, {"Tanh", Tanh, math.Tanh, 2}, {"Erf", Erf, math.Erf, 3},
		{"expGo", goLoop(expGo), math.Exp, 2}, {"sigmoidGo", goLoop(sigmoidGo), sigmoid64, 2},
		{"tanhGo", goLoop(tanhGo), math.Tanh, 2}, {"erfGo", goLoop(erfGo), math.Erf, 3}} {
		y := make([]float32, len(x))
		fn.run(x, y)
		checkUnary(t, fn.name, x, y, fn.f, fn.ulps)
		for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 23, 24, 31} {
			y := make([]float32, n+3)
			for i := range y {
				y[i] = 42
			}
			fn.run(x[:n], y)
			checkUnary(t, fn.name, x[:n], y[:n], fn.f, fn.ulps)
			if y[n] != 42 || y[n+2] != 42 {
				t.Errorf("%s on %d floats wrote past them: %v", fn.name, n, y[n:])
			}
		}
	}
}

// BenchmarkExp: Sigmoid over a [32 96 16 16] activation (786,432 floats)
// three ways in one run: the float64 math.Exp loop the engine ran before,
// the Go loop of this file, and Sigmoid (the AVX2 kernel where the CPU
// has it). ns/elem per way; compare within a run.
func BenchmarkExp(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	x := make([]float32, 32*96*16*16)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 3)
	}
	y := make([]float32, len(x))
	for _, c := range []struct {
		name string
		run  func()
	}{
		{"float64", func() {
			for i, v := range x {
				y[i] = float32(sigmoid64(float64(v)))
			}
		}},
		{"go", func() { sigmoidGo(x, y) }},
		{"kernel", func() { Sigmoid(x, y) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.run()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/elem")
		})
	}
}

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVecKernelsMatchDefinition checks the streaming kernels against
// float64 arithmetic for lengths around the vector width, and that the
// writing ones touch nothing past the length.
func TestVecKernelsMatchDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	near := func(what string, n int, got float32, want float64, terms int) {
		t.Helper()
		if d := math.Abs(float64(got) - want); !(d <= 2e-7*float64(terms+1)*(1+math.Abs(want))) {
			t.Fatalf("%s (n=%d) = %v, want %v", what, n, got, want)
		}
	}
	for _, n := range []int{0, 1, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 100, 1024, 1031} {
		g, x := randSlice(r, n+3), randSlice(r, n+3)
		mean := float32(r.NormFloat64())
		p, q, rr, s := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		var sum, ssd, sg, sgx float64
		for i := range n {
			sum += float64(x[i])
			dv := float64(x[i]) - float64(mean)
			ssd += dv * dv
			sg += float64(g[i])
			sgx += float64(g[i]) * dv
		}
		near("SumF32", n, SumF32(x[:n]), sum, n)
		near("SumSqDevF32", n, SumSqDevF32(x[:n], mean), ssd, n)
		a, b := GradSumsF32(g[:n], x, mean)
		near("GradSumsF32 sg", n, a, sg, n)
		near("GradSumsF32 sgx", n, b, sgx, n)
		y := randSlice(r, n+3)
		y0 := append([]float32(nil), y...)
		Affine(x[:n], p, q, y)
		for i := range y {
			want := float64(y0[i])
			if i < n {
				want = float64(p)*float64(x[i]) + float64(q)
			}
			near("Affine", n, y[i], want, 2)
		}
		for _, add := range []bool{false, true} {
			d := randSlice(r, n+3)
			d0 := append([]float32(nil), d...)
			Affine2(g[:n], x, p, q, rr, s, d, add)
			for i := range d {
				want := float64(d0[i])
				if i < n {
					v := float64(p)*float64(g[i]) + float64(q)*(float64(x[i])-float64(s)) + float64(rr)
					if add {
						want += v
					} else {
						want = v
					}
				}
				near("Affine2", n, d[i], want, 4)
			}
		}
	}
}

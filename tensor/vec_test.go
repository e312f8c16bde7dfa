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

// TestActivationKernelsMatchGoBitForBit runs Clip, ReluGrad and ClipGrad
// on data full of the values where min/max and sign tests differ between
// implementations (NaN, ±0, ±Inf, subnormals, the bounds themselves) and
// requires the assembly to give exactly the bits of the Go loops (a NaN
// for a NaN: payloads may differ).
func TestActivationKernelsMatchGoBitForBit(t *testing.T) {
	if !directAsm {
		t.Skip("no assembly kernels on this CPU/build: the Go loops are the only implementation")
	}
	r := rand.New(rand.NewPCG(13, 14))
	nan := float32(math.NaN())
	negNaN := math.Float32frombits(math.Float32bits(nan) | 1<<31)
	inf := float32(math.Inf(1))
	negZero := math.Float32frombits(1 << 31)
	specials := []float32{0, negZero, nan, negNaN, inf, -inf, 1e-40, -1e-40, 6, -6, 1, -1, 0.5, 5.999999}
	pick := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			if r.IntN(2) == 0 {
				s[i] = specials[r.IntN(len(specials))]
			} else {
				s[i] = float32(r.NormFloat64() * 4)
			}
		}
		return s
	}
	same := func(what string, got, want []float32) {
		t.Helper()
		for i := range got {
			bothNaN := got[i] != got[i] && want[i] != want[i] // NaN payloads may differ
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !bothNaN {
				t.Fatalf("%s[%d]: %v (%#08x), Go loop gives %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
	bounds := [][2]float32{{0, inf}, {0, 6}, {negZero, 6}, {-1, 1}, {-inf, 0}, {2, 1}, {0, 0}}
	for _, n := range []int{1, 7, 8, 9, 16, 17, 33, 1000} {
		x, g := pick(n), pick(n)
		for _, b := range bounds {
			got, want := make([]float32, n), make([]float32, n)
			Clip(x, b[0], b[1], got)
			clipGo(x, b[0], b[1], want)
			same("Clip", got, want)
			for _, add := range []bool{false, true} {
				d0 := pick(n)
				got, want = append([]float32(nil), d0...), append([]float32(nil), d0...)
				ClipGrad(x, g, b[0], b[1], got, add)
				clipGradGo(x, g, b[0], b[1], want, add)
				same("ClipGrad", got, want)
			}
		}
		y := make([]float32, n)
		clipGo(x, 0, inf, y)
		for _, add := range []bool{false, true} {
			d0 := pick(n)
			got, want := append([]float32(nil), d0...), append([]float32(nil), d0...)
			ReluGrad(y, g, got, add)
			reluGradGo(y, g, want, add)
			same("ReluGrad", got, want)
		}
	}
}

// TestReluFusedKernelsMatchUnfused: the Relu-fused kernels give exactly
// the bits of the unfused sequences they replace in BatchNormalization
// (Affine then Clip to [0, +Inf); ReluGrad then GradSumsF32 or Affine2),
// on data with NaN, ±0, ±Inf and subnormals, at tail lengths, in whichever
// implementation this build runs (assembly, or the Go loops with -tags
// purego).
func TestReluFusedKernelsMatchUnfused(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	negZero := math.Float32frombits(1 << 31)
	specials := []float32{0, negZero, nan, inf, -inf, 1e-40, -1e-40, 1, -1, 0.5}
	pick := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			if r.IntN(4) == 0 {
				s[i] = specials[r.IntN(len(specials))]
			} else {
				s[i] = float32(r.NormFloat64() * 4)
			}
		}
		return s
	}
	sameBits := func(what string, n int, got, want float32) {
		t.Helper()
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("%s, n=%d: %v (%#08x), unfused %v (%#08x)", what, n, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 33, 1000} {
		for _, ab := range [][2]float32{{1.5, -0.25}, {0.3, 0}, {-2, 1}, {0, 0}} {
			x := pick(n)
			z, tmp := make([]float32, n), make([]float32, n)
			AffineRelu(x, ab[0], ab[1], z)
			Affine(x, ab[0], ab[1], tmp)
			Clip(tmp, 0, inf, tmp)
			for i := range z {
				sameBits("AffineRelu", n, z[i], tmp[i])
			}
			g := pick(n)
			dy := make([]float32, n)
			ReluGrad(z, g, dy, false)
			mean := float32(r.NormFloat64())
			sg, sgx := GradSumsReluF32(g, z, x, mean)
			wg, wgx := GradSumsF32(dy, x, mean)
			sameBits("GradSumsReluF32 Σg", n, sg, wg)
			sameBits("GradSumsReluF32 Σg(x-mean)", n, sgx, wgx)
			for _, add := range []bool{false, true} {
				d0 := pick(n)
				got, want := append([]float32(nil), d0...), append([]float32(nil), d0...)
				Affine2Relu(g, z, x, 0.7, -0.2, 0.1, mean, got, add)
				Affine2(dy, x, 0.7, -0.2, 0.1, mean, want, add)
				for i := range got {
					sameBits("Affine2Relu", n, got[i], want[i])
				}
			}
		}
	}
}

// TestNormParamSumsBitForBit: the vector kernel gives the bits of the Go
// loop it replaces for every length (whole vectors and the scalar rest),
// on rows far from zero too, and adds into what s1 and s2 hold.
func TestNormParamSumsBitForBit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 3, 4, 5, 8, 13, 64, 767, 768, 1027} {
		g, x := make([]float32, n), make([]float32, n)
		for i := range n {
			g[i] = float32(r.NormFloat64())
			x[i] = 20 + 0.05*float32(r.NormFloat64())
		}
		mean, inv := 20.0013, 1/0.0497
		s1, s2 := make([]float64, n), make([]float64, n)
		w1, w2 := make([]float64, n), make([]float64, n)
		for i := range n {
			s1[i], s2[i] = r.NormFloat64(), r.NormFloat64()
			w1[i], w2[i] = s1[i], s2[i]
		}
		NormParamSums(g, x, mean, inv, s1, s2)
		for i := range n {
			w1[i] += float64(g[i]) * (float64(x[i]) - mean) * inv
			w2[i] += float64(g[i])
		}
		for i := range n {
			if math.Float64bits(s1[i]) != math.Float64bits(w1[i]) || math.Float64bits(s2[i]) != math.Float64bits(w2[i]) {
				t.Fatalf("n=%d, element %d: (%v, %v), the Go loop gives (%v, %v)", n, i, s1[i], s2[i], w1[i], w2[i])
			}
		}
	}
}

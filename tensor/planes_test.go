package tensor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPlanesMatchOnePlaneBitForBit: each planes kernel gives, plane by
// plane, the bits of the one-plane function it stands for (assembly on
// this CPU; with -tags purego the Go loops, which call those functions),
// on plane lengths around the vector width and values that include zeros
// of both signs, NaN, infinities and subnormals; and writes nothing past
// its planes.
func TestPlanesMatchOnePlaneBitForBit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vals := func(n int, special bool) []float32 {
		if special {
			return randSpecial(r, n, 5)
		}
		return randSlice(r, n)
	}
	same32 := func(a, b []float32) bool { return slices.Equal(float32Bits(a), float32Bits(b)) }
	same64 := func(a, b []float64) bool {
		return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
	}
	for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 24, 36, 64, 100, 256} {
		for _, np := range []int{0, 1, 3, 6} {
			for _, special := range []bool{false, true} {
				const pad = 5 // floats past the planes, which must stay as they are
				x, g, z := vals(np*n+pad, special), vals(np*n+pad, special), vals(np*n+pad, true)
				mean, p, q, rr, s := vals(np, special), vals(np, false), vals(np, false), vals(np, false), vals(np, false)
				init64 := make([]float64, np)
				for i := range init64 {
					init64[i] = r.NormFloat64()
				}
				out, ref := slices.Clone(init64), slices.Clone(init64)
				SumPlanes(x[:np*n], n, out)
				for i := range ref {
					ref[i] += float64(SumF32(x[i*n : (i+1)*n]))
				}
				if !same64(out, ref) {
					t.Fatalf("SumPlanes n=%d np=%d special=%v: %v, want %v", n, np, special, out, ref)
				}
				out, ref = slices.Clone(init64), slices.Clone(init64)
				SumSqDevPlanes(x[:np*n], n, mean, out)
				for i := range ref {
					ref[i] += float64(SumSqDevF32(x[i*n:(i+1)*n], mean[i]))
				}
				if !same64(out, ref) {
					t.Fatalf("SumSqDevPlanes n=%d np=%d special=%v: %v, want %v", n, np, special, out, ref)
				}
				for _, zz := range [][]float32{nil, z} {
					sg, sgx := slices.Clone(init64), slices.Clone(init64)
					rg, rgx := slices.Clone(init64), slices.Clone(init64)
					GradSumsPlanes(g[:np*n], zz, x, n, mean, sg, sgx)
					for i := range rg {
						var a, b float32
						if zz != nil {
							a, b = GradSumsReluF32(g[i*n:(i+1)*n], zz[i*n:], x[i*n:], mean[i])
						} else {
							a, b = GradSumsF32(g[i*n:(i+1)*n], x[i*n:], mean[i])
						}
						rg[i] += float64(a)
						rgx[i] += float64(b)
					}
					if !same64(sg, rg) || !same64(sgx, rgx) {
						t.Fatalf("GradSumsPlanes n=%d np=%d special=%v relu=%v: %v %v, want %v %v", n, np, special, zz != nil, sg, sgx, rg, rgx)
					}
				}
				for _, relu := range []bool{false, true} {
					y, want := vals(np*n+pad, false), []float32(nil)
					want = slices.Clone(y)
					AffinePlanes(x[:np*n], n, p, q, y, relu)
					for i := range np {
						if relu {
							AffineRelu(x[i*n:(i+1)*n], p[i], q[i], want[i*n:])
						} else {
							Affine(x[i*n:(i+1)*n], p[i], q[i], want[i*n:])
						}
					}
					if !same32(y, want) {
						t.Fatalf("AffinePlanes n=%d np=%d special=%v relu=%v: %v, want %v", n, np, special, relu, y, want)
					}
				}
				for _, zz := range [][]float32{nil, z} {
					for _, add := range []bool{false, true} {
						d := vals(np*n+pad, special)
						want := slices.Clone(d)
						Affine2Planes(g[:np*n], zz, x, n, p, q, rr, s, d, add)
						for i := range np {
							gi, xi, wi := g[i*n:(i+1)*n], x[i*n:], want[i*n:]
							if zz != nil {
								Affine2Relu(gi, zz[i*n:], xi, p[i], q[i], rr[i], s[i], wi, add)
							} else {
								Affine2(gi, xi, p[i], q[i], rr[i], s[i], wi, add)
							}
						}
						if !same32(d, want) {
							t.Fatalf("Affine2Planes n=%d np=%d special=%v relu=%v add=%v: %v, want %v", n, np, special, zz != nil, add, d, want)
						}
					}
				}
			}
		}
	}
}

// TestReluXPlanesMatchZ: the Relu-fused backward kernels that recompute z
// from x and the forward coefficients give the bits of the ones that read
// the z AffinePlanes wrote, with special values in x, g and the
// coefficients.
func TestReluXPlanesMatchZ(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{1, 7, 8, 16, 17, 64, 100, 1024} {
		for _, np := range []int{1, 3} {
			x, g := randSpecial(r, np*n, 6), randSpecial(r, np*n, 6)
			a, b := randSpecial(r, np, 4), randSpecial(r, np, 4)
			mean, p, q, rr, s := randSlice(r, np), randSlice(r, np), randSlice(r, np), randSlice(r, np), randSlice(r, np)
			z := make([]float32, np*n)
			AffinePlanes(x, n, a, b, z, true)
			sg, sgx := make([]float64, np), make([]float64, np)
			wg, wgx := make([]float64, np), make([]float64, np)
			GradSumsReluXPlanes(g, x, n, a, b, mean, sg, sgx)
			GradSumsPlanes(g, z, x, n, mean, wg, wgx)
			for i := range sg {
				if math.Float64bits(sg[i]) != math.Float64bits(wg[i]) || math.Float64bits(sgx[i]) != math.Float64bits(wgx[i]) {
					t.Fatalf("GradSumsReluXPlanes n=%d np=%d: plane %d %v %v, with z %v %v", n, np, i, sg[i], sgx[i], wg[i], wgx[i])
				}
			}
			for _, add := range []bool{false, true} {
				d := randSpecial(r, np*n, 6)
				want := slices.Clone(d)
				Affine2ReluXPlanes(g, x, n, a, b, p, q, rr, s, d, add)
				Affine2Planes(g, z, x, n, p, q, rr, s, want, add)
				if !slices.Equal(float32Bits(d), float32Bits(want)) {
					t.Fatalf("Affine2ReluXPlanes n=%d np=%d add=%v differs from the z variant", n, np, add)
				}
			}
		}
	}
}

package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// coreRefGemm is a float64 reference for C = alpha*op(A)*op(B) + beta*C.
func coreRefGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = float64(alpha)*s + float64(beta)*float64(c[i*ldc+j])
		}
	}
	return out
}

func coreRandSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// TestSgemmImplementationsAgree runs every compiled-in implementation on the
// same problems and compares each with a float64 reference.
func TestSgemmImplementationsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		m, n, k     int
		alpha, beta float32
		pad         int // extra row stride
	}{
		{1, 1, 1, 1, 0, 0},
		{3, 5, 7, 1, 0, 0},
		{17, 33, 65, 0.5, 1, 0},
		{64, 100, 576, 1, 0, 3},
		{7, 129, 31, -2, 0.25, 1},
		{4, 4, 0, 1, 0.5, 0}, // k = 0: C = beta*C
	}
	for _, impl := range gemmImpls {
		for _, tc := range cases {
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				name := fmt.Sprintf("%s/%dx%dx%d/tA=%v,tB=%v", impl.name, tc.m, tc.n, tc.k, tr[0], tr[1])
				t.Run(name, func(t *testing.T) {
					ar, ac := tc.m, tc.k
					if tr[0] {
						ar, ac = ac, ar
					}
					br, bc := tc.k, tc.n
					if tr[1] {
						br, bc = bc, br
					}
					lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
					a := coreRandSlice(r, max(ar*lda, 1))
					b := coreRandSlice(r, max(br*ldb, 1))
					c := coreRandSlice(r, tc.m*ldc)
					want := coreRefGemm(tr[0], tr[1], tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
					old := gemmImpls
					gemmImpls = []gemmImpl{impl}
					Sgemm(tr[0], tr[1], tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
					gemmImpls = old
					for i := range tc.m {
						for j := range tc.n {
							got := float64(c[i*ldc+j])
							// float32 accumulation of k products of unit normals:
							// the rounding error grows like sqrt(k)*eps*|terms|.
							tol := 1e-5 * (1 + math.Sqrt(float64(tc.k))*4) * (1 + math.Abs(want[i*tc.n+j]))
							if math.Abs(got-want[i*tc.n+j]) > tol {
								t.Fatalf("C[%d,%d] = %v, want %v (tol %g)", i, j, got, want[i*tc.n+j], tol)
							}
						}
					}
				})
			}
		}
	}
}

func TestSgemmBetaZeroIgnoresNaN(t *testing.T) {
	for _, impl := range gemmImpls {
		a := []float32{1, 2}
		b := []float32{3, 4}
		c := []float32{float32(math.NaN())}
		old := gemmImpls
		gemmImpls = []gemmImpl{impl}
		Sgemm(false, false, 1, 1, 2, 1, a, 2, b, 1, 0, c, 1)
		gemmImpls = old
		if c[0] != 11 {
			t.Errorf("%s: Sgemm with beta=0 over NaN C = %v, want 11", impl.name, c[0])
		}
	}
}

func TestSgemmPanicsOnShortSlice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Sgemm with a too short A did not panic")
		}
	}()
	Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
}

func TestParallelCoversEachIndexOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 2, 3, 8} {
		for _, n := range []int{0, 1, 2, 7, 100} {
			hits := make([]int32, n)
			Parallel(workers, n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i]++
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("Parallel(%d, %d): index %d visited %d times, want 1", workers, n, i, h)
				}
			}
			hits = make([]int32, n)
			ForEach(workers, n, func(w, i int) {
				hits[i]++
				if w < 0 || w >= max(workers, 1) {
					panic("worker id out of range")
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("ForEach(%d, %d): index %d visited %d times, want 1", workers, n, i, h)
				}
			}
		}
	}
}

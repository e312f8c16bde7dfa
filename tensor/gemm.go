package tensor

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// sgemmFunc is one GEMM implementation behind the Sgemm seam. Arguments are
// checked by Sgemm before the call; m, n and k are positive.
type sgemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

type gemmImpl struct {
	name string
	fn   sgemmFunc
}

// gemmImpls lists the compiled-in implementations, best first; gemmImpls[0]
// is the one Sgemm uses. The gonum one is always present.
var gemmImpls = []gemmImpl{{name: "gonum", fn: gonumSgemm}}

func gonumSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GEMMBackend names the implementation Sgemm uses: "openblas" (cgo,
// the default) or "gonum" (pure Go, when built with CGO_ENABLED=0 or
// -tags noopenblas).
func GEMMBackend() string { return gemmImpls[0].name }

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major float32
// matrices, where op(X) is X or its transpose, op(A) is m×k, op(B) is k×n
// and C is m×n. lda, ldb and ldc are the row strides. When beta is 0, C is
// overwritten (its old contents, even NaN, do not matter).
//
// It runs on the calling goroutine (OpenBLAS is kept single-threaded, see
// doc.go); kernels parallelize around it with Parallel. The result for a
// given shape does not depend on how callers split other work, so equal
// calls give bit-identical results.
//
// Sgemm panics if a stride or slice length does not fit the shape: that is
// a programmer error, checked so that the C implementation can never read
// or write outside the slices.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("tensor: Sgemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	checkMat("C", m, n, c, ldc)
	if k == 0 || alpha == 0 {
		scaleMat(m, n, beta, c, ldc)
		return
	}
	if transA {
		checkMat("A", k, m, a, lda)
	} else {
		checkMat("A", m, k, a, lda)
	}
	if transB {
		checkMat("B", n, k, b, ldb)
	} else {
		checkMat("B", k, n, b, ldb)
	}
	gemmImpls[0].fn(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func checkMat(name string, rows, cols int, x []float32, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("tensor: Sgemm: ld%s=%d < %d columns", name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(x) < need {
		panic(fmt.Sprintf("tensor: Sgemm: %s has %d elements, a %d×%d matrix with stride %d needs %d", name, len(x), rows, cols, ld, need))
	}
}

func scaleMat(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

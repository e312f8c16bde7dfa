//go:build cgo && !noopenblas

package openblas

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

// Available reports whether the binding is compiled in.
const Available = true

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices with
// cblas_sgemm. Callers (package tensor) have checked the dimensions and
// slice lengths; m, n and k are positive.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = uint32(C.CblasTrans)
	}
	if transB {
		tb = uint32(C.CblasTrans)
	}
	C.cblas_sgemm(C.CblasRowMajor, C.enum_CBLAS_TRANSPOSE(ta), C.enum_CBLAS_TRANSPOSE(tb),
		C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(&a[0]), C.blasint(lda),
		(*C.float)(&b[0]), C.blasint(ldb),
		C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}

// SetThreads sets the number of threads OpenBLAS uses inside one call.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// Threads is the number of threads OpenBLAS uses inside one call.
func Threads() int { return int(C.openblas_get_num_threads()) }

// Config describes the library build (version, threading, kernel core).
func Config() string {
	return C.GoString(C.openblas_get_config()) + " core=" + C.GoString(C.openblas_get_corename())
}

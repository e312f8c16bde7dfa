//go:build cgo && !noopenblas

package openblas

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
#include <dlfcn.h>

// csam_stop_thread_pool ends OpenBLAS's worker threads (pthread builds
// start them when the library loads). It is looked up at run time because
// only threaded builds define it.
static int csam_stop_thread_pool(void) {
	int (*shutdown)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
	if (shutdown == 0) {
		return -1;
	}
	return shutdown();
}
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

// StopThreadPool ends the worker threads a threaded OpenBLAS started when
// it loaded; call it after SetThreads(1). Idle, those threads do not
// always sleep: on these virtual machines they were seen spinning in
// sched_yield, taking up to 17% of the CPU time of a training step from
// the engine's own workers. With one thread per call OpenBLAS never needs
// them again (it would start them anew if the thread count were raised).
// It reports whether the library had a pool to stop.
func StopThreadPool() bool { return C.csam_stop_thread_pool() == 0 }

// Threads is the number of threads OpenBLAS uses inside one call.
func Threads() int { return int(C.openblas_get_num_threads()) }

// Config describes the library build (version, threading, kernel core).
func Config() string {
	return C.GoString(C.openblas_get_config()) + " core=" + C.GoString(C.openblas_get_corename())
}

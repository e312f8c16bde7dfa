//go:build !cgo || noopenblas

package openblas

// Available reports whether the binding is compiled in.
const Available = false

// Sgemm panics: the binding is not compiled in (check Available first).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	panic("openblas: not built (cgo disabled or noopenblas tag)")
}

// SetThreads does nothing without the binding.
func SetThreads(n int) {}

// Threads is 0 without the binding.
func Threads() int { return 0 }

// Config is empty without the binding.
func Config() string { return "" }

// StopThreadPool does nothing without the binding.
func StopThreadPool() bool { return false }

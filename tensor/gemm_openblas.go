//go:build cgo && !noopenblas

package tensor

import "github.com/csam-onnx/csam-onnx/tensor/internal/openblas"

func init() {
	// One OpenBLAS thread per call: the engine parallelizes over fixed
	// chunks of the batch with its own bounded pool (Parallel), which keeps
	// results independent of the worker count. See doc.go for the
	// measurements behind this choice. The worker threads a threaded
	// OpenBLAS started at load time are then stopped: idle, they spin
	// (TestOpenBLASThreadsDoNotSpin).
	openblas.SetThreads(1)
	openblas.StopThreadPool()
	gemmImpls = append([]gemmImpl{{name: "openblas", fn: openblas.Sgemm}}, gemmImpls...)
}

// OpenBLASConfig describes the linked OpenBLAS build, or is empty when it
// is not compiled in.
func OpenBLASConfig() string { return openblas.Config() }

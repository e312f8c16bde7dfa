// Package tensor holds csam-onnx's dense tensors and the hot numerical
// kernels the engine runs on them: the GEMM seam (Sgemm), im2col and its
// adjoint for convolution (Im2col, Col2im over a Window), and the bounded
// worker pool helpers (Parallel, ForEach).
//
// Conventions: tensors are row-major, images NCHW, float32. Kernels write
// into a destination the caller passes (destination first); they do not
// allocate in steady state. Kernels panic only on programmer errors (shapes
// that validation has already ruled out); anything that depends on user
// input is checked earlier and returned as an error.
//
// # GEMM
//
// Sgemm is row-major single-precision GEMM. Its implementation is chosen
// when the program starts: OpenBLAS through a small cgo binding
// (tensor/internal/openblas, Debian libopenblas-dev, -lopenblas) by
// default; gonum's pure-Go blas (gonum.org/v1/gonum/blas/gonum) when built
// with CGO_ENABLED=0 or -tags noopenblas. GEMMBackend names the one in use;
// a test checks that every compiled-in implementation agrees with a
// float64 reference.
//
// # Threads and determinism
//
// OpenBLAS is set to one thread per call, and the engine parallelizes
// around it: each kernel splits its work into pieces fixed by the shapes
// alone (for a convolution, chunks of the batch), runs them on at most
// Workers goroutines (Parallel, ForEach; no goroutine outlives the call),
// and combines partial sums in a fixed order. So the results are
// bit-identical for any worker count, including GOMAXPROCS=1, which
// OpenBLAS's own threading (splitting one GEMM differently per thread
// count) would not guarantee, and the im2col/col2im copies run in parallel
// too. Measured on the im2col shapes of CIFAR ResNet-18 (BenchmarkSgemm,
// M=64..512, K=576..4608, N=1024) on this 2-core machine, two goroutines
// each running a single-threaded OpenBLAS GEMM reach the same throughput
// as one GEMM with 2 OpenBLAS threads (both ~100-150 GFLOP/s, varying with
// the machine's load). The environment variables that select OpenBLAS
// kernels (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) are never set or changed.
package tensor

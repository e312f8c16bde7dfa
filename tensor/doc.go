// Package tensor holds csam-onnx's dense tensors and the hot numerical
// kernels the engine runs on them (GEMM through gonum's blas32 seam,
// im2col convolution, pooling).
//
// Conventions: tensors are row-major, images NCHW, float32. Kernels write
// into a destination the caller passes (destination first); they do not
// allocate in steady state. Kernels panic only on programmer errors (shapes
// that validation has already ruled out); anything that depends on user
// input is checked earlier and returned as an error.
package tensor

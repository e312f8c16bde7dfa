// Package openblas is csam-onnx's minimal cgo binding to OpenBLAS (Debian
// libopenblas-dev, linked with -lopenblas): single-precision GEMM and the
// library's thread control. It is its own package because Go forbids
// assembly files in a package that uses cgo.
//
// The package only builds with cgo and without the noopenblas build tag;
// package tensor falls back to gonum's pure-Go GEMM otherwise.
//
// Environment variables that select OpenBLAS kernels (OPENBLAS_CORETYPE,
// OPENBLAS_L2_SIZE) are read by the library at load time; this package
// never sets or changes them.
package openblas

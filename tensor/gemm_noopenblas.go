//go:build !cgo || noopenblas

package tensor

// OpenBLASConfig describes the linked OpenBLAS build, or is empty when it
// is not compiled in.
func OpenBLASConfig() string { return "" }

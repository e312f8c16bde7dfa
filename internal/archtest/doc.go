// Package archtest holds the test that keeps the import directions of
// docs/architecture.md (the twin of the design's package table): the IR
// knows nothing of files, training or onnxruntime, training knows nothing
// of onnxruntime, verification knows nothing of how a model was made, and
// only internal/cli knows cobra. It has no non-test code.
package archtest

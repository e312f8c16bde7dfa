// Package conformance runs the ONNX backend-test material (a folder per
// test: model.onnx plus test_data_set_N/input_K.pb and output_K.pb) through
// the autodiff engine and classifies each test as passing, failing, or
// unsupported, next to what onnxruntime does on the same test (the
// <folder>.ort-results.tsv files beside the folders).
//
// Results are compared with an absolute plus relative tolerance (Atol +
// Rtol·|expected|, the bound onnxruntime itself meets on this material);
// integer outputs must match exactly. The engine fixes every shape when it
// compiles, so graph inputs fed integer tensors (shapes, axes, slice
// bounds, pads, indices) are bound as constants of the compiled model. Markdown renders the report
// docs/conformance.md holds; the autodiff package's TestConformance writes
// it (`make conformance`) and asserts that every test onnxruntime passes
// and the engine supports passes in the engine too.
package conformance

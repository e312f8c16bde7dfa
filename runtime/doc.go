// Package runtime verifies an exported ONNX model in onnxruntime: it opens
// sessions, measures clean accuracy, latency and file size, and computes
// the certificates of CSAM-SPEC.md §4 (CC-Cert and randomized smoothing).
// It knows nothing of how the model was made; everything it reports is
// measured on the file a user ships.
//
// # Sessions
//
// onnxruntime is reached through github.com/yalue/onnxruntime_go v1.27.0
// and the onnxruntime 1.24.3 shared library. FindLibrary locates the
// library (the --ort-lib flag, $ONNXRUNTIME_SHARED_LIBRARY_PATH, then the
// cache that `make setup` fills); Init loads it once per process. Open and
// OpenBytes create a Session whose inputs and outputs are discovered from
// the model; Run takes and returns tensor.Tensor values, with outputs
// allocated by onnxruntime and copied into Go memory. The binding's known
// limits are guarded here: a model without inputs gives an error instead of
// a panic, rank-0 outputs and float16 outputs are pre-allocated so they are
// neither refused nor truncated. Errors from onnxruntime become errors of
// this package in one function and name the model they concern.
//
// # Conventions
//
// Images are float32 NCHW tensors with pixels in [0,1]; models normalize
// internally, so noise and transforms act on [0,1] pixels. Randomness is
// always passed in as a *rand.Rand; long work takes a context first and
// stops when it is cancelled. Nothing here panics on bad input: models,
// data and options that do not fit give errors naming the model, the input
// or the option at fault.
//
// The package is named runtime as the design fixes it; files that need Go's
// own runtime import it as goruntime.
package runtime

package onnxio

import (
	"errors"
	"fmt"
)

// ErrNotONNX is wrapped by the error for input that is not an ONNX model at
// all (empty, truncated or corrupt protobuf, an image, ...):
// errors.Is(err, onnxio.ErrNotONNX).
var ErrNotONNX = errors.New("not an ONNX model")

// The supported versions: what onnxruntime 1.24.3 accepts.
const (
	MinIRVersion = 3
	MaxIRVersion = 13
	MinOpset     = 6
	MaxOpset     = 25
	// RuntimeName names the runtime the supported range comes from.
	RuntimeName = "onnxruntime 1.24.3"
)

// MaxModelSize is the largest model file (or tensor file) onnxio reads: the
// 2 GiB limit of a protobuf message. Larger weights belong in external
// data files.
const MaxModelSize = 1<<31 - 1

// VersionError reports an IR version or ai.onnx opset outside the supported
// range.
type VersionError struct {
	File     string // the model file, "" when decoding a stream
	Kind     string // "IR version" or "opset"
	Domain   string // for Kind "opset": "ai.onnx"
	Version  int64
	Min, Max int64
}

func (e *VersionError) Error() string {
	what := e.Kind + " " + fmt.Sprint(e.Version)
	if e.Kind == "opset" {
		what = e.Domain + " opset " + fmt.Sprint(e.Version)
	}
	rel := "newer"
	if e.Version < e.Min {
		rel = "older"
	}
	msg := fmt.Sprintf("%s is %s than the supported range %d-%d (%s)", what, rel, e.Min, e.Max, RuntimeName)
	if e.File != "" {
		return "onnxio: " + e.File + ": " + msg
	}
	return "onnxio: " + msg
}

// fileError prefixes an error with the package and, when known, the file.
type fileError struct {
	file string
	err  error
}

func (e *fileError) Error() string {
	if e.file == "" {
		return "onnxio: " + e.err.Error()
	}
	return "onnxio: " + e.file + ": " + e.err.Error()
}

func (e *fileError) Unwrap() error { return e.err }

// fileErr wraps err with the file name; a VersionError gets the file name
// filled in instead of being wrapped.
func fileErr(file string, err error) error {
	if err == nil {
		return nil
	}
	var ve *VersionError
	if errors.As(err, &ve) {
		ve.File = file
		return ve
	}
	var fe *fileError
	if errors.As(err, &fe) {
		if fe.file == "" {
			fe.file = file
		}
		return fe
	}
	return &fileError{file: file, err: err}
}

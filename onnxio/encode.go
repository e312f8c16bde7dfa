package onnxio

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/graph"
)

// Marshal encodes m as ONNX protobuf bytes. A model decoded by Decode comes
// back as the same protobuf message; tensors whose external data ReadFile
// loaded are written inline.
func Marshal(m *graph.Model) ([]byte, error) {
	b, err := marshal(m)
	return b, fileErr("", err)
}

// marshal is Marshal with errors not yet prefixed.
func marshal(m *graph.Model) ([]byte, error) {
	p, err := modelToProto(m)
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxModelSize {
		return nil, fmt.Errorf("the model encodes to %d bytes, over the %d-byte protobuf limit; write large initializers as external data (WriteFileExternal)", len(b), MaxModelSize)
	}
	return b, nil
}

// Encode writes m to w as ONNX protobuf.
func Encode(w io.Writer, m *graph.Model) error {
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("onnxio: %w", err)
	}
	return nil
}

// WriteFile writes m to path atomically: the bytes go to a temporary file
// in the same folder, which is synced and renamed over path, so path never
// holds a half-written model.
func WriteFile(path string, m *graph.Model) error {
	b, err := marshal(m)
	if err != nil {
		return fileErr(path, err)
	}
	return writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("onnxio: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fileErr(path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fileErr(path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fileErr(path, err)
	}
	return nil
}

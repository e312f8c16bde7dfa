package onnxio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
)

func fixtureBytes(b *testing.B) []byte {
	p := filepath.Join(testenv.SharedDir(b, "fixtures", "torch-1.13"), "small_cnn_32_op14_eval", "model.onnx")
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkDecode(b *testing.B) {
	data := fixtureBytes(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	m, err := Decode(bytes.NewReader(fixtureBytes(b)))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

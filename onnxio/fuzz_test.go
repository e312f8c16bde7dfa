package onnxio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// fuzzSeeds are the shared models FuzzDecode starts from: every fixture
// and a few small conformance models of different IR versions.
var fuzzSeeds = []string{
	"onnx-conformance/node/test_conv_with_strides_padding/model.onnx",
	"onnx-conformance/node/test_batchnorm_example/model.onnx",
	"onnx-conformance/node/test_constant/model.onnx",
	"onnx-conformance/node-v1.12.0/test_split_equal_parts_1d/model.onnx",
	"onnx-conformance/pytorch-operator/test_operator_conv/model.onnx",
	"onnx-conformance/node/test_identity_sequence/model.onnx",
}

// FuzzDecode: decode → encode → decode → encode must never panic, must
// reproduce the message read (proto.Equal) and must be stable. Inputs it
// once failed on are kept in testdata/fuzz/FuzzDecode and run with every
// `go test`: external_empty and external_inline (an external tensor with
// no elements or with inline data was written inline, losing its
// external_data), untyped_empty (an empty tensor without data_type could
// not be written back).
func FuzzDecode(f *testing.F) {
	base := os.Getenv("CSAM_SHARED_DIR")
	if base == "" {
		base = filepath.Join(testenv.RepoRoot(), "..", "shared")
	}
	seeds := append([]string(nil), fuzzSeeds...)
	fixtures, _ := filepath.Glob(filepath.Join(base, "fixtures", "torch-1.13", "*", "model.onnx"))
	for _, p := range fixtures {
		rel, _ := filepath.Rel(base, p)
		seeds = append(seeds, rel)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(filepath.Join(base, s))
		if err != nil {
			if testenv.InCI() {
				f.Fatalf("fuzz seed: %v", err)
			}
			continue // the corpus below still runs
		}
		f.Add(b)
	}
	bad, _ := filepath.Glob(filepath.Join("testdata", "bad", "*.onnx"))
	for _, p := range bad {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(mustMarshal(richModel()))

	f.Fuzz(func(t *testing.T, in []byte) {
		// The default options must not panic either.
		Decode(bytes.NewReader(in))

		m1, err := DecodeWith(bytes.NewReader(in), &ReadOptions{AnyVersion: true})
		if err != nil {
			return
		}
		b1, err := Marshal(m1)
		if err != nil {
			t.Fatalf("Marshal of a decoded model: %v", err)
		}
		// Lossless: the written message equals the one read.
		var want, got onnxpb.Model
		if err := proto.Unmarshal(in, &want); err != nil {
			t.Fatalf("Decode accepted bytes protobuf rejects: %v", err)
		}
		if err := proto.Unmarshal(b1, &got); err != nil {
			t.Fatalf("written bytes do not parse: %v", err)
		}
		if !proto.Equal(&got, &want) {
			t.Fatalf("Marshal(Decode(in)) is not proto.Equal to in")
		}
		m2, err := DecodeWith(bytes.NewReader(b1), &ReadOptions{AnyVersion: true})
		if err != nil {
			t.Fatalf("Decode of written bytes: %v", err)
		}
		b2, err := Marshal(m2)
		if err != nil {
			t.Fatalf("second Marshal: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("Marshal(Decode(Marshal(m))) differs from Marshal(m)")
		}
	})
}

// FuzzDecodeTensor checks DecodeTensor (the backend-test .pb reader):
// never a panic, and whatever it accepts EncodeTensor writes back to a
// tensor with the same type, shape and bits.
func FuzzDecodeTensor(f *testing.F) {
	for _, x := range []*tensor.Tensor{
		tensor.FromFloat32([]float32{1, -2, 3.5}, 3),
		tensor.FromInt64([]int64{1, 2, 3, 4}, 2, 2),
		{DType: tensor.Bool, Shape: []int{2}, I64: []int64{1, 0}},
		{DType: tensor.String, Shape: []int{1}, Str: [][]byte{[]byte("s")}},
		{DType: tensor.Float16, Shape: []int{1}, Raw: []byte{0, 0x3c}},
	} {
		b, err := EncodeTensor(x, "x")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(mustMarshal(&onnxpb.Tensor{DataType: proto.Int32(6), Dims: []int64{2}, Int32Data: []int32{-1, 7}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := DecodeTensor(in)
		if err != nil {
			return
		}
		b, err := EncodeTensor(x, "x")
		if err != nil {
			t.Fatalf("EncodeTensor of a decoded tensor: %v", err)
		}
		y, err := DecodeTensor(b)
		if err != nil {
			t.Fatalf("DecodeTensor of written bytes: %v", err)
		}
		if !sameTensor(x, y) {
			t.Fatalf("DecodeTensor(EncodeTensor(x)) = %v, want %v", y, x)
		}
	})
}

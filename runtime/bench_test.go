package runtime_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func benchSession(b *testing.B) *runtime.Session {
	initORT(b)
	dir := testenv.SharedDir(b, "fixtures", "torch-1.13", "small_cnn_32_op14_dynbatch")
	s, err := runtime.Open(filepath.Join(dir, "model.onnx"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkSampleUnderNoise: noisy samples per second through onnxruntime
// (2 intra-op threads) for a small CIFAR-shaped CNN.
func BenchmarkSampleUnderNoise(b *testing.B) {
	s := benchSession(b)
	img := tensor.New(3, 32, 32)
	for i := range img.F32 {
		img.F32[i] = float32(i%255) / 255
	}
	rng := rand.New(rand.NewPCG(1, 1))
	const num = 1000
	for b.Loop() {
		if _, err := runtime.SampleUnderNoise(context.Background(), s, img, num, 0.25, 500, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(num*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkCorruptionSweep: corrupted images per second (corruption in Go
// on GOMAXPROCS workers, then onnxruntime) over two corruption kinds.
func BenchmarkCorruptionSweep(b *testing.B) {
	s := benchSession(b)
	images := testImagesShape(64, 3, 32, 32)
	labels := make([]int, 64)
	cs := corruptions(b, "gaussian_noise", "zoom_blur")
	opts := &runtime.SweepOptions{Severities: []int{3}, Batch: 64}
	for b.Loop() {
		if _, err := runtime.CorruptionSweep(context.Background(), s, runtime.SliceBatches(images, labels, 64), cs, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(64*len(cs)*b.N)/b.Elapsed().Seconds(), "images/s")
}

func testImagesShape(n int, shape ...int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(uint64(n), 2))
	x := tensor.New(append([]int{n}, shape...)...)
	for i := range x.F32 {
		x.F32[i] = rng.Float32()
	}
	return x
}

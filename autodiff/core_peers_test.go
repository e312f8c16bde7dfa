package autodiff_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// BenchmarkResNet18Peers runs CIFAR ResNet-18 inference at batch 64 with 2
// threads in the Go engine and in onnxruntime (the same model, exported
// with onnxio) in one run, so that their ratio is measured under the same
// machine load. It first checks that both give the same logits.
func BenchmarkResNet18Peers(b *testing.B) {
	const batch, threads = 64, 2
	lib := testenv.ORTLibrary(b)
	if err := runtime.Init(lib); err != nil {
		b.Fatal(err)
	}
	m := autodiff.CoreResNet18(batch, 10, 1)
	data, err := onnxio.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := runtime.OpenBytes(data, &runtime.SessionOptions{IntraOpThreads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	prog, err := autodiff.Compile(m, [][]int{{batch, 3, 32, 32}}, &autodiff.Options{Workers: threads, Params: []string{}})
	if err != nil {
		b.Fatal(err)
	}
	x := tensor.New(batch, 3, 32, 32)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x.F32 {
		x.F32[i] = float32(rng.NormFloat64())
	}
	copy(prog.Input(0).F32, x.F32)
	if err := prog.Forward(); err != nil {
		b.Fatal(err)
	}
	outs, err := sess.Run([]*tensor.Tensor{x})
	if err != nil {
		b.Fatal(err)
	}
	worst := 0.0
	for i, v := range outs[0].F32 {
		worst = math.Max(worst, math.Abs(float64(v-prog.Output(0).F32[i])))
	}
	// 20 layers of float32 GEMMs summed in different orders.
	if worst > 1e-3 {
		b.Fatalf("engine and onnxruntime logits differ by %g", worst)
	}
	b.Run("engine", func(b *testing.B) {
		cpu0 := autodiff.CoreCPUSeconds()
		for b.Loop() {
			if err := prog.Forward(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
		b.ReportMetric(float64(batch*b.N)/(autodiff.CoreCPUSeconds()-cpu0), "images/CPU-s")
	})
	b.Run("onnxruntime", func(b *testing.B) {
		cpu0 := autodiff.CoreCPUSeconds()
		for b.Loop() {
			if _, err := sess.Run([]*tensor.Tensor{x}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
		b.ReportMetric(float64(batch*b.N)/(autodiff.CoreCPUSeconds()-cpu0), "images/CPU-s")
	})
}

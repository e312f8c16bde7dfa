//go:build cgo && !noopenblas

package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/csam-onnx/csam-onnx/tensor/internal/openblas"
)

// im2col GEMM shapes of CIFAR ResNet-18's 3×3 convolutions: M output
// channels, K = 9·input channels, N columns (a chunk of batch·H·W).
var coreGemmShapes = []struct{ m, k, n int }{
	{64, 576, 1024},
	{128, 1152, 1024},
	{256, 2304, 1024},
	{512, 4608, 1024},
}

// BenchmarkSgemm compares, on the same shapes in the same run: the
// project's wrapper on one goroutine (wrapper-1), OpenBLAS called directly
// (direct-1), OpenBLAS with 2 internal threads (direct-2threads), and the
// engine's choice, two goroutines each running the wrapper on its own
// chunk (wrapper-2goroutines; reported GFLOP/s counts both chunks).
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range coreGemmShapes {
		a := coreRandSlice(r, s.m*s.k)
		x := [2][]float32{coreRandSlice(r, s.k*s.n), coreRandSlice(r, s.k*s.n)}
		c := [2][]float32{make([]float32, s.m*s.n), make([]float32, s.m*s.n)}
		flop := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		report := func(b *testing.B, calls float64) {
			b.ReportMetric(calls*flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		shape := fmt.Sprintf("M=%d,K=%d,N=%d", s.m, s.k, s.n)
		b.Run(shape+"/wrapper-1", func(b *testing.B) {
			for b.Loop() {
				Sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, x[0], s.n, 0, c[0], s.n)
			}
			report(b, 1)
		})
		b.Run(shape+"/direct-1", func(b *testing.B) {
			for b.Loop() {
				openblas.Sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, x[0], s.n, 0, c[0], s.n)
			}
			report(b, 1)
		})
		// Interleaved calls cancel the drift of a shared machine's load:
		// the ratio is what the wrapper keeps of OpenBLAS's speed.
		b.Run(shape+"/wrapper-vs-direct", func(b *testing.B) {
			var tw, td time.Duration
			for b.Loop() {
				t0 := time.Now()
				Sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, x[0], s.n, 0, c[0], s.n)
				t1 := time.Now()
				openblas.Sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, x[0], s.n, 0, c[0], s.n)
				td += time.Since(t1)
				tw += t1.Sub(t0)
			}
			b.ReportMetric(flop*float64(b.N)/tw.Seconds()/1e9, "wrapper-GFLOP/s")
			b.ReportMetric(flop*float64(b.N)/td.Seconds()/1e9, "direct-GFLOP/s")
			b.ReportMetric(td.Seconds()/tw.Seconds(), "wrapper/direct")
		})
		b.Run(shape+"/direct-2threads", func(b *testing.B) {
			openblas.SetThreads(2)
			defer openblas.SetThreads(1)
			for b.Loop() {
				openblas.Sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, x[0], s.n, 0, c[0], s.n)
			}
			report(b, 1)
		})
		b.Run(shape+"/wrapper-2goroutines", func(b *testing.B) {
			for b.Loop() {
				ForEach(2, 2, func(_, i int) {
					Sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, x[i], s.n, 0, c[i], s.n)
				})
			}
			report(b, 2)
		})
	}
}

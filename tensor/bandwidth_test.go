package tensor

import (
	"testing"
	"time"
)

// BenchmarkStreamBandwidth measures the memory bandwidth one and two
// workers get on a streaming y = a·x + b over 64 MiB arrays (far larger
// than the caches), alternating the two in every iteration, in GB/s
// (bytes read + written) and their ratio. Elementwise kernels of a
// batch-128 training step (batch normalization, activations, their
// gradients) stream tensors of this size, so this ratio bounds how much a
// second worker can speed them up.
func BenchmarkStreamBandwidth(b *testing.B) {
	const n = 16 << 20
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(i % 1000)
	}
	pass := func(workers int) time.Duration {
		t0 := time.Now()
		Parallel(workers, n, func(lo, hi int) {
			xs, ys := x[lo:hi], y[lo:hi]
			for i, v := range xs {
				ys[i] = 1.5*v + 0.5
			}
		})
		return time.Since(t0)
	}
	pass(1)
	pass(2)
	var t1, t2 time.Duration
	for b.Loop() {
		t1 += pass(1)
		t2 += pass(2)
	}
	bytes := float64(8 * n * b.N)
	b.ReportMetric(bytes/t1.Seconds()/1e9, "1worker-GB/s")
	b.ReportMetric(bytes/t2.Seconds()/1e9, "2workers-GB/s")
	b.ReportMetric(t1.Seconds()/t2.Seconds(), "2workers/1worker")
}

package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkDirectConv compares, on one core and one image, the direct
// convolution against im2col + Sgemm (the path it replaces) on the 3×3
// stride-1 shapes of CIFAR ResNets: forward (Y = W·col) and weight
// gradient (dW = dY·colᵀ), in GFLOP/s of the convolution's arithmetic.
func BenchmarkDirectConv(b *testing.B) {
	if !directAsm {
		b.Skip("no direct-convolution kernels on this CPU/build")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range []struct{ c, m, hw int }{{16, 16, 32}, {32, 32, 16}, {64, 64, 8}, {64, 64, 32}, {128, 128, 16}, {256, 256, 16}} {
		g := Window{H: s.hw, W: s.hw, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: s.hw, OW: s.hw}
		dc, ok := NewDirectConv(&g, s.c)
		if !ok {
			continue // 8-pixel rows: left to im2col
		}
		k, p := dc.K(), s.hw*s.hw
		x, w, dy := randSlice(r, s.c*p), randSlice(r, s.m*k), randSlice(r, s.m*p)
		y, dw := make([]float32, s.m*p), make([]float32, s.m*k)
		col, xp, wp := make([]float32, k*p), make([]float32, dc.PadSize()), make([]float32, dc.PackedSize(s.m))
		flop := 2 * float64(s.m*k*p)
		name := fmt.Sprintf("c%d_m%d_%dx%d", s.c, s.m, s.hw, s.hw)
		report := func(b *testing.B) {
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		b.Run(name+"/fwd/direct", func(b *testing.B) {
			for b.Loop() {
				dc.PackWeights(s.m, w, wp)
				dc.Pad(x, xp)
				dc.Forward(xp, wp, s.m, y, false)
			}
			report(b)
		})
		b.Run(name+"/fwd/im2col", func(b *testing.B) {
			for b.Loop() {
				Im2col(&g, s.c, x, col, p, 0)
				Sgemm(false, false, s.m, p, k, 1, w, k, col, p, 0, y, p)
			}
			report(b)
		})
		b.Run(name+"/dw/direct", func(b *testing.B) {
			for b.Loop() {
				dc.Pad(x, xp)
				dc.WeightGrad(xp, dy, s.m, dw)
			}
			report(b)
		})
		b.Run(name+"/dw/im2col", func(b *testing.B) {
			for b.Loop() {
				Im2col(&g, s.c, x, col, p, 0)
				Sgemm(false, true, s.m, k, p, 1, dy, p, col, p, 1, dw, k)
			}
			report(b)
		})
	}
}

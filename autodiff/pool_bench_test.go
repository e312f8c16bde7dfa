package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// BenchmarkMaxPool3x3 times MaxPool 3×3, stride 1, pad 1 (GoogLeNet's
// inception branch) forward on a [128, 120, 16, 16] tensor with 2 workers,
// in window taps per second.
func BenchmarkMaxPool3x3(b *testing.B) {
	// GoogLeNet's pools: stride 1 inside the inception blocks, stride 2
	// between the stages (both pad 1).
	for _, c := range []struct {
		name          string
		n, c, h, w, s int
	}{{"s1_16x16", 128, 120, 16, 16, 1}, {"s2_32x32", 128, 120, 32, 32, 2}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			img := make([]float32, c.n*c.c*c.h*c.w)
			for i := range img {
				img[i] = rng.Float32()
			}
			kern, err := newPool(newTestNode("MaxPool", 1, 1, intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1),
				intsAttr("strides", int64(c.s), int64(c.s))), 19, true)
			if err != nil {
				b.Fatal(err)
			}
			outs, err := kern.Setup([]Value{{DType: tensor.Float32, Shape: []int{c.n, c.c, c.h, c.w}, Present: true}})
			if err != nil {
				b.Fatal(err)
			}
			x := tensor.FromFloat32(img, c.n, c.c, c.h, c.w)
			y := &tensor.Tensor{DType: tensor.Float32, Shape: outs[0].Shape, F32: make([]float32, tensor.Numel(outs[0].Shape))}
			ctx := &RunContext{Workers: 2}
			for b.Loop() {
				if err := kern.Forward(ctx, []*tensor.Tensor{x}, []*tensor.Tensor{y, nil}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(y.F32)*9*b.N)/b.Elapsed().Seconds()/1e9, "Gtaps/s")
		})
	}
}

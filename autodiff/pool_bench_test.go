package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// BenchmarkMaxPool3x3 times MaxPool 3×3 with padding 1 forward, 2
// workers, through tensor.MaxPool3x3 ("3x3") and through the staged-plane
// path ("staged"), alternated, on GoogLeNet w0.25's pools: stride 1 inside
// the inception blocks, stride 2 between the stages.
func BenchmarkMaxPool3x3(b *testing.B) {
	for _, c := range []struct {
		name          string
		n, c, h, w, s int
	}{{"s1_16x16", 128, 120, 16, 16, 1}, {"s1_8x8", 128, 208, 8, 8, 1}, {"s2_32x32", 128, 120, 32, 32, 2}, {"s2_16x16", 128, 208, 16, 16, 2}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			img := make([]float32, c.n*c.c*c.h*c.w)
			for i := range img {
				img[i] = rng.Float32()
			}
			x := tensor.FromFloat32(img, c.n, c.c, c.h, c.w)
			ctx := &RunContext{Workers: 2}
			forward := func(on bool) func() {
				defer func(was bool) { maxPool3x3On = was }(maxPool3x3On)
				maxPool3x3On = on
				kern, err := newPool(newTestNode("MaxPool", 1, 1, intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1),
					intsAttr("strides", int64(c.s), int64(c.s))), 19, true)
				if err != nil {
					b.Fatal(err)
				}
				outs, err := kern.Setup([]Value{{DType: tensor.Float32, Shape: []int{c.n, c.c, c.h, c.w}, Present: true}})
				if err != nil {
					b.Fatal(err)
				}
				if got := kern.(*poolKernel).pool3 > 0; got != on {
					b.Fatalf("MaxPool3x3 taken: %v, want %v", got, on)
				}
				y := &tensor.Tensor{DType: tensor.Float32, Shape: outs[0].Shape, F32: make([]float32, tensor.Numel(outs[0].Shape))}
				return func() {
					if err := kern.Forward(ctx, []*tensor.Tensor{x}, []*tensor.Tensor{y, nil}); err != nil {
						b.Fatal(err)
					}
				}
			}
			alternateSteps(b, "3x3", forward(true), "staged", forward(false))
		})
	}
}

package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestLRN(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	x := randomTensor(rng, 2, 5, 2, 3)
	for _, size := range []int64{1, 2, 3, 4, 5} {
		node := newTestNode("LRN", 1, 1, intAttr("size", size), floatAttr("alpha", 0.5), floatAttr("beta", 0.75), floatAttr("bias", 2))
		got, err := runKernel(node, 13, x)
		if err != nil {
			t.Fatal(err)
		}
		// Reference straight from the ONNX definition.
		for b := range 2 {
			for c := range 5 {
				for p := range 6 {
					var sum float64
					for j := c - int(size-1)/2; j <= c+int(size)/2; j++ {
						if j >= 0 && j < 5 {
							v := float64(x.F32[(b*5+j)*6+p])
							sum += v * v
						}
					}
					i := (b*5+c)*6 + p
					want := float64(x.F32[i]) / math.Pow(2+0.5/float64(size)*sum, 0.75)
					// float32 output: a few ulps.
					if d := math.Abs(float64(got[0].F32[i]) - want); d > 1e-6 {
						t.Fatalf("LRN size %d [%d] = %v, want %v", size, i, got[0].F32[i], want)
					}
				}
			}
		}
		gradCheck(t, node, 13, []*tensor.Tensor{x}, []int{0}, gradCheckTol)
	}
}

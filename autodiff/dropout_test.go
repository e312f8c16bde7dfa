package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestDropoutInferenceIsIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	x := randomTensor(rng, 3, 4)
	for _, opset := range []int64{7, 10, 13} {
		out, err := runKernel(newTestNode("Dropout", 1, 2), opset, x)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out[0].F32 {
			if v != x.F32[i] {
				t.Fatalf("opset %d: inference Dropout changed x[%d]: %v, want %v", opset, i, v, x.F32[i])
			}
		}
		if opset >= 10 && (out[1].DType != tensor.Bool || out[1].I64[0] != 1) {
			t.Errorf("opset %d: mask = %s %v, want bool all true", opset, out[1].DType, out[1].I64)
		}
	}
}

func TestDropoutTraining(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	x := tensor.New(4000)
	for i := range x.F32 {
		x.F32[i] = 1
	}
	ratio := tensor.FromFloat32([]float32{0.25})
	node := newTestNode("Dropout", 2, 2)
	in := []*tensor.Tensor{x, ratio}
	kern, outs := setupKernel(t, node, 13, in, []int{1})
	run := func(seed uint64) ([]float32, []int64) {
		y := tensor.New(outs[0].Shape...)
		mask := allocTensor(outs[1].DType, outs[1].Shape)
		ctx := &RunContext{Training: true, Workers: 1, RNG: pcgRNG{rand.New(rand.NewPCG(seed, 1))}}
		if err := kern.Forward(ctx, in, []*tensor.Tensor{y, mask}); err != nil {
			t.Fatal(err)
		}
		return y.F32, mask.I64
	}
	y, mask := run(1)
	kept := 0
	for i, v := range y {
		switch {
		case mask[i] == 1 && math.Abs(float64(v)-1/0.75) < 1e-6:
			kept++
		case mask[i] == 0 && v == 0:
		default:
			t.Fatalf("y[%d] = %v with mask %d, want 0 or 1/(1-ratio)", i, v, mask[i])
		}
	}
	// Binomial(4000, 0.75): mean 3000, sd 27; 5 sd.
	if kept < 2863 || kept > 3137 {
		t.Errorf("kept %d of 4000 with ratio 0.25, want about 3000", kept)
	}
	y2, _ := run(1)
	y3, _ := run(2)
	same, differ := true, false
	for i := range y {
		same = same && y[i] == y2[i]
		differ = differ || y[i] != y3[i]
	}
	if !same || !differ {
		t.Errorf("masks: same seed equal = %v (want true), other seed differs = %v (want true)", same, differ)
	}
	rng.Float32()
	gradCheckWith(t, gradCheckConfig{Node: node, Opset: 13, Inputs: []*tensor.Tensor{randomTensor(rng, 5, 6), ratio},
		ConstInputs: []int{1}, Wrt: []int{0}, Training: true, Outputs: []int{0}, Seed: 3})
}

func TestDropoutBadRatio(t *testing.T) {
	if _, _, err := trySetupKernel(newTestNode("Dropout", 2, 1), 13,
		[]*tensor.Tensor{tensor.New(3), tensor.FromFloat32([]float32{1.5})}, []int{1}); err == nil {
		t.Error("Dropout with ratio 1.5: no error")
	}
}

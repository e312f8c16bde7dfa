package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// coreBNInputs returns X [2,3,4,5] and scale, B, mean, var (var > 0).
func coreBNInputs(rng *rand.Rand, x ...int) []*tensor.Tensor {
	if x == nil {
		x = []int{2, 3, 4, 5}
	}
	c := x[1]
	v := randomTensor(rng, c)
	for i := range v.F32 {
		v.F32[i] = 0.5 + v.F32[i]*v.F32[i]
	}
	return []*tensor.Tensor{randomTensor(rng, x...), randomTensor(rng, c), randomTensor(rng, c), randomTensor(rng, c), v}
}

func TestBatchNormInference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	in := coreBNInputs(rng)
	out, err := runKernel(newTestNode("BatchNormalization", 5, 1, floatAttr("epsilon", 1e-3)), 15, in...)
	if err != nil {
		t.Fatal(err)
	}
	x, sc, b, m, v := in[0], in[1].F32, in[2].F32, in[3].F32, in[4].F32
	for i, got := range out[0].F32 {
		c := (i / 20) % 3
		want := (float64(x.F32[i])-float64(m[c]))/math.Sqrt(float64(v[c])+1e-3)*float64(sc[c]) + float64(b[c])
		// float32 arithmetic on values of magnitude ~1.
		if math.Abs(float64(got)-want) > 1e-5 {
			t.Fatalf("y[%d] = %v, want %v", i, got, want)
		}
	}
}

func TestBatchNormTraining(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	in := coreBNInputs(rng)
	rm0, rv0 := append([]float32(nil), in[3].F32...), append([]float32(nil), in[4].F32...)
	node := newTestNode("BatchNormalization", 5, 3, intAttr("training_mode", 1), floatAttr("momentum", 0.8))
	kern, outs := setupKernel(t, node, 15, in, nil)
	outT := []*tensor.Tensor{tensor.New(outs[0].Shape...), tensor.New(3), tensor.New(3)}
	// The attribute alone: batch statistics, running stats to the outputs,
	// inputs untouched.
	if err := kern.Forward(&RunContext{Workers: 2}, in, outT); err != nil {
		t.Fatal(err)
	}
	x := in[0].F32
	for c := range 3 {
		var mean, sq float64
		var ym, yv float64
		for n := range 2 {
			for p := range 20 {
				v := float64(x[(n*3+c)*20+p])
				mean += v / 40
				sq += v * v / 40
				yv0 := (float64(outT[0].F32[(n*3+c)*20+p]) - float64(in[2].F32[c])) / float64(in[1].F32[c])
				ym += yv0 / 40
				yv += yv0 * yv0 / 40
			}
		}
		variance := sq - mean*mean
		// Normalized values have mean 0 and variance var/(var+eps).
		if math.Abs(ym) > 1e-5 || math.Abs(yv-variance/(variance+1e-5)) > 1e-4 {
			t.Errorf("channel %d: normalized mean %v, variance %v; want 0, %v", c, ym, yv, variance/(variance+1e-5))
		}
		wantRM := 0.8*float64(rm0[c]) + 0.2*mean
		wantRV := 0.8*float64(rv0[c]) + 0.2*variance
		if math.Abs(float64(outT[1].F32[c])-wantRM) > 1e-5 || math.Abs(float64(outT[2].F32[c])-wantRV) > 1e-5 {
			t.Errorf("channel %d: running mean, var = %v, %v; want %v, %v", c, outT[1].F32[c], outT[2].F32[c], wantRM, wantRV)
		}
		if in[3].F32[c] != rm0[c] || in[4].F32[c] != rv0[c] {
			t.Errorf("channel %d: running stats input changed without RunContext.Training", c)
		}
	}
	// Program training mode: the running statistics are updated in place,
	// unless frozen.
	if err := kern.Forward(&RunContext{Workers: 1, Training: true, FreezeRunningStats: true}, in, outT); err != nil {
		t.Fatal(err)
	}
	if in[3].F32[0] != rm0[0] {
		t.Errorf("frozen running mean changed: %v, want %v", in[3].F32[0], rm0[0])
	}
	if err := kern.Forward(&RunContext{Workers: 1, Training: true}, in, outT); err != nil {
		t.Fatal(err)
	}
	for c := range 3 {
		if in[3].F32[c] != outT[1].F32[c] || in[4].F32[c] != outT[2].F32[c] {
			t.Errorf("channel %d: running stats %v, %v after a training Forward, want %v, %v", c, in[3].F32[c], in[4].F32[c], outT[1].F32[c], outT[2].F32[c])
		}
	}
}

func TestBatchNormGradients(t *testing.T) {
	tests := []struct {
		name     string
		opset    int64
		attrs    []*graph.Attribute
		training bool
		x        []int
		wrt      []int
	}{
		{"inference", 15, nil, false, nil, []int{0, 1, 2, 3, 4}},
		{"inference-2d", 9, nil, false, []int{4, 3}, []int{0, 1, 2, 3, 4}},
		{"program-training", 15, nil, true, nil, []int{0, 1, 2}},
		{"attr-training", 15, []*graph.Attribute{intAttr("training_mode", 1)}, false, nil, []int{0, 1, 2}},
		{"training-opset9", 9, nil, true, []int{3, 2, 2, 3}, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 3))
			gradCheckWith(t, gradCheckConfig{
				Node:     newTestNode("BatchNormalization", 5, 1, tt.attrs...),
				Opset:    tt.opset,
				Inputs:   coreBNInputs(rng, tt.x...),
				Wrt:      tt.wrt,
				Training: tt.training,
				Outputs:  []int{0},
			})
		})
	}
}

func TestBatchNormSetupErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	in := coreBNInputs(rng)
	in[1] = randomTensor(rng, 4) // wrong channel count
	if _, _, err := trySetupKernel(newTestNode("BatchNormalization", 5, 1), 15, in, nil); err == nil {
		t.Error("BatchNormalization with a scale of 4 channels for 3: no error")
	}
	if _, err := newBatchNorm(newTestNode("BatchNormalization", 5, 1, intAttr("training_mode", 2)), 15); err == nil {
		t.Error("training_mode=2: no error")
	}
}

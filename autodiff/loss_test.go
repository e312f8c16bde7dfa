package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"

	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestSoftmaxCrossEntropy(t *testing.T) {
	// Two rows, 3 classes; row 0 is uniform: loss ln 3.
	logits := tensor.FromFloat32([]float32{0, 0, 0, 1, 2, 5}, 2, 3)
	loss, correct, err := SoftmaxCrossEntropy(logits, []int{1, 2}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	lse := math.Log(math.Exp(1) + math.Exp(2) + math.Exp(5))
	want := (math.Log(3) + lse - 5) / 2
	if math.Abs(loss-want) > 1e-12 {
		t.Errorf("loss = %v, want %v", loss, want)
	}
	// Row 0 ties: first maximum (class 0) is not the label 1.
	if correct != 1 {
		t.Errorf("correct = %d, want 1", correct)
	}
}

func TestSoftmaxCrossEntropyGradient(t *testing.T) {
	for _, smoothing := range []float64{0, 0.1} {
		rng := rand.New(rand.NewPCG(15, 15))
		logits := randomTensor(rng, 4, 5)
		labels := []int{0, 3, 4, 1}
		grad := tensor.New(4, 5)
		if _, _, err := SoftmaxCrossEntropy(logits, labels, smoothing, grad); err != nil {
			t.Fatal(err)
		}
		x := make([]float64, 20)
		for i, v := range logits.F32 {
			x[i] = float64(v)
		}
		work := tensor.New(4, 5)
		f := func(x []float64) float64 {
			for i, v := range x {
				work.F32[i] = float32(v)
			}
			l, _, _ := SoftmaxCrossEntropy(work, labels, smoothing, nil)
			return l
		}
		num := fd.Gradient(nil, f, x, &fd.Settings{Formula: fd.Central, Step: 1e-3})
		for i := range num {
			// The loss is computed in float64 from float32 logits; with
			// h = 1e-3 the error is the float32 rounding of x+h (~6e-8/h).
			if math.Abs(float64(grad.F32[i])-num[i]) > 1e-4 {
				t.Errorf("smoothing %v: dL/dz[%d] = %v, want %v", smoothing, i, grad.F32[i], num[i])
			}
		}
	}
}

func TestSoftmaxCrossEntropyBadInput(t *testing.T) {
	logits := tensor.New(2, 3)
	tests := []struct {
		name      string
		labels    []int
		smoothing float64
		grad      *tensor.Tensor
	}{
		{"label-range", []int{0, 3}, 0, nil},
		{"negative-label", []int{-1, 0}, 0, nil},
		{"label-count", []int{0}, 0, nil},
		{"smoothing", []int{0, 1}, 1.5, nil},
		{"grad-size", []int{0, 1}, 0, tensor.New(5)},
	}
	for _, tt := range tests {
		if _, _, err := SoftmaxCrossEntropy(logits, tt.labels, tt.smoothing, tt.grad); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	nan := tensor.FromFloat32([]float32{float32(math.NaN()), 0}, 1, 2)
	loss, _, err := SoftmaxCrossEntropy(nan, []int{0}, 0, nil)
	if err != nil || !math.IsNaN(loss) {
		t.Errorf("NaN logits: loss %v, err %v; want NaN, nil", loss, err)
	}
}

package autodiff

import (
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"testing"
)

// coreStep compiles m with the given worker count (0: GOMAXPROCS), runs one
// training forward and backward on seeded input, and returns the logits and
// every parameter gradient, by name.
func coreStep(t *testing.T, batch, workers int) map[string][]float32 {
	t.Helper()
	m := coreSmallCNN(batch, 1)
	p, err := Compile(m, [][]int{{batch, 3, 12, 12}}, &Options{Workers: workers, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTraining(true)
	rng := rand.New(rand.NewPCG(2, 3))
	for i := range p.Input(0).F32 {
		p.Input(0).F32[i] = float32(rng.NormFloat64())
	}
	if err := p.Forward(); err != nil {
		t.Fatal(err)
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % 5
	}
	loss, _, err := SoftmaxCrossEntropy(p.Output(0), labels, 0.1, p.OutputGrad(0))
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(loss) || loss <= 0 {
		t.Fatalf("loss = %v, want a positive number", loss)
	}
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{"logits": append([]float32(nil), p.Output(0).F32...)}
	for _, name := range p.Params() {
		out[name] = append([]float32(nil), p.Grad(name).F32...)
	}
	out["input-grad"] = append([]float32(nil), p.Grad("input").F32...)
	return out
}

// TestWorkersBitIdentical checks that the worker count does not change
// any result: forward outputs and every gradient of a small CNN are
// bit-identical with 1 and 2 workers, and with GOMAXPROCS=1.
func TestWorkersBitIdentical(t *testing.T) {
	const batch = 10 // several conv chunks and reduction groups
	one := coreStep(t, batch, 1)
	two := coreStep(t, batch, 2)
	three := coreStep(t, batch, 3)
	prev := goruntime.GOMAXPROCS(1)
	serial := coreStep(t, batch, 0)
	goruntime.GOMAXPROCS(prev)
	nonzero := 0
	for name, want := range one {
		for _, other := range []struct {
			label string
			got   []float32
		}{{"2 workers", two[name]}, {"3 workers", three[name]}, {"GOMAXPROCS=1", serial[name]}} {
			if len(other.got) != len(want) {
				t.Fatalf("%s: %d values with %s, %d with 1 worker", name, len(other.got), other.label, len(want))
			}
			for i := range want {
				if math.Float32bits(other.got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s[%d] = %v with %s, %v with 1 worker", name, i, other.got[i], other.label, want[i])
				}
			}
		}
		for _, v := range want {
			if v != 0 {
				nonzero++
				break
			}
		}
	}
	// Every parameter that influences the loss must receive a gradient;
	// BatchNormalization's running statistics (unused in training mode)
	// are the exception.
	if nonzero < len(one)-6 {
		t.Errorf("only %d of %d gradients are non-zero", nonzero, len(one))
	}
}

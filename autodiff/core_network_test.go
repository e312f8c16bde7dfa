package autodiff

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
)

// coreLoss runs p forward on its current input and returns the mean
// softmax cross-entropy against labels (filling the output gradient).
func coreLoss(t *testing.T, p *Program, labels []int) float64 {
	t.Helper()
	if err := p.Forward(); err != nil {
		t.Fatal(err)
	}
	loss, _, err := SoftmaxCrossEntropy(p.Output(0), labels, 0, p.OutputGrad(0))
	if err != nil {
		t.Fatal(err)
	}
	return loss
}

// TestSmallCNNWholeNetworkGradient compares the gradient of the loss with
// respect to a few weights of every parameterized layer of coreSmallCNN,
// in training mode, with central finite differences through the whole
// network.
func TestSmallCNNWholeNetworkGradient(t *testing.T) {
	const batch = 4
	m := coreSmallCNN(batch, 3)
	// Dropout would redraw its mask on every forward; replace it by an
	// identity for this check (Dropout has its own gradient test).
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Dropout" {
			n.OpType = "Identity"
		}
	}
	p, err := Compile(m, [][]int{{batch, 3, 12, 12}}, &Options{Workers: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTraining(true)
	p.SetFreezeRunningStats(true)
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range p.Input(0).F32 {
		p.Input(0).F32[i] = float32(rng.NormFloat64())
	}
	labels := []int{0, 1, 2, 3}
	coreLoss(t, p, labels)
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range p.Params() {
		if strings.HasPrefix(name, "bn_mean") || strings.HasPrefix(name, "bn_var") {
			continue // unused in training mode
		}
		w := p.Value(name).F32
		g := append([]float32(nil), p.Grad(name).F32...)
		for _, i := range []int{0, len(w) / 2, len(w) - 1} {
			orig := w[i]
			const h = 1e-2
			w[i] = orig + h
			lp := coreLoss(t, p, labels)
			w[i] = orig - h
			lm := coreLoss(t, p, labels)
			w[i] = orig
			num := (lp - lm) / (2 * h)
			// The loss is O(1) and computed through ~12 float32 layers
			// (relative rounding ~1e-6 per layer, so ~1e-5 on the loss);
			// divided by 2h that is ~1e-3; the truncation error of the
			// central difference with h = 1e-2 on this smooth network is
			// of the same order. A wrong backward is off by O(|g|).
			if d := math.Abs(float64(g[i]) - num); d > 2e-3+2e-2*math.Abs(num) {
				t.Errorf("d loss/d %s[%d] = %.6g (backward), want %.6g (finite differences)", name, i, g[i], num)
			}
			checked++
		}
	}
	if checked < 30 {
		t.Errorf("checked %d weights, want every layer covered", checked)
	}
}

// TestProgramBadInput: wrong input shapes and unsupported attributes are
// errors from Compile naming the problem; NaN inputs propagate to NaN
// logits and a NaN loss without a panic.
func TestProgramBadInput(t *testing.T) {
	if _, err := Compile(coreSmallCNN(2, 1), [][]int{{2, 3, 10, 12}}, nil); err == nil || !strings.Contains(err.Error(), "input") {
		t.Errorf("Compile with input [2 3 10 12] for a [2 3 12 12] model: err = %v, want an error naming the input", err)
	}
	m := coreSmallCNN(2, 1)
	for _, n := range m.Graph.Nodes {
		if n.OpType == "MaxPool" {
			n.Attrs = append(n.Attrs, &graph.Attribute{Name: "auto_pad", Type: graph.AttrString, S: []byte("SAME")})
		}
	}
	if _, err := Compile(m, [][]int{{2, 3, 12, 12}}, nil); err == nil || !strings.Contains(err.Error(), "MaxPool") {
		t.Errorf("Compile with MaxPool auto_pad=SAME: err = %v, want an error naming the MaxPool node", err)
	}
	p, err := Compile(coreSmallCNN(2, 1), [][]int{{2, 3, 12, 12}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetTraining(true)
	for i := range p.Input(0).F32 {
		p.Input(0).F32[i] = float32(math.NaN())
	}
	if err := p.Forward(); err != nil {
		t.Fatal(err)
	}
	for i, v := range p.Output(0).F32 {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("logit %d = %v from NaN input, want NaN", i, v)
		}
	}
	loss, _, err := SoftmaxCrossEntropy(p.Output(0), []int{0, 1}, 0, p.OutputGrad(0))
	if err != nil || !math.IsNaN(loss) {
		t.Errorf("loss from NaN logits = %v, %v; want NaN, nil", loss, err)
	}
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
}

// TestBackwardDoesNotAccumulate: a second Backward on the same forward
// gives the same gradients, not twice them (Backward zeroes every
// gradient buffer before its first writer adds into it).
func TestBackwardDoesNotAccumulate(t *testing.T) {
	p, err := Compile(coreSmallCNN(3, 2), [][]int{{3, 3, 12, 12}}, &Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range p.Input(0).F32 {
		p.Input(0).F32[i] = float32(rng.NormFloat64())
	}
	coreLoss(t, p, []int{0, 1, 2})
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
	first := map[string][]float32{}
	for _, name := range append(p.Params(), "input") {
		first[name] = append([]float32(nil), p.Grad(name).F32...)
	}
	if err := p.Backward(); err != nil {
		t.Fatal(err)
	}
	for name, want := range first {
		for i, v := range p.Grad(name).F32 {
			if v != want[i] {
				t.Fatalf("second Backward: grad %s[%d] = %v, first gave %v", name, i, v, want[i])
			}
		}
	}
}

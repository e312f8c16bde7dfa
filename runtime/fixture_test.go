package runtime_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// fixture opens a PyTorch fixture and returns its session, the stored
// input images and the labels its stored logits predict.
func fixture(t *testing.T, name string) (*runtime.Session, *tensor.Tensor, []int) {
	t.Helper()
	initORT(t)
	dir := testenv.SharedDir(t, "fixtures", "torch-1.13", name)
	s, err := runtime.Open(filepath.Join(dir, "model.onnx"), &runtime.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	in, err := onnxio.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := onnxio.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	k := out.Shape[1]
	labels := make([]int, out.Shape[0])
	for i := range labels {
		row := out.F32[i*k : (i+1)*k]
		labels[i] = slices.Index(row, slices.Max(row))
	}
	return s, in, labels
}

// TestAccuracyFixedBatch runs a model exported with a fixed batch of 2 on
// 3 images, so the last batch is padded.
func TestAccuracyFixedBatch(t *testing.T) {
	for _, name := range []string{"small_cnn_32_op14_eval", "small_cnn_32_op14_dynbatch"} {
		t.Run(name, func(t *testing.T) {
			s, in, labels := fixture(t, name)
			per := in.Len() / in.Shape[0]
			three := tensor.New(append([]int{3}, in.Shape[1:]...)...)
			copy(three.F32, in.F32)
			copy(three.F32[2*per:], in.F32[:per])
			labels3 := append(slices.Clone(labels), labels[0])
			for _, batch := range []int{1, 2, 64} {
				e, err := runtime.Accuracy(context.Background(), s, runtime.SliceBatches(three, labels3, 3), batch)
				if err != nil {
					t.Fatal(err)
				}
				if e.N != 3 || e.Correct != 3 {
					t.Errorf("Accuracy(batch %d) = %+v, want 3 of 3 (labels are the stored predictions)", batch, e)
				}
			}
		})
	}
}

func TestCertifyCCDeterministic(t *testing.T) {
	s, stored, _ := fixture(t, "small_cnn_32_op14_dynbatch")
	// CC-Cert works on [0, 1] pixels (transformed images are clipped), the
	// stored inputs are standard normal: squash them, and label each image
	// with the model's own prediction.
	in := stored.Clone()
	for i, v := range in.F32 {
		in.F32[i] = min(max(0.5+0.25*v, 0), 1)
	}
	out, err := s.Run([]*tensor.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	k := out[0].Shape[1]
	labels := make([]int, in.Shape[0])
	for i := range labels {
		row := out[0].F32[i*k : (i+1)*k]
		labels[i] = slices.Index(row, slices.Max(row))
	}
	noise := func(rng *rand.Rand, x, dst []float32) {
		for i, v := range x {
			dst[i] = v + float32(0.5*rng.NormFloat64())
		}
	}
	opts := &runtime.CCCertOptions{N: 20, K: 3, Batch: 16, Seed: 9}
	run := func(transform runtime.Transform) *runtime.CCCertResult {
		res, err := runtime.CertifyCC(context.Background(), s, runtime.SliceBatches(in, labels, 2), transform, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(noise), run(noise)
	if !slices.Equal(a.Samples, b.Samples) {
		t.Errorf("same seed, different results:\n%+v\n%+v", a.Samples, b.Samples)
	}
	for _, smp := range a.Samples {
		if !(smp.Bound >= 0 && smp.Bound <= 1) || !smp.Correct {
			t.Errorf("sample %+v: want a correct prediction and a bound in [0, 1]", smp)
		}
		if smp.MaxZ == 0 {
			t.Errorf("sample %d: noise of σ = 0.5 never moved the probabilities", smp.Index)
		}
	}
	// The identity transform changes nothing (up to onnxruntime's batch
	// size rounding): every correct sample with a margin is certified.
	id := run(func(_ *rand.Rand, x, dst []float32) { copy(dst, x) })
	checked := 0
	for _, smp := range id.Samples {
		if smp.D > 1e-3 {
			checked++
			if !smp.CertifiedAt(1e-4) {
				t.Errorf("identity transform: sample %+v not certified at 1e-4", smp)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no sample has a margin d > 1e-3: %+v", id.Samples)
	}
	t.Logf("identity transform: %+v", id.Samples)
}

// TestCertifyCCProbabilities: a model exported with its Softmax gives
// CC-Cert the same gaps, distances and bounds as the same model without
// it when its outputs are taken as probabilities; taken as scores (a
// second softmax over probabilities), the gap shrinks.
func TestCertifyCCProbabilities(t *testing.T) {
	logits, stored, _ := fixture(t, "small_cnn_32_op14_dynbatch")
	m, err := onnxio.ReadFile(filepath.Join(testenv.SharedDir(t, "fixtures", "torch-1.13", "small_cnn_32_op14_dynbatch"), "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	out := m.Graph.Outputs[0].Name
	for _, n := range m.Graph.Nodes {
		for i, o := range n.Outputs {
			if o == out {
				n.Outputs[i] = out + "_scores"
			}
		}
	}
	m.Graph.Nodes = append(m.Graph.Nodes, &graph.Node{Name: "probs", OpType: "Softmax", Inputs: []string{out + "_scores"}, Outputs: []string{out},
		Attrs: []*graph.Attribute{{Name: "axis", Type: graph.AttrInt, I: 1}}})
	path := filepath.Join(t.TempDir(), "softmax.onnx")
	if err := onnxio.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	probs, err := runtime.Open(path, &runtime.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer probs.Close()
	in := stored.Clone()
	for i, v := range in.F32 {
		in.F32[i] = min(max(0.5+0.25*v, 0), 1)
	}
	labels := make([]int, in.Shape[0])
	noise := func(rng *rand.Rand, x, dst []float32) {
		for i, v := range x {
			dst[i] = v + float32(0.3*rng.NormFloat64())
		}
	}
	run := func(s *runtime.Session, asProbs bool) *runtime.CCCertResult {
		res, err := runtime.CertifyCC(context.Background(), s, runtime.SliceBatches(in, labels, 2), noise,
			&runtime.CCCertOptions{N: 20, K: 3, Batch: 16, Seed: 3, Probabilities: asProbs})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want, got, squashed := run(logits, false), run(probs, true), run(probs, false)
	if !got.Probabilities || want.Probabilities {
		t.Errorf("results record probabilities %v (softmax model) and %v (scores), want true and false", got.Probabilities, want.Probabilities)
	}
	for i, w := range want.Samples {
		g, sq := got.Samples[i], squashed.Samples[i]
		if g.Pred != w.Pred || math.Abs(g.D-w.D) > 1e-6 || math.Abs(g.MaxZ-w.MaxZ) > 1e-5 || math.Abs(g.Bound-w.Bound) > 1e-4 {
			t.Errorf("sample %d: as probabilities %+v, from the scores %+v: want the same prediction, d, max Z and bound", i, g, w)
		}
		if !(sq.D < w.D/2) {
			t.Errorf("sample %d: softmax of probabilities gives d = %v, the scores' d = %v: want it squashed below half", i, sq.D, w.D)
		}
		t.Logf("sample %d: d %.4f (probabilities %.4f, squashed %.4f), max Z %.4f / %.4f / %.4f", i, w.D, g.D, sq.D, w.MaxZ, g.MaxZ, sq.MaxZ)
	}
}

// TestCertifyCCGrid: with a grid, every sample is also classified at each
// grid point, and its count of wrong points equals what the classifier
// says on those images one by one; the empirical accuracy counts the
// samples correct clean and everywhere on the grid.
func TestCertifyCCGrid(t *testing.T) {
	s, stored, _ := fixture(t, "small_cnn_32_op14_dynbatch")
	in := stored.Clone()
	for i, v := range in.F32 {
		in.F32[i] = min(max(0.5+0.25*v, 0), 1)
	}
	n := in.Shape[0]
	per := in.Len() / n
	// Labels: the clean predictions (found by asking for each class).
	labels := make([]int, n)
	for i := range n {
		img := tensor.FromFloat32(slices.Clone(in.F32[i*per:(i+1)*per]), append([]int{1}, in.Shape[1:]...)...)
		for c := range 10 {
			if e, err := runtime.Accuracy(context.Background(), s, runtime.SliceBatches(img, []int{c}, 1), 1); err == nil && e.Correct == 1 {
				labels[i] = c
			}
		}
	}
	const points = 9
	offset := func(i int) float32 { return -0.8 + 1.6*float32(i)/(points-1) }
	grid := func(i int, x, dst []float32) {
		for j, v := range x {
			dst[j] = v + offset(i)
		}
	}
	noise := func(rng *rand.Rand, x, dst []float32) { copy(dst, x) }
	res, err := runtime.CertifyCC(context.Background(), s, runtime.SliceBatches(in, labels, 2), noise,
		&runtime.CCCertOptions{N: 4, K: 2, Batch: 4, Seed: 1, Grid: grid, GridPoints: points})
	if err != nil {
		t.Fatal(err)
	}
	if res.GridPoints != points {
		t.Errorf("result records %d grid points, want %d", res.GridPoints, points)
	}
	someWrong, empirical := false, 0
	for i, smp := range res.Samples {
		if smp.GridWrong == nil {
			t.Fatalf("sample %d has no grid outcome", i)
		}
		imgs := tensor.New(append([]int{points}, in.Shape[1:]...)...)
		for p := range points {
			img := imgs.F32[p*per : (p+1)*per]
			grid(p, in.F32[i*per:(i+1)*per], img)
			for j, v := range img {
				img[j] = min(max(v, 0), 1)
			}
		}
		lab := make([]int, points)
		for p := range lab {
			lab[p] = labels[i]
		}
		e, err := runtime.Accuracy(context.Background(), s, runtime.SliceBatches(imgs, lab, points), points)
		if err != nil {
			t.Fatal(err)
		}
		if want := points - e.Correct; *smp.GridWrong != want {
			t.Errorf("sample %d: %d grid points wrong, the classifier says %d", i, *smp.GridWrong, want)
		}
		someWrong = someWrong || *smp.GridWrong > 0
		if smp.Correct && *smp.GridWrong == 0 {
			empirical++
		}
	}
	if !someWrong {
		t.Error("no grid point changed a prediction: the test would not see a miscount")
	}
	if got := res.EmpiricalAccuracy(); got.Correct != empirical || got.N != n {
		t.Errorf("EmpiricalAccuracy = %+v, want %d of %d", got, empirical, n)
	}
	if _, err := runtime.CertifyCC(context.Background(), s, runtime.SliceBatches(in, labels, 2), noise, &runtime.CCCertOptions{Grid: grid}); err == nil {
		t.Error("a grid without its size was accepted")
	}
}

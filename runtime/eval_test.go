package runtime_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// constantModel builds a classifier that ignores its input: logits =
// Gemm(Flatten(x), W = 0, bias), for images [N, 3, 4, 4] and 3 classes, so
// it always predicts argmax(bias) = class 1.
func constantModel(t testing.TB) []byte {
	t.Helper()
	dims := func(ds ...graph.Dim) *graph.Type {
		return &graph.Type{IsTensor: true, Elem: tensor.Float32, Shape: ds, HasShape: true}
	}
	batch := graph.Dim{Param: "N", HasParam: true}
	fixed := func(v int64) graph.Dim { return graph.Dim{Value: v, HasValue: true} }
	m := &graph.Model{
		IRVersion:    8,
		OpsetImports: []graph.OpsetImport{{Domain: "", Version: 13}},
		ProducerName: "csam-onnx runtime test",
		Graph: &graph.Graph{
			Name: "constant_classifier",
			Nodes: []*graph.Node{
				{Name: "flatten", OpType: "Flatten", Inputs: []string{"x"}, Outputs: []string{"f"},
					Attrs: []*graph.Attribute{{Name: "axis", Type: graph.AttrInt, I: 1}}},
				{Name: "gemm", OpType: "Gemm", Inputs: []string{"f", "W", "bias"}, Outputs: []string{"logits"}},
			},
			Initializers: []*graph.Initializer{
				{Name: "W", Value: tensor.New(48, 3)},
				{Name: "bias", Value: tensor.FromFloat32([]float32{0.5, 2, -1}, 3)},
			},
			Inputs:  []*graph.ValueInfo{{Name: "x", Type: dims(batch, fixed(3), fixed(4), fixed(4))}},
			Outputs: []*graph.ValueInfo{{Name: "logits", Type: dims(batch, fixed(3))}},
		},
	}
	b, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatalf("onnxio.Marshal(constant classifier): %v", err)
	}
	return b
}

func openConstant(t testing.TB) *runtime.Session {
	t.Helper()
	initORT(t)
	s, err := runtime.OpenBytes(constantModel(t), &runtime.SessionOptions{IntraOpThreads: 1, Name: "constant.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testImages returns n random images [n, 3, 4, 4] in [0, 1].
func testImages(n int, seed uint64) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := tensor.New(n, 3, 4, 4)
	for i := range x.F32 {
		x.F32[i] = rng.Float32()
	}
	return x
}

// labels: four samples of class 1 (which the constant model predicts) and
// two others.
var constLabels = []int{1, 1, 0, 1, 2, 1}

// brightnessNoise is a transform that really changes the image: a random
// brightness shift plus Gaussian noise.
func brightnessNoise(rng *rand.Rand, x, dst []float32) {
	b := float32(rng.Float64()*0.6 - 0.3)
	for i, v := range x {
		dst[i] = v + b + float32(0.1*rng.NormFloat64())
	}
}

func TestAccuracy(t *testing.T) {
	s := openConstant(t)
	ctx := context.Background()
	images := testImages(len(constLabels), 1)
	for _, batch := range []int{1, 4, 64} {
		e, err := runtime.Accuracy(ctx, s, runtime.SliceBatches(images, constLabels, 5), batch)
		if err != nil {
			t.Fatal(err)
		}
		if e.N != 6 || e.Correct != 4 {
			t.Errorf("Accuracy(batch %d) = %+v, want 4 of 6", batch, e)
		}
	}

	// Data that does not fit the model.
	wrongShape := tensor.New(2, 1, 28, 28)
	if _, err := runtime.Accuracy(ctx, s, runtime.SliceBatches(wrongShape, []int{0, 1}, 2), 2); err == nil ||
		!strings.Contains(err.Error(), "[1 28 28]") || !strings.Contains(err.Error(), "constant.onnx") {
		t.Errorf("Accuracy on 28×28 images = %v, want an error naming the model and the image shape", err)
	}
	if _, err := runtime.Accuracy(ctx, s, runtime.SliceBatches(testImages(2, 2), []int{0, 7}, 2), 2); err == nil ||
		!strings.Contains(err.Error(), "label 7") || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("Accuracy with label 7 for 3 classes = %v, want an error about the label", err)
	}
	if _, err := runtime.Accuracy(ctx, s, runtime.SliceBatches(testImages(2, 2), []int{0}, 2), 2); err == nil {
		t.Errorf("Accuracy with 2 images and 1 label succeeded, want an error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := runtime.Accuracy(cancelled, s, runtime.SliceBatches(images, constLabels, 2), 2); !errors.Is(err, context.Canceled) {
		t.Errorf("Accuracy with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestCCCertInputIgnoringClassifier: a classifier that ignores its input
// never changes its prediction, so Z ≡ 0 and CC-Cert certifies every
// correctly classified sample at every ε, and no other.
func TestCCCertInputIgnoringClassifier(t *testing.T) {
	s := openConstant(t)
	images := testImages(len(constLabels), 3)
	var progress []int
	res, err := runtime.CertifyCC(context.Background(), s, runtime.SliceBatches(images, constLabels, 4), brightnessNoise, &runtime.CCCertOptions{Seed: 11, Progress: func(done int) { progress = append(progress, done) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.N != 100 || res.K != 10 || res.Delta != 0.9 || res.Temperatures != 500 {
		t.Errorf("defaults: n=%d k=%d δ=%v |𝒯|=%d, want 100, 10, 0.9, 500", res.N, res.K, res.Delta, res.Temperatures)
	}
	if len(res.Samples) != 6 {
		t.Fatalf("%d samples, want 6", len(res.Samples))
	}
	if !slices.Equal(progress, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("progress calls %v, want 1…6", progress)
	}
	for _, eps := range res.Epsilons {
		if got := res.CertifiedAt(eps); got.Correct != 4 || got.N != 6 {
			t.Errorf("certified at ε=%v: %+v, want 4 of 6", eps, got)
		}
	}
	for _, smp := range res.Samples {
		if smp.MaxZ != 0 {
			t.Errorf("sample %d: max Z = %v, want 0 for a constant classifier", smp.Index, smp.MaxZ)
		}
		if smp.Pred != 1 || !(smp.D > 0.3) {
			t.Errorf("sample %d: pred %d, d %v; want class 1 with d ≈ 0.305", smp.Index, smp.Pred, smp.D)
		}
	}
}

func TestSmoothingInputIgnoringClassifier(t *testing.T) {
	s := openConstant(t)
	ctx := context.Background()
	const sigma, n, alpha = 0.5, 1000, 0.001
	opts := &runtime.SmoothingOptions{Sigma: sigma, N0: 10, N: n, Alpha: alpha, Batch: 300, Seed: 5}
	images := testImages(len(constLabels), 4)
	res, err := runtime.CertifySmoothing(ctx, s, runtime.SliceBatches(images, constLabels, 6), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The maximal radius σ·Φ⁻¹(α^{1/n}), computed independently of the
	// package: α^{1/n} by math.Pow, Φ⁻¹ by bisection on erfc.
	rMax := sigma * normQuantileByBisection(math.Pow(alpha, 1.0/n))
	for _, smp := range res.Samples {
		if smp.NA != n {
			t.Errorf("sample %d: nA = %d, want all %d votes", smp.Index, smp.NA, n)
		}
		// 1e-9: the bar for radii.
		if math.Abs(smp.Radius-rMax) > 1e-9 {
			t.Errorf("sample %d: radius %.12f, want the maximal %.12f", smp.Index, smp.Radius, rMax)
		}
		if want := smp.Label == 1; smp.Correct != want {
			t.Errorf("sample %d (label %d): correct = %v, want %v", smp.Index, smp.Label, smp.Correct, want)
		}
	}
	// rMax is known to 1e-9 here, so ask just below and just above it.
	if got := res.CertifiedAt(rMax - 1e-6); got.Correct != 4 || got.N != 6 {
		t.Errorf("certified at the maximal radius: %+v, want 4 of 6", got)
	}
	if got := res.CertifiedAt(rMax + 1e-6); got.Correct != 0 {
		t.Errorf("certified beyond the maximal radius: %+v, want 0", got)
	}
	if got, want := res.ACR(), 4*rMax/6; math.Abs(got-want) > 1e-12 {
		t.Errorf("ACR = %v, want %v", got, want)
	}
	if got := res.MaxRadius(); math.Abs(got-rMax) > 1e-9 {
		t.Errorf("MaxRadius = %v, want %v", got, rMax)
	}

	one := tensor.FromFloat32(images.F32[:48], 3, 4, 4)
	counts, err := runtime.SampleUnderNoise(ctx, s, one, 250, sigma, 100, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 3 || counts[0] != 0 || counts[1] != 250 || counts[2] != 0 {
		t.Errorf("SampleUnderNoise counts = %v, want [0 250 0]", counts)
	}
	pred, err := runtime.PredictSmoothed(ctx, s, one, rand.New(rand.NewPCG(1, 1)), &runtime.SmoothingOptions{Sigma: sigma, N: 100, Batch: 100})
	if err != nil || pred != 1 {
		t.Errorf("PredictSmoothed = %d, %v; want class 1", pred, err)
	}
	// With only 5 votes the binomial test cannot reach α = 0.001
	// (p-value 2·2⁻⁵): PREDICT abstains.
	pred, err = runtime.PredictSmoothed(ctx, s, one, rand.New(rand.NewPCG(1, 1)), &runtime.SmoothingOptions{Sigma: sigma, N: 5, Batch: 5})
	if err != nil || pred != runtime.Abstain {
		t.Errorf("PredictSmoothed with 5 samples = %d, %v; want Abstain", pred, err)
	}
}

func TestLatencyAndSize(t *testing.T) {
	s := openConstant(t)
	for _, batch := range []int{1, 64} {
		lat, err := runtime.MeasureLatency(context.Background(), s, batch, &runtime.LatencyOptions{Warmup: 1, Runs: 5})
		if err != nil {
			t.Fatal(err)
		}
		if lat.Batch != batch || lat.Runs != 5 || lat.Median <= 0 || lat.Min > lat.Median || lat.ImagesPerSecond <= 0 {
			t.Errorf("MeasureLatency(batch %d) = %+v", batch, lat)
		}
	}
	path := filepath.Join(t.TempDir(), "constant.onnx")
	b := constantModel(t)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	size, err := runtime.ModelSize(path)
	if err != nil {
		t.Fatal(err)
	}
	// 144 zero weights compress well: gzip must be smaller than the file.
	if size.Bytes != int64(len(b)) || size.Gzip <= 0 || size.Gzip >= size.Bytes {
		t.Errorf("ModelSize = %+v, want %d bytes and a smaller gzip size", size, len(b))
	}
	if _, err := runtime.ModelSize(filepath.Join(t.TempDir(), "missing.onnx")); err == nil {
		t.Errorf("ModelSize(missing file) succeeded")
	}
}

func TestMeasureArtifact(t *testing.T) {
	initORT(t)
	path := filepath.Join(t.TempDir(), "constant.onnx")
	if err := os.WriteFile(path, constantModel(t), 0o644); err != nil {
		t.Fatal(err)
	}
	lat := &runtime.LatencyOptions{Warmup: 1, Runs: 3}
	a, err := runtime.MeasureArtifact(context.Background(), path, nil, &runtime.SessionOptions{IntraOpThreads: 1}, lat)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Latency) != 2 || a.Latency[0].Batch != 1 || a.Latency[1].Batch != 64 || a.Threads != 1 || a.Size.Bytes == 0 {
		t.Errorf("MeasureArtifact = %+v, want latency at batches 1 and 64 with 1 thread", a)
	}
	// A model exported with a fixed batch of 2 is timed at 2 only.
	fixed := filepath.Join(testenv.SharedDir(t, "fixtures", "torch-1.13", "small_cnn_32_op14_eval"), "model.onnx")
	a, err = runtime.MeasureArtifact(context.Background(), fixed, nil, nil, lat)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Latency) != 1 || a.Latency[0].Batch != 2 {
		t.Errorf("MeasureArtifact(fixed batch 2) latency = %+v, want one entry at batch 2", a.Latency)
	}
}

// TestPixelBytes: every byte p survives p/255 → PixelBytes; halves round
// up; values outside [0, 1] clamp; NaN gives 0.
func TestPixelBytes(t *testing.T) {
	x := make([]float32, 256)
	for p := range x {
		x[p] = float32(p) / 255
	}
	got := make([]int64, 256)
	runtime.PixelBytes(got, x)
	for p, v := range got {
		if v != int64(p) {
			t.Errorf("byte %d came back as %d", p, v)
		}
	}
	edge := []float32{0.5, 0.5 / 255, 0.49 / 255, -0.3, 1.7, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	want := []int64{128, 1, 0, 0, 255, 0, 255, 0}
	out := make([]int64, len(edge))
	runtime.PixelBytes(out, edge)
	if !slices.Equal(out, want) {
		t.Errorf("PixelBytes(%v) = %v, want %v", edge, out, want)
	}
}

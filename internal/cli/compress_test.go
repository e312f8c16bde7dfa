package cli

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/csam"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// tinyFMNIST writes a freshly initialized (untrained) Fashion-MNIST-shaped
// ResNet-8: compress tests need a model of the right task, not a good one.
func tinyFMNIST(t *testing.T, dir string) string {
	t.Helper()
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.25, InputSize: 28, InChannels: 1, Classes: 10, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tiny.onnx")
	if err := onnxio.WriteFile(p, m); err != nil {
		t.Fatal(err)
	}
	return p
}

var quickCompress = []string{"--search-epochs", "1", "--finetune-epochs", "1", "--batch", "32", "--train-subset", "256", "--test-subset", "100"}

// TestTrainDeterministic: the same seed and thread count give a
// byte-identical ONNX file (issue 4, must-show 4).
func TestTrainDeterministic(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	var files [][]byte
	for i := range 2 {
		out := filepath.Join(dir, string(rune('a'+i)), "m.onnx")
		_, stderr, err, _ := execute(t, "train", "--arch", "resnet8", "--width", "0.25", "--data", "fashion-mnist", "--epochs", "1",
			"--batch", "32", "--train-subset", "256", "--threads", "2", "--seed", "11", "-o", out)
		if err != nil {
			t.Fatalf("train: %v\n%s", err, stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	// The recorded command differs only in the output path: compare the
	// models with that metadata entry removed.
	strip := func(b []byte) []byte {
		m, err := onnxio.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		m.Metadata = slices.DeleteFunc(m.Metadata, func(kv graph.StringPair) bool { return kv.Key == "csam.command" })
		out, err := onnxio.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if !bytes.Equal(strip(files[0]), strip(files[1])) {
		t.Error("two training runs with the same seed and threads wrote different models")
	}
}

// TestCompressBadInput: each refused with a clear error before training
// (issue 5, must-show 6).
func TestCompressBadInput(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	tiny := tinyFMNIST(t, dir)
	cifarModel := otherTask(t, dir) // 32×32 RGB, 5 classes

	// A model with no prunable layer: input → Relu → output.
	noPrune := filepath.Join(dir, "noprune.onnx")
	m, _ := models.Build(models.Config{Arch: "resnet8", Width: 0.25, InputSize: 28, InChannels: 1, Classes: 10})
	g := m.Graph
	g.Nodes = []*graph.Node{{Name: "relu", OpType: "Relu", Inputs: []string{"input"}, Outputs: []string{"logits"}}}
	g.Initializers = nil
	g.Outputs[0].Type.Shape = g.Inputs[0].Type.Shape
	if err := onnxio.WriteFile(noPrune, m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		model string
		extra []string
		want  string
	}{
		{"wrong image size and channels", cifarModel, nil, "does not fit"},
		{"no prunable layer", noPrune, nil, "no prunable"},
		{"unsupported op", filepath.Join(testenv.RepoRoot(), "onnxio", "testdata", "bad", "unknown_op.onnx"), nil, "FancyOp"},
		{"sparsity 0", tiny, []string{"--sparsity", "0"}, "sparsity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "_")+".onnx")
			args := append([]string{"compress", c.model, "--data", "fashion-mnist", "-o", out}, quickCompress...)
			args = append(args, c.extra...)
			start := time.Now()
			_, _, err, code := execute(t, args...)
			if err == nil || code == 0 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("compress (%s) = (%v, exit %d), want an error mentioning %q", c.name, err, code, c.want)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("compress took %v to refuse: it should refuse before training", time.Since(start))
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused compress wrote %s", out)
			}
		})
	}
}

// TestSparseFormatCOO: --sparse-format coo writes sparse initializers that
// onnxruntime loads with outputs identical to the dense export, and the
// file is smaller (issue 5, must-show 4).
func TestSparseFormatCOO(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	if err := runtime.Init(lib); err != nil {
		t.Fatal(err)
	}
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.5, InputSize: 16, Classes: 10, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := csam.SelectLayers(m.Graph, csam.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	// Prune 90% of every layer at random.
	rng := rand.New(rand.NewPCG(1, 2))
	res := &csam.Result{}
	for _, l := range layers {
		for i := range l.W {
			if rng.Float64() < 0.9 {
				l.W[i] = 0
			}
		}
		res.Layers = append(res.Layers, csam.LayerResult{Weight: l.Weight})
	}
	dense, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sparsifyModel(m, res)
	if len(m.Graph.SparseInitializers) == 0 {
		t.Fatal("no weight was written as a sparse initializer at 90% sparsity")
	}
	sparse, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(sparse) >= len(dense) {
		t.Errorf("COO file is %d bytes, dense %d: want smaller", len(sparse), len(dense))
	}
	x := tensor.New(4, 3, 16, 16)
	for i := range x.F32 {
		x.F32[i] = rng.Float32()
	}
	run := func(b []byte) []float32 {
		s, err := runtime.OpenBytes(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out, err := s.Run([]*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		return out[0].F32
	}
	if !slices.Equal(run(dense), run(sparse)) {
		t.Error("onnxruntime outputs of the COO export differ from the dense export")
	}
	// And the Go engine reads it back densified.
	back, err := onnxio.Decode(bytes.NewReader(sparse))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := autodiff.Compile(back, [][]int{{1, 3, 16, 16}}, nil); err != nil {
		t.Errorf("the Go engine cannot compile the COO export: %v", err)
	}
}

// buildBinary builds csam-onnx into dir for tests that run it as a
// process.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(dir, "csam-onnx")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/csam-onnx/csam-onnx/cmd/csam-onnx").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// killAndResume runs `bin args(ref)` to the end; then runs `bin args(out)`,
// SIGKILLs it as soon as ready(out) holds, checks it left no output file,
// reruns it with --resume, and requires the same initializers as the
// uninterrupted run.
func killAndResume(t *testing.T, bin, dir string, args func(out string) []string, ready func(out string) bool) {
	t.Helper()
	ref := filepath.Join(dir, "ref.onnx")
	if out, err := exec.Command(bin, args(ref)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "killed.onnx")
	cmd := exec.Command(bin, args(out)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !ready(out) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the run did not reach the point to kill it within 3 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the killed run left an output file")
	}
	if o, err := exec.Command(bin, append(args(out), "--resume")...).CombinedOutput(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, o)
	}
	a, err := onnxio.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnxio.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range a.Graph.Initializers {
		if !slices.Equal(in.Value.F32, b.Graph.Initializer(in.Name).Value.F32) {
			t.Fatalf("after SIGKILL and --resume, %s differs from the uninterrupted run", in.Name)
		}
	}
}

// TestCompressSIGKILLResume kills a compress process once fine-tuning has
// checkpointed, reruns it with --resume, and requires the same pruned
// weights as an uninterrupted run; the output path never holds a partial
// file (issue 5, must-show 5).
func TestCompressSIGKILLResume(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	tiny := tinyFMNIST(t, dir)
	killAndResume(t, bin, dir, func(out string) []string {
		return []string{"compress", tiny, "--data", "fashion-mnist", "--sparsity", "0.8", "--checkpoint-every", "2",
			"--search-epochs", "2", "--finetune-epochs", "2", "--batch", "32", "--train-subset", "512", "--test-subset", "100", "-o", out}
	}, func(out string) bool {
		_, err := os.Stat(filepath.Join(out+".ckpt", "finetune.ckpt"))
		return err == nil
	})
}

// TestTrainSIGKILLResume kills `train` mid-way through its second epoch,
// reruns it with --resume, and requires weights identical to an
// uninterrupted run with the same seed (issue 4, must-show 3, the CLI half).
func TestTrainSIGKILLResume(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	killAndResume(t, bin, dir, func(out string) []string {
		return []string{"train", "--arch", "resnet8", "--width", "0.25", "--data", "fashion-mnist", "--epochs", "2", "--batch", "32",
			"--train-subset", "640", "--checkpoint-every", "3", "--eval-epochs=false", "-o", out}
	}, func(out string) bool {
		c, err := finetune.ReadCheckpoint(out + ".ckpt")
		return err == nil && c.Epoch == 1 && c.Step > 0
	})
}

// TestDynamicImageSizeAndFixedBatch: a model exported with a fixed batch
// of 1 and symbolic height and width (dynamic_axes on H and W) compresses
// and continues training at the data's image size and batch 32, and the
// written files declare the input as the original did.
func TestDynamicImageSizeAndFixedBatch(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.25, InputSize: 28, InChannels: 1, Classes: 10, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := []graph.Dim{{Value: 1, HasValue: true}, {Value: 1, HasValue: true}, {Param: "h", HasParam: true}, {Param: "w", HasParam: true}}
	m.Graph.Inputs[0].Type.Shape = slices.Clone(want)
	in := filepath.Join(dir, "dyn.onnx")
	if err := onnxio.WriteFile(in, m); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		append([]string{"compress", in, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c.onnx")}, quickCompress...),
		{"train", "--init", in, "--data", "fashion-mnist", "--epochs", "1", "--batch", "32", "--train-subset", "256", "-o", filepath.Join(dir, "t.onnx")},
	} {
		_, stderr, err, _ := execute(t, args...)
		if err != nil {
			t.Fatalf("csam-onnx %s: %v\n%s", args[0], err, stderr)
		}
		out, err := onnxio.ReadFile(args[slices.Index(args, "-o")+1])
		if err != nil {
			t.Fatal(err)
		}
		got := out.Graph.Inputs[0].Type.Shape
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s wrote the input as %v, the model declared %v", args[0], got, want)
		}
	}
}

// TestProbabilitiesOfUnflattenedHead: the shipped Fashion-MNIST model
// with its output turned into a Softmax over [N, 10, 1, 1] (an unflattened convolutional head, as in
// Caffe2's SqueezeNet, exported with its probabilities) compresses: it is
// trained on the scores before the Softmax, onnxruntime reads its
// [N, 10, 1, 1] output as 10 classes, the Go engine agrees with it, and
// the written file keeps the Softmax and the output shape.
func TestProbabilitiesOfUnflattenedHead(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	m := shippedModel(t, "fmnist_resnet8.onnx")
	g := m.Graph
	logits := g.Outputs[0].Name
	g.Initializers = append(g.Initializers, &graph.Initializer{Name: "head_shape", Value: tensor.FromInt64([]int64{-1, 10, 1, 1}, 4)})
	g.Nodes = append(g.Nodes,
		&graph.Node{Name: "unflatten", OpType: "Reshape", Inputs: []string{logits, "head_shape"}, Outputs: []string{"scores4d"}},
		&graph.Node{Name: "probs", OpType: "Softmax", Inputs: []string{"scores4d"}, Outputs: []string{"probs"},
			Attrs: []*graph.Attribute{{Name: "axis", Type: graph.AttrInt, I: 1}}})
	g.Outputs[0] = &graph.ValueInfo{Name: "probs", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true,
		Shape: []graph.Dim{{Param: "N", HasParam: true}, {Value: 10, HasValue: true}, {Value: 1, HasValue: true}, {Value: 1, HasValue: true}}}}
	in := filepath.Join(dir, "probs.onnx")
	if err := onnxio.WriteFile(in, m); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "c.onnx")
	rep, w, _ := compressChecked(t, out, 0.8, append([]string{"compress", in, "--data", "fashion-mnist", "--sparsity", "0.5", "-o", out}, quickCompress...)...)
	if rep.Check.TestImages != 100 {
		t.Errorf("checked on %d images, want 100", rep.Check.TestImages)
	}
	if last := w.Graph.Nodes[len(w.Graph.Nodes)-1]; last.OpType != "Softmax" || fmt.Sprint(w.Graph.Outputs[0].Type.Shape) != "[N 10 1 1]" {
		t.Errorf("written model ends in %s with output %v, want the Softmax and [N 10 1 1]", last.OpType, w.Graph.Outputs[0].Type.Shape)
	}
	// verify's CC-Cert takes the probabilities as they are: the model
	// with its Softmax certifies with the gaps and bounds of the shipped
	// model without it (a softmax over probabilities would shrink them).
	rdir := filepath.Join(dir, "v")
	_, stderr, err, _ := execute(t, "verify", in, "--baseline", filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx"),
		"--data", "fashion-mnist", "--subset", "20", "--cert-subset", "4", "--cc-n", "20", "--cc-k", "2", "--corruptions", "none",
		"--certify", "cc-cert", "--latency=false", "-o", rdir)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	type cc struct {
		CC *runtime.CCCertResult `json:"cc_cert"`
	}
	var raw struct{ Model, Baseline cc }
	readJSONFile(t, filepath.Join(rdir, "raw.json"), &raw)
	if raw.Model.CC == nil || raw.Baseline.CC == nil || len(raw.Model.CC.Samples) != 4 || len(raw.Baseline.CC.Samples) != 4 {
		t.Fatalf("raw.json holds CC-Cert results %+v and %+v, want 4 samples each", raw.Model.CC, raw.Baseline.CC)
	}
	if !raw.Model.CC.Probabilities || raw.Baseline.CC.Probabilities {
		t.Errorf("CC-Cert took the outputs as probabilities: %v (Softmax model), %v (shipped model); want true, false", raw.Model.CC.Probabilities, raw.Baseline.CC.Probabilities)
	}
	for i, b := range raw.Baseline.CC.Samples {
		m := raw.Model.CC.Samples[i]
		if m.Pred != b.Pred || math.Abs(m.D-b.D) > 1e-5 || math.Abs(m.Bound-b.Bound) > 1e-3 {
			t.Errorf("sample %d: with the Softmax %+v, without %+v: want the same prediction, gap and bound", i, m, b)
		}
	}
}

// TestInputNormalizationOutsideTheModel: the shipped Fashion-MNIST model
// with its first two nodes (Sub mean, Div std) taken out expects
// normalized images, as most PyTorch exports do. compress with
// --input-mean/--input-std keeps its accuracy, writes a file with the
// same input and no added nodes, and records the normalization; verify
// finds it there and measures the same clean accuracy on the same images.
func TestInputNormalizationOutsideTheModel(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	in, m, mean, std := normalizedOutside(t, dir)
	g := m.Graph
	flags := []string{"--input-mean", fmt.Sprint(mean), "--input-std", fmt.Sprint(std)}
	out := filepath.Join(dir, "c.onnx")
	args := append([]string{"compress", in, "--data", "fashion-mnist", "--sparsity", "0.5", "-o", out}, quickCompress...)
	rep, w, meta := compressChecked(t, out, 0.8, append(args, flags...)...)
	if want := csam.CountParams(m); rep.ParamsBefore != want || rep.ParamsAfter != want {
		t.Errorf("report counts %d parameters before and %d after, the file has %d (weight pruning keeps them)", rep.ParamsBefore, rep.ParamsAfter, want)
	}
	if w.Graph.Inputs[0].Name != g.Inputs[0].Name || len(w.Graph.Nodes) != len(g.Nodes) {
		t.Errorf("written model: input %q and %d nodes, the model read has %q and %d", w.Graph.Inputs[0].Name, len(w.Graph.Nodes), g.Inputs[0].Name, len(g.Nodes))
	}
	if meta["csam.input_mean"] != fmt.Sprint(mean) || meta["csam.input_std"] != fmt.Sprint(std) {
		t.Errorf("metadata records mean %q std %q, want %v %v", meta["csam.input_mean"], meta["csam.input_std"], mean, std)
	}
	verifyCleanAgrees(t, out, "fashion-mnist", dir, rep.Check.AccuracyORT)
	if meta["csam.source_sha256"] != fileSHA256(in) {
		t.Errorf("metadata csam.source_sha256 = %q, want the input's SHA-256 %s", meta["csam.source_sha256"], fileSHA256(in))
	}
	// The dense file as --baseline records no normalization (it came in
	// by flags): measured with the pruned model's, as the file it was
	// compressed from (16% when fed [0, 1] pixels).
	if _, base, stderr := verifyClean(t, out, in, "fashion-mnist", dir); base < 0.85 || strings.Contains(stderr, "warning") {
		t.Errorf("verify --baseline <the dense file>: baseline %.2f, stderr %q; want at least 85%% and no warning", base, stderr)
	}
	// Another file without the metadata is measured as it records, and
	// verify warns, naming the flags.
	other := filepath.Join(dir, "other.onnx")
	m.Metadata = append(m.Metadata, graph.StringPair{Key: "note", Value: "a different file"})
	if err := onnxio.WriteFile(other, m); err != nil {
		t.Fatal(err)
	}
	if _, base, stderr := verifyClean(t, out, other, "fashion-mnist", dir); base > 0.5 || !strings.Contains(stderr, "warning") || !strings.Contains(stderr, "--input-mean") {
		t.Errorf("verify --baseline <another file>: baseline %.2f, stderr %q; want it measured without normalization (below 50%%) and a warning naming --input-mean", base, stderr)
	}
	if _, _, err, _ := execute(t, append(args[:len(args):len(args)], "--input-mean", "0.5")...); err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("--input-mean alone: %v, want a usage error asking for both", err)
	}
	// train --init continues the model with the same normalization.
	tout := filepath.Join(dir, "t.onnx")
	_, stderr, err, _ := execute(t, append([]string{"train", "--init", in, "--data", "fashion-mnist", "--epochs", "1", "--batch", "32",
		"--train-subset", "256", "--lr", "0.001", "--warmup", "0", "-o", tout}, flags...)...)
	if err != nil {
		t.Fatalf("train --init: %v\n%s", err, stderr)
	}
	var trep TrainReport
	readJSONFile(t, tout+".json", &trep)
	if trep.ORTAccuracy < 0.85 || trep.ORTAccuracy != trep.TestGo.Accuracy {
		t.Errorf("train --init: %.4f in onnxruntime, %.4f in the Go engine; want equal and at least 85%%", trep.ORTAccuracy, trep.TestGo.Accuracy)
	}
}

// normalizedOutside writes the shipped Fashion-MNIST model with its
// normalization (Sub, Div) taken out, as a PyTorch export trained with
// Normalize in the data pipeline looks, and returns the file, the model
// and the mean and std taken out.
func normalizedOutside(t *testing.T, dir string) (path string, m *graph.Model, mean, std float32) {
	t.Helper()
	m = shippedModel(t, "fmnist_resnet8.onnx")
	g := m.Graph
	sub, div := g.Nodes[0], g.Nodes[1]
	if sub.OpType != "Sub" || div.OpType != "Div" || sub.Inputs[0] != g.Inputs[0].Name || div.Inputs[0] != sub.Outputs[0] {
		t.Fatalf("the shipped model starts with %s, %s; want its normalization Sub, Div", sub.OpType, div.OpType)
	}
	mean, std = g.Initializer(sub.Inputs[1]).Value.F32[0], g.Initializer(div.Inputs[1]).Value.F32[0]
	g.Inputs[0].Name = div.Outputs[0] // the normalized image is the input now
	g.Nodes = g.Nodes[2:]
	path = filepath.Join(dir, "outside.onnx")
	if err := onnxio.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path, m, mean, std
}

// TestCompressChannelsNormalizedOutside: --granularity channel through the
// command line, on a model normalized outside: the written file is
// smaller, takes the same input, records the granularity and the
// normalization, and onnxruntime, the Go engine and verify agree.
func TestCompressChannelsNormalizedOutside(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	in, m, mean, std := normalizedOutside(t, dir)
	out := filepath.Join(dir, "ch.onnx")
	rep, w, meta := compressChecked(t, out, 0.6, append([]string{"compress", in, "--data", "fashion-mnist", "--sparsity", "0.3",
		"--granularity", "channel", "-o", out, "--input-mean", fmt.Sprint(mean), "--input-std", fmt.Sprint(std)}, quickCompress...)...)
	before, after := csam.CountParams(m), csam.CountParams(w)
	if rep.ParamsBefore != before || rep.ParamsAfter != after || after >= before*9/10 {
		t.Errorf("report: %d parameters before, %d after; the files have %d and %d; want them equal and at least 10%% fewer after", rep.ParamsBefore, rep.ParamsAfter, before, after)
	}
	if w.Graph.Inputs[0].Name != m.Graph.Inputs[0].Name || w.Graph.Nodes[0].OpType != m.Graph.Nodes[0].OpType || len(w.Graph.Nodes) != len(m.Graph.Nodes) {
		t.Errorf("written model: input %q, first node %s, %d nodes; the model read has %q, %s, %d",
			w.Graph.Inputs[0].Name, w.Graph.Nodes[0].OpType, len(w.Graph.Nodes), m.Graph.Inputs[0].Name, m.Graph.Nodes[0].OpType, len(m.Graph.Nodes))
	}
	if meta["csam.granularity"] != "channel" || meta["csam.input_mean"] != fmt.Sprint(mean) || meta["csam.source_sha256"] != fileSHA256(in) {
		t.Errorf("metadata %v: want csam.granularity channel, csam.input_mean %v and csam.source_sha256 of the input", meta, mean)
	}
	verifyCleanAgrees(t, out, "fashion-mnist", dir, rep.Check.AccuracyORT)
}

// TestChannelsLastNormalizedInput: the shipped CIFAR-10 ResNet-18 w0.25
// made to take normalized images with the channels last ([N, 32, 32, 3]
// through a Transpose, its Sub/Div taken out), as a Keras/tf2onnx export
// does.
// compress refuses it without --input-layout (naming the flag), and with
// --input-layout nhwc and the normalization keeps its accuracy, writes the
// same input, records both, and verify finds them and agrees.
func TestChannelsLastNormalizedInput(t *testing.T) {
	data := cifarSpec(t)
	dir := t.TempDir()
	m := shippedModel(t, "cifar10_resnet18_w0.25.onnx")
	g := m.Graph
	sub, div := g.Nodes[0], g.Nodes[1]
	mean, std := g.Initializer(sub.Inputs[1]).Value.F32, g.Initializer(div.Inputs[1]).Value.F32
	g.Nodes = append([]*graph.Node{{Name: "to_nchw", OpType: "Transpose", Inputs: []string{"image_nhwc"}, Outputs: []string{div.Outputs[0]},
		Attrs: []*graph.Attribute{{Name: "perm", Type: graph.AttrInts, Ints: []int64{0, 3, 1, 2}}}}}, g.Nodes[2:]...)
	g.Inputs[0] = &graph.ValueInfo{Name: "image_nhwc", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true,
		Shape: []graph.Dim{{Param: "N", HasParam: true}, {Value: 32, HasValue: true}, {Value: 32, HasValue: true}, {Value: 3, HasValue: true}}}}
	in := filepath.Join(dir, "nhwc.onnx")
	if err := onnxio.WriteFile(in, m); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "c.onnx")
	join := func(v []float32) string { return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(v)), ","), "[]") }
	args := append([]string{"compress", in, "--data", data, "--sparsity", "0.5", "-o", out,
		"--input-mean", join(mean), "--input-std", join(std)}, quickCompress...)
	if _, _, err, _ := execute(t, args...); err == nil || !strings.Contains(err.Error(), "--input-layout nhwc") {
		t.Fatalf("compress of a channels-last model without --input-layout: %v, want an error naming --input-layout nhwc", err)
	}
	// 83% here (the model: 87.68% dense); a layout or normalization
	// applied wrongly on either side gives 10-40% or two different figures.
	rep, w, meta := compressChecked(t, out, 0.7, append(args, "--input-layout", "nhwc")...)
	if vi := w.Graph.Inputs[0]; vi.Name != "image_nhwc" || fmt.Sprint(vi.Type.Shape) != "[N 32 32 3]" || w.Graph.Nodes[0].Name != "to_nchw" {
		t.Errorf("written model: input %s %v, first node %s; want image_nhwc [N 32 32 3] and to_nchw", vi.Name, vi.Type.Shape, w.Graph.Nodes[0].Name)
	}
	if meta["csam.input_layout"] != "nhwc" || meta["csam.input_mean"] == "" {
		t.Errorf("metadata %v: want csam.input_layout nhwc and the normalization", meta)
	}
	verifyCleanAgrees(t, out, data, dir, rep.Check.AccuracyORT)
}

// compressChecked runs compress with args (its -o is out), requires the
// same accuracy in onnxruntime and the Go engine and at least min, and
// returns the report and the written model's metadata.
func compressChecked(t *testing.T, out string, min float64, args ...string) (CompressReport, *graph.Model, map[string]string) {
	t.Helper()
	if _, stderr, err, _ := execute(t, args...); err != nil {
		t.Fatalf("compress: %v\n%s", err, stderr)
	}
	var rep CompressReport
	readJSONFile(t, out+".json", &rep)
	t.Logf("check %+v", rep.Check)
	if rep.Check.AccuracyORT != rep.Check.AccuracyGo || rep.Check.AccuracyORT < min {
		t.Errorf("check %+v: want the same accuracy in onnxruntime and the Go engine, at least %.0f%%", rep.Check, 100*min)
	}
	w, err := onnxio.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, p := range w.Metadata {
		meta[p.Key] = p.Value
	}
	return rep, w, meta
}

// verifyCleanAgrees runs verify on model (clean accuracy only, 100 test
// images, no flags: what the file records applies) and requires want.
func verifyCleanAgrees(t *testing.T, model, data, dir string, want float64) {
	t.Helper()
	if got, _, _ := verifyClean(t, model, "", data, dir); got != want {
		t.Errorf("verify measured %v, compress %v on the same 100 images", got, want)
	}
}

// verifyClean runs verify on model (and baseline when not "") for the
// clean accuracy on 100 test images, with no other flags, and returns
// both accuracies and verify's stderr.
func verifyClean(t *testing.T, model, baseline, data, dir string) (acc, baseAcc float64, stderr string) {
	t.Helper()
	rdir := filepath.Join(dir, "report")
	args := []string{"verify", model, "--data", data, "--subset", "100", "--corruptions", "none",
		"--certify", "none", "--latency=false", "-o", rdir}
	if baseline != "" {
		args = append(args, "--baseline", baseline)
	}
	_, stderr, err, _ := execute(t, args...)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	type clean struct {
		Clean struct{ Correct, N int }
	}
	var raw struct {
		Model    clean
		Baseline *clean
	}
	readJSONFile(t, filepath.Join(rdir, "raw.json"), &raw)
	acc = float64(raw.Model.Clean.Correct) / float64(raw.Model.Clean.N)
	if raw.Baseline != nil {
		baseAcc = float64(raw.Baseline.Clean.Correct) / float64(raw.Baseline.Clean.N)
	}
	return acc, baseAcc, stderr
}

// shippedModel reads a model of models/.
func shippedModel(t *testing.T, name string) *graph.Model {
	t.Helper()
	m, err := onnxio.ReadFile(filepath.Join(testenv.RepoRoot(), "models", name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRecalibrateBNAfterShortFinetune: --recalibrate-bn re-estimates the
// running statistics of the written model over the training batches it
// has (8 here): the file's statistics differ from a run without it, the
// report says how many batches were averaged, onnxruntime and the Go
// engine agree, and at 90% sparsity after 16 fine-tuning steps it does not
// lose accuracy (measured: 13% without, 54% with, on 500 images). Without
// the flag, compress says that so short a fine-tune calls for it. A
// negative count is a usage error.
func TestRecalibrateBNAfterShortFinetune(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	model := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	run := func(name string, extra ...string) (CompressReport, map[string][]float32, string) {
		out := filepath.Join(dir, name)
		args := append([]string{"compress", model, "--data", "fashion-mnist", "--method", "magnitude", "--sparsity", "0.9", "-o", out}, quickCompress...)
		_, stderr, err, _ := execute(t, append(args, extra...)...)
		if err != nil {
			t.Fatalf("compress: %v\n%s", err, stderr)
		}
		var rep CompressReport
		readJSONFile(t, out+".json", &rep)
		if rep.Check.AccuracyORT != rep.Check.AccuracyGo {
			t.Errorf("check %+v: onnxruntime and the Go engine disagree", rep.Check)
		}
		w, err := onnxio.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		stats := map[string][]float32{}
		for _, n := range w.Graph.Nodes {
			if n.OpType == "BatchNormalization" {
				for _, s := range n.Inputs[3:5] {
					stats[s] = w.Graph.Initializer(s).Value.F32
				}
			}
		}
		return rep, stats, stderr
	}
	plain, before, plainErr := run("plain.onnx")
	recal, after, recalErr := run("recal.onnx", "--recalibrate-bn", "100")
	// magnitude fine-tunes for the search epoch too: 2 epochs of 8 steps.
	if plain.Result.FinetuneSteps != 16 || !strings.Contains(plainErr, "ran 16 steps") || !strings.Contains(plainErr, "--recalibrate-bn 50") {
		t.Errorf("without the flag: %d fine-tuning steps, stderr %q; want 16 and a note suggesting --recalibrate-bn 50", plain.Result.FinetuneSteps, plainErr)
	}
	if strings.Contains(recalErr, "note:") {
		t.Errorf("with the flag, stderr still suggests it: %q", recalErr)
	}
	if plain.Result.RecalibratedBatches != 0 || recal.Result.RecalibratedBatches != 8 {
		t.Errorf("recalibrated batches: %d without the flag, %d with --recalibrate-bn 100 on 256 images of batch 32; want 0 and 8",
			plain.Result.RecalibratedBatches, recal.Result.RecalibratedBatches)
	}
	differ := 0
	for name, v := range after {
		if !slices.Equal(v, before[name]) {
			differ++
		}
	}
	if len(after) == 0 || differ != len(after) {
		t.Errorf("%d of %d running-statistics tensors differ from the run without recalibration; want all", differ, len(after))
	}
	if recal.Check.AccuracyORT < plain.Check.AccuracyORT {
		t.Errorf("accuracy %.2f with recalibration, %.2f without", recal.Check.AccuracyORT, plain.Check.AccuracyORT)
	}
	if _, _, err, code := execute(t, "compress", model, "--data", "fashion-mnist", "--recalibrate-bn", "-1", "-o", filepath.Join(dir, "x.onnx")); err == nil || code != 2 || !strings.Contains(err.Error(), "--recalibrate-bn") {
		t.Errorf("--recalibrate-bn -1: (%v, exit %d), want a usage error naming the flag", err, code)
	}
}

// bytesInput turns m's input into uint8 bytes 0–255 read through
// Cast → Div 255 (a model exported with its pixel scaling, as for camera
// frames), and returns the name of the added constant.
func bytesInput(m *graph.Model) string {
	g := m.Graph
	in := g.Inputs[0]
	for _, n := range g.Nodes {
		for i, x := range n.Inputs {
			if x == in.Name {
				n.Inputs[i] = "pixels01"
			}
		}
	}
	g.Initializers = append(g.Initializers, &graph.Initializer{Name: "k255", Value: tensor.FromFloat32([]float32{255}, 1)})
	g.Nodes = append([]*graph.Node{
		{Name: "to_float", OpType: "Cast", Inputs: []string{"frame"}, Outputs: []string{"pixf"}, Attrs: []*graph.Attribute{{Name: "to", Type: graph.AttrInt, I: int64(tensor.Float32)}}},
		{Name: "scale", OpType: "Div", Inputs: []string{"pixf", "k255"}, Outputs: []string{"pixels01"}},
	}, g.Nodes...)
	in.Name = "frame"
	in.Type.Elem = tensor.Uint8
	return "k255"
}

// TestUint8ImageInput: a model that takes uint8 bytes (the shipped
// Fashion-MNIST model behind Cast → Div 255) is fed round(255·x) in both
// runtimes. Fashion-MNIST's pixels are bytes, so everything equals the
// float model's: verify's clean accuracy on the same images, and
// compress's run (same accuracies, same pruned weights); the written file
// still takes uint8, and check runs it on random bytes.
func TestUint8ImageInput(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	m := shippedModel(t, "fmnist_resnet8.onnx")
	k255 := bytesInput(m)
	u8 := filepath.Join(dir, "u8.onnx")
	if err := onnxio.WriteFile(u8, m); err != nil {
		t.Fatal(err)
	}
	shipped := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	acc, base, stderr := verifyClean(t, u8, shipped, "fashion-mnist", dir)
	if acc != base || acc < 0.85 {
		t.Errorf("verify: %v with bytes, %v for the float model on the same images; want equal, at least 85%%\n%s", acc, base, stderr)
	}
	run := func(in, name string) (CompressReport, *graph.Model) {
		out := filepath.Join(dir, name)
		rep, w, _ := compressChecked(t, out, 0.7, append([]string{"compress", in, "--data", "fashion-mnist", "--sparsity", "0.5", "-o", out}, quickCompress...)...)
		return rep, w
	}
	repU8, wU8 := run(u8, "c_u8.onnx")
	repF, wF := run(shipped, "c_f.onnx")
	if repU8.Check.AccuracyORT != repF.Check.AccuracyORT || repU8.Check.AccuracyGo != repF.Check.AccuracyGo {
		t.Errorf("compress checks: bytes %+v, float %+v; want the same accuracies", repU8.Check, repF.Check)
	}
	if in := wU8.Graph.Inputs[0]; in.Name != "frame" || in.Type.Elem != tensor.Uint8 || len(wU8.Graph.Nodes) != len(m.Graph.Nodes) {
		t.Errorf("written: input %q %s and %d nodes, want frame uint8 and %d nodes", in.Name, in.Type.Elem, len(wU8.Graph.Nodes), len(m.Graph.Nodes))
	}
	float := map[string]*tensor.Tensor{}
	for _, in := range wF.Graph.Initializers {
		float[in.Name] = in.Value
	}
	for _, in := range wU8.Graph.Initializers {
		if f := float[in.Name]; in.Name != k255 && (f == nil || !slices.Equal(f.F32, in.Value.F32) || !slices.Equal(f.I64, in.Value.I64)) {
			t.Errorf("initializer %s differs between the bytes and the float model's compress runs", in.Name)
		}
	}
	if _, stderr, err, code := execute(t, "check", filepath.Join(dir, "c_u8.onnx")); err != nil || code != 0 {
		t.Errorf("check on random bytes: %v (exit %d)\n%s", err, code, stderr)
	}
}

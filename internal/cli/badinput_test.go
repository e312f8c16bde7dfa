package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/report"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// TestBadInput runs inspect and check on every bad file onnxio commits
// (issue 2, must-show 4): each must fail with exit status 1 and one line
// that names the file and the problem, without a panic.
func TestBadInput(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "onnxio", "testdata", "bad")
	lib := testenv.ORTLibrary(t)
	tests := []struct {
		file string
		// want are substrings of the message for both commands; check and
		// inspect add their own.
		want        []string
		wantCheck   []string
		wantInspect []string
	}{
		{file: "empty.onnx", want: []string{"empty"}},
		{file: "truncated.onnx", want: []string{"not an ONNX model"}},
		{file: "png.onnx", want: []string{"not an ONNX model"}},
		{
			file: "unknown_op.onnx",
			// Both commands list every unsupported op with its node name.
			want: []string{`FancyOp (node "fancy1")`, `Frobnicate (node "frob1")`},
		},
		{file: "opset26.onnx", want: []string{"opset 26", "25"}},
		{file: "ir14.onnx", want: []string{"IR version 14", "13"}},
		{file: "cycle.onnx", want: []string{"cycle"}},
		{file: "dangling_input.onnx", want: []string{"produced by no node"}},
		{file: "huge_dims.onnx", want: []string{"elements"}},
		{file: "external_dotdot.onnx", want: []string{"external"}},
		{file: "external_abs.onnx", want: []string{"external", "absolute"}},
		{file: "external_missing.onnx", want: []string{"external"}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		path := filepath.Join(dir, tt.file)
		for _, verb := range []string{"inspect", "check"} {
			t.Run(verb+"/"+tt.file, func(t *testing.T) {
				args := []string{verb, path}
				if verb == "check" {
					args = append(args, "--ort-lib", lib)
				}
				_, _, err, code := execute(t, args...)
				if err == nil {
					t.Fatalf("csam-onnx %s %s succeeded", verb, tt.file)
				}
				msg := OneLine(err)
				if code != 1 {
					t.Errorf("exit status %d, want 1 (%s)", code, msg)
				}
				want := append([]string{tt.file}, tt.want...)
				if verb == "check" {
					want = append(want, tt.wantCheck...)
				} else {
					want = append(want, tt.wantInspect...)
				}
				for _, w := range want {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q does not contain %q", msg, w)
					}
				}
				if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic") {
					t.Errorf("message %q looks like a crash", msg)
				}
			})
		}
	}
	// Every committed bad file is covered here.
	files, err := filepath.Glob(filepath.Join(dir, "*.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no bad files under %s", dir)
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s is not covered by TestBadInput: add it to the table", filepath.Base(f))
		}
	}
}

// TestTwoInputModelRefused: a classifier with a second input (here a
// temperature dividing the scores) is refused by compress, train --init
// and verify (as model or baseline) with one line naming the file, the
// inputs and what to do, and nothing is written.
func TestTwoInputModelRefused(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	m := shippedModel(t, "fmnist_resnet8.onnx")
	g := m.Graph
	out := g.Outputs[0].Name
	for _, n := range g.Nodes {
		for i, o := range n.Outputs {
			if o == out {
				n.Outputs[i] = out + "_raw"
			}
		}
	}
	g.Nodes = append(g.Nodes, &graph.Node{Name: "temperature_div", OpType: "Div", Inputs: []string{out + "_raw", "temperature"}, Outputs: []string{out}})
	g.Inputs = append(g.Inputs, &graph.ValueInfo{Name: "temperature", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true, Shape: []graph.Dim{{Value: 1, HasValue: true}}}})
	two := filepath.Join(dir, "two.onnx")
	if err := onnxio.WriteFile(two, m); err != nil {
		t.Fatal(err)
	}
	shipped := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"compress", []string{"compress", two, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c", "x.onnx")}, two},
		{"train --init", []string{"train", "--init", two, "--data", "fashion-mnist", "--epochs", "1", "-o", filepath.Join(dir, "t", "x.onnx")}, two},
		{"verify", []string{"verify", two, "--data", "fashion-mnist", "-o", filepath.Join(dir, "v")}, two},
		{"verify --baseline", []string{"verify", shipped, "--data", "fashion-mnist", "--baseline", two, "-o", filepath.Join(dir, "b")}, "--baseline " + two},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err, code := execute(t, c.args...)
			if err == nil || code != 1 {
				t.Fatalf("got (%v, exit %d), want exit 1", err, code)
			}
			msg := OneLine(err)
			for _, w := range []string{c.want, `2 inputs ("input", "temperature")`, "export the model with the other inputs fixed"} {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
	for _, sub := range []string{"c", "t"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err == nil {
			t.Errorf("a refused run created %s", filepath.Join(dir, sub))
		}
	}
}

// TestFailedRunLeavesNoFolders: compress, train --init and verify create
// their output folders before the work (to fail early when they cannot);
// a run refused after that (here: images that do not fit the model)
// removes the folders it made, and leaves folders that existed.
func TestFailedRunLeavesNoFolders(t *testing.T) {
	fashionMNIST(t)
	testenv.ORTLibrary(t)
	dir := t.TempDir()
	cifar := filepath.Join(testenv.RepoRoot(), "models", "cifar10_resnet18_w0.25.onnx")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"compress", []string{"compress", cifar, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c", "deeper", "x.onnx")}},
		{"train --init", []string{"train", "--init", cifar, "--data", "fashion-mnist", "--epochs", "1", "-o", filepath.Join(dir, "t", "x.onnx"), "--checkpoint", filepath.Join(dir, "k", "x.ckpt")}},
		{"verify", []string{"verify", cifar, "--data", "fashion-mnist", "-o", filepath.Join(dir, "v", "report")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err, _ := execute(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), "does not fit") {
				t.Fatalf("got %v, want an error saying the data does not fit", err)
			}
		})
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("a refused run left %s behind", filepath.Join(dir, e.Name()))
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the folder that existed is gone: %v", err)
	}
}

// TestMoreOutputsThanClasses: a model with 12 outputs given Fashion-MNIST
// (10 classes) runs, and compress, train --init and verify each say that
// label i is scored as output i and that outputs 10–11 are never the
// answer (the case of an ImageNet model given a small data set); the
// shipped 10-output model gets no such note.
func TestMoreOutputsThanClasses(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.25, InputSize: 28, InChannels: 1, Classes: 12, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	wide := filepath.Join(dir, "twelve.onnx")
	if err := onnxio.WriteFile(wide, m); err != nil {
		t.Fatal(err)
	}
	shipped := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	verifyArgs := func(model, out string) []string {
		return []string{"verify", model, "--data", "fashion-mnist", "--subset", "50", "--corruptions", "none", "--certify", "none", "--latency=false", "-o", filepath.Join(dir, out)}
	}
	for _, c := range []struct {
		name string
		args []string
		note bool
	}{
		{"compress", append([]string{"compress", wide, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c.onnx")}, quickCompress...), true},
		{"train --init", []string{"train", "--init", wide, "--data", "fashion-mnist", "--epochs", "1", "--batch", "32", "--train-subset", "64", "--eval-epochs=false", "-o", filepath.Join(dir, "t.onnx")}, true},
		{"verify", verifyArgs(wide, "v"), true},
		{"verify, ten outputs", verifyArgs(shipped, "s"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err, _ := execute(t, c.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			want := "the data has 10 classes and the model 12 outputs"
			if got := strings.Contains(stderr, want); got != c.note {
				t.Fatalf("stderr contains %q: %v, want %v:\n%s", want, got, c.note, stderr)
			}
			if c.note {
				for _, w := range []string{`"T-shirt/top" is output 0`, `"Ankle boot" output 9`, "outputs 10–11 are never the answer", "a new classifier head"} {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr does not contain %q:\n%s", w, stderr)
					}
				}
			}
		})
	}
}

// TestFloat16InputRefused: a model whose image input is float16 is
// refused up front by compress, train --init and verify (model or
// baseline), naming the file, the input and its type, and what to do; no
// output folder is left behind.
func TestFloat16InputRefused(t *testing.T) {
	dir := t.TempDir()
	m := shippedModel(t, "fmnist_resnet8.onnx")
	m.Graph.Inputs[0].Type.Elem = tensor.Float16
	half := filepath.Join(dir, "half.onnx")
	if err := onnxio.WriteFile(half, m); err != nil {
		t.Fatal(err)
	}
	shipped := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	for _, c := range []struct {
		name string
		args []string
		out  string
	}{
		{"compress", []string{"compress", half, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c", "x.onnx")}, "c"},
		{"train --init", []string{"train", "--init", half, "--data", "fashion-mnist", "-o", filepath.Join(dir, "t", "x.onnx")}, "t"},
		{"verify", []string{"verify", half, "--data", "fashion-mnist", "-o", filepath.Join(dir, "v")}, "v"},
		{"verify --baseline", []string{"verify", shipped, "--baseline", half, "--data", "fashion-mnist", "-o", filepath.Join(dir, "b")}, "b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err, code := execute(t, c.args...)
			if err == nil || code != 1 {
				t.Fatalf("got (%v, exit %d), want exit 1", err, code)
			}
			for _, w := range []string{half, `input "input" is float16`, "export the model with a float32 input"} {
				if !strings.Contains(OneLine(err), w) {
					t.Errorf("message %q does not contain %q", OneLine(err), w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, c.out)); !os.IsNotExist(err) {
				t.Errorf("%s left %s behind", c.name, filepath.Join(dir, c.out))
			}
		})
	}
}

// TestTrainingModeExport: a model exported in training mode (the shipped
// model with every BatchNormalization at training_mode = 1) is refused by
// compress, train --init and verify, naming the nodes and the fix, and
// leaving nothing behind; compress --eval-mode runs it and writes it in
// eval mode, with the accuracy of the shipped model's own run. check
// refuses the PyTorch training-mode fixture, whose Dropout draws at random.
func TestTrainingModeExport(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	m := shippedModel(t, "fmnist_resnet8.onnx")
	bns := 0
	for _, n := range m.Graph.Nodes {
		if n.OpType == "BatchNormalization" {
			n.Attrs = append(n.Attrs, &graph.Attribute{Name: "training_mode", Type: graph.AttrInt, I: 1})
			bns++
		}
	}
	trained := filepath.Join(dir, "train_mode.onnx")
	if err := onnxio.WriteFile(trained, m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		out  string
		fix  string
	}{
		{"compress", []string{"compress", trained, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c", "x.onnx")}, "c", "--eval-mode"},
		{"train --init", []string{"train", "--init", trained, "--data", "fashion-mnist", "-o", filepath.Join(dir, "t", "x.onnx")}, "t", "--eval-mode"},
		{"verify", []string{"verify", trained, "--data", "fashion-mnist", "-o", filepath.Join(dir, "v")}, "v", "csam-onnx train --init " + trained + " --eval-mode --epochs 0 --data fashion-mnist -o " + filepath.Join(dir, "train_mode.eval.onnx")},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err, code := execute(t, c.args...)
			if err == nil || code != 1 {
				t.Fatalf("got (%v, exit %d), want exit 1", err, code)
			}
			for _, w := range []string{trained, fmt.Sprintf("%d BatchNormalization in training mode (training_mode = 1", bns), "Export it in eval mode", c.fix} {
				if !strings.Contains(OneLine(err), w) {
					t.Errorf("message %q does not contain %q", OneLine(err), w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, c.out)); !os.IsNotExist(err) {
				t.Errorf("%s left %s behind", c.name, filepath.Join(dir, c.out))
			}
		})
	}
	stdout, _, err, _ := execute(t, "inspect", trained, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ir InspectReport
	if err := json.Unmarshal([]byte(stdout), &ir); err != nil {
		t.Fatal(err)
	}
	if len(ir.TrainingMode) != bns || !strings.HasPrefix(ir.TrainingMode[0], "BatchNormalization ") {
		t.Errorf("inspect lists training-mode nodes %v, want the %d BatchNormalization", ir.TrainingMode, bns)
	}
	out := filepath.Join(dir, "e.onnx")
	args := append([]string{"compress", trained, "--eval-mode", "--data", "fashion-mnist", "--sparsity", "0.5", "-o", out}, quickCompress...)
	_, stderr, err, _ := execute(t, args...)
	if err != nil {
		t.Fatalf("compress --eval-mode: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d nodes run and are written in eval mode", bns)) {
		t.Errorf("compress --eval-mode did not say what it changed:\n%s", stderr)
	}
	// The file is checked under a hidden name and then takes its own.
	if left, _ := filepath.Glob(filepath.Join(dir, ".*unverified*")); len(left) != 0 {
		t.Errorf("compress left %v behind", left)
	}
	w, err := onnxio.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if left := graph.TrainingModeNodes(w); len(left) != 0 {
		t.Errorf("the written file has %d training-mode nodes", len(left))
	}
	if stdout, _, err, _ := execute(t, "inspect", out); err != nil || strings.Contains(stdout, "training mode") {
		t.Errorf("inspect of the written file: %v\n%s", err, stdout)
	}
	var got, want CompressReport
	readJSONFile(t, out+".json", &got)
	ref := filepath.Join(dir, "ref.onnx")
	if _, stderr, err, _ := execute(t, append([]string{"compress", filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx"), "--data", "fashion-mnist", "--sparsity", "0.5", "-o", ref}, quickCompress...)...); err != nil {
		t.Fatalf("compress the shipped model: %v\n%s", err, stderr)
	}
	readJSONFile(t, ref+".json", &want)
	if got.Check.AccuracyORT != want.Check.AccuracyORT || got.Check.AccuracyORT != got.Check.AccuracyGo {
		t.Errorf("compress --eval-mode: check %+v; the shipped model's run: %+v; want the same accuracy in both runtimes and runs", got.Check, want.Check)
	}
	// The eval-mode copy verify's message names (train --init --eval-mode
	// --epochs 0) keeps every weight and measures what the shipped model
	// measures, in both runtimes.
	shipped := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	var copyRep, shippedRep TrainReport
	for _, c := range []struct {
		in, out string
		rep     *TrainReport
		extra   []string
	}{{trained, filepath.Join(dir, "copy.onnx"), &copyRep, []string{"--eval-mode"}}, {shipped, filepath.Join(dir, "same.onnx"), &shippedRep, nil}} {
		args := append([]string{"train", "--init", c.in, "--epochs", "0", "--data", "fashion-mnist", "-o", c.out}, c.extra...)
		if _, stderr, err, _ := execute(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		readJSONFile(t, c.out+".json", c.rep)
		w, err := onnxio.ReadFile(c.out)
		if err != nil {
			t.Fatal(err)
		}
		if left := graph.TrainingModeNodes(w); len(left) != 0 {
			t.Errorf("%s has %d training-mode nodes", c.out, len(left))
		}
		ref := shippedModel(t, "fmnist_resnet8.onnx")
		if len(w.Graph.Initializers) != len(ref.Graph.Initializers) {
			t.Errorf("%s has %d initializers, the shipped model %d", c.out, len(w.Graph.Initializers), len(ref.Graph.Initializers))
		}
		for _, in := range ref.Graph.Initializers {
			if got := w.Graph.Initializer(in.Name); got == nil || !slices.Equal(got.Value.F32, in.Value.F32) {
				t.Errorf("train --epochs 0 changed initializer %s", in.Name)
			}
		}
	}
	if copyRep.TestORT != shippedRep.TestORT || copyRep.TestGo != shippedRep.TestGo || len(copyRep.Epochs) != 0 || copyRep.TestORT.Accuracy() < 0.9 {
		t.Errorf("eval-mode copy measured %+v / %+v (epochs %v); the shipped model %+v / %+v", copyRep.TestORT, copyRep.TestGo, copyRep.Epochs, shippedRep.TestORT, shippedRep.TestGo)
	}
	fixture := filepath.Join(testenv.SharedDir(t, "fixtures", "torch-1.13", "small_cnn_32_op14_train"), "model.onnx")
	if _, _, err, code := execute(t, "check", fixture); code != 1 || err == nil || !strings.Contains(OneLine(err), `Dropout "/drop/Dropout" drops at random`) {
		t.Errorf("check on a training-mode export: %v (exit %d), want exit 1 naming the Dropout", err, code)
	}
}

// TestLabelsOutputRefused: a model whose first output is the class label
// (an ArgMax after the logits, which stay a second output) is refused by
// compress, train --init and verify, naming the ArgMax and the float32
// output that may be the scores.
func TestLabelsOutputRefused(t *testing.T) {
	dir := t.TempDir()
	m := shippedModel(t, "fmnist_resnet8.onnx")
	g := m.Graph
	logits := g.Outputs[0]
	g.Nodes = append(g.Nodes, &graph.Node{Name: "pick", OpType: "ArgMax", Inputs: []string{logits.Name}, Outputs: []string{"label"},
		Attrs: []*graph.Attribute{{Name: "axis", Type: graph.AttrInt, I: 1}, {Name: "keepdims", Type: graph.AttrInt, I: 0}}})
	g.Outputs = []*graph.ValueInfo{{Name: "label", Type: &graph.Type{IsTensor: true, Elem: tensor.Int64, HasShape: true, Shape: []graph.Dim{{Param: "N", HasParam: true}}}}, logits}
	labels := filepath.Join(dir, "labels.onnx")
	if err := onnxio.WriteFile(labels, m); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"compress", labels, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c.onnx")},
		{"train", "--init", labels, "--data", "fashion-mnist", "-o", filepath.Join(dir, "t.onnx")},
		{"verify", labels, "--data", "fashion-mnist", "-o", filepath.Join(dir, "v")},
	} {
		_, _, err, code := execute(t, args...)
		if err == nil || code != 1 {
			t.Fatalf("%s: got (%v, exit %d), want exit 1", args[0], err, code)
		}
		for _, w := range []string{labels, `first output "label" is int64, made by ArgMax "pick"`, `output "` + logits.Name + `" is float32 and may be the scores`} {
			if !strings.Contains(OneLine(err), w) {
				t.Errorf("%s: message %q does not contain %q", args[0], OneLine(err), w)
			}
		}
	}
}

// TestBrokenInputsRefusedUpFront: inputs that used to fail only after a
// whole training (or pass silently) are refused before any work, naming
// what is wrong, with nothing left behind: a model holding NaN weights
// (C-SAM panicked in its top-k), a test split with no images (verify
// reported 0.00% of 0 images), an output that is a folder (compress and
// train failed at the final rename).
func TestBrokenInputsRefusedUpFront(t *testing.T) {
	dir := t.TempDir()
	m := shippedModel(t, "fmnist_resnet8.onnx")
	var w *graph.Initializer
	for _, in := range m.Graph.Initializers {
		if len(in.Value.F32) > 3 {
			w = in
			break
		}
	}
	w.Value.F32[3] = float32(math.Inf(1))
	nan := filepath.Join(dir, "nan.onnx")
	if err := onnxio.WriteFile(nan, m); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"t10k-images-idx3-ubyte": {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28},
		"t10k-labels-idx1-ubyte": {0, 0, 8, 1, 0, 0, 0, 0},
	} {
		if err := os.WriteFile(filepath.Join(empty, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	folder := filepath.Join(dir, "f")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	b7 := shippedModel(t, "fmnist_resnet8.onnx")
	b7.Graph.Inputs[0].Type.Shape[0] = graph.Dim{Value: 7, HasValue: true}
	batch7 := filepath.Join(dir, "batch7.onnx")
	if err := onnxio.WriteFile(batch7, b7); err != nil {
		t.Fatal(err)
	}
	shipped := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		// The written file's check needs one batch of the file's size: it
		// used to fail only after the whole training.
		{"fixed batch above the test subset", []string{"compress", batch7, "--data", "fashion-mnist", "--test-subset", "5", "-o", filepath.Join(dir, "c", "x.onnx")}, "fixes its batch size at 7, more than the 5 test images"},
		{"nan weights", []string{"compress", nan, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c", "x.onnx")}, fmt.Sprintf("initializer %q holds 1 NaN or infinite values", w.Name)},
		{"nan weights, train", []string{"train", "--init", nan, "--data", "fashion-mnist", "-o", filepath.Join(dir, "c", "t.onnx")}, fmt.Sprintf("initializer %q holds 1 NaN", w.Name)},
		{"empty test split", []string{"verify", shipped, "--data", "fashion-mnist:" + empty, "-o", filepath.Join(dir, "c", "r")}, "the test split holds no images"},
		{"output folder", []string{"compress", shipped, "--data", "fashion-mnist", "-o", folder}, "is a folder; give a file name"},
		{"output folder, train", []string{"train", "--arch", "resnet8", "--data", "fashion-mnist", "-o", folder + string(filepath.Separator)}, "is a folder; give a file name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err, code := execute(t, c.args...)
			if err == nil || code == 0 || !strings.Contains(OneLine(err), c.want) {
				t.Fatalf("%v: (%v, exit %d), want a refusal containing %q", c.args, err, code, c.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "c")); !os.IsNotExist(err) {
				t.Errorf("%s left %s behind", c.name, filepath.Join(dir, "c"))
			}
			if left, _ := os.ReadDir(folder); len(left) != 0 {
				t.Errorf("%s wrote into %s", c.name, folder)
			}
		})
	}
}

// TestSkipBad: a corrupt image in an image folder stops verify naming the
// file and --skip-bad; with --skip-bad the run skips it and says how many
// it skipped (issue 4, must-show 5; the flag was only in the library).
func TestSkipBad(t *testing.T) {
	testenv.ORTLibrary(t)
	root := t.TempDir()
	writePNGFolder(t, root, []string{"train", "test"}, 8, func(i int) image.Image {
		img := image.NewRGBA(image.Rect(0, 0, 32, 32))
		for p := range img.Pix {
			img.Pix[p] = uint8(i*29 + p)
		}
		return img
	})
	bad := filepath.Join(root, "test", "c1", "broken.jpg")
	if err := os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	args := []string{"verify", model, "--data", "folder:" + root, "--corruptions", "none", "--certify", "none", "--latency=false"}
	if _, _, err, code := execute(t, append(args, "-o", filepath.Join(root, "r1"))...); err == nil || code != 1 ||
		!strings.Contains(OneLine(err), filepath.Join("test", "c1", "broken.jpg")) || !strings.Contains(OneLine(err), "--skip-bad") {
		t.Fatalf("verify on a corrupt image: (%v, exit %d), want an error naming the file and --skip-bad", err, code)
	}
	_, stderr, err, _ := execute(t, append(args, "--skip-bad", "-o", filepath.Join(root, "r2"))...)
	if err != nil {
		t.Fatalf("verify --skip-bad: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "skipped 1 undecodable files of the test split (--skip-bad), the first ") || !strings.Contains(stderr, "broken.jpg") {
		t.Errorf("verify --skip-bad did not count the skipped file:\n%s", stderr)
	}
	var r report.Report
	readJSONFile(t, filepath.Join(root, "r2", "report.json"), &r)
	if r.Clean.Images != 8 {
		t.Errorf("measured %d images, want the 8 that decode", r.Clean.Images)
	}
}

// TestGrayFolderForGrayModel: image folders decode as RGB; a 1-channel
// model takes them as luma, with a note (they were refused: "images have
// 3 channel(s), the model wants 1", with no way around it).
func TestGrayFolderForGrayModel(t *testing.T) {
	testenv.ORTLibrary(t)
	root := t.TempDir()
	writePNGFolder(t, root, []string{"test"}, 6, func(i int) image.Image {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for p := range img.Pix {
			img.Pix[p] = uint8(i*37 + p)
		}
		return img
	})
	model := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	_, stderr, err, _ := execute(t, "verify", model, "--data", "folder:"+root, "--corruptions", "none", "--certify", "none", "--latency=false", "-o", filepath.Join(root, "r"))
	if err != nil {
		t.Fatalf("verify on a folder of gray PNGs: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "its 3-channel images are reduced to 1 channel (luma") {
		t.Errorf("verify did not say it converted the images:\n%s", stderr)
	}
	var r report.Report
	readJSONFile(t, filepath.Join(root, "r", "report.json"), &r)
	if r.Clean.Images != 6 {
		t.Errorf("measured %d images, want 6", r.Clean.Images)
	}
}

// writePNGFolder writes n images made by img as root/<split>/c<i mod 2>/<i>.png
// for each split: a two-class image-folder data set.
func writePNGFolder(t *testing.T, root string, splits []string, n int, img func(i int) image.Image) {
	t.Helper()
	for i := range n {
		var b bytes.Buffer
		if err := png.Encode(&b, img(i)); err != nil {
			t.Fatal(err)
		}
		for _, split := range splits {
			p := filepath.Join(root, split, fmt.Sprintf("c%d", i%2), fmt.Sprintf("%d.png", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

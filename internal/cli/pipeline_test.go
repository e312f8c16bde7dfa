package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/report"
)

// fashionMNIST skips (fails in CI) when Debian's dataset-fashion-mnist is
// not installed.
func fashionMNIST(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		testenv.Missing(t, "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; make setup does it)")
	}
	testenv.ORTLibrary(t)
}

// TestTrainCompressVerify runs the whole pipeline a user runs, on a small
// slice of Fashion-MNIST: train a tiny ResNet-8, compress it with C-SAM to
// 70% sparsity, verify the written file against the dense one.
func TestTrainCompressVerify(t *testing.T) {
	fashionMNIST(t)
	dir := t.TempDir()
	dense := filepath.Join(dir, "dense.onnx")
	_, stderr, err, _ := execute(t, "train", "--arch", "resnet8", "--width", "0.5", "--data", "fashion-mnist", "--crop-pad", "0", "--flip=false",
		"--epochs", "2", "--warmup", "0", "--lr", "0.05", "--batch", "64", "--train-subset", "1024", "-o", dense)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	var tr TrainReport
	readJSONFile(t, dense+".json", &tr)
	if tr.TestORT.N != 10000 {
		t.Errorf("train measured %d test images in onnxruntime, want 10000", tr.TestORT.N)
	}
	if d := tr.ORTAccuracy - tr.TestGo.Accuracy; d > 0.001 || d < -0.001 {
		t.Errorf("test accuracy: onnxruntime %.4f vs Go engine %.4f, want within 0.1 point", tr.ORTAccuracy, tr.TestGo.Accuracy)
	}
	if tr.ORTAccuracy < 0.3 {
		t.Errorf("after two epochs on 1024 images the test accuracy is %.3f, want well above chance (0.1)", tr.ORTAccuracy)
	}
	if _, err := os.Stat(dense + ".ckpt"); err == nil {
		t.Error("train left its checkpoint behind after finishing")
	}

	pruned := filepath.Join(dir, "pruned.onnx")
	_, stderr, err, _ = execute(t, "compress", dense, "--data", "fashion-mnist", "--sparsity", "0.7",
		"--search-epochs", "1", "--finetune-epochs", "1", "--batch", "64", "--train-subset", "512", "--test-subset", "500", "-o", pruned)
	if err != nil {
		t.Fatalf("compress: %v\n%s", err, stderr)
	}
	var cr CompressReport
	readJSONFile(t, pruned+".json", &cr)
	for _, l := range cr.Result.Layers {
		want := 1 - float64(keepOf(0.3, l.Params))/float64(l.Params)
		if l.Sparsity != want {
			t.Errorf("layer %s sparsity %.5f, want %.5f (⌈0.3·%d⌉ kept)", l.Weight, l.Sparsity, want, l.Params)
		}
	}
	if d := cr.Check.AccuracyORT - cr.Check.AccuracyGo; d > 0.001 || d < -0.001 {
		t.Errorf("compress check: onnxruntime %.4f vs Go engine %.4f", cr.Check.AccuracyORT, cr.Check.AccuracyGo)
	}
	m, err := onnxio.ReadFile(pruned)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, kv := range m.Metadata {
		meta[kv.Key] = kv.Value
	}
	for _, k := range []string{"csam.method", "csam.achieved_sparsity", "csam.seed", "csam.data", "csam.tool_version", "csam.layers"} {
		if meta[k] == "" {
			t.Errorf("pruned model lacks metadata %s", k)
		}
	}
	if m.Opset() != 17 || m.IRVersion != 8 {
		t.Errorf("pruned model has opset %d IR %d, the input had 17 and 8", m.Opset(), m.IRVersion)
	}

	rep := filepath.Join(dir, "report")
	_, stderr, err, _ = execute(t, "verify", pruned, "--data", "fashion-mnist", "--baseline", dense, "--subset", "200",
		"--corruptions", "gaussian_noise,contrast", "--severities", "1,5", "--certify", "cc-cert", "--cert-subset", "4",
		"--cc-n", "20", "--cc-k", "2", "-o", rep)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	for _, f := range []string{"report.json", "report.md", "report.html", "corruptions.png", "cc_cert.png", "sparsity.png"} {
		if _, err := os.Stat(filepath.Join(rep, f)); err != nil {
			t.Errorf("verify did not write %s", f)
		}
	}
	var r report.Report
	readJSONFile(t, filepath.Join(rep, "report.json"), &r)
	// Layer-wise top-k keeps ⌈κ·N⌉ per layer, so the overall sparsity is
	// a little under the target; the issue allows 0.1 point.
	if d := r.Model.Sparsity - 0.7; d > 0.001 || d < -0.001 {
		t.Errorf("report: sparsity %.4f, want 0.7 within 0.001", r.Model.Sparsity)
	}
	if r.Baseline == nil || r.Baseline.Sparsity != 0 {
		t.Errorf("report: the dense baseline should have sparsity 0, got %+v", r.Baseline)
	}
	if r.Corruptions == nil || len(r.Corruptions.Items) != 4 || r.CCCert == nil || r.CCCert.Images != 4 {
		t.Errorf("report lacks the requested corruption cells or CC-Cert images: %+v %+v", r.Corruptions, r.CCCert)
	}
}

func keepOf(density float64, n int) int {
	k := int(density*float64(n) + 1 - 1e-9)
	return max(k, 1)
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestCompressFlagErrors(t *testing.T) {
	m := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"compress", m, "--sparsity", "0.5", "-o", "x.onnx"}, "--data is required"},
		{[]string{"compress", m, "--data", "fashion-mnist", "--sparsity", "1.5", "-o", "x.onnx"}, "sparsity"},
		{[]string{"compress", m, "--data", "fashion-mnist", "--method", "lottery", "-o", "x.onnx"}, "unknown method"},
		{[]string{"compress", m, "--data", "fashion-mnist", "--granularity", "channel", "--sparse-format", "coo", "-o", "x.onnx"}, "applies to --granularity weight"},
		{[]string{"compress", m, "--data", "fashion-mnist", "--granularity", "block", "-o", "x.onnx"}, "want weight or channel"},
		{[]string{"compress", m, "--data", "fashion-mnist", "--config", "/nonexistent.yaml", "-o", "x.onnx"}, "--config"},
	} {
		_, _, err, code := execute(t, c.args...)
		if err == nil || code != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("csam-onnx %s = (%v, exit %d), want a usage error (exit 2) mentioning %q", strings.Join(c.args, " "), err, code, c.want)
		}
	}
}

func TestCompressRecipe(t *testing.T) {
	dir := t.TempDir()
	recipe := filepath.Join(dir, "r.yaml")
	os.WriteFile(recipe, []byte("sparsity: 0.8\nmethod: hydra\nrho: 0.1\n"), 0o644)
	var got *CompressOptions
	ios, _, _ := testIO()
	cmd := NewCmdRoot(ios)
	for _, c := range cmd.Commands() {
		if c.Name() == "compress" {
			cmd.RemoveCommand(c)
		}
	}
	cmd.AddCommand(NewCmdCompress(ios, &GlobalOptions{}, func(_ context.Context, o *CompressOptions) error { got = o; return nil }))
	cmd.SetArgs([]string{"compress", "m.onnx", "--data", "fashion-mnist", "--config", recipe, "--method", "magnitude", "-o", "o.onnx"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Learn.Sparsity != 0.8 || got.Learn.Rho != 0.1 {
		t.Errorf("recipe not applied: sparsity %v rho %v", got.Learn.Sparsity, got.Learn.Rho)
	}
	if got.Learn.Method != "magnitude" {
		t.Errorf("method %q: the command line must win over the recipe", got.Learn.Method)
	}
	os.WriteFile(recipe, []byte("sparsity: 0.8\nfrobnicate: 1\n"), 0o644)
	_, _, err, code := execute(t, "compress", "m.onnx", "--data", "fashion-mnist", "--config", recipe, "-o", "o.onnx")
	if err == nil || code != 2 || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("unknown recipe key: (%v, exit %d), want a usage error naming the key", err, code)
	}
}

// TestOutputIsNotInput: compress -o and train -o naming the model they
// read (as given, through "./" and through a symlink) are usage errors that
// leave the file as it was; a new file next to it is accepted.
func TestOutputIsNotInput(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "m.onnx")
	src, err := os.ReadFile(filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m, src, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.onnx")
	if err := os.Symlink(m, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, out := range []string{m, "./m.onnx", link} {
		for _, args := range [][]string{
			{"compress", m, "--data", "fashion-mnist", "-o", out},
			{"train", "--init", "m.onnx", "--data", "fashion-mnist", "--epochs", "1", "-o", out},
		} {
			_, _, err, code := execute(t, args...)
			if err == nil || code != 2 || !strings.Contains(err.Error(), "would replace it") {
				t.Errorf("csam-onnx %s = (%v, exit %d), want a usage error saying the model would be replaced", strings.Join(args, " "), err, code)
			}
		}
	}
	if b, err := os.ReadFile(m); err != nil || !bytes.Equal(b, src) {
		t.Fatalf("the input model changed (err %v)", err)
	}
	// Another file passes this check: the command then fails later, on
	// the data (a 3-channel model, 1-channel images).
	_, _, err, code := execute(t, "compress", m, "--data", "fashion-mnist", "--ort-lib", testenv.ORTLibrary(t), "-o", "new.onnx")
	if err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("compress -o new.onnx = (%v, exit %d), want the data's error (does not fit)", err, code)
	}
}

// TestOutputFolderUnwritable: an output path whose folder cannot be made
// (here: under a regular file) fails compress, train and verify before
// they measure or train anything, naming the flag and the path.
func TestOutputFolderUnwritable(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lib := testenv.ORTLibrary(t)
	bad := filepath.Join(file, "sub", "out.onnx")
	for _, args := range [][]string{
		{"compress", m, "--data", "fashion-mnist", "--ort-lib", lib, "-o", bad},
		{"train", "--arch", "resnet8", "--data", "fashion-mnist", "--epochs", "1", "--ort-lib", lib, "-o", bad},
		{"verify", m, "--data", "fashion-mnist", "--ort-lib", lib, "-o", filepath.Join(file, "report")},
	} {
		_, _, err, code := execute(t, args...)
		if err == nil || code != 1 || !strings.Contains(err.Error(), "-o "+filepath.Join(file)) || !strings.Contains(err.Error(), "cannot create the folder") {
			t.Errorf("csam-onnx %s = (%v, exit %d), want exit 1 naming -o and its path", strings.Join(args, " "), err, code)
		}
	}
}

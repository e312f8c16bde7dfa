package cli

import (
	"encoding/json"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/report"
	"github.com/csam-onnx/csam-onnx/runtime"
)

func cifarSpec(t *testing.T) string {
	t.Helper()
	return "cifar10:" + testenv.SharedDir(t, "data", "cifar10")
}

// TestVerifyShardsMergeToOneRun: --shard 0/2 + --shard 1/2 + merge gives
// exactly the numbers of one run (issue 6, must-show 4).
func TestVerifyShardsMergeToOneRun(t *testing.T) {
	testenv.ORTLibrary(t)
	data := cifarSpec(t)
	model := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	base := filepath.Join(testenv.SharedDir(t, "fixtures", "torch-1.13", "small_cnn_32_op14_eval"), "model.onnx")
	dir := t.TempDir()
	args := []string{"verify", model, "--baseline", base, "--data", data, "--subset", "60", "--corruptions", "gaussian_noise,pixelate",
		"--severities", "2,4", "--certify", "both", "--cert-subset", "6", "--cc-n", "20", "--cc-k", "3", "--n0", "10", "--n", "50", "--latency=false"}
	one := filepath.Join(dir, "one")
	if _, stderr, err, _ := execute(t, append(args, "-o", one)...); err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	sharded := filepath.Join(dir, "sharded")
	for _, sh := range []string{"0/2", "1/2"} {
		if _, stderr, err, _ := execute(t, append(args, "--shard", sh, "-o", sharded)...); err != nil {
			t.Fatalf("verify --shard %s: %v\n%s", sh, err, stderr)
		}
	}
	if _, stderr, err, _ := execute(t, "merge", filepath.Join(sharded, "raw-0-of-2.json"), filepath.Join(sharded, "raw-1-of-2.json"), "-o", sharded); err != nil {
		t.Fatalf("merge: %v\n%s", err, stderr)
	}
	var a, b report.Report
	readJSONFile(t, filepath.Join(one, "report.json"), &a)
	readJSONFile(t, filepath.Join(sharded, "report.json"), &b)
	if a.Clean.Images != 60 || a.CCCert == nil || a.CCCert.Images != 6 || a.Smoothing == nil {
		t.Fatalf("one run measured %+v", a.Clean)
	}
	// The empirical accuracy on the default 20-point grid of the default
	// transform (brightness and contrast: 400 transforms an image), for
	// both models, at most their clean accuracy on the certified images.
	if cc := a.CCCert; cc.GridPoints != 400 || cc.Empirical == nil || cc.BaselineEmpirical == nil {
		t.Errorf("empirical accuracy: %d grid points, %v (baseline %v)", cc.GridPoints, cc.Empirical, cc.BaselineEmpirical)
	} else {
		correct := 0
		for _, im := range cc.PerImage {
			if im.Correct {
				correct++
			}
		}
		if *cc.Empirical > float64(correct)/float64(cc.Images) {
			t.Errorf("empirical accuracy %v above the clean accuracy %d/%d of the certified images", *cc.Empirical, correct, cc.Images)
		}
	}
	// The per-image CC-Cert outcomes of both models, in test-set order,
	// agree with the certified accuracies.
	cc := a.CCCert
	for i, e := range cc.Eps {
		for _, l := range []struct {
			imgs []report.CCImage
			acc  float64
		}{{cc.PerImage, cc.Certified[i]}, {cc.BaselinePerImage, cc.Baseline[i]}} {
			n := 0
			for j, s := range l.imgs {
				if s.CertifiedAt(e) {
					n++
				}
				if j > 0 && s.Index <= l.imgs[j-1].Index {
					t.Errorf("per-image outcomes out of order at %d", j)
				}
			}
			if len(l.imgs) != cc.Images || float64(n)/float64(cc.Images) != l.acc {
				t.Errorf("ε=%g: %d per-image outcomes, %d certified; report says %d images, %v", e, len(l.imgs), n, cc.Images, l.acc)
			}
		}
	}
	// The plot's smoothing curve: a fine grid past the largest certifiable
	// radius, non-increasing, agreeing with the table at r = 0, and 0
	// beyond the largest radius.
	sm := a.Smoothing
	rmax := report.MaxRadius(sm)
	if n := len(sm.CurveRadii); n != 81 || len(sm.CurveCertified) != n || len(sm.CurveBaseline) != n || sm.CurveRadii[n-1] <= rmax {
		t.Fatalf("smoothing curve: %d radii up to %v (largest certifiable %v), %d model and %d baseline values", n, sm.CurveRadii[len(sm.CurveRadii)-1], rmax, len(sm.CurveCertified), len(sm.CurveBaseline))
	}
	if sm.CurveCertified[0] != sm.Certified[0] || sm.CurveBaseline[0] != sm.Baseline[0] {
		t.Errorf("curve at r=0: %v / %v, table %v / %v", sm.CurveCertified[0], sm.CurveBaseline[0], sm.Certified[0], sm.Baseline[0])
	}
	for i := 1; i < len(sm.CurveRadii); i++ {
		if sm.CurveCertified[i] > sm.CurveCertified[i-1] || sm.CurveBaseline[i] > sm.CurveBaseline[i-1] {
			t.Errorf("curve increases at r=%v", sm.CurveRadii[i])
		}
		if sm.CurveRadii[i] > rmax && (sm.CurveCertified[i] != 0 || sm.CurveBaseline[i] != 0) {
			t.Errorf("certified accuracy %v / %v at r=%v, beyond the largest certifiable radius %v", sm.CurveCertified[i], sm.CurveBaseline[i], sm.CurveRadii[i], rmax)
		}
	}
	for _, d := range []struct {
		name string
		x, y any
	}{{"clean", a.Clean, b.Clean}, {"corruptions", a.Corruptions, b.Corruptions}, {"cc_cert", a.CCCert, b.CCCert}, {"smoothing", a.Smoothing, b.Smoothing}} {
		if diff := cmp.Diff(d.x, d.y); diff != "" {
			t.Errorf("%s: sharded + merged differs from one run (-one +merged):\n%s", d.name, diff)
		}
	}
}

// TestVerifyCorruptionNamesAndMCE: --corruptions takes any spelling and
// the report uses the canonical names, so frost (procedural here) stays
// out of the means however it is spelled (Frost was counted while the
// report said it was left out); the baseline-normalized mCE and relative
// mCE are Hendrycks & Dietterich's, recomputed here from the report's
// own cells.
func TestVerifyCorruptionNamesAndMCE(t *testing.T) {
	testenv.ORTLibrary(t)
	data := cifarSpec(t)
	// An untrained model against the shipped CIFAR-10 model: a baseline
	// that errs more under corruption than on clean images.
	model := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	base := filepath.Join(testenv.RepoRoot(), "models", "cifar10_resnet18_w0.25.onnx")
	out := filepath.Join(t.TempDir(), "r")
	if _, stderr, err, _ := execute(t, "verify", model, "--baseline", base, "--data", data, "--subset", "60", "--corruptions", "Frost, Gaussian Noise,PIXELATE",
		"--severities", "2,4", "--certify", "none", "--latency=false", "-o", out); err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	var r report.Report
	readJSONFile(t, filepath.Join(out, "report.json"), &r)
	c := r.Corruptions
	if c == nil || len(c.Items) != 6 || !slices.Equal(c.Excluded, []string{"frost"}) {
		t.Fatalf("corruptions: %+v; want 3 × 2 cells with frost left out of the means", c)
	}
	acc := map[string][]float64{}
	bacc := map[string][]float64{}
	var sum float64
	for _, it := range c.Items {
		if it.BaselineAccuracy == nil {
			t.Fatalf("%s/%d has no baseline accuracy", it.Name, it.Severity)
		}
		acc[it.Name] = append(acc[it.Name], it.Accuracy)
		bacc[it.Name] = append(bacc[it.Name], *it.BaselineAccuracy)
		if it.Name != "frost" {
			sum += it.Accuracy
		}
	}
	if names := slices.Sorted(maps.Keys(acc)); !slices.Equal(names, []string{"frost", "gaussian_noise", "pixelate"}) {
		t.Errorf("cells named %v, want the canonical names", names)
	}
	if c.Mean != sum/4 {
		t.Errorf("mean corruption accuracy %v, want %v (frost left out)", c.Mean, sum/4)
	}
	hd := func(relative bool) float64 {
		var m float64
		for _, n := range []string{"gaussian_noise", "pixelate"} {
			var e, be float64
			for i := range acc[n] {
				e += 1 - acc[n][i]
				be += 1 - bacc[n][i]
				if relative {
					e -= 1 - r.Clean.Accuracy
					be -= 1 - *r.Clean.BaselineAccuracy
				}
			}
			m += e / be
		}
		return m / 2
	}
	for _, v := range []struct {
		name string
		got  *float64
		want float64
	}{{"mce_vs_baseline", c.MCEVsBaseline, hd(false)}, {"relative_mce_vs_baseline", c.RelativeMCEVsBaseline, hd(true)}} {
		if v.got == nil || math.Abs(*v.got-v.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", v.name, v.got, v.want)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "relative mCE, baseline-normalized (Hendrycks & Dietterich)") || !strings.Contains(string(md), "frost measured but left out") {
		t.Errorf("report.md lacks the Hendrycks & Dietterich rows or the frost note:\n%s", md)
	}
}

// TestVerifyBadInput: each refused with a clear usage or input error
// before any measuring (issue 6, must-show 6).
func TestVerifyBadInput(t *testing.T) {
	testenv.ORTLibrary(t)
	data := cifarSpec(t)
	model := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown corruption", []string{"verify", model, "--data", data, "--corruptions", "rain", "-o", dir}, "rain"},
		{"shard out of range", []string{"verify", model, "--data", data, "--shard", "3/2", "-o", dir}, "--shard"},
		{"bad severities", []string{"verify", model, "--data", data, "--severities", "0-7", "-o", dir}, "--severities"},
		{"bad certificate", []string{"verify", model, "--data", data, "--certify", "ibp", "-o", dir}, "--certify"},
		{"data does not fit", []string{"verify", model, "--data", "fashion-mnist", "--subset", "10", "--corruptions", "none", "--certify", "none", "-o", dir}, "does not fit"},
		{"baseline of another task", []string{"verify", model, "--data", data, "--baseline", otherTask(t, dir), "-o", dir}, "--baseline"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "data does not fit" {
				fashionMNIST(t)
			}
			_, _, err, code := execute(t, c.args...)
			if err == nil || code == 0 || !strings.Contains(err.Error(), c.want) {
				t.Errorf("csam-onnx %s = (%v, exit %d), want an error mentioning %q", strings.Join(c.args, " "), err, code, c.want)
			}
			if strings.Contains(OneLine(err), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "report.json")); err == nil {
		t.Error("a refused verify wrote a report")
	}
}

// TestDefaultOutputsBesideModel: without -o, compress writes MODEL.csam.onnx
// and verify its report into MODEL.report/, beside the model read.
func TestDefaultOutputsBesideModel(t *testing.T) {
	quiet := &IOStreams{Out: io.Discard, ErrOut: io.Discard}
	for _, c := range []struct{ model, compress, verify string }{
		{"dir/m.onnx", "dir/m.csam.onnx", "dir/m.report"},
		{"m.ONNX", "m.csam.onnx", "m.report"},
		{"out/m.csam.onnx", "out/m.csam.csam.onnx", "out/m.csam.report"},
		{"model", "model.csam.onnx", "model.report"},
	} {
		co, err := parseVerb(NewCmdCompress, quiet, &GlobalOptions{}, []string{c.model, "--data", "fashion-mnist"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVerb(NewCmdVerify, quiet, &GlobalOptions{}, []string{c.model, "--data", "fashion-mnist"})
		if err != nil {
			t.Fatal(err)
		}
		if co.Output != c.compress || v.Output != c.verify {
			t.Errorf("%s: compress writes %s, verify into %s; want %s and %s", c.model, co.Output, v.Output, c.compress, c.verify)
		}
	}
}

// otherTask writes a 5-class model of 32×32 RGB images: the same images as
// CIFAR-10, another class count.
func otherTask(t *testing.T, dir string) string {
	t.Helper()
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.25, InputSize: 32, Classes: 5})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "five.onnx")
	if err := onnxio.WriteFile(p, m); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMergeRefusesOtherSettings: merge joins shards of one run only; a
// shard run with another --subset, --cert-subset, --severities,
// --cc-transform, baseline or CC-Cert output reading is refused, naming
// what differs (they used to merge silently).
func TestMergeRefusesOtherSettings(t *testing.T) {
	shard := func(i int, edit func(*RawResult)) *RawResult {
		r := &RawResult{Schema: rawSchema, Shard: [2]int{i, 2}, Seed: 1, Data: "d", Severities: []int{1, 3}, Subset: 1000, CertSubset: 50,
			Model: ModelRaw{Facts: report.Model{SHA256: "m"}, Clean: runtime.Eval{N: 10, Correct: 7}, CCTransform: "brightness:0.2",
				CC: &runtime.CCCertResult{Seed: 1, N: 100, K: 10, Delta: 0.9, Samples: []runtime.CCSample{{Index: i}}}},
			Baseline: &ModelRaw{Facts: report.Model{SHA256: "b"}, Clean: runtime.Eval{N: 10, Correct: 8}, CCTransform: "brightness:0.2",
				CC: &runtime.CCCertResult{Seed: 1, N: 100, K: 10, Delta: 0.9, Samples: []runtime.CCSample{{Index: i}}}}}
		if edit != nil {
			edit(r)
		}
		return r
	}
	dir := t.TempDir()
	write := func(name string, r *RawResult) string {
		p := filepath.Join(dir, name)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := write("raw-0-of-2.json", shard(0, nil))
	if m, err := mergeRaw([]string{first, write("same.json", shard(1, nil))}); err != nil || m.Model.Clean.N != 20 || len(m.Model.CC.Samples) != 2 {
		t.Fatalf("merging two shards of one run: %v, %+v", err, m)
	}
	for _, c := range []struct {
		name string
		edit func(*RawResult)
		want string
	}{
		{"cert-subset", func(r *RawResult) { r.CertSubset = 100 }, "--cert-subset 100/50"},
		{"subset", func(r *RawResult) { r.Subset = 0 }, "--subset 0/1000"},
		{"severities", func(r *RawResult) { r.Severities = []int{1, 2} }, "--severities [1 2]/[1 3]"},
		{"cc-transform", func(r *RawResult) { r.Model.CCTransform = "rotation:10" }, `--cc-transform "rotation:10"/"brightness:0.2"`},
		{"baseline", func(r *RawResult) { r.Baseline.Facts.SHA256 = "c" }, "the baseline differs"},
		{"no baseline", func(r *RawResult) { r.Baseline = nil }, "the baseline differs"},
		{"probabilities", func(r *RawResult) { r.Model.CC.Probabilities = true }, "probabilities true"},
		{"counts", func(r *RawResult) { r.Model.Clean.Correct = 50 }, "model clean accuracy: 50 correct of 10 images; it was edited or damaged"},
		{"shard number", func(r *RawResult) { r.Shard = [2]int{5, 2} }, "claims to be shard 5/2"},
		{"schema", func(r *RawResult) { r.Schema = "x" }, `its schema is "x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := mergeRaw([]string{first, write(c.name+".json", shard(1, c.edit))})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("merge = %v, want a refusal containing %q", err, c.want)
			}
		})
	}
}

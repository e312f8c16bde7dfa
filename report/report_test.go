package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var keep = flag.String("keep", "", "write the sample report into this folder to look at it")

func f(v float64) *float64 { return &v }

func sample() *Report {
	r := &Report{
		Tool: "csam-onnx test", Command: "csam-onnx verify m.onnx", ORTVersion: "1.24.3", Seed: 1,
		Data: "cifar10:/data", DataNote: "CIFAR-10 (JPEG q75 copy), first 500 test images",
		Model: Model{Path: "m.onnx", SHA256: "ab", Bytes: 4096, GzipBytes: 2048, Params: 1000, Nonzero: 150, Sparsity: 0.9,
			Layers:    []Layer{{"conv1", 432, 0.5}, {"conv2", 9216, 0.9}, {"fc", 640, 0.95}},
			LatencyMs: map[string]float64{"1": 0.5, "64": 12}},
		Baseline: &Model{Path: "dense.onnx", Params: 1000, Nonzero: 1000, Bytes: 4096, GzipBytes: 3900},
		Clean:    Clean{Images: 500, Accuracy: 0.9, BaselineAccuracy: f(0.91)},
		CCCert:   &CCCert{Transform: "brightness:0.2", Images: 500, N: 100, K: 10, Delta: 0.9, Eps: []float64{1e-4, 1e-3, 1e-2}, Certified: []float64{0.2, 0.4, 0.6}, Baseline: []float64{0.1, 0.3, 0.5}},
		Smoothing: &Smoothing{Sigma: 0.25, N0: 100, N: 1000, Alpha: 0.001, Images: 100, Radii: []float64{0, 0.25, 0.5, 0.75},
			Certified: []float64{0.7, 0.5, 0.3, 0}, ACR: 0.4, Baseline: []float64{0.6, 0.4, 0.2, 0}, BaselineACR: f(0.3)},
	}
	c := &Corruptions{Images: 500, Severities: []int{1, 2, 3, 4, 5}, Mean: 0.7, MCE: 0.3, BaselineMean: f(0.68), BaselineMCE: f(0.32)}
	for _, it := range []struct{ name, fam string }{{"gaussian_noise", "noise"}, {"shot_noise", "noise"}, {"defocus_blur", "blur"}, {"fog", "weather"}, {"contrast", "digital"}} {
		for s := 1; s <= 5; s++ {
			c.Items = append(c.Items, CorruptionItem{Name: it.name, Family: it.fam, Severity: s, Accuracy: 0.9 - 0.1*float64(s), BaselineAccuracy: f(0.88 - 0.1*float64(s))})
		}
	}
	r.Corruptions = c
	return r
}

func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	if *keep != "" {
		dir = *keep
	}
	r := sample()
	if err := WriteDir(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report.json", "report.md", "report.html", "corruptions.png", "cc_cert.png", "smoothing.png", "sparsity.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("WriteDir did not write %s: %v", name, err)
		}
		if strings.HasSuffix(name, ".png") && !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", name)
		}
	}
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if n := strings.Count(string(html), "data:image/png;base64,"); n != 4 {
		t.Errorf("report.html embeds %d plots, want 4", n)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"| clean accuracy (500 images) | 90.00% | 91.00% |", "CC-Cert certified accuracy, ε=0.001 | 40.00% | 30.00% |", "![Sparsity per layer](sparsity.png)",
		// n = 1000 and α = 0.001 cannot certify r = 0.75 at σ = 0.25.
		"| smoothing certified accuracy, r=0.5 (σ=0.25) | 30.00% | 20.00% |",
		"| smoothing certified accuracy, r=0.75 (σ=0.25) | n/a: beyond the largest certifiable radius 0.616 (raise --n) |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	fh, err := os.Open(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	back, err := ReadJSON(fh)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("report.json round trip differs (-wrote +read):\n%s", diff)
	}
}

func TestJSONStable(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteJSON(&a, sample()); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("WriteJSON output differs between two runs on the same report")
	}
}

func TestReadJSONRejectsOtherSchemas(t *testing.T) {
	if _, err := ReadJSON(strings.NewReader(`{"schema":"other/v9"}`)); err == nil {
		t.Error("ReadJSON accepted a report of another schema")
	}
	if _, err := ReadJSON(strings.NewReader(`not json`)); err == nil {
		t.Error("ReadJSON accepted a non-JSON file")
	}
}

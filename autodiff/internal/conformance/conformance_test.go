package conformance

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestCompare(t *testing.T) {
	f := func(v ...float32) *tensor.Tensor { return tensor.FromFloat32(v, len(v)) }
	nan := float32(math.NaN())
	tests := []struct {
		name      string
		got, want *tensor.Tensor
		ok        bool
		worst     float64
	}{
		{"equal", f(1, 2), f(1, 2), true, 0},
		{"within atol", f(1e-5), f(0), true, 1e-5},
		{"within rtol", f(1000.1), f(1000), true, 0.1},
		{"outside", f(1000.2), f(1000), false, 0.2},
		{"both NaN", f(nan), f(nan), true, 0},
		{"NaN got", f(nan), f(1), false, math.Inf(1)},
		{"shape", tensor.FromFloat32([]float32{1, 2}, 1, 2), f(1, 2), false, math.Inf(1)},
		{"ints exact", tensor.FromInt64([]int64{1, 3}, 2), tensor.FromInt64([]int64{1, 2}, 2), false, 1},
		{"types", f(1), tensor.FromInt64([]int64{1}, 1), false, math.Inf(1)},
	}
	for _, tt := range tests {
		worst, msg := compare(tt.got, tt.want, Atol, Rtol)
		// worst is computed from float32 values: 1e-4 covers their
		// rounding near 1000.
		if (msg == "") != tt.ok || math.Abs(worst-tt.worst) > 1e-4 && !(math.IsInf(worst, 1) && math.IsInf(tt.worst, 1)) {
			t.Errorf("%s: compare = %g, %q; want ok %v, worst %g", tt.name, worst, msg, tt.ok, tt.worst)
		}
	}
}

func TestReadORTResults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.ort-results.tsv")
	data := "onnxruntime version 1.24.3\n" +
		"PASS\ttest_a\ttest_data_set_0\t0\t\n" +
		"FAIL\ttest_b\ttest_data_set_0\t10.2\ty: 23/60 elements out of tolerance\n" +
		"PASS\ttest_b\ttest_data_set_1\t0\t\n" +
		"ERROR\ttest_c\t-\t0\tload: no kernel\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadORTResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["test_a"].Status != "PASS" || got["test_b"].Status != "FAIL" || got["test_b"].MaxAbsDiff != 10.2 || got["test_c"].Detail != "load: no kernel" {
		t.Errorf("ReadORTResults = %+v", got)
	}
}

func TestClassify(t *testing.T) {
	g := &graph.Graph{Inputs: []*graph.ValueInfo{{Name: "x", Type: &graph.Type{IsTensor: true, Elem: tensor.Uint8}}}}
	n := &graph.Node{Name: "n", OpType: "Foo"}
	if s, why := classify(g, &autodiff.UnsupportedOpError{Nodes: []*graph.Node{n, n}}); s != Unsupported || why != "op outside the engine's set: Foo" {
		t.Errorf("classify(unsupported op) = %s, %q", s, why)
	}
	if s, why := classify(g, errors.New("boom")); s != Unsupported || !strings.Contains(why, "uint8") {
		t.Errorf("classify(error on a uint8 graph) = %s, %q; want unsupported naming uint8", s, why)
	}
	if s, _ := classify(g, &mismatchError{"off"}); s != Fail {
		t.Errorf("classify(mismatch) = %s, want fail: wrong numbers are never excused", s)
	}
	g.Inputs[0].Type.Elem = tensor.Float32
	if s, _ := classify(g, errors.New("boom")); s != Fail {
		t.Errorf("classify(error on a float graph) = %s, want fail", s)
	}
}

func TestMarkdown(t *testing.T) {
	results := []Result{
		{Folder: "node", Test: "test_a", Status: Pass, ORT: "PASS"},
		{Folder: "node", Test: "test_b", Status: Fail, WorstDiff: 0.5, Reason: "a|b", ORT: "PASS"},
		{Folder: "light", Test: "test_c", Status: Unsupported, Reason: "op outside the engine's set: LRN", ORT: "ERROR", ORTDetail: "load"},
	}
	var b bytes.Buffer
	if err := Markdown(&b, results, "make conformance"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"`make conformance`",
		"| node | 2 | 1 | 1 | 0 | 0 | 1 |",
		"| light | 1 | 0 | 0 | 1 | 1 | 0 |",
		"| all | 3 | 1 | 1 | 1 | 1 | 1 |",
		"| node | test_b | fail | 0.5 | PASS | a\\|b |",
		"| light | test_c | unsupported | – | ERROR: load | op outside the engine's set: LRN |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, out)
		}
	}
}

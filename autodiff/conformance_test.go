package autodiff_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff/internal/conformance"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
)

var conformanceWrite = flag.String("conformance.write", "", "write the conformance report (Markdown) to this file")

// TestConformance runs every test of ../shared/onnx-conformance through
// the engine. It requires that every test onnxruntime passes and the
// engine supports (its ops are registered and its tensors are float32 or
// int64) passes in the engine too, and prints the counts per folder. With
// -conformance.write=FILE it also writes the report (`make conformance`
// writes docs/conformance.md).
func TestConformance(t *testing.T) {
	root := testenv.SharedDir(t, "onnx-conformance")
	results, err := conformance.RunAll(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 500 {
		t.Errorf("ran %d conformance tests, want the ~595 of the material", len(results))
	}
	for _, c := range conformance.Summarize(results) {
		t.Logf("%-17s total %3d  pass %3d  fail %3d  unsupported %3d  ort-fails %3d  (ORT passes, engine fails: %d)",
			c.Folder, c.Total, c.Pass, c.Fail, c.Unsupported, c.ORTFails, c.ORTPassEngineFail)
	}
	for _, r := range results {
		if r.Status == conformance.Fail && r.ORTPasses() {
			t.Errorf("%s/%s: onnxruntime passes, the engine fails (worst diff %.3g): %s", r.Folder, r.Test, r.WorstDiff, r.Reason)
		}
	}
	if *conformanceWrite != "" {
		var b bytes.Buffer
		if err := conformance.Markdown(&b, results, "make conformance"); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(*conformanceWrite), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*conformanceWrite, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", *conformanceWrite)
	}
}

// TestConformanceClassifiesOps checks the harness on tests whose outcome
// is known: a shape-op test passes, and the ops this package's author owns
// (Add, Reshape, Slice, Softmax, ...) all pass their node tests.
func TestConformanceClassifiesOps(t *testing.T) {
	root := testenv.SharedDir(t, "onnx-conformance")
	for _, name := range []string{"test_add_bcast", "test_reshape_negative_dim", "test_slice_neg_steps", "test_softmax_axis_0", "test_constant", "test_gather_negative_indices"} {
		r := conformance.RunTest(filepath.Join(root, "node", name))
		if r.Status != conformance.Pass {
			t.Errorf("RunTest(node/%s) = %s (%s), want pass", name, r.Status, r.Reason)
		}
	}
	r := conformance.RunTest(filepath.Join(root, "node", "test_identity_sequence"))
	if r.Status != conformance.Unsupported || !strings.Contains(r.Reason, "not a tensor") {
		t.Errorf("RunTest(node/test_identity_sequence) = %s (%s), want unsupported: not a tensor", r.Status, r.Reason)
	}
}

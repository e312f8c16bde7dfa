package graph_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// conformanceCase is one ONNX backend-test folder.
type conformanceCase struct {
	dir   string
	model *graph.Model
}

// TestInferShapesConformance runs InferShapes on every backend test whose
// ops it supports, with the stored inputs' shapes, and compares every
// graph output's shape with the stored output's shape (which is what
// onnxruntime produces: the *.ort-results.tsv files record it matching
// them). Models using ops outside the supported set must fail with an
// error naming the op.
func TestInferShapesConformance(t *testing.T) {
	root := testenv.SharedDir(t, "onnx-conformance")
	supported := map[string]bool{}
	for _, op := range graph.InferableOps() {
		supported[op] = true
	}
	checked, refused := 0, 0
	refusedOps := map[string]bool{}
	for _, suite := range []string{"node", "node-v1.12.0", "pytorch-operator", "light-models"} {
		dirs, err := filepath.Glob(filepath.Join(root, suite, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range dirs {
			if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
				continue
			}
			name := suite + "/" + filepath.Base(dir)
			m, err := onnxio.ReadFile(filepath.Join(dir, "model.onnx"))
			if err != nil {
				continue // version or decoding limits are onnxio's tests
			}
			var unsupported []string
			for _, n := range m.Graph.Nodes {
				if !supported[n.OpType] {
					unsupported = append(unsupported, n.OpType)
				}
			}
			if !allTensorInputs(m) {
				continue // sequence and optional inputs: not tensors
			}
			values, want, err := storedShapes(m, dir)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			// Integer inputs are passed with their contents: backend tests feed
			// Reshape's shape, Slice's starts and similar as graph inputs.
			shapes := map[string][]int{}
			known := map[string]*tensor.Tensor{}
			for name, v := range values {
				if v.DType.IsInteger() {
					known[name] = v
				} else {
					shapes[name] = v.Shape
				}
			}
			got, err := graph.InferShapesWith(m, shapes, known)
			if len(unsupported) > 0 {
				if err == nil || !strings.Contains(err.Error(), unsupported[0]) && !strings.Contains(err.Error(), "not supported") {
					t.Errorf("%s: InferShapes with unsupported ops %v: err = %v, want an error naming the op", name, unsupported, err)
				}
				refused++
				refusedOps[unsupported[0]] = true
				continue
			}
			if err != nil {
				t.Errorf("%s: InferShapes: %v", name, err)
				continue
			}
			for out, w := range want {
				if g := got[out]; !slices.Equal(g, w) {
					t.Errorf("%s: shape of output %q = %v, want %v", name, out, g, w)
				}
			}
			checked++
		}
	}
	t.Logf("InferShapes matched the stored output shapes of %d backend tests; %d refused for unsupported ops %v", checked, refused, slices.Sorted(maps.Keys(refusedOps)))
	if checked < 300 {
		t.Errorf("only %d backend tests checked, want at least 300", checked)
	}
}

func allTensorInputs(m *graph.Model) bool {
	for _, vi := range m.Graph.Inputs {
		if vi.Type == nil || !vi.Type.IsTensor {
			return false
		}
	}
	return true
}

// storedShapes reads test_data_set_0's inputs and output shapes, keyed by
// graph input and output name.
func storedShapes(m *graph.Model, dir string) (in map[string]*tensor.Tensor, out map[string][]int, err error) {
	in, out = map[string]*tensor.Tensor{}, map[string][]int{}
	set := filepath.Join(dir, "test_data_set_0")
	k := 0
	for _, vi := range m.Graph.Inputs {
		if m.Graph.Initializer(vi.Name) != nil {
			continue
		}
		p := filepath.Join(set, fmt.Sprintf("input_%d.pb", k))
		k++
		tt, err := onnxio.ReadTensorFile(p)
		if err != nil {
			return nil, nil, err
		}
		in[vi.Name] = tt
	}
	for i, vi := range m.Graph.Outputs {
		p := filepath.Join(set, fmt.Sprintf("output_%d.pb", i))
		tt, err := onnxio.ReadTensorFile(p)
		if err != nil {
			return nil, nil, err
		}
		out[vi.Name] = tt.Shape
	}
	return in, out, nil
}

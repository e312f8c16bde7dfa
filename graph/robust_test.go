package graph_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
)

// TestNoPanicOnAbsurdAttributes mutates every integer attribute and every
// integer initializer of the backend node tests to absurd values (negative,
// zero, huge) and runs InferShapes and the passes: they must return errors
// or results, never panic (a panic fails the test by itself).
func TestNoPanicOnAbsurdAttributes(t *testing.T) {
	root := testenv.SharedDir(t, "onnx-conformance")
	var dirs []string
	for _, suite := range []string{"node", "node-v1.12.0", "pytorch-operator"} {
		d, err := filepath.Glob(filepath.Join(root, suite, "*"))
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d...)
	}
	absurd := []int64{-1, 0, 1 << 40, -(1 << 62), 1<<63 - 1}
	runs := 0
	for _, dir := range dirs {
		path := filepath.Join(dir, "model.onnx")
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		fresh := func() *graph.Model {
			m, err := onnxio.Decode(bytesReader(data))
			if err != nil {
				return nil
			}
			return m
		}
		m := fresh()
		if m == nil {
			continue
		}
		// Targets: (node, attribute) pairs and integer initializers.
		type target struct{ node, attr, init int }
		var targets []target
		for i, n := range m.Graph.Nodes {
			for j, a := range n.Attrs {
				if a.Type == graph.AttrInt || a.Type == graph.AttrInts {
					targets = append(targets, target{i, j, -1})
				}
			}
		}
		for k, in := range m.Graph.Initializers {
			if in.Value != nil && in.Value.DType.IsInteger() && len(in.Value.I64) > 0 {
				targets = append(targets, target{-1, -1, k})
			}
		}
		for _, tg := range targets {
			for _, v := range absurd {
				mm := fresh()
				if tg.init >= 0 {
					in := mm.Graph.Initializers[tg.init].Value
					in.I64[len(in.I64)-1] = v
				} else {
					a := mm.Graph.Nodes[tg.node].Attrs[tg.attr]
					a.I = v
					for k := range a.Ints {
						a.Ints[k] = v
					}
				}
				shapes := map[string][]int{}
				for _, vi := range mm.Graph.Inputs {
					var s []int
					if vi.Type != nil {
						for _, d := range vi.Type.Shape {
							s = append(s, int(max(d.Value, 1)))
						}
					}
					shapes[vi.Name] = s
				}
				_, _ = graph.InferShapes(mm, shapes)
				_, _ = graph.FoldConstantsCount(mm)
				_, _ = graph.RemoveIdentity(mm)
				_, _ = graph.FoldBatchNorm(mm)
				_, _ = graph.UnfoldBatchNorm(mm)
				runs++
			}
		}
	}
	t.Logf("%d mutated models survived InferShapes and the passes", runs)
	if runs < 500 {
		t.Errorf("only %d mutations ran, want at least 500", runs)
	}
}

func bytesReader(b []byte) *bytesR { return &bytesR{b: b} }

// bytesR is a minimal io.Reader over a byte slice.
type bytesR struct{ b []byte }

func (r *bytesR) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// TestClone: a clone encodes to the same bytes as the original, and
// rewriting the clone leaves the original's encoding unchanged.
func TestClone(t *testing.T) {
	dirs := fixtureDirs(t)
	dirs = append(dirs, filepath.Join(testenv.SharedDir(t, "onnx-conformance", "light-models"), "light_squeezenet"))
	for _, dir := range dirs {
		m, err := onnxio.ReadFile(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		orig, err := onnxio.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		c := m.Clone()
		cb, err := onnxio.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(cb) != string(orig) {
			t.Errorf("%s: clone encodes differently from the original", dir)
		}
		canonicalize(t, c)
		if _, err := graph.UnfoldBatchNorm(c); err != nil {
			t.Fatal(err)
		}
		for _, in := range c.Graph.Initializers {
			for i := range in.Value.F32 {
				in.Value.F32[i] = 42
			}
		}
		after, err := onnxio.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(after) != string(orig) {
			t.Errorf("%s: rewriting the clone changed the original", dir)
		}
	}
}

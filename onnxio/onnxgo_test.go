package onnxio

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	onnxgo "github.com/owulveryck/onnx-go"
	gonumgraph "gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	gtensor "gorgonia.org/tensor"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// ogBackend is a minimal onnx-go backend: a gonum directed graph whose
// nodes carry tensors (so onnx-go decodes every initializer) and which
// records each operation onnx-go applies.
type ogBackend struct {
	*simple.WeightedDirectedGraph
	ops []string
}

type ogNode struct {
	id int64
	t  gtensor.Tensor
}

func (n *ogNode) ID() int64                        { return n.id }
func (n *ogNode) SetTensor(t gtensor.Tensor) error { n.t = t; return nil }
func (n *ogNode) GetTensor() gtensor.Tensor        { return n.t }
func (b *ogBackend) NewNode() gonumgraph.Node {
	return &ogNode{id: b.WeightedDirectedGraph.NewNode().ID()}
}
func (b *ogBackend) ApplyOperation(op onnxgo.Operation, _ ...gonumgraph.Node) error {
	b.ops = append(b.ops, op.Name)
	return nil
}

// onnxGoOps decodes model bytes with onnx-go and returns the op types of
// the operations it built, sorted.
func onnxGoOps(b []byte) (ops []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("onnx-go panicked: %v", r)
		}
	}()
	be := &ogBackend{WeightedDirectedGraph: simple.NewWeightedDirectedGraph(0, -1)}
	if err := onnxgo.NewModel(be).UnmarshalBinary(b); err != nil {
		return nil, err
	}
	slices.Sort(be.ops)
	return be.ops, nil
}

func irOps(m *graph.Model) []string {
	var ops []string
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.OpType)
	}
	slices.Sort(ops)
	return ops
}

// typedBools returns a copy of m's graph-level encoding choice with bool
// tensors (initializers and Constant values) stored in int32_data rather
// than raw_data: onnx-go v0.5.0 reads a raw bool as 8 bytes, so it cannot
// decode the raw 1-byte bools PyTorch writes (in the _train fixtures'
// Dropout training_mode constant), while it reads int32_data correctly.
func typedBools(m *graph.Model) {
	fix := func(in *graph.Initializer) {
		if in != nil && in.Value != nil && in.Value.DType == tensor.Bool {
			in.Encoding.RawData = false
		}
	}
	for _, in := range m.Graph.Initializers {
		fix(in)
	}
	for _, n := range m.Graph.Nodes {
		for _, a := range n.Attrs {
			fix(a.T)
		}
	}
}

// TestSecondReaderOnnxGo writes models with onnxio and decodes the bytes
// with onnx-go v0.5.0, which must see the same operation nodes as the IR.
//
// onnx-go refuses some models for reasons of its own, on the original
// file exactly as on the written one: it cannot decode a value of
// undefined type (sequence and optional inputs), panics on an empty
// tensor or an omitted ("") optional input in some graphs, and misreads
// raw bool tensors. Such a refusal is accepted only when onnx-go refuses
// the original bytes the same way; the fixtures must decode, where
// needed with bool tensors written as int32_data (typedBools).
func TestSecondReaderOnnxGo(t *testing.T) {
	fixtures, _ := filepath.Glob(filepath.Join(testenv.SharedDir(t, "fixtures", "torch-1.13"), "*", "model.onnx"))
	if len(fixtures) == 0 {
		t.Fatal("no fixtures found")
	}
	paths := sharedModels(t) // conformance and fixtures
	var checked, refused, viaTypedBools int
	for _, path := range paths {
		m, err := ReadFileWith(path, &ReadOptions{AnyVersion: true})
		if err != nil {
			t.Fatalf("ReadFile: %v", err)
		}
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%s): %v", path, err)
		}
		want := irOps(m)
		got, err := onnxGoOps(b)
		if err != nil {
			orig, _ := os.ReadFile(path)
			_, origErr := onnxGoOps(orig)
			if origErr == nil || origErr.Error() != err.Error() {
				t.Errorf("onnx-go refuses the written %s (%v) but reads the original (%v)", path, err, origErr)
				continue
			}
			if strings.Contains(path, "fixtures") {
				typedBools(m)
				b2, err2 := Marshal(m)
				if err2 == nil {
					got, err2 = onnxGoOps(b2)
				}
				if err2 != nil {
					t.Errorf("onnx-go refuses the written fixture %s: %v (with typed bools: %v)", path, err, err2)
					continue
				}
				viaTypedBools++
			} else {
				refused++
				t.Logf("onnx-go refuses %s, the original too: %v", path, err)
				continue
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: onnx-go sees ops %v, the IR has %v", path, got, want)
			continue
		}
		checked++
	}
	summary := fmt.Sprintf("onnx-go decodes %d of %d written models to the IR's op nodes (all %d fixtures, %d of them with bools written as int32_data); it refuses %d others exactly as it refuses their original files", checked, len(paths), len(fixtures), viaTypedBools, refused)
	t.Log(summary)
	if !testing.Verbose() {
		fmt.Println("onnxio second reader:", summary)
	}
}

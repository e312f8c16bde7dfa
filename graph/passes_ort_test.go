package graph_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// The tolerance for fixture outputs: 1e-5 absolute plus 1e-4
// relative, what onnxruntime itself meets against PyTorch's outputs on the
// backend tests (conformance README); folding BatchNormalization changes
// the rounding of every conv output, so bit equality is not expected.
const (
	tolAbs = 1e-5
	tolRel = 1e-4
)

// fixtureDirs lists the PyTorch fixtures (all but *_train, whose outputs
// are random) and this package's own dynamic-reshape fixture.
func fixtureDirs(t *testing.T) []string {
	t.Helper()
	root := testenv.SharedDir(t, "fixtures", "torch-1.13")
	all, err := filepath.Glob(filepath.Join(root, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, d := range all {
		if strings.HasSuffix(d, "_train") {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "model.onnx")); err == nil {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) < 10 {
		t.Fatalf("found %d fixtures under %s, want 10", len(dirs), root)
	}
	return append(dirs, filepath.Join("testdata", "dynreshape_op14"))
}

func initORT(t *testing.T) {
	t.Helper()
	lib := testenv.ORTLibrary(t)
	if err := runtime.Init(lib); err != nil {
		t.Fatalf("runtime.Init(%s): %v", lib, err)
	}
}

// runORT encodes m and runs it in onnxruntime on one input.
func runORT(t *testing.T, m *graph.Model, in *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	b, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatalf("onnxio.Marshal: %v", err)
	}
	s, err := runtime.OpenBytes(b, &runtime.SessionOptions{IntraOpThreads: 1, DisableSpinning: true})
	if err != nil {
		t.Fatalf("runtime.OpenBytes: %v", err)
	}
	defer s.Close()
	outs, err := s.Run([]*tensor.Tensor{in})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return outs[0]
}

// maxExcess compares got with want under |g−w| ≤ abs + rel·|w| and
// returns the largest absolute difference and the index of the first
// element outside the tolerance (-1 if none).
func maxExcess(got, want *tensor.Tensor, abs, rel float64) (worst float64, bad int) {
	bad = -1
	if !slices.Equal(got.Shape, want.Shape) || len(got.F32) != len(want.F32) {
		return math.Inf(1), 0
	}
	for i, w := range want.F32 {
		d := math.Abs(float64(got.F32[i]) - float64(w))
		worst = max(worst, d)
		if bad < 0 && !(d <= abs+rel*math.Abs(float64(w))) {
			bad = i
		}
	}
	return worst, bad
}

func readFixture(t *testing.T, dir string) (m *graph.Model, in, want *tensor.Tensor) {
	t.Helper()
	m, err := onnxio.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if in, err = onnxio.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb")); err != nil {
		t.Fatal(err)
	}
	if want, err = onnxio.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "output_0.pb")); err != nil {
		t.Fatal(err)
	}
	return m, in, want
}

func countOps(m *graph.Model) map[string]int {
	c := map[string]int{}
	for _, n := range m.Graph.Nodes {
		c[n.OpType]++
	}
	return c
}

// canonicalize applies the passes in the order the importer does.
func canonicalize(t *testing.T, m *graph.Model) (folded, removed, bns int) {
	t.Helper()
	io := func() []string {
		var names []string
		for _, vi := range m.Graph.Inputs {
			names = append(names, "in:"+vi.Name)
		}
		for _, vi := range m.Graph.Outputs {
			names = append(names, "out:"+vi.Name)
		}
		return names
	}
	ioBefore := io()
	defer func() {
		if ioAfter := io(); !slices.Equal(ioBefore, ioAfter) && m.IRVersion >= 4 {
			t.Errorf("graph inputs/outputs changed: %v → %v", ioBefore, ioAfter)
		}
	}()
	var err error
	if folded, err = graph.FoldConstantsCount(m); err != nil {
		t.Fatalf("FoldConstants: %v", err)
	}
	if removed, err = graph.RemoveIdentity(m); err != nil {
		t.Fatalf("RemoveIdentity: %v", err)
	}
	if bns, err = graph.FoldBatchNorm(m); err != nil {
		t.Fatalf("FoldBatchNorm: %v", err)
	}
	if err := graph.Validate(m); err != nil {
		t.Fatalf("Validate after the passes: %v", err)
	}
	// The passes reach a fixed point: running them again changes nothing.
	f2, err1 := graph.FoldConstantsCount(m)
	r2, err2 := graph.RemoveIdentity(m)
	b2, err3 := graph.FoldBatchNorm(m)
	if f2+r2+b2 != 0 || err1 != nil || err2 != nil || err3 != nil {
		t.Errorf("second run of the passes: %d, %d, %d rewrites (%v, %v, %v); want none", f2, r2, b2, err1, err2, err3)
	}
	return
}

// TestPassesFixturesORT is must-show 3: after constant folding, Identity
// removal and BatchNormalization folding, every fixture still matches its
// stored output in onnxruntime.
func TestPassesFixturesORT(t *testing.T) {
	initORT(t)
	for _, dir := range fixtureDirs(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			m, in, want := readFixture(t, dir)
			before := countOps(m)
			folded, removed, bns := canonicalize(t, m)
			after := countOps(m)
			if after["BatchNormalization"] != 0 {
				t.Errorf("%d BatchNormalization nodes left after FoldBatchNorm", after["BatchNormalization"])
			}
			if bns != before["BatchNormalization"] {
				t.Errorf("FoldBatchNorm = %d, want %d (one per BatchNormalization)", bns, before["BatchNormalization"])
			}
			for _, op := range []string{"Constant", "Shape", "Gather", "Unsqueeze", "Identity", "Dropout"} {
				if after[op] != 0 {
					t.Errorf("%d %s nodes left after the passes", after[op], op)
				}
			}
			got := runORT(t, m, in)
			worst, bad := maxExcess(got, want, tolAbs, tolRel)
			if bad >= 0 {
				t.Errorf("output[%d] = %v, want %v (worst |diff| %.3g)", bad, got.F32[bad], want.F32[bad], worst)
			}
			t.Logf("folded %d nodes, removed %d identities, folded %d BN; nodes %d → %d; max |diff| vs stored output %.3g",
				folded, removed, bns, sum(before), sum(after), worst)
		})
	}
}

func sum(c map[string]int) int {
	s := 0
	for _, v := range c {
		s += v
	}
	return s
}

// TestFoldedDynamicBatchORT: the dynamic-batch models, once folded, have
// no Shape/Gather chain left and still accept any batch size: at batch 1,
// 3 and 8 they agree with the unfolded model, and each row of a batch of 3
// agrees with that row run alone.
func TestFoldedDynamicBatchORT(t *testing.T) {
	initORT(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dir := range fixtureDirs(t) {
		name := filepath.Base(dir)
		if !strings.Contains(name, "dyn") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			orig, in, _ := readFixture(t, dir)
			m, _, _ := readFixture(t, dir)
			canonicalize(t, m)
			ops := countOps(m)
			if ops["Shape"]+ops["Gather"]+ops["Concat"]*boolInt(name == "dynreshape_op14") != 0 {
				t.Errorf("ops after folding: %v, want no Shape, Gather (or, for %s, Concat)", ops, name)
			}
			if name == "dynreshape_op14" {
				// view(size(0), size(1), 8, 8) and reshape(size(0), -1): the
				// batch entry becomes 0 (copy), the static size(1) a constant.
				var got [][]int64
				for _, n := range m.Graph.Nodes {
					if n.OpType == "Reshape" {
						got = append(got, m.Graph.Initializer(n.Inputs[1]).Value.I64)
					}
				}
				want := [][]int64{{0, 4, 8, 8}, {0, -1}}
				if !slices.EqualFunc(got, want, slices.Equal) {
					t.Errorf("Reshape shapes after folding = %v, want %v", got, want)
				}
			}
			if d := m.Graph.Inputs[0].Type.Shape[0]; !d.HasParam {
				t.Errorf("input's batch dimension = %v, want it to stay symbolic", d)
			}
			per := tensor.Numel(in.Shape[1:])
			batch := func(n int) *tensor.Tensor {
				x := tensor.New(append([]int{n}, in.Shape[1:]...)...)
				for i := range x.F32 {
					x.F32[i] = rng.Float32()
				}
				return x
			}
			for _, n := range []int{1, 3, 8} {
				x := batch(n)
				got, want := runORT(t, m, x), runORT(t, orig, x)
				if worst, bad := maxExcess(got, want, tolAbs, tolRel); bad >= 0 {
					t.Errorf("batch %d: folded output[%d] = %v, unfolded %v (worst %.3g)", n, bad, got.F32[bad], want.F32[bad], worst)
				}
				if n != 3 {
					continue
				}
				rowLen := got.Len() / n
				for r := range n {
					row := tensor.FromFloat32(slices.Clone(x.F32[r*per:(r+1)*per]), append([]int{1}, in.Shape[1:]...)...)
					alone := runORT(t, m, row)
					rowOut := tensor.FromFloat32(got.F32[r*rowLen:(r+1)*rowLen], alone.Shape...)
					// Same model, same row: only the batching differs, which may
					// change the order of float32 sums in onnxruntime's kernels.
					if worst, bad := maxExcess(rowOut, alone, 1e-6, 1e-5); bad >= 0 {
						t.Errorf("batch 3 row %d: output[%d] = %v, alone %v (worst %.3g)", r, bad, rowOut.F32[bad], alone.F32[bad], worst)
					}
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestUnfoldFoldRoundTripORT: UnfoldBatchNorm gives every Conv an identity
// BatchNormalization (outputs bit-identical in onnxruntime), and
// FoldBatchNorm folds them back into the same weights.
func TestUnfoldFoldRoundTripORT(t *testing.T) {
	initORT(t)
	for _, dir := range fixtureDirs(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			m, in, _ := readFixture(t, dir)
			canonicalize(t, m)
			ref := runORT(t, m, in)
			weights := map[string][]float32{}
			inits := len(m.Graph.Initializers)
			noBias := 0
			for _, n := range m.Graph.Nodes {
				if n.OpType == "Conv" && (len(n.Inputs) < 3 || n.Inputs[2] == "") {
					noBias++ // folding gives these a bias (of zeros)
				}
			}
			for _, init := range m.Graph.Initializers {
				if init.Value.DType == tensor.Float32 {
					weights[init.Name] = slices.Clone(init.Value.F32)
				}
			}
			convs := countOps(m)["Conv"]
			n, err := graph.UnfoldBatchNorm(m)
			if err != nil {
				t.Fatalf("UnfoldBatchNorm: %v", err)
			}
			if n != convs || countOps(m)["BatchNormalization"] != convs {
				t.Errorf("UnfoldBatchNorm = %d, BatchNormalization nodes %d; want %d (one per Conv)", n, countOps(m)["BatchNormalization"], convs)
			}
			if err := graph.Validate(m); err != nil {
				t.Fatalf("Validate after UnfoldBatchNorm: %v", err)
			}
			unfolded := runORT(t, m, in)
			if worst, _ := maxExcess(unfolded, ref, 0, 0); worst != 0 {
				t.Errorf("unfolded model differs from the folded one by up to %.3g, want bit-identical", worst)
			}
			if again, err := graph.UnfoldBatchNorm(m); err != nil || again != 0 {
				t.Errorf("second UnfoldBatchNorm = %d, %v; want 0, nil", again, err)
			}
			n2, err := graph.FoldBatchNorm(m)
			if err != nil || n2 != convs {
				t.Fatalf("FoldBatchNorm after unfolding = %d, %v; want %d, nil", n2, err, convs)
			}
			for _, init := range m.Graph.Initializers {
				if w, ok := weights[init.Name]; ok && !slices.Equal(w, init.Value.F32) {
					t.Errorf("initializer %q changed by the unfold/fold round trip", init.Name)
				}
			}
			if len(m.Graph.Initializers) != inits+noBias {
				t.Errorf("%d initializers after the round trip, want %d (%d before, %d new biases)", len(m.Graph.Initializers), inits+noBias, inits, noBias)
			}
			back := runORT(t, m, in)
			if worst, _ := maxExcess(back, ref, 0, 0); worst != 0 {
				t.Errorf("round-tripped model differs by up to %.3g, want bit-identical", worst)
			}
		})
	}
}

// TestPassesLightModelsORT folds the model-zoo light models, whose weights
// are computed by ConstantOfShape, into initializers and checks the result
// against the stored outputs in onnxruntime.
func TestPassesLightModelsORT(t *testing.T) {
	initORT(t)
	root := testenv.SharedDir(t, "onnx-conformance", "light-models")
	for _, name := range []string{"light_squeezenet", "light_shufflenet", "light_inception_v1", "light_densenet121"} {
		t.Run(name, func(t *testing.T) {
			m, in, want := readFixture(t, filepath.Join(root, name))
			before := countOps(m)
			folded, removed, bns := canonicalize(t, m)
			after := countOps(m)
			if after["ConstantOfShape"] != 0 || after["Dropout"] != 0 {
				t.Errorf("ops after the passes: %v, want no ConstantOfShape or Dropout", after)
			}
			got := runORT(t, m, in)
			worst, bad := maxExcess(got, want, tolAbs, tolRel)
			if bad >= 0 {
				t.Errorf("output[%d] = %v, want %v (worst |diff| %.3g)", bad, got.F32[bad], want.F32[bad], worst)
			}
			t.Logf("folded %d nodes, removed %d identities, folded %d BN; nodes %d → %d; max |diff| %.3g",
				folded, removed, bns, sum(before), sum(after), worst)
		})
	}
}

// TestPassesKeepTrainingNodes: on the training-mode exports the passes
// must keep BatchNormalization (training_mode=1) and Dropout (training_mode
// true), and still leave a valid graph.
func TestPassesKeepTrainingNodes(t *testing.T) {
	root := testenv.SharedDir(t, "fixtures", "torch-1.13")
	for _, name := range []string{"small_cnn_32_op14_train", "tiny_opmix_32_op14_train"} {
		m, err := onnxio.ReadFile(filepath.Join(root, name, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		before := countOps(m)
		_, removed, bns := canonicalize(t, m)
		after := countOps(m)
		if removed != 0 || bns != 0 || after["BatchNormalization"] != before["BatchNormalization"] || after["Dropout"] != before["Dropout"] {
			t.Errorf("%s: removed %d, folded %d; ops %v → %v; want training nodes kept", name, removed, bns, before, after)
		}
	}
}

// TestRemoveIdentityORT: a hand-made graph with Identity and inference
// Dropout nodes, one of them producing the graph output, gives
// bit-identical outputs in onnxruntime once they are removed.
func TestRemoveIdentityORT(t *testing.T) {
	initORT(t)
	ratio := &graph.Initializer{Name: "ratio", Value: &tensor.Tensor{DType: tensor.Float32, Shape: []int{}, F32: []float32{0.3}}}
	nodes := []*graph.Node{
		{Name: "r", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"r"}},
		{Name: "i1", OpType: "Identity", Inputs: []string{"r"}, Outputs: []string{"i1"}},
		{Name: "d", OpType: "Dropout", Inputs: []string{"i1", "ratio"}, Outputs: []string{"d", "mask"}},
		{Name: "s", OpType: "Sigmoid", Inputs: []string{"d"}, Outputs: []string{"s"}},
		{Name: "a", OpType: "Add", Inputs: []string{"s", "i1"}, Outputs: []string{"a"}},
		{Name: "i2", OpType: "Identity", Inputs: []string{"a"}, Outputs: []string{"y"}},
	}
	m := &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Version: 17}}, Graph: &graph.Graph{
		Name: "g", Nodes: nodes, Initializers: []*graph.Initializer{ratio},
		Inputs: []*graph.ValueInfo{floatVI("x", []int{2, 5})}, Outputs: []*graph.ValueInfo{floatVI("y", nil)},
	}}
	x := tensor.FromFloat32([]float32{-2, -1, 0, 1, 2, 3, -0.5, 0.5, 7, -7}, 2, 5)
	want := runORT(t, m, x)
	n, err := graph.RemoveIdentity(m)
	if err != nil || n != 3 {
		t.Fatalf("RemoveIdentity = %d, %v; want 3, nil", n, err)
	}
	if ops := countOps(m); ops["Identity"]+ops["Dropout"] != 0 || m.Graph.Outputs[0].Name != "y" {
		t.Fatalf("after RemoveIdentity: ops %v, output %q", ops, m.Graph.Outputs[0].Name)
	}
	got := runORT(t, m, x)
	if worst, _ := maxExcess(got, want, 0, 0); worst != 0 {
		t.Errorf("outputs differ by %.3g after RemoveIdentity, want bit-identical", worst)
	}
}

// TestSetEvalModeORT: the training-mode exports (BatchNormalization with
// training_mode = 1, Dropout with a true training_mode input) list every
// such node; SetEvalMode turns them all into their eval forms, drops the
// statistics outputs and the Constant feeding Dropout, and the result
// computes in onnxruntime what the eval-mode export of the same module
// (its BatchNormalization kept) computes with the training export's
// running statistics (the export's traced forward pass moved them, so
// they differ from the eval export's).
func TestSetEvalModeORT(t *testing.T) {
	initORT(t)
	root := testenv.SharedDir(t, "fixtures", "torch-1.13")
	for _, name := range []string{"small_cnn_32", "tiny_opmix_32"} {
		t.Run(name, func(t *testing.T) {
			m, err := onnxio.ReadFile(filepath.Join(root, name+"_op14_train", "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			ops := countOps(m)
			nodes := graph.TrainingModeNodes(m)
			if len(nodes) != ops["BatchNormalization"]+ops["Dropout"] || len(nodes) == 0 {
				t.Fatalf("TrainingModeNodes lists %d nodes, the export has %d BatchNormalization and %d Dropout", len(nodes), ops["BatchNormalization"], ops["Dropout"])
			}
			// Declared types of the statistics outputs that go (exporters
			// write value_info for intermediate values).
			for _, n := range nodes {
				if n.OpType == "BatchNormalization" {
					for _, o := range n.Outputs[1:] {
						if o != "" {
							m.Graph.ValueInfo = append(m.Graph.ValueInfo, &graph.ValueInfo{Name: o})
						}
					}
				}
			}
			n, err := graph.SetEvalMode(m)
			if err != nil || n != len(nodes) {
				t.Fatalf("SetEvalMode = %d, %v; want %d", n, err, len(nodes))
			}
			produced := map[string]bool{}
			for _, n := range m.Graph.Nodes {
				for _, o := range n.Outputs {
					produced[o] = true
				}
			}
			for _, vi := range m.Graph.ValueInfo {
				if !produced[vi.Name] {
					t.Errorf("value_info %q is left for a value SetEvalMode removed", vi.Name)
				}
			}
			if left := graph.TrainingModeNodes(m); len(left) != 0 {
				t.Errorf("after SetEvalMode, %d training-mode nodes left", len(left))
			}
			if after := countOps(m); after["Constant"] != ops["Constant"]-ops["Dropout"] {
				t.Errorf("Constant nodes %d → %d, want the %d feeding Dropout gone", ops["Constant"], after["Constant"], ops["Dropout"])
			}
			if err := graph.Validate(m); err != nil {
				t.Fatal(err)
			}
			eval, err := onnxio.ReadFile(filepath.Join(root, name+"_op14_evalbn", "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			for i, in := range eval.Graph.Initializers {
				if tr := m.Graph.Initializer(in.Name); tr != nil {
					eval.Graph.Initializers[i] = tr
				}
			}
			x, err := onnxio.ReadTensorFile(filepath.Join(root, name+"_op14_evalbn", "test_data_set_0", "input_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			want := runORT(t, eval, x)
			got := runORT(t, m, x)
			if worst, bad := maxExcess(got, want, 1e-5, 1e-4); bad >= 0 {
				t.Errorf("output[%d] = %v, the eval-mode export's %v (worst excess %.3g)", bad, got.F32[bad], want.F32[bad], worst)
			}
		})
	}
}

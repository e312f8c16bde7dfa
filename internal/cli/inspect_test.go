package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
)

// modelsDir holds the fixtures committed with the project (copies of the
// PyTorch 1.13 exports in ../shared/fixtures/torch-1.13, random weights).
func modelsDir() string { return filepath.Join(testenv.RepoRoot(), "testdata", "models") }

// conv is one convolution as the test derives it by hand: the output size
// follows from the input size, stride, padding and dilation of the layer
// as PyTorch defined it.
type conv struct {
	weight     string // initializer; its shape gives C_out, C_in/group, kh, kw
	outH, outW int
}

// macsByFormula is Σ C_out·H_out·W_out·(C_in/group)·kh·kw over the convs
// plus Σ out·in over the fully connected layers, the weight shapes read
// from the model.
func macsByFormula(t *testing.T, path string, convs []conv, fcs []string) int64 {
	t.Helper()
	m, err := onnxio.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range convs {
		w := m.Graph.Initializer(c.weight)
		if w == nil || len(w.Value.Shape) != 4 {
			t.Fatalf("%s: no 4-D initializer %q", path, c.weight)
		}
		s := w.Value.Shape
		total += int64(s[0] * c.outH * c.outW * s[1] * s[2] * s[3])
	}
	for _, fc := range fcs {
		w := m.Graph.Initializer(fc)
		if w == nil || len(w.Value.Shape) != 2 {
			t.Fatalf("%s: no 2-D initializer %q", path, fc)
		}
		total += int64(w.Value.Shape[0] * w.Value.Shape[1])
	}
	return total
}

func TestInspectCounts(t *testing.T) {
	tests := []struct {
		file string
		// params: Σ of initializer element counts, added up by hand from
		// the layer shapes (see the comments).
		params int64
		// macs: the same figure the formula gives, written out so that a
		// wrong formula in the test cannot agree with a wrong inspect.
		macs   int64
		convs  []conv
		fcs    []string
		layers int
	}{
		{
			// small_cnn, 32×32 input: 3 × (conv3×3 pad 1 → BN → ReLU)
			// with 2×2 max-pools after the first two, GAP, Linear(64, 10).
			// Conv 16·3·9=432, BN 4·16; conv 32·16·9=4608, BN 4·32;
			// conv 64·32·9=18432, BN 4·64; fc 640+10:
			// 432+64+4608+128+18432+256+650 = 24570.
			// MACs: 16·32·32·27 + 32·16·16·144 + 64·8·8·288 + 640
			//     = 442368 + 1179648 + 1179648 + 640 = 2802304.
			file:   "small_cnn_32_op14_evalbn.onnx",
			params: 24570,
			macs:   2802304,
			convs: []conv{
				{weight: "features.0.weight", outH: 32, outW: 32},
				{weight: "features.4.weight", outH: 16, outW: 16},
				{weight: "features.8.weight", outH: 8, outW: 8},
			},
			fcs:    []string{"fc.weight"},
			layers: 4,
		},
		{
			// tiny_opmix, 32×32 input: stem conv stride 2 → 16×16; depthwise,
			// pointwise, grouped+dilated (pad 2, dilation 2) convs keep
			// 16×16; squeeze-excite 1×1 convs on 1×1; two 1×1 branch convs
			// at 16×16; MaxPool(3, 2, ceil) → ceil((16-3)/2)+1 = 8; head
			// conv at 8×8; fc 64→10.
			// Params: 432+64 + 144+64 + 384+96 + 1296+96 + 200 + 216 +
			// 400 + 400 + 18496+256 + 650 = 23194.
			// MACs: 110592 + 36864 + 98304 + 331776 + 192 + 192 + 98304 +
			// 98304 + 1179648 + 640 = 1954816.
			file:   "tiny_opmix_32_op14_evalbn.onnx",
			params: 23194,
			macs:   1954816,
			convs: []conv{
				{weight: "stem.0.weight", outH: 16, outW: 16},
				{weight: "dw.0.weight", outH: 16, outW: 16},
				{weight: "pw.0.weight", outH: 16, outW: 16},
				{weight: "grp.0.weight", outH: 16, outW: 16},
				{weight: "se_fc1.weight", outH: 1, outW: 1},
				{weight: "se_fc2.weight", outH: 1, outW: 1},
				{weight: "b1.weight", outH: 16, outW: 16},
				{weight: "b2.1.weight", outH: 16, outW: 16},
				{weight: "head.0.weight", outH: 8, outW: 8},
			},
			fcs:    []string{"fc.weight"},
			layers: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(modelsDir(), tt.file)
			if f := macsByFormula(t, path, tt.convs, tt.fcs); f != tt.macs {
				t.Fatalf("the test's own formula gives %d MACs, its written-out sum %d: fix the test", f, tt.macs)
			}
			m, err := loadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Inspect(m, 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.Parameters != tt.params {
				t.Errorf("Inspect(%s).Parameters = %d, want %d", tt.file, r.Parameters, tt.params)
			}
			if r.MACs != tt.macs {
				t.Errorf("Inspect(%s).MACs = %d, want %d", tt.file, r.MACs, tt.macs)
			}
			if len(r.Layers) != tt.layers {
				t.Errorf("Inspect(%s) has %d layers, want %d", tt.file, len(r.Layers), tt.layers)
			}
			var sum int64
			for _, l := range r.Layers {
				sum += l.MACs
				if l.Sparsity != 0 {
					// Random weights: an exact zero is (almost) impossible.
					t.Errorf("layer %s: sparsity %g, want 0 for random weights", l.Name, l.Sparsity)
				}
			}
			if sum != r.MACs {
				t.Errorf("layer MACs add up to %d, total says %d", sum, r.MACs)
			}
			if r.Producer != "pytorch" || r.IRVersion != 7 || len(r.Opsets) != 1 || r.Opsets[0].Version != 14 {
				t.Errorf("producer %q, IR %d, opsets %v; want pytorch, 7, [ai.onnx 14]", r.Producer, r.IRVersion, r.Opsets)
			}
		})
	}
}

// TestInspectSparsity zeroes part of a weight and checks the layer's
// sparsity and the parameter count (zeros are still parameters).
func TestInspectSparsity(t *testing.T) {
	m, err := loadModel(filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	w := m.Graph.Initializer("fc.weight").Value
	for i := 0; i < 160; i++ { // 160 of 640 = 25%
		w.F32[i] = 0
	}
	r, err := Inspect(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	last := r.Layers[len(r.Layers)-1]
	if last.Weight != "fc.weight" || last.Zeros != 160 || last.Sparsity != 0.25 {
		t.Errorf("fc layer = %+v, want weight fc.weight with 160 zeros, sparsity 0.25", last)
	}
	if want := 160.0 / (432 + 4608 + 18432 + 640); r.WeightSparsity != want {
		t.Errorf("WeightSparsity = %g, want %g", r.WeightSparsity, want)
	}
	if r.Parameters != 24570 {
		t.Errorf("Parameters = %d, want 24570", r.Parameters)
	}
}

func TestInspectJSONStable(t *testing.T) {
	for _, file := range []string{"small_cnn_32_op14_evalbn.onnx", "tiny_opmix_32_op14_evalbn.onnx"} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join(modelsDir(), file)
			run := func() []byte {
				ios, out, _ := testIO()
				if err := inspectRun(context.Background(), &InspectOptions{IO: ios, Global: &GlobalOptions{}, Model: path, JSON: true}); err != nil {
					t.Fatal(err)
				}
				return out.Bytes()
			}
			a, b := run(), run()
			if !bytes.Equal(a, b) {
				t.Fatalf("inspect --json differs between two runs:\n%s\n---\n%s", a, b)
			}
			var r InspectReport
			if err := json.Unmarshal(a, &r); err != nil {
				t.Fatalf("inspect --json is not JSON: %v", err)
			}
			// Re-encoding the decoded report gives the same bytes: the
			// field order is the struct's, maps are sorted.
			var again bytes.Buffer
			enc := json.NewEncoder(&again)
			enc.SetIndent("", "  ")
			if err := enc.Encode(&r); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, again.Bytes()) {
				t.Errorf("inspect --json is not in canonical form:\n%s\n---\n%s", a, again.Bytes())
			}
			if r.File != path || r.FileSize <= 0 || r.MACs <= 0 || len(r.Inputs) != 1 || r.Inputs[0].Name != "input" {
				t.Errorf("report = file %q size %d MACs %d inputs %v", r.File, r.FileSize, r.MACs, r.Inputs)
			}
		})
	}
}

func TestInspectText(t *testing.T) {
	path := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	out, _, err, code := execute(t, "inspect", path)
	if err != nil || code != 0 {
		t.Fatalf("inspect: %v (exit %d)", err, code)
	}
	for _, want := range []string{
		"producer", "pytorch 1.13.0", "IR version", "ai.onnx 14",
		"input", "float32", "[2 3 32 32]", "logits", "(batch 1)",
		"24,570", "2,802,304", "BatchNormalization", "/features/features.0/Conv", "442,368",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}

// TestInspectSymbolicDims checks that a dynamic batch is shown by name and
// MACs are still counted at batch 1.
func TestInspectSymbolicDims(t *testing.T) {
	dir := testenv.SharedDir(t, "fixtures", "torch-1.13", "small_cnn_32_op14_dynbatch")
	m, err := loadModel(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Inspect(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Inputs[0].Shape; len(s) != 4 || s[0] == "1" || s[0] == "?" || s[1] != "3" {
		t.Errorf("dynamic-batch input shape = %v, want a named first dimension then 3 32 32", s)
	}
	if r.MACs != 2802304 {
		// The dynbatch export folds BN into the convs: same MACs.
		t.Errorf("MACs = %d, want 2802304", r.MACs)
	}
}

// TestInspectMetadataAndFunctions: inspect shows what made a model (its
// metadata_props, in file order) and says when local functions were
// inlined, in text and JSON.
func TestInspectMetadataAndFunctions(t *testing.T) {
	shipped := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	out, _, err, _ := execute(t, "inspect", shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"metadata         csam.arch = resnet8", "csam.data = fashion-mnist", "csam.seed = 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect %s lacks %q:\n%s", shipped, want, out)
		}
	}
	if strings.Contains(out, "local functions") {
		t.Errorf("a model without functions reports inlined calls:\n%s", out)
	}
	fn := filepath.Join(testenv.RepoRoot(), "graph", "testdata", "functions_convbn_op15", "model.onnx")
	js, _, err, _ := execute(t, "inspect", "--json", fn)
	if err != nil {
		t.Fatal(err)
	}
	var r InspectReport
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	if r.InlinedCalls != 2 || r.Ops["Conv"] != 2 {
		t.Errorf("functions fixture: %d inlined calls, ops %v; want 2 calls and the 2 Conv nodes of the inlined bodies", r.InlinedCalls, r.Ops)
	}
}

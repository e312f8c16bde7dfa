package cli

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
)

// torchvisionSkip is the message of the optional torchvision tests when no
// exports are available.
const torchvisionSkip = "optional test, not run in CI: it needs the torchvision exports " +
	"(ResNet-18, GoogLeNet, MobileNet-V2 × opsets 13-17 × BN folded/kept × static/dynamic batch × 32/224 px: " +
	"120 models, about 3.4 GB, generated, not in the repository). Generate them with " +
	"`/usr/bin/python3 scripts/torchvision_exports.py DIR` (Debian python3-torch and python3-torchvision; " +
	"add --subset for 48 of them) and run with CSAM_TORCHVISION_DIR=DIR"

// torchvisionDirs returns the export folders under $CSAM_TORCHVISION_DIR
// (each holding model.onnx and test_data_set_0/), or skips.
func torchvisionDirs(t *testing.T) []string {
	t.Helper()
	root := os.Getenv("CSAM_TORCHVISION_DIR")
	if root == "" {
		t.Skip(torchvisionSkip)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("CSAM_TORCHVISION_DIR=%s: %v", root, err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(d, "test_data_set_0", "output_0.pb")); err == nil {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("CSAM_TORCHVISION_DIR=%s holds no finished export (a folder with model.onnx and test_data_set_0/output_0.pb); generate them with /usr/bin/python3 scripts/torchvision_exports.py %s", root, root)
	}
	sort.Strings(dirs)
	return dirs
}

// torchTol is the tolerance of the Go engine against PyTorch's own output.
// PyTorch computes the logits (standard deviation 5 to 12, up to |36|: the
// script scales the classifier so) in float32 with its own convolution
// kernels and summation order, and, where the export folded BatchNorm,
// through the unfolded layers, whose rounding differs from the folded
// weights'. Over the 120 exports the worst difference measured was 3.1e-5
// (ResNet-18, 224 px); 2e-4 leaves a factor 6 for other CPUs' kernels while
// a wrong kernel moves logits by O(1).
const torchTol = 2e-4

// TestTorchvisionExports runs `csam-onnx check` on every torchvision
// export in $CSAM_TORCHVISION_DIR: on the stored input, and on seeded
// random inputs (batch 3 where the batch is symbolic); every run must be
// within DefaultCheckATol of onnxruntime. It also compares the Go engine's
// output on the stored input to PyTorch's stored output.
func TestTorchvisionExports(t *testing.T) {
	dirs := torchvisionDirs(t)
	lib := testenv.ORTLibrary(t)
	for _, dir := range dirs {
		name := filepath.Base(dir)
		model := filepath.Join(dir, "model.onnx")
		input := filepath.Join(dir, "test_data_set_0", "input_0.pb")
		dynamic := strings.Contains(name, "_dyn")
		runs := []struct {
			label  string
			inputs []string
			batch  int
			shape  string
		}{
			{"stored", []string{input}, 1, ""},
			{"random", nil, 3, "[2 1000]"},
		}
		if dynamic {
			runs[0].shape = "[3 1000]" // the script stores a batch-3 input for dynamic exports
			runs[1].shape = "[3 1000]"
		} else {
			runs[0].shape = "[2 1000]"
		}
		for _, r := range runs {
			t.Run(name+"/"+r.label, func(t *testing.T) {
				ios, out, _ := testIO()
				opts := &CheckOptions{
					IO:     ios,
					Global: &GlobalOptions{ORTLib: lib, Seed: 1},
					Model:  model, Inputs: r.inputs, Batch: r.batch, ATol: DefaultCheckATol,
				}
				if err := checkRun(context.Background(), opts); err != nil {
					t.Fatalf("check %s: %v\n%s", model, err, out)
				}
				if !strings.Contains(out.String(), r.shape) {
					t.Errorf("check %s: want an output of shape %s:\n%s", model, r.shape, out)
				}
			})
		}
		t.Run(name+"/torch", func(t *testing.T) {
			compareToTorch(t, dir)
		})
	}
}

// compareToTorch runs the Go engine on the stored input and compares to
// PyTorch's stored output within torchTol.
func compareToTorch(t *testing.T, dir string) {
	t.Helper()
	m, err := loadModel(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := onnxio.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := onnxio.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := autodiff.Compile(m, [][]int{in.Shape}, &autodiff.Options{Params: []string{}})
	if err != nil {
		t.Fatalf("%s: compile: %v", dir, err)
	}
	if err := copyInto(prog.Input(0), in); err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatalf("%s: forward: %v", dir, err)
	}
	d := compareTensors("output", prog.Output(0), want, torchTol)
	if !d.OK {
		t.Errorf("%s: Go engine vs PyTorch: %s max abs diff %.3g at %d (tolerance %g)", dir, d.Problem, d.MaxAbs, d.MaxAbsAt, torchTol)
	}
	t.Logf("Go engine vs PyTorch: max abs diff %.3g, max rel diff %.3g", d.MaxAbs, d.MaxRel)
}

// TestTorchvisionProbes runs check on the exports under
// $CSAM_TORCHVISION_DIR/probes (written by the script's --probes): models
// PyTorch produces with export options other than the matrix's. Each was
// written as the repro of a gap and must pass once that gap is closed; the
// folder exists only when asked for, so the matrix test above stays
// independent of them.
//
//   - functions_min, resnet18_functions: torch.onnx.export(...,
//     export_modules_as_functions={Module}) at opset 15+ writes each module
//     instance as a call to a model-local ONNX function (ModelProto field
//     25, domain = the module's Python module). Fixed: loadModel inlines
//     every call (onnxio.InlineFunctions, graph.InlineFunctions: body nodes
//     and values renamed under the call node's name, formal inputs and
//     outputs mapped to the actual ones, ref_attr_name attributes resolved
//     from the call or the function's defaults, nested calls inlined,
//     opset imports merged) before the engine sees the model. The
//     committed fixture graph/testdata/functions_convbn_op15 covers the
//     same case without the exports (TestCheckModelLocalFunctions,
//     graph's TestInlineFunctions*).
func TestTorchvisionProbes(t *testing.T) {
	root := os.Getenv("CSAM_TORCHVISION_DIR")
	if root == "" {
		t.Skip(torchvisionSkip)
	}
	probes := filepath.Join(root, "probes")
	entries, err := os.ReadDir(probes)
	if err != nil {
		t.Skipf("optional: %s is absent; write the probes with /usr/bin/python3 scripts/torchvision_exports.py %s --probes (they are known gaps, expected to fail until fixed)", probes, root)
	}
	lib := testenv.ORTLibrary(t)
	for _, e := range entries {
		dir := filepath.Join(probes, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			ios, out, _ := testIO()
			opts := &CheckOptions{
				IO:     ios,
				Global: &GlobalOptions{ORTLib: lib, Seed: 1},
				Model:  filepath.Join(dir, "model.onnx"),
				Inputs: []string{filepath.Join(dir, "test_data_set_0", "input_0.pb")},
				Batch:  1, ATol: DefaultCheckATol,
			}
			if err := checkRun(context.Background(), opts); err != nil {
				t.Fatalf("check %s: %v\n%s", opts.Model, err, out)
			}
		})
	}
}

// TestCheckModelLocalFunctions runs check on a PyTorch export whose
// blocks are calls to a model-local function
// (graph/testdata/functions_convbn_op15): the Go engine runs the inlined
// graph, onnxruntime the file as it is, and they must agree.
func TestCheckModelLocalFunctions(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	dir := filepath.Join("..", "..", "graph", "testdata", "functions_convbn_op15")
	model := filepath.Join(dir, "model.onnx")
	for _, c := range []struct {
		label  string
		inputs []string
	}{
		{"stored", []string{filepath.Join(dir, "test_data_set_0", "input_0.pb")}},
		{"random", nil},
	} {
		t.Run(c.label, func(t *testing.T) {
			ios, out, _ := testIO()
			opts := &CheckOptions{
				IO:     ios,
				Global: &GlobalOptions{ORTLib: lib, Seed: 3, Threads: 1},
				Model:  model, Inputs: c.inputs, Batch: 2, ATol: DefaultCheckATol,
			}
			if err := checkRun(context.Background(), opts); err != nil {
				t.Fatalf("check %s: %v\n%s", model, err, out)
			}
			if !strings.Contains(out.String(), "logits") || !strings.Contains(out.String(), " ok") || !strings.Contains(out.String(), "[2 5]") {
				t.Errorf("check output does not report logits [2 5] ok:\n%s", out)
			}
		})
	}
}

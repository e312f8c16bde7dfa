package cli

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// fixtureDirs lists the PyTorch fixtures check must pass on: all but the
// *_train exports, whose outputs are random.
func fixtureDirs(t *testing.T) []string {
	t.Helper()
	root := testenv.SharedDir(t, "fixtures", "torch-1.13")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasSuffix(e.Name(), "_train") {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	if len(dirs) < 10 {
		t.Fatalf("%s has %d fixtures, want the 10 non-train ones", root, len(dirs))
	}
	return dirs
}

// TestCheckFixtures runs check on every fixture twice: on the stored test
// input, and on seeded random inputs (batch 3 where the batch is symbolic).
func TestCheckFixtures(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	for _, dir := range fixtureDirs(t) {
		name := filepath.Base(dir)
		model := filepath.Join(dir, "model.onnx")
		for _, c := range []struct {
			label  string
			inputs []string
			batch  int
		}{
			{"stored", []string{filepath.Join(dir, "test_data_set_0", "input_0.pb")}, 1},
			{"random", nil, 3},
		} {
			t.Run(name+"/"+c.label, func(t *testing.T) {
				ios, out, _ := testIO()
				opts := &CheckOptions{
					IO:     ios,
					Global: &GlobalOptions{ORTLib: lib, Seed: 5, Threads: 1},
					Model:  model, Inputs: c.inputs, Batch: c.batch, ATol: DefaultCheckATol,
				}
				err := checkRun(context.Background(), opts)
				if err != nil {
					t.Fatalf("check %s: %v\n%s", model, err, out)
				}
				if !strings.Contains(out.String(), "logits") || !strings.Contains(out.String(), " ok") {
					t.Errorf("check output does not report logits ok:\n%s", out)
				}
				if c.inputs == nil && strings.Contains(name, "dynbatch") && !strings.Contains(out.String(), "[3 10]") {
					t.Errorf("dynamic batch: want logits of shape [3 10] at --batch 3:\n%s", out)
				}
			})
		}
	}
}

// TestCheckDetectsMismatch runs check with --atol 0: any float rounding
// difference between the engines then fails, which exercises the failure
// path and exit status 3 on a real model.
func TestCheckDetectsMismatch(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	ios, out, _ := testIO()
	opts := &CheckOptions{
		IO:     ios,
		Global: &GlobalOptions{ORTLib: lib, Seed: 1, Threads: 1},
		Model:  filepath.Join(modelsDir(), "tiny_opmix_32_op14_evalbn.onnx"),
		Batch:  2,
		ATol:   0,
	}
	err := checkRun(context.Background(), opts)
	var ce *CheckFailedError
	if err == nil {
		// Bit-identical results are possible in principle; then there is
		// no mismatch to detect.
		t.Skipf("the Go engine and onnxruntime agree bit for bit on this input:\n%s", out)
	}
	if !errors.As(err, &ce) {
		t.Fatalf("check with --atol 0: %v (%T), want *CheckFailedError", err, err)
	}
	if ExitCode(err) != 3 || strings.Contains(OneLine(err), "\n") || !strings.Contains(err.Error(), `output "logits"`) {
		t.Errorf("error %q: exit %d, want 3 and a line naming output \"logits\"", err, ExitCode(err))
	}
}

func TestCompareTensors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name    string
		a, b    *tensor.Tensor
		atol    float64
		ok      bool
		maxAbs  float64
		at      int
		problem string
	}{
		{"equal", tensor.FromFloat32([]float32{1, 2}, 2), tensor.FromFloat32([]float32{1, 2}, 2), 0, true, 0, 0, ""},
		{"within", tensor.FromFloat32([]float32{1, 2}, 2), tensor.FromFloat32([]float32{1, 2.00005}, 2), 1e-4, true, 0.00005, 1, ""},
		{"beyond", tensor.FromFloat32([]float32{1, 2}, 2), tensor.FromFloat32([]float32{1.5, 2}, 2), 1e-4, false, 0.5, 0, ""},
		{"shape", tensor.FromFloat32([]float32{1, 2}, 2), tensor.FromFloat32([]float32{1, 2}, 1, 2), 1, false, 0, 0, "shape"},
		{"nan one side", tensor.FromFloat32([]float32{nan}, 1), tensor.FromFloat32([]float32{0}, 1), 1, false, 0, 0, "NaN"},
		{"nan both", tensor.FromFloat32([]float32{nan, 1}, 2), tensor.FromFloat32([]float32{nan, 1}, 2), 0, true, 0, 0, ""},
		{"inf both", tensor.FromFloat32([]float32{inf}, 1), tensor.FromFloat32([]float32{inf}, 1), 0, true, 0, 0, ""},
		{"inf one", tensor.FromFloat32([]float32{inf}, 1), tensor.FromFloat32([]float32{1}, 1), 1, false, 0, 0, "index 0"},
		{"int64", tensor.FromInt64([]int64{3, 4}, 2), tensor.FromInt64([]int64{3, 5}, 2), 0, false, 1, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := compareTensors("y", tt.a, tt.b, tt.atol)
			if d.OK != tt.ok {
				t.Errorf("OK = %v, want %v (%+v)", d.OK, tt.ok, d)
			}
			// 1e-6: the differences above are exact in float64 except for
			// the float32 rounding of 2.00005 (about 1e-7).
			if math.Abs(d.MaxAbs-tt.maxAbs) > 1e-6 || d.MaxAbsAt != tt.at {
				t.Errorf("MaxAbs = %g at %d, want %g at %d", d.MaxAbs, d.MaxAbsAt, tt.maxAbs, tt.at)
			}
			if !strings.Contains(d.Problem, tt.problem) || (tt.problem == "" && d.Problem != "") {
				t.Errorf("Problem = %q, want it to contain %q", d.Problem, tt.problem)
			}
			if want := map[bool]int{true: 1}[tt.name == "nan both"]; d.NaNs != want {
				t.Errorf("NaNs = %d, want %d (counted for the note on NaN outputs)", d.NaNs, want)
			}
		})
	}
}

// TestCheckInputErrors covers what check refuses before running anything.
func TestCheckInputErrors(t *testing.T) {
	model := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	input := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.input_0.pb")
	tests := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"two inputs for one", []string{"check", model, "--input", input, "--input", input}, "--input given 2 times, the model has 1 inputs", 2},
		{"missing input file", []string{"check", model, "--input", "/nonexistent/x.pb"}, "/nonexistent/x.pb", 1},
		{"model as input", []string{"check", model, "--input", model}, "--input " + model, 1},
		{"missing model", []string{"check", "/nonexistent/m.onnx"}, "/nonexistent/m.onnx: no such file", 1},
		{"folder as model", []string{"inspect", modelsDir()}, "is a folder", 1},
		// Used to end the process with Go's unrecoverable out-of-memory.
		{"input too large", []string{"check", filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx"), "--batch", "1000000000"}, "holds more than 268435456 values; lower --batch", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err, code := execute(t, tt.args...)
			if err == nil {
				t.Fatalf("%v succeeded", tt.args)
			}
			if code != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q (exit %d), want exit %d and a message containing %q", err, code, tt.code, tt.want)
			}
		})
	}
}

// TestCheckORTMissing: without a library, check says how to install it.
func TestCheckORTMissing(t *testing.T) {
	model := filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx")
	t.Setenv("ONNXRUNTIME_SHARED_LIBRARY_PATH", "")
	t.Setenv("CSAM_ONNX_CACHE", t.TempDir())
	_, _, err, code := execute(t, "check", model)
	if err == nil {
		t.Fatal("check succeeded without an onnxruntime library")
	}
	if code != 1 || !strings.Contains(err.Error(), "make setup") {
		t.Errorf("error %q (exit %d), want exit 1 and a message saying `make setup`", err, code)
	}
}

// TestCheckCancelled: a cancelled context (Ctrl-C) stops check before the
// engines run, and maps to exit status 2.
func TestCheckCancelled(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ios, out, _ := testIO()
	err := checkRun(ctx, &CheckOptions{
		IO:     ios,
		Global: &GlobalOptions{ORTLib: lib, Seed: 1},
		Model:  filepath.Join(modelsDir(), "small_cnn_32_op14_evalbn.onnx"),
		Batch:  1, ATol: DefaultCheckATol,
	})
	if !errors.Is(err, context.Canceled) || ExitCode(err) != 2 {
		t.Errorf("check with a cancelled context: %v (exit %d), want context.Canceled (exit 2)", err, ExitCode(err))
	}
	if out.Len() != 0 {
		t.Errorf("check printed results after cancellation:\n%s", out)
	}
}

package models_test

import (
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// small returns a cheap configuration of arch for tests.
func small(arch string) models.Config {
	w := 0.25
	if arch == "googlenet" {
		w = 0.125
	}
	return models.Config{Arch: arch, Width: w, InputSize: 16, InChannels: 3, Classes: 7, Seed: 3}
}

// TestBuildRunsInEngineAndORT builds every architecture, writes it, and
// checks the Go engine and onnxruntime agree on a random batch.
func TestBuildRunsInEngineAndORT(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	if err := runtime.Init(lib); err != nil {
		t.Fatal(err)
	}
	for _, arch := range models.Archs() {
		t.Run(arch, func(t *testing.T) {
			cfg := small(arch)
			m, err := models.Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			data, err := onnxio.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := runtime.OpenBytes(data, nil)
			if err != nil {
				t.Fatalf("onnxruntime refuses the %s model: %v", arch, err)
			}
			defer sess.Close()
			const batch = 3
			x := tensor.New(batch, 3, cfg.InputSize, cfg.InputSize)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := range x.F32 {
				x.F32[i] = rng.Float32()
			}
			outs, err := sess.Run([]*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			prog, err := autodiff.Compile(m, [][]int{x.Shape}, &autodiff.Options{Params: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			copy(prog.Input(0).F32, x.F32)
			if err := prog.Forward(); err != nil {
				t.Fatal(err)
			}
			got := prog.Output(0)
			if want := []int{batch, cfg.Classes}; !slices.Equal(got.Shape, want) {
				t.Fatalf("logits shape %v, want %v", got.Shape, want)
			}
			// Go engine vs onnxruntime: float32 with different summation
			// orders; logits here are O(1), so 1e-4 is ~1000 ulps.
			for i, v := range got.F32 {
				if d := math.Abs(float64(v - outs[0].F32[i])); d > 1e-4 {
					t.Fatalf("logit %d: Go engine %v, onnxruntime %v", i, v, outs[0].F32[i])
				}
			}
		})
	}
}

// TestONNXChecker runs onnx.checker.check_model(full_check=True) from
// Debian's python3-onnx on every architecture.
func TestONNXChecker(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		testenv.Missing(t, "python3-onnx is not installed (apt-get install python3-onnx; make setup installs it)")
	}
	dir := t.TempDir()
	for _, arch := range models.Archs() {
		m, err := models.Build(small(arch))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, arch+".onnx")
		if err := onnxio.WriteFile(p, m); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(py, "-c", "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", p).CombinedOutput()
		if err != nil {
			t.Errorf("onnx.checker rejects the %s model: %v\n%s", arch, err, out)
		}
	}
}

func TestBuildDeterministicAndParamCounts(t *testing.T) {
	a, _ := models.Build(models.Config{Arch: "resnet20", Seed: 9})
	b, _ := models.Build(models.Config{Arch: "resnet20", Seed: 9})
	ba, _ := onnxio.Marshal(a)
	bb, _ := onnxio.Marshal(b)
	if string(ba) != string(bb) {
		t.Error("Build with the same seed gave different bytes")
	}
	// ResNet-20 (He et al. 2016) has about 0.27 M parameters; with 1×1
	// projection shortcuts and BatchNorm buffers counted it is a little
	// more. Count conv/fc weights only: 3·16·9 + 6 convs 16·16·9 + ...
	params := 0
	for _, in := range a.Graph.Initializers {
		params += in.Value.Len()
	}
	if params < 260_000 || params > 290_000 {
		t.Errorf("resnet20 has %d parameters, want about 0.27 M", params)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, c := range []models.Config{
		{Arch: "vgg"}, {Arch: "resnet8", Width: -1}, {Arch: "resnet8", Classes: 1}, {Arch: "resnet8", InChannels: 2},
		{Arch: "resnet8", InputSize: 4}, {Arch: "resnet8", Mean: []float32{0.5}},
	} {
		if _, err := models.Build(c); err == nil {
			t.Errorf("Build(%+v) succeeded, want an error", c)
		}
	}
}

package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/models"
)

// TestFreshGradientsOverwriteEverything: kernels that assign a fresh
// input gradient instead of having it cleared (gradAssigner) must write
// every element of it. A program whose gradient buffers are all poisoned
// with NaN before Backward must produce bit-for-bit the gradients of a
// clean program, on the reference architectures (Conv incl. depthwise and
// 1×1, BatchNormalization, Relu, Clip, MaxPool, AveragePool, Concat,
// residual Add).
func TestFreshGradientsOverwriteEverything(t *testing.T) {
	for _, cfg := range []models.Config{
		{Arch: "resnet8", Width: 0.25, InputSize: 16, Seed: 1},
		{Arch: "resnet18", Width: 0.125, InputSize: 16, Seed: 2},
		{Arch: "mobilenetv2", Width: 0.25, InputSize: 16, Seed: 3},
		{Arch: "googlenet", Width: 0.125, InputSize: 16, Seed: 4},
	} {
		t.Run(cfg.Arch, func(t *testing.T) {
			m, err := models.Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			const batch = 3
			run := func(poison bool) (*Program, map[string][]float32) {
				p, err := Compile(m, [][]int{{batch, 3, 16, 16}}, &Options{Workers: 2, Seed: 1})
				if err != nil {
					t.Fatal(err)
				}
				p.SetTraining(true)
				rng := rand.New(rand.NewPCG(5, 6))
				for i := range p.Input(0).F32 {
					p.Input(0).F32[i] = rng.Float32()
				}
				if poison {
					nan := float32(math.NaN())
					for idx, s := range p.slots {
						if s.grad == nil || slicesContains(p.outputs, idx) {
							continue
						}
						for i := range s.grad.F32 {
							s.grad.F32[i] = nan
						}
					}
				}
				if err := p.Forward(); err != nil {
					t.Fatal(err)
				}
				if _, _, err := SoftmaxCrossEntropy(p.Output(0), []int{0, 1, 2}, 0, p.OutputGrad(0)); err != nil {
					t.Fatal(err)
				}
				if err := p.Backward(); err != nil {
					t.Fatal(err)
				}
				out := map[string][]float32{"input": p.slots[p.inputs[0]].grad.F32}
				for _, name := range p.Params() {
					out[name] = p.Grad(name).F32
				}
				return p, out
			}
			p, poisoned := run(true)
			_, clean := run(false)
			fresh := 0
			for _, st := range p.steps {
				for _, f := range st.fresh {
					if f {
						fresh++
					}
				}
			}
			if fresh == 0 {
				t.Fatal("no step assigns a fresh gradient: the test checks nothing")
			}
			for name, g := range clean {
				pg := poisoned[name]
				for i := range g {
					if math.Float32bits(g[i]) != math.Float32bits(pg[i]) {
						t.Fatalf("%s[%d]: %v with poisoned buffers, %v clean (%d fresh gradients)", name, i, pg[i], g[i], fresh)
					}
				}
			}
			t.Logf("%d gradient buffers assigned instead of cleared", fresh)
		})
	}
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

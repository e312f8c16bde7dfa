package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/models"
)

// TestFusedReluIdentical: compiling with BatchNormalization+Relu and
// Conv+Relu fused gives bit for bit the logits, every gradient (parameters
// and input) and the updated running statistics of the unfused program,
// over two training steps and one inference forward (its backward too),
// on the reference architectures (residual Adds after BatchNormalization
// without Relu, Concat of Relu outputs in GoogLeNet, a classifier head
// after the last Relu) and on the same architectures with their
// BatchNormalization folded into the convolutions (Conv → Relu, as
// PyTorch's eval-mode exports are), with fusion counted so that the test
// cannot pass vacuously.
func TestFusedReluIdentical(t *testing.T) {
	for _, c := range []struct {
		cfg  models.Config
		fold bool
	}{
		{models.Config{Arch: "resnet20", Width: 0.5, Seed: 1}, false},
		{models.Config{Arch: "resnet18", Width: 0.125, Seed: 2}, false},
		{models.Config{Arch: "mobilenetv2", Width: 0.25, Seed: 3}, false},
		{models.Config{Arch: "googlenet", Width: 0.125, Seed: 4}, false},
		{models.Config{Arch: "resnet20", Width: 0.5, Seed: 5}, true},
		{models.Config{Arch: "googlenet", Width: 0.125, Seed: 6}, true},
	} {
		cfg := c.cfg
		name := cfg.Arch
		if c.fold {
			name += "-folded"
		}
		t.Run(name, func(t *testing.T) {
			const batch = 3
			run := func(noFuse bool) (int, map[string][]float32) {
				m, err := models.Build(cfg) // own copy: training updates the running statistics in place
				if err != nil {
					t.Fatal(err)
				}
				if c.fold {
					if n, err := graph.FoldBatchNorm(m); err != nil || n == 0 {
						t.Fatalf("FoldBatchNorm: %d folded, %v", n, err)
					}
				}
				p, err := Compile(m, [][]int{{batch, 3, 32, 32}}, &Options{Workers: 2, Seed: 1, NoFuse: noFuse})
				if err != nil {
					t.Fatal(err)
				}
				fused := 0
				for _, st := range p.steps {
					if bn, ok := st.kernel.(*batchNormKernel); ok && bn.relu {
						fused++
					}
					if cv, ok := st.kernel.(*convKernel); ok && cv.relu {
						fused++
					}
				}
				out := map[string][]float32{}
				rng := rand.New(rand.NewPCG(7, 8))
				for step := range 3 {
					p.SetTraining(step < 2)
					for i := range p.Input(0).F32 {
						p.Input(0).F32[i] = rng.Float32()
					}
					if err := p.Forward(); err != nil {
						t.Fatal(err)
					}
					if _, _, err := SoftmaxCrossEntropy(p.Output(0), []int{3, 1, 4}, 0, p.OutputGrad(0)); err != nil {
						t.Fatal(err)
					}
					if err := p.Backward(); err != nil {
						t.Fatal(err)
					}
					tag := string(rune('a' + step))
					out[tag+"/logits"] = append([]float32(nil), p.Output(0).F32...)
					out[tag+"/input"] = append([]float32(nil), p.slots[p.inputs[0]].grad.F32...)
					for _, name := range p.Params() {
						out[tag+"/"+name] = append([]float32(nil), p.Grad(name).F32...)
					}
				}
				for _, in := range m.Graph.Initializers {
					out["final/"+in.Name] = in.Value.F32
				}
				return fused, out
			}
			nf, fused := run(false)
			n0, ref := run(true)
			if nf == 0 || n0 != 0 {
				t.Fatalf("%d Relus fused (want > 0), %d with NoFuse (want 0)", nf, n0)
			}
			for name, want := range ref {
				got := fused[name]
				if len(got) != len(want) {
					t.Fatalf("%s: %d values fused, %d unfused", name, len(got), len(want))
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s[%d]: %v fused, %v unfused (%d pairs fused)", name, i, got[i], want[i], nf)
					}
				}
			}
			t.Logf("%d Relus fused, %d tensors identical", nf, len(ref))
		})
	}
}

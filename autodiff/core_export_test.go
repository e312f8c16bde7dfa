package autodiff

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/csam-onnx/csam-onnx/models"
)

// Test-only exports for the external test package (autodiff_test), which
// compares the engine with onnxruntime on the same model.
var (
	CoreResNet18       = coreResNet18
	CoreCPUSeconds     = coreCPUSeconds
	CorePeakRSS        = corePeakRSS
	CompileForTraining = compileForTraining
	TimeAlternately    = timeAlternately
	GradPass           = gradPass
)

// compileForTraining compiles the reference model cfg (package models)
// for training at the given batch and worker count, fills its input with
// seeded pixels, and returns it with the labels i mod 10.
func compileForTraining(tb testing.TB, cfg models.Config, batch, workers int, noFuse bool) (*Program, []int) {
	tb.Helper()
	m, err := models.Build(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := Compile(m, [][]int{{batch, 3, 32, 32}}, &Options{Workers: workers, Seed: 1, NoFuse: noFuse})
	if err != nil {
		tb.Fatal(err)
	}
	p.SetTraining(true)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range p.Input(0).F32 {
		p.Input(0).F32[i] = rng.Float32()
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % 10
	}
	return p, labels
}

// timeAlternately runs a and c once each as a warm-up, then one after the
// other in every benchmark iteration, so that both see the same machine,
// and returns their total times.
func timeAlternately(b *testing.B, a, c func()) (ta, tc time.Duration) {
	a()
	c()
	for b.Loop() {
		t0 := time.Now()
		a()
		t1 := time.Now()
		c()
		ta += t1.Sub(t0)
		tc += time.Since(t1)
	}
	return ta, tc
}

// gradPass returns one training pass of p: forward, softmax cross-entropy
// on labels, backward (gradients, no update).
func gradPass(tb testing.TB, p *Program, labels []int) func() {
	return func() {
		if err := p.Forward(); err != nil {
			tb.Fatal(err)
		}
		if _, _, err := SoftmaxCrossEntropy(p.Output(0), labels, 0, p.OutputGrad(0)); err != nil {
			tb.Fatal(err)
		}
		if err := p.Backward(); err != nil {
			tb.Fatal(err)
		}
	}
}

package autodiff

import (
	"fmt"
	"testing"

	"github.com/csam-onnx/csam-onnx/models"
)

// BenchmarkPlanesStep times whole training passes (forward, loss,
// backward; 1 worker, batch 128) of the three CIFAR reference models with
// the many-planes calls of BatchNormalization and the 3×3 depthwise
// convolution on ("planes") and off ("perplane", a call per plane, as
// before them), alternated in every iteration. Both give the same bits.
func BenchmarkPlanesStep(b *testing.B) {
	for _, cfg := range []models.Config{
		{Arch: "mobilenetv2", Width: 0.5, Seed: 1}, {Arch: "googlenet", Width: 0.25, Seed: 1}, {Arch: "resnet18", Width: 0.5, Seed: 1},
	} {
		b.Run(fmt.Sprintf("%s_w%g", cfg.Arch, cfg.Width), func(b *testing.B) {
			p, labels := compileForTraining(b, cfg, 128, 1, false)
			pass := gradPass(b, p, labels)
			step := func(on bool) func() { return withFlag(&bnPlanesCalls, on, withFlag(&dwPlanesOn, on, pass)) }
			alternateSteps(b, "planes", step(true), "perplane", step(false))
		})
	}
}

// BenchmarkMaxPool3x3Step times whole training passes of GoogLeNet w0.25
// (1 worker, batch 128) compiled with its MaxPools on tensor.MaxPool3x3
// ("3x3") and on the staged-plane path ("staged"), alternated. Both give
// the same bits.
func BenchmarkMaxPool3x3Step(b *testing.B) {
	cfg := models.Config{Arch: "googlenet", Width: 0.25, Seed: 1}
	compile := func(on bool) func() {
		defer func(was bool) { maxPool3x3On = was }(maxPool3x3On)
		maxPool3x3On = on
		p, labels := compileForTraining(b, cfg, 128, 1, false)
		return gradPass(b, p, labels)
	}
	alternateSteps(b, "3x3", compile(true), "staged", compile(false))
}

// BenchmarkDepthwiseStride2Step times whole training passes of
// MobileNet-V2 w0.5 (1 worker, batch 128) with its stride-2 depthwise
// layers over 8×8 planes through the stride-1 many-planes kernel
// ("s1planes") and on phase-split planes ("phasesplit"), alternated.
func BenchmarkDepthwiseStride2Step(b *testing.B) {
	p, labels := compileForTraining(b, models.Config{Arch: "mobilenetv2", Width: 0.5, Seed: 1}, 128, 1, false)
	pass := gradPass(b, p, labels)
	alternateSteps(b, "s1planes", withFlag(&dwStride2On, true, pass), "phasesplit", withFlag(&dwStride2On, false, pass))
}

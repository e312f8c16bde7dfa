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

package finetune

import (
	"context"
	"fmt"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
)

// RecalibrateBN re-estimates the running mean and variance of m's
// BatchNormalization nodes, with m's weights as they are, as the plain
// average of their batch statistics over the first batches of src's
// first epoch (all of it when it has fewer), writing them into m's
// initializers. After pruning and a short fine-tune the running statistics
// still lean on the dense model's: training moves them by an exponential
// average (momentum 0.9 a step), while the exported model normalizes with
// them. Batches not of the full size are skipped. It returns the number of
// batches averaged (0 when m has no BatchNormalization).
func RecalibrateBN(ctx context.Context, m *graph.Model, src Source, batch, batches, workers int) (int, error) {
	if batches <= 0 || !m.Graph.HasOp("BatchNormalization") {
		return 0, nil
	}
	shape, err := InputShape(m, batch)
	if err != nil {
		return 0, err
	}
	prog, err := autodiff.Compile(m, [][]int{shape}, &autodiff.Options{Params: []string{}, Workers: workers, Logits: true})
	if err != nil {
		return 0, err
	}
	prog.SetTraining(true)
	in := prog.Input(0).F32
	k := 0
	for b, err := range src.Batches(ctx, 0, 0) {
		if err != nil {
			return k, err
		}
		if err := ctx.Err(); err != nil {
			return k, err
		}
		if len(b.Images.F32) != len(in) {
			if len(b.Labels) < batch {
				continue
			}
			return k, fmt.Errorf("finetune: recalibration batch of shape %v does not fit the model input %v", b.Images.Shape, prog.Input(0).Shape)
		}
		copy(in, b.Images.F32)
		k++
		prog.SetRunningStatsAverage(k)
		if err := prog.Forward(); err != nil {
			return k, err
		}
		if k == batches {
			break
		}
	}
	return k, nil
}

package finetune

import (
	"context"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
)

// Evaluation is the result of Evaluate.
type Evaluation struct {
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	Correct  int     `json:"correct"`
	Samples  int     `json:"samples"`
}

// Evaluate runs m in inference mode in the Go engine over the batches of
// src (epoch 0; the last batch may be smaller than batch) and returns the
// mean cross-entropy and top-1 accuracy.
func Evaluate(ctx context.Context, m *graph.Model, src Source, batch, workers int) (Evaluation, error) {
	shape, err := InputShape(m, batch)
	if err != nil {
		return Evaluation{}, err
	}
	prog, err := autodiff.Compile(m, [][]int{shape}, &autodiff.Options{Params: []string{}, Workers: workers, Logits: true})
	if err != nil {
		return Evaluation{}, err
	}
	per := len(prog.Input(0).F32) / batch
	var ev Evaluation
	var lossSum float64
	for b, err := range src.Batches(ctx, 0, 0) {
		if err != nil {
			return ev, err
		}
		if err := ctx.Err(); err != nil {
			return ev, err
		}
		n := len(b.Labels)
		if n > batch || len(b.Images.F32) != n*per {
			return ev, fmt.Errorf("finetune: evaluation batch of shape %v does not fit the model input %v", b.Images.Shape, prog.Input(0).Shape)
		}
		in := prog.Input(0).F32
		copy(in, b.Images.F32)
		clear(in[n*per:])
		if err := prog.Forward(); err != nil {
			return ev, err
		}
		out := prog.Output(0)
		classes := len(out.F32) / out.Shape[0] // [N, C] or [N, C, 1, ...]
		for i := 0; i < n; i++ {
			row := out.F32[i*classes : (i+1)*classes]
			lossSum += crossEntropyRow(row, b.Labels[i])
			if argmax(row) == b.Labels[i] {
				ev.Correct++
			}
		}
		ev.Samples += n
	}
	if ev.Samples > 0 {
		ev.Loss = lossSum / float64(ev.Samples)
		ev.Accuracy = float64(ev.Correct) / float64(ev.Samples)
	}
	return ev, nil
}

func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

// crossEntropyRow is −log softmax(row)[label], computed stably.
func crossEntropyRow(row []float32, label int) float64 {
	mx := float64(row[0])
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - mx)
	}
	return math.Log(s) + mx - float64(row[label])
}

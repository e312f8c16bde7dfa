package finetune_test

import (
	"context"
	"iter"
	"math"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
)

// onlyBatch yields the i-th batch of a source as its one batch.
type onlyBatch struct {
	src finetune.Source
	i   int
}

func (o onlyBatch) StepsPerEpoch() int { return 1 }

func (o onlyBatch) Batches(ctx context.Context, epoch, skip int) iter.Seq2[finetune.Batch, error] {
	return func(yield func(finetune.Batch, error) bool) {
		for b, err := range o.src.Batches(ctx, epoch, o.i) {
			yield(b, err)
			return
		}
	}
}

// runningStats returns the running mean and variance initializers of m's
// BatchNormalization nodes, by name.
func runningStats(m *graph.Model) map[string][]float32 {
	out := map[string][]float32{}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "BatchNormalization" {
			for _, name := range n.Inputs[3:5] {
				out[name] = slices.Clone(m.Graph.Initializer(name).Value.F32)
			}
		}
	}
	return out
}

// TestRecalibrateBNAveragesBatchStatistics: the running statistics after
// RecalibrateBN over k batches are the mean of the statistics each batch
// gives alone; the weights do not move; fewer batches than asked use them
// all; a model without BatchNormalization is left alone.
func TestRecalibrateBNAveragesBatchStatistics(t *testing.T) {
	ctx := context.Background()
	src := &toySource{Batch: 8, Steps: 4, Size: 8, Seed: 3}
	var per []map[string][]float32
	for i := range src.Steps {
		m := toyModel(t)
		if n, err := finetune.RecalibrateBN(ctx, m, onlyBatch{src, i}, 8, 1, 1); err != nil || n != 1 {
			t.Fatalf("batch %d alone: %d batches, %v", i, n, err)
		}
		per = append(per, runningStats(m))
	}
	for _, c := range []struct{ ask, want int }{{2, 2}, {10, 4}} {
		m := toyModel(t)
		before, w := runningStats(m), weights(m)
		n, err := finetune.RecalibrateBN(ctx, m, src, 8, c.ask, 2)
		if err != nil || n != c.want {
			t.Fatalf("asked for %d batches: averaged %d, %v; want %d", c.ask, n, err, c.want)
		}
		after := runningStats(m)
		if len(after) == 0 {
			t.Fatal("the toy model has no BatchNormalization")
		}
		moved := false
		for name, got := range after {
			for i, v := range got {
				var want float64
				for _, p := range per[:c.want] {
					want += float64(p[name][i])
				}
				want /= float64(c.want)
				if math.Abs(float64(v)-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("%d batches: %s[%d] = %v, the mean of the batches' statistics is %v", c.want, name, i, v, want)
				}
				moved = moved || v != before[name][i]
			}
		}
		if !moved {
			t.Error("the running statistics did not change")
		}
		for name, v := range weights(m) {
			if _, stat := after[name]; !stat && !slices.Equal(v, w[name]) {
				t.Errorf("%s changed; only running statistics may", name)
			}
		}
	}
	// Without BatchNormalization nothing is compiled or run: the op
	// renamed to one the engine does not know would fail to compile.
	m := toyModel(t)
	for _, n := range m.Graph.Nodes {
		if n.OpType == "BatchNormalization" {
			n.OpType = "NoSuchOp"
		}
	}
	if n, err := finetune.RecalibrateBN(ctx, m, src, 8, 4, 1); n != 0 || err != nil {
		t.Errorf("a model without BatchNormalization: %d batches, %v; want 0 and nothing run", n, err)
	}
}

package finetune

import (
	"context"
	"iter"

	"github.com/csam-onnx/csam-onnx/dataset"
)

// DatasetSource feeds a dataset.Dataset to Loop or Evaluate.
//
// For training (Train true) each epoch visits the images in a seeded random
// order, augments them when Augment is set, and drops the last short batch
// so every step has the compiled batch size. For evaluation it yields the
// images in order and keeps the last short batch.
type DatasetSource struct {
	Data    *dataset.Dataset
	Batch   int
	Train   bool
	Seed    uint64
	Augment *dataset.Augment
}

// StepsPerEpoch implements Source.
func (s *DatasetSource) StepsPerEpoch() int { return s.Data.Steps(s.Batch, s.Train) }

// Batches implements Source. The yielded batch is valid until the loop body
// returns.
func (s *DatasetSource) Batches(ctx context.Context, epoch, skip int) iter.Seq2[Batch, error] {
	opts := dataset.BatchOptions{Epoch: epoch, Step: skip, Reuse: true, Seed: s.Seed}
	if s.Train {
		opts.Shuffle = true
		opts.DropLast = true
		opts.Augment = s.Augment
	}
	return func(yield func(Batch, error) bool) {
		for b, err := range s.Data.Batches(ctx, s.Batch, opts) {
			if !yield(Batch{Images: b.Images, Labels: b.Labels}, err) {
				return
			}
			if err != nil {
				return
			}
		}
	}
}

// Package toydata is a small, learnable synthetic classification problem
// for tests of the training and pruning code: class 1 images are brighter
// in their top half. Batches depend only on (seed, epoch, step), so runs
// are reproducible and resumable.
package toydata

import (
	"context"
	"iter"
	"math/rand/v2"

	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Source implements finetune.Source.
type Source struct {
	Batch, Steps, Size int
	Seed               uint64
}

// StepsPerEpoch implements finetune.Source.
func (s *Source) StepsPerEpoch() int { return s.Steps }

// Batches implements finetune.Source.
func (s *Source) Batches(ctx context.Context, epoch, skip int) iter.Seq2[finetune.Batch, error] {
	return func(yield func(finetune.Batch, error) bool) {
		for st := skip; st < s.Steps; st++ {
			rng := rand.New(rand.NewPCG(s.Seed, uint64(epoch)<<20|uint64(st)))
			x := tensor.New(s.Batch, 3, s.Size, s.Size)
			labels := make([]int, s.Batch)
			hw := s.Size * s.Size
			for b := range labels {
				labels[b] = rng.IntN(2)
				for c := 0; c < 3; c++ {
					for i := 0; i < hw; i++ {
						v := 0.3 + 0.2*rng.Float32()
						if labels[b] == 1 && i < hw/2 {
							v += 0.3
						}
						x.F32[(b*3+c)*hw+i] = v
					}
				}
			}
			if !yield(finetune.Batch{Images: x, Labels: labels}, nil) {
				return
			}
		}
	}
}

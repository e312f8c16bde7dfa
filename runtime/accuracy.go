package runtime

import (
	"context"
	"fmt"
)

// Eval counts correct top-1 predictions. Counts, not fractions, so that
// shards of one evaluation add up exactly.
type Eval struct {
	N       int `json:"n"`
	Correct int `json:"correct"`
}

// Accuracy is Correct/N, or 0 for an empty evaluation.
func (e Eval) Accuracy() float64 {
	if e.N == 0 {
		return 0
	}
	return float64(e.Correct) / float64(e.N)
}

// Add returns the counts of e and o together.
func (e Eval) Add(o Eval) Eval { return Eval{N: e.N + o.N, Correct: e.Correct + o.Correct} }

// Accuracy measures the clean top-1 accuracy of the classifier s on data,
// running onnxruntime on at most batch images at a time (batch < 1: as the
// data comes). The first tie among the largest logits wins, as in numpy and
// PyTorch. A model that does not take the data's images, or labels outside
// the model's classes, give an error before anything is counted from that
// batch.
func Accuracy(ctx context.Context, s *Session, data Batches, batch int) (Eval, error) {
	var e Eval
	var c *classifier
	for b, err := range data {
		if err != nil {
			return e, err
		}
		if err := ctx.Err(); err != nil {
			return e, err
		}
		if err := checkBatch(b); err != nil {
			return e, fmt.Errorf("runtime: %s: batch at sample %d: %w", s.name, e.N, err)
		}
		if c == nil {
			if c, err = newClassifier(s, b.Images.Shape[1:]); err != nil {
				return e, err
			}
		}
		n := len(b.Labels)
		logits, err := c.logits(ctx, b.Images.F32, n, batch)
		if err != nil {
			return e, err
		}
		if err := c.checkLabels(b.Labels, e.N); err != nil {
			return e, err
		}
		for i, l := range b.Labels {
			if argmax(logits[i*c.classes:(i+1)*c.classes]) == l {
				e.Correct++
			}
		}
		e.N += n
	}
	return e, nil
}

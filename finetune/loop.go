package finetune

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// Batch is one minibatch: images [B, C, H, W] in [0,1] and their labels.
type Batch struct {
	Images *tensor.Tensor
	Labels []int
}

// Source yields the batches of one epoch. The order (and any augmentation)
// must depend only on the source's seed and the epoch, so that a resumed
// run sees exactly the batches an uninterrupted run would.
type Source interface {
	// Batches yields the batches of epoch, skipping the first skip.
	Batches(ctx context.Context, epoch, skip int) iter.Seq2[Batch, error]
	// StepsPerEpoch is the number of batches Batches yields for skip = 0.
	StepsPerEpoch() int
}

// Iter locates a step in a run.
type Iter struct {
	Epoch  int // 0-based
	Step   int // 0-based, within the epoch
	Global int // 0-based, over the whole run
	Total  int // total steps of the run
}

// StepStats is what one step reports.
type StepStats struct {
	Loss    float64
	Correct int
	Count   int
	// Extra carries method-specific figures (for example mask flips).
	Extra map[string]float64
}

// EpochStats summarizes an epoch.
type EpochStats struct {
	Epoch    int
	Loss     float64 // mean over samples
	Accuracy float64 // training accuracy over the epoch
	Samples  int
	Steps    int                // steps in the epoch
	Extra    map[string]float64 // sums over the epoch's steps
}

// State is what a phase checkpoints: weights, optimizer buffers, masks.
// Snapshot may return shared slices; the loop encodes them before the next
// step.
type State interface {
	Snapshot() map[string][]float32
	Restore(map[string][]float32) error
}

// StepFunc runs one optimization step on b.
type StepFunc func(ctx context.Context, it Iter, b Batch) (StepStats, error)

// LoopConfig configures Loop.
type LoopConfig struct {
	// Phase names the run in its checkpoint, so a checkpoint of another
	// phase is not resumed by mistake.
	Phase  string
	Epochs int
	// CheckpointPath, when set, is where checkpoints are written
	// (atomically) every CheckpointEvery steps, at each epoch end, and when
	// the context is cancelled.
	CheckpointPath  string
	CheckpointEvery int
	// Resume continues from CheckpointPath when it exists.
	Resume bool
	// Meta is recorded in checkpoints and must match on resume (for
	// example the seed and the data spec).
	Meta map[string]string
}

// Hooks receive progress. Nil functions are skipped.
type Hooks struct {
	OnStep  func(Iter, StepStats)
	OnEpoch func(EpochStats)
	// OnResume is called once the state is restored from a checkpoint,
	// before any step, with the checkpoint's position: step steps into
	// epoch (0-based; step 0 is the boundary after epoch-1 completed
	// epochs, where OnEpoch of the previous epoch may have been cut short
	// by the cancellation that wrote the checkpoint).
	OnResume func(epoch, step int)
}

// ErrNonFinite is returned when a step's loss is NaN or infinite. The loop
// stops without writing a checkpoint, so the last good one is kept.
var ErrNonFinite = errors.New("finetune: loss is not finite (NaN or Inf); stopped, keeping the last good checkpoint if one was written; lower the learning rate")

// Loop runs epochs of step over src with checkpointing, resume and
// cancellation. On cancellation it writes a checkpoint of the last
// completed step (when CheckpointPath is set) and returns ctx.Err().
func Loop(ctx context.Context, cfg LoopConfig, src Source, state State, step StepFunc, hooks Hooks) error {
	if cfg.Epochs < 0 {
		return fmt.Errorf("finetune: %d epochs", cfg.Epochs)
	}
	per := src.StepsPerEpoch()
	if per <= 0 {
		return errors.New("finetune: the data source yields no batches (is the data set smaller than one batch?)")
	}
	total := cfg.Epochs * per
	startEpoch, startStep := 0, 0
	var epochAcc EpochStats
	if cfg.Resume && cfg.CheckpointPath != "" {
		ck, err := ReadCheckpoint(cfg.CheckpointPath)
		switch {
		case errors.Is(err, errNoCheckpoint):
		case err != nil:
			return err
		default:
			if ck.Phase != cfg.Phase {
				return fmt.Errorf("finetune: checkpoint %s is of phase %q, not %q", cfg.CheckpointPath, ck.Phase, cfg.Phase)
			}
			for k, v := range cfg.Meta {
				if ck.Meta[k] != v {
					return fmt.Errorf("finetune: checkpoint %s was made with %s=%q, this run has %q; remove the checkpoint or use the same settings", cfg.CheckpointPath, k, ck.Meta[k], v)
				}
			}
			if err := state.Restore(ck.Tensors); err != nil {
				return fmt.Errorf("finetune: restoring %s: %w", cfg.CheckpointPath, err)
			}
			startEpoch, startStep = ck.Epoch, ck.Step
			epochAcc = ck.EpochSoFar
			if ck.Done {
				return nil
			}
			if hooks.OnResume != nil {
				hooks.OnResume(startEpoch, startStep)
			}
		}
	}

	save := func(epoch, stepInEpoch int, done bool) error {
		if cfg.CheckpointPath == "" {
			return nil
		}
		return WriteCheckpoint(cfg.CheckpointPath, &Checkpoint{
			Phase: cfg.Phase, Epoch: epoch, Step: stepInEpoch, Done: done,
			Meta: cfg.Meta, Tensors: state.Snapshot(), EpochSoFar: epochAcc,
		})
	}

	for epoch := startEpoch; epoch < cfg.Epochs; epoch++ {
		skip := 0
		if epoch == startEpoch {
			skip = startStep
		}
		if skip == 0 {
			epochAcc = EpochStats{Epoch: epoch}
		}
		s := skip
		for b, err := range src.Batches(ctx, epoch, skip) {
			if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				// The pipeline reports the cancellation (the loop was
				// waiting for a batch): checkpoint as below.
				if err := save(epoch, s, false); err != nil {
					return err
				}
				return ctx.Err()
			}
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				if err := save(epoch, s, false); err != nil {
					return err
				}
				return ctx.Err()
			}
			it := Iter{Epoch: epoch, Step: s, Global: epoch*per + s, Total: total}
			st, err := step(ctx, it, b)
			if err != nil {
				return err
			}
			if math.IsNaN(st.Loss) || math.IsInf(st.Loss, 0) {
				return fmt.Errorf("%w (epoch %d, step %d)", ErrNonFinite, epoch+1, s+1)
			}
			epochAcc.Loss += st.Loss * float64(st.Count)
			epochAcc.Accuracy += float64(st.Correct)
			epochAcc.Samples += st.Count
			for k, v := range st.Extra {
				if epochAcc.Extra == nil {
					epochAcc.Extra = map[string]float64{}
				}
				epochAcc.Extra[k] += v
			}
			s++
			if hooks.OnStep != nil {
				hooks.OnStep(it, st)
			}
			if cfg.CheckpointEvery > 0 && s%cfg.CheckpointEvery == 0 && s < per {
				if err := save(epoch, s, false); err != nil {
					return err
				}
			}
		}
		if ctx.Err() != nil {
			if err := save(epoch, s, false); err != nil {
				return err
			}
			return ctx.Err()
		}
		out := epochAcc
		out.Steps = per
		if out.Samples > 0 {
			out.Loss /= float64(out.Samples)
			out.Accuracy /= float64(out.Samples)
		}
		if hooks.OnEpoch != nil {
			hooks.OnEpoch(out)
		}
		last := epoch == cfg.Epochs-1
		epochAcc = EpochStats{Epoch: epoch + 1}
		if err := save(epoch+1, 0, last); err != nil {
			return err
		}
	}
	return nil
}

package finetune_test

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/toydata"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/tensor"
)

type toySource = toydata.Source

func toyModel(t *testing.T) *graph.Model {
	t.Helper()
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.25, InputSize: 8, Classes: 2, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTrainer(t *testing.T, m *graph.Model, steps int) *finetune.Trainer {
	t.Helper()
	tr, err := finetune.NewTrainer(m, finetune.TrainConfig{Batch: 8, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, Seed: 1,
		Schedule: finetune.Schedule{Kind: "cosine", Base: 0.05, TotalSteps: steps, WarmupSteps: 2}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func weights(m *graph.Model) map[string][]float32 {
	out := map[string][]float32{}
	for _, in := range m.Graph.Initializers {
		if in.Value.DType == tensor.Float32 {
			out[in.Name] = slices.Clone(in.Value.F32)
		}
	}
	return out
}

func TestTrainingLearnsToyProblem(t *testing.T) {
	m := toyModel(t)
	src := &toySource{Batch: 8, Steps: 12, Size: 8, Seed: 1}
	tr := newTrainer(t, m, 3*src.Steps)
	var epochs []finetune.EpochStats
	err := finetune.Loop(context.Background(), finetune.LoopConfig{Phase: "train", Epochs: 3}, src, tr, tr.Step,
		finetune.Hooks{OnEpoch: func(e finetune.EpochStats) { epochs = append(epochs, e) }})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := finetune.Evaluate(context.Background(), m, &toySource{Batch: 8, Steps: 8, Size: 8, Seed: 99}, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy < 0.9 {
		t.Errorf("after 3 epochs on a separable toy problem accuracy is %.2f, want ≥ 0.9 (epochs: %+v)", ev.Accuracy, epochs)
	}
	if epochs[2].Loss >= epochs[0].Loss {
		t.Errorf("training loss did not fall: %v then %v", epochs[0].Loss, epochs[2].Loss)
	}
}

// uninterrupted trains a fresh model for epochs over src and returns its
// weights.
func uninterrupted(t *testing.T, src finetune.Source, epochs, total int) map[string][]float32 {
	t.Helper()
	m := toyModel(t)
	tr := newTrainer(t, m, total)
	if err := finetune.Loop(context.Background(), finetune.LoopConfig{Phase: "train", Epochs: epochs}, src, tr, tr.Step, finetune.Hooks{}); err != nil {
		t.Fatal(err)
	}
	return weights(m)
}

// interrupted runs cfg over src in a fresh model and cancels the context
// after n steps; the loop must return context.Canceled.
func interrupted(t *testing.T, cfg finetune.LoopConfig, src finetune.Source, total, n int) {
	t.Helper()
	tr := newTrainer(t, toyModel(t), total)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	err := finetune.Loop(ctx, cfg, src, tr, tr.Step, finetune.Hooks{OnStep: func(finetune.Iter, finetune.StepStats) {
		if steps++; steps == n {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Loop after cancel = %v, want context.Canceled", err)
	}
}

// resumedMatches resumes cfg over src in a fresh model and trainer (a new
// process, as it were) and requires the weights of the uninterrupted run.
func resumedMatches(t *testing.T, cfg finetune.LoopConfig, src finetune.Source, total int, want map[string][]float32) {
	t.Helper()
	m := toyModel(t)
	tr := newTrainer(t, m, total)
	if err := finetune.Loop(context.Background(), cfg, src, tr, tr.Step, finetune.Hooks{}); err != nil {
		t.Fatal(err)
	}
	got := weights(m)
	for name, w := range want {
		if !slices.Equal(w, got[name]) {
			t.Fatalf("after resume, %s differs from the uninterrupted run", name)
		}
	}
}

// TestResumeIsExact interrupts training mid-epoch by cancelling the
// context, resumes from the checkpoint, and requires weights identical to
// an uninterrupted run.
func TestResumeIsExact(t *testing.T) {
	const epochs = 2
	src := &toySource{Batch: 8, Steps: 10, Size: 8, Seed: 2}
	total := epochs * src.Steps
	want := uninterrupted(t, src, epochs, total)
	cfg := finetune.LoopConfig{Phase: "train", Epochs: epochs, CheckpointPath: filepath.Join(t.TempDir(), "run.ckpt"), CheckpointEvery: 3, Resume: true}
	interrupted(t, cfg, src, total, 14) // mid-epoch 2
	resumedMatches(t, cfg, src, total, want)
}

// pipelineSource is a toy source that, like the real data pipeline, hands
// the context's error to the loop as a batch error once it is cancelled.
type pipelineSource struct{ *toySource }

func (s pipelineSource) Batches(ctx context.Context, epoch, skip int) iter.Seq2[finetune.Batch, error] {
	return func(yield func(finetune.Batch, error) bool) {
		for b, err := range s.toySource.Batches(ctx, epoch, skip) {
			if ctx.Err() != nil {
				yield(finetune.Batch{}, ctx.Err())
				return
			}
			if !yield(b, err) {
				return
			}
		}
	}
}

// TestCancelInDataPipelineSavesCheckpoint: a cancellation the data
// pipeline reports (the usual case with Ctrl-C: the loop is waiting for a
// batch) still writes the checkpoint of the last completed step, and the
// resumed run ends with the uninterrupted run's weights.
func TestCancelInDataPipelineSavesCheckpoint(t *testing.T) {
	const epochs = 2
	src := pipelineSource{&toySource{Batch: 8, Steps: 10, Size: 8, Seed: 2}}
	total := epochs * src.Steps
	want := uninterrupted(t, src, epochs, total)
	ckpt := filepath.Join(t.TempDir(), "run.ckpt")
	// No periodic checkpoints: only the one the cancellation writes.
	cfg := finetune.LoopConfig{Phase: "train", Epochs: epochs, CheckpointPath: ckpt, Resume: true}
	interrupted(t, cfg, src, total, 13)
	ck, err := finetune.ReadCheckpoint(ckpt)
	if err != nil {
		t.Fatalf("no checkpoint after a cancellation the pipeline reported: %v", err)
	}
	if ck.Epoch != 1 || ck.Step != 3 {
		t.Errorf("checkpoint at epoch %d step %d, want epoch 1 step 3 (13 steps done)", ck.Epoch, ck.Step)
	}
	resumedMatches(t, cfg, src, total, want)
}

func TestNonFiniteLossStops(t *testing.T) {
	m := toyModel(t)
	src := &toySource{Batch: 8, Steps: 4, Size: 8, Seed: 3}
	tr := newTrainer(t, m, 4)
	ckpt := filepath.Join(t.TempDir(), "nan.ckpt")
	calls := 0
	step := func(ctx context.Context, it finetune.Iter, b finetune.Batch) (finetune.StepStats, error) {
		calls++
		st, err := tr.Step(ctx, it, b)
		if calls == 3 {
			st.Loss = float64(float32(0) / float32(calls-3)) // NaN
		}
		return st, err
	}
	err := finetune.Loop(context.Background(), finetune.LoopConfig{Phase: "train", Epochs: 1, CheckpointPath: ckpt, CheckpointEvery: 2}, src, tr, step, finetune.Hooks{})
	if !errors.Is(err, finetune.ErrNonFinite) {
		t.Fatalf("Loop = %v, want ErrNonFinite", err)
	}
	ck, err := finetune.ReadCheckpoint(ckpt)
	if err != nil {
		t.Fatalf("the last good checkpoint is gone: %v", err)
	}
	if ck.Step != 2 {
		t.Errorf("checkpoint at step %d, want the last good one at 2", ck.Step)
	}
}

func TestScheduleShapes(t *testing.T) {
	s := finetune.Schedule{Kind: "cosine", Base: 0.1, TotalSteps: 100, WarmupSteps: 10}
	if got := s.At(0); got != 0.01 {
		t.Errorf("warm-up start = %v, want 0.01", got)
	}
	if got := s.At(10); got != 0.1 {
		t.Errorf("after warm-up = %v, want 0.1", got)
	}
	if got := s.At(99); got > 0.001 {
		t.Errorf("cosine end = %v, want ≈ 0", got)
	}
	st := finetune.Schedule{Kind: "step", Base: 1, StepEvery: 10, Gamma: 0.1}
	if got := st.At(25); got < 0.0099 || got > 0.0101 {
		t.Errorf("step schedule at 25 = %v, want 0.01", got)
	}
	if err := (finetune.Schedule{Kind: "exp", Base: 1}).Validate(); err == nil {
		t.Error("unknown schedule accepted")
	}
}

func TestSGDMatchesFormula(t *testing.T) {
	w := []float32{1, -2}
	g := []float32{0.5, 0.25}
	o := &finetune.SGD{Momentum: 0.9, Nesterov: true, WeightDecay: 0.1}
	o.Step([]finetune.Param{{Name: "w", W: w, G: g, Mask: []float32{1, 0}}}, 0.1)
	// g' = 0.5 + 0.1·1 = 0.6; v = 0.6; step = 0.6 + 0.9·0.6 = 1.14.
	if d := w[0] - (1 - 0.1*1.14); d > 1e-6 || d < -1e-6 {
		t.Errorf("w[0] = %v, want %v", w[0], 1-0.1*1.14)
	}
	if w[1] != 0 {
		t.Errorf("masked weight = %v, want 0", w[1])
	}
}

// TestOnResumeAtEpochBoundary: a run cancelled inside OnEpoch (as when
// Ctrl-C arrives during the epoch's evaluation) checkpoints at the epoch
// boundary, and the resumed run reports that position to OnResume before
// its first step (and a run cancelled mid-epoch reports its step), then
// ends with the weights of an uninterrupted run.
func TestOnResumeAtEpochBoundary(t *testing.T) {
	const epochs = 2
	src := &toySource{Batch: 8, Steps: 6, Size: 8, Seed: 3}
	total := epochs * src.Steps
	want := uninterrupted(t, src, epochs, total)
	for _, c := range []struct {
		name       string
		inEpochEnd bool
		cancelStep int
		wantEpoch  int
		wantStep   int
	}{{"in OnEpoch", true, 0, 1, 0}, {"mid-epoch", false, 4, 0, 4}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := finetune.LoopConfig{Phase: "train", Epochs: epochs, CheckpointPath: filepath.Join(t.TempDir(), "run.ckpt"), CheckpointEvery: 100, Resume: true}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tr := newTrainer(t, toyModel(t), total)
			steps := 0
			hooks := finetune.Hooks{
				OnStep: func(finetune.Iter, finetune.StepStats) {
					if steps++; !c.inEpochEnd && steps == c.cancelStep {
						cancel()
					}
				},
				OnEpoch: func(finetune.EpochStats) {
					if c.inEpochEnd {
						cancel()
					}
				},
			}
			if err := finetune.Loop(ctx, cfg, src, tr, tr.Step, hooks); !errors.Is(err, context.Canceled) {
				t.Fatalf("Loop after cancel = %v, want context.Canceled", err)
			}
			m := toyModel(t)
			tr = newTrainer(t, m, total)
			calls, resumedSteps := 0, 0
			err := finetune.Loop(context.Background(), cfg, src, tr, tr.Step, finetune.Hooks{
				OnResume: func(epoch, step int) {
					calls++
					if epoch != c.wantEpoch || step != c.wantStep || resumedSteps != 0 {
						t.Errorf("OnResume(%d, %d) after %d steps, want (%d, %d) before any", epoch, step, resumedSteps, c.wantEpoch, c.wantStep)
					}
				},
				OnStep: func(finetune.Iter, finetune.StepStats) { resumedSteps++ },
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != 1 {
				t.Errorf("OnResume called %d times, want 1", calls)
			}
			got := weights(m)
			for name, w := range want {
				if !slices.Equal(w, got[name]) {
					t.Fatalf("after resume, %s differs from the uninterrupted run", name)
				}
			}
		})
	}
}

// withSoftmax appends a Softmax over the classes to m's output, as a
// classifier exported with its probabilities is.
func withSoftmax(m *graph.Model, opset int64, attrs ...*graph.Attribute) *graph.Model {
	g := m.Graph
	out := g.Outputs[0]
	g.Nodes = append(g.Nodes, &graph.Node{Name: "probs", OpType: "Softmax", Inputs: []string{out.Name}, Outputs: []string{"probs"}, Attrs: attrs})
	g.Outputs[0] = &graph.ValueInfo{Name: "probs", Type: out.Type}
	m.OpsetImports = []graph.OpsetImport{{Version: opset}}
	return m
}

// TestFinalSoftmaxTrainsOnLogits: a model whose output is a Softmax (at
// opset 17, and at opset 11 with its axis-1 default) trains to the same
// weights, bit for bit, as the model without it, and evaluates to the same
// loss and accuracy: the loss is taken on the scores before the Softmax.
func TestFinalSoftmaxTrainsOnLogits(t *testing.T) {
	src := &toySource{Batch: 8, Steps: 6, Size: 8, Seed: 1}
	run := func(m *graph.Model) (map[string][]float32, finetune.Evaluation) {
		tr := newTrainer(t, m, 2*src.Steps)
		if err := finetune.Loop(context.Background(), finetune.LoopConfig{Phase: "train", Epochs: 2}, src, tr, tr.Step, finetune.Hooks{}); err != nil {
			t.Fatal(err)
		}
		ev, err := finetune.Evaluate(context.Background(), m, &toySource{Batch: 8, Steps: 4, Size: 8, Seed: 99}, 8, 0)
		if err != nil {
			t.Fatal(err)
		}
		return weights(m), ev
	}
	want, wantEv := run(toyModel(t))
	for _, m := range []*graph.Model{
		withSoftmax(toyModel(t), 17),
		withSoftmax(toyModel(t), 11),
		withSoftmax(toyModel(t), 17, &graph.Attribute{Name: "axis", Type: graph.AttrInt, I: 1}),
	} {
		got, ev := run(m)
		for name, w := range want {
			if !slices.Equal(w, got[name]) {
				t.Fatalf("opset %d: %s differs from the model without the Softmax", m.Opset(), name)
			}
		}
		if ev != wantEv {
			t.Errorf("opset %d: evaluation %+v, without the Softmax %+v", m.Opset(), ev, wantEv)
		}
	}
}

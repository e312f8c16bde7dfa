package finetune

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// TrainableParams lists the initializers that training updates: the
// weights and biases of Conv, ConvTranspose, Gemm and MatMul, and the scale and shift of
// BatchNormalization. Everything else (running statistics, the input
// normalization constants, shape tensors) is left alone.
func TrainableParams(g *graph.Graph) []string {
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if name == "" || seen[name] {
			return
		}
		in := g.Initializer(name)
		if in == nil || in.Value == nil || in.Value.DType != tensor.Float32 {
			return
		}
		seen[name] = true
		out = append(out, name)
	}
	for _, n := range g.Nodes {
		switch n.OpType {
		case "Conv", "ConvTranspose", "Gemm":
			for _, in := range n.Inputs[1:] {
				add(in)
			}
		case "MatMul":
			for _, in := range n.Inputs {
				add(in)
			}
		case "BatchNormalization":
			if len(n.Inputs) >= 3 {
				add(n.Inputs[1])
				add(n.Inputs[2])
			}
		}
	}
	return out
}

// BufferNames lists float initializers that training changes without a
// gradient (BatchNormalization running mean and variance).
func BufferNames(g *graph.Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		if n.OpType == "BatchNormalization" && len(n.Inputs) >= 5 {
			out = append(out, n.Inputs[3], n.Inputs[4])
		}
	}
	return out
}

// TrainConfig configures a Trainer.
type TrainConfig struct {
	Batch          int
	Schedule       Schedule
	Momentum       float64
	Nesterov       bool
	WeightDecay    float64
	LabelSmoothing float64
	Seed           uint64
	Workers        int
	// Masks, when set, freeze pruned weights: entries where the mask is 0
	// stay 0 and get no update. Keyed by initializer name.
	Masks map[string][]float32
	// SAMRho > 0 trains with sharpness-aware minimization (Foret et al.
	// 2021) of radius SAMRho: the gradient is taken at w + ε with
	// ε = ρ·g/‖g‖₂ over all (kept) parameters, then applied at w.
	SAMRho float64
}

// Trainer trains a model's weights with SGD on softmax cross-entropy. Its
// Step is a StepFunc and it is a State, so Loop can drive and checkpoint it.
type Trainer struct {
	Model  *graph.Model
	Prog   *autodiff.Program
	Opt    *SGD
	cfg    TrainConfig
	params []Param
	bufs   []string
	inLen  int
	eps    [][]float32 // SAM perturbation per parameter
}

// NewTrainer compiles m for batches of cfg.Batch images of the model's
// declared input shape.
func NewTrainer(m *graph.Model, cfg TrainConfig) (*Trainer, error) {
	if cfg.Batch <= 0 {
		return nil, fmt.Errorf("finetune: batch size %d must be positive", cfg.Batch)
	}
	if err := cfg.Schedule.Validate(); err != nil {
		return nil, err
	}
	shape, err := InputShape(m, cfg.Batch)
	if err != nil {
		return nil, err
	}
	names := TrainableParams(m.Graph)
	prog, err := autodiff.Compile(m, [][]int{shape}, &autodiff.Options{Params: names, Workers: cfg.Workers, Seed: cfg.Seed, Logits: true})
	if err != nil {
		return nil, err
	}
	prog.SetTraining(true)
	t := &Trainer{Model: m, Prog: prog, cfg: cfg, bufs: BufferNames(m.Graph), inLen: tensor.Numel(shape)}
	t.Opt = &SGD{Momentum: cfg.Momentum, Nesterov: cfg.Nesterov, WeightDecay: cfg.WeightDecay}
	for _, n := range names {
		w := m.Graph.Initializer(n).Value
		p := Param{Name: n, W: w.F32, G: prog.Grad(n).F32}
		if mask, ok := cfg.Masks[n]; ok {
			if len(mask) != len(w.F32) {
				return nil, fmt.Errorf("finetune: mask for %q has %d entries, the weight has %d", n, len(mask), len(w.F32))
			}
			p.Mask = mask
			for i := range w.F32 {
				if mask[i] == 0 {
					w.F32[i] = 0
				}
			}
		}
		t.params = append(t.params, p)
	}
	return t, nil
}

// InputShape is the model's first input shape with the batch dimension set
// to batch. It fails when any other dimension is not fixed.
func InputShape(m *graph.Model, batch int) ([]int, error) {
	g := m.Graph
	for _, vi := range g.Inputs {
		if g.Initializer(vi.Name) != nil {
			continue
		}
		if vi.Type == nil || !vi.Type.HasShape {
			return nil, fmt.Errorf("finetune: input %q has no declared shape", vi.Name)
		}
		shape := make([]int, len(vi.Type.Shape))
		for i, d := range vi.Type.Shape {
			switch {
			case i == 0:
				shape[i] = batch
			case d.HasValue && d.Value > 0:
				shape[i] = int(d.Value)
			default:
				return nil, fmt.Errorf("finetune: input %q dimension %d is %s; only the batch dimension may be symbolic", vi.Name, i, d)
			}
		}
		return shape, nil
	}
	return nil, fmt.Errorf("finetune: model has no input")
}

// Step runs forward, loss, backward and one SGD update on b.
func (t *Trainer) Step(ctx context.Context, it Iter, b Batch) (StepStats, error) {
	loss, correct, err := ForwardBackward(t.Prog, b, t.cfg.LabelSmoothing)
	if err != nil {
		return StepStats{}, err
	}
	if t.cfg.SAMRho > 0 {
		if err := t.samSecondPass(b); err != nil {
			return StepStats{}, err
		}
	}
	t.Opt.Step(t.params, t.cfg.Schedule.At(it.Global))
	return StepStats{Loss: loss, Correct: correct, Count: len(b.Labels)}, nil
}

// ForwardBackward copies b into prog's input, runs forward, the softmax
// cross-entropy loss and backward. It returns the mean loss and the number
// of correct top-1 predictions.
func ForwardBackward(prog *autodiff.Program, b Batch, smoothing float64) (float64, int, error) {
	in := prog.Input(0)
	if len(b.Images.F32) != len(in.F32) {
		return 0, 0, fmt.Errorf("finetune: batch of shape %v does not fit the model input %v", b.Images.Shape, in.Shape)
	}
	copy(in.F32, b.Images.F32)
	if err := prog.Forward(); err != nil {
		return 0, 0, err
	}
	loss, correct, err := autodiff.SoftmaxCrossEntropy(prog.Output(0), b.Labels, smoothing, prog.OutputGrad(0))
	if err != nil {
		return 0, 0, err
	}
	if err := prog.Backward(); err != nil {
		return 0, 0, err
	}
	return loss, correct, nil
}

// Snapshot returns the weights, running statistics and optimizer state.
func (t *Trainer) Snapshot() map[string][]float32 {
	out := t.Opt.State()
	for _, p := range t.params {
		out["w."+p.Name] = p.W
	}
	for _, n := range t.bufs {
		if in := t.Model.Graph.Initializer(n); in != nil {
			out["w."+n] = in.Value.F32
		}
	}
	out["rng.program"] = StateBytes(t.Prog.RNGState())
	return out
}

// Restore loads a Snapshot.
func (t *Trainer) Restore(s map[string][]float32) error {
	names := slices.Concat(t.bufs)
	for _, p := range t.params {
		names = append(names, p.Name)
	}
	for _, n := range names {
		v, ok := s["w."+n]
		in := t.Model.Graph.Initializer(n)
		if !ok || in == nil || len(v) != len(in.Value.F32) {
			return fmt.Errorf("finetune: checkpoint does not match the model (tensor %q)", n)
		}
		copy(in.Value.F32, v)
	}
	t.Opt.Restore(s)
	return RestoreRNG(s, "rng.program", t.Prog.SetRNGState)
}

// samSecondPass moves the weights to w + ε, recomputes the gradient there,
// and moves them back, leaving the SAM gradient in the gradient buffers
// (CSAM-SPEC §2.7, after davda54/sam's first_step/second_step).
func (t *Trainer) samSecondPass(b Batch) error {
	if t.eps == nil {
		t.eps = make([][]float32, len(t.params))
		for i, p := range t.params {
			t.eps[i] = make([]float32, len(p.W))
		}
	}
	var norm float64
	for _, p := range t.params {
		for i, g := range p.G {
			if p.Mask != nil && p.Mask[i] == 0 {
				continue
			}
			norm += float64(g) * float64(g)
		}
	}
	scale := float32(t.cfg.SAMRho / (math.Sqrt(norm) + 1e-12))
	for k, p := range t.params {
		e := t.eps[k]
		for i, g := range p.G {
			if p.Mask != nil && p.Mask[i] == 0 {
				e[i] = 0
				continue
			}
			e[i] = scale * g
			p.W[i] += e[i]
		}
	}
	// BatchNormalization's running statistics move once per step, in the
	// first pass, as davda54/sam recommends.
	t.Prog.SetFreezeRunningStats(true)
	_, _, err := ForwardBackward(t.Prog, b, t.cfg.LabelSmoothing)
	t.Prog.SetFreezeRunningStats(false)
	for k, p := range t.params {
		for i, e := range t.eps[k] {
			p.W[i] -= e
		}
	}
	return err
}

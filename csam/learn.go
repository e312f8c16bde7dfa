package csam

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Methods lists the pruning methods Learn implements.
func Methods() []string {
	return []string{"csam", "magnitude", "gmp", "sam-prune", "prune-sam", "hydra", "flying-bird"}
}

// Variants lists the C-SAM perturbation variants (CSAM-SPEC §2.4–2.5).
func Variants() []string { return []string{"A", "B", "C", "D", "E"} }

// Config configures Learn. DefaultConfig gives the spec's defaults.
type Config struct {
	Method   string
	Sparsity float64
	// Granularity is "weight" (default; unstructured, per-weight masks) or
	// "channel" (structured: whole channels of dependency groups, removed
	// physically after fine-tuning; see structured.go).
	Granularity string
	// Global selects one top-k over all layers instead of per layer.
	Global    bool
	Selection Selection

	// C-SAM (CSAM-SPEC §2.4): variant, radius and its normalization
	// ("layer", "global", "adaptive"), uniform mask noise a, Hamming radius
	// ρ_H (variant B), sparsity penalty λ_sp (variant D).
	Variant    string
	Rho        float64
	RhoNorm    string
	MaskNoise  float64
	RhoHamming float64
	LambdaSp   float64
	// InitPercentile is τ of the percentile initialization C = clip(|θ| /
	// Q(|θ|, τ), 0, 1), in (0, 100]; 0 takes the sparsity percentile
	// 100·Sparsity (CSAM-SPEC §2.2).
	InitPercentile float64

	// Mask search (θ frozen): epochs, learning rate and momentum of the
	// score optimizer (cosine schedule).
	SearchEpochs   int
	SearchLR       float64
	SearchMomentum float64
	// JointWeights also trains the weights during C-SAM's mask search
	// (CSAM-SPEC §2.4 (e), "optionally the weights"; off by default): every
	// step the trainable parameters take an SGD step (FinetuneLR on its own
	// cosine schedule over the search, Momentum, WeightDecay) with their
	// gradient at the perturbed mask, the same gradient the scores use.
	JointWeights bool

	// Fine-tuning (mask frozen): epochs, learning rate (cosine), momentum,
	// weight decay. SAMRho > 0 fine-tunes with SAM (prune-sam uses it; the
	// sam-prune baseline uses it for its dense phase).
	FinetuneEpochs int
	FinetuneLR     float64
	Momentum       float64
	WeightDecay    float64
	SAMRho         float64
	LabelSmoothing float64

	Batch   int
	Seed    uint64
	Workers int

	// RecalibrateBN > 0 re-estimates the BatchNormalization running
	// statistics of the final model as the average over that many training
	// batches (finetune.RecalibrateBN) after fine-tuning: a short
	// fine-tune leaves them close to the dense model's.
	RecalibrateBN int

	// CheckpointDir holds one checkpoint per phase; Resume continues from
	// them.
	CheckpointDir   string
	CheckpointEvery int
	Resume          bool
	// RunMeta are settings outside Config that a resumed run must share
	// with the checkpoints' run (the data spec and subset, say); every
	// Config field that changes the result is checked too.
	RunMeta map[string]string `json:"-"`
}

// resumeMeta is what a checkpoint records of the run that wrote it, and a
// resumed run must match: every Config field but the thread count, the
// checkpointing and recalibration settings, as "cfg.Field", plus RunMeta.
func (c Config) resumeMeta() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		switch f := v.Type().Field(i); f.Name {
		case "Workers", "RecalibrateBN", "CheckpointDir", "CheckpointEvery", "Resume", "RunMeta":
		default:
			out["cfg."+f.Name] = fmt.Sprintf("%+v", v.Field(i).Interface())
		}
	}
	for k, val := range c.RunMeta {
		out[k] = val
	}
	return out
}

// DefaultConfig returns the defaults of CSAM-SPEC §2.6 for method.
func DefaultConfig(method string) Config {
	return Config{
		Method: method, Sparsity: 0.9, Variant: "A", Rho: 0.05, RhoNorm: "layer",
		RhoHamming: 0.01, LambdaSp: 1,
		SearchEpochs: 20, SearchLR: 0.01, SearchMomentum: 0.9,
		FinetuneEpochs: 20, FinetuneLR: 0.01, Momentum: 0.9, WeightDecay: 5e-4,
		SAMRho: 0.05, Batch: 128,
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("csam: "+format, a...)) }
	// Each message names the compress flag that sets the field.
	if !slices.Contains(Methods(), c.Method) {
		bad("--method %q: unknown method (want one of %v)", c.Method, Methods())
	}
	switch c.Granularity {
	case "", "weight", "channel":
	default:
		bad("--granularity %q: unknown granularity (want weight or channel)", c.Granularity)
	}
	if !(c.Sparsity > 0 && c.Sparsity < 1) {
		bad("--sparsity %v: the sparsity must be in (0, 1)", c.Sparsity)
	}
	switch c.Variant {
	case "A", "B", "C", "D", "E":
	default:
		bad("--variant %q: unknown C-SAM variant (want A–E)", c.Variant)
	}
	switch c.RhoNorm {
	case "layer", "global", "adaptive":
	default:
		bad("--rho-norm %q: unknown rho normalization (want layer, global or adaptive)", c.RhoNorm)
	}
	for _, f := range []struct {
		flag string
		v    float64
	}{{"rho", c.Rho}, {"mask-noise", c.MaskNoise}, {"rho-hamming", c.RhoHamming}, {"lambda-sp", c.LambdaSp}, {"sam-rho", c.SAMRho}} {
		if f.v < 0 {
			bad("--%s %v: must be ≥ 0", f.flag, f.v)
		}
	}
	if c.InitPercentile < 0 || c.InitPercentile > 100 {
		bad("--init-percentile %v: the initialization percentile τ must be in (0, 100] (0: the sparsity percentile)", c.InitPercentile)
	}
	if c.JointWeights && c.Method != "csam" {
		bad("--joint-weights (training the weights during the mask search) is a C-SAM option; --method %q has no such search", c.Method)
	}
	if c.JointWeights && c.Granularity == "channel" {
		bad("--joint-weights is not implemented for --granularity channel (the channel search trains the channel scores only); leave it out, or prune weights")
	}
	if c.RecalibrateBN < 0 {
		bad("--recalibrate-bn %d: batches must be ≥ 0", c.RecalibrateBN)
	}
	if c.SearchEpochs < 0 {
		bad("--search-epochs %d: epochs must be ≥ 0", c.SearchEpochs)
	}
	if c.FinetuneEpochs < 0 {
		bad("--finetune-epochs %d: epochs must be ≥ 0", c.FinetuneEpochs)
	}
	if c.SearchLR <= 0 {
		bad("--search-lr %v: the learning rate must be positive", c.SearchLR)
	}
	if c.FinetuneLR <= 0 {
		bad("--finetune-lr %v: the learning rate must be positive", c.FinetuneLR)
	}
	if c.Batch <= 0 {
		bad("--batch %d: the batch size must be positive", c.Batch)
	}
	if len(errs) == 0 {
		return nil
	}
	return joinErrors(errs)
}

// Hooks report progress of every phase.
type Hooks struct {
	OnPhase func(name string, epochs int)
	finetune.Hooks
}

// LayerResult is the outcome for one pruned tensor.
type LayerResult struct {
	Weight   string  `json:"weight"`
	Node     string  `json:"node"`
	Params   int     `json:"params"`
	Kept     int     `json:"kept"`
	Sparsity float64 `json:"sparsity"`
}

// Result is what Learn did.
type Result struct {
	Method   string                `json:"method"`
	Sparsity float64               `json:"sparsity"` // achieved, over pruned layers
	Layers   []LayerResult         `json:"layers"`
	Epochs   []finetune.EpochStats `json:"epochs"`
	Phases   []string              `json:"phases"`
	// FinetuneSteps is the number of steps of the final fine-tuning phase
	// (mask fixed).
	FinetuneSteps int `json:"finetune_steps"`
	// RecalibratedBatches is the number of training batches the running
	// statistics were re-estimated over at the end (Config.RecalibrateBN).
	RecalibratedBatches int `json:"recalibrated_batches,omitempty"`
}

// Learn prunes m in place to cfg.Sparsity with cfg.Method, training on
// src: it learns the mask (C-SAM or a baseline), fine-tunes the kept
// weights, and leaves m with pruned weights set to exactly zero and its
// graph as it was (no mask nodes). It can be cancelled through ctx and
// resumed from cfg.CheckpointDir. With cfg.Granularity "channel" the
// pruned channels are instead removed physically (graph.RemoveChannels), so
// m comes back smaller.
func Learn(ctx context.Context, m *graph.Model, src finetune.Source, cfg Config, hooks Hooks) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Granularity == "channel" {
		return learnChannels(ctx, m, src, cfg, hooks)
	}
	layers, err := SelectLayers(m.Graph, cfg.Selection)
	if err != nil {
		return nil, err
	}
	density := 1 - cfg.Sparsity
	allocate(layers, density)
	bin := newBinarizer(layers, density, cfg.Global)
	if err := checkpointsMatch(cfg); err != nil {
		return nil, err
	}
	res, fh, phase := newRun(cfg, hooks)
	magnitudeMask := func() {
		MagnitudeScores(layers)
		bin.apply(layers, func(l *Layer) []float32 { return l.Score }, func(l *Layer) []float32 { return l.Mask })
	}
	ftEpochs := cfg.FinetuneEpochs
	ftSAM := 0.0

	switch cfg.Method {
	case "csam", "hydra":
		if err := search(ctx, m, layers, bin, src, cfg, phase("search", cfg.SearchEpochs), fh); err != nil {
			return nil, err
		}
	case "magnitude":
		magnitudeMask()
		ftEpochs += cfg.SearchEpochs
	case "flying-bird":
		magnitudeMask()
		if err := flyingBird(ctx, m, layers, src, cfg, phase("prune-regrow", cfg.SearchEpochs), fh); err != nil {
			return nil, err
		}
	case "prune-sam":
		magnitudeMask()
		ftEpochs += cfg.SearchEpochs
		ftSAM = cfg.SAMRho
	case "sam-prune":
		if err := trainPhase(ctx, m, nil, src, cfg, phase("dense-sam", cfg.SearchEpochs), cfg.SAMRho, nil, fh); err != nil {
			return nil, err
		}
		magnitudeMask()
	case "gmp":
		ftEpochs += cfg.SearchEpochs
		for _, l := range layers {
			for i := range l.Mask {
				l.Mask[i] = 1
			}
		}
	}

	var gradual func(it finetune.Iter)
	if cfg.Method == "gmp" {
		// Gradual magnitude pruning (Zhu & Gupta 2017): sparsity follows
		// s_t = s_f·(1 − (1 − t/T)^3) over the first 3/4 of fine-tuning,
		// re-pruning by magnitude every 1/40 of the ramp.
		total := ftEpochs * src.StepsPerEpoch()
		ramp := total * 3 / 4
		every := max(1, ramp/40)
		gradual = func(it finetune.Iter) {
			if it.Global%every != 0 || it.Global > ramp {
				return
			}
			t := float64(it.Global+every) / float64(ramp)
			if t > 1 {
				t = 1
			}
			s := cfg.Sparsity * (1 - math.Pow(1-t, 3))
			d := 1 - s
			for _, l := range layers {
				l.Keep = keepCount(d, len(l.W))
			}
			gb := newBinarizer(layers, d, cfg.Global)
			MagnitudeScores(layers)
			gb.apply(layers, func(l *Layer) []float32 { return l.Score }, func(l *Layer) []float32 { return l.Mask })
			for _, l := range layers {
				for i, mk := range l.Mask {
					if mk == 0 {
						l.W[i] = 0
					}
				}
			}
		}
	}
	masks := map[string][]float32{}
	for _, l := range layers {
		masks[l.Weight] = l.Mask
	}
	res.FinetuneSteps = ftEpochs * src.StepsPerEpoch()
	var changing []*Layer // masks the phase changes (gmp re-prunes them)
	if gradual != nil {
		changing = layers
	}
	if err := trainPhase(ctx, m, masks, src, cfg, phase("finetune", ftEpochs), ftSAM, gradual, fh, changing...); err != nil {
		return nil, err
	}
	if cfg.Method == "gmp" {
		// Make the final mask exact (the ramp ends at the target).
		for _, l := range layers {
			l.Keep = keepCount(density, len(l.W))
		}
		magnitudeMask()
	}

	kept, total := 0, 0
	for _, l := range layers {
		for i, mk := range l.Mask {
			if mk == 0 {
				l.W[i] = 0
			}
		}
		k := l.Kept()
		kept += k
		total += len(l.W)
		res.Layers = append(res.Layers, LayerResult{Weight: l.Weight, Node: l.Node, Params: len(l.W), Kept: k, Sparsity: 1 - float64(k)/float64(len(l.W))})
	}
	res.Sparsity = 1 - float64(kept)/float64(total)
	return res, recalibrate(ctx, m, src, cfg, res)
}

// recalibrate re-estimates m's running statistics when cfg asks for it
// and records how many batches it averaged.
func recalibrate(ctx context.Context, m *graph.Model, src finetune.Source, cfg Config, res *Result) error {
	if cfg.RecalibrateBN == 0 {
		return nil
	}
	n, err := finetune.RecalibrateBN(ctx, m, src, cfg.Batch, cfg.RecalibrateBN, cfg.Workers)
	if err != nil {
		return fmt.Errorf("csam: recalibrating BatchNormalization: %w", err)
	}
	res.RecalibratedBatches = n
	return nil
}

// newRun starts a Result for cfg and returns it with the hooks to pass to
// the phases (recording every epoch into the Result) and the function that
// opens a phase: it records the phase, tells OnPhase, and gives the loop
// configuration with its checkpoint file and the settings a resume must
// match (Config.resumeMeta).
func newRun(cfg Config, hooks Hooks) (*Result, finetune.Hooks, func(name string, epochs int) finetune.LoopConfig) {
	res := &Result{Method: cfg.Method}
	fh := hooks.Hooks
	fh.OnEpoch = func(e finetune.EpochStats) {
		// Losses in Extra are sums over the epoch's steps, like the flip
		// counts: report their mean.
		if v, ok := e.Extra["perturbed_loss"]; ok && e.Steps > 0 {
			e.Extra = maps.Clone(e.Extra)
			e.Extra["perturbed_loss"] = v / float64(e.Steps)
		}
		res.Epochs = append(res.Epochs, e)
		if hooks.OnEpoch != nil {
			hooks.OnEpoch(e)
		}
	}
	phase := func(name string, epochs int) finetune.LoopConfig {
		res.Phases = append(res.Phases, name)
		if hooks.OnPhase != nil {
			hooks.OnPhase(name, epochs)
		}
		lc := finetune.LoopConfig{Phase: name, Epochs: epochs, CheckpointEvery: cfg.CheckpointEvery, Resume: cfg.Resume, Meta: cfg.resumeMeta()}
		if cfg.CheckpointDir != "" {
			lc.CheckpointPath = filepath.Join(cfg.CheckpointDir, name+".ckpt")
		}
		return lc
	}
	return res, fh, phase
}

// checkpointsMatch refuses to resume from a checkpoint folder holding a
// phase of another run: each phase checks its own checkpoint when it
// starts, but a phase this run does not have (another method's search,
// say) would otherwise be passed over, and the folder removed at the end.
func checkpointsMatch(cfg Config) error {
	if !cfg.Resume || cfg.CheckpointDir == "" {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(cfg.CheckpointDir, "*.ckpt"))
	want := cfg.resumeMeta()
	for _, f := range files {
		ck, err := finetune.ReadCheckpoint(f)
		if err != nil {
			return fmt.Errorf("csam: %s: %w", f, err)
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if ck.Meta[k] != want[k] {
				return fmt.Errorf("csam: checkpoint %s was made with %s=%q, this run has %q; rerun with the same settings, or remove %s to start over", f, k, ck.Meta[k], want[k], cfg.CheckpointDir)
			}
		}
	}
	return nil
}

// trainPhase fine-tunes the weights of m (kept entries only when masks is
// set) with SGD, or SAM when samRho > 0.
//
// With before (gradual magnitude pruning's re-pruning hook), the masks
// change during the phase, so the checkpoint holds them too (maskLayers).
func trainPhase(ctx context.Context, m *graph.Model, masks map[string][]float32, src finetune.Source, cfg Config, lc finetune.LoopConfig, samRho float64, before func(finetune.Iter), hooks finetune.Hooks, maskLayers ...*Layer) error {
	if lc.Epochs == 0 {
		return nil
	}
	tr, err := finetune.NewTrainer(m, finetune.TrainConfig{
		Batch: cfg.Batch, Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay,
		LabelSmoothing: cfg.LabelSmoothing, Seed: cfg.Seed, Workers: cfg.Workers, Masks: masks, SAMRho: samRho,
		Schedule: finetune.Schedule{Kind: "cosine", Base: cfg.FinetuneLR, TotalSteps: lc.Epochs * src.StepsPerEpoch()},
	})
	if err != nil {
		return err
	}
	step := tr.Step
	if before != nil {
		step = func(ctx context.Context, it finetune.Iter, b finetune.Batch) (finetune.StepStats, error) {
			before(it)
			return tr.Step(ctx, it, b)
		}
	}
	var state finetune.State = tr
	if len(maskLayers) > 0 {
		state = &maskState{tr: tr, layers: maskLayers}
	}
	return finetune.Loop(ctx, lc, src, state, step, hooks)
}

// searcher is the mask-search phase: θ frozen, scores trained.
type searcher struct {
	cfg    Config
	layers []*Layer
	bin    *binarizer
	prog   *autodiff.Program
	masks  map[string]*tensor.Tensor // the mask initializers the graph reads
	vel    [][]float32
	pert   [][]float32 // C̃ buffers
	rng    *rand.Rand
	pcg    *rand.PCG // rng's source, checkpointed
	sched  finetune.Schedule
	hydra  bool
	// bufs are the BatchNormalization running statistics the search
	// updates (it runs in training mode), checkpointed with the scores.
	bufs map[string][]float32
	// With Config.JointWeights: the weights the search trains, their
	// optimizer and its schedule.
	wparams []finetune.Param
	wopt    *finetune.SGD
	wsched  finetune.Schedule
}

func search(ctx context.Context, m *graph.Model, layers []*Layer, bin *binarizer, src finetune.Source, cfg Config, lc finetune.LoopConfig, hooks finetune.Hooks) error {
	hydra := cfg.Method == "hydra"
	if hydra {
		HydraInit(layers)
	} else {
		PercentileInit(layers, 1-cfg.Sparsity, cfg.InitPercentile)
	}
	pcg := rand.NewPCG(cfg.Seed, 0xc5a3)
	s := &searcher{cfg: cfg, layers: layers, bin: bin, hydra: hydra, rng: rand.New(pcg), pcg: pcg,
		sched: finetune.Schedule{Kind: "cosine", Base: cfg.SearchLR, TotalSteps: lc.Epochs * src.StepsPerEpoch()}}
	if lc.Epochs > 0 {
		// The weights a joint search trains, listed before the mask nodes
		// stand between them and their Conv/Gemm/MatMul.
		var weights []string
		if cfg.JointWeights && !hydra {
			weights = finetune.TrainableParams(m.Graph)
			s.wopt = &finetune.SGD{Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay}
			s.wsched = finetune.Schedule{Kind: "cosine", Base: cfg.FinetuneLR, TotalSteps: lc.Epochs * src.StepsPerEpoch()}
		}
		masks, err := insertMaskNodes(m.Graph, layers)
		if err != nil {
			return err
		}
		defer removeMaskNodes(m.Graph, layers)
		s.masks = masks
		s.bufs = map[string][]float32{}
		for _, n := range finetune.BufferNames(m.Graph) {
			if in := m.Graph.Initializer(n); in != nil {
				s.bufs[n] = in.Value.F32
			}
		}
		var names []string
		for _, l := range layers {
			names = append(names, maskName(l.Weight))
			s.vel = append(s.vel, make([]float32, len(l.W)))
			s.pert = append(s.pert, make([]float32, len(l.W)))
		}
		shape, err := finetune.InputShape(m, cfg.Batch)
		if err != nil {
			return err
		}
		s.prog, err = autodiff.Compile(m, [][]int{shape}, &autodiff.Options{Params: slices.Concat(names, weights), Workers: cfg.Workers, Seed: cfg.Seed, Logits: true})
		if err != nil {
			return err
		}
		for _, n := range weights {
			s.wparams = append(s.wparams, finetune.Param{Name: n, W: m.Graph.Initializer(n).Value.F32, G: s.prog.Grad(n).F32})
		}
		s.prog.SetTraining(true)
		if err := finetune.Loop(ctx, lc, src, s, s.step, hooks); err != nil {
			return err
		}
	}
	// The final mask: top-k of the learned scores (|s| for HYDRA).
	s.bin.apply(layers, s.scoreForTopK, func(l *Layer) []float32 { return l.Mask })
	return nil
}

// HydraInit sets scores to HYDRA's scaled init s = √(6/fan_in)·θ/max|θ|
// per layer (CSAM-SPEC §2.7).
func HydraInit(layers []*Layer) {
	for _, l := range layers {
		fanIn := len(l.W) / l.Shape[0]
		maxAbs := 0.0
		for _, w := range l.W {
			maxAbs = math.Max(maxAbs, math.Abs(float64(w)))
		}
		if maxAbs == 0 {
			maxAbs = 1
		}
		scale := math.Sqrt(6/float64(fanIn)) / maxAbs
		for i, w := range l.W {
			l.Score[i] = float32(float64(w) * scale)
		}
	}
}

func (s *searcher) scoreForTopK(l *Layer) []float32 {
	if !s.hydra {
		return l.Score
	}
	// Not l.work: the binarizer uses that as its scratch space, and a score
	// slice aliasing it would be reordered under the selection.
	if l.abs == nil {
		l.abs = make([]float32, len(l.Score))
	}
	for i, v := range l.Score {
		l.abs[i] = float32(math.Abs(float64(v)))
	}
	return l.abs
}

// setMasks copies per-layer masks into the graph's mask tensors.
func (s *searcher) setMasks(src func(i int, l *Layer) []float32) {
	for i, l := range s.layers {
		copy(s.masks[l.Weight].F32, src(i, l))
	}
}

func (s *searcher) grad(l *Layer) []float32 { return s.prog.Grad(maskName(l.Weight)).F32 }

// step is one mask-search step: CSAM-SPEC §2.4 (variant A) and §2.5
// (B–E), or HYDRA's score update.
//
// A pass whose loss is NaN or infinite ends the step before it changes
// the scores, with that loss in the stats: finetune.Loop then stops with
// finetune.ErrNonFinite and keeps the last good checkpoint.
func (s *searcher) step(ctx context.Context, it finetune.Iter, b finetune.Batch) (finetune.StepStats, error) {
	cfg := s.cfg
	lr := s.sched.At(it.Global)
	stats := finetune.StepStats{Count: len(b.Labels), Extra: map[string]float64{}}

	if s.hydra {
		// Hydra: edge-popup top-k of |s| with a straight-through gradient,
		// chain rule through |·| gives sign(s)·g.
		s.bin.apply(s.layers, s.scoreForTopK, func(l *Layer) []float32 { return l.Mask })
		s.setMasks(func(_ int, l *Layer) []float32 { return l.Mask })
		loss, correct, err := finetune.ForwardBackward(s.prog, b, cfg.LabelSmoothing)
		if err != nil {
			return stats, err
		}
		stats.Loss, stats.Correct = loss, correct
		for i, l := range s.layers {
			g := s.grad(l)
			for j := range g {
				if l.Score[j] < 0 {
					g[j] = -g[j]
				}
			}
			sgdUpdate(l.Score, g, s.vel[i], lr, cfg.SearchMomentum, false)
		}
		return stats, nil
	}

	// (a)+(b): loss and mask gradient at the current mask M = B(C).
	var binScore func(*Layer) []float32
	if cfg.Variant == "D" {
		// Threshold binarizer: M = 1[C ≥ 0.5].
		for _, l := range s.layers {
			threshold(l.Mask, l.Score)
		}
	} else {
		binScore = func(l *Layer) []float32 { return l.Score }
		s.bin.apply(s.layers, binScore, func(l *Layer) []float32 { return l.Mask })
	}

	if cfg.Variant == "E" {
		// Bernoulli mask M̃ = 1[u < C], one pass, straight-through.
		for i, l := range s.layers {
			p := s.pert[i]
			for j, c := range l.Score {
				if s.rng.Float32() < c {
					p[j] = 1
				} else {
					p[j] = 0
				}
			}
		}
		s.setMasks(func(i int, _ *Layer) []float32 { return s.pert[i] })
		s.countFlips(stats.Extra)
		loss, correct, err := finetune.ForwardBackward(s.prog, b, cfg.LabelSmoothing)
		if err != nil {
			return stats, err
		}
		stats.Loss, stats.Correct = loss, correct
		s.update(lr, it)
		return stats, nil
	}

	// Variant C perturbs with uniform noise only: no gradient pass.
	needFirst := cfg.Variant != "C"
	var loss0 float64
	var correct0 int
	if needFirst {
		s.setMasks(func(_ int, l *Layer) []float32 { return l.Mask })
		var err error
		if loss0, correct0, err = finetune.ForwardBackward(s.prog, b, cfg.LabelSmoothing); err != nil {
			return stats, err
		}
		if nonFinite(loss0) {
			// Its gradient would make every perturbed score NaN; the
			// loop stops on this loss and keeps the last good checkpoint.
			stats.Loss = loss0
			return stats, nil
		}
	}

	// (c): the perturbed mask.
	switch cfg.Variant {
	case "B":
		s.hammingPerturb()
	default:
		s.continuousPerturb(needFirst)
		if cfg.Variant == "D" {
			for i := range s.layers {
				threshold(s.pert[i], s.pert[i])
			}
		} else {
			s.bin.apply(s.layers, func(l *Layer) []float32 {
				return s.pert[s.indexOf(l)]
			}, func(l *Layer) []float32 { return s.pert[s.indexOf(l)] })
		}
	}
	s.setMasks(func(i int, _ *Layer) []float32 { return s.pert[i] })
	s.countFlips(stats.Extra)

	// (d): gradient at the perturbed structure; (e): apply it at C. When
	// the first pass ran, it already moved the BatchNormalization running
	// statistics for this step.
	s.prog.SetFreezeRunningStats(needFirst)
	loss, correct, err := finetune.ForwardBackward(s.prog, b, cfg.LabelSmoothing)
	s.prog.SetFreezeRunningStats(false)
	if err != nil {
		return stats, err
	}
	if nonFinite(loss) {
		// Not applied: NaN scores would be pruned for good, silently.
		stats.Loss = loss
		return stats, nil
	}
	// Report the loss and accuracy at the current mask, as SAM reports the
	// loss at w; the loss at the perturbed structure goes to Extra.
	stats.Extra["perturbed_loss"] = loss
	stats.Loss, stats.Correct = loss, correct
	if needFirst {
		stats.Loss, stats.Correct = loss0, correct0
	}
	if cfg.Variant == "D" && cfg.LambdaSp > 0 {
		s.sparsityPenalty(&stats)
	}
	s.update(lr, it)
	return stats, nil
}

func (s *searcher) indexOf(l *Layer) int {
	for i, x := range s.layers {
		if x == l {
			return i
		}
	}
	panic("csam: layer not found")
}

// continuousPerturb writes C̃ = clip(C + ξ + ε) into s.pert (variants A, C,
// D); see perturbScores.
func (s *searcher) continuousPerturb(haveGrad bool) {
	var grad func(int) []float32
	if haveGrad && s.cfg.Variant != "C" {
		grad = func(i int) []float32 { return s.grad(s.layers[i]) }
	}
	perturbScores(&s.cfg, s.rng, s.pert, func(i int) []float32 { return s.layers[i].Score }, grad)
}

// perturbScores writes into dst[i] the perturbed scores of group i (a
// layer's scores, or a channel group's): C̃ = clip(C + ε + ξ) into [0, 1].
// ε (when grad is not nil and ρ > 0) is the first pass's gradient scaled
// to radius ρ: per group by its RMS ("layer"), over all groups ("global"),
// or ASAM-style with T = |C| + 0.01 ("adaptive"), as in CSAM-SPEC §2.4.
// ξ ~ U(−a, a) with a = MaskNoise (variant C: 0.05 when unset), drawn
// group by group, element by element.
func perturbScores(cfg *Config, rng *rand.Rand, dst [][]float32, score, grad func(i int) []float32) {
	var globalNorm float64
	if grad != nil && cfg.RhoNorm != "layer" {
		for i := range dst {
			c := score(i)
			for j, v := range grad(i) {
				x := float64(v)
				if cfg.RhoNorm == "adaptive" {
					x *= math.Abs(float64(c[j])) + 0.01
				}
				globalNorm += x * x
			}
		}
		globalNorm = math.Sqrt(globalNorm)
	}
	a := cfg.MaskNoise
	if cfg.Variant == "C" && a == 0 {
		a = 0.05
	}
	for i, p := range dst {
		c := score(i)
		copy(p, c)
		if grad != nil && cfg.Rho > 0 {
			g := grad(i)
			switch cfg.RhoNorm {
			case "global":
				scale := cfg.Rho / (globalNorm + 1e-12)
				for j, v := range g {
					p[j] += float32(scale * float64(v))
				}
			case "adaptive":
				scale := cfg.Rho / (globalNorm + 1e-12)
				for j, v := range g {
					t := math.Abs(float64(c[j])) + 0.01
					p[j] += float32(scale * t * t * float64(v))
				}
			default: // "layer": RMS perturbation ρ within the group
				var n float64
				for _, v := range g {
					n += float64(v) * float64(v)
				}
				scale := cfg.Rho * math.Sqrt(float64(len(g))) / (math.Sqrt(n) + 1e-12)
				for j, v := range g {
					p[j] += float32(scale * float64(v))
				}
			}
		}
		for j := range p {
			if a > 0 {
				p[j] += float32((2*rng.Float64() - 1) * a)
			}
			p[j] = clip01(p[j])
		}
	}
}

// hammingPerturb writes into s.pert the mask M with the r = ⌈ρ_H·κ·N_l⌉
// kept entries of largest first-order loss increase Δ_i = g_i·(1 − 2M_i)
// pruned, and as many pruned entries of largest Δ revived (only Δ > 0), so
// the density stays exactly constant (variant B).
func (s *searcher) hammingPerturb() {
	for i, l := range s.layers {
		p := s.pert[i]
		copy(p, l.Mask)
		g := s.grad(l)
		r := hammingRadius(s.cfg.RhoHamming, 1-s.cfg.Sparsity, len(l.W))
		if r == 0 {
			continue
		}
		kept := s.topDelta(l, g, 1, r)
		pruned := s.topDelta(l, g, 0, r)
		n := min(len(kept), len(pruned))
		for _, j := range kept[:n] {
			p[j] = 0
		}
		for _, j := range pruned[:n] {
			p[j] = 1
		}
	}
}

// hammingRadius is the number of flips per direction of variant B,
// r = ⌈ρ_H·κ·N_l⌉ (CSAM-SPEC §2.5), with the same 1e-9 guard as keepCount
// so that a product that is an integer up to rounding is not rounded up.
func hammingRadius(rhoH, density float64, n int) int {
	return max(0, int(math.Ceil(rhoH*density*float64(n)-1e-9)))
}

// topDelta returns up to r indices with mask value m and the largest
// positive Δ = g·(1 − 2m), largest first.
func (s *searcher) topDelta(l *Layer, g []float32, m float32, r int) []int {
	sign := float32(1 - 2*m)
	scores := l.work
	cand := 0
	for j, mk := range l.Mask {
		d := g[j] * sign
		if mk == m && d > 0 {
			scores[j] = d
			cand++
		} else {
			scores[j] = float32(math.Inf(-1))
		}
	}
	r = min(r, cand)
	if r == 0 {
		return nil
	}
	sel := make([]float32, len(scores))
	tmp := make([]float32, len(scores))
	topKMask(sel, scores, tmp, r)
	out := make([]int, 0, r)
	for j, v := range sel {
		if v != 0 {
			out = append(out, j)
		}
	}
	return out
}

// countFlips records kept→pruned and pruned→kept flips between M and the
// perturbed mask (the diagnostic of CSAM-SPEC §2.4).
func (s *searcher) countFlips(extra map[string]float64) {
	var kp, pk float64
	for i, l := range s.layers {
		p := s.pert[i]
		for j, m := range l.Mask {
			switch {
			case m != 0 && p[j] == 0:
				kp++
			case m == 0 && p[j] != 0:
				pk++
			}
		}
	}
	extra["flips_kept_to_pruned"] = kp
	extra["flips_pruned_to_kept"] = pk
}

// sparsityPenalty adds λ_sp·(mean(C) − κ)² to the loss and its gradient to
// the mask gradients (variant D).
func (s *searcher) sparsityPenalty(st *finetune.StepStats) {
	var sum float64
	n := 0
	for _, l := range s.layers {
		for _, c := range l.Score {
			sum += float64(c)
		}
		n += len(l.Score)
	}
	mean := sum / float64(n)
	diff := mean - (1 - s.cfg.Sparsity)
	st.Loss += s.cfg.LambdaSp * diff * diff
	gp := float32(2 * s.cfg.LambdaSp * diff / float64(n))
	for _, l := range s.layers {
		g := s.grad(l)
		for j := range g {
			g[j] += gp
		}
	}
}

// update applies the gradients of the last pass (§2.4 (e): the gradient at
// the perturbed mask, applied at C): momentum SGD on the scores, clipped to
// [0, 1], and, with joint weights, on the weights at the search step it.
func (s *searcher) update(lr float64, it finetune.Iter) {
	for i, l := range s.layers {
		sgdUpdate(l.Score, s.grad(l), s.vel[i], lr, s.cfg.SearchMomentum, true)
	}
	if s.wopt != nil {
		s.wopt.Step(s.wparams, s.wsched.At(it.Global))
	}
}

func sgdUpdate(w, g, v []float32, lr, mu float64, clip bool) {
	l, m := float32(lr), float32(mu)
	for j := range w {
		v[j] = m*v[j] + g[j]
		x := w[j] - l*v[j]
		if clip {
			x = clip01(x)
		}
		w[j] = x
	}
}

func threshold(dst, c []float32) {
	for j, v := range c {
		if v >= 0.5 {
			dst[j] = 1
		} else {
			dst[j] = 0
		}
	}
}

func clip01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// Snapshot returns scores and score velocities for a checkpoint.
func (s *searcher) Snapshot() map[string][]float32 {
	out := map[string][]float32{}
	for i, l := range s.layers {
		out["score."+l.Weight] = l.Score
		out["vel."+l.Weight] = s.vel[i]
	}
	for n, v := range s.bufs {
		out["buf."+n] = v
	}
	if s.wopt != nil {
		for k, v := range s.wopt.State() {
			out[k] = v
		}
		for _, p := range s.wparams {
			out["w."+p.Name] = p.W
		}
	}
	saveStreams(out, s.pcg, s.prog)
	return out
}

// saveStreams puts a search's random streams into its checkpoint: its own
// (mask noise, variants C and E) and the program's (training-mode
// Dropout), so a resumed search draws what an uninterrupted one would.
func saveStreams(out map[string][]float32, pcg *rand.PCG, prog *autodiff.Program) {
	b, _ := pcg.MarshalBinary() // never fails
	out["rng.search"] = finetune.StateBytes(b)
	if prog != nil {
		out["rng.program"] = finetune.StateBytes(prog.RNGState())
	}
}

// restoreStreams is saveStreams' inverse; a checkpoint without them
// (written before 2026-11-28) leaves the streams as they are.
func restoreStreams(m map[string][]float32, pcg *rand.PCG, prog *autodiff.Program) error {
	if err := finetune.RestoreRNG(m, "rng.search", pcg.UnmarshalBinary); err != nil {
		return err
	}
	if prog == nil {
		return nil
	}
	return finetune.RestoreRNG(m, "rng.program", prog.SetRNGState)
}

// Restore loads a Snapshot.
func (s *searcher) Restore(m map[string][]float32) error {
	for i, l := range s.layers {
		sc, v := m["score."+l.Weight], m["vel."+l.Weight]
		if len(sc) != len(l.Score) || len(v) != len(s.vel[i]) {
			return fmt.Errorf("csam: checkpoint does not match layer %q", l.Weight)
		}
		copy(l.Score, sc)
		copy(s.vel[i], v)
	}
	for n, dst := range s.bufs {
		v := m["buf."+n]
		if len(v) != len(dst) {
			return fmt.Errorf("csam: checkpoint does not match buffer %q", n)
		}
		copy(dst, v)
	}
	if s.wopt != nil {
		for _, p := range s.wparams {
			v := m["w."+p.Name]
			if len(v) != len(p.W) {
				return fmt.Errorf("csam: checkpoint has no trained weight %q (made without joint weights?)", p.Name)
			}
			copy(p.W, v)
		}
		s.wopt.Restore(m)
	}
	return restoreStreams(m, s.pcg, s.prog)
}

// nonFinite reports whether a loss is NaN or infinite.
func nonFinite(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

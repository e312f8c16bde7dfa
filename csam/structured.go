package csam

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Structured (channel) pruning: --granularity channel.
//
// The unit pruned is one channel of a dependency group (graph.ChannelGroups):
// removing it removes a filter from every Conv that produces the group, the
// matching BatchNormalization entries, and the input slices of every
// consumer. Each group keeps ⌈κ·C⌉ of its C channels (layer-wise top-k, one
// "layer" per group).
//
// Scores. Magnitude-based methods rank a group's channels by the L1 norm of
// their filters, summed over the group's Convs. C-SAM keeps one soft mask
// entry per channel, initialized by the percentile rule (CSAM-SPEC §2.2)
// from those filter norms, and runs the variant-A step of §2.4 at the
// channel level. The binary channel mask is applied as a per-channel Mul
// on the values the group's consumers read (the next Convs' inputs, the
// classifier's input), which computes what removing the channels computes,
// and the straight-through mask gradient is Σ_{n,h,w} ∂L/∂x ⊙ x there.
// Masking the conv filters instead would give a zero gradient (training-
// mode BatchNormalization undoes any rescaling of its input), and masking
// right after the BatchNormalization would give pruned channels a zero
// gradient (ReLU'(0) = 0), so they could never come back.
//
// Fine-tuning freezes the pruned channels at zero (their filter rows,
// biases and BatchNormalization scale and shift), and the model is then
// shrunk with graph.RemoveChannels: the exported model is a smaller dense
// model computing exactly what the fine-tuned masked model computes.

// ChannelMethods lists the methods that support channel granularity.
func ChannelMethods() []string { return []string{"csam", "magnitude", "sam-prune", "prune-sam"} }

// channelGroup is one prunable group and its scores.
type channelGroup struct {
	cg    graph.ChannelGroup
	norms []float32 // L1 norm of each channel's filters
	score []float32
	mask  []float32
	keep  int
	work  []float32
}

// SelectChannelGroups returns the channel groups of m that structured
// pruning will prune, honoring sel (SkipFirst leaves the group of the first
// Conv whole, SkipLast the groups feeding the classifier). It fails, naming
// the reasons, when there is none.
func SelectChannelGroups(m *graph.Model, sel Selection) ([]graph.ChannelGroup, error) {
	gs, err := graph.ChannelGroups(m)
	if err != nil {
		return nil, fmt.Errorf("csam: channel groups: %w", err)
	}
	firstConv := ""
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Conv" {
			firstConv = n.Name
			break
		}
	}
	var out []graph.ChannelGroup
	var why []string
	for _, g := range gs {
		if !g.Prunable {
			why = append(why, fmt.Sprintf("%s: %s", graph.ChannelGroupName(&g), g.Reason))
			continue
		}
		if sel.SkipFirst && hasSource(&g, firstConv) {
			continue
		}
		if sel.SkipLast && feedsClassifier(m.Graph, &g) {
			continue
		}
		out = append(out, g)
	}
	if len(out) == 0 {
		msg := "csam: the model has no prunable channel group"
		if len(why) > 0 {
			if len(why) > 5 {
				why = append(why[:5], fmt.Sprintf("and %d more", len(why)-5))
			}
			msg += " (" + strings.Join(why, "; ") + ")"
		}
		return nil, fmt.Errorf("%s; use --granularity weight", msg)
	}
	return out, nil
}

func hasSource(g *graph.ChannelGroup, node string) bool {
	for _, s := range g.Sources {
		if s.Node == node {
			return true
		}
	}
	return false
}

func feedsClassifier(gr *graph.Graph, g *graph.ChannelGroup) bool {
	ops := map[string]string{}
	for _, n := range gr.Nodes {
		ops[n.Name] = n.OpType
	}
	for _, s := range g.Slices {
		if op := ops[s.Node]; op == "Gemm" || op == "MatMul" {
			return true
		}
	}
	return false
}

// filterNorms returns, per channel, the L1 norm of the group's filters
// (the weight rows of every Conv producing the group).
func filterNorms(gr *graph.Graph, g *graph.ChannelGroup) []float32 {
	out := make([]float32, g.Channels)
	for _, s := range g.Sources {
		w := gr.Initializer(s.Weight).Value
		row := tensor.Numel(w.Shape[1:])
		for c := 0; c < g.Channels; c++ {
			var sum float64
			for _, v := range w.F32[c*row : (c+1)*row] {
				sum += math.Abs(float64(v))
			}
			out[c] += float32(sum)
		}
	}
	return out
}

// learnChannels is Learn for cfg.Granularity == "channel". The Result has
// one Layers entry per pruned channel group: Weight is the group's name
// (graph.ChannelGroupName: its first Conv, "+n" for n more tied to it),
// Node its first Conv, and Params and Kept count channels; Sparsity is the
// fraction of channels removed over all pruned groups.
func learnChannels(ctx context.Context, m *graph.Model, src finetune.Source, cfg Config, hooks Hooks) (*Result, error) {
	switch cfg.Method {
	case "csam", "magnitude", "sam-prune", "prune-sam":
	default:
		return nil, fmt.Errorf("csam: method %q does not support --granularity channel (use one of %s)", cfg.Method, strings.Join(ChannelMethods(), ", "))
	}
	if cfg.Method == "csam" && cfg.Variant != "A" && cfg.Variant != "B" && cfg.Variant != "C" {
		return nil, fmt.Errorf("csam: C-SAM variant %s does not support --granularity channel (use A, B or C)", cfg.Variant)
	}
	if cfg.Global {
		return nil, fmt.Errorf("csam: --global does not apply to --granularity channel: filter norms of different groups are not comparable; every group keeps ⌈κ·C⌉ channels")
	}
	sel, err := SelectChannelGroups(m, cfg.Selection)
	if err != nil {
		return nil, err
	}
	density := 1 - cfg.Sparsity
	groups := make([]*channelGroup, len(sel))
	for i, g := range sel {
		groups[i] = &channelGroup{cg: g, score: make([]float32, g.Channels), mask: make([]float32, g.Channels),
			work: make([]float32, g.Channels), keep: keepCount(density, g.Channels)}
	}
	if err := checkpointsMatch(cfg); err != nil {
		return nil, err
	}
	res, fh, phase := newRun(cfg, hooks)
	magnitude := func() {
		for _, g := range groups {
			g.norms = filterNorms(m.Graph, &g.cg)
			copy(g.score, g.norms)
			topKMask(g.mask, g.score, g.work, g.keep)
		}
	}
	ftEpochs, ftSAM := cfg.FinetuneEpochs, 0.0
	switch cfg.Method {
	case "csam":
		for _, g := range groups {
			g.norms = filterNorms(m.Graph, &g.cg)
		}
		channelPercentileInit(groups, density, cfg.InitPercentile)
		if err := searchChannels(ctx, m, groups, src, cfg, phase("search", cfg.SearchEpochs), fh); err != nil {
			return nil, err
		}
	case "magnitude":
		magnitude()
		ftEpochs += cfg.SearchEpochs
	case "prune-sam":
		magnitude()
		ftEpochs += cfg.SearchEpochs
		ftSAM = cfg.SAMRho
	case "sam-prune":
		if err := trainPhase(ctx, m, nil, src, cfg, phase("dense-sam", cfg.SearchEpochs), cfg.SAMRho, nil, fh); err != nil {
			return nil, err
		}
		magnitude()
	}

	// Fine-tune with the pruned channels frozen at zero.
	masks := zeroPrunedChannels(m.Graph, groups)
	res.FinetuneSteps = ftEpochs * src.StepsPerEpoch()
	if err := trainPhase(ctx, m, masks, src, cfg, phase("finetune", ftEpochs), ftSAM, nil, fh); err != nil {
		return nil, err
	}

	keep := map[int][]int{}
	kept, total := 0, 0
	for _, g := range groups {
		var k []int
		for c, v := range g.mask {
			if v != 0 {
				k = append(k, c)
			}
		}
		keep[g.cg.ID] = k
		kept += len(k)
		total += g.cg.Channels
		res.Layers = append(res.Layers, LayerResult{Weight: graph.ChannelGroupName(&g.cg), Node: g.cg.Sources[0].Node,
			Params: g.cg.Channels, Kept: len(k), Sparsity: 1 - float64(len(k))/float64(g.cg.Channels)})
	}
	res.Sparsity = 1 - float64(kept)/float64(total)
	if err := graph.RemoveChannels(m, keep); err != nil {
		return nil, fmt.Errorf("csam: removing pruned channels: %w", err)
	}
	return res, recalibrate(ctx, m, src, cfg, res)
}

// channelPercentileInit sets each group's soft mask to
// clip(a / Q(a, τ), 0, 1) with a the filter norms and τ as in
// PercentileInit (CSAM-SPEC §2.2 at the channel level).
func channelPercentileInit(groups []*channelGroup, density, tau float64) {
	tau = initPercentile(density, tau)
	for _, g := range groups {
		copy(g.work, g.norms)
		q := math.Max(percentile(g.work, tau), 1e-12)
		for c, a := range g.norms {
			g.score[c] = float32(math.Min(float64(a)/q, 1))
		}
	}
}

// zeroPrunedChannels zeroes the Zero slices (filter rows, biases,
// BatchNormalization scale and shift) of every pruned channel and returns
// the fine-tuning masks that keep them at zero, keyed by initializer.
func zeroPrunedChannels(gr *graph.Graph, groups []*channelGroup) map[string][]float32 {
	masks := map[string][]float32{}
	for _, g := range groups {
		for _, s := range g.cg.Slices {
			if !s.Zero {
				continue
			}
			v := gr.Initializer(s.Tensor).Value
			mk := masks[s.Tensor]
			if mk == nil {
				mk = make([]float32, len(v.F32))
				for i := range mk {
					mk[i] = 1
				}
				masks[s.Tensor] = mk
			}
			outer := tensor.Numel(v.Shape[:s.Axis])
			inner := tensor.Numel(v.Shape[s.Axis+1:])
			for c, keep := range g.mask {
				if keep != 0 {
					continue
				}
				for o := 0; o < outer; o++ {
					for j := 0; j < s.Block; j++ {
						base := (o*v.Shape[s.Axis] + (s.Offset+c)*s.Block + j) * inner
						clear(v.F32[base : base+inner])
						clear(mk[base : base+inner])
					}
				}
			}
		}
	}
	return masks
}

// Channel mask points in the training graph.

func chMaskName(v string) string   { return v + "::csam_chmask" }
func chMaskedName(v string) string { return v + "::csam_chmasked" }

// chPoint is one mask tensor in the graph and the group segments it holds.
type chPoint struct {
	value string
	mask  *tensor.Tensor
	segs  []chSeg
}

type chSeg struct {
	group  int // index into groups
	offset int
	block  int
}

// insertChannelMasks adds, after each mask point of the groups, a Mul by a
// per-channel mask initializer [1, C, 1, ...] (ones), and rewires the
// point's readers to the masked value.
func insertChannelMasks(gr *graph.Graph, groups []*channelGroup) ([]*chPoint, error) {
	byValue := map[string]*chPoint{}
	var points []*chPoint
	for gi, g := range groups {
		for _, p := range g.cg.Points {
			cp := byValue[p.Value]
			if cp == nil {
				if gr.Initializer(chMaskName(p.Value)) != nil {
					return nil, fmt.Errorf("csam: the model already has a channel mask for %q", p.Value)
				}
				shape := make([]int, p.Rank)
				for i := range shape {
					shape[i] = 1
				}
				shape[1] = p.Channels * p.Block
				t := tensor.New(shape...)
				for i := range t.F32 {
					t.F32[i] = 1
				}
				cp = &chPoint{value: p.Value, mask: t}
				byValue[p.Value] = cp
				points = append(points, cp)
			}
			cp.segs = append(cp.segs, chSeg{group: gi, offset: p.Offset, block: p.Block})
		}
	}
	var nodes []*graph.Node
	for _, n := range gr.Nodes {
		for i, in := range n.Inputs {
			if byValue[in] != nil {
				n.Inputs[i] = chMaskedName(in)
			}
		}
		nodes = append(nodes, n)
		for _, o := range n.Outputs {
			if cp := byValue[o]; cp != nil {
				gr.Initializers = append(gr.Initializers, &graph.Initializer{Name: chMaskName(o), Value: cp.mask})
				nodes = append(nodes, &graph.Node{Name: o + "::csam_chmul", OpType: "Mul",
					Inputs: []string{o, chMaskName(o)}, Outputs: []string{chMaskedName(o)}})
			}
		}
	}
	gr.Nodes = nodes
	return points, nil
}

// removeChannelMasks undoes insertChannelMasks.
func removeChannelMasks(gr *graph.Graph, points []*chPoint) {
	masked := map[string]string{}
	maskInit := map[string]bool{}
	for _, p := range points {
		masked[chMaskedName(p.value)] = p.value
		maskInit[chMaskName(p.value)] = true
	}
	nodes := gr.Nodes[:0]
	for _, n := range gr.Nodes {
		if n.OpType == "Mul" && len(n.Outputs) == 1 && masked[n.Outputs[0]] != "" {
			continue
		}
		for i, in := range n.Inputs {
			if v := masked[in]; v != "" {
				n.Inputs[i] = v
			}
		}
		nodes = append(nodes, n)
	}
	gr.Nodes = nodes
	inits := gr.Initializers[:0]
	for _, in := range gr.Initializers {
		if !maskInit[in.Name] {
			inits = append(inits, in)
		}
	}
	gr.Initializers = inits
}

// chSearcher is the channel-level mask search: θ frozen, channel scores
// trained with the C-SAM step.
type chSearcher struct {
	cfg    Config
	groups []*channelGroup
	points []*chPoint
	prog   *autodiff.Program
	grads  [][]float32 // per group: Σ over its points of the mask gradient
	pert   [][]float32 // per group: perturbed mask M̃
	soft   [][]float32 // per group: C̃
	vel    [][]float32
	rng    *rand.Rand
	pcg    *rand.PCG // rng's source, checkpointed
	sched  finetune.Schedule
}

func searchChannels(ctx context.Context, m *graph.Model, groups []*channelGroup, src finetune.Source, cfg Config, lc finetune.LoopConfig, hooks finetune.Hooks) error {
	pcg := rand.NewPCG(cfg.Seed, 0xc5a4)
	s := &chSearcher{cfg: cfg, groups: groups, rng: rand.New(pcg), pcg: pcg,
		sched: finetune.Schedule{Kind: "cosine", Base: cfg.SearchLR, TotalSteps: lc.Epochs * src.StepsPerEpoch()}}
	for _, g := range groups {
		s.grads = append(s.grads, make([]float32, g.cg.Channels))
		s.pert = append(s.pert, make([]float32, g.cg.Channels))
		s.soft = append(s.soft, make([]float32, g.cg.Channels))
		s.vel = append(s.vel, make([]float32, g.cg.Channels))
	}
	if lc.Epochs > 0 {
		points, err := insertChannelMasks(m.Graph, groups)
		if err != nil {
			return err
		}
		defer removeChannelMasks(m.Graph, points)
		s.points = points
		var names []string
		for _, p := range points {
			names = append(names, chMaskName(p.value))
		}
		shape, err := finetune.InputShape(m, cfg.Batch)
		if err != nil {
			return err
		}
		s.prog, err = autodiff.Compile(m, [][]int{shape}, &autodiff.Options{Params: names, Workers: cfg.Workers, Seed: cfg.Seed, Logits: true})
		if err != nil {
			return err
		}
		// Batch statistics, but the model's running statistics stay as
		// they were: the search changes nothing but the scores.
		s.prog.SetTraining(true)
		s.prog.SetFreezeRunningStats(true)
		if err := finetune.Loop(ctx, lc, src, s, s.step, hooks); err != nil {
			return err
		}
	}
	for _, g := range groups {
		g.binarize(g.mask, g.score)
	}
	return nil
}

// binarize writes into dst the group's top-k mask of scores: its keep
// largest, ties broken by filter norm (then index). As for weights
// (topKMaskMag), every kept channel of the clipped soft mask sits at 1,
// and a pruned channel pushed to 1 joins that tie; by index alone it
// would evict the group's last kept channels whatever their filters.
func (g *channelGroup) binarize(dst, scores []float32) {
	topKMaskMag(dst, scores, g.norms, g.work, g.keep)
}

// setMasks writes per-group channel masks into the graph's mask tensors.
func (s *chSearcher) setMasks(src func(gi int) []float32) {
	for _, p := range s.points {
		for _, sg := range p.segs {
			for c, v := range src(sg.group) {
				dst := p.mask.F32[(sg.offset+c)*sg.block : (sg.offset+c+1)*sg.block]
				for j := range dst {
					dst[j] = v
				}
			}
		}
	}
}

// gatherGrads sums, per group, the mask gradient over its points.
func (s *chSearcher) gatherGrads() {
	for _, g := range s.grads {
		clear(g)
	}
	for _, p := range s.points {
		gr := s.prog.Grad(chMaskName(p.value)).F32
		for _, sg := range p.segs {
			dst := s.grads[sg.group]
			for c := range dst {
				for _, v := range gr[(sg.offset+c)*sg.block : (sg.offset+c+1)*sg.block] {
					dst[c] += v
				}
			}
		}
	}
}

// step is one channel-level C-SAM step (CSAM-SPEC §2.4 variant A; B and C
// of §2.5), with each group as a layer.
func (s *chSearcher) step(ctx context.Context, it finetune.Iter, b finetune.Batch) (finetune.StepStats, error) {
	cfg := s.cfg
	stats := finetune.StepStats{Count: len(b.Labels), Extra: map[string]float64{}}
	for _, g := range s.groups {
		g.binarize(g.mask, g.score)
	}
	// Variant C perturbs with uniform noise only: no gradient pass.
	needFirst := cfg.Variant != "C"
	if needFirst {
		// (a)+(b): loss and mask gradient at M = B(C).
		s.setMasks(func(gi int) []float32 { return s.groups[gi].mask })
		loss0, _, err := finetune.ForwardBackward(s.prog, b, cfg.LabelSmoothing)
		if err != nil {
			return stats, err
		}
		if nonFinite(loss0) {
			// The loop stops on it (finetune.ErrNonFinite) before the
			// scores change.
			stats.Loss = loss0
			return stats, nil
		}
		s.gatherGrads()
	}
	// (c): the perturbed structure M̃: variant B flips channels by their
	// gradient; A and C binarize the perturbed scores (perturbScores).
	if cfg.Variant == "B" {
		for gi, g := range s.groups {
			s.hamming(g, s.grads[gi], s.pert[gi])
		}
	} else {
		var grad func(int) []float32
		if needFirst && cfg.Variant == "A" {
			grad = func(gi int) []float32 { return s.grads[gi] }
		}
		perturbScores(&s.cfg, s.rng, s.soft, func(gi int) []float32 { return s.groups[gi].score }, grad)
		for gi, g := range s.groups {
			g.binarize(s.pert[gi], s.soft[gi])
		}
	}
	var kp, pk float64
	for gi, g := range s.groups {
		for c, mk := range g.mask {
			switch p := s.pert[gi][c]; {
			case mk != 0 && p == 0:
				kp++
			case mk == 0 && p != 0:
				pk++
			}
		}
	}
	stats.Extra["flips_kept_to_pruned"] = kp
	stats.Extra["flips_pruned_to_kept"] = pk
	// (d): gradient at M̃; (e): applied at C.
	s.setMasks(func(gi int) []float32 { return s.pert[gi] })
	loss, correct, err := finetune.ForwardBackward(s.prog, b, cfg.LabelSmoothing)
	if err != nil {
		return stats, err
	}
	stats.Loss, stats.Correct = loss, correct
	if nonFinite(loss) {
		return stats, nil
	}
	s.gatherGrads()
	lr := s.sched.At(it.Global)
	for gi, g := range s.groups {
		sgdUpdate(g.score, s.grads[gi], s.vel[gi], lr, cfg.SearchMomentum, true)
	}
	return stats, nil
}

// hamming writes into p the mask with the r = ⌈ρ_H·κ·C⌉ kept channels of
// largest first-order loss increase Δ = g·(1 − 2M) pruned and as many
// pruned channels of largest positive Δ revived (variant B).
func (s *chSearcher) hamming(g *channelGroup, grad, p []float32) {
	copy(p, g.mask)
	r := hammingRadius(s.cfg.RhoHamming, 1-s.cfg.Sparsity, len(g.mask))
	pick := func(m float32) []int {
		var idx []int
		for c, mk := range g.mask {
			if d := grad[c] * (1 - 2*m); mk == m && d > 0 {
				idx = append(idx, c)
			}
		}
		// Largest Δ first, ties by index.
		slices.SortStableFunc(idx, func(a, b int) int {
			return cmp.Compare(grad[b]*(1-2*m), grad[a]*(1-2*m))
		})
		return idx[:min(r, len(idx))]
	}
	kept, pruned := pick(1), pick(0)
	n := min(len(kept), len(pruned))
	for _, c := range kept[:n] {
		p[c] = 0
	}
	for _, c := range pruned[:n] {
		p[c] = 1
	}
}

// Snapshot returns scores and velocities for a checkpoint.
func (s *chSearcher) Snapshot() map[string][]float32 {
	out := map[string][]float32{}
	for gi, g := range s.groups {
		out["chscore."+graph.ChannelGroupName(&g.cg)] = g.score
		out["chvel."+graph.ChannelGroupName(&g.cg)] = s.vel[gi]
	}
	saveStreams(out, s.pcg, s.prog)
	return out
}

// Restore loads a Snapshot.
func (s *chSearcher) Restore(m map[string][]float32) error {
	for gi, g := range s.groups {
		name := graph.ChannelGroupName(&g.cg)
		sc, v := m["chscore."+name], m["chvel."+name]
		if len(sc) != len(g.score) || len(v) != len(s.vel[gi]) {
			return fmt.Errorf("csam: checkpoint does not match channel group %q", name)
		}
		copy(g.score, sc)
		copy(s.vel[gi], v)
	}
	return restoreStreams(m, s.pcg, s.prog)
}

// AnnotateChannels is Annotate for a channel-pruned model: it also records
// the granularity and the parameter counts before and after removal.
func AnnotateChannels(m *graph.Model, res *Result, cfg Config, p Provenance, paramsBefore int) error {
	if err := Annotate(m, res, cfg, p); err != nil {
		return err
	}
	SetMetadata(m, map[string]string{
		"csam.granularity":   "channel",
		"csam.params_before": strconv.Itoa(paramsBefore),
		"csam.params_after":  strconv.Itoa(CountParams(m)),
	})
	return nil
}

// CountParams is the number of float32 initializer entries of m (weights,
// biases, normalization parameters and statistics).
func CountParams(m *graph.Model) int {
	n := 0
	for _, in := range m.Graph.Initializers {
		if in.Value != nil && in.Value.DType == tensor.Float32 {
			n += len(in.Value.F32)
		}
	}
	for _, sp := range m.Graph.SparseInitializers {
		if sp.Dense != nil && sp.Dense.Value != nil && sp.Dense.Value.DType == tensor.Float32 {
			n += len(sp.Dense.Value.F32)
		}
	}
	return n
}

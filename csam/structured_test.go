package csam

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/internal/toydata"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func toyResnet8(t *testing.T) *graph.Model {
	t.Helper()
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.5, InputSize: 8, Classes: 2, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func quickChannel(method string, sparsity float64) Config {
	c := DefaultConfig(method)
	c.Granularity = "channel"
	c.Sparsity = sparsity
	c.SearchEpochs, c.FinetuneEpochs = 1, 2
	c.Batch = 8
	c.SearchLR = 0.05
	c.Seed = 7
	return c
}

// TestChannelPercentileInit checks the channel scores against the formula
// clip(a / Q(a, τ), 0, 1) on hand-made filter norms.
func TestChannelPercentileInit(t *testing.T) {
	g := &channelGroup{norms: []float32{4, 1, 3, 2}, score: make([]float32, 4), work: make([]float32, 4)}
	// density 0.5: τ = 50, the median of {1,2,3,4} by linear
	// interpolation is 2.5.
	channelPercentileInit([]*channelGroup{g}, 0.5, 0)
	want := []float32{1, 1 / 2.5, 1, 2 / 2.5}
	for c := range want {
		if math.Abs(float64(g.score[c]-want[c])) > 1e-6 {
			t.Errorf("score[%d] = %v, want %v", c, g.score[c], want[c])
		}
	}
	if !slices.Equal(g.norms, []float32{4, 1, 3, 2}) {
		t.Errorf("init reordered the norms: %v", g.norms)
	}
}

// TestLearnChannels runs structured pruning on the toy problem with
// ResNet-8 and checks: every group keeps ⌈κ·C⌉ channels; the model is
// physically smaller (weights have fewer rows, fewer parameters); it still
// classifies; and the file it writes runs in onnxruntime with the Go
// engine's outputs.
func TestLearnChannels(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	if err := runtime.Init(lib); err != nil {
		t.Fatal(err)
	}
	src := &toydata.Source{Batch: 8, Steps: 10, Size: 8, Seed: 1}
	test := &toydata.Source{Batch: 8, Steps: 8, Size: 8, Seed: 99}
	base := toyResnet8(t)
	pretrainToy(t, base, src)
	for _, method := range []string{"csam", "magnitude"} {
		t.Run(method, func(t *testing.T) {
			m := base.Clone()
			before := CountParams(m)
			gs, err := graph.ChannelGroups(m)
			if err != nil {
				t.Fatal(err)
			}
			cfg := quickChannel(method, 0.5)
			res, err := Learn(context.Background(), m, src, cfg, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Layers) != len(gs) {
				t.Errorf("%d groups pruned, the model has %d", len(res.Layers), len(gs))
			}
			kept, total := 0, 0
			for _, l := range res.Layers {
				if want := keepCount(0.5, l.Params); l.Kept != want {
					t.Errorf("group %s keeps %d of %d channels, want ⌈κ·C⌉ = %d", l.Weight, l.Kept, l.Params, want)
				}
				kept += l.Kept
				total += l.Params
			}
			if want := 1 - float64(kept)/float64(total); res.Sparsity != want {
				t.Errorf("reported sparsity %v, want %v", res.Sparsity, want)
			}
			// Physically smaller: the stem conv has half its filters.
			stem := m.Graph.Initializer("stem.conv.weight").Value.Shape
			if stem[0] != keepCount(0.5, 8) {
				t.Errorf("stem conv weight %v, want %d filters", stem, keepCount(0.5, 8))
			}
			after := CountParams(m)
			if after >= before*2/3 {
				t.Errorf("parameters %d → %d: not smaller by a third at 50%% channel sparsity", before, after)
			}
			t.Logf("%s: params %d → %d, channel sparsity %.3f", method, before, after, res.Sparsity)
			if err := graph.Validate(m); err != nil {
				t.Fatalf("pruned model invalid: %v", err)
			}
			ev, err := finetune.Evaluate(context.Background(), m, test, 8, 0)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Accuracy < 0.75 {
				t.Errorf("pruned toy model scores %.2f, want ≥ 0.75 (the task is easy)", ev.Accuracy)
			}
			// Round trip through the ONNX encoding and onnxruntime.
			b, err := onnxio.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			back, err := onnxio.Decode(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			var x *tensor.Tensor
			for bt := range test.Batches(context.Background(), 0, 0) {
				x = bt.Images
				break
			}
			prog, err := autodiff.Compile(back, [][]int{x.Shape}, &autodiff.Options{Params: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			copy(prog.Input(0).F32, x.F32)
			if err := prog.Forward(); err != nil {
				t.Fatal(err)
			}
			s, err := runtime.OpenBytes(b, &runtime.SessionOptions{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			outs, err := s.Run([]*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			// Two engines, same float32 model: only summation order
			// differs, a few ulps of logits of magnitude ~1-10.
			const tol = 1e-4
			for i, v := range prog.Output(0).F32 {
				if d := math.Abs(float64(v - outs[0].F32[i])); d > tol {
					t.Fatalf("logit %d: Go engine %v, onnxruntime %v (|diff| %.3g > %g)", i, v, outs[0].F32[i], d, tol)
				}
			}
		})
	}
}

func pretrainToy(t *testing.T, m *graph.Model, src finetune.Source) {
	t.Helper()
	tr, err := finetune.NewTrainer(m, finetune.TrainConfig{Batch: 8, Momentum: 0.9, Seed: 1,
		Schedule: finetune.Schedule{Kind: "cosine", Base: 0.05, TotalSteps: 2 * src.StepsPerEpoch()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := finetune.Loop(context.Background(), finetune.LoopConfig{Phase: "pre", Epochs: 2}, src, tr, tr.Step, finetune.Hooks{}); err != nil {
		t.Fatal(err)
	}
}

// TestChannelSearch checks that the channel-level C-SAM search perturbs the
// structure (variant A flips channels at the default radius; B and C run),
// keeps the density of every group constant, and leaves the graph without
// mask nodes and with its weights untouched (weights are frozen during the
// search).
func TestChannelSearch(t *testing.T) {
	src := &toydata.Source{Batch: 8, Steps: 6, Size: 8, Seed: 1}
	for _, tt := range []struct {
		variant, norm string
		rho           float64
	}{
		{"A", "layer", 0.05},
		{"A", "global", 1}, // ρ spread over all channels: larger radius
		{"A", "adaptive", 1},
		{"B", "layer", 0.05},
		{"C", "layer", 0.05},
	} {
		v := tt.variant
		t.Run(v+"/"+tt.norm, func(t *testing.T) {
			m := toyResnet8(t)
			orig := m.Clone()
			gs, err := SelectChannelGroups(m, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			groups := make([]*channelGroup, len(gs))
			for i, g := range gs {
				groups[i] = &channelGroup{cg: g, score: make([]float32, g.Channels), mask: make([]float32, g.Channels),
					work: make([]float32, g.Channels), keep: keepCount(0.5, g.Channels), norms: filterNorms(m.Graph, &g)}
			}
			channelPercentileInit(groups, 0.5, 0)
			cfg := quickChannel("csam", 0.5)
			cfg.Variant, cfg.RhoNorm, cfg.Rho = v, tt.norm, tt.rho
			var flips float64
			badDensity := false
			hooks := finetune.Hooks{OnStep: func(_ finetune.Iter, st finetune.StepStats) {
				flips += st.Extra["flips_kept_to_pruned"] + st.Extra["flips_pruned_to_kept"]
				if st.Extra["flips_kept_to_pruned"] != st.Extra["flips_pruned_to_kept"] {
					badDensity = true
				}
			}}
			err = searchChannels(context.Background(), m, groups, src, cfg, finetune.LoopConfig{Phase: "search", Epochs: 1}, hooks)
			if err != nil {
				t.Fatal(err)
			}
			if flips == 0 {
				t.Errorf("variant %s (%s ρ=%g) flipped no channel in %d steps", v, tt.norm, tt.rho, src.Steps)
			}
			if badDensity {
				t.Errorf("the perturbed mask changed the number of kept channels")
			}
			for _, g := range groups {
				n := 0
				for _, mk := range g.mask {
					if mk != 0 {
						n++
					}
				}
				if n != g.keep {
					t.Errorf("group %s keeps %d channels, want %d", graph.ChannelGroupName(&g.cg), n, g.keep)
				}
			}
			if len(m.Graph.Nodes) != len(orig.Graph.Nodes) || len(m.Graph.Initializers) != len(orig.Graph.Initializers) {
				t.Fatalf("search left %d nodes / %d initializers, the model had %d / %d", len(m.Graph.Nodes), len(m.Graph.Initializers), len(orig.Graph.Nodes), len(orig.Graph.Initializers))
			}
			for _, in := range orig.Graph.Initializers {
				if !slices.Equal(in.Value.F32, m.Graph.Initializer(in.Name).Value.F32) {
					t.Errorf("search changed initializer %s", in.Name)
				}
			}
		})
	}
}

func TestLearnChannelsRefuses(t *testing.T) {
	src := &toydata.Source{Batch: 8, Steps: 2, Size: 8, Seed: 1}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"method", func(c *Config) { c.Method = "hydra" }, "does not support --granularity channel"},
		{"variant", func(c *Config) { c.Variant = "E" }, "variant E"},
		{"global", func(c *Config) { c.Global = true }, "--global"},
		{"granularity", func(c *Config) { c.Granularity = "block" }, "unknown granularity"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := quickChannel("csam", 0.5)
			tt.edit(&cfg)
			_, err := Learn(context.Background(), toyResnet8(t), src, cfg, Hooks{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Learn = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	// A group reaching a graph output is left whole; --skip-first and
	// --skip-last leave the stem's group and the classifier's input whole.
	m := toyResnet8(t)
	m.Graph.Outputs = append(m.Graph.Outputs, &graph.ValueInfo{Name: "stem.relu_out"})
	sel, err := SelectChannelGroups(m, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := graph.ChannelGroups(toyResnet8(t))
	if len(sel) != len(all)-1 {
		t.Errorf("%d groups selected with the stem at a graph output, want %d", len(sel), len(all)-1)
	}
	for _, g := range sel {
		if hasSource(&g, "stem.conv") {
			t.Errorf("the stem's group is selected although it reaches a graph output")
		}
	}
	sel, err = SelectChannelGroups(toyResnet8(t), Selection{SkipFirst: true, SkipLast: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range sel {
		if hasSource(&g, "stem.conv") || hasSource(&g, "layer3.0.b.conv") {
			t.Errorf("group %s selected despite --skip-first/--skip-last", graph.ChannelGroupName(&g))
		}
	}
	if len(sel) != len(all)-2 {
		t.Errorf("%d groups selected with skip-first and skip-last, want %d", len(sel), len(all)-2)
	}
	one := &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Version: 17}}, Graph: &graph.Graph{Name: "one",
		Nodes:        []*graph.Node{{Name: "c", OpType: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"}}},
		Initializers: []*graph.Initializer{{Name: "w", Value: tensor.New(4, 3, 1, 1)}},
		Inputs:       []*graph.ValueInfo{{Name: "x"}}, Outputs: []*graph.ValueInfo{{Name: "y"}}}}
	_, err = SelectChannelGroups(one, Selection{})
	if err == nil || !strings.Contains(err.Error(), "no prunable channel group") || !strings.Contains(err.Error(), "graph output") {
		t.Errorf("SelectChannelGroups on a conv feeding the output = %v, want an error naming the reason", err)
	}
}

// TestLearnChannelsResumes interrupts a structured C-SAM run in its search
// phase and checks the resumed run ends with the same model as an
// uninterrupted one.
func TestLearnChannelsResumes(t *testing.T) {
	src := &toydata.Source{Batch: 8, Steps: 6, Size: 8, Seed: 1}
	cfg := quickChannel("csam", 0.5)
	cfg.SearchEpochs, cfg.FinetuneEpochs = 2, 1
	ref := toyResnet8(t)
	if _, err := Learn(context.Background(), ref, src, cfg, Hooks{}); err != nil {
		t.Fatal(err)
	}
	cfg.CheckpointDir, cfg.CheckpointEvery, cfg.Resume = t.TempDir(), 2, true
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := Learn(ctx, toyResnet8(t), src, cfg, Hooks{Hooks: finetune.Hooks{OnStep: func(finetune.Iter, finetune.StepStats) {
		if n++; n == 7 {
			cancel()
		}
	}}})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("Learn after cancel = %v, want the cancellation", err)
	}
	m := toyResnet8(t)
	if _, err := Learn(context.Background(), m, src, cfg, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Initializers) != len(ref.Graph.Initializers) {
		t.Fatalf("resumed model has %d initializers, the uninterrupted one %d", len(m.Graph.Initializers), len(ref.Graph.Initializers))
	}
	for _, in := range ref.Graph.Initializers {
		got := m.Graph.Initializer(in.Name)
		if got == nil || !slices.Equal(in.Value.Shape, got.Value.Shape) || !slices.Equal(in.Value.F32, got.Value.F32) {
			t.Fatalf("resumed run differs from the uninterrupted one in %s", in.Name)
		}
	}
}

// TestFinetunedMaskedEqualsRemoved checks the property the export relies
// on: after fine-tuning with the pruned channels frozen at zero, removing
// them physically changes no output. It runs on MobileNet-V2 (depthwise
// convs in the groups) and GoogLeNet (Concat offsets).
func TestFinetunedMaskedEqualsRemoved(t *testing.T) {
	src := &toydata.Source{Batch: 8, Steps: 4, Size: 8, Seed: 3}
	for _, arch := range []string{"mobilenetv2", "googlenet"} {
		t.Run(arch, func(t *testing.T) {
			m, err := models.Build(models.Config{Arch: arch, Width: 0.125, InputSize: 8, Classes: 2, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			gs, err := SelectChannelGroups(m, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			keep := map[int][]int{}
			var groups []*channelGroup
			for _, g := range gs {
				cg := &channelGroup{cg: g, score: make([]float32, g.Channels), mask: make([]float32, g.Channels),
					work: make([]float32, g.Channels), keep: keepCount(0.5, g.Channels), norms: filterNorms(m.Graph, &g)}
				copy(cg.score, cg.norms)
				topKMask(cg.mask, cg.score, cg.work, cg.keep)
				for c, v := range cg.mask {
					if v != 0 {
						keep[g.ID] = append(keep[g.ID], c)
					}
				}
				groups = append(groups, cg)
			}
			masks := zeroPrunedChannels(m.Graph, groups)
			cfg := quickChannel("magnitude", 0.5)
			if err := trainPhase(context.Background(), m, masks, src, cfg, finetune.LoopConfig{Phase: "finetune", Epochs: 1}, 0, nil, finetune.Hooks{}); err != nil {
				t.Fatal(err)
			}
			shrunk := m.Clone()
			if err := graph.RemoveChannels(shrunk, keep); err != nil {
				t.Fatal(err)
			}
			if CountParams(shrunk) >= CountParams(m)/2 {
				t.Errorf("parameters %d → %d at 50%% channel sparsity", CountParams(m), CountParams(shrunk))
			}
			var x *tensor.Tensor
			for bt := range src.Batches(context.Background(), 5, 0) {
				x = bt.Images
				break
			}
			a, b := forward(t, m, x), forward(t, shrunk, x)
			// The removed channels contribute exact zeros; only the
			// summation order differs (a few ulps of logits ~1-10).
			const tol = 1e-5
			for i := range a {
				if d := math.Abs(float64(a[i] - b[i])); d > tol {
					t.Fatalf("logit %d: fine-tuned masked model %v, shrunk model %v (|diff| %.3g > %g)", i, a[i], b[i], d, tol)
				}
			}
		})
	}
}

func forward(t *testing.T, m *graph.Model, x *tensor.Tensor) []float32 {
	t.Helper()
	prog, err := autodiff.Compile(m, [][]int{x.Shape}, &autodiff.Options{Params: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	copy(prog.Input(0).F32, x.F32)
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(prog.Output(0).F32)
}

// TestChannelHamming checks variant B's channel flips on hand-made
// gradients: Δ = g·(1 − 2M); the kept channel and the pruned channel of
// largest positive Δ swap, so the number kept stays the same.
func TestChannelHamming(t *testing.T) {
	tests := []struct {
		mask, grad []float32
		rho        float64
		want       []float32
	}{
		// Δ kept = {1, −2}, Δ pruned = {3, −4}: swap channels 0 and 2.
		{[]float32{1, 1, 0, 0}, []float32{-1, 2, 3, -4}, 0.01, []float32{0, 1, 1, 0}},
		// r = ⌈1·2⌉ = 2 but only one pruned channel has Δ > 0.
		{[]float32{1, 1, 0, 0}, []float32{-1, -2, 3, -4}, 1, []float32{1, 0, 1, 0}},
		// No kept channel has Δ > 0: nothing flips.
		{[]float32{1, 1, 0, 0}, []float32{1, 2, 3, 4}, 1, []float32{1, 1, 0, 0}},
	}
	for i, tt := range tests {
		s := &chSearcher{cfg: Config{RhoHamming: tt.rho}}
		g := &channelGroup{mask: tt.mask, keep: 2}
		p := make([]float32, len(tt.mask))
		s.hamming(g, tt.grad, p)
		if !slices.Equal(p, tt.want) {
			t.Errorf("case %d: hamming(mask %v, grad %v) = %v, want %v", i, tt.mask, tt.grad, p, tt.want)
		}
	}
}

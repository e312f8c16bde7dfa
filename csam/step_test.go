package csam

import (
	"context"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/toydata"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// The toy problem of this file: a batch of 3 samples with 4 features, a
// hidden layer of 3 and 3 classes. W1 is [4,3] (N = 12), W2 is [3,3]
// (N = 9). All magnitudes are distinct, so no initial score ties.
var (
	toyX = []float32{
		0.5, -1.0, 0.25, 2.0,
		-0.75, 0.5, 1.5, -0.5,
		1.25, 0.75, -1.0, 0.25,
	}
	toyLabels = []int{1, 2, 0}
	toyW1     = []float32{
		0.8, -0.3, 0.55,
		-0.12, 0.95, -0.42,
		0.27, -0.66, 0.05,
		-0.71, 0.18, 0.38,
	}
	toyW2 = []float32{
		0.6, -0.9, 0.22,
		-0.35, 0.48, -0.15,
		0.72, 0.09, -0.58,
	}
)

const (
	toyB, toyD, toyH, toyK = 3, 4, 3, 3
)

func dim(v int) graph.Dim { return graph.Dim{Value: int64(v), HasValue: true} }

// mlp builds x[B,D] → first layer → (Relu) → MatMul(W2) → logits[B,K], opset
// 17, one initializer per weight. With gemm the first layer is
// Gemm(x, W1ᵀ, b1) (transB = 1, W1 stored [H,D], a bias that must not be
// pruned); otherwise MatMul(x, W1) with W1 stored [D,H].
func mlp(w1, w2 []float32, relu, gemm bool) *graph.Model {
	g := &graph.Graph{Name: "toy"}
	g.Inputs = []*graph.ValueInfo{{Name: "x", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true,
		Shape: []graph.Dim{dim(toyB), dim(toyD)}}}}
	g.Outputs = []*graph.ValueInfo{{Name: "logits", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true,
		Shape: []graph.Dim{dim(toyB), dim(toyK)}}}}
	if gemm {
		// Store W1ᵀ so both graphs compute the same x·W1.
		t := make([]float32, len(w1))
		for d := range toyD {
			for h := range toyH {
				t[h*toyD+d] = w1[d*toyH+h]
			}
		}
		g.Initializers = append(g.Initializers,
			&graph.Initializer{Name: "W1", Value: tensor.FromFloat32(t, toyH, toyD)},
			&graph.Initializer{Name: "b1", Value: tensor.FromFloat32([]float32{0.1, -0.2, 0.05}, toyH)})
		g.Nodes = append(g.Nodes, &graph.Node{Name: "fc1", OpType: "Gemm", Inputs: []string{"x", "W1", "b1"}, Outputs: []string{"h"},
			Attrs: []*graph.Attribute{{Name: "transB", Type: graph.AttrInt, I: 1}}})
	} else {
		g.Initializers = append(g.Initializers, &graph.Initializer{Name: "W1", Value: tensor.FromFloat32(slices.Clone(w1), toyD, toyH)})
		g.Nodes = append(g.Nodes, &graph.Node{Name: "fc1", OpType: "MatMul", Inputs: []string{"x", "W1"}, Outputs: []string{"h"}})
	}
	h := "h"
	if relu {
		g.Nodes = append(g.Nodes, &graph.Node{Name: "relu", OpType: "Relu", Inputs: []string{"h"}, Outputs: []string{"hr"}})
		h = "hr"
	}
	g.Initializers = append(g.Initializers, &graph.Initializer{Name: "W2", Value: tensor.FromFloat32(slices.Clone(w2), toyH, toyK)})
	g.Nodes = append(g.Nodes, &graph.Node{Name: "fc2", OpType: "MatMul", Inputs: []string{h, "W2"}, Outputs: []string{"logits"}})
	return &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Domain: "", Version: 17}}, Graph: g}
}

func toyBatch() finetune.Batch {
	return finetune.Batch{Images: tensor.FromFloat32(slices.Clone(toyX), toyB, toyD), Labels: slices.Clone(toyLabels)}
}

// repeatSource yields the same batch steps times per epoch.
type repeatSource struct {
	b     finetune.Batch
	steps int
}

func (s *repeatSource) StepsPerEpoch() int { return s.steps }

func (s *repeatSource) Batches(ctx context.Context, epoch, skip int) iter.Seq2[finetune.Batch, error] {
	return func(yield func(finetune.Batch, error) bool) {
		for range s.steps - skip {
			if !yield(s.b, nil) {
				return
			}
		}
	}
}

// TestMaskGradientIsSTE checks the mask rewrite gives the straight-through
// gradient of CSAM-SPEC §2.1: ∂L/∂M = (∂L/∂W_eff) ⊙ θ, where ∂L/∂W_eff is
// taken from a second compile of the same network WITHOUT mask nodes and
// with W_eff = θ ⊙ M as its weights. With unnamed nodes (legal in ONNX)
// too: the rewrite used to find layers by node name, so every layer but
// the last kept reading θ and its mask got no gradient.
func TestMaskGradientIsSTE(t *testing.T) {
	for _, c := range []struct{ gemm, unnamed bool }{{false, false}, {true, false}, {false, true}} {
		gemm := c.gemm
		t.Run(fmt.Sprintf("gemm=%v,unnamed=%v", gemm, c.unnamed), func(t *testing.T) {
			m := mlp(toyW1, toyW2, true, gemm)
			if c.unnamed {
				for _, n := range m.Graph.Nodes {
					n.Name = ""
				}
			}
			layers, err := SelectLayers(m.Graph, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != 2 || layers[0].Weight != "W1" || layers[1].Weight != "W2" {
				t.Fatalf("SelectLayers picked %d layers (%v), want W1 and W2 (never the bias)", len(layers), layers)
			}
			masks, err := insertMaskNodes(m.Graph, layers)
			if err != nil {
				t.Fatal(err)
			}
			// A fixed binary mask with pruned entries in both layers.
			rng := rand.New(rand.NewPCG(11, 12))
			for _, l := range layers {
				for i := range masks[l.Weight].F32 {
					masks[l.Weight].F32[i] = float32(rng.IntN(2))
				}
			}
			params := []string{"W1", "W2", maskName("W1"), maskName("W2")}
			prog, err := autodiff.Compile(m, [][]int{{toyB, toyD}}, &autodiff.Options{Params: params, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			lossM, _, err := finetune.ForwardBackward(prog, toyBatch(), 0)
			if err != nil {
				t.Fatal(err)
			}

			// The same network with the masked weights baked in.
			eff := map[string][]float32{}
			for _, l := range layers {
				w := make([]float32, len(l.W))
				for i := range w {
					w[i] = l.W[i] * masks[l.Weight].F32[i] // exact: M ∈ {0, 1}
				}
				eff[l.Weight] = w
			}
			ref := mlp(toyW1, toyW2, true, gemm)
			for _, l := range layers {
				copy(ref.Graph.Initializer(l.Weight).Value.F32, eff[l.Weight])
			}
			refProg, err := autodiff.Compile(ref, [][]int{{toyB, toyD}}, &autodiff.Options{Params: []string{"W1", "W2"}, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			lossW, _, err := finetune.ForwardBackward(refProg, toyBatch(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if lossM != lossW {
				t.Errorf("loss with mask nodes %v, with baked weights %v: the forward passes differ", lossM, lossW)
			}

			for _, l := range layers {
				gM := prog.Grad(maskName(l.Weight)).F32
				gTheta := prog.Grad(l.Weight).F32
				gW := refProg.Grad(l.Weight).F32
				mk := masks[l.Weight].F32
				var scale float64
				for i := range gW {
					scale = max(scale, math.Abs(float64(gW[i]*l.W[i])), math.Abs(float64(gW[i])))
				}
				if scale == 0 {
					t.Fatalf("layer %s: the reference gradient is all zero; the test data does not exercise it", l.Weight)
				}
				// Both sides are the same float32 products of identical
				// W_eff values; 1e-6 relative to the largest entry allows
				// only for a different summation order (float32 ε ≈ 6e-8
				// times a handful of terms).
				tol := 1e-6 * scale
				prunedNonzero := 0
				var maxDiff float64
				for i := range gM {
					want := float64(gW[i]) * float64(l.W[i])
					maxDiff = max(maxDiff, math.Abs(float64(gM[i])-want))
					if d := math.Abs(float64(gM[i]) - want); d > tol {
						t.Errorf("layer %s entry %d: ∂L/∂M = %v, want (∂L/∂W)·θ = %v (|diff| %g > %g)", l.Weight, i, gM[i], want, d, tol)
					}
					// The weight itself gets (∂L/∂W_eff) ⊙ M.
					if d := math.Abs(float64(gTheta[i]) - float64(gW[i])*float64(mk[i])); d > tol {
						t.Errorf("layer %s entry %d: ∂L/∂θ = %v, want (∂L/∂W)·M = %v", l.Weight, i, gTheta[i], float64(gW[i])*float64(mk[i]))
					}
					if mk[i] == 0 && gM[i] != 0 {
						prunedNonzero++
					}
				}
				exact := 0
				for i := range gM {
					if gM[i] == gW[i]*l.W[i] {
						exact++
					}
				}
				t.Logf("layer %s: max |∂L/∂M − (∂L/∂W)·θ| = %g (scale %g); %d of %d entries bit-identical to the float32 product", l.Weight, maxDiff, scale, exact, len(gM))
				// Straight-through: pruned entries still receive a gradient.
				if prunedNonzero == 0 {
					t.Errorf("layer %s: no pruned entry received a mask gradient; the STE should pass gradients to M = 0 entries", l.Weight)
				}
			}
		})
	}
}

// ---- float64 reference of the C-SAM step on the linear toy net ----

type refNet struct {
	theta [2][]float64 // W1 [D,H], W2 [H,K]
	n     [2]int
	keep  [2]int
}

func newRefNet(density float64) *refNet {
	r := &refNet{}
	for l, w := range [][]float32{toyW1, toyW2} {
		r.theta[l] = make([]float64, len(w))
		for i, v := range w {
			r.theta[l][i] = float64(v)
		}
		r.n[l] = len(w)
		r.keep[l] = int(math.Ceil(density * float64(len(w))))
	}
	return r
}

// grad returns the mean cross-entropy and ∂L/∂M = (∂L/∂W_eff) ⊙ θ per layer
// for logits = x·(W1⊙M1)·(W2⊙M2).
func (r *refNet) grad(mask [2][]float64) (float64, [2][]float64) {
	var w [2][]float64
	for l := range 2 {
		w[l] = make([]float64, r.n[l])
		for i := range w[l] {
			w[l][i] = r.theta[l][i] * mask[l][i]
		}
	}
	h := make([]float64, toyB*toyH)
	for b := range toyB {
		for j := range toyH {
			for d := range toyD {
				h[b*toyH+j] += float64(toyX[b*toyD+d]) * w[0][d*toyH+j]
			}
		}
	}
	z := make([]float64, toyB*toyK)
	for b := range toyB {
		for k := range toyK {
			for j := range toyH {
				z[b*toyK+k] += h[b*toyH+j] * w[1][j*toyK+k]
			}
		}
	}
	// dL/dz = (softmax(z) − onehot(y)) / B.
	dz := make([]float64, toyB*toyK)
	var loss float64
	for b := range toyB {
		row := z[b*toyK : (b+1)*toyK]
		mx := slices.Max(row)
		var s float64
		for _, v := range row {
			s += math.Exp(v - mx)
		}
		loss += -(row[toyLabels[b]] - mx - math.Log(s)) / toyB
		for k := range toyK {
			p := math.Exp(row[k]-mx) / s
			if k == toyLabels[b] {
				p--
			}
			dz[b*toyK+k] = p / toyB
		}
	}
	var g [2][]float64
	g[0], g[1] = make([]float64, r.n[0]), make([]float64, r.n[1])
	dh := make([]float64, toyB*toyH)
	for b := range toyB {
		for j := range toyH {
			for k := range toyK {
				g[1][j*toyK+k] += h[b*toyH+j] * dz[b*toyK+k]
				dh[b*toyH+j] += dz[b*toyK+k] * w[1][j*toyK+k]
			}
		}
	}
	for b := range toyB {
		for d := range toyD {
			for j := range toyH {
				g[0][d*toyH+j] += float64(toyX[b*toyD+d]) * dh[b*toyH+j]
			}
		}
	}
	for l := range 2 {
		for i := range g[l] {
			g[l][i] *= r.theta[l][i]
		}
	}
	return loss, g
}

// refPercentile is numpy's linear-interpolation percentile, by sorting.
func refPercentile(a []float64, p float64) float64 {
	s := slices.Clone(a)
	sort.Float64s(s)
	pos := p / 100 * float64(len(s)-1)
	lo := math.Floor(pos)
	hi := math.Ceil(pos)
	return s[int(lo)] + (s[int(hi)]-s[int(lo)])*(pos-lo)
}

// refTopK keeps the k largest, ties to the lower index, by stable sort.
func refTopK(s []float64, k int) []float64 {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] > s[idx[b]] })
	out := make([]float64, len(s))
	for _, i := range idx[:k] {
		out[i] = 1
	}
	return out
}

func clip01f(v float64) float64 { return math.Min(1, math.Max(0, v)) }

// checkTopKMargin fails the test when the reference's top-k decision is
// within float32 reach of changing: the k-th and (k+1)-th largest values
// must differ by more than margin, or tie exactly at a clip bound (where
// both the reference and the float32 code clip to the same value and break
// the tie by index).
func checkTopKMargin(t *testing.T, what string, s []float64, k int, margin float64) {
	t.Helper()
	if k >= len(s) {
		return
	}
	v := slices.Clone(s)
	sort.Sort(sort.Reverse(sort.Float64Slice(v)))
	a, b := v[k-1], v[k]
	if a == b && (a == 1 || a == 0) {
		return
	}
	if a-b <= margin {
		t.Fatalf("%s: the %d-th and %d-th largest scores %v and %v are within %g; the test data cannot tell float32 from float64 here, choose other data", what, k, k+1, a, b, margin)
	}
}

type refStep struct {
	c0, cNew  [2][]float64 // scores before and after the step
	vel       [2][]float64 // momentum buffer after the step
	m, mTilde [2][]float64 // mask and perturbed mask
	loss0     float64      // loss at the current mask
	loss1     float64      // loss at the perturbed mask
	kp, pk    int          // flips kept→pruned, pruned→kept
}

// initScores is the percentile init of CSAM-SPEC §2.2 in float64.
func (r *refNet) initScores(t *testing.T, density float64) [2][]float64 {
	t.Helper()
	var c [2][]float64
	for l := range 2 {
		a := make([]float64, r.n[l])
		for i, v := range r.theta[l] {
			a[i] = math.Abs(v)
		}
		q := math.Max(refPercentile(a, 100*(1-density)), 1e-12)
		c[l] = make([]float64, r.n[l])
		for i := range a {
			c[l][i] = clip01f(a[i] / q)
			// Exactly 1 (the order statistic Q itself) is exact in both
			// precisions; only values near 1 could clip differently.
			if d := math.Abs(a[i]/q - 1); d != 0 && d < 1e-4 {
				t.Fatalf("layer %d entry %d: |θ|/Q = %v is too close to the clip bound 1", l, i, a[i]/q)
			}
		}
	}
	return c
}

// step computes one variant-A (or B) step by hand from scores c0 and
// momentum buffer vel (nil = zeros): CSAM-SPEC §2.4 (a)–(e) with a = 0,
// v' = μ·v + g̃ and C' = clip(C − η·v').
func (r *refNet) step(t *testing.T, c0, vel [2][]float64, density float64, variant, norm string, rho, rhoH, eta, mu float64) refStep {
	t.Helper()
	var st refStep
	st.c0 = c0
	for l := range 2 {
		checkTopKMargin(t, fmt.Sprintf("layer %d scores", l), st.c0[l], r.keep[l], 1e-4)
		st.m[l] = refTopK(st.c0[l], r.keep[l])
	}
	loss0, g := r.grad(st.m)
	st.loss0 = loss0

	switch variant {
	case "A":
		var gNorm, tNorm float64
		for l := range 2 {
			for i, v := range g[l] {
				gNorm += v * v
				tv := (math.Abs(st.c0[l][i]) + 0.01) * v
				tNorm += tv * tv
			}
		}
		gNorm, tNorm = math.Sqrt(gNorm), math.Sqrt(tNorm)
		for l := range 2 {
			var ln float64
			for _, v := range g[l] {
				ln += v * v
			}
			ln = math.Sqrt(ln)
			ct := make([]float64, r.n[l])
			for i, v := range g[l] {
				var eps float64
				switch norm {
				case "layer":
					eps = rho * math.Sqrt(float64(r.n[l])) * v / (ln + 1e-12)
				case "global":
					eps = rho * v / (gNorm + 1e-12)
				case "adaptive":
					tt := math.Abs(st.c0[l][i]) + 0.01
					eps = rho * tt * tt * v / (tNorm + 1e-12)
				}
				raw := st.c0[l][i] + eps
				if math.Abs(raw-1) < 1e-4 || math.Abs(raw) < 1e-4 {
					t.Fatalf("layer %d entry %d: C + ε = %v is too close to a clip bound", l, i, raw)
				}
				ct[i] = clip01f(raw)
			}
			checkTopKMargin(t, fmt.Sprintf("layer %d perturbed scores", l), ct, r.keep[l], 1e-4)
			st.mTilde[l] = refTopK(ct, r.keep[l])
		}
	case "B":
		for l := range 2 {
			rr := int(math.Ceil(rhoH*density*float64(r.n[l]) - 1e-9))
			st.mTilde[l] = slices.Clone(st.m[l])
			pick := func(from float64) []int {
				var idx []int
				for i, mk := range st.m[l] {
					if mk == from && g[l][i]*(1-2*mk) > 0 {
						idx = append(idx, i)
					}
				}
				sort.SliceStable(idx, func(a, b int) bool {
					return g[l][idx[a]]*(1-2*from) > g[l][idx[b]]*(1-2*from)
				})
				if len(idx) > rr {
					// The r-th and (r+1)-th gains must be apart in float32.
					d0 := g[l][idx[rr-1]] * (1 - 2*from)
					d1 := g[l][idx[rr]] * (1 - 2*from)
					if d0-d1 < 1e-6 {
						t.Fatalf("layer %d: Hamming gains %v and %v too close", l, d0, d1)
					}
					idx = idx[:rr]
				}
				return idx
			}
			kept, pruned := pick(1), pick(0)
			n := min(len(kept), len(pruned))
			for _, i := range kept[:n] {
				st.mTilde[l][i] = 0
			}
			for _, i := range pruned[:n] {
				st.mTilde[l][i] = 1
			}
		}
	}
	for l := range 2 {
		for i := range st.m[l] {
			switch {
			case st.m[l][i] == 1 && st.mTilde[l][i] == 0:
				st.kp++
			case st.m[l][i] == 0 && st.mTilde[l][i] == 1:
				st.pk++
			}
		}
	}
	loss1, g1 := r.grad(st.mTilde)
	st.loss1 = loss1
	for l := range 2 {
		st.cNew[l] = make([]float64, r.n[l])
		st.vel[l] = make([]float64, r.n[l])
		for i := range g1[l] {
			v := g1[l][i]
			if vel[l] != nil {
				v += mu * vel[l][i]
			}
			st.vel[l][i] = v
			raw := st.c0[l][i] - eta*v
			if math.Abs(raw-1) < 1e-5 || math.Abs(raw) < 1e-5 {
				t.Fatalf("layer %d entry %d: C − η·v = %v is too close to a clip bound", l, i, raw)
			}
			st.cNew[l][i] = clip01f(raw)
		}
	}
	return st
}

// runSearch runs the real mask search (search(), as Learn calls it) for
// one epoch of steps steps on the toy batch and returns the layers, the
// perturbed masks seen by each step's second pass (read from the graph's
// mask initializers in OnStep), and the step statistics.
func runSearch(t *testing.T, cfg Config, steps int) ([]*Layer, [][][]float32, []finetune.StepStats) {
	t.Helper()
	m := mlp(toyW1, toyW2, false, false)
	layers, err := SelectLayers(m.Graph, cfg.Selection)
	if err != nil {
		t.Fatal(err)
	}
	density := 1 - cfg.Sparsity
	allocate(layers, density)
	bin := newBinarizer(layers, density, cfg.Global)
	var tilde [][][]float32
	var stats []finetune.StepStats
	hooks := finetune.Hooks{OnStep: func(_ finetune.Iter, st finetune.StepStats) {
		var step [][]float32
		for _, l := range layers {
			step = append(step, slices.Clone(m.Graph.Initializer(maskName(l.Weight)).Value.F32))
		}
		tilde = append(tilde, step)
		stats = append(stats, st)
	}}
	src := &repeatSource{b: toyBatch(), steps: steps}
	if err := search(context.Background(), m, layers, bin, src, cfg, finetune.LoopConfig{Phase: "search", Epochs: 1}, hooks); err != nil {
		t.Fatal(err)
	}
	return layers, tilde, stats
}

func toyConfig(variant, norm string) Config {
	cfg := DefaultConfig("csam")
	cfg.Sparsity = 0.5
	cfg.Variant, cfg.RhoNorm = variant, norm
	cfg.MaskNoise = 0
	cfg.SearchLR = 0.5
	cfg.Batch = toyB
	cfg.Workers = 1
	return cfg
}

// TestOneStepByHand runs one C-SAM step of the real searcher on the
// two-layer linear toy net and compares the perturbed mask M̃, the loss at
// M̃, the flip counts and the new scores C' with a float64 computation of
// CSAM-SPEC §2.4 done in this test.
func TestOneStepByHand(t *testing.T) {
	cases := []struct {
		variant, norm string
		rho, rhoH     float64
	}{
		// Radii chosen so that flips happen and the layer (0.5), global and
		// adaptive cases each give a different perturbed mask M̃: swapping
		// one normalization for another cannot pass.
		{"A", "layer", 0.2, 0},
		{"A", "layer", 0.5, 0},
		{"A", "global", 3, 0},
		{"A", "adaptive", 2, 0},
		// ρ_H = 0.21: r = ⌈0.21·κ·N⌉ = ⌈1.26⌉ = 2 for W1 and ⌈0.945⌉ = 1 for
		// W2 (κ·N = 4.5; the rounded-up budget ⌈κ·N⌉ = 5 would give 2).
		{"B", "layer", 0.05, 0.21},
		// ρ_H = 0.7: r = 5 and 4, more than the pruned entries with Δ > 0
		// (W2 has 2), so fewer flips than r and still as many each way.
		{"B", "layer", 0.05, 0.7},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/rho=%v/rhoH=%v", c.variant, c.norm, c.rho, c.rhoH), func(t *testing.T) {
			cfg := toyConfig(c.variant, c.norm)
			cfg.Rho = c.rho
			if c.rhoH > 0 {
				cfg.RhoHamming = c.rhoH
			}
			density := 1 - cfg.Sparsity
			r := newRefNet(density)
			ref := r.step(t, r.initScores(t, density), [2][]float64{}, density, c.variant, c.norm, cfg.Rho, cfg.RhoHamming, cfg.SearchLR, cfg.SearchMomentum)
			if ref.kp+ref.pk == 0 {
				t.Fatalf("the reference perturbation flips nothing; raise ρ so the test exercises the perturbed gradient")
			}
			layers, tilde, stats := runSearch(t, cfg, 1)
			if len(stats) != 1 {
				t.Fatalf("search ran %d steps, want 1", len(stats))
			}
			var maxDiff float64
			for l, layer := range layers {
				for i := range layer.Score {
					if float64(tilde[0][l][i]) != ref.mTilde[l][i] {
						t.Errorf("layer %s: perturbed mask %v, want %v (M = %v)", layer.Weight, tilde[0][l], ref.mTilde[l], ref.m[l])
						break
					}
				}
				for i, got := range layer.Score {
					// Scores are float32 in [0,1] computed from float32
					// gradients: float32 rounding of C − η·g̃ with η = 0.5
					// and |g̃| < 1 is a few 1e-8 (observed max 5.3e-8);
					// 1e-6 leaves a 20× margin and still catches any
					// wrong term.
					d := math.Abs(float64(got) - ref.cNew[l][i])
					maxDiff = max(maxDiff, d)
					if d > 1e-6 {
						t.Errorf("layer %s: C'[%d] = %v, want %v (C = %v, |diff| %g)", layer.Weight, i, got, ref.cNew[l][i], ref.c0[l][i], d)
					}
				}
			}
			t.Logf("%d+%d flips; max |C'_code − C'_ref| = %.3g", ref.kp, ref.pk, maxDiff)
			st := stats[0]
			// The loss is accumulated in float64 from float32 logits: 1e-5.
			if math.Abs(st.Extra["perturbed_loss"]-ref.loss1) > 1e-5 {
				t.Errorf("perturbed loss %v, want the loss at the perturbed mask %v", st.Extra["perturbed_loss"], ref.loss1)
			}
			if math.Abs(st.Loss-ref.loss0) > 1e-5 {
				t.Errorf("reported loss %v, want the loss at the current mask %v", st.Loss, ref.loss0)
			}
			if st.Extra["flips_kept_to_pruned"] != float64(ref.kp) || st.Extra["flips_pruned_to_kept"] != float64(ref.pk) {
				t.Errorf("flips kept→pruned %v, pruned→kept %v; want %d, %d", st.Extra["flips_kept_to_pruned"], st.Extra["flips_pruned_to_kept"], ref.kp, ref.pk)
			}
		})
	}
}

// TestJointWeightsStepByHand: with JointWeights one C-SAM step also moves
// the weights, by one SGD step with the gradient at the perturbed mask:
// ∂L/∂θ = (∂L/∂W̃) ⊙ M̃, and ∂L/∂W̃ = g̃/θ from the score gradient g̃ =
// (∂L/∂W̃) ⊙ θ of the float64 reference (its velocity after one step);
// θ' = θ − η_w·(∂L/∂θ + wd·θ). The scores move exactly as without joint
// weights (the same pass's gradient).
func TestJointWeightsStepByHand(t *testing.T) {
	cfg := toyConfig("A", "layer")
	cfg.Rho = 0.5
	cfg.JointWeights = true
	cfg.FinetuneLR, cfg.WeightDecay = 0.3, 0.01
	density := 1 - cfg.Sparsity
	r := newRefNet(density)
	ref := r.step(t, r.initScores(t, density), [2][]float64{}, density, "A", "layer", cfg.Rho, 0, cfg.SearchLR, cfg.SearchMomentum)
	if ref.kp == 0 {
		t.Fatal("the reference perturbation flips nothing")
	}
	layers, _, _ := runSearch(t, cfg, 1)
	moved := 0
	for l, layer := range layers {
		for i, got := range layer.W {
			th := r.theta[l][i]
			g := ref.vel[l][i] / th * ref.mTilde[l][i]
			want := th - cfg.FinetuneLR*(g+cfg.WeightDecay*th)
			if d := math.Abs(float64(got) - want); d > 1e-6 {
				t.Errorf("layer %s: θ'[%d] = %v, want %v (θ = %v, ∂L/∂θ = %v)", layer.Weight, i, got, want, th, g)
			}
			if ref.mTilde[l][i] == 1 && ref.m[l][i] == 0 {
				moved++ // a weight pruned in M and kept in M̃: trained from the perturbed pass
			}
		}
		for i, got := range layer.Score {
			if d := math.Abs(float64(got) - ref.cNew[l][i]); d > 1e-6 {
				t.Errorf("layer %s: C'[%d] = %v, want %v as without joint weights", layer.Weight, i, got, ref.cNew[l][i])
			}
		}
	}
	if moved == 0 {
		t.Error("no weight outside M was in M̃: the test does not show that the perturbed mask's gradient is used")
	}
}

// TestTwoStepsMomentumAndSchedule runs two search steps on the same toy
// batch and compares with two hand-computed steps: the second uses the
// momentum buffer of the first (v = μ·v + g̃) and the cosine learning rate
// at step 1 of 2, η·(1 + cos(π/2))/2 = η/2.
func TestTwoStepsMomentumAndSchedule(t *testing.T) {
	cfg := toyConfig("A", "layer")
	cfg.Rho = 0.5
	density := 1 - cfg.Sparsity
	r := newRefNet(density)
	s1 := r.step(t, r.initScores(t, density), [2][]float64{}, density, "A", "layer", cfg.Rho, 0, cfg.SearchLR, cfg.SearchMomentum)
	s2 := r.step(t, s1.cNew, s1.vel, density, "A", "layer", cfg.Rho, 0, cfg.SearchLR/2, cfg.SearchMomentum)
	if s2.kp == 0 {
		t.Fatalf("the second reference step flips nothing; choose another ρ")
	}
	layers, tilde, stats := runSearch(t, cfg, 2)
	if len(stats) != 2 {
		t.Fatalf("search ran %d steps, want 2", len(stats))
	}
	for l, layer := range layers {
		for i := range layer.Score {
			if float64(tilde[1][l][i]) != s2.mTilde[l][i] {
				t.Errorf("layer %s step 2: perturbed mask %v, want %v", layer.Weight, tilde[1][l], s2.mTilde[l])
				break
			}
		}
		for i, got := range layer.Score {
			// As in TestOneStepByHand; two steps double the rounding.
			if d := math.Abs(float64(got) - s2.cNew[l][i]); d > 1e-6 {
				t.Errorf("layer %s: C''[%d] = %v, want %v (|diff| %g)", layer.Weight, i, got, s2.cNew[l][i], d)
			}
		}
		// The final mask search() leaves is the top-k of the last scores.
		checkTopKMargin(t, "final scores", s2.cNew[l], r.keep[l], 1e-4)
		want := refTopK(s2.cNew[l], r.keep[l])
		for i, mk := range layer.Mask {
			if float64(mk) != want[i] {
				t.Errorf("layer %s: final mask %v, want top-k of C'' %v", layer.Weight, layer.Mask, want)
				break
			}
		}
	}
	if math.Abs(stats[1].Loss-s2.loss0) > 1e-5 || math.Abs(stats[1].Extra["perturbed_loss"]-s2.loss1) > 1e-5 {
		t.Errorf("step 2 losses %v / %v (perturbed), want %v / %v", stats[1].Loss, stats[1].Extra["perturbed_loss"], s2.loss0, s2.loss1)
	}
}

// TestDensityConstantDuringSearch runs several search steps on the toy
// data and checks at every step that the binary mask of every layer keeps
// exactly ⌈κ·N_l⌉ ones: M = B(C) for every variant, and the perturbed mask
// M̃ of the second pass for A, B and C (variant E samples a Bernoulli mask
// whose density is random; its evaluation mask B(C) is checked). A global
// top-k run checks the total instead. Scores stay in [0, 1] throughout.
func TestDensityConstantDuringSearch(t *testing.T) {
	src := &toydata.Source{Batch: 8, Steps: 4, Size: 8, Seed: 3}
	cases := []struct {
		variant   string
		global    bool
		tildeSame bool
	}{
		{"A", false, true}, {"B", false, true}, {"C", false, true}, {"E", false, false}, {"A", true, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/global=%v", c.variant, c.global), func(t *testing.T) {
			m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.5, InputSize: 8, Classes: 2, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig("csam")
			cfg.Sparsity, cfg.Variant, cfg.Global = 0.7, c.variant, c.global
			cfg.Batch, cfg.Seed, cfg.Workers = 8, 9, 1
			// Large radius and rate so masks really move in 4 steps.
			cfg.Rho, cfg.RhoHamming, cfg.SearchLR = 0.2, 0.05, 0.5
			layers, err := SelectLayers(m.Graph, cfg.Selection)
			if err != nil {
				t.Fatal(err)
			}
			density := 1 - cfg.Sparsity
			allocate(layers, density)
			total, totalKeep := 0, 0
			for _, l := range layers {
				total += len(l.W)
			}
			totalKeep = keepCount(density, total)
			count := func(v []float32) int {
				n := 0
				for _, x := range v {
					switch x {
					case 0:
					case 1:
						n++
					default:
						t.Fatalf("mask value %v is not binary", x)
					}
				}
				return n
			}
			check := func(when string, get func(*Layer) []float32) {
				sum := 0
				for _, l := range layers {
					n := count(get(l))
					sum += n
					if !c.global && n != l.Keep {
						t.Errorf("%s: layer %s keeps %d of %d, want ⌈κ·N⌉ = %d", when, l.Weight, n, len(l.W), l.Keep)
					}
				}
				if sum != totalKeep && c.global {
					t.Errorf("%s: %d kept over all layers, want ⌈κ·N⌉ = %d", when, sum, totalKeep)
				}
			}
			steps, flips := 0, 0.0
			hooks := finetune.Hooks{OnStep: func(it finetune.Iter, st finetune.StepStats) {
				steps++
				check(fmt.Sprintf("step %d mask M", it.Global), func(l *Layer) []float32 { return l.Mask })
				if c.tildeSame {
					check(fmt.Sprintf("step %d perturbed mask", it.Global), func(l *Layer) []float32 {
						return m.Graph.Initializer(maskName(l.Weight)).Value.F32
					})
				}
				flips += st.Extra["flips_kept_to_pruned"] + st.Extra["flips_pruned_to_kept"]
				for _, l := range layers {
					for i, c := range l.Score {
						if !(c >= 0 && c <= 1) {
							t.Fatalf("step %d: layer %s score[%d] = %v outside [0, 1]", it.Global, l.Weight, i, c)
						}
					}
				}
			}}
			bin := newBinarizer(layers, density, cfg.Global)
			lc := finetune.LoopConfig{Phase: "search", Epochs: 1}
			if err := search(context.Background(), m, layers, bin, src, cfg, lc, hooks); err != nil {
				t.Fatal(err)
			}
			if steps != src.Steps {
				t.Fatalf("OnStep ran %d times, want %d", steps, src.Steps)
			}
			check("final mask", func(l *Layer) []float32 { return l.Mask })
			// The check must not pass vacuously: the search did perturb.
			if flips == 0 {
				t.Errorf("no flips in %d steps: the perturbation never changed the structure", steps)
			}
		})
	}
}

// TestCountFlips checks the flip counter on masks built by hand.
func TestCountFlips(t *testing.T) {
	a := &Layer{Weight: "a", Mask: []float32{1, 1, 0, 0, 1, 0}}
	b := &Layer{Weight: "b", Mask: []float32{0, 1, 1}}
	s := &searcher{
		layers: []*Layer{a, b},
		pert: [][]float32{
			{0, 1, 1, 0, 0, 0}, // kept→pruned at 0 and 4, pruned→kept at 2
			{1, 1, 1},          // pruned→kept at 0
		},
	}
	extra := map[string]float64{}
	s.countFlips(extra)
	if extra["flips_kept_to_pruned"] != 2 || extra["flips_pruned_to_kept"] != 2 {
		t.Errorf("countFlips = kept→pruned %v, pruned→kept %v; want 2, 2", extra["flips_kept_to_pruned"], extra["flips_pruned_to_kept"])
	}
	// Identical masks: no flips (and the map is overwritten, not summed).
	s.pert = [][]float32{slices.Clone(a.Mask), slices.Clone(b.Mask)}
	s.countFlips(extra)
	if extra["flips_kept_to_pruned"] != 0 || extra["flips_pruned_to_kept"] != 0 {
		t.Errorf("countFlips on equal masks = %v, %v; want 0, 0", extra["flips_kept_to_pruned"], extra["flips_pruned_to_kept"])
	}
	// Complement: every entry flips.
	s.pert = [][]float32{{0, 0, 1, 1, 0, 1}, {1, 0, 0}}
	s.countFlips(extra)
	if extra["flips_kept_to_pruned"] != 5 || extra["flips_pruned_to_kept"] != 4 {
		t.Errorf("countFlips on the complement = %v, %v; want 5, 4", extra["flips_kept_to_pruned"], extra["flips_pruned_to_kept"])
	}
}

// TestHammingRadius checks variant B's flip budget r = ⌈ρ_H·κ·N_l⌉
// (CSAM-SPEC §2.5): on κ·N, not on the rounded-up keep count ⌈κ·N⌉, and
// not rounded up by floating-point noise (0.01·0.9·1000 is 9.000000000000002
// in float64).
func TestHammingRadius(t *testing.T) {
	for _, c := range []struct {
		rhoH, density float64
		n, want       int
	}{
		{0.21, 0.5, 9, 1},    // 0.945 (⌈0.21·5⌉ would be 2)
		{0.21, 0.5, 12, 2},   // 1.26
		{0.01, 0.9, 1000, 9}, // 9 up to rounding
		{0.01, 0.1, 100, 1},  // 0.1
		{0.01, 0.5, 4, 1},    // 0.02: at least one flip per direction
		{0, 0.5, 100, 0},
	} {
		if got := hammingRadius(c.rhoH, c.density, c.n); got != c.want {
			t.Errorf("hammingRadius(%v, %v, %d) = %d, want %d", c.rhoH, c.density, c.n, got, c.want)
		}
	}
}

package csam

import (
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Layer is one prunable weight tensor and its masks.
type Layer struct {
	// Weight is the initializer name of θ; Node the node that reads it.
	Weight string
	Node   string
	OpType string
	Shape  []int
	// W aliases the initializer's data (θ).
	W []float32
	// Score is the soft mask C ∈ [0,1] (or the method's importance score).
	Score []float32
	// Mask is the current binary mask B(C) (1 kept, 0 pruned).
	Mask []float32
	// Keep is the number of entries kept (layer-wise budget).
	Keep int

	work []float32
	abs  []float32 // |score| for HYDRA's top-k
}

// Len is the number of weights of the layer.
func (l *Layer) Len() int { return len(l.W) }

// Kept counts the ones of Mask.
func (l *Layer) Kept() int {
	n := 0
	for _, m := range l.Mask {
		if m != 0 {
			n++
		}
	}
	return n
}

// Selection chooses the prunable tensors.
type Selection struct {
	// SkipFirst leaves the first convolution dense; SkipLast the final
	// classifier (CSAM-SPEC §2.1: both are pruned by default, as HYDRA does).
	SkipFirst, SkipLast bool
}

// SelectLayers returns the prunable weights of g in graph order: the weight
// (input 1) of every Conv, ConvTranspose and Gemm and the initializer
// operand of every MatMul. Biases and BatchNormalization parameters are
// never pruned.
func SelectLayers(g *graph.Graph, sel Selection) ([]*Layer, error) {
	var out []*Layer
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		var wname string
		switch n.OpType {
		case "Conv", "ConvTranspose", "Gemm":
			if len(n.Inputs) > 1 {
				wname = n.Inputs[1]
			}
		case "MatMul":
			for _, in := range n.Inputs {
				if g.Initializer(in) != nil {
					wname = in
				}
			}
		}
		if wname == "" {
			continue
		}
		in := g.Initializer(wname)
		if in == nil || in.Value == nil || in.Value.DType != tensor.Float32 {
			continue // weight computed at run time: not prunable here
		}
		if seen[wname] {
			return nil, fmt.Errorf("csam: weight %q is shared by several nodes (second: %q); shared weights cannot be masked independently", wname, n.Name)
		}
		seen[wname] = true
		out = append(out, &Layer{
			Weight: wname, Node: n.Name, OpType: n.OpType,
			Shape: append([]int(nil), in.Value.Shape...), W: in.Value.F32,
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("csam: the model has no prunable Conv, ConvTranspose, Gemm or MatMul weights")
	}
	if sel.SkipFirst && len(out) > 0 {
		out = out[1:]
	}
	if sel.SkipLast && len(out) > 0 {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("csam: no prunable layer left after skipping the first and last")
	}
	return out, nil
}

// allocate gives each layer its score, mask and scratch buffers and its
// keep budget at the given density.
func allocate(layers []*Layer, density float64) {
	for _, l := range layers {
		n := len(l.W)
		l.Score = make([]float32, n)
		l.Mask = make([]float32, n)
		l.work = make([]float32, n)
		l.Keep = keepCount(density, n)
	}
}

// PercentileInit sets each layer's soft mask to clip(|θ| / Q(|θ|, τ), 0, 1)
// (CSAM-SPEC §2.2, after the paper's percentile-scaled initialization).
// tau ≤ 0 takes the default τ = 100·(1 − density), the sparsity
// percentile: every kept weight then starts at exactly C = 1. τ = 100
// divides by the largest magnitude, so no entry is clipped and the kept
// ones keep their order by |θ|.
func PercentileInit(layers []*Layer, density, tau float64) {
	tau = initPercentile(density, tau)
	for _, l := range layers {
		for i, w := range l.W {
			l.work[i] = float32(math.Abs(float64(w)))
		}
		q := percentile(l.work, tau)
		if q < 1e-12 {
			q = 1e-12
		}
		for i, w := range l.W {
			c := math.Abs(float64(w)) / q
			if c > 1 {
				c = 1
			}
			l.Score[i] = float32(c)
		}
	}
}

// initPercentile is the τ of the percentile initialization: tau, or the
// sparsity percentile 100·(1 − density) when tau ≤ 0.
func initPercentile(density, tau float64) float64 {
	if tau <= 0 {
		return 100 * (1 - density)
	}
	return tau
}

// MagnitudeScores sets each layer's score to |θ|.
func MagnitudeScores(layers []*Layer) {
	for _, l := range layers {
		for i, w := range l.W {
			l.Score[i] = float32(math.Abs(float64(w)))
		}
	}
}

// binarizer turns scores into binary masks.
type binarizer struct {
	global bool
	// work is scratch for global top-k (len = total weights).
	work    []float32
	concat  []float32
	weights []float32 // global: the layers' weights, concatenated (tie-break)
	out     []float32
	keep    int
}

func newBinarizer(layers []*Layer, density float64, global bool) *binarizer {
	b := &binarizer{global: global}
	if global {
		total := 0
		for _, l := range layers {
			total += len(l.W)
		}
		b.work = make([]float32, total)
		b.concat = make([]float32, total)
		b.weights = make([]float32, total)
		b.out = make([]float32, total)
		b.keep = keepCount(density, total)
	}
	return b
}

// apply writes B(score(l)) into dst(l) for every layer: layer-wise top-k,
// or one top-k over all layers when global. Ties break by weight magnitude
// |θ|, then by index (layer order first for global): see topKMaskMag.
func (b *binarizer) apply(layers []*Layer, score func(*Layer) []float32, dst func(*Layer) []float32) {
	if !b.global {
		for _, l := range layers {
			topKMaskMag(dst(l), score(l), l.W, l.work, l.Keep)
		}
		return
	}
	off := 0
	for _, l := range layers {
		copy(b.weights[off:], l.W)
		off += copy(b.concat[off:], score(l))
	}
	topKMaskMag(b.out, b.concat, b.weights, b.work, b.keep)
	off = 0
	for _, l := range layers {
		off += copy(dst(l), b.out[off:off+len(l.W)])
	}
}

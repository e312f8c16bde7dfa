package csam

import (
	"fmt"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Mask tensors enter the training graph as an extra initializer per layer
// and a Mul node: W_eff = θ ⊙ M. The engine then gives the gradient with
// respect to M as (∂L/∂W_eff) ⊙ θ, which is exactly the straight-through
// mask gradient of CSAM-SPEC §2.1.

func maskName(weight string) string   { return weight + "::csam_mask" }
func maskedName(weight string) string { return weight + "::csam_masked" }

// insertMaskNodes rewrites g so every layer's consumer reads θ ⊙ M, and
// returns the mask tensors (aliasing the new initializers). The caller
// removes them again with removeMaskNodes before export.
func insertMaskNodes(g *graph.Graph, layers []*Layer) (map[string]*tensor.Tensor, error) {
	// Readers by weight, not by node name: ONNX node names are optional
	// and need not be unique, and a layer's weight has one reader
	// (SelectLayers).
	readers := map[string][]*graph.Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" && !slices.Contains(readers[in], n) {
				readers[in] = append(readers[in], n)
			}
		}
	}
	masks := map[string]*tensor.Tensor{}
	var prefix []*graph.Node
	for _, l := range layers {
		if len(readers[l.Weight]) == 0 {
			return nil, fmt.Errorf("csam: no node reads the weight %q of layer %q", l.Weight, l.Node)
		}
		if g.Initializer(maskName(l.Weight)) != nil {
			return nil, fmt.Errorf("csam: the model already has mask nodes for %q", l.Weight)
		}
		m := tensor.New(l.Shape...)
		for i := range m.F32 {
			m.F32[i] = 1
		}
		masks[l.Weight] = m
		g.Initializers = append(g.Initializers, &graph.Initializer{Name: maskName(l.Weight), Value: m})
		prefix = append(prefix, &graph.Node{
			Name: l.Weight + "::csam_mul", OpType: "Mul",
			Inputs: []string{l.Weight, maskName(l.Weight)}, Outputs: []string{maskedName(l.Weight)},
		})
		for _, n := range readers[l.Weight] {
			for i, in := range n.Inputs {
				if in == l.Weight {
					n.Inputs[i] = maskedName(l.Weight)
				}
			}
		}
	}
	g.Nodes = append(prefix, g.Nodes...)
	return masks, nil
}

// removeMaskNodes undoes insertMaskNodes, leaving θ wired to its consumer.
func removeMaskNodes(g *graph.Graph, layers []*Layer) {
	isMask := map[string]string{}
	for _, l := range layers {
		isMask[maskedName(l.Weight)] = l.Weight
	}
	nodes := g.Nodes[:0]
	for _, n := range g.Nodes {
		if len(n.Outputs) == 1 && isMask[n.Outputs[0]] != "" && n.OpType == "Mul" {
			continue
		}
		for i, in := range n.Inputs {
			if w := isMask[in]; w != "" {
				n.Inputs[i] = w
			}
		}
		nodes = append(nodes, n)
	}
	g.Nodes = nodes
	inits := g.Initializers[:0]
	for _, in := range g.Initializers {
		keep := true
		for _, l := range layers {
			if in.Name == maskName(l.Weight) {
				keep = false
				break
			}
		}
		if keep {
			inits = append(inits, in)
		}
	}
	g.Initializers = inits
}

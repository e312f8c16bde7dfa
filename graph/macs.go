package graph

// MACs returns the multiply-accumulate count of every Conv,
// ConvTranspose, Gemm and MatMul node of m for the given value shapes (as
// InferShapes returns them), keyed by NodeKey. A node whose shapes are
// missing is left out.
//
// The counts are by formula: Conv N·M·∏out_spatial·(C/group)·∏kernel,
// ConvTranspose N·C·∏in_spatial·(M/group)·∏kernel (every input pixel
// times its taps), Gemm M·N·K, MatMul ∏(output shape)·K. Bias additions
// are not counted.
func MACs(m *Model, shapes map[string][]int) map[string]int64 {
	out := map[string]int64{}
	if m == nil || m.Graph == nil {
		return out
	}
	for _, n := range m.Graph.Nodes {
		if len(n.Inputs) < 2 || len(n.Outputs) < 1 {
			continue
		}
		a, okA := shapes[n.Inputs[0]]
		b, okB := shapes[n.Inputs[1]]
		y, okY := shapes[n.Outputs[0]]
		if !okA || !okB || !okY {
			continue
		}
		switch n.OpType {
		case "Conv":
			if len(b) < 2 {
				continue
			}
			out[NodeKey(n)] = prod64(y) * prod64(b[1:])
		case "ConvTranspose":
			if len(b) < 2 {
				continue
			}
			out[NodeKey(n)] = prod64(a) * prod64(b[1:])
		case "Gemm":
			if len(a) != 2 || len(y) != 2 {
				continue
			}
			k := a[1]
			if n.AttrInt("transA", 0) != 0 {
				k = a[0]
			}
			out[NodeKey(n)] = prod64(y) * int64(k)
		case "MatMul":
			if len(a) == 0 {
				continue
			}
			out[NodeKey(n)] = prod64(y) * int64(a[len(a)-1])
		}
	}
	return out
}

func prod64(s []int) int64 {
	p := int64(1)
	for _, d := range s {
		p *= int64(d)
	}
	return p
}

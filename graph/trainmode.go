package graph

import (
	"fmt"
	"slices"
)

// TrainingModeNodes lists the nodes of m's main graph that behave as in
// training when run for inference: BatchNormalization with
// training_mode = 1, or before opset 14 with its statistics outputs (it
// normalizes with each batch's own statistics), and
// Dropout whose training_mode input is a constant true (it drops at
// random), as torch.onnx.export(training=TrainingMode.TRAINING) writes
// them. Such a model's outputs depend on the batch and on chance.
func TrainingModeNodes(m *Model) []*Node {
	var out []*Node
	var inf *inferer
	for _, n := range m.Graph.Nodes {
		if !isDefaultDomain(n) {
			continue
		}
		switch n.OpType {
		case "BatchNormalization":
			// Before opset 14 the training form is the one with the
			// statistics outputs (ONNX's "output case #1"; onnxruntime
			// then normalizes with batch statistics).
			if n.AttrInt("training_mode", 0) != 0 || (m.Opset() < 14 && slices.ContainsFunc(n.Outputs[min(1, len(n.Outputs)):], func(o string) bool { return o != "" })) {
				out = append(out, n)
			}
		case "Dropout":
			if len(n.Inputs) < 3 || n.Inputs[2] == "" {
				continue
			}
			if inf == nil {
				inf = newInferer(m, nil, true, 1)
				_ = inf.run()
			}
			if v := inf.vals[n.Inputs[2]]; v != nil && v.val != nil && len(v.val.I64) == 1 && v.val.I64[0] != 0 {
				out = append(out, n)
			}
		}
	}
	return out
}

// SetEvalMode turns the nodes TrainingModeNodes lists into their
// inference forms: BatchNormalization gets training_mode = 0 and drops
// its running-statistics outputs (which nothing may read), Dropout loses
// its training_mode input. The running statistics stored in the file are
// then what normalizes, as in PyTorch's eval mode. It returns the number
// of nodes changed, and an error, changing nothing, when a statistics
// output that would go is read by a node or is a graph output.
func SetEvalMode(m *Model) (int, error) {
	g := m.Graph
	consumers := g.Consumers()
	var bns, drops []*Node
	for _, n := range TrainingModeNodes(m) {
		if n.OpType == "Dropout" {
			drops = append(drops, n)
			continue
		}
		for _, o := range n.Outputs[1:] {
			if o != "" && (len(consumers[o]) > 0 || g.IsGraphOutput(o)) {
				return 0, fmt.Errorf("graph: BatchNormalization %q: its running-statistics output %q is read, so it cannot be put in eval mode", n.Name, o)
			}
		}
		bns = append(bns, n)
	}
	for _, n := range bns {
		for _, a := range n.Attrs {
			if a.Name == "training_mode" {
				a.I = 0
			}
		}
		n.Outputs = n.Outputs[:1]
	}
	var flags []string
	for _, n := range drops {
		flags = append(flags, n.Inputs[2])
		n.Inputs = n.Inputs[:2]
	}
	// The Constants that made the flags go when nothing else reads them.
	producers, consumers := g.Producers(), g.Consumers()
	for _, flag := range flags {
		if p := producers[flag]; p != nil && p.OpType == "Constant" && !g.IsGraphOutput(flag) && len(consumers[flag]) == 0 {
			g.Nodes = slices.DeleteFunc(g.Nodes, func(x *Node) bool { return x == p })
		}
	}
	pruneValueInfo(g) // of the statistics outputs and flags gone
	return len(bns) + len(drops), nil
}

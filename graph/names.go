package graph

import (
	"fmt"
	"strconv"
)

// NameNodes gives every node of g (the main graph; sub-graphs keep
// theirs) that has no name, or a name an earlier node already has, a
// name no other node has: its first output's name when that is free (a
// value name is unique in the graph, and users find it in the file), else
// the op type with a number. Names that are already unique are kept, so a
// graph exported by PyTorch comes out unchanged. It returns how many
// nodes it named.
//
// The channel analysis and the mask rewiring refer to nodes by name;
// ONNX makes names optional and does not require them to be unique.
func NameNodes(g *Graph) int {
	if g == nil {
		return 0
	}
	taken := map[string]bool{}
	for _, n := range g.Nodes {
		if n.Name != "" {
			taken[n.Name] = true
		}
	}
	seen := map[string]bool{}
	named := 0
	for _, n := range g.Nodes {
		if n.Name != "" && !seen[n.Name] {
			seen[n.Name] = true
			continue
		}
		name := ""
		if len(n.Outputs) > 0 && n.Outputs[0] != "" && !taken[n.Outputs[0]] {
			name = n.Outputs[0]
		} else {
			base := n.Name
			if base == "" {
				base = n.OpType
			}
			for k := 2; ; k++ {
				if c := base + "_" + strconv.Itoa(k); !taken[c] {
					name = c
					break
				}
			}
		}
		n.Name = name
		taken[name], seen[name] = true, true
		named++
	}
	return named
}

// uniqueNodeNames reports the first node of g whose name is empty or
// repeats an earlier node's.
func uniqueNodeNames(g *Graph) error {
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		if n.Name == "" || seen[n.Name] {
			what := "has no name"
			if n.Name != "" {
				what = fmt.Sprintf("repeats the name %q", n.Name)
			}
			return &ModelError{Msg: fmt.Sprintf("%s %s; the channel analysis tells nodes apart by name (graph.NameNodes names every node uniquely)", nodeRef(n), what)}
		}
		seen[n.Name] = true
	}
	return nil
}

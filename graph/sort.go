package graph

import (
	"errors"
	"slices"

	gonumgraph "gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	"gonum.org/v1/gonum/graph/topo"
)

// Sort returns g's nodes in a topological order: every node comes after
// the nodes producing its inputs. The order is stable: where the data flow
// leaves a choice, nodes keep their file order, so a graph already in
// topological order comes back unchanged. Inputs that no node produces
// (graph inputs, initializers, undefined names) impose no constraint.
//
// If the graph has a cycle, Sort returns a *CycleError naming the nodes of
// one cycle (the one through the earliest node in file order).
func Sort(g *Graph) ([]*Node, error) {
	dg, selfLoop := dependencyGraph(g)
	if selfLoop >= 0 {
		return nil, &CycleError{Nodes: []*Node{g.Nodes[selfLoop]}}
	}
	// File order breaks ties: node IDs are file positions.
	byID := func(ns []gonumgraph.Node) {
		slices.SortFunc(ns, func(a, b gonumgraph.Node) int { return int(a.ID() - b.ID()) })
	}
	sorted, err := topo.SortStabilized(dg, byID)
	if err != nil {
		var u topo.Unorderable
		if errors.As(err, &u) && len(u) > 0 {
			ids := make([]int, len(u[0]))
			for i, n := range u[0] {
				ids[i] = int(n.ID())
			}
			return nil, &CycleError{Nodes: cycleIn(g, ids)}
		}
		return nil, err
	}
	out := make([]*Node, len(sorted))
	for i, n := range sorted {
		out[i] = g.Nodes[n.ID()]
	}
	return out, nil
}

// dependencyGraph builds the producer → consumer graph of g's nodes, node
// IDs being file positions. selfLoop is the first node that reads its own
// output, or -1 (gonum's simple graphs cannot hold self edges).
func dependencyGraph(g *Graph) (dg *simple.DirectedGraph, selfLoop int) {
	dg = simple.NewDirectedGraph()
	producer := map[string]int{}
	for i, n := range g.Nodes {
		dg.AddNode(simple.Node(i))
		for _, o := range n.Outputs {
			if _, dup := producer[o]; o != "" && !dup {
				producer[o] = i
			}
		}
	}
	selfLoop = -1
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			j, ok := producer[in]
			if in == "" || !ok {
				continue
			}
			if j == i {
				if selfLoop < 0 {
					selfLoop = i
				}
				continue
			}
			dg.SetEdge(dg.NewEdge(simple.Node(j), simple.Node(i)))
		}
	}
	return dg, selfLoop
}

// cycleIn finds one cycle among the nodes of a strongly connected
// component (file positions ids), starting at its earliest node, and
// returns it in data-flow order.
func cycleIn(g *Graph, ids []int) []*Node {
	in := map[int]bool{}
	start := ids[0]
	for _, id := range ids {
		in[id] = true
		start = min(start, id)
	}
	producer := map[string]int{}
	for _, id := range ids {
		for _, o := range g.Nodes[id].Outputs {
			if o != "" {
				producer[o] = id
			}
		}
	}
	// Breadth-first search backwards along inputs from start until start is
	// reached again; following parents then gives the cycle.
	next := map[int]int{} // node -> the node it feeds on the way to start
	queue := []int{start}
	seen := map[int]bool{}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, name := range g.Nodes[cur].Inputs {
			p, ok := producer[name]
			if !ok || !in[p] {
				continue
			}
			if p == start {
				// start feeds cur, and cur feeds next[cur] and so on back to
				// start: that is the cycle, in data-flow order.
				path := []*Node{g.Nodes[start]}
				for x := cur; x != start; x = next[x] {
					path = append(path, g.Nodes[x])
				}
				return path
			}
			if !seen[p] {
				seen[p] = true
				next[p] = cur
				queue = append(queue, p)
			}
		}
	}
	// Not reached for a real strongly connected component; return it whole.
	out := make([]*Node, len(ids))
	for i, id := range ids {
		out[i] = g.Nodes[id]
	}
	return out
}

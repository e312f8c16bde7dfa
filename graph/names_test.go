package graph

import (
	"slices"
	"testing"
)

// TestNameNodes: unique names stay; an unnamed node, or a later one
// repeating a name, takes its first output's name unless a node has it,
// else its name (or op type) with a number; every name that results is
// unique.
func TestNameNodes(t *testing.T) {
	g := &Graph{Nodes: []*Node{
		nd("a", "Relu", s("x"), s("y1")),
		nd("", "Relu", s("y1"), s("y2")),
		nd("a", "Relu", s("y2"), s("y3")),
		nd("", "Relu", s("y3"), s("a_2")),
		nd("y5", "Relu", s("a_2"), s("y4")),
		nd("", "Relu", s("y4"), s("y5")), // its output's name is another node's name
		nd("", "Relu", s("y5"), s("")),
		nd("a", "Relu", s("y1"), s("a")), // a repeat whose output names a node
	}}
	if n := NameNodes(g); n != 6 {
		t.Errorf("NameNodes named %d nodes, want 6", n)
	}
	var got []string
	for _, n := range g.Nodes {
		got = append(got, n.Name)
	}
	want := []string{"a", "y2", "y3", "a_2", "y5", "Relu_2", "Relu_3", "a_3"}
	if !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
	if err := uniqueNodeNames(g); err != nil {
		t.Error(err)
	}
	if n := NameNodes(g); n != 0 {
		t.Errorf("a second NameNodes renamed %d nodes", n)
	}
}

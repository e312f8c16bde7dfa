package graph

import (
	"fmt"
	"strings"
)

// nodeRef renders a node for messages: `node "conv1" (Conv)`. A node with
// no name is named by its first output.
func nodeRef(n *Node) string {
	if n == nil {
		return "node <nil>"
	}
	name := n.Name
	if name == "" && len(n.Outputs) > 0 {
		return fmt.Sprintf("node producing %q (%s)", n.Outputs[0], n.OpType)
	}
	return fmt.Sprintf("node %q (%s)", name, n.OpType)
}

// NodeKey is how maps keyed by node (MACs, for example) name a node: its
// name, or, when it has none, its first output prefixed with "@".
func NodeKey(n *Node) string {
	if n.Name != "" {
		return n.Name
	}
	if len(n.Outputs) > 0 {
		return "@" + n.Outputs[0]
	}
	return "@"
}

// UndefinedValueError reports a value that is used but that no node,
// initializer or graph input produces: a node input (Node set) or a graph
// output (Node nil).
type UndefinedValueError struct {
	Node  *Node // nil for a graph output
	Index int   // position in Node.Inputs or Graph.Outputs
	Name  string
}

func (e *UndefinedValueError) Error() string {
	if e.Node == nil {
		return fmt.Sprintf("graph: graph output %q is produced by no node, initializer or graph input", e.Name)
	}
	return fmt.Sprintf("graph: %s: input %q is produced by no node, initializer or graph input", nodeRef(e.Node), e.Name)
}

// DuplicateValueError reports a value name defined more than once: by two
// nodes, or by a node and an initializer or graph input, or by two
// initializers.
type DuplicateValueError struct {
	Name string
	// Definers describes each definition, for example `node "a" (Conv)`,
	// "initializer" or "graph input".
	Definers []string
}

func (e *DuplicateValueError) Error() string {
	return fmt.Sprintf("graph: value %q is defined %d times: by %s", e.Name, len(e.Definers), strings.Join(e.Definers, " and by "))
}

// CycleError reports nodes that depend on themselves. Nodes lists one
// cycle in order: each node consumes an output of the one before it, and
// the first consumes an output of the last.
type CycleError struct {
	Nodes []*Node
}

func (e *CycleError) Error() string {
	const max = 10
	var b strings.Builder
	b.WriteString("graph: cycle: ")
	for i, n := range e.Nodes {
		if i == max {
			fmt.Fprintf(&b, " → ... (%d nodes in all)", len(e.Nodes))
			break
		}
		if i > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(nodeRef(n))
	}
	if len(e.Nodes) > 0 && len(e.Nodes) <= max {
		fmt.Fprintf(&b, " → back to %q", e.Nodes[0].Name)
	}
	return b.String()
}

// NodeError is a problem with one node (an empty op type, an attribute
// that cannot be interpreted, shapes that do not fit).
type NodeError struct {
	Node *Node
	Msg  string
}

func (e *NodeError) Error() string { return fmt.Sprintf("graph: %s: %s", nodeRef(e.Node), e.Msg) }

func nodeErrorf(n *Node, format string, args ...any) error {
	return &NodeError{Node: n, Msg: fmt.Sprintf(format, args...)}
}

// InitializerError is a problem with an initializer's tensor.
type InitializerError struct {
	Name string
	Msg  string
}

func (e *InitializerError) Error() string {
	return fmt.Sprintf("graph: initializer %q: %s", e.Name, e.Msg)
}

// ModelError is a problem with the model as a whole (a missing opset
// import, no graph).
type ModelError struct {
	Msg string
}

func (e *ModelError) Error() string { return "graph: " + e.Msg }

package graph

// Producers maps every node output name to the node that produces it. If a
// value is produced twice (an invalid graph), the first producer in file
// order wins.
func (g *Graph) Producers() map[string]*Node {
	p := make(map[string]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if _, ok := p[o]; !ok {
				p[o] = n
			}
		}
	}
	return p
}

// Consumers maps every value name to the nodes that read it, in file
// order. A node reading a value twice is listed twice.
func (g *Graph) Consumers() map[string][]*Node {
	c := make(map[string][]*Node)
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				c[in] = append(c[in], n)
			}
		}
	}
	return c
}

// IsGraphOutput reports whether name is one of g's outputs.
func (g *Graph) IsGraphOutput(name string) bool {
	for _, o := range g.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

// HasOp reports whether a node of g (not of its subgraphs) has the op type.
func (g *Graph) HasOp(op string) bool {
	for _, n := range g.Nodes {
		if n.OpType == op {
			return true
		}
	}
	return false
}

// IsGraphInput reports whether name is one of g's inputs.
func (g *Graph) IsGraphInput(name string) bool {
	for _, o := range g.Inputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

// names returns every value name defined in g (graph inputs, initializers,
// node outputs).
func (g *Graph) names() map[string]bool {
	s := map[string]bool{}
	for _, vi := range g.Inputs {
		s[vi.Name] = true
	}
	for _, in := range g.Initializers {
		s[in.Name] = true
	}
	for _, sp := range g.SparseInitializers {
		if sp.Dense != nil {
			s[sp.Dense.Name] = true
		}
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			s[o] = true
		}
		s[n.Name] = true
	}
	return s
}

// uniqueName returns base, or base with a numeric suffix, such that it is
// not in taken; it adds the result to taken.
func uniqueName(taken map[string]bool, base string) string {
	name := base
	for i := 1; taken[name]; i++ {
		name = base + "_" + itoa(int64(i))
	}
	taken[name] = true
	return name
}

// RemoveInitializer deletes the dense initializer named name and reports
// whether there was one. Sparse initializers are left alone.
func (g *Graph) RemoveInitializer(name string) bool {
	for i, in := range g.Initializers {
		if in.Name == name {
			g.Initializers = append(g.Initializers[:i], g.Initializers[i+1:]...)
			return true
		}
	}
	return false
}

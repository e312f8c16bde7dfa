package graph

import (
	"maps"
	"slices"
)

// Clone returns a deep copy of m: no slice, map, tensor or sub-graph of
// the copy is shared with m, so a pass can rewrite the copy while m stays
// as it was.
func (m *Model) Clone() *Model {
	if m == nil {
		return nil
	}
	c := *m
	c.OpsetImports = make([]OpsetImport, len(m.OpsetImports))
	for i, o := range m.OpsetImports {
		c.OpsetImports[i] = OpsetImport{Domain: o.Domain, Version: o.Version, Present: maps.Clone(o.Present), Unknown: slices.Clone(o.Unknown)}
	}
	c.Graph = m.Graph.Clone()
	c.Metadata = clonePairs(m.Metadata)
	c.Opaque = cloneOpaque(m.Opaque)
	c.Present = maps.Clone(m.Present)
	c.Unknown = slices.Clone(m.Unknown)
	return &c
}

// Clone returns a deep copy of g (see Model.Clone).
func (g *Graph) Clone() *Graph {
	if g == nil {
		return nil
	}
	c := *g
	c.Nodes = make([]*Node, len(g.Nodes))
	for i, n := range g.Nodes {
		c.Nodes[i] = n.Clone()
	}
	c.Initializers = cloneInits(g.Initializers)
	if g.SparseInitializers != nil {
		c.SparseInitializers = make([]*SparseInitializer, len(g.SparseInitializers))
		for i, s := range g.SparseInitializers {
			if s == nil {
				continue
			}
			c.SparseInitializers[i] = &SparseInitializer{
				Values: s.Values.Clone(), Indices: s.Indices.Clone(), Dims: slices.Clone(s.Dims),
				Dense: s.Dense.Clone(), Present: maps.Clone(s.Present), Unknown: slices.Clone(s.Unknown),
			}
		}
	}
	c.Inputs = cloneVIs(g.Inputs)
	c.Outputs = cloneVIs(g.Outputs)
	c.ValueInfo = cloneVIs(g.ValueInfo)
	c.Metadata = clonePairs(g.Metadata)
	c.Opaque = cloneOpaque(g.Opaque)
	c.Present = maps.Clone(g.Present)
	c.Unknown = slices.Clone(g.Unknown)
	return &c
}

// Clone returns a deep copy of n.
func (n *Node) Clone() *Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Inputs = slices.Clone(n.Inputs)
	c.Outputs = slices.Clone(n.Outputs)
	if n.Attrs != nil {
		c.Attrs = make([]*Attribute, len(n.Attrs))
		for i, a := range n.Attrs {
			c.Attrs[i] = a.Clone()
		}
	}
	c.Metadata = clonePairs(n.Metadata)
	c.Opaque = cloneOpaque(n.Opaque)
	c.Present = maps.Clone(n.Present)
	c.Unknown = slices.Clone(n.Unknown)
	return &c
}

// Clone returns a deep copy of a.
func (a *Attribute) Clone() *Attribute {
	if a == nil {
		return nil
	}
	c := *a
	c.S = slices.Clone(a.S)
	c.T = a.T.Clone()
	c.G = a.G.Clone()
	c.Floats = slices.Clone(a.Floats)
	c.Ints = slices.Clone(a.Ints)
	if a.Strings != nil {
		c.Strings = make([][]byte, len(a.Strings))
		for i, s := range a.Strings {
			c.Strings[i] = slices.Clone(s)
		}
	}
	c.Tensors = cloneInits(a.Tensors)
	if a.Graphs != nil {
		c.Graphs = make([]*Graph, len(a.Graphs))
		for i, g := range a.Graphs {
			c.Graphs[i] = g.Clone()
		}
	}
	c.Opaque = cloneOpaque(a.Opaque)
	c.Present = maps.Clone(a.Present)
	c.Unknown = slices.Clone(a.Unknown)
	return &c
}

// Clone returns a deep copy of in, its tensor included.
func (in *Initializer) Clone() *Initializer {
	if in == nil {
		return nil
	}
	c := *in
	if in.Value != nil {
		c.Value = in.Value.Clone()
	}
	c.Encoding.External = clonePairs(in.Encoding.External)
	if in.Encoding.Segment != nil {
		seg := *in.Encoding.Segment
		seg.Present = maps.Clone(seg.Present)
		seg.Unknown = slices.Clone(seg.Unknown)
		c.Encoding.Segment = &seg
	}
	c.Metadata = clonePairs(in.Metadata)
	c.Present = maps.Clone(in.Present)
	c.Unknown = slices.Clone(in.Unknown)
	return &c
}

// Clone returns a deep copy of vi.
func (vi *ValueInfo) Clone() *ValueInfo {
	if vi == nil {
		return nil
	}
	c := *vi
	if vi.Type != nil {
		t := *vi.Type
		if vi.Type.Shape != nil {
			t.Shape = make([]Dim, len(vi.Type.Shape))
			for i, d := range vi.Type.Shape {
				d.Present = maps.Clone(d.Present)
				d.Unknown = slices.Clone(d.Unknown)
				t.Shape[i] = d
			}
		}
		t.Opaque = cloneOpaque(t.Opaque)
		t.Present = maps.Clone(t.Present)
		t.Unknown = slices.Clone(t.Unknown)
		t.TensorUnknown = slices.Clone(t.TensorUnknown)
		t.ShapeUnknown = slices.Clone(t.ShapeUnknown)
		t.TensorPresent = maps.Clone(t.TensorPresent)
		c.Type = &t
	}
	c.Metadata = clonePairs(vi.Metadata)
	c.Present = maps.Clone(vi.Present)
	c.Unknown = slices.Clone(vi.Unknown)
	return &c
}

func cloneInits(ins []*Initializer) []*Initializer {
	if ins == nil {
		return nil
	}
	out := make([]*Initializer, len(ins))
	for i, in := range ins {
		out[i] = in.Clone()
	}
	return out
}

func cloneVIs(vis []*ValueInfo) []*ValueInfo {
	if vis == nil {
		return nil
	}
	out := make([]*ValueInfo, len(vis))
	for i, vi := range vis {
		out[i] = vi.Clone()
	}
	return out
}

func clonePairs(ps []StringPair) []StringPair {
	if ps == nil {
		return nil
	}
	out := make([]StringPair, len(ps))
	for i, p := range ps {
		out[i] = StringPair{Key: p.Key, Value: p.Value, Present: maps.Clone(p.Present), Unknown: slices.Clone(p.Unknown)}
	}
	return out
}

func cloneOpaque(os []OpaqueField) []OpaqueField {
	if os == nil {
		return nil
	}
	out := make([]OpaqueField, len(os))
	for i, o := range os {
		out[i] = OpaqueField{Number: o.Number, Bytes: slices.Clone(o.Bytes)}
	}
	return out
}

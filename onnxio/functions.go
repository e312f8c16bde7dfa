package onnxio

import (
	"fmt"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
)

// Functions decodes the model-local functions m carries
// (ModelProto.functions, kept encoded in m.Opaque so that a model read and
// written unchanged stays identical), in file order. m is not modified.
func Functions(m *graph.Model) ([]*graph.Function, error) {
	if m == nil {
		return nil, nil
	}
	var out []*graph.Function
	for _, f := range m.Opaque {
		if f.Number != fieldModelFunctions {
			continue
		}
		p, err := unopaque(f, func() *onnxpb.Function { return new(onnxpb.Function) })
		if err != nil {
			return nil, fmt.Errorf("onnxio: model function %d: %w", len(out), err)
		}
		fn, err := functionFromProto(p)
		if err != nil {
			return nil, fmt.Errorf("onnxio: function %q (domain %q): %w", p.GetName(), p.GetDomain(), err)
		}
		out = append(out, fn)
	}
	return out, nil
}

// InlineFunctions inlines every call to a model-local function in m (see
// graph.InlineFunctions) and returns the number of calls inlined. When the
// model has functions and inlining succeeds, the encoded functions are
// removed from m, so a model written afterwards holds the inlined graph and
// no functions: every call has been replaced, nothing refers to them any
// more. A model without functions is left exactly as it is; on error m is
// left unchanged.
func InlineFunctions(m *graph.Model) (int, error) {
	fns, err := Functions(m)
	if err != nil || len(fns) == 0 {
		return 0, err
	}
	n, err := graph.InlineFunctions(m, fns)
	if err != nil {
		return 0, err
	}
	m.Opaque = slices.DeleteFunc(m.Opaque, func(f graph.OpaqueField) bool { return f.Number == fieldModelFunctions })
	return n, nil
}

func functionFromProto(p *onnxpb.Function) (*graph.Function, error) {
	f := &graph.Function{
		Name:       p.GetName(),
		Domain:     p.GetDomain(),
		Overload:   p.GetOverload(),
		Inputs:     slices.Clone(p.Input),
		Outputs:    slices.Clone(p.Output),
		Attributes: slices.Clone(p.Attribute),
		DocString:  p.GetDocString(),
		Metadata:   pairsFromProto(p.MetadataProps),
	}
	var err error
	if f.Nodes, err = nodesFromProto(p.Node); err != nil {
		return nil, err
	}
	for _, pa := range p.AttributeProto {
		a, err := attrFromProto(pa)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", pa.GetName(), err)
		}
		f.AttributeDefaults = append(f.AttributeDefaults, a)
	}
	for _, o := range p.OpsetImport {
		f.OpsetImports = append(f.OpsetImports, graph.OpsetImport{Domain: o.GetDomain(), Version: o.GetVersion()})
	}
	if f.ValueInfo, err = valueInfosFromProto(p.ValueInfo); err != nil {
		return nil, err
	}
	return f, nil
}

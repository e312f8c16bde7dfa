package onnxio

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Field numbers of the fields the IR carries as OpaqueField.
const (
	fieldModelTrainingInfo  = 20
	fieldModelFunctions     = 25
	fieldModelConfiguration = 26

	fieldGraphQuantAnnotation = 14

	fieldNodeDeviceConfigs = 10

	fieldAttrTP            = 14
	fieldAttrTypeProtos    = 15
	fieldAttrSparseTensor  = 22
	fieldAttrSparseTensors = 23

	fieldTypeSequence     = 4
	fieldTypeMap          = 5
	fieldTypeOpaque       = 7
	fieldTypeSparseTensor = 8
	fieldTypeOptional     = 9
)

// ---- protobuf → IR ----

func modelFromProto(p *onnxpb.Model) (*graph.Model, error) {
	m := &graph.Model{
		IRVersion:       p.GetIrVersion(),
		ProducerName:    p.GetProducerName(),
		ProducerVersion: p.GetProducerVersion(),
		Domain:          p.GetDomain(),
		ModelVersion:    p.GetModelVersion(),
		DocString:       p.GetDocString(),
		Metadata:        pairsFromProto(p.MetadataProps),
		Unknown:         unknownOf(p),
	}
	for key, ok := range map[string]bool{
		"ir_version": p.IrVersion != nil, "producer_name": p.ProducerName != nil,
		"producer_version": p.ProducerVersion != nil, "domain": p.Domain != nil,
		"model_version": p.ModelVersion != nil, "doc_string": p.DocString != nil,
	} {
		if ok {
			setPresent(&m.Present, key)
		}
	}
	for _, o := range p.OpsetImport {
		oi := graph.OpsetImport{Domain: o.GetDomain(), Version: o.GetVersion(), Unknown: unknownOf(o)}
		if o.Domain != nil {
			setPresent(&oi.Present, "domain")
		}
		if o.Version != nil {
			setPresent(&oi.Present, "version")
		}
		m.OpsetImports = append(m.OpsetImports, oi)
	}
	if p.Graph != nil {
		g, err := graphFromProto(p.Graph)
		if err != nil {
			return nil, err
		}
		m.Graph = g
	}
	for _, t := range p.TrainingInfo {
		if err := addOpaque(&m.Opaque, fieldModelTrainingInfo, t); err != nil {
			return nil, err
		}
	}
	for _, f := range p.Functions {
		if err := addOpaque(&m.Opaque, fieldModelFunctions, f); err != nil {
			return nil, err
		}
	}
	for _, c := range p.Configuration {
		if err := addOpaque(&m.Opaque, fieldModelConfiguration, c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func addOpaque(dst *[]graph.OpaqueField, number int32, msg proto.Message) error {
	f, err := opaque(number, msg)
	if err != nil {
		return err
	}
	*dst = append(*dst, f)
	return nil
}

func graphFromProto(p *onnxpb.Graph) (*graph.Graph, error) {
	g := &graph.Graph{
		Name:      p.GetName(),
		DocString: p.GetDocString(),
		Metadata:  pairsFromProto(p.MetadataProps),
		Unknown:   unknownOf(p),
	}
	if p.Name != nil {
		setPresent(&g.Present, "name")
	}
	if p.DocString != nil {
		setPresent(&g.Present, "doc_string")
	}
	var err error
	if g.Nodes, err = nodesFromProto(p.Node); err != nil {
		return nil, err
	}
	for _, pt := range p.Initializer {
		in, err := tensorFromProto(pt)
		if err != nil {
			return nil, fmt.Errorf("initializer %w", err)
		}
		g.Initializers = append(g.Initializers, in)
	}
	for _, ps := range p.SparseInitializer {
		s, err := sparseFromProto(ps)
		if err != nil {
			return nil, err
		}
		g.SparseInitializers = append(g.SparseInitializers, s)
	}
	if g.Inputs, err = valueInfosFromProto(p.Input); err != nil {
		return nil, err
	}
	if g.Outputs, err = valueInfosFromProto(p.Output); err != nil {
		return nil, err
	}
	if g.ValueInfo, err = valueInfosFromProto(p.ValueInfo); err != nil {
		return nil, err
	}
	for _, q := range p.QuantizationAnnotation {
		if err := addOpaque(&g.Opaque, fieldGraphQuantAnnotation, q); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// nodesFromProto converts a graph's or a function's node list.
func nodesFromProto(ps []*onnxpb.Node) ([]*graph.Node, error) {
	out := make([]*graph.Node, 0, len(ps))
	for _, pn := range ps {
		n, err := nodeFromProto(pn)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func nodeFromProto(p *onnxpb.Node) (*graph.Node, error) {
	n := &graph.Node{
		Name:      p.GetName(),
		OpType:    p.GetOpType(),
		Domain:    p.GetDomain(),
		Inputs:    append([]string(nil), p.Input...),
		Outputs:   append([]string(nil), p.Output...),
		DocString: p.GetDocString(),
		Overload:  p.GetOverload(),
		Metadata:  pairsFromProto(p.MetadataProps),
		Unknown:   unknownOf(p),
	}
	for key, ok := range map[string]bool{
		"name": p.Name != nil, "op_type": p.OpType != nil, "domain": p.Domain != nil,
		"doc_string": p.DocString != nil, "overload": p.Overload != nil,
	} {
		if ok {
			setPresent(&n.Present, key)
		}
	}
	for _, pa := range p.Attribute {
		a, err := attrFromProto(pa)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): attribute %q: %w", n.Name, n.OpType, pa.GetName(), err)
		}
		n.Attrs = append(n.Attrs, a)
	}
	for _, d := range p.DeviceConfigurations {
		if err := addOpaque(&n.Opaque, fieldNodeDeviceConfigs, d); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func attrFromProto(p *onnxpb.Attribute) (*graph.Attribute, error) {
	a := &graph.Attribute{
		Name:        p.GetName(),
		Type:        graph.AttrType(p.GetType()),
		F:           p.GetF(),
		I:           p.GetI(),
		S:           p.S,
		Floats:      p.Floats,
		Ints:        p.Ints,
		Strings:     p.Strings,
		RefAttrName: p.GetRefAttrName(),
		DocString:   p.GetDocString(),
		Unknown:     unknownOf(p),
	}
	for key, ok := range map[string]bool{
		"name": p.Name != nil, "type": p.Type != nil, "f": p.F != nil, "i": p.I != nil,
		"s": p.S != nil, "ref_attr_name": p.RefAttrName != nil, "doc_string": p.DocString != nil,
	} {
		if ok {
			setPresent(&a.Present, key)
		}
	}
	if p.T != nil {
		t, err := tensorFromProto(p.T)
		if err != nil {
			return nil, err
		}
		a.T = t
	}
	if p.G != nil {
		g, err := graphFromProto(p.G)
		if err != nil {
			return nil, fmt.Errorf("subgraph: %w", err)
		}
		a.G = g
	}
	for _, pt := range p.Tensors {
		t, err := tensorFromProto(pt)
		if err != nil {
			return nil, err
		}
		a.Tensors = append(a.Tensors, t)
	}
	for _, pg := range p.Graphs {
		g, err := graphFromProto(pg)
		if err != nil {
			return nil, fmt.Errorf("subgraph: %w", err)
		}
		a.Graphs = append(a.Graphs, g)
	}
	if p.Tp != nil {
		if err := addOpaque(&a.Opaque, fieldAttrTP, p.Tp); err != nil {
			return nil, err
		}
	}
	for _, tp := range p.TypeProtos {
		if err := addOpaque(&a.Opaque, fieldAttrTypeProtos, tp); err != nil {
			return nil, err
		}
	}
	if p.SparseTensor != nil {
		if err := addOpaque(&a.Opaque, fieldAttrSparseTensor, p.SparseTensor); err != nil {
			return nil, err
		}
	}
	for _, st := range p.SparseTensors {
		if err := addOpaque(&a.Opaque, fieldAttrSparseTensors, st); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func valueInfosFromProto(ps []*onnxpb.ValueInfo) ([]*graph.ValueInfo, error) {
	var out []*graph.ValueInfo
	for _, p := range ps {
		v := &graph.ValueInfo{
			Name:      p.GetName(),
			DocString: p.GetDocString(),
			Metadata:  pairsFromProto(p.MetadataProps),
			Unknown:   unknownOf(p),
		}
		if p.Name != nil {
			setPresent(&v.Present, "name")
		}
		if p.DocString != nil {
			setPresent(&v.Present, "doc_string")
		}
		if p.Type != nil {
			t, err := typeFromProto(p.Type)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", v.Name, err)
			}
			v.Type = t
		}
		out = append(out, v)
	}
	return out, nil
}

func typeFromProto(p *onnxpb.TypeProto) (*graph.Type, error) {
	t := &graph.Type{Denotation: p.GetDenotation(), Unknown: unknownOf(p)}
	if p.Denotation != nil {
		setPresent(&t.Present, "denotation")
	}
	var err error
	switch v := p.Value.(type) {
	case nil:
	case *onnxpb.TypeProto_TensorType_:
		t.IsTensor = true
		tt := v.TensorType
		if tt == nil {
			break
		}
		t.Elem = tensor.DType(tt.GetElemType())
		if tt.ElemType != nil {
			setPresent(&t.TensorPresent, "elem_type")
		}
		t.TensorUnknown = unknownOf(tt)
		if tt.Shape != nil {
			t.HasShape = true
			t.ShapeUnknown = unknownOf(tt.Shape)
			t.Shape = make([]graph.Dim, 0, len(tt.Shape.Dim))
			for _, pd := range tt.Shape.Dim {
				d := graph.Dim{Denotation: pd.GetDenotation(), Unknown: unknownOf(pd)}
				if pd.Denotation != nil {
					setPresent(&d.Present, "denotation")
				}
				switch dv := pd.Value.(type) {
				case *onnxpb.TensorShape_Dimension_DimValue:
					d.HasValue, d.Value = true, dv.DimValue
				case *onnxpb.TensorShape_Dimension_DimParam:
					d.HasParam, d.Param = true, dv.DimParam
				}
				t.Shape = append(t.Shape, d)
			}
		}
	case *onnxpb.TypeProto_SequenceType_:
		err = addOpaque(&t.Opaque, fieldTypeSequence, v.SequenceType)
	case *onnxpb.TypeProto_MapType_:
		err = addOpaque(&t.Opaque, fieldTypeMap, v.MapType)
	case *onnxpb.TypeProto_OpaqueType_:
		err = addOpaque(&t.Opaque, fieldTypeOpaque, v.OpaqueType)
	case *onnxpb.TypeProto_SparseTensorType_:
		err = addOpaque(&t.Opaque, fieldTypeSparseTensor, v.SparseTensorType)
	case *onnxpb.TypeProto_OptionalType_:
		err = addOpaque(&t.Opaque, fieldTypeOptional, v.OptionalType)
	}
	return t, err
}

// ---- IR → protobuf ----

func modelToProto(m *graph.Model) (*onnxpb.Model, error) {
	if m == nil {
		return nil, fmt.Errorf("nil model")
	}
	p := &onnxpb.Model{
		IrVersion:       optInt64(m.IRVersion, m.Present, "ir_version"),
		ProducerName:    optString(m.ProducerName, m.Present, "producer_name"),
		ProducerVersion: optString(m.ProducerVersion, m.Present, "producer_version"),
		Domain:          optString(m.Domain, m.Present, "domain"),
		ModelVersion:    optInt64(m.ModelVersion, m.Present, "model_version"),
		DocString:       optString(m.DocString, m.Present, "doc_string"),
		MetadataProps:   pairsToProto(m.Metadata),
	}
	setUnknown(p, m.Unknown)
	for _, o := range m.OpsetImports {
		po := &onnxpb.OperatorSetID{
			Domain:  optString(o.Domain, o.Present, "domain"),
			Version: optInt64(o.Version, o.Present, "version"),
		}
		setUnknown(po, o.Unknown)
		p.OpsetImport = append(p.OpsetImport, po)
	}
	if m.Graph != nil {
		g, err := graphToProto(m.Graph)
		if err != nil {
			return nil, err
		}
		p.Graph = g
	}
	for _, f := range m.Opaque {
		var err error
		switch f.Number {
		case fieldModelTrainingInfo:
			var v *onnxpb.TrainingInfo
			v, err = unopaque(f, func() *onnxpb.TrainingInfo { return new(onnxpb.TrainingInfo) })
			p.TrainingInfo = append(p.TrainingInfo, v)
		case fieldModelFunctions:
			var v *onnxpb.Function
			v, err = unopaque(f, func() *onnxpb.Function { return new(onnxpb.Function) })
			p.Functions = append(p.Functions, v)
		case fieldModelConfiguration:
			var v *onnxpb.DeviceConfiguration
			v, err = unopaque(f, func() *onnxpb.DeviceConfiguration { return new(onnxpb.DeviceConfiguration) })
			p.Configuration = append(p.Configuration, v)
		default:
			appendRawField(p, f)
		}
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
	}
	return p, nil
}

func graphToProto(g *graph.Graph) (*onnxpb.Graph, error) {
	p := &onnxpb.Graph{
		Name:          optString(g.Name, g.Present, "name"),
		DocString:     optString(g.DocString, g.Present, "doc_string"),
		MetadataProps: pairsToProto(g.Metadata),
	}
	setUnknown(p, g.Unknown)
	for _, n := range g.Nodes {
		pn, err := nodeToProto(n)
		if err != nil {
			return nil, err
		}
		p.Node = append(p.Node, pn)
	}
	for _, in := range g.Initializers {
		pt, err := tensorToProto(in)
		if err != nil {
			return nil, fmt.Errorf("initializer %w", err)
		}
		p.Initializer = append(p.Initializer, pt)
	}
	for _, s := range g.SparseInitializers {
		ps, err := sparseToProto(s)
		if err != nil {
			return nil, err
		}
		p.SparseInitializer = append(p.SparseInitializer, ps)
	}
	var err error
	if p.Input, err = valueInfosToProto(g.Inputs); err != nil {
		return nil, err
	}
	if p.Output, err = valueInfosToProto(g.Outputs); err != nil {
		return nil, err
	}
	if p.ValueInfo, err = valueInfosToProto(g.ValueInfo); err != nil {
		return nil, err
	}
	for _, f := range g.Opaque {
		if f.Number == fieldGraphQuantAnnotation {
			v, err := unopaque(f, func() *onnxpb.TensorAnnotation { return new(onnxpb.TensorAnnotation) })
			if err != nil {
				return nil, fmt.Errorf("graph %q: %w", g.Name, err)
			}
			p.QuantizationAnnotation = append(p.QuantizationAnnotation, v)
			continue
		}
		appendRawField(p, f)
	}
	return p, nil
}

func nodeToProto(n *graph.Node) (*onnxpb.Node, error) {
	if n == nil {
		return nil, fmt.Errorf("nil node")
	}
	p := &onnxpb.Node{
		Input:         append([]string(nil), n.Inputs...),
		Output:        append([]string(nil), n.Outputs...),
		Name:          optString(n.Name, n.Present, "name"),
		OpType:        optString(n.OpType, n.Present, "op_type"),
		Domain:        optString(n.Domain, n.Present, "domain"),
		DocString:     optString(n.DocString, n.Present, "doc_string"),
		Overload:      optString(n.Overload, n.Present, "overload"),
		MetadataProps: pairsToProto(n.Metadata),
	}
	setUnknown(p, n.Unknown)
	for _, a := range n.Attrs {
		pa, err := attrToProto(a)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): attribute %q: %w", n.Name, n.OpType, a.Name, err)
		}
		p.Attribute = append(p.Attribute, pa)
	}
	for _, f := range n.Opaque {
		if f.Number == fieldNodeDeviceConfigs {
			v, err := unopaque(f, func() *onnxpb.NodeDeviceConfiguration { return new(onnxpb.NodeDeviceConfiguration) })
			if err != nil {
				return nil, fmt.Errorf("node %q (%s): %w", n.Name, n.OpType, err)
			}
			p.DeviceConfigurations = append(p.DeviceConfigurations, v)
			continue
		}
		appendRawField(p, f)
	}
	return p, nil
}

func attrToProto(a *graph.Attribute) (*onnxpb.Attribute, error) {
	if a == nil {
		return nil, fmt.Errorf("nil attribute")
	}
	p := &onnxpb.Attribute{
		Name:        optString(a.Name, a.Present, "name"),
		Floats:      a.Floats,
		Ints:        a.Ints,
		Strings:     a.Strings,
		RefAttrName: optString(a.RefAttrName, a.Present, "ref_attr_name"),
		DocString:   optString(a.DocString, a.Present, "doc_string"),
	}
	setUnknown(p, a.Unknown)
	if a.Type != 0 || a.Present["type"] {
		t := onnxpb.Attribute_Type(a.Type)
		p.Type = &t
	}
	if a.F != 0 || a.Present["f"] {
		p.F = proto.Float32(a.F)
	}
	if a.I != 0 || a.Present["i"] {
		p.I = proto.Int64(a.I)
	}
	switch {
	case a.S != nil:
		p.S = a.S
	case a.Present["s"]:
		p.S = []byte{}
	}
	if a.T != nil {
		t, err := tensorToProto(a.T)
		if err != nil {
			return nil, err
		}
		p.T = t
	}
	if a.G != nil {
		g, err := graphToProto(a.G)
		if err != nil {
			return nil, fmt.Errorf("subgraph: %w", err)
		}
		p.G = g
	}
	for _, t := range a.Tensors {
		pt, err := tensorToProto(t)
		if err != nil {
			return nil, err
		}
		p.Tensors = append(p.Tensors, pt)
	}
	for _, g := range a.Graphs {
		pg, err := graphToProto(g)
		if err != nil {
			return nil, fmt.Errorf("subgraph: %w", err)
		}
		p.Graphs = append(p.Graphs, pg)
	}
	for _, f := range a.Opaque {
		var err error
		switch f.Number {
		case fieldAttrTP:
			p.Tp, err = unopaque(f, func() *onnxpb.TypeProto { return new(onnxpb.TypeProto) })
		case fieldAttrTypeProtos:
			var v *onnxpb.TypeProto
			v, err = unopaque(f, func() *onnxpb.TypeProto { return new(onnxpb.TypeProto) })
			p.TypeProtos = append(p.TypeProtos, v)
		case fieldAttrSparseTensor:
			p.SparseTensor, err = unopaque(f, func() *onnxpb.SparseTensor { return new(onnxpb.SparseTensor) })
		case fieldAttrSparseTensors:
			var v *onnxpb.SparseTensor
			v, err = unopaque(f, func() *onnxpb.SparseTensor { return new(onnxpb.SparseTensor) })
			p.SparseTensors = append(p.SparseTensors, v)
		default:
			appendRawField(p, f)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

func valueInfosToProto(vs []*graph.ValueInfo) ([]*onnxpb.ValueInfo, error) {
	var out []*onnxpb.ValueInfo
	for _, v := range vs {
		if v == nil {
			return nil, fmt.Errorf("nil value info")
		}
		p := &onnxpb.ValueInfo{
			Name:          optString(v.Name, v.Present, "name"),
			DocString:     optString(v.DocString, v.Present, "doc_string"),
			MetadataProps: pairsToProto(v.Metadata),
		}
		setUnknown(p, v.Unknown)
		if v.Type != nil {
			t, err := typeToProto(v.Type)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", v.Name, err)
			}
			p.Type = t
		}
		out = append(out, p)
	}
	return out, nil
}

func typeToProto(t *graph.Type) (*onnxpb.TypeProto, error) {
	p := &onnxpb.TypeProto{Denotation: optString(t.Denotation, t.Present, "denotation")}
	setUnknown(p, t.Unknown)
	if t.IsTensor {
		tt := &onnxpb.TypeProto_TensorType{}
		if t.Elem != 0 || t.TensorPresent["elem_type"] {
			tt.ElemType = proto.Int32(int32(t.Elem))
		}
		setUnknown(tt, t.TensorUnknown)
		if t.HasShape || len(t.Shape) > 0 {
			s := &onnxpb.TensorShape{}
			setUnknown(s, t.ShapeUnknown)
			for _, d := range t.Shape {
				pd := &onnxpb.TensorShape_Dimension{Denotation: optString(d.Denotation, d.Present, "denotation")}
				setUnknown(pd, d.Unknown)
				switch {
				case d.HasValue:
					pd.Value = &onnxpb.TensorShape_Dimension_DimValue{DimValue: d.Value}
				case d.HasParam:
					pd.Value = &onnxpb.TensorShape_Dimension_DimParam{DimParam: d.Param}
				}
				s.Dim = append(s.Dim, pd)
			}
			tt.Shape = s
		}
		p.Value = &onnxpb.TypeProto_TensorType_{TensorType: tt}
	}
	for _, f := range t.Opaque {
		var err error
		switch f.Number {
		case fieldTypeSequence:
			var v *onnxpb.TypeProto_SequenceType
			v, err = unopaque(f, func() *onnxpb.TypeProto_SequenceType { return new(onnxpb.TypeProto_SequenceType) })
			p.Value = &onnxpb.TypeProto_SequenceType_{SequenceType: v}
		case fieldTypeMap:
			var v *onnxpb.TypeProto_MapType
			v, err = unopaque(f, func() *onnxpb.TypeProto_MapType { return new(onnxpb.TypeProto_MapType) })
			p.Value = &onnxpb.TypeProto_MapType_{MapType: v}
		case fieldTypeOpaque:
			var v *onnxpb.TypeProto_OpaqueType
			v, err = unopaque(f, func() *onnxpb.TypeProto_OpaqueType { return new(onnxpb.TypeProto_OpaqueType) })
			p.Value = &onnxpb.TypeProto_OpaqueType_{OpaqueType: v}
		case fieldTypeSparseTensor:
			var v *onnxpb.TypeProto_SparseTensorType
			v, err = unopaque(f, func() *onnxpb.TypeProto_SparseTensorType { return new(onnxpb.TypeProto_SparseTensorType) })
			p.Value = &onnxpb.TypeProto_SparseTensorType_{SparseTensorType: v}
		case fieldTypeOptional:
			var v *onnxpb.TypeProto_OptionalType
			v, err = unopaque(f, func() *onnxpb.TypeProto_OptionalType { return new(onnxpb.TypeProto_OptionalType) })
			p.Value = &onnxpb.TypeProto_OptionalType_{OptionalType: v}
		default:
			appendRawField(p, f)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

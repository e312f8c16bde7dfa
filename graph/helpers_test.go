package graph

import "github.com/csam-onnx/csam-onnx/tensor"

// Builders for hand-made graphs in tests.

// tvi is a float32 tensor value with the given dims; a negative dim is
// symbolic ("batch").
func tvi(name string, dims ...int64) *ValueInfo {
	t := &Type{IsTensor: true, Elem: tensor.Float32, HasShape: true}
	for _, d := range dims {
		if d < 0 {
			t.Shape = append(t.Shape, Dim{Param: "batch", HasParam: true})
		} else {
			t.Shape = append(t.Shape, Dim{Value: d, HasValue: true})
		}
	}
	return &ValueInfo{Name: name, Type: t}
}

func nd(name, op string, ins, outs []string, attrs ...*Attribute) *Node {
	return &Node{Name: name, OpType: op, Inputs: ins, Outputs: outs, Attrs: attrs}
}

func aInts(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: v}
}
func aInt(name string, v int64) *Attribute     { return &Attribute{Name: name, Type: AttrInt, I: v} }
func aFloat(name string, v float32) *Attribute { return &Attribute{Name: name, Type: AttrFloat, F: v} }
func aStr(name, v string) *Attribute           { return &Attribute{Name: name, Type: AttrString, S: []byte(v)} }
func aTensor(name string, t *tensor.Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTensor, T: &Initializer{Value: t}}
}

func s(v ...string) []string { return v }

func f32init(name string, shape []int, fill func(i int) float32) *Initializer {
	t := tensor.New(shape...)
	for i := range t.F32 {
		t.F32[i] = fill(i)
	}
	return &Initializer{Name: name, Value: t}
}

func i64init(name string, v ...int64) *Initializer {
	return &Initializer{Name: name, Value: tensor.FromInt64(v, len(v))}
}

func mdl(opset int64, inputs, outputs []*ValueInfo, inits []*Initializer, nodes ...*Node) *Model {
	return &Model{
		IRVersion:    8,
		OpsetImports: []OpsetImport{{Version: opset}},
		Graph:        &Graph{Name: "g", Nodes: nodes, Initializers: inits, Inputs: inputs, Outputs: outputs},
	}
}

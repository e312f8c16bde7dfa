package graph

import (
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestInferShapesOpsetForms(t *testing.T) {
	x := []*ValueInfo{tvi("x", 2, 3, 1, 5)}
	y := []*ValueInfo{tvi("y")}
	tests := []struct {
		name  string
		m     *Model
		value string
		want  []int
	}{
		{"squeeze attr opset 11", mdl(11, x, y, nil, nd("n", "Squeeze", s("x"), s("y"), aInts("axes", 2))), "y", []int{2, 3, 5}},
		{"squeeze input opset 13", mdl(13, x, y, []*Initializer{i64init("ax", -2)}, nd("n", "Squeeze", s("x", "ax"), s("y"))), "y", []int{2, 3, 5}},
		{"squeeze all ones", mdl(13, x, y, nil, nd("n", "Squeeze", s("x"), s("y"))), "y", []int{2, 3, 5}},
		{"unsqueeze attr opset 11", mdl(11, x, y, nil, nd("n", "Unsqueeze", s("x"), s("y"), aInts("axes", 0, -1))), "y", []int{1, 2, 3, 1, 5, 1}},
		{"unsqueeze input opset 13", mdl(13, x, y, []*Initializer{i64init("ax", 4, 1)}, nd("n", "Unsqueeze", s("x", "ax"), s("y"))), "y", []int{2, 1, 3, 1, 1, 5}},
		{"reducemean attr opset 13", mdl(13, x, y, nil, nd("n", "ReduceMean", s("x"), s("y"), aInts("axes", 1, 3), aInt("keepdims", 0))), "y", []int{2, 1}},
		{"reducemean input opset 18", mdl(18, x, y, []*Initializer{i64init("ax", -1)}, nd("n", "ReduceMean", s("x", "ax"), s("y"))), "y", []int{2, 3, 1, 1}},
		{"reducemean all", mdl(18, x, y, nil, nd("n", "ReduceMean", s("x"), s("y"), aInt("keepdims", 0))), "y", []int{}},
		{"reducemean noop", mdl(18, x, y, nil, nd("n", "ReduceMean", s("x"), s("y"), aInt("noop_with_empty_axes", 1))), "y", []int{2, 3, 1, 5}},
		{"split attr opset 11", mdl(11, x, y, nil, nd("n", "Split", s("x"), s("a", "y"), aInt("axis", 3), aInts("split", 2, 3))), "y", []int{2, 3, 1, 3}},
		{"split input opset 13", mdl(13, x, y, []*Initializer{i64init("sp", 1, 4)}, nd("n", "Split", s("x", "sp"), s("a", "y"), aInt("axis", -1))), "y", []int{2, 3, 1, 4}},
		{"split equal", mdl(13, x, y, nil, nd("n", "Split", s("x"), s("a", "b", "y"), aInt("axis", 1))), "y", []int{2, 1, 1, 5}},
		{"split num_outputs opset 18", mdl(18, x, y, nil, nd("n", "Split", s("x"), s("a", "b", "y"), aInt("axis", 3), aInt("num_outputs", 3))), "y", []int{2, 3, 1, 1}},
		{"pad attr opset 2", mdl(2, x, y, nil, nd("n", "Pad", s("x"), s("y"), aInts("pads", 0, 0, 1, 2, 0, 0, 1, 0))), "y", []int{2, 3, 3, 7}},
		{"pad input opset 11", mdl(11, x, y, []*Initializer{i64init("p", 0, 1, 0, 0, 0, 1, 0, 3)}, nd("n", "Pad", s("x", "p"), s("y"))), "y", []int{2, 5, 1, 8}},
		{"pad axes opset 18", mdl(18, x, y, []*Initializer{i64init("p", 1, 2, 3, 4), i64init("ax", -1, 0)}, nd("n", "Pad", s("x", "p", "", "ax"), s("y"))), "y", []int{2 + 2 + 4, 3, 1, 5 + 1 + 3}},
		{"clip attrs opset 6", mdl(6, x, y, nil, nd("n", "Clip", s("x"), s("y"), aFloat("min", 0), aFloat("max", 6))), "y", []int{2, 3, 1, 5}},
		{"slice attrs opset 9", mdl(9, x, y, nil, nd("n", "Slice", s("x"), s("y"), aInts("starts", 1, -4), aInts("ends", 100, -1), aInts("axes", 1, 3))), "y", []int{2, 2, 1, 3}},
		{"slice steps opset 13", mdl(13, x, y, []*Initializer{i64init("st", -1), i64init("en", -100), i64init("ax", 3), i64init("sp", -2)},
			nd("n", "Slice", s("x", "st", "en", "ax", "sp"), s("y"))), "y", []int{2, 3, 1, 3}},
		{"reshape zero and -1", mdl(13, x, y, []*Initializer{i64init("sh", 0, -1, 5)}, nd("n", "Reshape", s("x", "sh"), s("y"))), "y", []int{2, 3, 5}},
		{"reshape allowzero", mdl(14, []*ValueInfo{tvi("x", 0, 3)}, y, []*Initializer{i64init("sh", 3, 0)}, nd("n", "Reshape", s("x", "sh"), s("y"), aInt("allowzero", 1))), "y", []int{3, 0}},
		{"flatten axis 0", mdl(13, x, y, nil, nd("n", "Flatten", s("x"), s("y"), aInt("axis", 0))), "y", []int{1, 30}},
		{"flatten negative", mdl(13, x, y, nil, nd("n", "Flatten", s("x"), s("y"), aInt("axis", -1))), "y", []int{6, 5}},
		{"transpose default", mdl(13, x, y, nil, nd("n", "Transpose", s("x"), s("y"))), "y", []int{5, 1, 3, 2}},
		{"concat negative axis", mdl(13, x, y, nil, nd("n", "Concat", s("x", "x"), s("y"), aInt("axis", -3))), "y", []int{2, 6, 1, 5}},
		{"gather 2d indices", mdl(13, x, y, []*Initializer{{Name: "i", Value: tensor.FromInt64([]int64{0, 1, 2, 0}, 2, 2)}},
			nd("n", "Gather", s("x", "i"), s("y"), aInt("axis", 1))), "y", []int{2, 2, 2, 1, 5}},
		{"matmul vector", mdl(13, []*ValueInfo{tvi("x", 4), tvi("b", 2, 4, 3)}, y, nil, nd("n", "MatMul", s("x", "b"), s("y"))), "y", []int{2, 3}},
		{"matmul broadcast", mdl(13, []*ValueInfo{tvi("x", 2, 1, 3, 4), tvi("b", 5, 4, 6)}, y, nil, nd("n", "MatMul", s("x", "b"), s("y"))), "y", []int{2, 5, 3, 6}},
		{"gemm trans", mdl(13, []*ValueInfo{tvi("x", 4, 2), tvi("b", 3, 4)}, y, nil, nd("n", "Gemm", s("x", "b"), s("y"), aInt("transA", 1), aInt("transB", 1))), "y", []int{2, 3}},
		{"add broadcast", mdl(13, []*ValueInfo{tvi("x", 2, 1, 5), tvi("b", 3, 1)}, y, nil, nd("n", "Add", s("x", "b"), s("y"))), "y", []int{2, 3, 5}},
		{"legacy add broadcast opset 6", mdl(6, []*ValueInfo{tvi("x", 2, 3, 5), tvi("b", 3)}, y, nil, nd("n", "Add", s("x", "b"), s("y"), aInt("broadcast", 1), aInt("axis", 1))), "y", []int{2, 3, 5}},
		{"dropout mask", mdl(13, x, y, nil, nd("n", "Dropout", s("x"), s("a", "y"))), "y", []int{2, 3, 1, 5}},
		{"batchnorm", mdl(14, x, y, []*Initializer{
			f32init("g", []int{3}, func(int) float32 { return 1 }), f32init("b", []int{3}, func(int) float32 { return 0 }),
			f32init("m", []int{3}, func(int) float32 { return 0 }), f32init("v", []int{3}, func(int) float32 { return 1 }),
		}, nd("n", "BatchNormalization", s("x", "g", "b", "m", "v"), s("y"))), "y", []int{2, 3, 1, 5}},
		{"shape start end opset 15", mdl(15, x, y, nil, nd("n", "Shape", s("x"), s("y"), aInt("start", 1), aInt("end", -1))), "y", []int{2}},
		{"constant", mdl(13, x, y, nil, nd("n", "Constant", nil, s("y"), aTensor("value", tensor.New(4, 2)))), "y", []int{4, 2}},
		// A shape computed from the input's shape: Shape → Slice → Concat →
		// Reshape, evaluated at inference time.
		{"computed reshape", mdl(13, x, y, []*Initializer{i64init("st", 1), i64init("en", 2), i64init("m1", -1)},
			nd("sh", "Shape", s("x"), s("shp")),
			nd("sl", "Slice", s("shp", "st", "en"), s("c")),
			nd("cc", "Concat", s("c", "m1"), s("tgt"), aInt("axis", 0)),
			nd("n", "Reshape", s("x", "tgt"), s("y"))), "y", []int{3, 10}},
		{"cast and arithmetic", mdl(13, x, y, []*Initializer{i64init("two", 2)},
			nd("sh", "Shape", s("x"), s("shp")),
			nd("ca", "Cast", s("shp"), s("f"), aInt("to", int64(tensor.Float32))),
			nd("cb", "Cast", s("f"), s("i"), aInt("to", int64(tensor.Int64))),
			nd("dv", "Div", s("i", "two"), s("h")),  // [1 1 0 2]
			nd("mu", "Mul", s("h", "two"), s("hh")), // [2 2 0 4]
			nd("co", "ConstantOfShape", s("hh"), s("y"))), "y", []int{2, 2, 0, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.m); err != nil {
				t.Fatalf("test graph is invalid: %v", err)
			}
			got, err := InferShapes(tt.m, nil)
			if err != nil {
				t.Fatalf("InferShapes: %v", err)
			}
			if !slices.Equal(got[tt.value], tt.want) || got[tt.value] == nil {
				t.Errorf("InferShapes: %s = %v, want %v", tt.value, got[tt.value], tt.want)
			}
		})
	}
}

func TestInferShapesErrors(t *testing.T) {
	x := []*ValueInfo{tvi("x", 2, 3, 4, 4)}
	sym := []*ValueInfo{tvi("x", -1, 3)}
	y := []*ValueInfo{tvi("y")}
	w := []*Initializer{f32init("w", []int{4, 2, 3, 3}, func(int) float32 { return 0 })}
	tests := []struct {
		name   string
		m      *Model
		shapes map[string][]int
		want   string
	}{
		{"unknown op", mdl(13, x, y, nil, nd("q", "Frobnicate", s("x"), s("y"))), nil,
			`graph: node "q" (Frobnicate): op Frobnicate is not supported for shape inference`},
		{"symbolic input", mdl(13, sym, y, nil, nd("r", "Relu", s("x"), s("y"))), nil,
			`graph: graph input "x" has symbolic dimension 0 (batch); give its shape explicitly`},
		{"wrong rank given", mdl(13, sym, y, nil, nd("r", "Relu", s("x"), s("y"))), map[string][]int{"x": {2, 3, 1}},
			`graph: input "x": shape [2 3 1] has rank 3, the model declares rank 2 ([batch 3])`},
		{"fixed dim contradicted", mdl(13, sym, y, nil, nd("r", "Relu", s("x"), s("y"))), map[string][]int{"x": {2, 4}},
			`graph: input "x": shape [2 4]: dimension 1 is 4, the model declares 3`},
		{"not an input", mdl(13, x, y, nil, nd("r", "Relu", s("x"), s("y"))), map[string][]int{"z": {1}},
			`graph: input shape given for "z", which is not a graph input (inputs: "x")`},
		{"conv channels", mdl(13, x, y, w, nd("c", "Conv", s("x", "w"), s("y"))), nil,
			`graph: node "c" (Conv): input has 3 channels but weight "w" [4 2 3 3] with group 1 expects 2`},
		{"conv transpose channels", mdl(13, x, y, w, nd("ct", "ConvTranspose", s("x", "w"), s("y"))), nil,
			`graph: node "ct" (ConvTranspose): input has 3 channels but weight "w" [4 2 3 3] (C, M/group, kernel...) with group 1 expects 4`},
		{"conv transpose output_shape", mdl(13, x, y, []*Initializer{f32init("wt", []int{3, 2, 3, 3}, func(int) float32 { return 0 })},
			nd("ct", "ConvTranspose", s("x", "wt"), s("y"), aInts("output_shape", 4, 4, 4))), nil,
			`graph: node "ct" (ConvTranspose): output_shape [4 4 4] has 3 values, want 2 (the spatial sizes)`},
		{"kernel too big", mdl(13, x, y, nil, nd("p", "MaxPool", s("x"), s("y"), aInts("kernel_shape", 5, 5))), nil,
			`graph: node "p" (MaxPool): padded input size 4 of spatial dimension 0 is smaller than the dilated kernel 5`},
		{"bad auto_pad", mdl(13, x, y, nil, nd("p", "MaxPool", s("x"), s("y"), aInts("kernel_shape", 2, 2), aStr("auto_pad", "FULL"))), nil,
			`auto_pad "FULL" is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`},
		{"reshape count", mdl(13, x, y, []*Initializer{i64init("sh", 5, -1)}, nd("r", "Reshape", s("x", "sh"), s("y"))), nil,
			`graph: node "r" (Reshape): cannot reshape [2 3 4 4] (96 elements) to [5 -1]`},
		{"reshape from data", mdl(13, []*ValueInfo{tvi("x", 2, 3), {Name: "sh", Type: &Type{IsTensor: true, Elem: tensor.Int64, HasShape: true, Shape: []Dim{{Value: 1, HasValue: true}}}}}, y, nil,
			nd("r", "Reshape", s("x", "sh"), s("y"))), nil,
			`graph: node "r" (Reshape): the shape input "sh" is not a constant; shapes that depend on data cannot be inferred`},
		{"broadcast", mdl(13, []*ValueInfo{tvi("x", 2, 3), tvi("b", 4)}, y, nil, nd("a", "Add", s("x", "b"), s("y"))), nil,
			`graph: node "a" (Add): shapes [[2 3] [4]] cannot be broadcast together`},
		{"squeeze non-one", mdl(13, x, y, []*Initializer{i64init("ax", 1)}, nd("q", "Squeeze", s("x", "ax"), s("y"))), nil,
			`cannot squeeze axis 1 of shape [2 3 4 4]: its size is not 1`},
		{"split sum", mdl(13, x, y, []*Initializer{i64init("sp", 1, 1)}, nd("q", "Split", s("x", "sp"), s("a", "y"), aInt("axis", 1))), nil,
			`split [1 1] sums to 2, but dimension 1 has size 3`},
		{"gather out of range", mdl(13, x, y, []*Initializer{i64init("i", 7)},
			nd("sh", "Shape", s("x"), s("v")), nd("g", "Gather", s("v", "i"), s("y"))), nil,
			`graph: node "g" (Gather): index 7 is out of range for dimension 0 of size 4`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := InferShapes(tt.m, tt.shapes)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("InferShapes = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestInferEqualWhereExpand: the class-token chain of ViT exports,
// Expand(token, Where(Equal(shape, -1), ones, shape)), folds to a static
// shape.
func TestInferEqualWhereExpand(t *testing.T) {
	m := mdl(13, []*ValueInfo{tvi("x", 2, 3)}, []*ValueInfo{tvi("y")},
		[]*Initializer{i64init("sh", 2, -1, -1), i64init("neg", -1), i64init("ones", 1, 1, 1),
			f32init("tok", []int{1, 1, 3}, func(int) float32 { return 0 })},
		nd("eq", "Equal", s("sh", "neg"), s("e")),
		nd("wh", "Where", s("e", "ones", "sh"), s("w")),
		nd("ex", "Expand", s("tok", "w"), s("y")),
	)
	shapes, err := InferShapes(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := shapes["y"]; !slices.Equal(got, []int{2, 1, 3}) {
		t.Errorf("Expand shape %v, want [2 1 3]", got)
	}
	// Mod folds (Swin computes its padding with it): Reshape to
	// Mod([9, 15], [7, 4]) = [2, 3]; ScatterND keeps the data's shape.
	m2 := mdl(13, []*ValueInfo{tvi("x", 2, 3)}, []*ValueInfo{tvi("y"), tvi("z")},
		[]*Initializer{i64init("a", 9, 15), i64init("b", 7, 4), i64init("idx", 1, 0), f32init("u", []int{1}, func(int) float32 { return 1 })},
		nd("md", "Mod", s("a", "b"), s("sh")),
		nd("rs", "Reshape", s("x", "sh"), s("y")),
		nd("sc", "ScatterND", s("x", "idx", "u"), s("z")))
	m2.Graph.Initializers[2].Value.Shape = []int{1, 2}
	if shapes, err := InferShapes(m2, nil); err != nil {
		t.Errorf("Mod/ScatterND model: %v", err)
	} else if !slices.Equal(shapes["y"], []int{2, 3}) || !slices.Equal(shapes["z"], []int{2, 3}) {
		t.Errorf("shapes y %v z %v, want [2 3] both", shapes["y"], shapes["z"])
	}
	bad := mdl(13, []*ValueInfo{tvi("x", 2, 3)}, []*ValueInfo{tvi("y")}, []*Initializer{i64init("c", 1)},
		nd("wh", "Where", s("c", "x", "x"), s("y")))
	if _, err := InferShapes(bad, nil); err == nil || !strings.Contains(err.Error(), "want bool") {
		t.Errorf("Where with an int64 condition: %v, want an error asking for bool", err)
	}
}

func TestMACs(t *testing.T) {
	m := mdl(13, []*ValueInfo{tvi("x", 2, 4, 8, 8), tvi("v", 3, 5, 16)}, []*ValueInfo{tvi("y"), tvi("z"), tvi("mm")},
		[]*Initializer{
			f32init("w1", []int{6, 4, 3, 3}, func(int) float32 { return 0 }),
			f32init("w2", []int{6, 3, 1, 1}, func(int) float32 { return 0 }),
			f32init("fc", []int{10, 96}, func(int) float32 { return 0 }),
			f32init("mw", []int{16, 7}, func(int) float32 { return 0 }),
			f32init("wt", []int{6, 2, 3, 3}, func(int) float32 { return 0 }),
		},
		nd("conv", "Conv", s("x", "w1"), s("c1"), aInts("pads", 1, 1, 1, 1), aInts("strides", 2, 2)), // [2,6,4,4]
		nd("grp", "Conv", s("c1", "w2"), s("c2"), aInt("group", 2)),                                  // [2,6,4,4]
		nd("", "Flatten", s("c2"), s("f")),                                                           // [2,96]
		nd("", "Gemm", s("f", "fc"), s("y"), aInt("transB", 1)),                                      // [2,10]
		nd("mm", "MatMul", s("v", "mw"), s("mm")),                                                    // [3,5,7]
		nd("r", "Relu", s("c2"), s("z")),
		nd("up", "ConvTranspose", s("c2", "wt"), s("u"), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1),
			aInts("output_padding", 1, 1), aInt("group", 2)), // [2,4,8,8]
	)
	shapes, err := InferShapes(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := MACs(m, shapes)
	want := map[string]int64{
		"conv": 2 * 6 * 4 * 4 * (4 * 3 * 3), // N·M·H'·W'·C·kh·kw
		"grp":  2 * 6 * 4 * 4 * (3 * 1 * 1), // C/group = 3
		"@y":   2 * 10 * 96,
		"mm":   3 * 5 * 7 * 16,
		"up":   2 * 6 * 4 * 4 * (2 * 3 * 3), // N·C·H·W·(M/group)·kh·kw
	}
	if u := shapes["u"]; !slices.Equal(u, []int{2, 4, 8, 8}) {
		t.Errorf("ConvTranspose output shape %v, want [2 4 8 8]", u)
	}
	if len(got) != len(want) {
		t.Errorf("MACs = %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("MACs[%q] = %d, want %d", k, got[k], w)
		}
	}
}

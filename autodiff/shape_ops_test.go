package autodiff

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// opsIota is a float32 tensor holding 0, 1, 2, ... in the given shape.
func opsIota(shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.F32 {
		t.F32[i] = float32(i)
	}
	return t
}

func TestReshapeShapes(t *testing.T) {
	tests := []struct {
		in        []int
		shape     []int64
		allowZero bool
		want      []int
		wantErr   string
	}{
		{[]int{2, 3, 4}, []int64{4, 2, 3}, false, []int{4, 2, 3}, ""},
		{[]int{2, 3, 4}, []int64{-1}, false, []int{24}, ""},
		{[]int{2, 3, 4}, []int64{2, -1, 2}, false, []int{2, 6, 2}, ""},
		{[]int{2, 3, 4}, []int64{0, -1}, false, []int{2, 12}, ""},
		{[]int{2, 3, 4}, []int64{0, 0, 4, 1}, false, []int{2, 3, 4, 1}, ""},
		{[]int{0, 3, 4}, []int64{3, 4, 0}, true, []int{3, 4, 0}, ""},
		{[]int{2, 3, 4}, []int64{5, -1}, false, nil, "not a multiple"},
		{[]int{2, 3, 4}, []int64{5, 5}, false, nil, "cannot reshape"},
		{[]int{2, 3, 4}, []int64{-1, -1}, false, nil, "more than one -1"},
		{[]int{2, 3, 4}, []int64{0, -1}, true, nil, "-1 and 0"},
		{[]int{2, 3, 4}, []int64{-2, 12}, false, nil, "negative"},
	}
	for _, tt := range tests {
		got, err := reshapeTo(tt.in, tt.shape, tt.allowZero)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("reshapeTo(%v, %v, %v) error = %v, want one mentioning %q", tt.in, tt.shape, tt.allowZero, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("reshapeTo(%v, %v, %v) = %v, %v; want %v", tt.in, tt.shape, tt.allowZero, got, err, tt.want)
		}
	}
}

// TestCopyOpsForwardBackward covers the ops that copy their input into a
// new shape, across their attribute and input forms.
func TestCopyOpsForwardBackward(t *testing.T) {
	x := opsIota(2, 1, 3, 1)
	tests := []struct {
		name  string
		node  *graph.Node
		opset int64
		extra []*tensor.Tensor // integer operands after the data input
		want  []int
	}{
		{"Identity", newTestNode("Identity", 1, 1), 13, nil, []int{2, 1, 3, 1}},
		{"Reshape", newTestNode("Reshape", 2, 1), 14, []*tensor.Tensor{int64s(3, -1)}, []int{3, 2}},
		{"Reshape opset 1 attribute", newTestNode("Reshape", 1, 1, intsAttr("shape", 6)), 1, nil, []int{6}},
		{"Reshape allowzero", newTestNode("Reshape", 2, 1, intAttr("allowzero", 1)), 14, []*tensor.Tensor{int64s(1, 6)}, []int{1, 6}},
		{"Flatten default", newTestNode("Flatten", 1, 1), 13, nil, []int{2, 3}},
		{"Flatten axis 0", newTestNode("Flatten", 1, 1, intAttr("axis", 0)), 13, nil, []int{1, 6}},
		{"Flatten axis 4", newTestNode("Flatten", 1, 1, intAttr("axis", 4)), 13, nil, []int{6, 1}},
		{"Flatten axis -1", newTestNode("Flatten", 1, 1, intAttr("axis", -1)), 13, nil, []int{6, 1}},
		{"Flatten axis -3", newTestNode("Flatten", 1, 1, intAttr("axis", -3)), 13, nil, []int{2, 3}},
		{"Squeeze all", newTestNode("Squeeze", 1, 1), 13, nil, []int{2, 3}},
		{"Squeeze attribute", newTestNode("Squeeze", 1, 1, intsAttr("axes", -1)), 11, nil, []int{2, 1, 3}},
		{"Squeeze input", newTestNode("Squeeze", 2, 1), 13, []*tensor.Tensor{int64s(1)}, []int{2, 3, 1}},
		{"Unsqueeze attribute", newTestNode("Unsqueeze", 1, 1, intsAttr("axes", 0, 5)), 11, nil, []int{1, 2, 1, 3, 1, 1}},
		{"Unsqueeze input", newTestNode("Unsqueeze", 2, 1), 13, []*tensor.Tensor{int64s(-1, 1)}, []int{2, 1, 1, 3, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]*tensor.Tensor{x}, tt.extra...)
			got, err := runKernel(tt.node, tt.opset, in...)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(got[0].Shape, tt.want) || !cmp.Equal(got[0].F32, x.F32) {
				t.Errorf("%s = %v %v, want %v %v", tt.name, got[0].Shape, got[0].F32, tt.want, x.F32)
			}
			gradCheck(t, tt.node, tt.opset, in, []int{0}, gradCheckTol)
		})
	}
}

func TestCopyOpsErrors(t *testing.T) {
	x := opsIota(2, 3)
	tests := []struct {
		name  string
		node  *graph.Node
		opset int64
		in    []*tensor.Tensor
		want  string
	}{
		{"squeeze non-1", newTestNode("Squeeze", 2, 1), 13, []*tensor.Tensor{x, int64s(0)}, "not 1"},
		{"unsqueeze duplicate", newTestNode("Unsqueeze", 2, 1), 13, []*tensor.Tensor{x, int64s(1, 1)}, "twice"},
		{"unsqueeze range", newTestNode("Unsqueeze", 2, 1), 13, []*tensor.Tensor{x, int64s(4)}, "out of range"},
		{"flatten axis", newTestNode("Flatten", 1, 1, intAttr("axis", 3)), 13, []*tensor.Tensor{x}, "out of range"},
		{"reshape impossible", newTestNode("Reshape", 2, 1), 13, []*tensor.Tensor{x, int64s(4, 2)}, "cannot reshape"},
		{"reshape float shape", newTestNode("Reshape", 2, 1), 13, []*tensor.Tensor{x, tensor.New(2)}, "integer"},
		{"transpose perm", newTestNode("Transpose", 1, 1, intsAttr("perm", 0, 0)), 13, []*tensor.Tensor{x}, "permutation"},
		{"gather axis", newTestNode("Gather", 2, 1, intAttr("axis", 2)), 13, []*tensor.Tensor{x, int64s(0)}, "out of range"},
		{"gather indices", newTestNode("Gather", 2, 1), 13, []*tensor.Tensor{x, int64s(2)}, "index 2"},
		{"constant without value", newTestNode("Constant", 0, 1), 13, nil, "exactly one"},
	}
	for _, tt := range tests {
		_, err := runKernel(tt.node, tt.opset, tt.in...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `node "n"`) {
			t.Errorf("%s: error %v, want one naming node \"n\" and mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestReshapeNeedsConstantShape(t *testing.T) {
	// A shape computed from the graph's input values cannot be compiled.
	_, _, err := trySetupKernel(newTestNode("Reshape", 2, 1), 13, []*tensor.Tensor{opsIota(2, 3), int64s(3, 2)}, nil)
	if err != nil {
		t.Fatalf("constant shape: %v", err)
	}
	k, _ := kernels["Reshape"](newTestNode("Reshape", 2, 1), 13)
	_, err = k.Setup([]Value{
		{DType: tensor.Float32, Shape: []int{2, 3}, Present: true},
		{DType: tensor.Int64, Shape: []int{2}, Present: true},
	})
	if err == nil || !strings.Contains(err.Error(), "must be known when the model is compiled") {
		t.Errorf("Reshape with a run-time shape: error %v, want one saying the shape must be known at compile time", err)
	}
}

func TestTranspose(t *testing.T) {
	x := opsIota(2, 3, 4)
	tests := []struct {
		perm []int64
		want []int
	}{
		{nil, []int{4, 3, 2}},
		{[]int64{0, 2, 1}, []int{2, 4, 3}},
		{[]int64{1, 0, 2}, []int{3, 2, 4}},
		{[]int64{2, 0, 1}, []int{4, 2, 3}},
	}
	for _, tt := range tests {
		var attrs []*graph.Attribute
		if tt.perm != nil {
			attrs = append(attrs, intsAttr("perm", tt.perm...))
		}
		node := newTestNode("Transpose", 1, 1, attrs...)
		got, err := runKernel(node, 13, x)
		if err != nil {
			t.Fatal(err)
		}
		perm := tt.perm
		if perm == nil {
			perm = []int64{2, 1, 0}
		}
		// Check every element by index arithmetic.
		xs := contiguousStrides(x.Shape)
		ys := contiguousStrides(tt.want)
		bad := 0
		for i := range tt.want[0] {
			for j := range tt.want[1] {
				for k := range tt.want[2] {
					idx := []int{i, j, k}
					src := 0
					for d, p := range perm {
						src += idx[d] * xs[p]
					}
					if got[0].F32[i*ys[0]+j*ys[1]+k] != x.F32[src] {
						bad++
					}
				}
			}
		}
		if !cmp.Equal(got[0].Shape, tt.want) || bad > 0 {
			t.Errorf("Transpose(perm %v) shape %v with %d wrong elements, want shape %v", tt.perm, got[0].Shape, bad, tt.want)
		}
		gradCheck(t, node, 13, []*tensor.Tensor{randomTensor(rand.New(rand.NewPCG(1, 1)), 2, 3, 4)}, []int{0}, gradCheckTol)
	}
}

func TestConstant(t *testing.T) {
	val := &graph.Initializer{Value: tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 2)}
	tests := []struct {
		attr *graph.Attribute
		want *tensor.Tensor
	}{
		{&graph.Attribute{Name: "value", Type: graph.AttrTensor, T: val}, val.Value},
		{floatAttr("value_float", 2.5), &tensor.Tensor{DType: tensor.Float32, Shape: []int{}, F32: []float32{2.5}}},
		{floatsAttr("value_floats", 1, 2), tensor.FromFloat32([]float32{1, 2}, 2)},
		{intAttr("value_int", 7), &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{7}}},
		{intsAttr("value_ints", 7, 8, 9), int64s(7, 8, 9)},
	}
	for _, tt := range tests {
		got, err := runKernel(newTestNode("Constant", 0, 1, tt.attr), 13)
		if err != nil {
			t.Fatalf("Constant %s: %v", tt.attr.Name, err)
		}
		if diff := cmp.Diff(tt.want, got[0], cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Constant %s: (-want +got)\n%s", tt.attr.Name, diff)
		}
	}
	_, err := runKernel(newTestNode("Constant", 0, 1, stringAttr("value_string", "x")), 13)
	if err == nil || !strings.Contains(err.Error(), "value_string") {
		t.Errorf("Constant value_string: error %v, want one naming the attribute", err)
	}
}

func TestConstantOfShape(t *testing.T) {
	got, err := runKernel(newTestNode("ConstantOfShape", 1, 1), 13, int64s(2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got[0].Shape, []int{2, 3}) || !cmp.Equal(got[0].F32, make([]float32, 6)) {
		t.Errorf("ConstantOfShape([2 3]) = %v %v, want six zeros", got[0].Shape, got[0].F32)
	}
	v := &graph.Attribute{Name: "value", Type: graph.AttrTensor, T: &graph.Initializer{Value: int64s(4)}}
	got, err = runKernel(newTestNode("ConstantOfShape", 1, 1, v), 13, int64s(3))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].DType != tensor.Int64 || !cmp.Equal(got[0].I64, []int64{4, 4, 4}) {
		t.Errorf("ConstantOfShape([3], value 4) = %s %v, want int64 [4 4 4]", got[0].DType, got[0].I64)
	}
}

func TestShape(t *testing.T) {
	x := tensor.New(2, 3, 4, 5)
	tests := []struct {
		opset int64
		attrs []*graph.Attribute
		want  []int64
	}{
		{13, nil, []int64{2, 3, 4, 5}},
		{13, []*graph.Attribute{intAttr("start", 1)}, []int64{2, 3, 4, 5}}, // start needs opset 15
		{15, []*graph.Attribute{intAttr("start", 1)}, []int64{3, 4, 5}},
		{15, []*graph.Attribute{intAttr("end", -1)}, []int64{2, 3, 4}},
		{15, []*graph.Attribute{intAttr("start", -2), intAttr("end", 10)}, []int64{4, 5}},
		{15, []*graph.Attribute{intAttr("start", 3), intAttr("end", 1)}, []int64{}},
	}
	for _, tt := range tests {
		got, err := runKernel(newTestNode("Shape", 1, 1, tt.attrs...), tt.opset, x)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(got[0].I64, tt.want) {
			t.Errorf("Shape opset %d %v = %v, want %v", tt.opset, tt.attrs, got[0].I64, tt.want)
		}
	}
	if _, ok := any(&shapeKernel{}).(shapeOnly); !ok {
		t.Error("Shape does not fold at compile time (no shapeOnly marker)")
	}
}

func TestGather(t *testing.T) {
	x := opsIota(3, 4, 2)
	tests := []struct {
		axis int64
		idx  *tensor.Tensor
		want []float32
		sh   []int
	}{
		{0, int64s(2, 0), []float32{16, 17, 18, 19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7}, []int{2, 4, 2}},
		{1, int64s(-1), []float32{6, 7, 14, 15, 22, 23}, []int{3, 1, 2}},
		{-1, &tensor.Tensor{DType: tensor.Int32, Shape: []int{2, 2}, I64: []int64{1, 0, 0, 1}}, nil, []int{3, 4, 2, 2}},
		{0, &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{1}}, []float32{8, 9, 10, 11, 12, 13, 14, 15}, []int{4, 2}},
	}
	for _, tt := range tests {
		node := newTestNode("Gather", 2, 1, intAttr("axis", tt.axis))
		got, err := runKernel(node, 13, x, tt.idx)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(got[0].Shape, tt.sh) || (tt.want != nil && !cmp.Equal(got[0].F32, tt.want)) {
			t.Errorf("Gather(axis %d, %v) = %v %v, want %v %v", tt.axis, tt.idx.I64, got[0].Shape, got[0].F32, tt.sh, tt.want)
		}
		// Repeated indices accumulate gradient.
		gradCheck(t, node, 13, []*tensor.Tensor{randomTensor(rand.New(rand.NewPCG(2, 2)), 3, 4, 2), tt.idx}, []int{0}, gradCheckTol)
	}
	// Repeated indices: the gradient adds up.
	gradCheck(t, newTestNode("Gather", 2, 1), 13, []*tensor.Tensor{randomTensor(rand.New(rand.NewPCG(2, 3)), 3, 2), int64s(1, 1, 2, 1)}, []int{0}, gradCheckTol)
}

// TestGatherIndexOutOfRangeAtRunTime: indices that are only known at run
// time are checked then, and give an error rather than a panic.
func TestGatherIndexOutOfRangeAtRunTime(t *testing.T) {
	k, err := kernels["Gather"](newTestNode("Gather", 2, 1), 13)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := k.Setup([]Value{
		{DType: tensor.Float32, Shape: []int{3, 2}, Present: true},
		{DType: tensor.Int64, Shape: []int{2}, Present: true}, // not constant
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int64{3, -4, 1 << 40} {
		out := allocTensor(outs[0].DType, outs[0].Shape)
		err := k.Forward(&RunContext{Workers: 1}, []*tensor.Tensor{opsIota(3, 2), int64s(0, bad)}, []*tensor.Tensor{out})
		if err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("Gather with index %d: error %v, want out of range", bad, err)
		}
	}
}

func TestDataOpsCarryIntegers(t *testing.T) {
	x := tensor.FromInt64([]int64{1, 2, 3, 4, 5, 6}, 2, 3)
	tests := []struct {
		node *graph.Node
		in   []*tensor.Tensor
		want []int64
	}{
		{newTestNode("Transpose", 1, 1), []*tensor.Tensor{x}, []int64{1, 4, 2, 5, 3, 6}},
		{newTestNode("Reshape", 2, 1), []*tensor.Tensor{x, int64s(-1)}, []int64{1, 2, 3, 4, 5, 6}},
		{newTestNode("Gather", 2, 1, intAttr("axis", 1)), []*tensor.Tensor{x, int64s(2)}, []int64{3, 6}},
		{newTestNode("Concat", 2, 1, intAttr("axis", 0)), []*tensor.Tensor{x, x}, []int64{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}},
		{newTestNode("Slice", 3, 1), []*tensor.Tensor{x, int64s(0, 1), int64s(1, 3)}, []int64{2, 3}},
	}
	for _, tt := range tests {
		got, err := runKernel(tt.node, 13, tt.in...)
		if err != nil {
			t.Fatalf("%s: %v", tt.node.OpType, err)
		}
		if got[0].DType != tensor.Int64 || !cmp.Equal(got[0].I64, tt.want) {
			t.Errorf("%s on int64 = %s %v, want %v", tt.node.OpType, got[0].DType, got[0].I64, tt.want)
		}
	}
}

func TestCast(t *testing.T) {
	f := tensor.FromFloat32([]float32{-2.7, -0.5, 0, 0.5, 300.9}, 5)
	tests := []struct {
		in   *tensor.Tensor
		to   tensor.DType
		want any
	}{
		{f, tensor.Int64, []int64{-2, 0, 0, 0, 300}},
		{f, tensor.Uint8, []int64{254, 0, 0, 0, 44}},
		{f, tensor.Bool, []int64{1, 1, 0, 1, 1}},
		{f, tensor.Float64, []float64{float64(float32(-2.7)), -0.5, 0, 0.5, float64(float32(300.9))}},
		{int64s(-1, 0, 70000), tensor.Float32, []float32{-1, 0, 70000}},
		{int64s(-1, 0, 70000), tensor.Int16, []int64{-1, 0, 4464}},
		{int64s(-1, 0, 7), tensor.Int64, []int64{-1, 0, 7}},
	}
	for _, tt := range tests {
		got, err := runKernel(newTestNode("Cast", 1, 1, intAttr("to", int64(tt.to))), 13, tt.in)
		if err != nil {
			t.Fatal(err)
		}
		var g any
		switch {
		case tt.to == tensor.Float32:
			g = got[0].F32
		case tt.to == tensor.Float64:
			g = got[0].F64
		default:
			g = got[0].I64
		}
		if got[0].DType != tt.to || !cmp.Equal(g, tt.want) {
			t.Errorf("Cast(%s %v, to %s) = %s %v, want %v", tt.in.DType, tt.in, tt.to, got[0].DType, g, tt.want)
		}
	}
	gradCheck(t, newTestNode("Cast", 1, 1, intAttr("to", int64(tensor.Float32))), 13, []*tensor.Tensor{randomTensor(rand.New(rand.NewPCG(8, 8)), 2, 3)}, []int{0}, gradCheckTol)
	if _, err := kernels["Cast"](newTestNode("Cast", 1, 1, intAttr("to", int64(tensor.Float16))), 13); err == nil || !strings.Contains(err.Error(), "float16") {
		t.Errorf("Cast to float16: error %v, want one naming float16", err)
	}
}

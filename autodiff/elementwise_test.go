package autodiff

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestBroadcastShapes(t *testing.T) {
	tests := []struct {
		in      [][]int
		want    []int
		wantErr bool
	}{
		{[][]int{{2, 3}, {2, 3}}, []int{2, 3}, false},
		{[][]int{{2, 3, 4, 5}, {}}, []int{2, 3, 4, 5}, false},
		{[][]int{{2, 3, 4, 5}, {5}}, []int{2, 3, 4, 5}, false},
		{[][]int{{4, 5}, {2, 3, 4, 5}}, []int{2, 3, 4, 5}, false},
		{[][]int{{1, 4, 5}, {2, 3, 1, 1}}, []int{2, 3, 4, 5}, false},
		{[][]int{{3, 4, 5}, {2, 1, 1, 1}}, []int{2, 3, 4, 5}, false},
		{[][]int{{2, 1}, {1, 3}, {4, 1, 1}}, []int{4, 2, 3}, false},
		{[][]int{{2, 3}, {3, 2}}, nil, true},
	}
	for _, tt := range tests {
		got, err := broadcastShapes(tt.in...)
		if (err != nil) != tt.wantErr {
			t.Errorf("broadcastShapes(%v) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !cmp.Equal(got, tt.want) {
			t.Errorf("broadcastShapes(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// opsNaiveBroadcast evaluates f elementwise over the broadcast of a and b
// by explicit index arithmetic: the reference the plan-based kernels are
// checked against.
func opsNaiveBroadcast(a, b *tensor.Tensor, f func(x, y float32) float32) *tensor.Tensor {
	out, err := broadcastShapes(a.Shape, b.Shape)
	if err != nil {
		panic(err)
	}
	z := tensor.New(out...)
	idx := make([]int, len(out))
	at := func(t *tensor.Tensor) float32 {
		off, st := 0, 1
		for d := len(t.Shape) - 1; d >= 0; d-- {
			i := idx[len(out)-len(t.Shape)+d]
			if t.Shape[d] == 1 {
				i = 0
			}
			off += i * st
			st *= t.Shape[d]
		}
		return t.F32[off]
	}
	for o := range z.F32 {
		r := o
		for d := len(out) - 1; d >= 0; d-- {
			idx[d] = r % out[d]
			r /= out[d]
		}
		z.F32[o] = f(at(a), at(b))
	}
	return z
}

// opsBroadcastCases are shape pairs covering every broadcasting pattern:
// equal, scalar, trailing vector, per-channel bias, both sides broadcast,
// rank difference, zero-size.
var opsBroadcastCases = [][2][]int{
	{{2, 3}, {2, 3}},
	{{2, 3, 4}, {}},
	{{}, {2, 3}},
	{{2, 3, 4}, {4}},
	{{2, 3, 4, 5}, {1, 3, 1, 1}},
	{{2, 1, 4}, {1, 3, 1}},
	{{3, 1}, {2, 1, 4}},
	{{1, 1}, {1}},
	{{2, 0, 3}, {3}},
}

func TestArithForwardMatchesNaive(t *testing.T) {
	ops := map[string]func(x, y float32) float32{
		"Add": func(x, y float32) float32 { return x + y },
		"Sub": func(x, y float32) float32 { return x - y },
		"Mul": func(x, y float32) float32 { return x * y },
		"Div": func(x, y float32) float32 { return x / y },
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for op, f := range ops {
		for _, sh := range opsBroadcastCases {
			a, b := randomTensor(rng, sh[0]...), randomTensor(rng, sh[1]...)
			got, err := runKernel(newTestNode(op, 2, 1), 14, a, b)
			if err != nil {
				t.Fatalf("%s%v: %v", op, sh, err)
			}
			want := opsNaiveBroadcast(a, b, f)
			if !cmp.Equal(got[0].Shape, want.Shape) || !cmp.Equal(got[0].F32, want.F32) {
				t.Errorf("%s(%v, %v) = %v %v, want %v %v", op, sh[0], sh[1], got[0].Shape, got[0].F32, want.Shape, want.F32)
			}
		}
	}
}

func TestArithGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow"} {
		for _, sh := range opsBroadcastCases {
			t.Run(op, func(t *testing.T) {
				a, b := randomTensor(rng, sh[0]...), randomTensor(rng, sh[1]...)
				if op == "Div" {
					// Keep the divisor away from 0, where 1/b is steep
					// and finite differences lose accuracy.
					for i, v := range b.F32 {
						b.F32[i] = 1.5 + v
					}
				}
				if op == "Pow" {
					// A positive base: a^b is real and ln a finite.
					for i, v := range a.F32 {
						a.F32[i] = 1.25 + v/2
					}
				}
				gradCheck(t, newTestNode(op, 2, 1), 14, []*tensor.Tensor{a, b}, []int{0, 1}, gradCheckTol)
			})
		}
	}
}

// TestPow compares Pow with math.Pow, rounded, under broadcasting: a
// squared by a scalar exponent (the decomposed LayerNorm of ConvNeXt and
// ViT exports), negative bases with integer exponents, and a per-element
// exponent; and refuses integer operands.
func TestPow(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	x := randomTensor(rng, 2, 3, 4)
	for _, c := range []struct {
		name string
		a, b *tensor.Tensor
	}{
		{"square", x, tensor.FromFloat32([]float32{2})},
		{"cube-negative-base", x, tensor.FromFloat32([]float32{3}, 1, 1, 1)},
		{"per-element", tensor.FromFloat32([]float32{0.5, 2, 9, 0, 4, 1e-3}, 2, 3), tensor.FromFloat32([]float32{0.5, -1, 0.5, 2, 1.5, 0}, 2, 3)},
	} {
		got, err := runKernel(newTestNode("Pow", 2, 1), 15, c.a, c.b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := opsNaiveBroadcast(c.a, c.b, func(x, y float32) float32 { return float32(math.Pow(float64(x), float64(y))) })
		if !cmp.Equal(got[0].Shape, want.Shape) || !cmp.Equal(got[0].F32, want.F32) {
			t.Errorf("%s: Pow = %v %v, want %v %v", c.name, got[0].Shape, got[0].F32, want.Shape, want.F32)
		}
	}
	if _, err := runKernel(newTestNode("Pow", 2, 1), 15, int64s(2, 3), int64s(2)); err == nil || !strings.Contains(err.Error(), "float32 and float64 only") {
		t.Errorf("Pow of int64: error %v, want one saying it raises floats only", err)
	}
}

func TestArithLegacyBroadcast(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := randomTensor(rng, 2, 3, 4)
	tests := []struct {
		name    string
		b       []int
		attrs   []*graph.Attribute
		want    []int // B's shape as numpy would see it
		wantErr string
	}{
		{"suffix", []int{4}, []*graph.Attribute{intAttr("broadcast", 1)}, []int{1, 1, 4}, ""},
		{"axis1", []int{3}, []*graph.Attribute{intAttr("broadcast", 1), intAttr("axis", 1)}, []int{1, 3, 1}, ""},
		{"axis0", []int{2, 3}, []*graph.Attribute{intAttr("broadcast", 1), intAttr("axis", 0)}, []int{2, 3, 1}, ""},
		{"same", []int{2, 3, 4}, nil, []int{2, 3, 4}, ""},
		{"no broadcast attr", []int{4}, nil, nil, "broadcast=0"},
		{"bad axis", []int{3}, []*graph.Attribute{intAttr("broadcast", 1), intAttr("axis", 2)}, nil, "axis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := randomTensor(rng, tt.b...)
			got, err := runKernel(newTestNode("Mul", 2, 1, tt.attrs...), 6, a, b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Mul opset 6 with B %v: error %v, want one mentioning %q", tt.b, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			bb := &tensor.Tensor{DType: tensor.Float32, Shape: tt.want, F32: b.F32}
			want := opsNaiveBroadcast(a, bb, func(x, y float32) float32 { return x * y })
			if !cmp.Equal(got[0].F32, want.F32) {
				t.Errorf("Mul opset 6 with B %v = %v, want %v", tt.b, got[0].F32, want.F32)
			}
			gradCheck(t, newTestNode("Mul", 2, 1, tt.attrs...), 6, []*tensor.Tensor{a, b}, []int{0, 1}, gradCheckTol)
		})
	}
}

func TestArithIntegers(t *testing.T) {
	tests := []struct {
		op   string
		dt   tensor.DType
		a, b []int64
		want []int64
	}{
		{"Add", tensor.Uint8, []int64{200, 3}, []int64{100, 4}, []int64{44, 7}},
		{"Sub", tensor.Uint8, []int64{3, 10}, []int64{4, 1}, []int64{255, 9}},
		{"Mul", tensor.Int8, []int64{100, -3}, []int64{2, 5}, []int64{-56, -15}},
		{"Div", tensor.Int32, []int64{7, -7}, []int64{2, 2}, []int64{3, -3}},
		{"Div", tensor.Uint64, []int64{-2, 9}, []int64{2, 3}, []int64{int64(^uint64(1) / 2), 3}},
		{"Add", tensor.Int64, []int64{1 << 40, 1}, []int64{1, 1}, []int64{1<<40 + 1, 2}},
	}
	for _, tt := range tests {
		a := &tensor.Tensor{DType: tt.dt, Shape: []int{len(tt.a)}, I64: tt.a}
		b := &tensor.Tensor{DType: tt.dt, Shape: []int{len(tt.b)}, I64: tt.b}
		got, err := runKernel(newTestNode(tt.op, 2, 1), 14, a, b)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.op, tt.dt, err)
		}
		if got[0].DType != tt.dt || !cmp.Equal(got[0].I64, tt.want) {
			t.Errorf("%s(%s %v, %v) = %s %v, want %v", tt.op, tt.dt, tt.a, tt.b, got[0].DType, got[0].I64, tt.want)
		}
	}
}

func TestArithIntegerDivisionByZero(t *testing.T) {
	a := tensor.FromInt64([]int64{1, 2}, 2)
	b := tensor.FromInt64([]int64{1, 0}, 2)
	_, err := runKernel(newTestNode("Div", 2, 1), 14, a, b)
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Errorf("Div by integer 0: error %v, want a division-by-zero error", err)
	}
}

func TestArithBadInput(t *testing.T) {
	tests := []struct {
		name string
		a, b *tensor.Tensor
		want string
	}{
		{"shapes", tensor.New(2, 3), tensor.New(3, 2), "broadcast"},
		{"types", tensor.New(2), tensor.FromInt64([]int64{1, 2}, 2), "types differ"},
		{"strings", &tensor.Tensor{DType: tensor.String, Shape: []int{1}}, &tensor.Tensor{DType: tensor.String, Shape: []int{1}}, "not supported"},
	}
	for _, tt := range tests {
		_, err := runKernel(newTestNode("Add", 2, 1), 14, tt.a, tt.b)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `node "n"`) {
			t.Errorf("Add with bad %s: error %v, want one naming the node and mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	shapes := [][][]int{
		{{2, 3}},
		{{2, 3}, {2, 3}},
		{{2, 3, 4}, {4}, {3, 1}, {}},
		{{1, 3, 1}, {2, 1, 4}},
	}
	for _, sh := range shapes {
		in := make([]*tensor.Tensor, len(sh))
		wrt := make([]int, len(sh))
		for i, s := range sh {
			in[i] = randomTensor(rng, s...)
			wrt[i] = i
		}
		got, err := runKernel(newTestNode("Sum", len(sh), 1), 13, in...)
		if err != nil {
			t.Fatal(err)
		}
		want := in[0]
		for _, x := range in[1:] {
			want = opsNaiveBroadcast(want, x, func(x, y float32) float32 { return x + y })
		}
		if !cmp.Equal(got[0].Shape, want.Shape) || !cmp.Equal(got[0].F32, want.F32) {
			t.Errorf("Sum%v = %v, want %v", sh, got[0].F32, want.F32)
		}
		gradCheck(t, newTestNode("Sum", len(sh), 1), 13, in, wrt, gradCheckTol)
	}
}

// TestArithParallelMatchesSerial: the same-shape path splits the work over
// workers; results must be bit-identical to one worker.
func TestArithParallelMatchesSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	n := 3*parallelGrain + 17
	a, b := randomTensor(rng, n), randomTensor(rng, n)
	for i := range b.F32 {
		b.F32[i] += 2
	}
	g := randomTensor(rng, n)
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		var outs, grads [2][]float32
		for w, workers := range []int{1, 3} {
			k, o := setupKernel(t, newTestNode(op, 2, 1), 14, []*tensor.Tensor{a, b}, nil)
			out := allocTensor(o[0].DType, o[0].Shape)
			ctx := &RunContext{Workers: workers}
			if err := k.Forward(ctx, []*tensor.Tensor{a, b}, []*tensor.Tensor{out}); err != nil {
				t.Fatal(err)
			}
			ga, gb := tensor.New(n), tensor.New(n)
			if err := k.Backward(ctx, []*tensor.Tensor{a, b}, []*tensor.Tensor{out}, []*tensor.Tensor{g}, []*tensor.Tensor{ga, gb}); err != nil {
				t.Fatal(err)
			}
			outs[w] = out.F32
			grads[w] = append(ga.F32, gb.F32...)
		}
		// slices.Equal: cmp.Equal is far too slow on 100k elements.
		if !slices.Equal(outs[0], outs[1]) || !slices.Equal(grads[0], grads[1]) {
			t.Errorf("%s: results with 3 workers differ from 1 worker", op)
		}
	}
}

func BenchmarkAddResidual(b *testing.B) {
	// The residual Add of a CIFAR ResNet-18 first stage at batch 64.
	rng := rand.New(rand.NewPCG(1, 1))
	shape := []int{64, 64, 32, 32}
	x, y := randomTensor(rng, shape...), randomTensor(rng, shape...)
	k, o, err := trySetupKernel(newTestNode("Add", 2, 1), 14, []*tensor.Tensor{x, y}, nil)
	if err != nil {
		b.Fatal(err)
	}
	out := allocTensor(o[0].DType, o[0].Shape)
	gx, gy := tensor.New(shape...), tensor.New(shape...)
	ctx := &RunContext{Workers: defaultWorkers()}
	for b.Loop() {
		if err := k.Forward(ctx, []*tensor.Tensor{x, y}, []*tensor.Tensor{out}); err != nil {
			b.Fatal(err)
		}
		if err := k.Backward(ctx, []*tensor.Tensor{x, y}, []*tensor.Tensor{out}, []*tensor.Tensor{out}, []*tensor.Tensor{gx, gy}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMaxMinMean: the variadic elementwise ops under broadcasting, NaN
// winning Max and Min, and their gradients (Max/Min: shared by the inputs
// holding the result; Mean: 1/n to each).
func TestMaxMinMean(t *testing.T) {
	a := tensor.FromFloat32([]float32{1, 5, -2, 7}, 2, 2)
	b := tensor.FromFloat32([]float32{3, 0}, 2)
	c := tensor.FromFloat32([]float32{2}, 1)
	for op, want := range map[string][]float32{
		"Max":  {3, 5, 3, 7},
		"Min":  {1, 0, -2, 0},
		"Mean": {2, 7.0 / 3, 1, 3},
	} {
		got, err := runKernel(newTestNode(op, 3, 1), 13, a, b, c)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(got[0].F32, want) {
			t.Errorf("%s = %v, want %v", op, got[0].F32, want)
		}
		rng := rand.New(rand.NewPCG(7, 7))
		gradCheck(t, newTestNode(op, 3, 1), 13, []*tensor.Tensor{randomTensor(rng, 2, 3), randomTensor(rng, 3), randomTensor(rng, 2, 1)}, []int{0, 1, 2}, gradCheckTol)
	}
	nan := float32(math.NaN())
	got, err := runKernel(newTestNode("Max", 2, 1), 13, tensor.FromFloat32([]float32{1, nan}, 2), tensor.FromFloat32([]float32{nan, 1}, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(got[0].F32[0])) || !math.IsNaN(float64(got[0].F32[1])) {
		t.Errorf("Max with NaN operands = %v, want [NaN NaN]", got[0].F32)
	}
	ints, err := runKernel(newTestNode("Min", 2, 1), 13, int64s(4, -9), int64s(2))
	if err != nil || !slices.Equal(ints[0].I64, []int64{2, -9}) {
		t.Errorf("Min on int64 = %v (%v), want [2 -9]", ints, err)
	}
}

// TestFloorCeilSize: Floor and Ceil round (their gradient is 0); Size is
// the element count.
func TestFloorCeilSize(t *testing.T) {
	x := tensor.FromFloat32([]float32{-1.5, -0.5, 0.5, 2}, 4)
	for op, want := range map[string][]float32{"Floor": {-2, -1, 0, 2}, "Ceil": {-1, 0, 1, 2}} {
		got, err := runKernel(newTestNode(op, 1, 1), 13, x)
		if err != nil || !cmp.Equal(got[0].F32, want) {
			t.Errorf("%s = %v (%v), want %v", op, got, err, want)
		}
	}
	got, err := runKernel(newTestNode("Size", 1, 1), 13, tensor.New(2, 3, 4))
	if err != nil || len(got[0].Shape) != 0 || got[0].I64[0] != 24 {
		t.Errorf("Size = %v (%v), want scalar 24", got, err)
	}
}

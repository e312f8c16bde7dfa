package autodiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func TestActivationValues(t *testing.T) {
	xs := []float32{-4, -1, -0.25, 0.5, 2, 5}
	tests := []struct {
		op    string
		opset int64
		attrs []*graph.Attribute
		extra []*tensor.Tensor // Clip bounds as inputs
		f     func(x float64) float64
	}{
		{"Relu", 14, nil, nil, func(x float64) float64 { return math.Max(x, 0) }},
		{"LeakyRelu", 16, []*graph.Attribute{floatAttr("alpha", 0.1)}, nil, func(x float64) float64 {
			if x < 0 {
				return 0.1 * x
			}
			return x
		}},
		{"Sigmoid", 13, nil, nil, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		{"HardSigmoid", 6, []*graph.Attribute{floatAttr("alpha", 0.25), floatAttr("beta", 0.4)}, nil, func(x float64) float64 {
			return math.Max(0, math.Min(1, 0.25*x+0.4))
		}},
		{"HardSwish", 14, nil, nil, func(x float64) float64 { return x * math.Max(0, math.Min(1, x/6+0.5)) }},
		{"Clip", 6, []*graph.Attribute{floatAttr("min", -1), floatAttr("max", 2)}, nil, func(x float64) float64 { return math.Max(-1, math.Min(2, x)) }},
		{"Clip", 13, nil, []*tensor.Tensor{tensor.FromFloat32([]float32{0}), tensor.FromFloat32([]float32{6})}, func(x float64) float64 { return math.Max(0, math.Min(6, x)) }},
		{"Clip", 13, nil, []*tensor.Tensor{tensor.FromFloat32([]float32{-0.5})}, func(x float64) float64 { return math.Max(-0.5, x) }},
		{"Erf", 13, nil, nil, math.Erf},
		{"Exp", 13, nil, nil, math.Exp},
		{"Tanh", 13, nil, nil, math.Tanh},
		{"Neg", 13, nil, nil, func(x float64) float64 { return -x }},
		{"Abs", 13, nil, nil, math.Abs},
		{"Reciprocal", 13, nil, nil, func(x float64) float64 { return 1 / x }},
		{"Elu", 6, []*graph.Attribute{floatAttr("alpha", 0.5)}, nil, func(x float64) float64 { return map[bool]float64{true: x, false: 0.5 * (math.Exp(x) - 1)}[x > 0] }},
		{"Selu", 6, nil, nil, func(x float64) float64 {
			return 1.05070102214813232421875 * map[bool]float64{true: x, false: 1.67326319217681884765625 * (math.Exp(x) - 1)}[x > 0]
		}},
		{"Celu", 12, []*graph.Attribute{floatAttr("alpha", 2)}, nil, func(x float64) float64 { return math.Max(0, x) + math.Min(0, 2*(math.Exp(x/2)-1)) }},
		{"Gelu", 20, nil, nil, func(x float64) float64 { return x / 2 * (1 + math.Erf(x/math.Sqrt2)) }},
		{"Gelu", 20, []*graph.Attribute{stringAttr("approximate", "tanh")}, nil, func(x float64) float64 {
			return x / 2 * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
		}},
		{"Softplus", 1, nil, nil, func(x float64) float64 { return math.Log(1 + math.Exp(x)) }},
		{"Softsign", 1, nil, nil, func(x float64) float64 { return x / (1 + math.Abs(x)) }},
		{"Mish", 18, nil, nil, func(x float64) float64 { return x * math.Tanh(math.Log(1+math.Exp(x))) }},
		{"Sin", 7, nil, nil, math.Sin},
		{"Cos", 7, nil, nil, math.Cos},
		{"Sign", 13, nil, nil, func(x float64) float64 { return map[bool]float64{true: 1, false: -1}[x > 0] }},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			in := append([]*tensor.Tensor{tensor.FromFloat32(append([]float32(nil), xs...), 2, 3)}, tt.extra...)
			out, err := runKernel(newTestNode(tt.op, len(in), 1, tt.attrs...), tt.opset, in...)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range xs {
				// float32 results of float64-exact formulas, compared
				// with the formula's value rounded to float32.
				if want := float64(float32(tt.f(float64(x)))); math.Abs(float64(out[0].F32[i])-want) > 1e-6 {
					t.Errorf("%s(%v) = %v, want %v", tt.op, x, out[0].F32[i], want)
				}
			}
		})
	}
}

// TestSqrtLogValues compares Sqrt and Log with float64 math on positive
// inputs, and checks that a negative input gives NaN (as C's sqrtf and
// logf, and onnxruntime, do).
func TestSqrtLogValues(t *testing.T) {
	xs := []float32{1e-3, 0.25, 1, 2, 1e6, -1}
	for op, f := range map[string]func(float64) float64{"Sqrt": math.Sqrt, "Log": math.Log} {
		out, err := runKernel(newTestNode(op, 1, 1), 13, tensor.FromFloat32(append([]float32(nil), xs...), 6))
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs {
			want := float32(f(float64(x)))
			if got := out[0].F32[i]; got != want && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
				t.Errorf("%s(%v) = %v, want %v", op, x, got, want)
			}
		}
		if !math.IsNaN(float64(out[0].F32[5])) {
			t.Errorf("%s(-1) = %v, want NaN", op, out[0].F32[5])
		}
	}
}

func TestActivationGradients(t *testing.T) {
	tests := []struct {
		name   string
		op     string
		opset  int64
		attrs  []*graph.Attribute
		bounds []float32 // Clip bounds passed as run-time inputs
	}{
		{"relu", "Relu", 14, nil, nil},
		{"leaky", "LeakyRelu", 16, []*graph.Attribute{floatAttr("alpha", 0.2)}, nil},
		{"sigmoid", "Sigmoid", 13, nil, nil},
		{"hardsigmoid", "HardSigmoid", 6, []*graph.Attribute{floatAttr("alpha", 0.5)}, nil},
		{"hardswish", "HardSwish", 14, nil, nil},
		{"clip-attrs", "Clip", 6, []*graph.Attribute{floatAttr("min", -0.45), floatAttr("max", 0.55)}, nil},
		{"clip-inputs", "Clip", 13, nil, []float32{-0.45, 0.55}},
		{"erf", "Erf", 13, nil, nil},
		{"exp", "Exp", 13, nil, nil},
		{"tanh", "Tanh", 13, nil, nil},
		{"neg", "Neg", 13, nil, nil},
		{"abs", "Abs", 13, nil, nil},
		// Positive inputs only (offset below).
		{"sqrt", "Sqrt", 13, nil, nil},
		{"log", "Log", 13, nil, nil},
		{"reciprocal", "Reciprocal", 13, nil, nil},
		{"elu", "Elu", 6, []*graph.Attribute{floatAttr("alpha", 0.5)}, nil},
		{"selu", "Selu", 6, nil, nil},
		{"celu", "Celu", 12, []*graph.Attribute{floatAttr("alpha", 2)}, nil},
		{"gelu", "Gelu", 20, nil, nil},
		{"gelu-tanh", "Gelu", 20, []*graph.Attribute{stringAttr("approximate", "tanh")}, nil},
		{"softplus", "Softplus", 1, nil, nil},
		{"softsign", "Softsign", 1, nil, nil},
		{"mish", "Mish", 18, nil, nil},
		{"sin", "Sin", 7, nil, nil},
		{"cos", "Cos", 7, nil, nil},
		{"sign", "Sign", 13, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 11))
			// Values on a grid offset from every kink of these functions
			// (0, ±3, clip bounds, hard-sigmoid corners) by more than the step.
			x := tensor.New(4, 25)
			for i := range x.F32 {
				x.F32[i] = -4.02 + 0.08*float32(rng.IntN(100))
				if tt.op == "Sqrt" || tt.op == "Log" || tt.op == "Reciprocal" {
					x.F32[i] += 4.52 // [0.5, 4.5]: away from 0, where they are steep
				}
			}
			in := []*tensor.Tensor{x}
			wrt := []int{0}
			for _, b := range tt.bounds {
				in = append(in, tensor.FromFloat32([]float32{b}))
				wrt = append(wrt, len(in)-1)
			}
			gradCheck(t, newTestNode(tt.op, len(in), 1, tt.attrs...), tt.opset, in, wrt, 0)
		})
	}
}

func TestActivationNaNPropagates(t *testing.T) {
	for _, op := range []string{"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip"} {
		x := tensor.FromFloat32([]float32{float32(math.NaN())}, 1)
		out, err := runKernel(newTestNode(op, 1, 1), 14, x)
		if err != nil {
			t.Fatal(err)
		}
		if !math.IsNaN(float64(out[0].F32[0])) {
			t.Errorf("%s(NaN) = %v, want NaN", op, out[0].F32[0])
		}
	}
}

func TestActivationParallelMatchesSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	x := randomTensor(rng, activationParallelMin+7)
	node := newTestNode("HardSwish", 1, 1)
	kern, outs := setupKernel(t, node, 14, []*tensor.Tensor{x}, nil)
	y1, y2 := tensor.New(outs[0].Shape...), tensor.New(outs[0].Shape...)
	if err := kern.Forward(&RunContext{Workers: 1}, []*tensor.Tensor{x}, []*tensor.Tensor{y1}); err != nil {
		t.Fatal(err)
	}
	if err := kern.Forward(&RunContext{Workers: 3}, []*tensor.Tensor{x}, []*tensor.Tensor{y2}); err != nil {
		t.Fatal(err)
	}
	for i := range y1.F32 {
		if y1.F32[i] != y2.F32[i] {
			t.Fatalf("y[%d] = %v with 1 worker, %v with 3", i, y1.F32[i], y2.F32[i])
		}
	}
}

func TestClipBadBound(t *testing.T) {
	in := []*tensor.Tensor{tensor.New(3), tensor.New(2)}
	if _, _, err := trySetupKernel(newTestNode("Clip", 2, 1), 13, in, nil); err == nil {
		t.Error("Clip with a 2-element min: no error")
	}
}

// TestActivationGradientAtKinks pins the conventions at the kinks, which
// finite differences cannot check: Relu'(±0) = 0, LeakyRelu'(0) = alpha,
// Clip passes the gradient at its bounds.
func TestActivationGradientAtKinks(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	tests := []struct {
		op    string
		opset int64
		extra []*tensor.Tensor
		x     []float32
		want  []float32
	}{
		{"Relu", 14, nil, []float32{0, negZero, 1e-30, -1e-30}, []float32{0, 0, 1, 0}},
		{"LeakyRelu", 16, nil, []float32{0, negZero, 1e-30, -1e-30}, []float32{0.01, 0.01, 1, 0.01}},
		{"Clip", 13, []*tensor.Tensor{tensor.FromFloat32([]float32{0}), tensor.FromFloat32([]float32{6})},
			[]float32{0, negZero, 6, 6.0001, -1e-30}, []float32{1, 1, 1, 0, 0}},
	}
	for _, tt := range tests {
		x := tensor.FromFloat32(tt.x, len(tt.x))
		in := append([]*tensor.Tensor{x}, tt.extra...)
		consts := []int{}
		for i := range tt.extra {
			consts = append(consts, i+1)
		}
		kern, outs := setupKernel(t, newTestNode(tt.op, len(in), 1), tt.opset, in, consts)
		y := tensor.New(outs[0].Shape...)
		ctx := &RunContext{Workers: 1}
		if err := kern.Forward(ctx, in, []*tensor.Tensor{y}); err != nil {
			t.Fatal(err)
		}
		dy := tensor.New(len(tt.x))
		for i := range dy.F32 {
			dy.F32[i] = 1
		}
		dx := tensor.New(len(tt.x))
		gin := make([]*tensor.Tensor, len(in))
		gin[0] = dx
		if err := kern.Backward(ctx, in, []*tensor.Tensor{y}, []*tensor.Tensor{dy}, gin); err != nil {
			t.Fatal(err)
		}
		for i, want := range tt.want {
			if dx.F32[i] != want {
				t.Errorf("%s'(%v) = %v, want %v", tt.op, tt.x[i], dx.F32[i], want)
			}
		}
	}
}

// BenchmarkActivationOps: the forward pass of elementwise activation ops
// over one [32 96 16 16] tensor, one worker, in ns per float; Relu is the
// memory-bound floor to compare the others with in the same run.
func BenchmarkActivationOps(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := randomTensor(rng, 32, 96, 16, 16)
	for _, op := range []string{"Relu", "Sigmoid", "Exp", "Softmax", "Tanh", "Erf", "Gelu", "HardSwish", "HardSigmoid", "LeakyRelu", "Elu", "Softplus", "Softsign", "Mish"} {
		b.Run(op, func(b *testing.B) {
			k, outs, err := trySetupKernel(newTestNode(op, 1, 1), 17, []*tensor.Tensor{x}, nil)
			if err != nil {
				b.Fatal(err)
			}
			y := tensor.New(outs[0].Shape...)
			ctx := &RunContext{Workers: 1}
			for b.Loop() {
				if err := k.Forward(ctx, []*tensor.Tensor{x}, []*tensor.Tensor{y}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(x.Len()), "ns/elem")
		})
	}
}

// TestGeluMatchesFloat64: Gelu (erf and tanh forms) through the float32
// Erf and Tanh kernels over [-8, 8], within 2e-6 relative of the float64
// formula (below -2 the kernel recomputes in float64, where 1 + erf
// cancels).
func TestGeluMatchesFloat64(t *testing.T) {
	var xs []float32
	for v := -8.0; v <= 8; v += 0.00037 {
		xs = append(xs, float32(v))
	}
	x := tensor.FromFloat32(xs, len(xs))
	for _, c := range []struct {
		attrs []*graph.Attribute
		f     func(float64) float64
	}{
		{nil, func(x float64) float64 { return x / 2 * (1 + math.Erf(x/math.Sqrt2)) }},
		{[]*graph.Attribute{stringAttr("approximate", "tanh")}, func(x float64) float64 {
			return x / 2 * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
		}},
	} {
		out, err := runKernel(newTestNode("Gelu", 1, 1, c.attrs...), 20, x)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, v := range xs {
			want := c.f(float64(v))
			if d := math.Abs(float64(out[0].F32[i]) - want); d > 2e-6*math.Abs(want)+1e-30 {
				if bad++; bad <= 3 {
					t.Errorf("Gelu%v(%v) = %v, want %v (relative %.2g)", c.attrs, v, out[0].F32[i], want, d/math.Abs(want))
				}
			}
		}
	}
}

// TestErfGeluGradMatchesFloat64: the backward passes of Erf and Gelu
// (both forms), through the float32 kernels in 256-float chunks, against
// the float64 derivative over [-8, 8] (a length that leaves a partial
// chunk): within 1e-5 relative plus 1e-6 absolute (Gelu's derivative
// crosses 0 near x = -0.75).
func TestErfGeluGradMatchesFloat64(t *testing.T) {
	var xs []float32
	for v := -8.0; v <= 8; v += 0.0007 {
		xs = append(xs, float32(v))
	}
	for _, c := range []struct {
		op    string
		attrs []*graph.Attribute
	}{{"Erf", nil}, {"Gelu", nil}, {"Gelu", []*graph.Attribute{stringAttr("approximate", "tanh")}}} {
		node := newTestNode(c.op, 1, 1, c.attrs...)
		got := backwardOnes(t, node, 20, tensor.FromFloat32(append([]float32(nil), xs...), len(xs)))[0]
		kern, _ := setupKernel(t, node, 20, []*tensor.Tensor{tensor.New(1)}, nil)
		ak := kern.(*activationKernel)
		bad := 0
		for i, v := range xs {
			want := ak.unaryDeriv(float64(v), math.Erf(float64(v)))
			if d := math.Abs(float64(got[i]) - want); d > 1e-5*math.Abs(want)+1e-6 {
				if bad++; bad <= 3 {
					t.Errorf("%s%v'(%v) = %v, want %v", c.op, c.attrs, v, got[i], want)
				}
			}
		}
	}
}

// BenchmarkActivationBackward: the backward pass of smooth activations
// over one [32 96 16 16] tensor, one worker, in ns per float.
func BenchmarkActivationBackward(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := randomTensor(rng, 32, 96, 16, 16)
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "HardSwish", "HardSigmoid", "LeakyRelu", "Elu", "Softplus", "Softsign", "Mish"} {
		b.Run(op, func(b *testing.B) {
			k, outs, err := trySetupKernel(newTestNode(op, 1, 1), 20, []*tensor.Tensor{x}, nil)
			if err != nil {
				b.Fatal(err)
			}
			y, g, dx := tensor.New(outs[0].Shape...), tensor.New(outs[0].Shape...), tensor.New(x.Shape...)
			ctx := &RunContext{Workers: 1}
			if err := k.Forward(ctx, []*tensor.Tensor{x}, []*tensor.Tensor{y}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := k.Backward(ctx, []*tensor.Tensor{x}, []*tensor.Tensor{y}, []*tensor.Tensor{g}, []*tensor.Tensor{dx}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(x.Len()), "ns/elem")
		})
	}
}

package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// activation identifies an elementwise activation function.
type activation int

const (
	actRelu activation = iota
	actLeakyRelu
	actClip
	actSigmoid
	actHardSigmoid
	actHardSwish
	// Elementwise math (ConvNeXt's and ViT's decomposed LayerNorm and GELU):
	// computed in float64 and rounded, except Erf, Exp and Tanh (the float32
	// kernels of package tensor).
	actSqrt
	actErf
	actExp
	actLog
	actTanh
	actNeg
	actAbs
	actReciprocal
	actFloor // gradient 0 (a step function)
	actCeil
	actSign // gradient 0
	actSin
	actCos
	// Smooth activations with parameters (alpha, beta): Elu (alpha), Selu
	// (alpha, gamma in beta), Celu (alpha), Gelu (beta 1: the tanh
	// approximation), and Softplus, Softsign, Mish; computed in float32
	// (gelu, smooth.go), with float64 formulas (mathFunc, unaryDeriv) as
	// the references the tests hold them to.
	actElu
	actSelu
	actCelu
	actGelu
	actSoftplus
	actSoftsign
	actMish
)

func init() {
	simple := func(a activation) KernelFactory {
		return func(n *graph.Node, opset int64) (Kernel, error) { return newActivation(n, opset, a) }
	}
	register("Relu", simple(actRelu))
	register("LeakyRelu", simple(actLeakyRelu))
	register("Clip", simple(actClip))
	register("Sigmoid", simple(actSigmoid))
	register("HardSigmoid", simple(actHardSigmoid))
	register("HardSwish", simple(actHardSwish))
	for name, a := range map[string]activation{"Sqrt": actSqrt, "Erf": actErf, "Exp": actExp, "Log": actLog,
		"Tanh": actTanh, "Neg": actNeg, "Abs": actAbs, "Reciprocal": actReciprocal, "Floor": actFloor, "Ceil": actCeil,
		"Sign": actSign, "Sin": actSin, "Cos": actCos,
		"Elu": actElu, "Selu": actSelu, "Celu": actCelu, "Gelu": actGelu, "Softplus": actSoftplus,
		"Softsign": actSoftsign, "Mish": actMish} {
		register(name, simple(a))
	}
}

// mathFunc is the float64 function of an elementwise math activation
// (Gelu's is the reference its float32 form falls back to below x = -2).
func (k *activationKernel) mathFunc() func(float64) float64 {
	if k.act == actGelu {
		if k.beta == 1 {
			return func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(geluTanhArg(x))) }
		}
		return func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
	}
	return unaryMath[k.act]
}

// gelu sets ys = Gelu(xs): 0.5·x·(1 + erf(x/√2)), or with beta 1 (the
// tanh approximation) 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), with
// the float32 Erf and Tanh kernels. Below x = -2, where 1 + erf (or 1 +
// tanh) cancels and the kernels' ulp of 1 would become a large relative
// error, the float64 formula recomputes the value.
func (k *activationKernel) gelu(xs, ys []float32) {
	approx := k.beta == 1
	for i, v := range xs {
		if approx {
			ys[i] = float32(geluTanhArg(float64(v)))
		} else {
			ys[i] = v * (1 / math.Sqrt2)
		}
	}
	if approx {
		tensor.Tanh(ys, ys)
	} else {
		tensor.Erf(ys, ys)
	}
	f := k.mathFunc()
	for i, v := range xs {
		if v < -2 {
			ys[i] = float32(f(float64(v)))
		} else {
			ys[i] = 0.5 * v * (1 + ys[i])
		}
	}
}

// erfGeluGrad adds g·f'(x) to d for Erf (2/√π·e^(-x²)) and Gelu (Φ(x) +
// x·φ(x), or the tanh form's derivative) with the float32 Exp, Erf and
// Tanh kernels, 256 floats at a time in stack buffers; Gelu below x = -2
// takes the float64 formula, as its forward pass does.
func (k *activationKernel) erfGeluGrad(xs, gs, ds []float32) {
	const (
		twoOverSqrtPi    = 2 / 1.7724538509055160273
		invSqrt2Pi       = 0.39894228040143267794
		sqrtTwoOverPi    = 0.79788456080286535588
		geluCubic        = 0.044715
		invSqrt2         = 1 / math.Sqrt2
		geluFloat64Below = -2
	)
	var a, b [256]float32
	for len(xs) > 0 {
		n := min(len(xs), len(a))
		x, g, d, ab, bb := xs[:n], gs[:n], ds[:n], a[:n], b[:n]
		switch {
		case k.act == actErf:
			for i, v := range x {
				ab[i] = -(v * v)
			}
			tensor.Exp(ab, ab)
			for i := range x {
				d[i] += g[i] * twoOverSqrtPi * ab[i]
			}
		case k.beta == 1: // Gelu, tanh form
			for i, v := range x {
				ab[i] = sqrtTwoOverPi * (v + geluCubic*v*v*v)
			}
			tensor.Tanh(ab, ab)
			for i, v := range x {
				if v < geluFloat64Below {
					d[i] += float32(float64(g[i]) * k.unaryDeriv(float64(v), 0))
					continue
				}
				t := ab[i]
				d[i] += g[i] * (0.5*(1+t) + 0.5*v*(1-t*t)*sqrtTwoOverPi*(1+3*geluCubic*v*v))
			}
		default: // Gelu, erf form
			for i, v := range x {
				ab[i] = v * invSqrt2
				bb[i] = -0.5 * (v * v)
			}
			tensor.Erf(ab, ab)
			tensor.Exp(bb, bb)
			for i, v := range x {
				if v < geluFloat64Below {
					d[i] += float32(float64(g[i]) * k.unaryDeriv(float64(v), 0))
					continue
				}
				d[i] += g[i] * (0.5*(1+ab[i]) + v*bb[i]*invSqrt2Pi)
			}
		}
		xs, gs, ds = xs[n:], gs[n:], ds[n:]
	}
}

// geluTanhArg is the argument of tanh in Gelu's tanh approximation.
func geluTanhArg(x float64) float64 { return math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x) }

// unaryMath is the float64 function of the parameterless math activations.
var unaryMath = map[activation]func(float64) float64{
	actSqrt: math.Sqrt, actErf: math.Erf, actExp: math.Exp, actLog: math.Log, actTanh: math.Tanh,
	actNeg: func(v float64) float64 { return -v }, actAbs: math.Abs,
	actReciprocal: func(v float64) float64 { return 1 / v },
	actFloor:      math.Floor, actCeil: math.Ceil,
	actSin: math.Sin, actCos: math.Cos,
	actSign: func(v float64) float64 {
		switch {
		case v > 0:
			return 1
		case v < 0:
			return -1
		}
		return v // ±0, or NaN
	},
}

// activationKernel runs one elementwise activation. NaN inputs give NaN
// outputs (Relu, Clip: NaN passes through; the comparisons are written so
// that it does) and NaN gradients where the derivative reads them.
//
// Derivatives at kinks follow PyTorch: Relu'(0) = 0; Clip passes the
// gradient for min <= x <= max; HardSigmoid passes it strictly inside its
// linear part; HardSwish'(±3) uses the middle piece (x/3 + 1/2).
type activationKernel struct {
	act         activation
	alpha, beta float32
	// Clip: bounds from attributes (opset < 11) or constant inputs; minIn
	// and maxIn are the input positions to read at run time otherwise (-1).
	lo, hi       float32
	minIn, maxIn int
	n            int
}

// activationParallelMin is the element count below which an activation
// runs on one goroutine (starting goroutines costs more than it saves).
const activationParallelMin = 1 << 15

func newActivation(n *graph.Node, opset int64, a activation) (Kernel, error) {
	k := &activationKernel{act: a, minIn: -1, maxIn: -1}
	switch a {
	case actLeakyRelu:
		k.alpha = n.AttrFloat("alpha", 0.01)
	case actHardSigmoid:
		k.alpha, k.beta = n.AttrFloat("alpha", 0.2), n.AttrFloat("beta", 0.5)
	case actElu, actCelu:
		k.alpha = n.AttrFloat("alpha", 1)
		if a == actCelu && k.alpha == 0 {
			return nil, errors.New("Celu's alpha must not be 0")
		}
	case actSelu:
		k.alpha, k.beta = n.AttrFloat("alpha", 1.67326319217681884765625), n.AttrFloat("gamma", 1.05070102214813232421875)
	case actGelu:
		switch ap := n.AttrString("approximate", "none"); ap {
		case "none":
		case "tanh":
			k.beta = 1
		default:
			return nil, fmt.Errorf("approximate %q is not one of none, tanh", ap)
		}
	case actClip:
		k.lo, k.hi = float32(math.Inf(-1)), float32(math.Inf(1))
		if opset < 11 {
			k.lo = n.AttrFloat("min", -math.MaxFloat32)
			k.hi = n.AttrFloat("max", math.MaxFloat32)
		}
	}
	return k, nil
}

func (k *activationKernel) Setup(in []Value) ([]Output, error) {
	if len(in) < 1 || !in[0].Present {
		return nil, errors.New("missing input X")
	}
	if in[0].DType != tensor.Float32 {
		return nil, fmt.Errorf("X is %s; the engine runs activations in float32 only", in[0].DType)
	}
	if k.act == actClip {
		if len(in) > 3 {
			return nil, fmt.Errorf("%d inputs, Clip takes at most 3 (input, min, max)", len(in))
		}
		for i := 1; i < len(in); i++ {
			if !in[i].Present {
				continue
			}
			if in[i].DType != tensor.Float32 || tensor.Numel(in[i].Shape) != 1 || len(in[i].Shape) > 1 {
				return nil, fmt.Errorf("Clip bound input %d is %s%v, want a float32 scalar", i, in[i].DType, in[i].Shape)
			}
			switch {
			case in[i].Const != nil && i == 1:
				k.lo = in[i].Const.F32[0]
			case in[i].Const != nil:
				k.hi = in[i].Const.F32[0]
			case i == 1:
				k.minIn = 1
			default:
				k.maxIn = 2
			}
		}
	} else if len(in) != 1 {
		return nil, fmt.Errorf("%d inputs, want 1", len(in))
	}
	k.n = tensor.Numel(in[0].Shape)
	return []Output{{DType: tensor.Float32, Shape: append([]int(nil), in[0].Shape...)}}, nil
}

func (k *activationKernel) bounds(in []*tensor.Tensor) (lo, hi float32) {
	lo, hi = k.lo, k.hi
	if k.minIn >= 0 {
		lo = in[k.minIn].F32[0]
	}
	if k.maxIn >= 0 {
		hi = in[k.maxIn].F32[0]
	}
	return lo, hi
}

func (k *activationKernel) workers(ctx *RunContext) int {
	if k.n < activationParallelMin {
		return 1
	}
	return ctx.Workers
}

func (k *activationKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	lo, hi := k.bounds(in)
	tensor.Parallel(k.workers(ctx), k.n, func(s, e int) {
		xs, ys := x[s:e], y[s:e]
		switch k.act {
		// The min and max builtins compile without branches (a branch per
		// element on random signs is several times slower) and return NaN
		// for a NaN operand.
		case actRelu:
			tensor.Clip(xs, 0, float32(math.Inf(1)), ys)
		case actLeakyRelu:
			for i, v := range xs {
				ys[i] = max(v, 0) + k.alpha*min(v, 0)
			}
		case actClip:
			tensor.Clip(xs, lo, hi, ys)
		case actSigmoid:
			tensor.Sigmoid(xs, ys)
		case actExp:
			tensor.Exp(xs, ys)
		case actTanh:
			tensor.Tanh(xs, ys)
		case actErf:
			tensor.Erf(xs, ys)
		case actGelu:
			k.gelu(xs, ys)
		case actElu, actSelu, actCelu, actSoftplus, actSoftsign, actMish:
			k.smoothForward(xs, ys)
		case actHardSigmoid:
			for i, v := range xs {
				ys[i] = clamp01(k.alpha*v + k.beta)
			}
		case actHardSwish:
			for i, v := range xs {
				ys[i] = v * clamp01(v/6+0.5)
			}
		default:
			f := k.mathFunc()
			for i, v := range xs {
				ys[i] = float32(f(float64(v)))
			}
		}
	})
	return nil
}

// unaryDeriv is the derivative of an elementwise math activation at x,
// where it gave y: Sqrt 1/(2y), Erf 2/√π·e^(-x²), Exp y, Log 1/x, Tanh
// 1-y², Neg -1, Abs sign(x) (0 at 0, as PyTorch), Reciprocal -y²; Gelu's
// in float64.
func (k *activationKernel) unaryDeriv(x, y float64) float64 {
	if k.act == actGelu {
		if k.beta == 1 {
			t := math.Tanh(geluTanhArg(x))
			return 0.5*(1+t) + 0.5*x*(1-t*t)*math.Sqrt(2/math.Pi)*(1+3*0.044715*x*x)
		}
		return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
	}
	return unaryDeriv(k.act, x, y)
}

// unaryDeriv is the derivative of a parameterless math activation.
func unaryDeriv(a activation, x, y float64) float64 {
	switch a {
	case actSqrt:
		return 0.5 / y
	case actErf:
		return 2 / math.Sqrt(math.Pi) * math.Exp(-x*x)
	case actExp:
		return y
	case actLog:
		return 1 / x
	case actTanh:
		return 1 - y*y
	case actNeg:
		return -1
	case actAbs:
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return x * 0 // 0, or NaN for a NaN input
	case actReciprocal:
		return -y * y
	case actFloor, actCeil, actSign:
		return x * 0 // 0, or NaN for a NaN or infinite input
	case actSin:
		return math.Cos(x)
	case actCos:
		return -math.Sin(x)
	}
	return math.NaN()
}

// clamp01 clamps v to [0, 1]; NaN stays NaN.
func clamp01(v float32) float32 { return min(max(v, 0), 1) }

// assignsGrad: Relu and Clip (ReLU6 in MobileNet-V2), the activations on
// every block's path, assign dX when it is fresh.
func (k *activationKernel) assignsGrad(i int) bool {
	return i == 0 && (k.act == actRelu || k.act == actClip)
}

func (k *activationKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	fresh := ctx.fresh(0)
	x, y, dy := in[0].F32, out[0].F32, gout[0].F32
	lo, hi := k.bounds(in)
	if gin[0] != nil {
		dx := gin[0].F32
		tensor.Parallel(k.workers(ctx), k.n, func(s, e int) {
			xs, gs, ds := x[s:e], dy[s:e], dx[s:e]
			// Relu, LeakyRelu and Clip select the gradient with bit masks
			// instead of branches: the sign of the data is random, and a
			// mispredicted branch per element costs several times more.
			switch k.act {
			case actRelu:
				// y > 0 exactly when its bits are non-zero (y = max(x, 0)
				// is +0 for x <= 0); NaN passes NaN through.
				tensor.ReluGrad(y[s:e], gs, ds, !fresh)
			case actLeakyRelu:
				for i, v := range xs {
					// x > 0 iff its bits are non-zero and its sign bit is 0.
					u := math.Float32bits(v)
					m := uint32(int32(u|-u)>>31) &^ uint32(int32(u)>>31)
					g := gs[i]
					ds[i] += math.Float32frombits(math.Float32bits(g)&m | math.Float32bits(k.alpha*g)&^m)
				}
			case actClip:
				// lo <= x <= hi iff x-lo and hi-x are >= +0 (adding +0
				// turns a -0 difference into +0).
				tensor.ClipGrad(xs, gs, lo, hi, ds, !fresh)
			case actSigmoid:
				ys := y[s:e]
				for i, v := range ys {
					ds[i] += gs[i] * v * (1 - v)
				}
			case actHardSigmoid:
				for i, v := range xs {
					if t := k.alpha*v + k.beta; t > 0 && t < 1 {
						ds[i] += k.alpha * gs[i]
					}
				}
			case actHardSwish:
				for i, v := range xs {
					switch {
					case v < -3:
					case v > 3:
						ds[i] += gs[i]
					default:
						ds[i] += gs[i] * (v/3 + 0.5)
					}
				}
			case actErf, actGelu:
				k.erfGeluGrad(xs, gs, ds)
			case actElu, actSelu, actCelu, actSoftplus, actSoftsign, actMish:
				k.smoothBackward(xs, gs, ds)
			case actTanh:
				ys := y[s:e]
				for i, v := range ys {
					ds[i] += gs[i] * (1 - v*v)
				}
			default:
				ys := y[s:e]
				for i, v := range xs {
					ds[i] += float32(float64(gs[i]) * k.unaryDeriv(float64(v), float64(ys[i])))
				}
			}
		})
	}
	if k.act != actClip {
		return nil
	}
	// Gradients of run-time Clip bounds: the sums of dy where the bound
	// was active, in element order.
	for i, pos := range []int{k.minIn, k.maxIn} {
		if pos < 0 || pos >= len(gin) || gin[pos] == nil {
			continue
		}
		var s float64
		for j, v := range x {
			if (i == 0 && v < lo) || (i == 1 && v > hi && !(v < lo)) {
				s += float64(dy[j])
			}
		}
		gin[pos].F32[0] += float32(s)
	}
	return nil
}

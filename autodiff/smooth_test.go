package autodiff

import (
	"fmt"
	"math"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// smoothRef is the float64 value and derivative of a smooth activation
// (the left piece at x = 0, as the kernels and PyTorch take).
func smoothRef(op string, alpha, gamma float64) (f, df func(float64) float64) {
	softplus := func(x float64) float64 {
		if x > 0 {
			return x + math.Log1p(math.Exp(-x))
		}
		return math.Log1p(math.Exp(x))
	}
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	switch op {
	case "Elu", "Selu":
		return func(x float64) float64 {
				if x > 0 {
					return gamma * x
				}
				return gamma * alpha * math.Expm1(x)
			}, func(x float64) float64 {
				if x > 0 {
					return gamma
				}
				return gamma * alpha * math.Exp(x)
			}
	case "Celu":
		return func(x float64) float64 { return math.Max(0, x) + math.Min(0, alpha*math.Expm1(x/alpha)) },
			func(x float64) float64 {
				if x > 0 {
					return 1
				}
				return math.Exp(x / alpha)
			}
	case "Softplus":
		return softplus, sigmoid
	case "Softsign":
		return func(x float64) float64 { return x / (1 + math.Abs(x)) },
			func(x float64) float64 { return 1 / ((1 + math.Abs(x)) * (1 + math.Abs(x))) }
	case "Mish":
		return func(x float64) float64 { return x * math.Tanh(softplus(x)) },
			func(x float64) float64 {
				t := math.Tanh(softplus(x))
				return t + x*(1-t*t)*sigmoid(x)
			}
	}
	panic(op)
}

// TestSmoothMatchesFloat64: the float32 forms of Elu, Selu, Celu,
// Softplus, Softsign and Mish (forward and backward) against the float64
// formulas, over [-30, 30] on a fine grid, tiny and huge magnitudes of
// both signs, ±0 and ±Inf: values within 4e-7 relative (≈ 3 ulp; the
// largest measured is 2.7e-7, Softplus), derivatives within 4e-7
// relative plus 2e-7 absolute (Mish's derivative crosses 0 near
// x = -1.19), plus 1e-37 absolute for results in the subnormal range.
// The test logs the largest relative errors. NaN in gives NaN out,
// forward and backward.
func TestSmoothMatchesFloat64(t *testing.T) {
	var xs []float32
	for v := -30.0; v <= 30; v += 0.00071 {
		xs = append(xs, float32(v))
	}
	for _, m := range []float64{1e-30, 1e-10, 1e-6, 1e-3, 0.4999, 0.5, 0.5001, 50, 87, 88, 100, 1e4, 1e30} {
		xs = append(xs, float32(m), float32(-m))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)))
	const selu, seluGamma = 1.67326319217681884765625, 1.05070102214813232421875
	for _, c := range []struct {
		op           string
		alpha, gamma float64
		attrs        []*graph.Attribute
	}{
		{"Elu", 1, 1, nil},
		{"Elu", 0.5, 1, []*graph.Attribute{floatAttr("alpha", 0.5)}},
		{"Selu", selu, seluGamma, nil},
		{"Celu", 1, 1, nil},
		{"Celu", 2, 1, []*graph.Attribute{floatAttr("alpha", 2)}},
		{"Celu", 0.25, 1, []*graph.Attribute{floatAttr("alpha", 0.25)}},
		{"Softplus", 0, 0, nil},
		{"Softsign", 0, 0, nil},
		{"Mish", 0, 0, nil},
	} {
		f, df := smoothRef(c.op, c.alpha, c.gamma)
		label := c.op
		if c.attrs != nil || c.op == "Selu" {
			label = fmt.Sprintf("%s(alpha %g)", c.op, c.alpha)
		}
		node := newTestNode(c.op, 1, 1, c.attrs...)
		out, err := runKernel(node, 18, tensor.FromFloat32(append([]float32(nil), xs...), len(xs)))
		if err != nil {
			t.Fatal(err)
		}
		grad := backwardOnes(t, node, 18, tensor.FromFloat32(append([]float32(nil), xs...), len(xs)))[0]
		bad := 0
		var worst [2]float64 // largest relative errors of values and derivatives at normal results
		check := func(what string, x float32, got float32, want, rel, abs float64) {
			if math.IsNaN(want) && math.IsNaN(float64(got)) || float64(got) == want {
				return
			}
			d := math.Abs(float64(got) - want)
			if math.Abs(want) > 1e-30 {
				w := &worst[0]
				if what != "value" {
					w = &worst[1]
				}
				*w = max(*w, d/math.Abs(want))
			}
			if !(d <= rel*math.Abs(want)+abs) {
				if bad++; bad <= 4 {
					t.Errorf("%s %s at %v = %v, want %v (difference %.3g, %.3g relative)", label, what, x, got, want, d, d/math.Abs(want))
				}
			}
		}
		for i, x := range xs {
			check("value", x, out[0].F32[i], f(float64(x)), 4e-7, 1e-37)
			if !math.IsInf(float64(x), 0) { // the float64 derivatives give NaN there (∞·0)
				check("derivative", x, grad[i], df(float64(x)), 4e-7, 2e-7)
			}
		}
		t.Logf("%s: largest relative error %.2g (values), %.2g (derivatives)", label, worst[0], worst[1])
		nan := float32(math.NaN())
		o, _ := runKernel(node, 18, tensor.FromFloat32([]float32{nan}, 1))
		g := backwardOnes(t, node, 18, tensor.FromFloat32([]float32{nan}, 1))[0]
		if !math.IsNaN(float64(o[0].F32[0])) || !math.IsNaN(float64(g[0])) {
			t.Errorf("%s at NaN = %v, derivative %v, want NaN and NaN", label, o[0].F32[0], g[0])
		}
	}
}

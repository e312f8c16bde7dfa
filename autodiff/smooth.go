package autodiff

import (
	"math"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// The smooth activations Elu, Selu, Celu, Softplus, Softsign and Mish in
// float32, forward and backward, a block of smoothBlock floats at a time
// in stack buffers, with the vectorized float32 Exp and Sigmoid of package
// tensor: the float64 math they replace (math.Exp, math.Log1p,
// math.Tanh per element, through a closure) costs tens to hundreds of
// nanoseconds a float. Every form avoids cancellation, so each result is
// within a few float32 ulp of the float64 formula everywhere
// (TestSmoothMatchesFloat64):
//   - e^v − 1 near 0 (Elu, Selu, Celu) comes from its Taylor series;
//   - Softplus is max(x, 0) + log1p(e^−|x|), and log1p of u in [0, 1]
//     comes from the series of 2·atanh(u/(2+u));
//   - Mish's tanh(softplus(x)) and 1 − tanh² are ratios of u = e^−|x|
//     whose numerators and denominators are sums of positive terms.

// smoothBlock is the length of the stack buffers the smooth activations
// work through.
const smoothBlock = 256

// expm1PolyBelow is the |v| below which expm1 takes the Taylor series:
// from there down, e^v − 1 loses more of float32's 24 bits to
// cancellation the closer v is to 0 (all of them below 2^−24; about 2 at
// |v| = 0.5), while the series' first omitted term, v⁹/9!, stays below
// 2e-8 relative.
const expm1PolyBelow = 0.5

// expm1Series is e^v − 1 for |v| < expm1PolyBelow: v·q(v), q the Taylor
// series of (e^v − 1)/v up to v⁷/8!, in Estrin's form (a chain of 4
// dependent steps instead of Horner's 8, so that the loop over elements
// is not bound by their latency).
func expm1Series(v float32) float32 {
	v2 := v * v
	b0 := (1 + v*(1.0/2)) + v2*(1.0/6+v*(1.0/24))
	b1 := (1.0/120 + v*(1.0/720)) + v2*(1.0/5040+v*(1.0/40320))
	return v * (b0 + v2*v2*b1)
}

// expm1 replaces each v of x by e^v − 1 (len(x) <= smoothBlock).
func expm1(x []float32) {
	var e [smoothBlock]float32
	eb := e[:len(x)]
	tensor.Exp(x, eb)
	below := math.Float32bits(expm1PolyBelow)
	for i, v := range x {
		// |v| < expm1PolyBelow compared as bits, without a branch; NaN
		// (bits above +Inf's) takes e^v − 1, which is NaN.
		x[i] = choose(math.Float32bits(v)&^(1<<31) < below, expm1Series(v), eb[i]-1)
	}
}

// choose is a if c, else b, without a branch: the elementwise loops here
// select by the sign or size of random data, where a mispredicted branch
// costs more than computing both sides.
func choose(c bool, a, b float32) float32 {
	var m uint32
	if c {
		m = ^uint32(0)
	}
	return math.Float32frombits(math.Float32bits(a)&m | math.Float32bits(b)&^m)
}

// log1p01 is log(1 + u) for u in [0, 1]: 2·atanh(s) with s = u/(2+u) in
// [0, 1/3], whose series in s² ≤ 1/9 is cut after s¹⁵/15 (next term
// below 2e-9 relative).
func log1p01(u float32) float32 {
	s := u / (2 + u)
	s2 := s * s
	s4 := s2 * s2
	// Estrin's form, as expm1Series.
	b0 := (1 + s2*(1.0/3)) + s4*(1.0/5+s2*(1.0/7))
	b1 := (1.0/9 + s2*(1.0/11)) + s4*(1.0/13+s2*(1.0/15))
	return 2 * s * (b0 + s4*s4*b1)
}

// expNegAbs sets u[i] = e^−|x[i]| (len(x) <= smoothBlock).
func expNegAbs(x, u []float32) {
	for i, v := range x {
		u[i] = -abs32(v)
	}
	tensor.Exp(u, u)
}

// abs32 is |v|: the sign bit cleared (NaN stays NaN).
func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// eluParams gives the pieces of Elu, Selu and Celu: for x > 0 the value
// pos·x and derivative pos; below, the value neg·(e^(x/div) − 1) and the
// derivative dneg·e^(x/div). Celu is max(0, x) + min(0, α·(e^(x/α) − 1)),
// which for α > 0 is the same two pieces.
func (k *activationKernel) eluParams() (pos, neg, dneg, div float32) {
	switch k.act {
	case actSelu:
		return k.beta, k.beta * k.alpha, k.beta * k.alpha, 1
	case actCelu:
		return 1, k.alpha, 1, k.alpha
	}
	return 1, k.alpha, k.alpha, 1
}

// smoothForward sets ys to the activation of xs for Elu, Selu, Celu,
// Softplus, Softsign and Mish.
func (k *activationKernel) smoothForward(xs, ys []float32) {
	var a [smoothBlock]float32
	pos, neg, _, div := k.eluParams()
	for len(xs) > 0 {
		n := min(len(xs), smoothBlock)
		x, y, ab := xs[:n], ys[:n], a[:n]
		switch k.act {
		case actElu, actSelu:
			copy(ab, x)
			expm1(ab)
			for i, v := range x {
				y[i] = choose(v > 0, pos*v, neg*ab[i])
			}
		case actCelu:
			for i, v := range x {
				ab[i] = v / div
			}
			expm1(ab)
			for i, v := range x {
				y[i] = max(0, v) + min(0, neg*ab[i])
			}
		case actSoftplus:
			expNegAbs(x, ab)
			for i, v := range x {
				y[i] = max(v, 0) + log1p01(ab[i])
			}
		case actSoftsign:
			for i, v := range x {
				y[i] = v / (1 + abs32(v))
			}
		case actMish:
			expNegAbs(x, ab)
			for i, v := range x {
				t, _ := mishTanh(v, ab[i])
				y[i] = v * t
			}
		}
		xs, ys = xs[n:], ys[n:]
	}
}

// mishTanh is tanh(softplus(x)) and 1 − tanh(softplus(x)) from x and
// u = e^−|x|: with e = e^x, tanh(log(1+e)) = e(e+2)/(e(e+2)+2), which for
// x >= 0 is (1+2u)/(1+2u+2u²) (1 − it: 2u²/(1+2u+2u²)) and below n/(n+2)
// (1 − it: 2/(n+2)) with n = u(u+2); the sides chosen without a branch.
func mishTanh(x, u float32) (t, omt float32) {
	pos := x >= 0 // false for NaN, whose u is NaN
	u2 := u * u
	n := u2 + 2*u
	d := choose(pos, 1+2*u+2*u2, n+2)
	return choose(pos, 1+2*u, n) / d, choose(pos, 2*u2, 2) / d
}

// smoothBackward adds gs times the derivative at xs to ds for Elu, Selu,
// Celu, Softplus, Softsign and Mish (at x = 0 Elu, Selu and Celu take
// the left piece, as PyTorch does).
func (k *activationKernel) smoothBackward(xs, gs, ds []float32) {
	var a [smoothBlock]float32
	pos, _, dneg, div := k.eluParams()
	for len(xs) > 0 {
		n := min(len(xs), smoothBlock)
		x, g, d, ab := xs[:n], gs[:n], ds[:n], a[:n]
		switch k.act {
		case actElu, actSelu, actCelu:
			for i, v := range x {
				ab[i] = v / div
			}
			tensor.Exp(ab, ab)
			for i, v := range x {
				d[i] += g[i] * choose(v > 0, pos, dneg*ab[i])
			}
		case actSoftplus:
			tensor.Sigmoid(x, ab)
			for i := range x {
				d[i] += g[i] * ab[i]
			}
		case actSoftsign:
			for i, v := range x {
				s := 1 + abs32(v)
				d[i] += g[i] / (s * s)
			}
		case actMish:
			expNegAbs(x, ab)
			for i, v := range x {
				u := ab[i]
				t, omt := mishTanh(v, u)
				sig := choose(v >= 0, 1, u) / (1 + u) // sigmoid(x)
				d[i] += g[i] * (t + v*omt*(1+t)*sig)
			}
		}
		xs, gs, ds = xs[n:], gs[n:], ds[n:]
	}
}

package tensor

import "math"

// Streaming kernels of the engine's elementwise passes (BatchNormalization
// statistics, normalization and gradient). Each runs AVX2/FMA assembly
// where the CPU has it and the Go loop beside it elsewhere (or with
// -tags purego); both orders of summation depend only on the length, so
// equal calls give equal results.

// SumF32 is Σ x in float32 (for short runs; callers total runs in float64).
func SumF32(x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	if directAsm {
		return sumBlock(len(x), &x[0])
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// SumSqDevF32 is Σ (x - mean)² in float32.
func SumSqDevF32(x []float32, mean float32) float32 {
	if len(x) == 0 {
		return 0
	}
	if directAsm {
		return sumSqDevBlock(len(x), &x[0], mean)
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := x[i]-mean, x[i+1]-mean, x[i+2]-mean, x[i+3]-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := x[i] - mean
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// GradSumsF32 is Σ g and Σ g·(x - mean) in float32; x is at least as long
// as g.
func GradSumsF32(g, x []float32, mean float32) (sg, sgx float32) {
	if len(g) == 0 {
		return 0, 0
	}
	x = x[:len(g)]
	if directAsm {
		return gradSumsBlock(len(g), &g[0], &x[0], mean)
	}
	var a0, a1, b0, b1 float32
	i := 0
	for ; i+2 <= len(g); i += 2 {
		a0 += g[i]
		a1 += g[i+1]
		b0 += g[i] * (x[i] - mean)
		b1 += g[i+1] * (x[i+1] - mean)
	}
	for ; i < len(g); i++ {
		a0 += g[i]
		b0 += g[i] * (x[i] - mean)
	}
	return a0 + a1, b0 + b1
}

// Affine sets y = a·x + b elementwise; y is at least as long as x.
func Affine(x []float32, a, b float32, y []float32) {
	if len(x) == 0 {
		return
	}
	y = y[:len(x)]
	if directAsm {
		affineRow(len(x), &x[0], a, b, &y[0])
		return
	}
	for i, v := range x {
		y[i] = v*a + b
	}
}

// Affine2 sets d = p·g + q·(x - s) + r elementwise, or adds it to d with
// add; x and d are at least as long as g.
func Affine2(g, x []float32, p, q, r, s float32, d []float32, add bool) {
	if len(g) == 0 {
		return
	}
	x, d = x[:len(g)], d[:len(g)]
	if directAsm {
		if add {
			affine2Add(len(g), &g[0], &x[0], p, q, r, s, &d[0])
		} else {
			affine2Set(len(g), &g[0], &x[0], p, q, r, s, &d[0])
		}
		return
	}
	if add {
		for i, gv := range g {
			d[i] += p*gv + q*(x[i]-s) + r
		}
		return
	}
	for i, gv := range g {
		d[i] = p*gv + q*(x[i]-s) + r
	}
}

// NormParamSums adds float64(g[i])·(float64(x[i]) − mean)·inv to s1[i] and
// float64(g[i]) to s2[i] for every i < len(g): one row's share of a
// normalization's scale and bias gradients, summed in float64. The vector
// kernel computes in this order too: the same bits either way.
func NormParamSums(g, x []float32, mean, inv float64, s1, s2 []float64) {
	n := len(g)
	x, s1, s2 = x[:n], s1[:n], s2[:n]
	i := 0
	if directAsm && n >= 4 {
		i = n &^ 3
		normParamRow(i, &x[0], &g[0], mean, inv, &s1[0], &s2[0])
	}
	for ; i < n; i++ {
		s1[i] += float64(g[i]) * (float64(x[i]) - mean) * inv
		s2[i] += float64(g[i])
	}
}

// Clip sets y = min(max(x, lo), hi) elementwise with Go's min and max
// semantics: a NaN in x comes through, and max(-0, +0) is +0. y is at
// least as long as x. Relu is Clip(x, 0, +Inf, y).
func Clip(x []float32, lo, hi float32, y []float32) {
	if len(x) == 0 {
		return
	}
	y = y[:len(x)]
	// The vector min/max return their second operand (x) for equal zeros;
	// adding +0 after restores Go's +0 where lo is +0. A NaN bound or a hi
	// of -0 would need more care than it is worth: Go loop.
	if directAsm && lo == lo && hi == hi && math.Float32bits(hi) != 1<<31 {
		clipRow(len(x), &x[0], lo, hi, math.Float32bits(lo) == 0, &y[0])
		return
	}
	clipGo(x, lo, hi, y)
}

func clipGo(x []float32, lo, hi float32, y []float32) {
	for i, v := range x {
		y[i] = min(max(v, lo), hi)
	}
}

// ReluGrad sets d = g where y's bits are not all zero (y = max(x, 0) is +0
// exactly where x <= 0; a NaN y passes g through) and 0 elsewhere, or adds
// that to d with add. y and d are at least as long as g.
func ReluGrad(y, g []float32, d []float32, add bool) {
	if len(g) == 0 {
		return
	}
	y, d = y[:len(g)], d[:len(g)]
	if directAsm {
		if add {
			reluGradAdd(len(g), &y[0], &g[0], &d[0])
		} else {
			reluGradSet(len(g), &y[0], &g[0], &d[0])
		}
		return
	}
	reluGradGo(y, g, d, add)
}

func reluGradGo(y, g []float32, d []float32, add bool) {
	// Bit masks instead of branches: the sign of the data is random, and
	// a mispredicted branch per element costs several times more.
	for i, v := range y {
		u := math.Float32bits(v)
		m := uint32(int32(u|-u) >> 31)
		gv := math.Float32frombits(math.Float32bits(g[i]) & m)
		if add {
			d[i] += gv
		} else {
			d[i] = gv
		}
	}
}

// ClipGrad sets d = g where lo <= x <= hi and 0 elsewhere (decided on the
// sign bits of (x-lo)+0 and (hi-x)+0, so a NaN x or bound gives what the
// bits say), or adds that to d with add. x and d are at least as long as g.
func ClipGrad(x, g []float32, lo, hi float32, d []float32, add bool) {
	if len(g) == 0 {
		return
	}
	x, d = x[:len(g)], d[:len(g)]
	if directAsm && lo == lo && hi == hi {
		if add {
			clipGradAdd(len(g), &x[0], &g[0], lo, hi, &d[0])
		} else {
			clipGradSet(len(g), &x[0], &g[0], lo, hi, &d[0])
		}
		return
	}
	clipGradGo(x, g, lo, hi, d, add)
}

func clipGradGo(x, g []float32, lo, hi float32, d []float32, add bool) {
	for i, v := range x {
		m := ^uint32(int32(math.Float32bits((v-lo)+0)|math.Float32bits((hi-v)+0)) >> 31)
		gv := math.Float32frombits(math.Float32bits(g[i]) & m)
		if add {
			d[i] += gv
		} else {
			d[i] = gv
		}
	}
}

// The Relu-fused variants below let BatchNormalization absorb the Relu
// that follows it: the forward writes the Relu output directly, and the
// backward reads the Relu output z to mask the incoming gradient instead
// of materializing ReluGrad's result. Each gives the same bits as the
// unfused sequence it replaces.

// reluMasked is g where z's bits are not all zero, else +0 (ReluGrad's
// selection).
func reluMasked(z, g float32) float32 {
	u := math.Float32bits(z)
	return math.Float32frombits(math.Float32bits(g) & uint32(int32(u|-u)>>31))
}

// AffineRelu sets y = max(a·x + b, +0) elementwise (a NaN passes): the
// values of Affine followed by Clip(y, 0, +Inf, y). y is at least as long
// as x.
func AffineRelu(x []float32, a, b float32, y []float32) {
	if len(x) == 0 {
		return
	}
	y = y[:len(x)]
	if directAsm {
		affineReluRow(len(x), &x[0], a, b, &y[0])
		return
	}
	for i, v := range x {
		y[i] = max(v*a+b, 0)
	}
}

// GradSumsReluF32 is GradSumsF32 of g masked by the Relu output z (g where
// z's bits are not all zero, else 0, as ReluGrad selects it). z and x are
// at least as long as g.
func GradSumsReluF32(g, z, x []float32, mean float32) (sg, sgx float32) {
	if len(g) == 0 {
		return 0, 0
	}
	z, x = z[:len(g)], x[:len(g)]
	if directAsm {
		return gradSumsReluBlock(len(g), &g[0], &z[0], &x[0], mean)
	}
	var a0, a1, b0, b1 float32
	i := 0
	for ; i+2 <= len(g); i += 2 {
		g0, g1 := reluMasked(z[i], g[i]), reluMasked(z[i+1], g[i+1])
		a0 += g0
		a1 += g1
		b0 += g0 * (x[i] - mean)
		b1 += g1 * (x[i+1] - mean)
	}
	for ; i < len(g); i++ {
		g0 := reluMasked(z[i], g[i])
		a0 += g0
		b0 += g0 * (x[i] - mean)
	}
	return a0 + a1, b0 + b1
}

// Affine2Relu is Affine2 of g masked by the Relu output z (as in
// GradSumsReluF32): d = p·gm + q·(x - s) + r, or added to d with add. z,
// x and d are at least as long as g.
func Affine2Relu(g, z, x []float32, p, q, r, s float32, d []float32, add bool) {
	if len(g) == 0 {
		return
	}
	z, x, d = z[:len(g)], x[:len(g)], d[:len(g)]
	if directAsm {
		if add {
			affine2ReluAdd(len(g), &g[0], &z[0], &x[0], p, q, r, s, &d[0])
		} else {
			affine2ReluSet(len(g), &g[0], &z[0], &x[0], p, q, r, s, &d[0])
		}
		return
	}
	for i, gv := range g {
		v := p*reluMasked(z[i], gv) + q*(x[i]-s) + r
		if add {
			d[i] += v
		} else {
			d[i] = v
		}
	}
}

package tensor

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

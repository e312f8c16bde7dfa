package tensor

import "fmt"

// Planes variants of the streaming kernels: the same operation over np
// consecutive planes of n floats each (len(x) = np·n), with per-plane
// parameters from slices of length np and per-plane float32 sums added
// into float64 slices. BatchNormalization runs its passes channel block
// by channel block, one sample at a time: a block of one sample is such a
// run of planes, and for 4×4 or 8×8 planes a call per plane cost more
// than its work. Each plane gives exactly the bits of the one-plane
// function (the assembly runs the same loop per plane; the Go fallback
// calls the one-plane function), so callers may use either.

// checkPlanes panics unless every data slice holds np planes of n
// floats and every per-plane slice np values.
func checkPlanes(name string, n, np int, data, perPlane []int) {
	if n < 0 || np < 0 {
		panic(fmt.Sprintf("tensor: %s: %d planes of %d", name, np, n))
	}
	for _, l := range data {
		if l < np*n {
			panic(fmt.Sprintf("tensor: %s: %d planes of %d floats, a slice has %d elements", name, np, n, l))
		}
	}
	for _, l := range perPlane {
		if l < np {
			panic(fmt.Sprintf("tensor: %s: %d planes, a per-plane slice has %d values", name, np, l))
		}
	}
}

// SumPlanes adds to out[i] float64(SumF32(plane i of x)) for the np =
// len(out) planes of n floats of x.
func SumPlanes(x []float32, n int, out []float64) {
	np := len(out)
	checkPlanes("SumPlanes", n, np, []int{len(x)}, nil)
	if np == 0 || n == 0 {
		return
	}
	if directAsm {
		sumPlanes(np, n, &x[0], &out[0])
		return
	}
	for i := range out {
		out[i] += float64(SumF32(x[i*n : (i+1)*n]))
	}
}

// SumSqDevPlanes adds to out[i] float64(SumSqDevF32(plane i, mean[i])).
func SumSqDevPlanes(x []float32, n int, mean []float32, out []float64) {
	np := len(out)
	checkPlanes("SumSqDevPlanes", n, np, []int{len(x)}, []int{len(mean)})
	if np == 0 || n == 0 {
		return
	}
	if directAsm {
		sumSqDevPlanes(np, n, &x[0], &mean[0], &out[0])
		return
	}
	for i := range out {
		out[i] += float64(SumSqDevF32(x[i*n:(i+1)*n], mean[i]))
	}
}

// GradSumsPlanes adds GradSumsF32(plane i of g, plane i of x, mean[i])
// to sg[i] and sgx[i] as float64; with z (not nil) GradSumsReluF32 of g
// masked by z instead.
func GradSumsPlanes(g, z, x []float32, n int, mean []float32, sg, sgx []float64) {
	np := len(sg)
	lz := len(g)
	if z != nil {
		lz = len(z)
	}
	checkPlanes("GradSumsPlanes", n, np, []int{len(g), len(x), lz}, []int{len(mean), len(sgx)})
	if np == 0 || n == 0 {
		return
	}
	if directAsm {
		if z != nil {
			gradSumsReluPlanes(np, n, &g[0], &z[0], &x[0], &mean[0], &sg[0], &sgx[0])
		} else {
			gradSumsPlanes(np, n, &g[0], &x[0], &mean[0], &sg[0], &sgx[0])
		}
		return
	}
	for i := range sg {
		var a, b float32
		if z != nil {
			a, b = GradSumsReluF32(g[i*n:(i+1)*n], z[i*n:(i+1)*n], x[i*n:(i+1)*n], mean[i])
		} else {
			a, b = GradSumsF32(g[i*n:(i+1)*n], x[i*n:(i+1)*n], mean[i])
		}
		sg[i] += float64(a)
		sgx[i] += float64(b)
	}
}

// AffinePlanes sets plane i of y to a[i]·x + b[i] (Affine), or with relu
// to max(a[i]·x + b[i], +0) (AffineRelu), for the np = len(a) planes.
func AffinePlanes(x []float32, n int, a, b []float32, y []float32, relu bool) {
	np := len(a)
	checkPlanes("AffinePlanes", n, np, []int{len(x), len(y)}, []int{len(b)})
	if np == 0 || n == 0 {
		return
	}
	if directAsm {
		if relu {
			affineReluPlanes(np, n, &x[0], &a[0], &b[0], &y[0])
		} else {
			affinePlanes(np, n, &x[0], &a[0], &b[0], &y[0])
		}
		return
	}
	for i := range a {
		if relu {
			AffineRelu(x[i*n:(i+1)*n], a[i], b[i], y[i*n:(i+1)*n])
		} else {
			Affine(x[i*n:(i+1)*n], a[i], b[i], y[i*n:(i+1)*n])
		}
	}
}

// Affine2Planes is Affine2 (or with z not nil Affine2Relu) on each of the
// np = len(p) planes with p[i], q[i], r[i], s[i].
func Affine2Planes(g, z, x []float32, n int, p, q, r, s []float32, d []float32, add bool) {
	np := len(p)
	lz := len(g)
	if z != nil {
		lz = len(z)
	}
	checkPlanes("Affine2Planes", n, np, []int{len(g), len(x), len(d), lz}, []int{len(q), len(r), len(s)})
	if np == 0 || n == 0 {
		return
	}
	if directAsm {
		switch {
		case z != nil && add:
			affine2ReluAddPlanes(np, n, &g[0], &z[0], &x[0], &p[0], &q[0], &r[0], &s[0], &d[0])
		case z != nil:
			affine2ReluSetPlanes(np, n, &g[0], &z[0], &x[0], &p[0], &q[0], &r[0], &s[0], &d[0])
		case add:
			affine2AddPlanes(np, n, &g[0], &x[0], &p[0], &q[0], &r[0], &s[0], &d[0])
		default:
			affine2SetPlanes(np, n, &g[0], &x[0], &p[0], &q[0], &r[0], &s[0], &d[0])
		}
		return
	}
	for i := range p {
		gi, xi, di := g[i*n:(i+1)*n], x[i*n:(i+1)*n], d[i*n:(i+1)*n]
		if z != nil {
			Affine2Relu(gi, z[i*n:(i+1)*n], xi, p[i], q[i], r[i], s[i], di, add)
		} else {
			Affine2(gi, xi, p[i], q[i], r[i], s[i], di, add)
		}
	}
}

// maxReluPlane bounds the planes of the recomputing Relu variants (their
// Go loops rebuild a plane of z on the stack).
const maxReluPlane = 1024

// GradSumsReluXPlanes is GradSumsPlanes with the Relu output z not read
// but recomputed from x as AffinePlanes(x, n, a, b, z, true) computes it
// (a, b: the forward pass's per-plane coefficients): the same bits as
// GradSumsPlanes(g, z, x, ...) with that z, reading one array fewer. n is
// at most 1024.
func GradSumsReluXPlanes(g, x []float32, n int, a, b, mean []float32, sg, sgx []float64) {
	np := len(sg)
	checkPlanes("GradSumsReluXPlanes", n, np, []int{len(g), len(x)}, []int{len(a), len(b), len(mean), len(sgx)})
	if n > maxReluPlane {
		panic(fmt.Sprintf("tensor: GradSumsReluXPlanes: planes of %d floats, at most %d", n, maxReluPlane))
	}
	if np == 0 || n == 0 {
		return
	}
	if directAsm {
		gradSumsReluXPlanes(np, n, &g[0], &x[0], &a[0], &b[0], &mean[0], &sg[0], &sgx[0])
		return
	}
	var z [maxReluPlane]float32
	for i := range sg {
		xi := x[i*n : (i+1)*n]
		AffineRelu(xi, a[i], b[i], z[:n])
		u, v := GradSumsReluF32(g[i*n:(i+1)*n], z[:n], xi, mean[i])
		sg[i] += float64(u)
		sgx[i] += float64(v)
	}
}

// Affine2ReluXPlanes is Affine2Planes with z recomputed from x as in
// GradSumsReluXPlanes: the same bits as Affine2Planes(g, z, x, ...) with
// that z. n is at most 1024.
func Affine2ReluXPlanes(g, x []float32, n int, a, b, p, q, r, s []float32, d []float32, add bool) {
	np := len(p)
	checkPlanes("Affine2ReluXPlanes", n, np, []int{len(g), len(x), len(d)}, []int{len(a), len(b), len(q), len(r), len(s)})
	if n > maxReluPlane {
		panic(fmt.Sprintf("tensor: Affine2ReluXPlanes: planes of %d floats, at most %d", n, maxReluPlane))
	}
	if np == 0 || n == 0 {
		return
	}
	if directAsm {
		if add {
			affine2ReluXAddPlanes(np, n, &g[0], &x[0], &a[0], &b[0], &p[0], &q[0], &r[0], &s[0], &d[0])
		} else {
			affine2ReluXSetPlanes(np, n, &g[0], &x[0], &a[0], &b[0], &p[0], &q[0], &r[0], &s[0], &d[0])
		}
		return
	}
	var z [maxReluPlane]float32
	for i := range p {
		xi := x[i*n : (i+1)*n]
		AffineRelu(xi, a[i], b[i], z[:n])
		Affine2Relu(g[i*n:(i+1)*n], z[:n], xi, p[i], q[i], r[i], s[i], d[i*n:(i+1)*n], add)
	}
}

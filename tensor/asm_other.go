//go:build !amd64 || purego

package tensor

// directAsm is false: this build has no direct-convolution kernels, and
// NewDirectConv always reports false (convolutions take the im2col path).
const directAsm = false

func dconvFwd6x16(k int, offs *int32, x, x2 *float32, w *float32, y *float32, ldy int, add bool) {
	panic("tensor: no direct-convolution kernels in this build")
}

func dconvWgtRows(n int, xb *int32, yb *int32, offs *int32, k int, x *float32, half int, dy *float32, ldy int, dw *float32, ldw int, rows int, out *float32) {
	panic("tensor: no direct-convolution kernels in this build")
}

func axpyRows(rows, n int, a float32, x *float32, ldx int, y *float32, ldy int) {
	panic("tensor: no assembly row kernels in this build")
}

func dotRows(rows, n int, x *float32, ldx int, y *float32, ldy int) float32 {
	panic("tensor: no assembly row kernels in this build")
}

func sumBlock(n int, x *float32) float32 { panic("tensor: no assembly kernels in this build") }

func sumSqDevBlock(n int, x *float32, mean float32) float32 {
	panic("tensor: no assembly kernels in this build")
}

func gradSumsBlock(n int, gv, x *float32, mean float32) (sg, sgx float32) {
	panic("tensor: no assembly kernels in this build")
}

func normParamRow(n int, x, gv *float32, mean, inv float64, s1, s2 *float64) {
	panic("tensor: no assembly kernels in this build")
}

func affineRow(n int, x *float32, a, b float32, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2Set(n int, gv, x *float32, p, q, r, s float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2Add(n int, gv, x *float32, p, q, r, s float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func clipRow(n int, x *float32, lo, hi float32, zero bool, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

func reluGradSet(n int, y, gv *float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func reluGradAdd(n int, y, gv *float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func clipGradSet(n int, x, gv *float32, lo, hi float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func clipGradAdd(n int, x, gv *float32, lo, hi float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func maxTapsRow(n, ntap int, offs *int32, src *float32, base int, dst *float32, am *int32) {
	panic("tensor: no assembly kernels in this build")
}

func dw3x3Rows(rows, n int, xp *float32, ldx int, w *float32, y *float32, ldy int, add bool) {
	panic("tensor: no assembly kernels in this build")
}

func dw3x3Grad(rows, n int, xp *float32, ldx int, dy *float32, ldy int, out *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affineReluRow(n int, x *float32, a, b float32, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

func gradSumsReluBlock(n int, gv, z, x *float32, mean float32) (sg, sgx float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2ReluSet(n int, gv, z, x *float32, p, q, r, s float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2ReluAdd(n int, gv, z, x *float32, p, q, r, s float32, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func gatherRow(n int, idx *int32, src *float32, dst *float32) {
	panic("tensor: no assembly kernels in this build")
}

func sumPlanes(np, n int, x *float32, out *float64) {
	panic("tensor: no assembly kernels in this build")
}

func sumSqDevPlanes(np, n int, x, mean *float32, out *float64) {
	panic("tensor: no assembly kernels in this build")
}

func gradSumsPlanes(np, n int, gv, x, mean *float32, sg, sgx *float64) {
	panic("tensor: no assembly kernels in this build")
}

func gradSumsReluPlanes(np, n int, gv, z, x, mean *float32, sg, sgx *float64) {
	panic("tensor: no assembly kernels in this build")
}

func affinePlanes(np, n int, x, a, b, y *float32) { panic("tensor: no assembly kernels in this build") }

func affineReluPlanes(np, n int, x, a, b, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2SetPlanes(np, n int, gv, x, p, q, r, s, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2AddPlanes(np, n int, gv, x, p, q, r, s, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2ReluSetPlanes(np, n int, gv, z, x, p, q, r, s, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2ReluAddPlanes(np, n int, gv, z, x, p, q, r, s, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func dw4Planes(np int, x, w, y *float32, add bool) {
	panic("tensor: no assembly kernels in this build")
}

func dw4GradPlanes(np int, x, dy, sums *float32) { panic("tensor: no assembly kernels in this build") }

func dw8Planes(np int, x, w, y *float32, add bool) {
	panic("tensor: no assembly kernels in this build")
}

func dw8GradPlanes(np int, x, dy, sums *float32) { panic("tensor: no assembly kernels in this build") }

func im2col4(c int, x, col *float32, ld int) { panic("tensor: no assembly kernels in this build") }

func im2col8(c int, x, col *float32, ld int) { panic("tensor: no assembly kernels in this build") }

func copyRows(rows, n int, x *float32, ldx int, y *float32, ldy int) {
	panic("tensor: no assembly kernels in this build")
}

func splitPairs(rows, n int, x *float32, ldx int, even, odd *float32, ldd int) {
	panic("tensor: no assembly kernels in this build")
}

func mergePairs(rows, n int, even, odd *float32, lds int, y *float32, ldy int, add bool) {
	panic("tensor: no assembly kernels in this build")
}

func gradSumsReluXPlanes(np, n int, gv, x, a, b, mean *float32, sg, sgx *float64) {
	panic("tensor: no assembly kernels in this build")
}

func affine2ReluXSetPlanes(np, n int, gv, x, a, b, p, q, r, s, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func affine2ReluXAddPlanes(np, n int, gv, x, a, b, p, q, r, s, d *float32) {
	panic("tensor: no assembly kernels in this build")
}

func maxH3s1(rows, nb int, src *float32, hv *float32, hi *int32) {
	panic("tensor: no assembly pooling kernels in this build")
}

func maxH3s2(rows, nb int, src *float32, hv *float32, hi *int32) {
	panic("tensor: no assembly pooling kernels in this build")
}

func maxV3(oh, nb, s, h, w int, hv *float32, hi *int32, dst *float32, am *int32) {
	panic("tensor: no assembly pooling kernels in this build")
}

func expRow(n int, x, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

func sigmoidRow(n int, x, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

func tanhRow(n int, x, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

func erfRow(n int, x, y *float32) {
	panic("tensor: no assembly kernels in this build")
}

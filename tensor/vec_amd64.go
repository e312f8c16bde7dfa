//go:build !purego

package tensor

import "math"

//go:noescape
func sumBlock(n int, x *float32) float32

//go:noescape
func sumSqDevBlock(n int, x *float32, mean float32) float32

//go:noescape
func gradSumsBlock(n int, gv, x *float32, mean float32) (sg, sgx float32)

//go:noescape
func affineRow(n int, x *float32, a, b float32, y *float32)

//go:noescape
func affine2Set(n int, gv, x *float32, p, q, r, s float32, d *float32)

//go:noescape
func affine2Add(n int, gv, x *float32, p, q, r, s float32, d *float32)

//go:noescape
func clipRow(n int, x *float32, lo, hi float32, zero bool, y *float32)

//go:noescape
func reluGradSet(n int, y, gv *float32, d *float32)

//go:noescape
func reluGradAdd(n int, y, gv *float32, d *float32)

//go:noescape
func clipGradSet(n int, x, gv *float32, lo, hi float32, d *float32)

//go:noescape
func clipGradAdd(n int, x, gv *float32, lo, hi float32, d *float32)

//go:noescape
func affineReluRow(n int, x *float32, a, b float32, y *float32)

//go:noescape
func gradSumsReluBlock(n int, gv, z, x *float32, mean float32) (sg, sgx float32)

//go:noescape
func affine2ReluSet(n int, gv, z, x *float32, p, q, r, s float32, d *float32)

//go:noescape
func affine2ReluAdd(n int, gv, z, x *float32, p, q, r, s float32, d *float32)

//go:noescape
func gatherRow(n int, idx *int32, src *float32, dst *float32)

//go:noescape
func normParamRow(n int, x, gv *float32, mean, inv float64, s1, s2 *float64)

//go:noescape
func sumPlanes(np, n int, x *float32, out *float64)

//go:noescape
func sumSqDevPlanes(np, n int, x, mean *float32, out *float64)

//go:noescape
func gradSumsPlanes(np, n int, gv, x, mean *float32, sg, sgx *float64)

//go:noescape
func gradSumsReluPlanes(np, n int, gv, z, x, mean *float32, sg, sgx *float64)

//go:noescape
func affinePlanes(np, n int, x, a, b, y *float32)

//go:noescape
func affineReluPlanes(np, n int, x, a, b, y *float32)

//go:noescape
func affine2SetPlanes(np, n int, gv, x, p, q, r, s, d *float32)

//go:noescape
func affine2AddPlanes(np, n int, gv, x, p, q, r, s, d *float32)

//go:noescape
func affine2ReluSetPlanes(np, n int, gv, z, x, p, q, r, s, d *float32)

//go:noescape
func affine2ReluAddPlanes(np, n int, gv, z, x, p, q, r, s, d *float32)

//go:noescape
func gradSumsReluXPlanes(np, n int, gv, x, a, b, mean *float32, sg, sgx *float64)

//go:noescape
func affine2ReluXSetPlanes(np, n int, gv, x, a, b, p, q, r, s, d *float32)

//go:noescape
func affine2ReluXAddPlanes(np, n int, gv, x, a, b, p, q, r, s, d *float32)

//go:noescape
func expRow(n int, x, y *float32)

//go:noescape
func sigmoidRow(n int, x, y *float32)

//go:noescape
func tanhRow(n int, x, y *float32)

//go:noescape
func erfRow(n int, x, y *float32)

// expConsts holds the rows expRow, sigmoidRow, tanhRow and erfRow read,
// each value eight times, in the order of EXP_ROWS in
// tensor/internal/asmgen/vec.py; expClamp the bounds exp clamps x to,
// then erf's 1 and 4.
var (
	expConsts = func() (t [39][8]float32) {
		rows := []float32{expLog2e, expC1, expC2, expP0, expP1, expP2, expP3, expP4, expP5, 1,
			math.Float32frombits(127), math.Float32frombits(1 << 31), math.Float32frombits(1<<31 - 1), 2, tanhSmall}
		rows = append(rows, tanhP[:]...)
		rows = append(rows, erfS[:]...)
		rows = append(rows, erfL[:]...)
		rows = append(rows, erfK1, erfK2)
		if len(rows) != len(t) {
			panic("tensor: expConsts rows do not match the kernels'")
		}
		for i, v := range rows {
			for j := range t[i] {
				t[i][j] = v
			}
		}
		return t
	}()
	expClamp = [4]float32{expHi, expLo, 1, erfOne}
)

//go:build !purego

package tensor

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

//go:build !purego

package tensor

// dw3x3Rows: see dw_amd64.s.
//
//go:noescape
func dw3x3Rows(rows, n int, xp *float32, ldx int, w *float32, y *float32, ldy int, add bool)

// dw3x3Grad: see dw_amd64.s.
//
//go:noescape
func dw3x3Grad(rows, n int, xp *float32, ldx int, dy *float32, ldy int, out *float32)

//go:noescape
func dw4Planes(np int, x, w, y *float32, add bool)

//go:noescape
func dw4GradPlanes(np int, x, dy, sums *float32)

//go:noescape
func dw8Planes(np int, x, w, y *float32, add bool)

//go:noescape
func dw8GradPlanes(np int, x, dy, sums *float32)

// im2col4, im2col8: Im2colPlan's columns of a 3×3, pad-1, stride-1 window
// over 4×4 and 8×8 planes (planes3x3_amd64.s).
//
//go:noescape
func im2col4(c int, x, col *float32, ld int)

//go:noescape
func im2col8(c int, x, col *float32, ld int)

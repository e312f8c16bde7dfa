//go:build !purego

package tensor

//go:noescape
func axpyRows(rows, n int, a float32, x *float32, ldx int, y *float32, ldy int)

//go:noescape
func dotRows(rows, n int, x *float32, ldx int, y *float32, ldy int) float32

//go:noescape
func copyRows(rows, n int, x *float32, ldx int, y *float32, ldy int)

//go:noescape
func splitPairs(rows, n int, x *float32, ldx int, even, odd *float32, ldd int)

//go:noescape
func mergePairs(rows, n int, even, odd *float32, lds int, y *float32, ldy int, add bool)

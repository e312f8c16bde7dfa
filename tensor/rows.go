package tensor

import "fmt"

// AxpyRows adds a·x to y row by row: for r < rows,
// y[r·ldy : r·ldy+n] += a·x[r·ldx : r·ldx+n]. It uses AVX2/FMA where the
// CPU has them (tails of rows with masked loads), Go loops elsewhere.
// Rows of x and y must not overlap each other.
func AxpyRows(rows, n int, a float32, x []float32, ldx int, y []float32, ldy int) {
	if rows <= 0 || n <= 0 {
		return
	}
	checkRows("x", rows, n, x, ldx)
	checkRows("y", rows, n, y, ldy)
	if directAsm {
		axpyRows(rows, n, a, &x[0], ldx, &y[0], ldy)
		return
	}
	for r := range rows {
		xr, yr := x[r*ldx:][:n], y[r*ldy:][:n]
		for t, v := range xr {
			yr[t] += a * v
		}
	}
}

// DotRows is Σ_{r<rows} Σ_{t<n} x[r·ldx+t]·y[r·ldy+t]. The order of the
// additions depends only on rows and n (and on whether the CPU has AVX2),
// so equal calls give equal results.
func DotRows(rows, n int, x []float32, ldx int, y []float32, ldy int) float32 {
	if rows <= 0 || n <= 0 {
		return 0
	}
	checkRows("x", rows, n, x, ldx)
	checkRows("y", rows, n, y, ldy)
	if directAsm {
		return dotRows(rows, n, &x[0], ldx, &y[0], ldy)
	}
	var s float32
	for r := range rows {
		xr, yr := x[r*ldx:][:n], y[r*ldy:][:n]
		var s0, s1 float32
		t := 0
		for ; t+2 <= n; t += 2 {
			s0 += xr[t] * yr[t]
			s1 += xr[t+1] * yr[t+1]
		}
		if t < n {
			s0 += xr[t] * yr[t]
		}
		s += s0 + s1
	}
	return s
}

func checkRows(name string, rows, n int, s []float32, ld int) {
	if ld < n || (rows-1)*ld+n > len(s) {
		panic(fmt.Sprintf("tensor: %d rows of %d with stride %d do not fit %s (length %d)", rows, n, ld, name, len(s)))
	}
}

// SplitPairsRows deinterleaves rows of 2n floats: for r < rows and q < n,
// even[r·ldd + q] = x[r·ldx + 2q] and odd[r·ldd + q] = x[r·ldx + 2q + 1]
// (a stride-2 depthwise convolution's phase split). Assembly when the CPU
// has AVX2 and n is a multiple of 4, Go loops otherwise; the values are
// copied either way.
func SplitPairsRows(rows, n int, x []float32, ldx int, even, odd []float32, ldd int) {
	if rows <= 0 || n <= 0 {
		return
	}
	checkRows("x", rows, 2*n, x, ldx)
	checkRows("even", rows, n, even, ldd)
	checkRows("odd", rows, n, odd, ldd)
	if directAsm && n%4 == 0 {
		splitPairs(rows, n, &x[0], ldx, &even[0], &odd[0], ldd)
		return
	}
	for r := range rows {
		xr, e, o := x[r*ldx:][:2*n], even[r*ldd:][:n], odd[r*ldd:][:n]
		for q := range e {
			e[q], o[q] = xr[2*q], xr[2*q+1]
		}
	}
}

// MergePairsRows interleaves: for r < rows and q < n, y[r·ldy + 2q] =
// even[r·lds + q] and y[r·ldy + 2q + 1] = odd[r·lds + q], or with add
// y += them (y first in each sum). Assembly when the CPU has AVX2 and n is
// a multiple of 4, Go loops otherwise; the same bits either way.
func MergePairsRows(rows, n int, even, odd []float32, lds int, y []float32, ldy int, add bool) {
	if rows <= 0 || n <= 0 {
		return
	}
	checkRows("even", rows, n, even, lds)
	checkRows("odd", rows, n, odd, lds)
	checkRows("y", rows, 2*n, y, ldy)
	if directAsm && n%4 == 0 {
		mergePairs(rows, n, &even[0], &odd[0], lds, &y[0], ldy, add)
		return
	}
	for r := range rows {
		yr, e, o := y[r*ldy:][:2*n], even[r*lds:][:n], odd[r*lds:][:n]
		for q := range e {
			if add {
				yr[2*q] += e[q]
				yr[2*q+1] += o[q]
			} else {
				yr[2*q], yr[2*q+1] = e[q], o[q]
			}
		}
	}
}

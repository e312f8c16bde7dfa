package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowsMatchDefinition checks AxpyRows and DotRows against float64 sums
// for row lengths around the vector width (tails of 1..7 floats, one, two
// and several whole vectors) and strides wider than the rows, and that
// AxpyRows leaves the gaps between rows untouched.
func TestRowsMatchDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 64, 100} {
		for _, rows := range []int{1, 2, 5} {
			ldx, ldy := n+3, n+5
			x := randSlice(r, (rows-1)*ldx+n)
			y := randSlice(r, (rows-1)*ldy+n+2)
			y0 := append([]float32(nil), y...)
			a := float32(r.NormFloat64())
			var want float64
			for i := range rows {
				for j := range n {
					want += float64(x[i*ldx+j]) * float64(y0[i*ldy+j])
				}
			}
			got := DotRows(rows, n, x, ldx, y, ldy)
			if d := math.Abs(float64(got) - want); d > 1e-5*float64(rows*n) {
				t.Errorf("DotRows(%d, %d) = %v, want %v", rows, n, got, want)
			}
			AxpyRows(rows, n, a, x, ldx, y, ldy)
			for i := range y {
				row, col := i/ldy, i%ldy
				w := float64(y0[i])
				if row < rows && col < n {
					w += float64(a) * float64(x[row*ldx+col])
				}
				if d := math.Abs(float64(y[i]) - w); d > 1e-6*(1+math.Abs(w)) {
					t.Fatalf("AxpyRows(%d, %d): y[%d] = %v, want %v", rows, n, i, y[i], w)
				}
			}
		}
	}
}

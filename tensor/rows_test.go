package tensor

import (
	"math"
	"math/rand/v2"
	"slices"
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

// TestPairsRowsMatchLoops: SplitPairsRows and MergePairsRows (assembly for
// n a multiple of 4) give the bits of the plain loops, with NaN, signed
// zeros and infinities among the values, strided rows, and nothing
// written outside the rows.
func TestPairsRowsMatchLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	vals := func(n int) []float32 { return randSpecial(r, n, 6) }
	for _, n := range []int{4, 8, 12, 16, 20, 3, 5} {
		rows, ldx, ldd := 3, 2*n+3, n+2
		x := vals(rows * ldx)
		even, odd := vals(rows*ldd), vals(rows*ldd)
		we, wo := slices.Clone(even), slices.Clone(odd)
		SplitPairsRows(rows, n, x, ldx, even, odd, ldd)
		for rr := range rows {
			for q := range n {
				we[rr*ldd+q], wo[rr*ldd+q] = x[rr*ldx+2*q], x[rr*ldx+2*q+1]
			}
		}
		if !slices.Equal(float32Bits(even), float32Bits(we)) || !slices.Equal(float32Bits(odd), float32Bits(wo)) {
			t.Fatalf("SplitPairsRows n=%d differs from the loop", n)
		}
		for _, add := range []bool{false, true} {
			y := vals(rows * ldx)
			want := slices.Clone(y)
			MergePairsRows(rows, n, even, odd, ldd, y, ldx, add)
			for rr := range rows {
				for q := range n {
					if add {
						want[rr*ldx+2*q] += even[rr*ldd+q]
						want[rr*ldx+2*q+1] += odd[rr*ldd+q]
					} else {
						want[rr*ldx+2*q], want[rr*ldx+2*q+1] = even[rr*ldd+q], odd[rr*ldd+q]
					}
				}
			}
			if !slices.Equal(float32Bits(y), float32Bits(want)) {
				t.Fatalf("MergePairsRows n=%d add=%v differs from the loop:\n%v\n%v", n, add, y, want)
			}
		}
	}
}

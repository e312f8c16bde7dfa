package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDepthwise3x3MatchesDefinition checks Forward (assign, add) and
// WeightGrad against float64 sums from the definition on planes whose
// widths leave every tail length, with pads 0, 1 and uneven.
func TestDepthwise3x3MatchesDefinition(t *testing.T) {
	if !directAsm {
		t.Skip("no assembly kernels on this CPU/build")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, c := range []struct{ h, w, pt, pb, pl, pr int }{
		{32, 32, 1, 1, 1, 1}, {16, 16, 1, 1, 1, 1}, {8, 8, 1, 1, 1, 1}, {4, 4, 1, 1, 1, 1}, {5, 9, 1, 1, 1, 1},
		{7, 13, 0, 0, 0, 0}, {6, 3, 2, 0, 0, 2}, {3, 17, 1, 1, 2, 0}, {1, 1, 1, 1, 1, 1}, {2, 23, 1, 1, 1, 1},
	} {
		g := Window{H: c.h, W: c.w, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: c.pt, PadL: c.pl,
			OH: c.h + c.pt + c.pb - 2, OW: c.w + c.pl + c.pr - 2}
		t.Run(fmt.Sprintf("%dx%d_p%d%d%d%d", c.h, c.w, c.pt, c.pb, c.pl, c.pr), func(t *testing.T) {
			d, ok := NewDepthwise3x3(&g)
			if !ok {
				t.Fatalf("refused %+v", g)
			}
			x, w, dy := randSlice(r, c.h*c.w), randSlice(r, 9), randSlice(r, g.OH*g.OW)
			col := coreNaiveIm2col(&g, 1, x)
			p := g.OH * g.OW
			wantY := make([]float64, p)
			var wantW [9]float64
			for tap := range 9 {
				for q := range p {
					wantY[q] += float64(w[tap]) * float64(col[tap*p+q])
					wantW[tap] += float64(dy[q]) * float64(col[tap*p+q])
				}
			}
			xp := make([]float32, d.PadSize())
			for i := range xp {
				xp[i] = float32(math.NaN())
			}
			d.Pad(x, xp)
			y := make([]float32, p)
			for i := range y {
				y[i] = float32(math.NaN())
			}
			d.Forward(xp, w, y, false)
			compareTol(t, "Forward", y, wantY, nil, 9)
			base := randSlice(r, p)
			y2 := append([]float32(nil), base...)
			d.Forward(xp, w, y2, true)
			compareTol(t, "Forward add", y2, wantY, base, 9)
			var out [9]float32
			d.WeightGrad(xp, dy, &out)
			compareTol(t, "WeightGrad", out[:], wantW[:], nil, p)
		})
	}
}

// TestDepthwisePlanesMatchOnePlane: ForwardPlanes and WeightGradPlanes on
// many 4×4 or 8×8 planes give, plane by plane, the bits of Pad + Forward
// and Pad + WeightGrad + nine adds, with zeros of both signs, NaN,
// infinities and subnormals among the values, and write nothing past
// their planes; other geometries have no planes kernel.
func TestDepthwisePlanesMatchOnePlane(t *testing.T) {
	win := func(hw, pad int) Window {
		return Window{H: hw, W: hw, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: pad, PadL: pad, OH: hw + 2*pad - 2, OW: hw + 2*pad - 2}
	}
	for _, c := range []struct{ hw, pad, side int }{{4, 1, 4}, {8, 1, 8}, {16, 1, 0}, {6, 0, 0}, {5, 1, 0}} {
		g := win(c.hw, c.pad)
		d, ok := NewDepthwise3x3(&g)
		if !ok {
			t.Skip("no depthwise kernels on this CPU/build")
		}
		if d.PlaneSide() != c.side {
			t.Errorf("%d×%d planes, pad %d: PlaneSide %d, want %d", c.hw, c.hw, c.pad, d.PlaneSide(), c.side)
		}
	}
	for _, side := range []int{4, 8} {
		g := win(side, 1)
		d, _ := NewDepthwise3x3(&g)
		checkDepthwisePlanes(t, d, side)
	}
}

func checkDepthwisePlanes(t *testing.T, d *Depthwise3x3, side int) {
	t.Helper()
	pl := side * side
	r := rand.New(rand.NewPCG(5, 6))
	special := false
	vals := func(n int) []float32 {
		if special {
			return randSpecial(r, n, 12)
		}
		return randSlice(r, n)
	}
	xp := make([]float32, d.PadSize())
	for _, np := range []int{0, 1, 2, 7} {
		for _, add := range []bool{false, true} {
			special = !special
			x, w, dy := vals(pl*np+3), vals(9*np), vals(pl*np+3)
			y := vals(pl*np + 3)
			want := slices.Clone(y)
			d.ForwardPlanes(x, w, y, add)
			for k := range np {
				d.Pad(x[pl*k:pl*k+pl], xp)
				d.Forward(xp, w[9*k:9*k+9], want[pl*k:pl*k+pl], add)
			}
			if !slices.Equal(float32Bits(y), float32Bits(want)) {
				t.Fatalf("ForwardPlanes %d×%d np=%d add=%v:\n%v\nwant\n%v", side, side, np, add, y, want)
			}
			sums := vals(9 * np)
			wantSums := slices.Clone(sums)
			d.WeightGradPlanes(x, dy, sums)
			for k := range np {
				var one [9]float32
				d.Pad(x[pl*k:pl*k+pl], xp)
				d.WeightGrad(xp, dy[pl*k:pl*k+pl], &one)
				for i := range 9 {
					wantSums[9*k+i] += one[i]
				}
			}
			if !slices.Equal(float32Bits(sums), float32Bits(wantSums)) {
				t.Fatalf("WeightGradPlanes %d×%d np=%d:\n%v\nwant\n%v", side, side, np, sums, wantSums)
			}
		}
	}
}

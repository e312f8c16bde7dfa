package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
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

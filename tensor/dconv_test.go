package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDirectConvMatchesDefinition checks Forward (assign and add) and
// WeightGrad against float64 sums written from the definition of
// convolution (through coreNaiveIm2col), on geometries with output rows of
// one and several 16-pixel strips and 8-pixel rows paired into strips, pads larger and smaller than the kernel,
// dilations, output channel counts that are not multiples of the 6-row tile
// or of 2, and tap counts that are not multiples of 4.
func TestDirectConvMatchesDefinition(t *testing.T) {
	if !directAsm {
		t.Skip("no direct-convolution kernels on this CPU/build: convolutions use im2col (covered by the autodiff tests)")
	}
	r := rand.New(rand.NewPCG(11, 12))
	type tc struct {
		c, m int
		g    Window
	}
	win := func(h, w, kh, kw, dh, dw, pt, pb, pl, pr int) Window {
		return Window{H: h, W: w, KH: kh, KW: kw, SH: 1, SW: 1, DH: dh, DW: dw, PadT: pt, PadL: pl,
			OH: h + pt + pb - (kh-1)*dh, OW: w + pl + pr - (kw-1)*dw}
	}
	cases := []tc{
		{16, 16, win(32, 32, 3, 3, 1, 1, 1, 1, 1, 1)},
		{3, 16, win(32, 32, 3, 3, 1, 1, 1, 1, 1, 1)},
		{5, 7, win(8, 16, 3, 3, 1, 1, 1, 1, 1, 1)},
		{64, 64, win(8, 8, 3, 3, 1, 1, 1, 1, 1, 1)},
		{3, 5, win(6, 8, 3, 3, 1, 1, 1, 1, 1, 1)},
		{2, 7, win(10, 9, 2, 2, 2, 1, 1, 1, 0, 0)},
		{4, 13, win(16, 16, 3, 3, 1, 1, 1, 1, 1, 1)},
		{2, 1, win(10, 18, 3, 3, 1, 1, 0, 0, 0, 0)},
		{3, 6, win(16, 16, 5, 5, 1, 1, 2, 2, 2, 2)},
		{2, 5, win(9, 20, 3, 5, 2, 1, 2, 1, 0, 0)},
		{3, 9, win(7, 16, 1, 3, 1, 1, 0, 0, 1, 1)},
		{1, 2, win(6, 16, 2, 2, 1, 1, 0, 1, 1, 0)},
		{2, 3, win(4, 12, 3, 3, 1, 1, 2, 2, 4, 2)},
		{6, 12, win(16, 16, 3, 3, 2, 2, 2, 2, 2, 2)},
	}
	for _, c := range cases {
		g := c.g
		name := fmt.Sprintf("c%d_m%d_%dx%d_k%dx%d_d%dx%d_p%d%d", c.c, c.m, g.H, g.W, g.KH, g.KW, g.DH, g.DW, g.PadT, g.PadL)
		t.Run(name, func(t *testing.T) {
			dc, ok := NewDirectConv(&g, c.c)
			if !ok {
				t.Fatalf("NewDirectConv refused %+v", g)
			}
			k, p := dc.K(), g.OH*g.OW
			x := randSlice(r, c.c*g.H*g.W)
			w := randSlice(r, c.m*k)
			dy := randSlice(r, c.m*p)
			col := coreNaiveIm2col(&g, c.c, x)
			wantY := make([]float64, c.m*p)
			wantDW := make([]float64, c.m*k)
			for o := range c.m {
				for t2 := range k {
					for q := range p {
						wantY[o*p+q] += float64(w[o*k+t2]) * float64(col[t2*p+q])
						wantDW[o*k+t2] += float64(dy[o*p+q]) * float64(col[t2*p+q])
					}
				}
			}
			xp := make([]float32, dc.PadSize())
			for i := range xp {
				xp[i] = float32(math.NaN()) // Pad must write every element
			}
			dc.Pad(x, xp)
			wp := make([]float32, dc.PackedSize(c.m))
			dc.PackWeights(c.m, w, wp)
			y := make([]float32, c.m*p)
			for i := range y {
				y[i] = float32(math.NaN()) // assign mode must overwrite
			}
			dc.Forward(xp, wp, c.m, y, false)
			compareTol(t, "Forward", y, wantY, nil, k)
			base := randSlice(r, c.m*p)
			y2 := append([]float32(nil), base...)
			dc.Forward(xp, wp, c.m, y2, true)
			compareTol(t, "Forward add", y2, wantY, base, k)
			dw0 := randSlice(r, c.m*k)
			dw := append([]float32(nil), dw0...)
			dc.WeightGrad(xp, dy, c.m, dw)
			compareTol(t, "WeightGrad", dw, wantDW, dw0, p)
		})
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// specialFloats are the values the bit-exact kernel tests mix in: zeros of
// both signs, NaN, infinities, subnormals.
var specialFloats = []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-40, -1e-40}

// randSpecial is randSlice with about one value in every replaced by one
// of specialFloats (every 0: none).
func randSpecial(r *rand.Rand, n, every int) []float32 {
	s := randSlice(r, n)
	for i := range s {
		if every > 0 && r.IntN(every) == 0 {
			s[i] = specialFloats[r.IntN(len(specialFloats))]
		}
	}
	return s
}

// float32Bits is v's bit patterns (NaN payloads and signed zeros compare).
func float32Bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, f := range v {
		out[i] = math.Float32bits(f)
	}
	return out
}

// compareTol checks got = want (+ base) within float32 rounding of an
// n-term sum of unit-variance products.
func compareTol(t *testing.T, what string, got []float32, want []float64, base []float32, n int) {
	t.Helper()
	tol := 4e-7 * float64(n) * 4
	for i, g := range got {
		w := want[i]
		if base != nil {
			w += float64(base[i])
		}
		if d := math.Abs(float64(g) - w); !(d <= tol) {
			t.Fatalf("%s[%d] = %v, want %v (|diff| %.3g > %.3g)", what, i, g, w, d, tol)
		}
	}
}

// TestDirectConvRefuses: geometries the kernels do not cover are left to
// im2col.
func TestDirectConvRefuses(t *testing.T) {
	for _, g := range []Window{
		{H: 8, W: 8, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 4, OW: 4},
		{H: 7, W: 8, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 7, OW: 8},
		{H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 4, OW: 4},
		{D: 4, KD: 3, SD: 1, DD: 1, OD: 2, H: 8, W: 8, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: 8, OW: 8},
	} {
		if _, ok := NewDirectConv(&g, 2); ok {
			t.Errorf("NewDirectConv accepted %+v", g)
		}
	}
	was := SetDirectConv(false)
	defer SetDirectConv(was)
	g := Window{H: 16, W: 16, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 16, OW: 16}
	if _, ok := NewDirectConv(&g, 2); ok {
		t.Error("NewDirectConv accepted a window while turned off")
	}
}

// TestWeightGradMatchesGroupLoop: WeightGrad (all tap groups of a pair of
// output channels in one assembly call) gives the bits of the former loop,
// which called the kernel once per group of 4 taps and added its 2 × 4
// sums into dW in Go; odd channel counts, tap counts that are not a
// multiple of 4, 16- and 8-pixel rows.
func TestWeightGradMatchesGroupLoop(t *testing.T) {
	if !directAsm {
		t.Skip("no direct-convolution kernels on this CPU/build")
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct{ c, m, hw, k int }{{3, 5, 16, 3}, {2, 4, 8, 3}, {5, 7, 32, 3}, {1, 1, 16, 1}, {4, 6, 8, 1}} {
		pad := c.k / 2
		g := Window{H: c.hw, W: c.hw, KH: c.k, KW: c.k, SH: 1, SW: 1, DH: 1, DW: 1, PadT: pad, PadL: pad, OH: c.hw, OW: c.hw}
		dc, ok := NewDirectConv(&g, c.c)
		if !ok {
			t.Fatalf("%+v: no direct convolution", c)
		}
		p, k := c.hw*c.hw, dc.K()
		xp, dy := make([]float32, dc.PadSize()), randSlice(r, c.m*p)
		dc.Pad(randSlice(r, c.c*p), xp)
		got := randSlice(r, c.m*k)
		want := slices.Clone(got)
		dc.WeightGrad(xp, dy, c.m, got)
		// The former loop: one group of 4 taps per call, its sums (left in
		// out) added in Go.
		var out [8]float32
		scratch := make([]float32, 8)
		for m0 := 0; m0 < c.m; m0 += 2 {
			ldy, rows := p, min(2, c.m-m0)
			if rows == 1 {
				ldy = 0
			}
			for q0 := 0; q0 < k; q0 += 4 {
				dconvWgtRows(len(dc.xb), &dc.xb[0], &dc.yb[0], &dc.offs[q0], 4, &xp[0], dc.half, &dy[m0*p], ldy, &scratch[0], 4, 2, &out[0])
				for rr := range rows {
					row := want[(m0+rr)*k : (m0+rr+1)*k]
					for q := range min(4, k-q0) {
						row[q0+q] += out[rr*4+q]
					}
				}
			}
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: dW[%d] = %v, the group loop gives %v", c, i, got[i], want[i])
			}
		}
	}
}

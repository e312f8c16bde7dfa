package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// coreNaiveIm2col is the definition of Im2col, written for clarity.
func coreNaiveIm2col(g *Window, c int, x []float32) []float32 {
	d, kd, sd, dd, od := g.Depth()
	cols := od * g.OH * g.OW
	out := make([]float32, c*kd*g.KH*g.KW*cols)
	for ci := range c {
		for a := range kd {
			for i := range g.KH {
				for j := range g.KW {
					r := ((ci*kd+a)*g.KH+i)*g.KW + j
					for o := range od {
						for oh := range g.OH {
							for ow := range g.OW {
								id := o*sd - g.PadF + a*dd
								ih := oh*g.SH - g.PadT + i*g.DH
								iw := ow*g.SW - g.PadL + j*g.DW
								if id >= 0 && id < d && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
									out[r*cols+(o*g.OH+oh)*g.OW+ow] = x[((ci*d+id)*g.H+ih)*g.W+iw]
								}
							}
						}
					}
				}
			}
		}
	}
	return out
}

func TestIm2colMatchesDefinitionAndCol2imIsAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []Window{
		{H: 5, W: 6, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1},
		{H: 7, W: 7, KH: 3, KW: 2, SH: 2, SW: 3, DH: 1, DW: 2, PadT: 0, PadL: 2},
		{H: 4, W: 9, KH: 2, KW: 3, SH: 3, SW: 2, DH: 2, DW: 3, PadT: 2, PadL: 3},
		{H: 1, W: 8, KH: 1, KW: 3, SH: 1, SW: 2, DH: 1, DW: 1, PadT: 0, PadL: 1},
		{H: 3, W: 3, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 2, PadL: 2},
		{H: 1, W: 1, KH: 1, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 0, PadL: 2},   // taps entirely in padding
		{H: 6, W: 5, KH: 3, KW: 3, SH: 1, SW: 1, DH: 2, DW: 1, PadT: 2, PadL: 1},   // same width, stride 1: block copy
		{H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 2, PadT: 0, PadL: 2},   // same width, taps past both ends
		{H: 1, W: 100, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1}, // one row: the top and bottom taps read only padding (panicked)
		{H: 1, W: 9, KH: 3, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 0},   // the same with a 3×1 window, no column padding
		{D: 4, H: 3, W: 5, KD: 2, KH: 2, KW: 3, SD: 2, SH: 1, SW: 2, DD: 2, DH: 1, DW: 1, PadF: 1, PadT: 1, PadL: 1},
	}
	for n, g := range cases {
		// Output size with end padding equal to begin padding.
		if g.D > 0 {
			g.OD = (g.D+2*g.PadF-((g.KD-1)*g.DD+1))/g.SD + 1
		}
		g.OH = (g.H+2*g.PadT-((g.KH-1)*g.DH+1))/g.SH + 1
		g.OW = (g.W+2*g.PadL-((g.KW-1)*g.DW+1))/g.SW + 1
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			const c = 2
			x := coreRandSlice(r, c*g.InSize())
			want := coreNaiveIm2col(&g, c, x)
			cols := g.OutSize()
			_, kd, _, _, _ := g.Depth()
			rows := c * kd * g.KH * g.KW
			// Place the image's columns at offset 3 of a wider matrix to test ld.
			ld := cols + 5
			got := make([]float32, rows*ld)
			for i := range got {
				got[i] = 99
			}
			Im2col(&g, c, x, got, ld, 3)
			for row := range rows {
				for k := range cols {
					if got[row*ld+3+k] != want[row*cols+k] {
						t.Fatalf("col[%d,%d] = %v, want %v", row, k, got[row*ld+3+k], want[row*cols+k])
					}
				}
			}
			// The plan with its gather table (forced for every size) gives
			// the same columns.
			was := gatherAll(true)
			plan := NewIm2colPlan(&g)
			gatherAll(was)
			if !plan.identity && (plan.idx != nil) != (g.D == 0) {
				t.Fatalf("plan table %v for a window of depth %d", plan.idx != nil, g.D)
			}
			pgot := make([]float32, rows*ld)
			for i := range pgot {
				pgot[i] = 99
			}
			plan.Im2col(c, x, pgot, ld, 3)
			for row := range rows {
				for k := range cols {
					if pgot[row*ld+3+k] != want[row*cols+k] {
						t.Fatalf("plan: col[%d,%d] = %v, want %v", row, k, pgot[row*ld+3+k], want[row*cols+k])
					}
				}
			}
			// <Im2col(x), y> == <x, Col2im(y)> for random y.
			y := coreRandSlice(r, len(got))
			var lhs float64
			for row := range rows {
				for k := range cols {
					lhs += float64(want[row*cols+k]) * float64(y[row*ld+3+k])
				}
			}
			back := make([]float32, len(x))
			Col2im(&g, c, y, ld, 3, back)
			pback := make([]float32, len(x))
			plan.Col2im(c, y, ld, 3, pback)
			for i := range back {
				if math.Float32bits(back[i]) != math.Float32bits(pback[i]) {
					t.Fatalf("plan: Col2im[%d] = %v, Col2im gives %v", i, pback[i], back[i])
				}
			}
			var rhs, mag float64
			for i := range x {
				rhs += float64(x[i]) * float64(back[i])
				mag += abs64(float64(x[i]) * float64(back[i]))
			}
			// Col2im adds up to KH*KW float32 values per pixel: each add
			// rounds with relative error 2^-24, far below 1e-6.
			if d := abs64(lhs - rhs); d > 1e-6*(1+mag) {
				t.Fatalf("<im2col x, y> = %v, <x, col2im y> = %v", lhs, rhs)
			}
		})
	}
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// gatherAll makes every 2-D plan gather (on) and returns the old setting.
func gatherAll(on bool) bool {
	was := im2colGatherAll
	im2colGatherAll = on
	return was
}

// BenchmarkIm2col times the column building of ResNet-18 width 0.25's
// small-plane convolutions (batch 16 images per call sequence) through the
// plan's gather table and through the row-wise Im2col, alternating, and
// reports both rates (floats written per second) and their ratio.
func BenchmarkIm2col(b *testing.B) {
	for _, c := range []struct {
		name string
		ch   int
		g    Window
	}{
		{"stage4_128ch_4x4", 128, Window{H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 4, OW: 4}},
		{"stage1_16ch_32x32", 16, Window{H: 32, W: 32, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 32, OW: 32}},
		{"stage2_32ch_16x16", 32, Window{H: 16, W: 16, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 16, OW: 16}},
		{"stage3_64ch_8x8", 64, Window{H: 8, W: 8, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 8, OW: 8}},
		{"stride2_32ch_16to8", 32, Window{H: 16, W: 16, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 8, OW: 8}},
		{"stride2_16ch_32to16", 16, Window{H: 32, W: 32, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 16, OW: 16}},
		{"stride2_64ch_8to4", 64, Window{H: 8, W: 8, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 4, OW: 4}},
	} {
		b.Run(c.name, func(b *testing.B) {
			const images = 16
			r := rand.New(rand.NewPCG(1, 2))
			x := coreRandSlice(r, images*c.ch*c.g.InSize())
			ohw := c.g.OH * c.g.OW
			ld := images * ohw
			col := make([]float32, c.ch*9*ld)
			was := gatherAll(true)
			plan := NewIm2colPlan(&c.g)
			gatherAll(was)
			var tPlan, tRows time.Duration
			for b.Loop() {
				t0 := time.Now()
				for s := range images {
					plan.Im2col(c.ch, x[s*c.ch*c.g.InSize():], col, ld, s*ohw)
				}
				t1 := time.Now()
				for s := range images {
					Im2col(&c.g, c.ch, x[s*c.ch*c.g.InSize():], col, ld, s*ohw)
				}
				tPlan += t1.Sub(t0)
				tRows += time.Since(t1)
			}
			n := float64(len(col) * b.N)
			b.ReportMetric(n/tPlan.Seconds()/1e9, "table-Gfloats/s")
			b.ReportMetric(n/tRows.Seconds()/1e9, "rows-Gfloats/s")
			b.ReportMetric(tRows.Seconds()/tPlan.Seconds(), "table/rows")
		})
	}
}

// TestIm2colPlanIdentity: a pointwise (1×1, stride-1, unpadded) window's
// plan copies the planes (Im2col) and adds them (Col2im) as runs, with the
// bits of Im2col and Col2im; any other 1×1 window keeps the general path.
func TestIm2colPlanIdentity(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, hw := range []int{4, 8, 16} {
		g := Window{H: hw, W: hw, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: hw, OW: hw}
		plan := NewIm2colPlan(&g)
		if !plan.identity {
			t.Fatalf("%d×%d pointwise window: no identity plan", hw, hw)
		}
		const c, colOff = 3, 5
		ld := 2*hw*hw + 7
		x := coreRandSlice(r, c*hw*hw)
		got, want := make([]float32, c*ld), make([]float32, c*ld)
		plan.Im2col(c, x, got, ld, colOff)
		Im2col(&g, c, x, want, ld, colOff)
		if !slices.Equal(got, want) {
			t.Fatalf("%d×%d: identity Im2col differs from Im2col", hw, hw)
		}
		y := coreRandSlice(r, c*ld)
		back, wantBack := coreRandSlice(r, len(x)), []float32(nil)
		wantBack = slices.Clone(back)
		plan.Col2im(c, y, ld, colOff, back)
		Col2im(&g, c, y, ld, colOff, wantBack)
		for i := range back {
			if math.Float32bits(back[i]) != math.Float32bits(wantBack[i]) {
				t.Fatalf("%d×%d: identity Col2im[%d] = %v, Col2im gives %v", hw, hw, i, back[i], wantBack[i])
			}
		}
	}
	for _, g := range []Window{
		{H: 8, W: 8, KH: 1, KW: 1, SH: 2, SW: 2, DH: 1, DW: 1, OH: 4, OW: 4},
		{H: 8, W: 8, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 10, OW: 10},
	} {
		if NewIm2colPlan(&g).identity {
			t.Errorf("window %+v: identity plan", g)
		}
	}
}

// BenchmarkIm2colPointwise times the columns of MobileNet-V2 w0.5's
// pointwise layers (192 channels, chunks of 256 columns: 4 images of 8×8
// or 16 of 4×4) through the identity plan (a copy per plane) and through
// the gather table the plan used before, alternated.
func BenchmarkIm2colPointwise(b *testing.B) {
	for _, hw := range []int{8, 4} {
		b.Run(fmt.Sprintf("192ch_%dx%d", hw, hw), func(b *testing.B) {
			g := Window{H: hw, W: hw, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: hw, OW: hw}
			id := NewIm2colPlan(&g)
			table := &Im2colPlan{g: g}
			for o := range hw * hw {
				table.idx = append(table.idx, int32(o))
			}
			const c = 192
			ohw := hw * hw
			images := 256 / ohw
			x := coreRandSlice(rand.New(rand.NewPCG(1, 1)), images*c*ohw)
			ld := images * ohw
			col := make([]float32, c*ld)
			var tID, tTable time.Duration
			for b.Loop() {
				t0 := time.Now()
				for s := range images {
					id.Im2col(c, x[s*c*ohw:], col, ld, s*ohw)
				}
				t1 := time.Now()
				for s := range images {
					table.Im2col(c, x[s*c*ohw:], col, ld, s*ohw)
				}
				tID += t1.Sub(t0)
				tTable += time.Since(t1)
			}
			b.ReportMetric(float64(tID.Nanoseconds())/float64(b.N), "identity-ns")
			b.ReportMetric(float64(tTable.Nanoseconds())/float64(b.N), "table-ns")
			b.ReportMetric(tTable.Seconds()/tID.Seconds(), "speedup")
		})
	}
}

// TestIm2colPlanSmallPlanes: the columns of a 3×3 pad-1 stride-1 window
// over 4×4 and 8×8 planes, built from the planes' rows in registers, are
// Im2col's bit for bit (signed zeros, NaN, infinities among the values),
// at a column offset inside a wider matrix, touching nothing else.
func TestIm2colPlanSmallPlanes(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, hw := range []int{4, 8} {
		g := Window{H: hw, W: hw, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: hw, OW: hw}
		plan := NewIm2colPlan(&g)
		if directAsm != (plan.side == hw) {
			t.Fatalf("%d×%d: plan side %d with assembly %v", hw, hw, plan.side, directAsm)
		}
		for _, c := range []int{1, 3, 17} {
			x := randSpecial(r, c*hw*hw, 8)
			ohw := hw * hw
			ld, colOff := 3*ohw+5, ohw+2
			got, want := make([]float32, c*9*ld), make([]float32, c*9*ld)
			for i := range got {
				got[i], want[i] = 99, 99
			}
			plan.Im2col(c, x, got, ld, colOff)
			Im2col(&g, c, x, want, ld, colOff)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%d×%d, %d channels: col[%d] = %v, Im2col gives %v", hw, hw, c, i, got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkIm2colSmallPlanes times the columns of ResNet-18 w0.5's 3×3
// layers on 8×8 and 4×4 planes (128 and 256 channels, chunks of 256
// columns) built from the rows in registers and through the gather
// table, alternated.
func BenchmarkIm2colSmallPlanes(b *testing.B) {
	for _, c := range []struct{ ch, hw int }{{128, 8}, {256, 4}} {
		b.Run(fmt.Sprintf("%dch_%dx%d", c.ch, c.hw, c.hw), func(b *testing.B) {
			g := Window{H: c.hw, W: c.hw, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: c.hw, OW: c.hw}
			rows := NewIm2colPlan(&g)
			if rows.side == 0 {
				b.Skip("no assembly kernels in this build")
			}
			table := *rows
			table.side = 0
			ohw := c.hw * c.hw
			images := 256 / ohw
			x := coreRandSlice(rand.New(rand.NewPCG(1, 1)), images*c.ch*ohw)
			ld := images * ohw
			col := make([]float32, c.ch*9*ld)
			var tRows, tTable time.Duration
			for b.Loop() {
				t0 := time.Now()
				for s := range images {
					rows.Im2col(c.ch, x[s*c.ch*ohw:], col, ld, s*ohw)
				}
				t1 := time.Now()
				for s := range images {
					table.Im2col(c.ch, x[s*c.ch*ohw:], col, ld, s*ohw)
				}
				tRows += t1.Sub(t0)
				tTable += time.Since(t1)
			}
			b.ReportMetric(float64(tRows.Nanoseconds())/float64(b.N), "rows-ns")
			b.ReportMetric(float64(tTable.Nanoseconds())/float64(b.N), "table-ns")
			b.ReportMetric(tTable.Seconds()/tRows.Seconds(), "speedup")
		})
	}
}

package tensor

// Window is the geometry of a sliding window (convolution or pooling) over
// one image volume: input size D×H×W, kernel KD×KH×KW, strides, dilations,
// the padding before each axis (PadF, PadT, PadL; padding after is implied
// by the output size) and the output size OD×OH×OW. A 2-D window has
// D = KD = OD = 1 (zero values of the depth fields are read as 1, so a
// 2-D Window literal may leave them out); a 1-D window also has
// H = KH = OH = 1.
type Window struct {
	D, H, W          int
	KD, KH, KW       int
	SD, SH, SW       int
	DD, DH, DW       int
	PadF, PadT, PadL int
	OD, OH, OW       int
}

// Depth returns the depth fields with zero read as 1: input depth, kernel
// depth, stride, dilation and output depth.
func (g *Window) Depth() (d, kd, sd, dd, od int) {
	return max(g.D, 1), max(g.KD, 1), max(g.SD, 1), max(g.DD, 1), max(g.OD, 1)
}

// OutSize is the number of output positions, OD*OH*OW.
func (g *Window) OutSize() int {
	_, _, _, _, od := g.Depth()
	return od * g.OH * g.OW
}

// InSize is the number of input positions, D*H*W.
func (g *Window) InSize() int {
	d, _, _, _, _ := g.Depth()
	return d * g.H * g.W
}

// ValidRange returns the outputs o in [0, n) whose input coordinate
// o*s + base lies in [0, size), as [lo, hi) (empty when lo == hi).
func ValidRange(n, s, base, size int) (lo, hi int) {
	if base < 0 {
		lo = (-base + s - 1) / s
	}
	if size-1-base < 0 {
		return 0, 0
	}
	hi = min(n, (size-1-base)/s+1)
	return min(lo, hi), hi
}

// Im2col writes the convolution columns of one image x (C volumes of
// D×H×W) into col: row ((c*KD + a)*KH + i)*KW + j, column
// colOff + (od*OH + oh)*OW + ow holds
// x[c, od*SD - PadF + a*DD, oh*SH - PadT + i*DH, ow*SW - PadL + j*DW],
// or 0 in the padding. ld is col's row stride.
func Im2col(g *Window, c int, x []float32, col []float32, ld, colOff int) {
	d, kd, sd, dd, od := g.Depth()
	hw, ohw := g.H*g.W, g.OH*g.OW
	if d == 1 && kd == 1 && od == 1 {
		// 2-D: each tap's valid output range once for all channels.
		var buf [maxTapTable]tapRange
		taps := g.taps(buf[:0])
		for ci := range c {
			plane := x[ci*hw:][:hw]
			for t := range taps {
				r := ci*len(taps) + t
				im2colPlane(g, &taps[t], plane, col[r*ld+colOff:][:ohw])
			}
		}
		return
	}
	for ci := range c {
		for a := range kd {
			odLo, odHi := ValidRange(od, sd, a*dd-g.PadF, d)
			for i := range g.KH {
				for j := range g.KW {
					r := ((ci*kd+a)*g.KH+i)*g.KW + j
					row := col[r*ld+colOff:]
					row = row[:od*ohw]
					clear(row[:odLo*ohw])
					clear(row[odHi*ohw:])
					for o := odLo; o < odHi; o++ {
						id := o*sd - g.PadF + a*dd
						t := g.tap(i, j)
						im2colPlane(g, &t, x[(ci*d+id)*hw:][:hw], row[o*ohw:][:ohw])
					}
				}
			}
		}
	}
}

// tapRange is where one window tap (i, j) of a 2-D plane falls inside
// the image: the outputs [ohLo, ohHi) × [owLo, owHi), and the input
// offsets of output (0, 0)'s tap row and column.
type tapRange struct {
	ohLo, ohHi, owLo, owHi int
	ih0, iw0               int
}

// maxTapTable is the tap count up to which Im2col and Col2im keep the
// table of tap ranges on the stack (a larger kernel allocates it).
const maxTapTable = 64

// taps appends every tap's range of a 2-D window, row-major, to buf.
func (g *Window) taps(buf []tapRange) []tapRange {
	for i := range g.KH {
		for j := range g.KW {
			buf = append(buf, g.tap(i, j))
		}
	}
	return buf
}

func (g *Window) tap(i, j int) tapRange {
	t := tapRange{ih0: i*g.DH - g.PadT, iw0: j*g.DW - g.PadL}
	t.ohLo, t.ohHi = ValidRange(g.OH, g.SH, t.ih0, g.H)
	t.owLo, t.owHi = ValidRange(g.OW, g.SW, t.iw0, g.W)
	return t
}

// im2colPlane fills one OH×OW block of a column row for tap t from one
// input plane.
func im2colPlane(g *Window, t *tapRange, plane, row []float32) {
	ohLo, ohHi, owLo, owHi := t.ohLo, t.ohHi, t.owLo, t.owHi
	clear(row[:ohLo*g.OW])
	clear(row[ohHi*g.OW:])
	if ohLo >= ohHi {
		// The tap row reads only padding (a plane one row high under a
		// 3×3 window, say): the clears above covered the block.
		return
	}
	if owLo >= owHi {
		clear(row[ohLo*g.OW : ohHi*g.OW])
		return
	}
	if g.SH == 1 && g.SW == 1 && g.OW == g.W {
		// Same-width, stride 1: the valid rows are one shifted copy of the
		// plane; only the border columns (ow < owLo, ow >= owHi), which
		// the copy fills with neighbouring rows' pixels, are zeroed after.
		off := (ohLo+t.ih0)*g.W + t.iw0
		dst := row[ohLo*g.OW : ohHi*g.OW]
		lo, hi := max(0, -off), min(len(dst), len(plane)-off)
		copy(dst[lo:hi], plane[off+lo:off+hi])
		for r := 0; r < len(dst); r += g.OW {
			line := dst[r : r+g.OW]
			for ow := range owLo {
				line[ow] = 0
			}
			for ow := owHi; ow < g.OW; ow++ {
				line[ow] = 0
			}
		}
		return
	}
	n := owHi - owLo
	for oh := ohLo; oh < ohHi; oh++ {
		ih := oh*g.SH + t.ih0
		iw := owLo*g.SW + t.iw0
		dst := row[oh*g.OW : oh*g.OW+g.OW]
		clear(dst[:owLo])
		clear(dst[owHi:])
		d := dst[owLo:owHi]
		switch g.SW {
		case 1:
			copy(d, plane[ih*g.W+iw:])
		case 2:
			src := plane[ih*g.W+iw : ih*g.W+iw+2*n-1]
			for k := range d {
				d[k] = src[2*k]
			}
		default:
			src := plane[ih*g.W+iw : ih*g.W+iw+(n-1)*g.SW+1]
			for k := range d {
				d[k] = src[k*g.SW]
			}
		}
	}
}

// Col2im is the adjoint of Im2col: it adds each column entry back into the
// image position it was read from (padding entries are dropped).
func Col2im(g *Window, c int, col []float32, ld, colOff int, x []float32) {
	d, kd, sd, dd, od := g.Depth()
	hw, ohw := g.H*g.W, g.OH*g.OW
	if d == 1 && kd == 1 && od == 1 {
		// 2-D: each tap's valid output range once for all channels, the
		// taps of a channel in the same order as below.
		var buf [maxTapTable]tapRange
		taps := g.taps(buf[:0])
		for ci := range c {
			plane := x[ci*hw:][:hw]
			for t := range taps {
				r := ci*len(taps) + t
				col2imPlane(g, &taps[t], col[r*ld+colOff:][:ohw], plane)
			}
		}
		return
	}
	for ci := range c {
		for a := range kd {
			odLo, odHi := ValidRange(od, sd, a*dd-g.PadF, d)
			for i := range g.KH {
				for j := range g.KW {
					r := ((ci*kd+a)*g.KH+i)*g.KW + j
					row := col[r*ld+colOff:]
					for o := odLo; o < odHi; o++ {
						id := o*sd - g.PadF + a*dd
						t := g.tap(i, j)
						col2imPlane(g, &t, row[o*ohw:][:ohw], x[(ci*d+id)*hw:][:hw])
					}
				}
			}
		}
	}
}

func col2imPlane(g *Window, t *tapRange, row, plane []float32) {
	ohLo, ohHi, owLo, owHi := t.ohLo, t.ohHi, t.owLo, t.owHi
	if owLo >= owHi {
		return
	}
	for oh := ohLo; oh < ohHi; oh++ {
		ih := oh*g.SH + t.ih0
		dst := plane[ih*g.W : ih*g.W+g.W]
		src := row[oh*g.OW : oh*g.OW+g.OW]
		iw := owLo*g.SW + t.iw0
		if g.SW == 1 {
			dd := dst[iw : iw+owHi-owLo]
			s := src[owLo:owHi]
			for k := range dd {
				dd[k] += s[k]
			}
			continue
		}
		for ow := owLo; ow < owHi; ow++ {
			dst[iw] += src[ow]
			iw += g.SW
		}
	}
}

// Im2colPlan is Im2col and Col2im for one window, with the input index of
// every (tap, output pixel) of a 2-D window precomputed (see gathers for
// which windows): for small planes each tap's block is only a few short
// rows, and strided taps are a scalar strided copy, where the row-wise
// path's range checks, clears and copy calls cost more than the floats
// they move; through the table the columns are one gather per 8 floats
// (AVX2 VGATHERDPS) or a load per float. Other windows run Im2col and
// Col2im. Results are identical to
// them (Col2im adds in the same order). A plan is read-only after
// NewIm2colPlan and may be used by several goroutines at once.
type Im2colPlan struct {
	g   Window
	idx []int32 // (tap, output pixel) → input index in the plane, -1 in the padding; nil: no table
	// identity: a 1×1, stride-1, unpadded window whose output is its
	// input (pointwise convolutions): a plane's column row is the plane
	// itself, copied (Im2col) or added (Col2im) as one run.
	identity bool
	// side: 4 or 8 for a 3×3, pad-1, stride-1 window over 4×4 or 8×8
	// planes, whose columns the assembly builds from each plane's rows in
	// registers (im2col4, im2col8: one load per row, three shifted copies
	// stored) instead of one gather per 8 floats; 0 otherwise. Col2im
	// keeps the table.
	side int
}

// When a plan gathers through a table, measured with BenchmarkIm2col
// (table/rows, the same columns built both ways, 2026-11-27):
//   - with the AVX2 gather kernel (gatherRow): 4×4 stride 1 1.94, 8×8
//     stride 1 1.20, 16×16 and 32×32 stride 1 0.65 and 0.70 (a full-width
//     stride-1 tap block is one copy in the row-wise path), stride 2
//     32→16 2.54, 16→8 3.39, 8→4 3.46: a table for every window except
//     full-width stride-1 ones above 64 output pixels;
//   - Go loop (other CPUs, purego): 4×4 stride 1 1.16, 8×8 stride 1 0.46,
//     stride 2 16→8 1.43, 8→4 1.98, 32→16 1.03: up to 64 output pixels,
//     full-width stride-1 windows up to 16.
//
// im2colTableMax bounds a table's entries (4 bytes each).
const im2colTableMax = 1 << 20

// im2colGatherAll makes every 2-D plan gather (tests).
var im2colGatherAll = false

// gathers reports whether the plan of g, with ohw output pixels, uses a
// table.
func gathers(g *Window, ohw int) bool {
	if ohw <= 0 || g.KH*g.KW*ohw > im2colTableMax {
		return false
	}
	if im2colGatherAll {
		return true
	}
	blockCopy := g.SH == 1 && g.SW == 1 && g.OW == g.W
	if directAsm {
		return !blockCopy || ohw <= 64
	}
	return ohw <= 64 && (ohw <= 16 || !blockCopy)
}

// NewIm2colPlan returns the plan of window g (copied).
func NewIm2colPlan(g *Window) *Im2colPlan {
	p := &Im2colPlan{g: *g}
	d, kd, _, _, od := g.Depth()
	if d == 1 && kd == 1 && od == 1 && g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PadT == 0 && g.PadL == 0 &&
		g.OH == g.H && g.OW == g.W {
		p.identity = true
		return p
	}
	ohw := g.OH * g.OW
	if d != 1 || kd != 1 || od != 1 || !gathers(g, ohw) {
		return p
	}
	if directAsm && (g.H == 4 || g.H == 8) && g.W == g.H && g.OH == g.H && g.OW == g.W && g.KH == 3 && g.KW == 3 &&
		g.SH == 1 && g.SW == 1 && max(g.DH, 1) == 1 && max(g.DW, 1) == 1 && g.PadT == 1 && g.PadL == 1 {
		p.side = g.H
	}
	p.idx = make([]int32, 0, g.KH*g.KW*ohw)
	for i := range g.KH {
		for j := range g.KW {
			for oh := range g.OH {
				ih := oh*g.SH - g.PadT + i*g.DH
				for ow := range g.OW {
					iw := ow*g.SW - g.PadL + j*g.DW
					v := int32(-1)
					if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
						v = int32(ih*g.W + iw)
					}
					p.idx = append(p.idx, v)
				}
			}
		}
	}
	return p
}

// Im2col is Im2col(&window, c, x, col, ld, colOff).
func (p *Im2colPlan) Im2col(c int, x []float32, col []float32, ld, colOff int) {
	if p.identity {
		hw := p.g.H * p.g.W
		for ci := range c {
			copy(col[ci*ld+colOff:][:hw], x[ci*hw:(ci+1)*hw])
		}
		return
	}
	if p.idx == nil {
		Im2col(&p.g, c, x, col, ld, colOff)
		return
	}
	hw, ohw := p.g.H*p.g.W, p.g.OH*p.g.OW
	if p.side != 0 && c > 0 {
		_ = x[c*hw-1]
		_ = col[(c*9-1)*ld+colOff+ohw-1]
		if p.side == 4 {
			im2col4(c, &x[0], &col[colOff], ld)
		} else {
			im2col8(c, &x[0], &col[colOff], ld)
		}
		return
	}
	taps := len(p.idx) / ohw
	for ci := range c {
		plane := x[ci*hw : (ci+1)*hw]
		for t := range taps {
			row := col[(ci*taps+t)*ld+colOff:][:ohw]
			ix := p.idx[t*ohw : (t+1)*ohw]
			if directAsm {
				// Every index is below len(plane) (the table is built
				// from the window): one VGATHERDPS per 8 floats.
				gatherRow(ohw, &ix[0], &plane[0], &row[0])
				continue
			}
			for o, i := range ix {
				if i >= 0 {
					row[o] = plane[i]
				} else {
					row[o] = 0
				}
			}
		}
	}
}

// Col2im is Col2im(&window, c, col, ld, colOff, x).
func (p *Im2colPlan) Col2im(c int, col []float32, ld, colOff int, x []float32) {
	if p.identity {
		hw := p.g.H * p.g.W
		for ci := range c {
			plane := x[ci*hw : (ci+1)*hw]
			for o, v := range col[ci*ld+colOff:][:hw] {
				plane[o] += v
			}
		}
		return
	}
	if p.idx == nil {
		Col2im(&p.g, c, col, ld, colOff, x)
		return
	}
	hw, ohw := p.g.H*p.g.W, p.g.OH*p.g.OW
	taps := len(p.idx) / ohw
	for ci := range c {
		plane := x[ci*hw : (ci+1)*hw]
		for t := range taps {
			row := col[(ci*taps+t)*ld+colOff:][:ohw]
			for o, i := range p.idx[t*ohw : (t+1)*ohw] {
				if i >= 0 {
					plane[i] += row[o]
				}
			}
		}
	}
}

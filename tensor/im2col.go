package tensor

// Window is the geometry of a 2-D sliding window (convolution or pooling)
// over one image plane: input size H×W, kernel KH×KW, strides, dilations,
// the padding before each axis (PadT, PadL; padding after is implied by
// the output size) and the output size OH×OW. A 1-D window is the 2-D case
// with H = KH = OH = 1.
type Window struct {
	H, W       int
	KH, KW     int
	SH, SW     int
	DH, DW     int
	PadT, PadL int
	OH, OW     int
}

// owRange returns the output columns [lo, hi) whose input column
// ow*SW - PadL + off lies inside [0, W).
func (g *Window) owRange(off int) (lo, hi int) {
	return validRange(g.OW, g.SW, off-g.PadL, g.W)
}

func (g *Window) ohRange(off int) (lo, hi int) {
	return validRange(g.OH, g.SH, off-g.PadT, g.H)
}

// validRange returns the o in [0, n) with 0 <= o*s + base < size, as [lo, hi).
func validRange(n, s, base, size int) (lo, hi int) {
	// o*s + base >= 0  <=>  o >= ceil(-base/s)
	if base < 0 {
		lo = (-base + s - 1) / s
	}
	// o*s + base <= size-1  <=>  o <= floor((size-1-base)/s)
	if size-1-base < 0 {
		return 0, 0
	}
	hi = (size-1-base)/s + 1
	hi = min(hi, n)
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// Im2col writes the convolution columns of one image x (C planes of H×W)
// into col: row (c*KH + i)*KW + j, column colOff + oh*OW + ow holds
// x[c, oh*SH - PadT + i*DH, ow*SW - PadL + j*DW], or 0 in the padding. ld is
// col's row stride; rows have C*KH*KW entries.
func Im2col(g *Window, c int, x []float32, col []float32, ld, colOff int) {
	hw := g.H * g.W
	for ci := range c {
		plane := x[ci*hw : ci*hw+hw]
		for i := range g.KH {
			ohLo, ohHi := g.ohRange(i * g.DH)
			for j := range g.KW {
				row := col[((ci*g.KH+i)*g.KW+j)*ld+colOff:]
				row = row[:g.OH*g.OW]
				owLo, owHi := g.owRange(j * g.DW)
				clear(row[:ohLo*g.OW])
				clear(row[ohHi*g.OW:])
				for oh := ohLo; oh < ohHi; oh++ {
					ih := oh*g.SH - g.PadT + i*g.DH
					src := plane[ih*g.W : ih*g.W+g.W]
					dst := row[oh*g.OW : oh*g.OW+g.OW]
					clear(dst[:owLo])
					clear(dst[owHi:])
					iw := owLo*g.SW - g.PadL + j*g.DW
					if g.SW == 1 {
						copy(dst[owLo:owHi], src[iw:iw+owHi-owLo])
						continue
					}
					for ow := owLo; ow < owHi; ow++ {
						dst[ow] = src[iw]
						iw += g.SW
					}
				}
			}
		}
	}
}

// Col2im is the adjoint of Im2col: it adds each column entry back into the
// image position it was read from (padding entries are dropped).
func Col2im(g *Window, c int, col []float32, ld, colOff int, x []float32) {
	hw := g.H * g.W
	for ci := range c {
		plane := x[ci*hw : ci*hw+hw]
		for i := range g.KH {
			ohLo, ohHi := g.ohRange(i * g.DH)
			for j := range g.KW {
				row := col[((ci*g.KH+i)*g.KW+j)*ld+colOff:]
				owLo, owHi := g.owRange(j * g.DW)
				for oh := ohLo; oh < ohHi; oh++ {
					ih := oh*g.SH - g.PadT + i*g.DH
					dst := plane[ih*g.W : ih*g.W+g.W]
					src := row[oh*g.OW : oh*g.OW+g.OW]
					iw := owLo*g.SW - g.PadL + j*g.DW
					if g.SW == 1 {
						d := dst[iw : iw+owHi-owLo]
						s := src[owLo:owHi]
						for k := range d {
							d[k] += s[k]
						}
						continue
					}
					for ow := owLo; ow < owHi; ow++ {
						dst[iw] += src[ow]
						iw += g.SW
					}
				}
			}
		}
	}
}

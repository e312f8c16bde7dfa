package results

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

type plotFile struct {
	name, title string
	png         []byte
}

// palette is a fixed list of distinguishable colours (Tableau 10), one per
// method row in table order.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

var shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}}

func style(i int) (color.RGBA, draw.GlyphDrawer) {
	return palette[i%len(palette)], shapes[i%len(shapes)]
}

// groupPlots draws the group's figures: CC-Cert certified accuracy vs ε
// (mean over seeds, one line per method) and clean vs certified accuracy
// at ε=1e-3 (one point per seed).
func groupPlots(g *Group) ([]plotFile, error) {
	var out []plotFile
	title := fmt.Sprintf("%s, %s, sparsity %g", g.Data, g.Arch, g.Sparsity)
	if p, err := certCurve(g, title); err != nil {
		return nil, err
	} else if p != nil {
		out = append(out, *p)
	}
	if p, err := scatter(g, title); err != nil {
		return nil, err
	} else if p != nil {
		out = append(out, *p)
	}
	return out, nil
}

// curveEps is the ε grid of the CC-Cert curve when the cells hold
// per-image outcomes: 41 points, ten per decade from 1e-4 to 1 (1e-3
// among them).
func curveEps() []float64 {
	var eps []float64
	for i := range 41 {
		eps = append(eps, math.Pow(10, -4+float64(i)/10))
	}
	return eps
}

// certifiedAt is a cell's certified accuracy at ε: from its per-image
// outcomes when it has them (any ε), else from the reported levels.
func certifiedAt(c *Cell, eps float64) (float64, bool) {
	if hasPerImage(c) {
		n := 0
		imgs := c.Verify.CCCert.PerImage
		for _, s := range imgs {
			if s.CertifiedAt(eps) {
				n++
			}
		}
		return float64(n) / float64(len(imgs)), true
	}
	return ccAt(c, eps)
}

func certCurve(g *Group, title string) (*plotFile, error) {
	p := plot.New()
	p.Title.Text = "CC-Cert certified accuracy vs ε — " + title
	p.X.Label.Text = "ε (log scale)"
	p.Y.Label.Text = "certified accuracy"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	any := false
	var names []string
	for i, r := range g.Rows {
		// The fine grid when every cell of the row has per-image
		// outcomes, else the reported levels.
		fine := len(r.Cells) > 0
		var eps []float64
		for _, c := range r.Cells {
			fine = fine && hasPerImage(c)
			if cc := c.Verify.CCCert; cc != nil && len(cc.Eps) > 0 && eps == nil {
				eps = cc.Eps
			}
		}
		if fine {
			eps = curveEps()
		}
		var pts plotter.XYs
		for _, e := range eps {
			var sum float64
			n := 0
			for _, c := range r.Cells {
				if v, ok := certifiedAt(c, e); ok {
					sum += v
					n++
				}
			}
			if n > 0 && e > 0 {
				pts = append(pts, plotter.XY{X: e, Y: sum / float64(n)})
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("results: plot %s: %w", title, err)
		}
		col, shape := style(i)
		l.Color = col
		l.Width = vg.Points(1.5)
		if r.Dense() {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		// On the fine curve, markers at the reported levels only, so that
		// it stays readable.
		marks := pts
		if fine {
			marks = nil
			for _, pt := range pts {
				for _, e := range []float64{1e-4, 1e-3, 1e-2} {
					if near(pt.X, e) {
						marks = append(marks, pt)
					}
				}
			}
		}
		s, err := plotter.NewScatter(marks)
		if err != nil {
			return nil, fmt.Errorf("results: plot %s: %w", title, err)
		}
		s.Color, s.Shape = col, shape
		p.Add(s)
		p.Legend.Add(r.Method, l, s)
		names = append(names, r.Method)
		any = true
	}
	if !any {
		return nil, nil
	}
	png, err := renderLegendBeside(p, names, 6.5*vg.Inch, 4.5*vg.Inch)
	if err != nil {
		return nil, err
	}
	return &plotFile{name: g.Key() + "_cccert.png", title: "CC-Cert certified accuracy vs ε, " + title, png: png}, nil
}

func scatter(g *Group, title string) (*plotFile, error) {
	p := plot.New()
	p.Title.Text = "Clean vs certified accuracy (ε=1e-3) — " + title
	p.X.Label.Text = "clean accuracy"
	p.Y.Label.Text = "CC-Cert certified accuracy, ε=1e-3"
	p.Add(plotter.NewGrid())
	any := false
	var names []string
	// Axes span the points with a margin, within [0, 1].
	lo, hi := [2]float64{1, 1}, [2]float64{0, 0}
	for i, r := range g.Rows {
		var pts plotter.XYs
		for _, c := range r.Cells {
			y, ok := ccAt(c, 1e-3)
			if !ok {
				continue
			}
			x := c.Verify.Clean.Accuracy
			pts = append(pts, plotter.XY{X: x, Y: y})
			lo = [2]float64{min(lo[0], x), min(lo[1], y)}
			hi = [2]float64{max(hi[0], x), max(hi[1], y)}
		}
		if len(pts) == 0 {
			continue
		}
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("results: plot %s: %w", title, err)
		}
		col, shape := style(i)
		s.Color, s.Shape, s.Radius = col, shape, vg.Points(4)
		p.Add(s)
		p.Legend.Add(r.Method, s)
		names = append(names, r.Method)
		any = true
	}
	if !any {
		return nil, nil
	}
	p.X.Min, p.X.Max = max(0, lo[0]-0.05), min(1, hi[0]+0.05)
	p.Y.Min, p.Y.Max = max(0, lo[1]-0.05), min(1, hi[1]+0.05)
	png, err := renderLegendBeside(p, names, 6*vg.Inch, 4.5*vg.Inch)
	if err != nil {
		return nil, err
	}
	return &plotFile{name: g.Key() + "_scatter.png", title: "Clean vs certified accuracy, " + title, png: png}, nil
}

// renderLegendBeside draws p in a w×h area and its legend (entries named
// names) in a column to the right of it, so that no legend covers a curve
// or point however many methods a table has.
func renderLegendBeside(p *plot.Plot, names []string, w, h vg.Length) ([]byte, error) {
	leg := p.Legend
	p.Legend = plot.NewLegend()
	var lw vg.Length
	for _, n := range names {
		lw = max(lw, leg.TextStyle.Width(n))
	}
	lw += leg.ThumbnailWidth + 3*leg.Padding + vg.Points(12)
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w+lw, h), vgimg.UseDPI(96))}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, 0, -lw, 0, 0))
	leg.Top, leg.Left = true, true
	leg.YOffs = -p.Title.TextStyle.Height(p.Title.Text) - vg.Points(8)
	leg.Draw(draw.Crop(dc, w, 0, 0, 0))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("results: rendering plot: %w", err)
	}
	return buf.Bytes(), nil
}

package report

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot is one rendered figure.
type Plot struct {
	File    string // file name, e.g. "corruptions.png"
	Title   string
	Caption string
	PNG     []byte
}

var (
	modelColor    = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	baselineColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// Plots renders the figures the report's data supports, in a fixed order.
func Plots(r *Report) ([]Plot, error) {
	var out []Plot
	add := func(p *Plot, err error) error {
		if err != nil {
			return err
		}
		if p != nil {
			out = append(out, *p)
		}
		return nil
	}
	if err := add(corruptionPlot(r)); err != nil {
		return nil, err
	}
	if err := add(ccCertPlot(r)); err != nil {
		return nil, err
	}
	if err := add(smoothingPlot(r)); err != nil {
		return nil, err
	}
	if err := add(sparsityPlot(r)); err != nil {
		return nil, err
	}
	return out, nil
}

func render(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	p.Draw(draw.New(c))
	return encodePNG(c)
}

func encodePNG(c *vgimg.Canvas) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("report: rendering plot: %w", err)
	}
	return buf.Bytes(), nil
}

func line(xs, ys []float64, col color.Color, dashed bool) (*plotter.Line, *plotter.Scatter, error) {
	pts := make(plotter.XYs, len(xs))
	for i := range xs {
		pts[i].X, pts[i].Y = xs[i], ys[i]
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return nil, nil, fmt.Errorf("report: %w", err)
	}
	l.Color = col
	l.Width = vg.Points(1.5)
	s.Color = col
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	return l, s, nil
}

// corruptionPlot: accuracy vs severity, one panel per family, model solid
// and baseline dashed (mean over the family's corruptions).
func corruptionPlot(r *Report) (*Plot, error) {
	c := r.Corruptions
	if c == nil || len(c.Items) == 0 {
		return nil, nil
	}
	families := map[string]bool{}
	for _, it := range c.Items {
		families[it.Family] = true
	}
	names := make([]string, 0, len(families))
	for f := range families {
		names = append(names, f)
	}
	sort.Strings(names)
	cols := len(names)
	tiles := draw.Tiles{Rows: 1, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	w, h := vg.Length(cols)*2.6*vg.Inch, 2.8*vg.Inch
	canvas := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(canvas)
	cells := plot.Align([][]*plot.Plot{make([]*plot.Plot, cols)}, tiles, dc)
	for i, fam := range names {
		p := plot.New()
		p.Title.Text = fam
		p.X.Label.Text = "severity"
		if i == 0 {
			p.Y.Label.Text = "accuracy"
		}
		p.Y.Min, p.Y.Max = 0, 1
		sev, acc, base, hasBase := familyMeans(c, fam)
		l, s, err := line(sev, acc, modelColor, false)
		if err != nil {
			return nil, err
		}
		p.Add(l, s)
		if i == 0 {
			p.Legend.Add("model", l)
			p.Legend.Top = false
			p.Legend.Left = true
		}
		if hasBase {
			bl, bs, err := line(sev, base, baselineColor, true)
			if err != nil {
				return nil, err
			}
			p.Add(bl, bs)
			if i == 0 {
				p.Legend.Add("baseline", bl)
			}
		}
		p.Add(plotter.NewGrid())
		p.Draw(cells[0][i])
	}
	png, err := encodePNG(canvas)
	if err != nil {
		return nil, err
	}
	caption := "Mean accuracy over each family's corruptions per severity (CIFAR-10-C-style, regenerated in Go); solid: model, dashed: baseline."
	if len(c.Excluded) > 0 {
		caption += " Left out, as from the means: " + strings.Join(c.Excluded, ", ") + "."
	}
	return &Plot{File: "corruptions.png", Title: "Accuracy under corruptions",
		Caption: caption,
		PNG:     png}, nil
}

// familyMeans averages a family's items per severity.
func familyMeans(c *Corruptions, fam string) (sev, acc, base []float64, hasBase bool) {
	sum := map[int]float64{}
	bsum := map[int]float64{}
	n := map[int]int{}
	hasBase = true
	for _, it := range c.Items {
		if it.Family != fam || slices.Contains(c.Excluded, it.Name) {
			continue
		}
		sum[it.Severity] += it.Accuracy
		n[it.Severity]++
		if it.BaselineAccuracy == nil {
			hasBase = false
		} else {
			bsum[it.Severity] += *it.BaselineAccuracy
		}
	}
	keys := make([]int, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		sev = append(sev, float64(k))
		acc = append(acc, sum[k]/float64(n[k]))
		base = append(base, bsum[k]/float64(n[k]))
	}
	return sev, acc, base, hasBase
}

func ccCertPlot(r *Report) (*Plot, error) {
	c := r.CCCert
	if c == nil || len(c.Eps) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "CC-Cert certified accuracy (" + c.Transform + ")"
	p.X.Label.Text = "ε (log scale)"
	p.Y.Label.Text = "certified accuracy"
	p.X.Scale = plot.LogScale{}
	// One labelled tick per ε measured, and half a decade of room on each
	// side so the end points do not sit on the frame.
	var ticks []plot.Tick
	lo, hi := c.Eps[0], c.Eps[0]
	for _, e := range c.Eps {
		ticks = append(ticks, plot.Tick{Value: e, Label: fmt.Sprintf("%g", e)})
		lo, hi = min(lo, e), max(hi, e)
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = lo/3, hi*3
	setUnitY(p)
	if err := addCurves(p, c.Eps, c.Certified, c.Baseline); err != nil {
		return nil, err
	}
	png, err := render(p, 5*vg.Inch, 3.5*vg.Inch)
	if err != nil {
		return nil, err
	}
	return &Plot{File: "cc_cert.png", Title: "CC-Cert", PNG: png,
		Caption: fmt.Sprintf("Fraction of %d test images correctly classified and certified, i.e. with CC-Cert's bound on the probability that a random transform (%s) changes the prediction below ε (n=%d, k=%d, δ=%g); solid: model, dashed: baseline.",
			c.Images, c.Transform, c.N, c.K, c.Delta)}, nil
}

func smoothingPlot(r *Report) (*Plot, error) {
	s := r.Smoothing
	if s == nil || len(s.Radii) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Randomized smoothing, σ = %g", s.Sigma)
	p.X.Label.Text = "ℓ2 radius"
	p.Y.Label.Text = "certified accuracy"
	setUnitY(p)
	if len(s.CurveRadii) > 1 && len(s.CurveCertified) == len(s.CurveRadii) {
		// The fine curve as a line, the table's radii as points on it.
		for _, c := range []struct {
			ys, pts []float64
			col     color.Color
			dashed  bool
			name    string
		}{{s.CurveCertified, s.Certified, modelColor, false, "model"}, {s.CurveBaseline, s.Baseline, baselineColor, true, "baseline"}} {
			if len(c.ys) != len(s.CurveRadii) {
				continue
			}
			l, _, err := line(s.CurveRadii, c.ys, c.col, c.dashed)
			if err != nil {
				return nil, err
			}
			p.Add(l)
			p.Legend.Add(c.name, l)
			if len(c.pts) == len(s.Radii) {
				_, sc, err := line(s.Radii, c.pts, c.col, c.dashed)
				if err != nil {
					return nil, err
				}
				p.Add(sc)
			}
		}
		p.Add(plotter.NewGrid())
	} else if err := addCurves(p, s.Radii, s.Certified, s.Baseline); err != nil {
		return nil, err
	}
	// The largest radius these n and α can certify: a dotted vertical line.
	if rmax := MaxRadius(s); rmax > 0 {
		vl, err := plotter.NewLine(plotter.XYs{{X: rmax, Y: 0}, {X: rmax, Y: 1}})
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		vl.Color = color.Gray{Y: 0x80}
		vl.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
		p.Add(vl)
		p.Legend.Add(fmt.Sprintf("largest certifiable radius %.3f", rmax), vl)
	}
	png, err := render(p, 5*vg.Inch, 3.5*vg.Inch)
	if err != nil {
		return nil, err
	}
	return &Plot{File: "smoothing.png", Title: "Randomized smoothing", PNG: png,
		Caption: fmt.Sprintf("Certified accuracy of the smoothed classifier vs ℓ2 radius (pixels in [0,1]) on %d test images (n0=%d, n=%d, α=%g); ACR %.3f. "+
			"With n=%d and α=%g no radius above %.3f can be certified, whatever the model; solid: model, dashed: baseline.",
			s.Images, s.N0, s.N, s.Alpha, s.ACR, s.N, s.Alpha, MaxRadius(s))}, nil
}

// setUnitY fixes the y axis to accuracies in [0, 1] with headroom above
// 1 for the legend, which sits in the top right corner, so curves at 100%
// are not hidden under it.
func setUnitY(p *plot.Plot) {
	p.Y.Min, p.Y.Max = 0, 1.3
	p.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: 0.25}, {Value: 0.5, Label: "0.5"}, {Value: 0.75}, {Value: 1, Label: "1"}})
	p.Legend.Top = true
	p.Legend.Left = false
}

func addCurves(p *plot.Plot, xs, ys, base []float64) error {
	l, s, err := line(xs, ys, modelColor, false)
	if err != nil {
		return err
	}
	p.Add(l, s, plotter.NewGrid())
	p.Legend.Add("model", l)
	if len(base) == len(xs) {
		bl, bs, err := line(xs, base, baselineColor, true)
		if err != nil {
			return err
		}
		p.Add(bl, bs)
		p.Legend.Add("baseline", bl)
	}
	return nil
}

func sparsityPlot(r *Report) (*Plot, error) {
	ls := r.Model.Layers
	if len(ls) == 0 {
		return nil, nil
	}
	vals := make(plotter.Values, len(ls))
	labels := make([]string, len(ls))
	for i, l := range ls {
		vals[i] = l.Sparsity
		labels[i] = fmt.Sprint(i)
	}
	p := plot.New()
	p.Title.Text = "Sparsity per layer"
	p.X.Label.Text = "layer (graph order)"
	p.Y.Label.Text = "fraction of zero weights"
	p.Y.Min, p.Y.Max = 0, 1
	bars, err := plotter.NewBarChart(vals, vg.Points(max(2, 300/float64(len(ls)))))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	bars.Color = modelColor
	bars.LineStyle.Width = 0
	p.Add(bars, plotter.NewGrid())
	// Half a slot of room on each side so the outer bars stay inside the frame.
	p.X.Min, p.X.Max = -0.5, float64(len(ls))-0.5
	if len(ls) <= 30 {
		p.NominalX(labels...)
	}
	png, err := render(p, 6*vg.Inch, 3*vg.Inch)
	if err != nil {
		return nil, err
	}
	return &Plot{File: "sparsity.png", Title: "Sparsity per layer", PNG: png,
		Caption: fmt.Sprintf("Fraction of exact zeros in each of the %d Conv/Gemm/MatMul weights; overall %.2f%%.", len(ls), 100*r.Model.Sparsity)}, nil
}

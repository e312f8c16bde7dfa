package report

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// EpochPoint is one epoch of a training run.
type EpochPoint struct {
	Epoch         int     `json:"epoch"` // 1-based
	TrainLoss     float64 `json:"train_loss"`
	TrainAccuracy float64 `json:"train_accuracy"`
	// TestAccuracy is negative when the epoch was not evaluated.
	TestAccuracy float64 `json:"test_accuracy"`
}

// TrainingCurves draws training loss (left) and train/test accuracy
// (right) per epoch as one PNG.
func TrainingCurves(title string, pts []EpochPoint) ([]byte, error) {
	if len(pts) == 0 {
		return nil, fmt.Errorf("report: no epochs to plot")
	}
	var ep, loss, tracc, teacc, teep []float64
	for _, p := range pts {
		ep = append(ep, float64(p.Epoch))
		loss = append(loss, p.TrainLoss)
		tracc = append(tracc, p.TrainAccuracy)
		if p.TestAccuracy >= 0 {
			teep = append(teep, float64(p.Epoch))
			teacc = append(teacc, p.TestAccuracy)
		}
	}
	lp := plot.New()
	lp.Title.Text = title + ": training loss"
	lp.X.Label.Text = "epoch"
	lp.Y.Label.Text = "cross-entropy"
	l, s, err := line(ep, loss, modelColor, false)
	if err != nil {
		return nil, err
	}
	lp.Add(l, s, plotter.NewGrid())

	ap := plot.New()
	ap.Title.Text = title + ": accuracy"
	ap.X.Label.Text = "epoch"
	ap.Y.Label.Text = "top-1 accuracy"
	ap.Y.Max = 1
	tl, ts, err := line(ep, tracc, modelColor, false)
	if err != nil {
		return nil, err
	}
	ap.Add(tl, ts, plotter.NewGrid())
	ap.Legend.Add("train (augmented)", tl)
	if len(teacc) > 0 {
		vl, vs, err := line(teep, teacc, baselineColor, true)
		if err != nil {
			return nil, err
		}
		ap.Add(vl, vs)
		ap.Legend.Add("test", vl)
	}
	ap.Legend.Top = false
	ap.Legend.Left = false

	w, h := 9*vg.Inch, 3.2*vg.Inch
	canvas := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 2, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	cells := plot.Align([][]*plot.Plot{{lp, ap}}, tiles, dc)
	lp.Draw(cells[0][0])
	ap.Draw(cells[0][1])
	return encodePNG(canvas)
}

package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Transform draws one random transformation of an image: it reads x (one
// image, [0,1] pixels, in the layout of the data) and writes the
// transformed image into dst (same length; dst never aliases x). All its
// randomness comes from rng. The corrupt package provides CC-Cert's
// transform families in this form.
type Transform func(rng *rand.Rand, x, dst []float32)

// CCCertOptions configures CertifyCC. A nil *CCCertOptions or zero fields
// mean the defaults of the official code.
type CCCertOptions struct {
	N     int     // samples per group n (default 100)
	K     int     // groups k (default 10)
	Delta float64 // δ in (0, 1] (default 0.9)
	// Temperatures is the grid 𝒯 (default DefaultTemperatures()).
	Temperatures []float64
	// Epsilons are the levels reported by CertifiedAccuracyAt (default
	// DefaultCCEpsilons).
	Epsilons []float64
	// Batch is how many transformed images go through onnxruntime at once
	// (default 100).
	Batch int
	// Seed determines every random draw: sample i's transforms come from
	// rand.New(rand.NewPCG(Seed^stream, i)) for its data-set index i, so
	// results do not depend on batching or sharding.
	Seed uint64
	// Progress, when not nil, is called after each certified sample with
	// the number of samples done so far (for a progress bar).
	Progress func(done int)
	// Probabilities says that the classifier's outputs are probabilities
	// already (its graph ends in a Softmax): p is the output as it is.
	// Otherwise p = softmax(output), which would squash probabilities
	// towards uniform and shrink both the gap d and every Z.
	Probabilities bool
	// Grid, when not nil, applies the transform at point i of a
	// deterministic parameter grid of GridPoints points (corrupt's
	// Transform.GridSampler): every sample is also classified at each
	// point, for the official script's empirical accuracy (CSAM-SPEC
	// §4.1 step 7).
	Grid       func(i int, x, dst []float32)
	GridPoints int
}

func (o *CCCertOptions) withDefaults() (CCCertOptions, error) {
	r := CCCertOptions{N: DefaultCCN, K: DefaultCCK, Delta: DefaultCCDelta, Batch: 100}
	if o != nil {
		if o.N != 0 {
			r.N = o.N
		}
		if o.K != 0 {
			r.K = o.K
		}
		if o.Delta != 0 {
			r.Delta = o.Delta
		}
		if o.Batch != 0 {
			r.Batch = o.Batch
		}
		r.Seed = o.Seed
		r.Progress = o.Progress
		r.Probabilities = o.Probabilities
		r.Grid, r.GridPoints = o.Grid, o.GridPoints
		r.Temperatures = slices.Clone(o.Temperatures)
		r.Epsilons = slices.Clone(o.Epsilons)
	}
	if r.Temperatures == nil {
		r.Temperatures = DefaultTemperatures()
	}
	if r.Epsilons == nil {
		r.Epsilons = slices.Clone(DefaultCCEpsilons)
	}
	switch {
	case r.N < 1 || r.K < 1:
		return r, fmt.Errorf("runtime: CC-Cert: n = %d and k = %d, want both ≥ 1", r.N, r.K)
	case !(r.Delta > 0 && r.Delta <= 1):
		return r, fmt.Errorf("runtime: CC-Cert: δ = %v, want 0 < δ ≤ 1", r.Delta)
	case r.Batch < 1:
		return r, fmt.Errorf("runtime: CC-Cert: batch = %d, want ≥ 1", r.Batch)
	case len(r.Temperatures) == 0:
		return r, fmt.Errorf("runtime: CC-Cert: empty temperature grid")
	case (r.Grid == nil) != (r.GridPoints == 0) || r.GridPoints < 0:
		return r, fmt.Errorf("runtime: CC-Cert: a grid function needs its number of points (%d)", r.GridPoints)
	}
	for _, t := range r.Temperatures {
		if !(t > 0) || math.IsInf(t, 0) {
			return r, fmt.Errorf("runtime: CC-Cert: temperature %v, want finite and > 0", t)
		}
	}
	for _, e := range r.Epsilons {
		if !(e > 0 && e <= 1) {
			return r, fmt.Errorf("runtime: CC-Cert: ε = %v, want 0 < ε ≤ 1", e)
		}
	}
	return r, nil
}

// CCSample is the CC-Cert outcome for one test image.
type CCSample struct {
	Index   int     `json:"index"` // position in the data
	Label   int     `json:"label"`
	Pred    int     `json:"pred"`
	Correct bool    `json:"correct"`
	D       float64 `json:"d"`     // (p₁ − p₂)/2 of the clean image
	Bound   float64 `json:"bound"` // b̂, an upper bound on P(prediction changes)
	// MaxZ is the largest ‖p(x) − p(T(x))‖_∞ seen: a diagnostic.
	MaxZ float64 `json:"max_z"`
	// GridWrong counts the grid transforms (CCCertOptions.Grid) the
	// prediction is wrong on; nil without a grid.
	GridWrong *int `json:"grid_wrong,omitempty"`
}

// EmpiricallyCorrect reports whether the sample is classified correctly
// on the clean image and at every point of the transform grid (false
// without a grid).
func (s CCSample) EmpiricallyCorrect() bool {
	return s.Correct && s.GridWrong != nil && *s.GridWrong == 0
}

// CertifiedAt reports whether the sample is certified at level ε: correct
// and b̂ < ε.
func (s CCSample) CertifiedAt(eps float64) bool { return s.Correct && s.Bound < eps }

// CCCertResult is CC-Cert over a data set.
type CCCertResult struct {
	Seed         uint64    `json:"seed"`
	N            int       `json:"n"`
	K            int       `json:"k"`
	Delta        float64   `json:"delta"`
	Temperatures int       `json:"temperatures"` // grid size
	TMin         float64   `json:"t_min"`
	TMax         float64   `json:"t_max"`
	Epsilons     []float64 `json:"epsilons"`
	// Probabilities: the outputs were taken as probabilities
	// (CCCertOptions.Probabilities).
	Probabilities bool `json:"probabilities,omitempty"`
	// GridPoints is the size of the transform grid every sample was also
	// classified on (0: none).
	GridPoints int        `json:"grid_points,omitempty"`
	Samples    []CCSample `json:"samples"`
}

// EmpiricalAccuracy counts the samples correct on the clean image and at
// every grid transform (the official script's empirical accuracy).
func (r *CCCertResult) EmpiricalAccuracy() Eval {
	e := Eval{N: len(r.Samples)}
	for _, s := range r.Samples {
		if s.EmpiricallyCorrect() {
			e.Correct++
		}
	}
	return e
}

// Clean is the clean accuracy of the certified samples.
func (r *CCCertResult) Clean() Eval {
	e := Eval{N: len(r.Samples)}
	for _, s := range r.Samples {
		if s.Correct {
			e.Correct++
		}
	}
	return e
}

// CertifiedAt counts the samples certified at level ε.
func (r *CCCertResult) CertifiedAt(eps float64) Eval {
	e := Eval{N: len(r.Samples)}
	for _, s := range r.Samples {
		if s.CertifiedAt(eps) {
			e.Correct++
		}
	}
	return e
}

// CertifyCC runs CC-Cert (Pautov et al., AAAI 2022; CSAM-SPEC.md §4.1) on
// every image of data with the classifier s: p⁰ = softmax(s(x)) (s(x)
// itself with opts.Probabilities),
// d = (p₁ − p₂)/2, then k·n transformed copies x_T = transform(x) (clipped to
// [0, 1]) give Z_i = ‖p⁰ − p(x_T)‖_∞ and the bound CCCertBound. Transformed
// images run through onnxruntime opts.Batch at a time. Each sample's
// transforms draw from its own source seeded by opts.Seed and the sample's
// index, so the same seed gives the same bounds whatever the batch size or
// sharding.
func CertifyCC(ctx context.Context, s *Session, data Batches, transform Transform, opts *CCCertOptions) (*CCCertResult, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if transform == nil {
		return nil, fmt.Errorf("runtime: CC-Cert: a transform is required")
	}
	res := &CCCertResult{
		Seed: o.Seed, N: o.N, K: o.K, Delta: o.Delta, Temperatures: len(o.Temperatures),
		TMin: slices.Min(o.Temperatures), TMax: slices.Max(o.Temperatures),
		Epsilons: o.Epsilons, Probabilities: o.Probabilities, GridPoints: o.GridPoints,
	}
	var c *classifier
	var xt []float32 // transformed images of one chunk
	var p0, p []float64
	z := make([]float64, o.N*o.K)
	for b, err := range data {
		if err != nil {
			return nil, err
		}
		if err := checkBatch(b); err != nil {
			return nil, fmt.Errorf("runtime: %s: batch at sample %d: %w", s.name, len(res.Samples), err)
		}
		if c == nil {
			if c, err = newClassifier(s, b.Images.Shape[1:]); err != nil {
				return nil, err
			}
			xt = make([]float32, o.Batch*c.per)
		}
		clean, err := c.logits(ctx, b.Images.F32, len(b.Labels), o.Batch)
		if err != nil {
			return nil, err
		}
		if err := c.checkLabels(b.Labels, len(res.Samples)); err != nil {
			return nil, err
		}
		K := c.classes
		if len(p0) != K {
			p0, p = make([]float64, K), make([]float64, K)
		}
		for i, label := range b.Labels {
			x := b.Images.F32[i*c.per : (i+1)*c.per]
			lg := clean[i*K : (i+1)*K]
			o.probs(p0, lg)
			smp := CCSample{Index: b.sampleIndex(i, len(res.Samples)), Label: label, Pred: argmax(lg)}
			rng := sampleRNG(o.Seed, streamCCCert, smp.Index)
			smp.Correct = smp.Pred == label
			smp.D = halfGap(p0)
			err := c.transformed(ctx, xt, o.N*o.K, o.Batch, func(_ int, dst []float32) { transform(rng, x, dst) }, func(j int, row []float32) {
				o.probs(p, row)
				z[j] = linfDist(p0, p)
				smp.MaxZ = math.Max(smp.MaxZ, z[j])
			})
			if err != nil {
				return nil, err
			}
			smp.Bound = CCCertBound(z, smp.D, o.N, o.K, o.Delta, o.Temperatures)
			if o.Grid != nil {
				wrong := 0
				err := c.transformed(ctx, xt, o.GridPoints, o.Batch, func(j int, dst []float32) { o.Grid(j, x, dst) }, func(_ int, row []float32) {
					if argmax(row) != label {
						wrong++
					}
				})
				if err != nil {
					return nil, err
				}
				smp.GridWrong = &wrong
			}
			res.Samples = append(res.Samples, smp)
			if o.Progress != nil {
				o.Progress(len(res.Samples))
			}
		}
	}
	return res, nil
}

// transformed classifies n transformed copies of one image, batch at a
// time through xt (batch images long): fill writes copy j into dst, which
// is then clipped to [0, 1], and row receives copy j's output row.
func (c *classifier) transformed(ctx context.Context, xt []float32, n, batch int, fill func(j int, dst []float32), row func(j int, out []float32)) error {
	K := c.classes
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		for j := 0; j < hi-lo; j++ {
			dst := xt[j*c.per : (j+1)*c.per]
			fill(lo+j, dst)
			clip01(dst)
		}
		out, err := c.logits(ctx, xt[:(hi-lo)*c.per], hi-lo, batch)
		if err != nil {
			return err
		}
		for j := 0; j < hi-lo; j++ {
			row(lo+j, out[j*K:(j+1)*K])
		}
	}
	return nil
}

// probs writes the class probabilities of one output row into dst:
// softmax(row), or the row itself with Probabilities.
func (o *CCCertOptions) probs(dst []float64, row []float32) {
	if !o.Probabilities {
		softmax(dst, row)
		return
	}
	for i, v := range row {
		dst[i] = float64(v)
	}
}

// halfGap is (p₁ − p₂)/2 for the two largest probabilities (0 with one
// class, which can never be certified against another).
func halfGap(p []float64) float64 {
	p1, p2 := math.Inf(-1), math.Inf(-1)
	for _, v := range p {
		switch {
		case v > p1:
			p1, p2 = v, p1
		case v > p2:
			p2 = v
		}
	}
	if math.IsInf(p2, -1) || math.IsNaN(p1-p2) {
		return 0
	}
	return (p1 - p2) / 2
}

// linfDist is ‖a − b‖_∞ for probability vectors, which lies in [0, 1]. A
// NaN (a model that produced NaN logits) counts as the worst case, 1: the
// prediction is assumed to change, and results stay encodable as JSON.
func linfDist(a, b []float64) float64 {
	var m float64
	for i := range a {
		d := math.Abs(a[i] - b[i])
		if d != d {
			return 1
		}
		m = max(m, d)
	}
	return m
}

func clip01(x []float32) {
	for i, v := range x {
		switch {
		case v < 0:
			x[i] = 0
		case v > 1:
			x[i] = 1
		case v != v:
			x[i] = 0
		}
	}
}

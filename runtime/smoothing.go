package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// Abstain is the class PredictSmoothed and CERTIFY return when they abstain.
const Abstain = -1

// SmoothingOptions configures randomized smoothing (CSAM-SPEC.md §4.2). A
// nil *SmoothingOptions or zero fields mean the defaults of Cohen et al.'s
// certify.py.
type SmoothingOptions struct {
	Sigma float64 // noise standard deviation on [0,1] pixels (default 0.25)
	N0    int     // selection samples (default 100)
	N     int     // estimation samples (default 100,000)
	Alpha float64 // failure probability (default 0.001)
	// Batch is how many noisy copies go through onnxruntime at once
	// (default 1000, as certify.py).
	Batch int
	// Seed determines the noise of CertifySmoothing: sample i draws from
	// rand.New(rand.NewPCG(Seed^stream, i)) for its data-set index i, so
	// results do not depend on batching or sharding. The single-image
	// functions take their random source directly instead.
	Seed uint64
	// Progress, when not nil, is called by CertifySmoothing after each
	// sample with the number of samples done so far.
	Progress func(done int)
}

func (o *SmoothingOptions) withDefaults() (SmoothingOptions, error) {
	r := SmoothingOptions{Sigma: 0.25, N0: 100, N: 100_000, Alpha: 0.001, Batch: 1000}
	if o != nil {
		if o.Sigma != 0 {
			r.Sigma = o.Sigma
		}
		if o.N0 != 0 {
			r.N0 = o.N0
		}
		if o.N != 0 {
			r.N = o.N
		}
		if o.Alpha != 0 {
			r.Alpha = o.Alpha
		}
		if o.Batch != 0 {
			r.Batch = o.Batch
		}
		r.Seed = o.Seed
		r.Progress = o.Progress
	}
	switch {
	case !(r.Sigma > 0) || math.IsInf(r.Sigma, 0):
		return r, fmt.Errorf("runtime: smoothing: σ = %v, want finite and > 0", r.Sigma)
	case r.N0 < 1 || r.N < 1:
		return r, fmt.Errorf("runtime: smoothing: n0 = %d and n = %d, want both ≥ 1", r.N0, r.N)
	case !(r.Alpha > 0 && r.Alpha < 1):
		return r, fmt.Errorf("runtime: smoothing: α = %v, want 0 < α < 1", r.Alpha)
	case r.Batch < 1:
		return r, fmt.Errorf("runtime: smoothing: batch = %d, want ≥ 1", r.Batch)
	}
	return r, nil
}

// imageClassifier validates a single image [C,H,W] or [1,C,H,W] for s.
func imageClassifier(s *Session, image *tensor.Tensor) (*classifier, []float32, error) {
	if image == nil || image.DType != tensor.Float32 || len(image.F32) != image.Len() || len(image.Shape) == 0 {
		return nil, nil, fmt.Errorf("runtime: %s: want one float32 image, got %v", s.name, image)
	}
	sample := image.Shape
	if len(s.inputs) == 1 && len(s.inputs[0].Shape) == len(sample) && sample[0] == 1 {
		sample = sample[1:] // given with its batch dimension
	}
	c, err := newClassifier(s, sample)
	return c, image.F32, err
}

// SampleUnderNoise draws num copies of image + σ·N(0, I) (no clipping:
// the noise acts on [0,1] pixels before the model's normalization, as in
// Cohen et al.) and counts the classifier's top-1 votes per class. It runs
// batch copies at a time; all randomness comes from rng.
func SampleUnderNoise(ctx context.Context, s *Session, image *tensor.Tensor, num int, sigma float64, batch int, rng *rand.Rand) ([]int, error) {
	c, x, err := imageClassifier(s, image)
	if err != nil {
		return nil, err
	}
	return c.sampleUnderNoise(ctx, x, num, sigma, batch, rng)
}

func (c *classifier) sampleUnderNoise(ctx context.Context, x []float32, num int, sigma float64, batch int, rng *rand.Rand) ([]int, error) {
	if num < 0 || batch < 1 || !(sigma >= 0) {
		return nil, fmt.Errorf("runtime: %s: sample under noise: num = %d, batch = %d, σ = %v", c.s.name, num, batch, sigma)
	}
	var counts []int
	if c.classes > 0 {
		counts = make([]int, c.classes)
	}
	buf := make([]float32, min(batch, max(num, 1))*c.per)
	for lo := 0; lo < num; lo += batch {
		hi := min(lo+batch, num)
		for j := 0; j < hi-lo; j++ {
			dst := buf[j*c.per : (j+1)*c.per]
			for i, v := range x {
				dst[i] = v + float32(sigma*rng.NormFloat64())
			}
		}
		out, err := c.logits(ctx, buf[:(hi-lo)*c.per], hi-lo, batch)
		if err != nil {
			return nil, err
		}
		if counts == nil {
			counts = make([]int, c.classes)
		}
		for j := 0; j < hi-lo; j++ {
			if k := argmax(out[j*c.classes : (j+1)*c.classes]); k >= 0 {
				counts[k]++
			}
		}
	}
	if counts == nil { // num == 0 on a model of unknown class count
		counts = []int{}
	}
	return counts, nil
}

// SmoothCert is CERTIFY's answer for one image.
type SmoothCert struct {
	Pred   int     `json:"pred"`   // ĉ_A, or Abstain
	NA     int     `json:"n_a"`    // votes for ĉ_A among the n estimation samples
	PA     float64 `json:"p_a"`    // Clopper–Pearson lower bound on P(ĉ_A)
	Radius float64 `json:"radius"` // σ·Φ⁻¹(p̲_A), 0 when abstaining
}

// CertifySmoothed is CERTIFY (Cohen, Rosenfeld, Kolter 2019, Algorithm
// "certify"; CSAM-SPEC.md §4.2): guess the top class from n0 noisy samples,
// count its votes nA among n fresh ones, bound its probability below by
// p̲_A = ClopperPearsonLower(nA, n, α) and certify the radius σ·Φ⁻¹(p̲_A), or
// abstain when p̲_A < 0.5.
func CertifySmoothed(ctx context.Context, s *Session, image *tensor.Tensor, rng *rand.Rand, opts *SmoothingOptions) (SmoothCert, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return SmoothCert{}, err
	}
	c, x, err := imageClassifier(s, image)
	if err != nil {
		return SmoothCert{}, err
	}
	return c.certify(ctx, x, rng, o)
}

func (c *classifier) certify(ctx context.Context, x []float32, rng *rand.Rand, o SmoothingOptions) (SmoothCert, error) {
	counts0, err := c.sampleUnderNoise(ctx, x, o.N0, o.Sigma, o.Batch, rng)
	if err != nil {
		return SmoothCert{}, err
	}
	cA := maxIndex(counts0)
	counts, err := c.sampleUnderNoise(ctx, x, o.N, o.Sigma, o.Batch, rng)
	if err != nil {
		return SmoothCert{}, err
	}
	r := SmoothCert{Pred: cA, NA: counts[cA]}
	r.PA = ClopperPearsonLower(r.NA, o.N, o.Alpha)
	if r.PA < 0.5 {
		r.Pred = Abstain
		return r, nil
	}
	r.Radius = SmoothingRadius(o.Sigma, r.PA)
	return r, nil
}

// PredictSmoothed is PREDICT (Cohen et al. 2019): count the votes of n
// noisy samples and return the top class unless the two-sided binomial
// test of its count nA against the runner-up's nB (nA successes in nA + nB
// trials, p = 1/2) has a p-value above α, in which case it abstains.
// opts.N0 is not used.
func PredictSmoothed(ctx context.Context, s *Session, image *tensor.Tensor, rng *rand.Rand, opts *SmoothingOptions) (int, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Abstain, err
	}
	c, x, err := imageClassifier(s, image)
	if err != nil {
		return Abstain, err
	}
	counts, err := c.sampleUnderNoise(ctx, x, o.N, o.Sigma, o.Batch, rng)
	if err != nil {
		return Abstain, err
	}
	top := maxIndex(counts)
	nA := counts[top]
	nB := 0
	for k, v := range counts {
		if k != top && v > nB {
			nB = v
		}
	}
	if BinomTest(nA, nA+nB, 0.5) > o.Alpha {
		return Abstain, nil
	}
	return top, nil
}

// maxIndex is the first index of the largest count (numpy's argmax).
func maxIndex(v []int) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// SmoothSample is CERTIFY's outcome for one test image.
type SmoothSample struct {
	Index   int  `json:"index"`
	Label   int  `json:"label"`
	Correct bool `json:"correct"` // Pred == Label (never when abstaining)
	SmoothCert
}

// SmoothingResult is randomized smoothing over a data set.
type SmoothingResult struct {
	Seed    uint64         `json:"seed"`
	Sigma   float64        `json:"sigma"`
	N0      int            `json:"n0"`
	N       int            `json:"n"`
	Alpha   float64        `json:"alpha"`
	Samples []SmoothSample `json:"samples"`
}

// CertifiedAt counts the samples whose smoothed prediction is correct with
// a certified radius of at least r (abstentions count as wrong).
func (r *SmoothingResult) CertifiedAt(radius float64) Eval {
	e := Eval{N: len(r.Samples)}
	for _, s := range r.Samples {
		if s.Correct && s.Radius >= radius {
			e.Correct++
		}
	}
	return e
}

// ACR is the average certified radius: the mean over samples of the radius
// when correct and 0 otherwise (Zhai et al. 2020).
func (r *SmoothingResult) ACR() float64 {
	if len(r.Samples) == 0 {
		return 0
	}
	var sum float64
	for _, s := range r.Samples {
		if s.Correct {
			sum += s.Radius
		}
	}
	return sum / float64(len(r.Samples))
}

// MaxRadius is the largest radius this configuration can certify.
func (r *SmoothingResult) MaxRadius() float64 { return MaxSmoothingRadius(r.Sigma, r.N, r.Alpha) }

// DefaultRadii are the radii at which certified accuracy is usually
// reported (certify.py's analysis uses steps of 0.25).
var DefaultRadii = []float64{0, 0.25, 0.5, 0.75, 1.0}

// CertifySmoothing runs CERTIFY on every image of data; sample i's noise
// comes from its own source seeded by opts.Seed and i.
func CertifySmoothing(ctx context.Context, s *Session, data Batches, opts *SmoothingOptions) (*SmoothingResult, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	res := &SmoothingResult{Seed: o.Seed, Sigma: o.Sigma, N0: o.N0, N: o.N, Alpha: o.Alpha}
	var c *classifier
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
		}
		for i, label := range b.Labels {
			x := b.Images.F32[i*c.per : (i+1)*c.per]
			idx := b.sampleIndex(i, len(res.Samples))
			cert, err := c.certify(ctx, x, sampleRNG(o.Seed, streamSmoothing, idx), o)
			if err != nil {
				return nil, err
			}
			if err := c.checkLabels([]int{label}, len(res.Samples)); err != nil {
				return nil, err
			}
			res.Samples = append(res.Samples, SmoothSample{
				Index: idx, Label: label,
				Correct: cert.Pred != Abstain && cert.Pred == label, SmoothCert: cert,
			})
			if o.Progress != nil {
				o.Progress(len(res.Samples))
			}
		}
	}
	return res, nil
}

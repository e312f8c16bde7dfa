package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
)

// Schema identifies the report.json format. It changes only when a field
// changes meaning or is removed; new fields may be added.
const Schema = "csam-onnx/report/v1"

// Report is everything verify measured on one exported model, optionally
// side by side with a baseline (usually the dense model it came from).
type Report struct {
	Schema     string `json:"schema"`
	Tool       string `json:"tool"`
	Command    string `json:"command"`
	ORTVersion string `json:"onnxruntime_version"`
	Seed       uint64 `json:"seed"`
	Data       string `json:"data"`
	// DataNote says what the data is ("CIFAR-10 (JPEG q75 copy)", subset).
	DataNote string `json:"data_note,omitempty"`

	Model    Model  `json:"model"`
	Baseline *Model `json:"baseline,omitempty"`

	Clean       Clean        `json:"clean"`
	Corruptions *Corruptions `json:"corruptions,omitempty"`
	CCCert      *CCCert      `json:"cc_cert,omitempty"`
	Smoothing   *Smoothing   `json:"smoothing,omitempty"`
}

// Model describes one ONNX file.
type Model struct {
	Path      string  `json:"path"`
	SHA256    string  `json:"sha256"`
	Bytes     int64   `json:"bytes"`
	GzipBytes int64   `json:"gzip_bytes"`
	Params    int64   `json:"params"`
	Nonzero   int64   `json:"nonzero_params"`
	Sparsity  float64 `json:"sparsity"` // over prunable (Conv/Gemm/MatMul) weights
	Layers    []Layer `json:"layers"`
	// LatencyMs is the median latency in onnxruntime per batch size.
	LatencyMs map[string]float64 `json:"latency_ms,omitempty"`
	// Metadata is the model's csam.* metadata (method, seed, ...).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Layer is one prunable weight tensor.
type Layer struct {
	Name     string  `json:"name"`
	Params   int64   `json:"params"`
	Sparsity float64 `json:"sparsity"`
}

// Clean is the accuracy on unmodified test images.
type Clean struct {
	Images           int      `json:"images"`
	Accuracy         float64  `json:"accuracy"`
	BaselineAccuracy *float64 `json:"baseline_accuracy,omitempty"`
}

// Corruptions is the CIFAR-10-C-style sweep (regenerated in Go).
type Corruptions struct {
	Images     int              `json:"images"`
	Severities []int            `json:"severities"`
	Items      []CorruptionItem `json:"items"`
	// Mean is the mean accuracy over the benchmark corruptions and
	// severities included; MCE the unnormalized mean corruption error
	// (mean over corruptions of the mean error over severities).
	Mean         float64  `json:"mean_accuracy"`
	MCE          float64  `json:"mce_unnormalized"`
	BaselineMean *float64 `json:"baseline_mean_accuracy,omitempty"`
	BaselineMCE  *float64 `json:"baseline_mce_unnormalized,omitempty"`
	// RelativeMCE is the model's unnormalized mCE divided by the
	// baseline's (a ratio of means over corruptions; despite the JSON
	// name, not Hendrycks & Dietterich's "relative mCE", which is
	// RelativeMCEVsBaseline).
	RelativeMCE *float64 `json:"relative_mce,omitempty"`
	// MCEVsBaseline is Hendrycks & Dietterich's mCE with the baseline as
	// the reference model: the mean over the included corruptions c of
	// Σ_s E^model_{s,c} / Σ_s E^baseline_{s,c} (below 1: more robust
	// than the baseline). RelativeMCEVsBaseline is their relative mCE:
	// the same with every error taken in excess of its model's clean
	// error. Unset when a baseline makes no (excess) errors under some
	// corruption.
	MCEVsBaseline         *float64 `json:"mce_vs_baseline,omitempty"`
	RelativeMCEVsBaseline *float64 `json:"relative_mce_vs_baseline,omitempty"`
	// Excluded lists corruptions measured but left out of the means
	// (for example frost, whose textures are procedural here).
	Excluded []string `json:"excluded_from_means,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// CorruptionItem is the accuracy under one corruption at one severity.
type CorruptionItem struct {
	Name             string   `json:"name"`
	Family           string   `json:"family"`
	Severity         int      `json:"severity"`
	Accuracy         float64  `json:"accuracy"`
	BaselineAccuracy *float64 `json:"baseline_accuracy,omitempty"`
}

// CCCert is the CC-Cert certified accuracy (Pautov et al. 2022) per ε.
type CCCert struct {
	Transform string    `json:"transform"`
	Images    int       `json:"images"`
	N         int       `json:"n"`
	K         int       `json:"k"`
	Delta     float64   `json:"delta"`
	Eps       []float64 `json:"eps"`
	Certified []float64 `json:"certified_accuracy"`
	Baseline  []float64 `json:"baseline_certified_accuracy,omitempty"`
	// PerImage is each certified image's outcome, in test-set order: two
	// models verified with the same seed and subset are compared image by
	// image from it (a paired test has more power than seed spreads).
	PerImage []CCImage `json:"per_image,omitempty"`
	// BaselinePerImage is the same for the baseline model, on the same
	// images.
	BaselinePerImage []CCImage `json:"baseline_per_image,omitempty"`
	// Empirical is the official script's empirical accuracy: the share of
	// the images classified correctly clean and at every one of the
	// GridPoints transforms of a deterministic parameter grid (an upper
	// bound on robustness, where certification is a lower one).
	GridPoints        int      `json:"grid_points,omitempty"`
	Empirical         *float64 `json:"empirical_accuracy,omitempty"`
	BaselineEmpirical *float64 `json:"baseline_empirical_accuracy,omitempty"`
}

// Pairs counts two models' CC-Cert outcomes on the images both were
// certified on: Common images, certified by Both, by OnlyA, by OnlyB.
type Pairs struct{ Common, Both, OnlyA, OnlyB int }

// Paired matches a and b by test-set index and counts their outcomes at
// level eps.
func Paired(a, b []CCImage, eps float64) Pairs {
	cb := make(map[int]bool, len(b))
	for _, s := range b {
		cb[s.Index] = s.CertifiedAt(eps)
	}
	var p Pairs
	for _, s := range a {
		y, ok := cb[s.Index]
		if !ok {
			continue
		}
		p.Common++
		switch x := s.CertifiedAt(eps); {
		case x && y:
			p.Both++
		case x:
			p.OnlyA++
		case y:
			p.OnlyB++
		}
	}
	return p
}

// SignTest is the two-sided exact sign test (McNemar's exact test) of a
// discordant pairs against b: min(1, 2·P(X ≤ min(a, b))) with X ~ Bin(a+b,
// 1/2), the chance of a split at least this uneven if neither side
// certified more often.
func SignTest(a, b int) float64 {
	n := a + b
	if n == 0 {
		return 1
	}
	k := min(a, b)
	sum := new(big.Int)
	for i := 0; i <= k; i++ {
		sum.Add(sum, new(big.Int).Binomial(int64(n), int64(i)))
	}
	p, _ := new(big.Float).Quo(new(big.Float).SetInt(sum), new(big.Float).SetMantExp(big.NewFloat(1), n)).Float64()
	return math.Min(1, 2*p)
}

// CCImage is one image's CC-Cert outcome: it is certified at level ε when
// the clean prediction is correct and Bound < ε.
type CCImage struct {
	Index   int     `json:"index"` // position in the certified images (--cert-subset spreads them over the test set, in its order)
	Label   int     `json:"label"`
	Pred    int     `json:"pred"`
	Correct bool    `json:"correct"`
	Bound   float64 `json:"bound"` // b̂, an upper bound on P(prediction changes under the transform)
}

// CertifiedAt reports whether the image is certified at level ε.
func (c CCImage) CertifiedAt(eps float64) bool { return c.Correct && c.Bound < eps }

// Smoothing is randomized-smoothing certification (Cohen et al. 2019).
type Smoothing struct {
	Sigma     float64   `json:"sigma"`
	N0        int       `json:"n0"`
	N         int       `json:"n"`
	Alpha     float64   `json:"alpha"`
	Images    int       `json:"images"`
	Radii     []float64 `json:"radii"`
	Certified []float64 `json:"certified_accuracy"`
	ACR       float64   `json:"acr"`
	Abstained int       `json:"abstained"`
	Baseline  []float64 `json:"baseline_certified_accuracy,omitempty"`
	// BaselineACR is the baseline's average certified radius.
	BaselineACR *float64 `json:"baseline_acr,omitempty"`
	// CurveRadii, CurveCertified and CurveBaseline sample the certified
	// accuracy on a fine grid from 0 to just past the largest certifiable
	// radius, for the plot; the table rows use Radii.
	CurveRadii     []float64 `json:"curve_radii,omitempty"`
	CurveCertified []float64 `json:"curve_certified_accuracy,omitempty"`
	CurveBaseline  []float64 `json:"curve_baseline_certified_accuracy,omitempty"`
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	r.Schema = Schema
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sanitize(r))
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(r io.Reader) (*Report, error) {
	var rep Report
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("report: not a csam-onnx report: %w", err)
	}
	if rep.Schema != Schema {
		return nil, fmt.Errorf("report: schema %q, want %q", rep.Schema, Schema)
	}
	return &rep, nil
}

// sanitize replaces non-finite floats, which JSON cannot hold, by 0 in a
// copy's top-level figures (they only arise from empty evaluations).
func sanitize(r *Report) *Report {
	c := *r
	fix := func(v *float64) {
		if math.IsNaN(*v) || math.IsInf(*v, 0) {
			*v = 0
		}
	}
	fix(&c.Clean.Accuracy)
	return &c
}

// WriteDir writes report.json, report.md and a self-contained report.html
// (plots embedded as PNG) into dir, each atomically.
func WriteDir(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	plots, err := Plots(r)
	if err != nil {
		return err
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"report.json", func(w io.Writer) error { return WriteJSON(w, r) }},
		{"report.md", func(w io.Writer) error { return WriteMarkdown(w, r, plots) }},
		{"report.html", func(w io.Writer) error { return WriteHTML(w, r, plots) }},
	}
	for _, p := range plots {
		if err := writeAtomic(filepath.Join(dir, p.File), func(w io.Writer) error { _, err := w.Write(p.PNG); return err }); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	tmp := f.Name()
	werr := f.Chmod(0o644) // CreateTemp makes 0600; reports are for reading
	if werr == nil {
		werr = write(f)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("report: writing %s: %w", path, werr)
	}
	return nil
}

package runtime_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/runtime"
)

func TestBadOptions(t *testing.T) {
	s := openConstant(t)
	ctx := context.Background()
	data := runtime.SliceBatches(testImages(2, 1), []int{1, 1}, 2)
	id := func(_ *rand.Rand, x, dst []float32) { copy(dst, x) }
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"cc negative delta", func() error {
			_, err := runtime.CertifyCC(ctx, s, data, id, &runtime.CCCertOptions{Delta: -0.5})
			return err
		}, "δ"},
		{"cc delta above 1", func() error {
			_, err := runtime.CertifyCC(ctx, s, data, id, &runtime.CCCertOptions{Delta: 1.5})
			return err
		}, "δ"},
		{"cc negative n", func() error {
			_, err := runtime.CertifyCC(ctx, s, data, id, &runtime.CCCertOptions{N: -1})
			return err
		}, "n = -1"},
		{"cc temperature", func() error {
			_, err := runtime.CertifyCC(ctx, s, data, id, &runtime.CCCertOptions{Temperatures: []float64{1, -2}})
			return err
		}, "temperature -2"},
		{"cc epsilon", func() error {
			_, err := runtime.CertifyCC(ctx, s, data, id, &runtime.CCCertOptions{Epsilons: []float64{2}})
			return err
		}, "ε = 2"},
		{"cc no transform", func() error {
			_, err := runtime.CertifyCC(ctx, s, data, nil, nil)
			return err
		}, "transform"},
		{"smoothing sigma", func() error {
			_, err := runtime.CertifySmoothing(ctx, s, data, &runtime.SmoothingOptions{Sigma: -1})
			return err
		}, "σ"},
		{"smoothing alpha", func() error {
			_, err := runtime.CertifySmoothing(ctx, s, data, &runtime.SmoothingOptions{Alpha: 1})
			return err
		}, "α"},
		{"latency batch", func() error {
			_, err := runtime.MeasureLatency(ctx, s, 0, nil)
			return err
		}, "batch 0"},
		{"sweep no corruptions", func() error {
			_, err := runtime.CorruptionSweep(ctx, s, data, nil, nil)
			return err
		}, "no corruptions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestSweepMetrics checks the corruption metrics on hand-made counts.
func TestSweepMetrics(t *testing.T) {
	cell := func(c string, sev, correct int) runtime.SweepCell {
		return runtime.SweepCell{Corruption: c, Severity: sev, Eval: runtime.Eval{N: 100, Correct: correct}}
	}
	// Model: clean error 10%; noise errors 20%, 40%; blur errors 30%, 30%.
	model := &runtime.Sweep{Clean: runtime.Eval{N: 100, Correct: 90}, Cells: []runtime.SweepCell{
		cell("noise", 1, 80), cell("noise", 2, 60), cell("blur", 1, 70), cell("blur", 2, 70)}}
	// Baseline: clean error 20%; noise 40%, 60%; blur 30%, 50%.
	base := &runtime.Sweep{Clean: runtime.Eval{N: 100, Correct: 80}, Cells: []runtime.SweepCell{
		cell("noise", 1, 60), cell("noise", 2, 40), cell("blur", 1, 70), cell("blur", 2, 50)}}

	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 } // a few float64 operations
	if got := model.MeanAccuracy(); !near(got, 0.7) {
		t.Errorf("MeanAccuracy = %v, want 0.7", got)
	}
	// Unnormalized mCE: mean over corruptions of mean error = (0.3 + 0.3)/2.
	if got := model.MCE(); !near(got, 0.3) {
		t.Errorf("MCE = %v, want 0.3", got)
	}
	// mCE vs baseline: noise 0.6/1.0, blur 0.6/0.8 → mean 0.675.
	if got, err := model.MCEVs(base, false); err != nil || !near(got, 0.675) {
		t.Errorf("MCEVs = %v, %v; want 0.675", got, err)
	}
	// Relative mCE: noise (0.1+0.3)/(0.2+0.4) = 2/3, blur (0.2+0.2)/(0.1+0.3) = 1.
	if got, err := model.MCEVs(base, true); err != nil || !near(got, (2.0/3+1)/2) {
		t.Errorf("relative MCEVs = %v, %v; want %v", got, err, (2.0/3+1)/2)
	}
	if got := model.Corruption("noise"); got != (runtime.Eval{N: 200, Correct: 140}) {
		t.Errorf("Corruption(noise) = %+v, want 140 of 200", got)
	}
	other := &runtime.Sweep{Cells: model.Cells[:2]}
	if _, err := model.MCEVs(other, false); err == nil {
		t.Errorf("MCEVs against a sweep of other cells succeeded")
	}
	if _, err := runtime.MergeSweeps(model, other); err == nil {
		t.Errorf("MergeSweeps of different cells succeeded")
	}
}

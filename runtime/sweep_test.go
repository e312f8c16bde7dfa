package runtime_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/corrupt"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// shards splits images and labels into n interleaved shards that carry
// their data-set indices, as `--shard i/n` does.
func shards(images *tensor.Tensor, labels []int, n, batch int) []runtime.Batches {
	per := images.Len() / images.Shape[0]
	out := make([]runtime.Batches, n)
	for sh := range n {
		var idx []int
		for i := sh; i < len(labels); i += n {
			idx = append(idx, i)
		}
		x := tensor.New(append([]int{len(idx)}, images.Shape[1:]...)...)
		l := make([]int, len(idx))
		for j, i := range idx {
			copy(x.F32[j*per:(j+1)*per], images.F32[i*per:(i+1)*per])
			l[j] = labels[i]
		}
		src := runtime.SliceBatches(x, l, batch)
		out[sh] = func(yield func(runtime.Batch, error) bool) {
			seen := 0
			for b, err := range src {
				if err == nil {
					b.Index = idx[seen : seen+len(b.Labels)]
					seen += len(b.Labels)
				}
				if !yield(b, err) {
					return
				}
			}
		}
	}
	return out
}

func corruptions(t testing.TB, names ...string) []runtime.Corruption {
	t.Helper()
	var out []runtime.Corruption
	for _, n := range names {
		c, err := corrupt.Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestCorruptionSweepShards(t *testing.T) {
	s := openConstant(t)
	ctx := context.Background()
	images := testImages(len(constLabels), 8)
	cs := corruptions(t, "gaussian_noise", "contrast")
	opts := &runtime.SweepOptions{Severities: []int{1, 5}, Batch: 4, Seed: 3}
	full, err := runtime.CorruptionSweep(ctx, s, runtime.SliceBatches(images, constLabels, 4), cs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if full.Clean != (runtime.Eval{N: 6, Correct: 4}) || len(full.Cells) != 4 {
		t.Fatalf("sweep = %+v, want clean 4/6 and 4 cells", full)
	}
	// The constant classifier is unaffected by any corruption.
	for _, c := range full.Cells {
		if c.Eval != full.Clean {
			t.Errorf("%s/%d: %+v, want %+v", c.Corruption, c.Severity, c.Eval, full.Clean)
		}
	}
	if got := full.MCE(); math.Abs(got-1.0/3) > 1e-15 {
		t.Errorf("MCE = %v, want 1/3", got)
	}
	var parts []*runtime.Sweep
	for _, b := range shards(images, constLabels, 2, 2) {
		p, err := runtime.CorruptionSweep(ctx, s, b, cs, opts)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	merged, err := runtime.MergeSweeps(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Clean != full.Clean || !slices.Equal(merged.Cells, full.Cells) {
		t.Errorf("merged shards = %+v, want %+v", merged, full)
	}
	if _, err := runtime.CorruptionSweep(ctx, s, runtime.SliceBatches(images, constLabels, 4), cs, &runtime.SweepOptions{Severities: []int{6}}); err == nil {
		t.Errorf("severity 6 accepted")
	}
}

// TestShardsMatchOneRun: per-sample randomness depends on the sample's
// index only, so two shards merged give exactly the results of one run.
func TestShardsMatchOneRun(t *testing.T) {
	s, stored, labels := fixture(t, "small_cnn_32_op14_dynbatch")
	ctx := context.Background()
	// Four images: the two stored ones and two squashed into [0, 1].
	per := stored.Len() / 2
	images := tensor.New(append([]int{4}, stored.Shape[1:]...)...)
	copy(images.F32, stored.F32)
	for i, v := range stored.F32 {
		images.F32[2*per+i] = min(max(0.5+0.25*v, 0), 1)
	}
	labels = append(labels, labels...)

	sweepOpts := &runtime.SweepOptions{Severities: []int{3}, Batch: 3, Seed: 1}
	cs := corruptions(t, "shot_noise", "pixelate")
	full, err := runtime.CorruptionSweep(ctx, s, runtime.SliceBatches(images, labels, 3), cs, sweepOpts)
	if err != nil {
		t.Fatal(err)
	}
	ccOpts := &runtime.CCCertOptions{N: 10, K: 2, Batch: 7, Seed: 2}
	noise := func(rng *rand.Rand, x, dst []float32) {
		for i, v := range x {
			dst[i] = v + float32(0.2*rng.NormFloat64())
		}
	}
	ccFull, err := runtime.CertifyCC(ctx, s, runtime.SliceBatches(images, labels, 1), noise, ccOpts)
	if err != nil {
		t.Fatal(err)
	}
	smOpts := &runtime.SmoothingOptions{Sigma: 0.25, N0: 8, N: 40, Batch: 16, Seed: 3}
	smFull, err := runtime.CertifySmoothing(ctx, s, runtime.SliceBatches(images, labels, 1), smOpts)
	if err != nil {
		t.Fatal(err)
	}

	var sweeps []*runtime.Sweep
	var ccs []*runtime.CCCertResult
	var sms []*runtime.SmoothingResult
	for _, b := range shards(images, labels, 2, 1) {
		sw, err := runtime.CorruptionSweep(ctx, s, b, cs, sweepOpts)
		if err != nil {
			t.Fatal(err)
		}
		sweeps = append(sweeps, sw)
		cc, err := runtime.CertifyCC(ctx, s, b, noise, ccOpts)
		if err != nil {
			t.Fatal(err)
		}
		ccs = append(ccs, cc)
		sm, err := runtime.CertifySmoothing(ctx, s, b, smOpts)
		if err != nil {
			t.Fatal(err)
		}
		sms = append(sms, sm)
	}
	sw, err := runtime.MergeSweeps(sweeps...)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Clean != full.Clean || !slices.Equal(sw.Cells, full.Cells) {
		t.Errorf("sweep: shards %+v, one run %+v", sw, full)
	}
	cc, err := runtime.MergeCC(ccs...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cc.Samples, ccFull.Samples) {
		t.Errorf("CC-Cert: shards %+v, one run %+v", cc.Samples, ccFull.Samples)
	}
	sm, err := runtime.MergeSmoothing(sms...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sm.Samples, smFull.Samples) {
		t.Errorf("smoothing: shards %+v, one run %+v", sm.Samples, smFull.Samples)
	}
	// Contiguous shards numbered with OffsetBatches match one run too.
	per = images.Len() / 4
	first := runtime.SliceBatches(tensor.FromFloat32(images.F32[:per], append([]int{1}, images.Shape[1:]...)...), labels[:1], 1)
	rest := runtime.OffsetBatches(runtime.SliceBatches(tensor.FromFloat32(images.F32[per:], append([]int{3}, images.Shape[1:]...)...), labels[1:], 1), 1)
	var ccParts []*runtime.CCCertResult
	for _, b := range []runtime.Batches{first, rest} {
		cc, err := runtime.CertifyCC(ctx, s, b, noise, ccOpts)
		if err != nil {
			t.Fatal(err)
		}
		ccParts = append(ccParts, cc)
	}
	if cc, err := runtime.MergeCC(ccParts...); err != nil || !slices.Equal(cc.Samples, ccFull.Samples) {
		t.Errorf("CC-Cert over contiguous shards with OffsetBatches: %v, %+v; want %+v", err, cc, ccFull.Samples)
	}
	// Merging a shard twice is refused.
	if _, err := runtime.MergeCC(ccs[0], ccs[0]); err == nil || !strings.Contains(err.Error(), "more than one part") {
		t.Errorf("MergeCC(same shard twice) = %v, want an overlap error", err)
	}
}

func TestSameTask(t *testing.T) {
	cnn, _, _ := fixture(t, "small_cnn_32_op14_dynbatch")
	opmix, _, _ := fixture(t, "tiny_opmix_32_op14_dynbatch")
	if err := runtime.SameTask(cnn, opmix); err != nil {
		t.Errorf("SameTask(small_cnn, tiny_opmix) = %v, want nil (both CIFAR-shaped, 10 classes)", err)
	}
	constant := openConstant(t)
	err := runtime.SameTask(cnn, constant)
	if err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("SameTask(10-class model, 3-class baseline) = %v, want a class-count error", err)
	}
	if k, err := cnn.Classes(); err != nil || k != 10 {
		t.Errorf("Classes() = %d, %v; want 10", k, err)
	}
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"sync"
)

// Corruption corrupts one image. The corrupt package's corruptions satisfy
// it; this package does not depend on how they work.
type Corruption interface {
	Name() string
	// Apply corrupts img (CHW, values in [0,1]) at severity 1..5 into dst,
	// drawing all randomness from rng.
	Apply(severity int, img []float32, c, h, w int, rng *rand.Rand, dst []float32) error
}

// SweepOptions configures CorruptionSweep. A nil *SweepOptions means the
// defaults.
type SweepOptions struct {
	// Severities to evaluate (default 1–5).
	Severities []int
	// Batch is onnxruntime's batch size (default 64).
	Batch int
	// Seed determines the corruptions' random draws: image i at severity s
	// of corruption c draws from a source seeded by (Seed, c, i, s), so
	// results do not depend on batching or sharding.
	Seed uint64
	// Workers corrupt the images of a batch in parallel (default
	// GOMAXPROCS); onnxruntime runs after them with its own threads.
	Workers int
	// Progress, when not nil, is called after each batch with the number
	// of images done so far (each through every corruption and severity).
	Progress func(done int)
}

// SweepCell is the accuracy under one corruption at one severity.
type SweepCell struct {
	Corruption string `json:"corruption"`
	Severity   int    `json:"severity"`
	Eval
}

// Sweep is the accuracy of a model on clean and corrupted images (the
// CIFAR-10-C protocol of Hendrycks & Dietterich 2019; CSAM-SPEC.md §4.3).
type Sweep struct {
	Seed  uint64      `json:"seed"`
	Clean Eval        `json:"clean"`
	Cells []SweepCell `json:"cells"` // by corruption, then severity
}

// CorruptionSweep measures clean accuracy and the accuracy under every
// corruption at every severity in one pass over data (each batch is
// corrupted len(corruptions)·len(severities) times). Images must be CHW.
func CorruptionSweep(ctx context.Context, s *Session, data Batches, corruptions []Corruption, opts *SweepOptions) (*Sweep, error) {
	o := SweepOptions{Severities: []int{1, 2, 3, 4, 5}, Batch: 64, Workers: goruntime.GOMAXPROCS(0)}
	if opts != nil {
		if opts.Severities != nil {
			o.Severities = slices.Clone(opts.Severities)
		}
		if opts.Batch > 0 {
			o.Batch = opts.Batch
		}
		if opts.Workers > 0 {
			o.Workers = opts.Workers
		}
		o.Seed = opts.Seed
		o.Progress = opts.Progress
	}
	if len(corruptions) == 0 {
		return nil, errors.New("runtime: corruption sweep: no corruptions")
	}
	for _, sv := range o.Severities {
		if sv < 1 || sv > 5 {
			return nil, fmt.Errorf("runtime: corruption sweep: severity %d, want 1–5", sv)
		}
	}
	res := &Sweep{Seed: o.Seed}
	cellAt := map[[2]int]int{}
	for ci, c := range corruptions {
		for _, sv := range o.Severities {
			cellAt[[2]int{ci, sv}] = len(res.Cells)
			res.Cells = append(res.Cells, SweepCell{Corruption: c.Name(), Severity: sv})
		}
	}
	salts := make([]uint64, len(corruptions))
	for ci, c := range corruptions {
		h := fnv.New64a()
		h.Write([]byte(c.Name()))
		salts[ci] = h.Sum64()
	}

	var cl *classifier
	var buf []float32
	for b, err := range data {
		if err != nil {
			return nil, err
		}
		if err := checkBatch(b); err != nil {
			return nil, fmt.Errorf("runtime: %s: batch at sample %d: %w", s.name, res.Clean.N, err)
		}
		if cl == nil {
			if cl, err = newClassifier(s, b.Images.Shape[1:]); err != nil {
				return nil, err
			}
			if len(cl.sample) != 3 {
				return nil, fmt.Errorf("runtime: %s: corruptions need CHW images, the data has images of shape %v", s.name, cl.sample)
			}
		}
		n, seen := len(b.Labels), res.Clean.N
		count := func(e *Eval, x []float32) error {
			logits, err := cl.logits(ctx, x, n, o.Batch)
			if err != nil {
				return err
			}
			if err := cl.checkLabels(b.Labels, seen); err != nil {
				return err
			}
			for i, l := range b.Labels {
				if argmax(logits[i*cl.classes:(i+1)*cl.classes]) == l {
					e.Correct++
				}
			}
			e.N += n
			return nil
		}
		if err := count(&res.Clean, b.Images.F32); err != nil {
			return nil, err
		}
		if cap(buf) < len(b.Images.F32) {
			buf = make([]float32, len(b.Images.F32))
		}
		buf = buf[:len(b.Images.F32)]
		for ci, c := range corruptions {
			for _, sv := range o.Severities {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				err := corruptBatch(c, sv, salts[ci]^o.Seed, b, seen, cl, buf, o.Workers)
				if err != nil {
					return nil, fmt.Errorf("runtime: %s: %s at severity %d: %w", s.name, c.Name(), sv, err)
				}
				if err := count(&res.Cells[cellAt[[2]int{ci, sv}]].Eval, buf); err != nil {
					return nil, err
				}
			}
		}
		if o.Progress != nil {
			o.Progress(res.Clean.N)
		}
	}
	return res, nil
}

// corruptBatch corrupts every image of b into dst, spread over workers.
func corruptBatch(c Corruption, sev int, seed uint64, b Batch, seen int, cl *classifier, dst []float32, workers int) error {
	n := len(b.Labels)
	ch, h, w := cl.sample[0], cl.sample[1], cl.sample[2]
	workers = max(1, min(workers, n))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := wk; i < n; i += workers {
				idx := b.sampleIndex(i, seen)
				rng := rand.New(rand.NewPCG(seed^streamCorrupt, uint64(idx)<<3|uint64(sev)))
				img := b.Images.F32[i*cl.per : (i+1)*cl.per]
				if err := c.Apply(sev, img, ch, h, w, rng, dst[i*cl.per:(i+1)*cl.per]); err != nil {
					errs[wk] = fmt.Errorf("sample %d: %w", idx, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Corruptions lists the corruptions of the sweep in order.
func (s *Sweep) Corruptions() []string {
	var out []string
	for _, c := range s.Cells {
		if !slices.Contains(out, c.Corruption) {
			out = append(out, c.Corruption)
		}
	}
	return out
}

// Cell is the result for one corruption and severity.
func (s *Sweep) Cell(corruption string, severity int) (Eval, bool) {
	for _, c := range s.Cells {
		if c.Corruption == corruption && c.Severity == severity {
			return c.Eval, true
		}
	}
	return Eval{}, false
}

// Corruption sums one corruption's results over its severities.
func (s *Sweep) Corruption(name string) Eval {
	var e Eval
	for _, c := range s.Cells {
		if c.Corruption == name {
			e = e.Add(c.Eval)
		}
	}
	return e
}

// MeanAccuracy is the mean accuracy over all corruption × severity cells.
func (s *Sweep) MeanAccuracy() float64 {
	if len(s.Cells) == 0 {
		return 0
	}
	var sum float64
	for _, c := range s.Cells {
		sum += c.Accuracy()
	}
	return sum / float64(len(s.Cells))
}

// meanError is a corruption's error averaged over its severities.
func (s *Sweep) meanError(name string) float64 {
	var sum float64
	k := 0
	for _, c := range s.Cells {
		if c.Corruption == name {
			sum += 1 - c.Accuracy()
			k++
		}
	}
	return sum / float64(k)
}

// MCE is the unnormalized mean corruption error: the error averaged over
// severities, then over corruptions (a fraction in [0, 1]).
func (s *Sweep) MCE() float64 {
	names := s.Corruptions()
	if len(names) == 0 {
		return 0
	}
	var sum float64
	for _, n := range names {
		sum += s.meanError(n)
	}
	return sum / float64(len(names))
}

// sumErrors is Σ_s E_{s,c} and, with clean, Σ_s (E_{s,c} − E_clean).
func (s *Sweep) sumErrors(name string, relative bool) float64 {
	var sum float64
	for _, c := range s.Cells {
		if c.Corruption == name {
			e := 1 - c.Accuracy()
			if relative {
				e -= 1 - s.Clean.Accuracy()
			}
			sum += e
		}
	}
	return sum
}

// MCEVs is the mean corruption error normalized by a baseline model's, as
// Hendrycks & Dietterich define it: mean over corruptions c of
// Σ_s E^model_{s,c} / Σ_s E^baseline_{s,c}. relative uses the errors in
// excess of each model's clean error instead (their "relative mCE"). Both
// sweeps must cover the same corruptions and severities.
func (s *Sweep) MCEVs(base *Sweep, relative bool) (float64, error) {
	if err := s.sameCells(base); err != nil {
		return 0, err
	}
	names := s.Corruptions()
	var sum float64
	for _, n := range names {
		d := base.sumErrors(n, relative)
		if d == 0 {
			return 0, fmt.Errorf("runtime: mCE: the baseline makes no (excess) errors under %s, so the ratio is undefined", n)
		}
		sum += s.sumErrors(n, relative) / d
	}
	return sum / float64(len(names)), nil
}

func (s *Sweep) sameCells(o *Sweep) error {
	if len(s.Cells) != len(o.Cells) {
		return fmt.Errorf("runtime: sweeps cover %d and %d corruption × severity cells; run both on the same corruptions and severities", len(s.Cells), len(o.Cells))
	}
	for i := range s.Cells {
		if s.Cells[i].Corruption != o.Cells[i].Corruption || s.Cells[i].Severity != o.Cells[i].Severity {
			return fmt.Errorf("runtime: sweeps differ at cell %d: %s/%d vs %s/%d", i, s.Cells[i].Corruption, s.Cells[i].Severity, o.Cells[i].Corruption, o.Cells[i].Severity)
		}
	}
	return nil
}

// MergeSweeps adds up sweeps of disjoint shards of one data set.
func MergeSweeps(parts ...*Sweep) (*Sweep, error) {
	if len(parts) == 0 {
		return nil, errors.New("runtime: merge sweeps: no sweeps")
	}
	out := &Sweep{Seed: parts[0].Seed, Cells: slices.Clone(parts[0].Cells)}
	for i := range out.Cells {
		out.Cells[i].Eval = Eval{}
	}
	for i, p := range parts {
		if err := out.sameCells(p); err != nil {
			return nil, fmt.Errorf("runtime: merge sweeps: part %d: %w", i, err)
		}
		if p.Seed != out.Seed {
			return nil, fmt.Errorf("runtime: merge sweeps: part %d has seed %d, part 0 has %d", i, p.Seed, out.Seed)
		}
		out.Clean = out.Clean.Add(p.Clean)
		for j := range out.Cells {
			out.Cells[j].Eval = out.Cells[j].Eval.Add(p.Cells[j].Eval)
		}
	}
	return out, nil
}

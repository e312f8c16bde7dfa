package csam

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// topKReference sorts (score desc, index asc) and keeps the first k.
func topKReference(scores []float32, k int) []float32 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	out := make([]float32, len(scores))
	for _, i := range idx[:k] {
		out[i] = 1
	}
	return out
}

func TestTopKMaskMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 7, 100, 1001} {
		for _, ties := range []bool{false, true} {
			scores := make([]float32, n)
			for i := range scores {
				if ties {
					scores[i] = float32(rng.IntN(4))
				} else {
					scores[i] = rng.Float32()
				}
			}
			for _, k := range []int{0, 1, n / 3, n / 2, n - 1, n} {
				got := make([]float32, n)
				topKMask(got, scores, make([]float32, n), k)
				want := topKReference(scores, k)
				if !slices.Equal(got, want) {
					t.Fatalf("topKMask(n=%d, ties=%v, k=%d) differs from the sorted reference", n, ties, k)
				}
			}
		}
	}
}

func TestPercentileLinear(t *testing.T) {
	a := []float32{5, 1, 4, 2, 3}
	for _, c := range []struct{ p, want float64 }{{0, 1}, {25, 2}, {50, 3}, {90, 4.6}, {100, 5}} {
		got := percentile(slices.Clone(a), c.p)
		if d := got - c.want; d > 1e-6 || d < -1e-6 {
			t.Errorf("percentile(%v, %v) = %v, want %v", a, c.p, got, c.want)
		}
	}
}

func TestKeepCount(t *testing.T) {
	for _, c := range []struct {
		d    float64
		n, k int
	}{{0.1, 100, 10}, {0.1, 101, 11}, {0.5, 3, 2}, {0.3, 10, 3}, {0.0, 10, 1}, {1, 10, 10}} {
		if got := keepCount(c.d, c.n); got != c.k {
			t.Errorf("keepCount(%v, %d) = %d, want %d", c.d, c.n, got, c.k)
		}
	}
}

// TestHydraMaskIsTopKOfAbsScores: HYDRA's mask keeps the largest |s| of
// each layer (a regression test: the |s| buffer once aliased the
// binarizer's scratch space, which scrambled the mask).
func TestHydraMaskIsTopKOfAbsScores(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	l := &Layer{W: make([]float32, 200), Shape: []int{10, 20}}
	layers := []*Layer{l}
	allocate(layers, 0.3)
	for i := range l.Score {
		l.Score[i] = float32(rng.NormFloat64())
	}
	s := &searcher{layers: layers, hydra: true, bin: newBinarizer(layers, 0.3, false)}
	s.bin.apply(layers, s.scoreForTopK, func(l *Layer) []float32 { return l.Mask })
	abs := make([]float32, len(l.Score))
	for i, v := range l.Score {
		abs[i] = float32(math.Abs(float64(v)))
	}
	want := topKReference(abs, l.Keep)
	if !slices.Equal(l.Mask, want) {
		t.Fatal("HYDRA's mask is not the top-k of |score|")
	}
}

// TestTopKMaskMagMatchesSort: topKMaskMag keeps the k first entries of the
// order (score desc, |w| desc, index asc), on data with many ties in both
// keys, layer-wise and as the binarizer applies it (global too).
func TestTopKMaskMagMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 7, 100, 1001} {
		scores, w := make([]float32, n), make([]float32, n)
		for i := range scores {
			scores[i] = float32(rng.IntN(3)) / 2 // 0, 0.5, 1: mostly ties
			w[i] = float32(rng.IntN(5) - 2)      // magnitudes tie too, signs differ
		}
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool {
			sa, sb := scores[idx[a]], scores[idx[b]]
			if sa != sb {
				return sa > sb
			}
			return math.Abs(float64(w[idx[a]])) > math.Abs(float64(w[idx[b]]))
		})
		for _, k := range []int{0, 1, n / 3, n / 2, n - 1, n} {
			want := make([]float32, n)
			for _, i := range idx[:k] {
				want[i] = 1
			}
			got := make([]float32, n)
			topKMaskMag(got, scores, w, make([]float32, n), k)
			if !slices.Equal(got, want) {
				t.Fatalf("topKMaskMag(n=%d, k=%d) differs from the sorted reference", n, k)
			}
		}
	}
}

// TestSoftMaskTiesGoByMagnitude: the case that made the tie-break matter.
// After percentile initialization every kept weight's soft mask is 1; a
// pruned entry pushed to 1 (by the search or its perturbation) must not
// evict the kept weights of the layer's last positions, as breaking ties
// by index did, but the smallest-magnitude entry among those at 1.
func TestSoftMaskTiesGoByMagnitude(t *testing.T) {
	w := []float32{0.1, 0.9, -0.8, 0.2, 0.7, -0.6}
	l := &Layer{W: w, Score: make([]float32, len(w)), Mask: make([]float32, len(w)), work: make([]float32, len(w)), Keep: 3}
	PercentileInit([]*Layer{l}, 0.5, 0)
	b := newBinarizer([]*Layer{l}, 0.5, false)
	b.apply([]*Layer{l}, func(l *Layer) []float32 { return l.Score }, func(l *Layer) []float32 { return l.Mask })
	if want := []float32{0, 1, 1, 0, 1, 0}; !slices.Equal(l.Mask, want) {
		t.Fatalf("initial mask %v, want the magnitude mask %v (scores %v)", l.Mask, want, l.Score)
	}
	l.Score[0] = 1 // |w| = 0.1 reaches the tie at 1 with 0.9, 0.8 and 0.7
	b.apply([]*Layer{l}, func(l *Layer) []float32 { return l.Score }, func(l *Layer) []float32 { return l.Mask })
	if want := []float32{0, 1, 1, 0, 1, 0}; !slices.Equal(l.Mask, want) {
		t.Errorf("mask %v after entry 0 tied at 1, want %v (the three largest |w| among the tied; by index entry 4 would go)", l.Mask, want)
	}
	l.Score[4] = 0.95 // the kept 0.7 drops below the tie: entry 0 takes its place
	b.apply([]*Layer{l}, func(l *Layer) []float32 { return l.Score }, func(l *Layer) []float32 { return l.Mask })
	if want := []float32{1, 1, 1, 0, 0, 0}; !slices.Equal(l.Mask, want) {
		t.Errorf("mask %v after entry 4 fell below the tie, want %v", l.Mask, want)
	}
}

// TestChannelTiesGoByNorm: the channel search's top-k breaks ties among
// equal scores by filter norm, as the weight-level one breaks them by
// magnitude (channels used to go by index).
func TestChannelTiesGoByNorm(t *testing.T) {
	norms := []float32{0.1, 0.9, 0.8, 0.2, 0.7, 0.6}
	g := &channelGroup{norms: norms, work: make([]float32, len(norms)), keep: 3}
	mask := make([]float32, len(norms))
	g.binarize(mask, []float32{1, 1, 1, 0.3, 1, 0.5}) // channel 0 (norm 0.1) pushed into the tie at 1
	if want := []float32{0, 1, 1, 0, 1, 0}; !slices.Equal(mask, want) {
		t.Errorf("mask %v, want %v (the three largest norms among the tied; by index channel 4 would go)", mask, want)
	}
}

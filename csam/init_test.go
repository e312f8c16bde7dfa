package csam

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// handLayer is a prunable layer over the given weights, with buffers
// allocated at density as Learn allocates them.
func handLayer(name string, w []float32, density float64) *Layer {
	l := &Layer{Weight: name, Node: name, OpType: "MatMul", Shape: []int{len(w)}, W: slices.Clone(w)}
	allocate([]*Layer{l}, density)
	return l
}

// TestPercentileInitByHand checks C = clip(|θ| / Q(|θ|, τ), 0, 1) with
// τ = 100·(1 − κ) and numpy's linear interpolation (CSAM-SPEC §2.2) against
// values worked out by hand in the comments.
func TestPercentileInitByHand(t *testing.T) {
	cases := []struct {
		name    string
		w       []float32
		density float64
		tau     float64 // 0: the sparsity percentile
		want    []float64
	}{
		{
			// |θ| sorted = 1 2 3 4; τ = 50 → pos = 0.5·3 = 1.5 →
			// Q = 2 + 0.5·(3 − 2) = 2.5; C = 4/2.5→1, 1/2.5, 2/2.5, 3/2.5→1.
			name: "kappa0.5", w: []float32{-4, 1, -2, 3}, density: 0.5,
			want: []float64{1, 0.4, 0.8, 1},
		},
		{
			// |θ| sorted = 0.5 1 2 3 4; τ = 70 → pos = 0.7·4 = 2.8 →
			// Q = 2 + 0.8·(3 − 2) = 2.8.
			name: "kappa0.3", w: []float32{0.5, -1, 2, -3, 4}, density: 0.3,
			want: []float64{0.5 / 2.8, 1 / 2.8, 2 / 2.8, 1, 1},
		},
		{
			// |θ| sorted = 1..10; τ = 10 → pos = 0.1·9 = 0.9 →
			// Q = 1 + 0.9·(2 − 1) = 1.9: only |θ| = 1 stays below one.
			name: "kappa0.9", w: []float32{3, -1, 2, 10, -9, 8, 7, -6, 5, 4}, density: 0.9,
			want: []float64{1, 1 / 1.9, 1, 1, 1, 1, 1, 1, 1, 1},
		},
		{
			// |θ| sorted = 0.1 0.2 0.4 0.8 (as a [2,2] kernel); τ = 75 →
			// pos = 0.75·3 = 2.25 → Q = 0.4 + 0.25·(0.8 − 0.4) = 0.5.
			name: "kappa0.25", w: []float32{0.2, -0.8, 0.1, -0.4}, density: 0.25,
			want: []float64{0.4, 1, 0.2, 0.8},
		},
		{
			// Repeated magnitudes: sorted = 1 1 1 3; τ = 50 → pos = 1.5 →
			// Q = 1 + 0.5·(1 − 1) = 1; every entry clips to 1.
			name: "ties", w: []float32{1, -1, 3, 1}, density: 0.5,
			want: []float64{1, 1, 1, 1},
		},
		{
			// τ = 100: Q = max|θ| = 4, nothing clipped, the order by |θ|
			// kept; the density does not enter.
			name: "tau100", w: []float32{-4, 1, -2, 3}, density: 0.5, tau: 100,
			want: []float64{1, 0.25, 0.5, 0.75},
		},
		{
			// τ = 25 given: pos = 0.25·3 = 0.75 → Q = 1 + 0.75·(2 − 1) =
			// 1.75, whatever the density.
			name: "tau25", w: []float32{-4, 1, -2, 3}, density: 0.9, tau: 25,
			want: []float64{1, 1 / 1.75, 1, 1},
		},
		{
			// All zero: Q = 0 is floored at 1e-12, so C = 0 everywhere (no NaN).
			name: "zeros", w: []float32{0, 0, 0}, density: 0.5,
			want: []float64{0, 0, 0},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := handLayer("w", c.w, c.density)
			PercentileInit([]*Layer{l}, c.density, c.tau)
			for i, want := range c.want {
				// The score is float32: 1e-6 covers its rounding (values ≤ 1).
				if d := math.Abs(float64(l.Score[i]) - want); d > 1e-6 || math.IsNaN(float64(l.Score[i])) {
					t.Errorf("C[%d] = %v, want %v", i, l.Score[i], want)
				}
			}
			if !slices.Equal(l.W, c.w) {
				t.Errorf("PercentileInit changed the weights: %v, was %v", l.W, c.w)
			}
		})
	}
}

// TestPercentileInitPerLayer checks each layer uses its own percentile: the
// same weights scaled by 10 in a second layer give the same scores.
func TestPercentileInitPerLayer(t *testing.T) {
	w := []float32{-4, 1, -2, 3}
	w10 := []float32{-40, 10, -20, 30}
	a, b := handLayer("a", w, 0.5), handLayer("b", w10, 0.5)
	PercentileInit([]*Layer{a, b}, 0.5, 0)
	want := []float32{1, 0.4, 0.8, 1}
	for i := range want {
		// 1e-6: float32 rounding of values ≤ 1.
		if math.Abs(float64(a.Score[i]-want[i])) > 1e-6 || math.Abs(float64(b.Score[i]-want[i])) > 1e-6 {
			t.Fatalf("scores %v and %v, want %v for both layers", a.Score, b.Score, want)
		}
	}
}

// TestPercentileNumpyValues checks percentile against numpy.percentile
// values written out by hand (default "linear" method).
func TestPercentileNumpyValues(t *testing.T) {
	cases := []struct {
		a    []float32
		p    float64
		want float64
	}{
		{[]float32{1, 2, 3, 4}, 50, 2.5},                // pos 1.5
		{[]float32{4, 3, 2, 1}, 25, 1.75},               // pos 0.75
		{[]float32{10}, 37, 10},                         // one element
		{[]float32{0, 10}, 33, 3.3},                     // pos 0.33
		{[]float32{7, 7, 7, 1}, 10, 2.8},                // pos 0.3: 1 + 0.3·6
		{[]float32{5, 1, 4, 2, 3, 9, 8, 6, 7}, 90, 8.2}, // pos 7.2: 8 + 0.2·1
	}
	for _, c := range cases {
		got := percentile(slices.Clone(c.a), c.p)
		// 1e-6: the inputs are exact in float32 and the interpolation is float64.
		if math.Abs(got-c.want) > 1e-6 {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.a, c.p, got, c.want)
		}
	}
}

// TestPercentileInitIsMagnitudeMask checks the property CSAM-SPEC §2.2
// builds on: with τ = 100(1 − κ), the layer-wise top-k of the initial
// scores is exactly the layer-wise magnitude-pruning mask, the kept
// entries all start at C = 1 or above every pruned one, and the pruned
// ones start below 1.
func TestPercentileInitIsMagnitudeMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{4, 7, 10, 64, 101} {
		for _, density := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
			w := make([]float32, n)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			l := handLayer("w", w, density)
			PercentileInit([]*Layer{l}, density, 0)
			got := make([]float32, n)
			topKMask(got, l.Score, make([]float32, n), l.Keep)

			idx := make([]int, n)
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, b int) bool { return math.Abs(float64(w[idx[a]])) > math.Abs(float64(w[idx[b]])) })
			want := make([]float32, n)
			for _, i := range idx[:l.Keep] {
				want[i] = 1
			}
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d κ=%v: top-k of the initial scores %v is not the magnitude mask %v", n, density, got, want)
			}
			for i, m := range want {
				if m == 0 && l.Score[i] >= 1 {
					t.Errorf("n=%d κ=%v: pruned entry %d starts at C = %v, want < 1", n, density, i, l.Score[i])
				}
			}
		}
	}
}

// TestTopKTiesByIndex checks equal scores keep the lower index, on hand
// examples, and that the result does not depend on the scratch contents.
func TestTopKTiesByIndex(t *testing.T) {
	cases := []struct {
		scores []float32
		k      int
		want   []float32
	}{
		{[]float32{1, 1, 1, 1}, 2, []float32{1, 1, 0, 0}},
		{[]float32{0.5, 1, 0.5, 1, 0.5}, 3, []float32{1, 1, 0, 1, 0}},
		{[]float32{0.2, 0.9, 0.9, 0.9, 0.1}, 2, []float32{0, 1, 1, 0, 0}},
		{[]float32{0, 0, 0.3, 0, 0}, 3, []float32{1, 1, 1, 0, 0}},
		{[]float32{1, 1, 1, 1}, 4, []float32{1, 1, 1, 1}},
		{[]float32{1, 1, 1, 1}, 0, []float32{0, 0, 0, 0}},
	}
	for _, c := range cases {
		for _, junk := range []float32{0, 7, -3} {
			work := make([]float32, len(c.scores))
			for i := range work {
				work[i] = junk
			}
			got := make([]float32, len(c.scores))
			for i := range got {
				got[i] = 5 // must be overwritten
			}
			topKMask(got, c.scores, work, c.k)
			if !slices.Equal(got, c.want) {
				t.Errorf("topKMask(%v, k=%d) = %v, want %v", c.scores, c.k, got, c.want)
			}
		}
	}
}

// TestGlobalTopK checks the global binarizer keeps ⌈κ·N⌉ entries over all
// layers together, ties broken by layer order then index, and that the
// layer-wise one keeps ⌈κ·N_l⌉ per layer.
func TestGlobalTopK(t *testing.T) {
	mk := func() []*Layer {
		a := &Layer{Weight: "a", W: make([]float32, 4), Score: []float32{0.9, 0.1, 0.5, 0.5}}
		b := &Layer{Weight: "b", W: make([]float32, 3), Score: []float32{0.5, 0.95, 0.2}}
		c := &Layer{Weight: "c", W: make([]float32, 3), Score: []float32{0.05, 0.04, 0.03}}
		ls := []*Layer{a, b, c}
		for _, l := range ls {
			l.Mask = make([]float32, len(l.W))
			l.work = make([]float32, len(l.W))
		}
		return ls
	}
	score := func(l *Layer) []float32 { return l.Score }
	mask := func(l *Layer) []float32 { return l.Mask }

	// Global, κ = 0.4: N = 10 → keep 4: 0.95, 0.9, then three 0.5 tie for
	// two places: a[2], a[3] (layer a first) win over b[0].
	ls := mk()
	newBinarizer(ls, 0.4, true).apply(ls, score, mask)
	want := [][]float32{{1, 0, 1, 1}, {0, 1, 0}, {0, 0, 0}}
	for i, l := range ls {
		if !slices.Equal(l.Mask, want[i]) {
			t.Errorf("global κ=0.4: layer %s mask %v, want %v", l.Weight, l.Mask, want[i])
		}
	}

	// Global, κ = 0.5: keep 5 → all three 0.5 entries are kept; layer c,
	// with the smallest scores, is pruned entirely.
	ls = mk()
	newBinarizer(ls, 0.5, true).apply(ls, score, mask)
	want = [][]float32{{1, 0, 1, 1}, {1, 1, 0}, {0, 0, 0}}
	for i, l := range ls {
		if !slices.Equal(l.Mask, want[i]) {
			t.Errorf("global κ=0.5: layer %s mask %v, want %v", l.Weight, l.Mask, want[i])
		}
	}

	// Layer-wise, κ = 0.5: keep ⌈2⌉ = 2 of a, ⌈1.5⌉ = 2 of b and c.
	ls = mk()
	for _, l := range ls {
		l.Keep = keepCount(0.5, len(l.W))
	}
	newBinarizer(ls, 0.5, false).apply(ls, score, mask)
	want = [][]float32{{1, 0, 1, 0}, {1, 1, 0}, {1, 1, 0}}
	for i, l := range ls {
		if !slices.Equal(l.Mask, want[i]) {
			t.Errorf("layer-wise κ=0.5: layer %s mask %v, want %v", l.Weight, l.Mask, want[i])
		}
	}
}

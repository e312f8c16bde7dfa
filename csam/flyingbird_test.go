package csam

import (
	"math"
	"slices"
	"testing"
)

// TestRegrowByHand: one prune-and-regrow update on a hand-made layer.
// Kept: 0 (|w| .9), 1 (.1), 4 (.5), 6 (.1); pruned: 2, 3, 5, 7. With
// alpha = 0.5, k = ⌊0.5·4⌋ = 2: the two smallest kept |w| are entries 1 and
// 6 (a tie at .1: both go); the two largest pruned |g| are entries 3 (.8)
// and 2 (.3) — entry 5 also has |g| = .3 and loses the tie to the lower
// index. Changed entries get w = 0 and zero momentum; density stays 4/8.
func TestRegrowByHand(t *testing.T) {
	l := &Layer{
		Weight: "w",
		W:      []float32{0.9, -0.1, 0, 0, 0.5, 0, 0.1, 0},
		Mask:   []float32{1, 1, 0, 0, 1, 0, 1, 0},
	}
	g := []float32{5, 5, -0.3, 0.8, 5, 0.3, 5, 0.05}
	vel := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	if k := regrow(l, g, vel, 0.5); k != 2 {
		t.Fatalf("regrow moved %d entries, want 2", k)
	}
	if want := []float32{1, 0, 1, 1, 1, 0, 0, 0}; !slices.Equal(l.Mask, want) {
		t.Errorf("mask %v, want %v", l.Mask, want)
	}
	if want := []float32{0.9, 0, 0, 0, 0.5, 0, 0, 0}; !slices.Equal(l.W, want) {
		t.Errorf("weights %v, want %v", l.W, want)
	}
	if want := []float32{1, 0, 0, 0, 5, 6, 0, 8}; !slices.Equal(vel, want) {
		t.Errorf("momentum %v, want %v (zero where the mask changed)", vel, want)
	}
	// Ties among the kept weights: the lower index survives.
	l = &Layer{Weight: "w", W: []float32{0.2, 0.2, 0.2, 0}, Mask: []float32{1, 1, 1, 0}}
	if k := regrow(l, []float32{0, 0, 0, 1}, nil, 0.34); k != 1 {
		t.Fatalf("regrow moved %d entries, want 1", k)
	}
	if want := []float32{1, 1, 0, 1}; !slices.Equal(l.Mask, want) {
		t.Errorf("tied drop: mask %v, want %v", l.Mask, want)
	}
	// Nothing to grow into at full density: no change.
	l = &Layer{Weight: "w", W: []float32{1, 2}, Mask: []float32{1, 1}}
	if k := regrow(l, []float32{1, 1}, nil, 0.5); k != 0 || !slices.Equal(l.Mask, []float32{1, 1}) {
		t.Errorf("full layer: moved %d, mask %v", k, l.Mask)
	}
}

// TestFBSchedule: updates every 100 steps (RigL) over the first 75% of
// the phase, at least two in a short phase, with the cosine-decayed
// fraction α₀/2·(1 + cos(π t / T_end)).
func TestFBSchedule(t *testing.T) {
	for _, c := range []struct {
		total int
		want  []int
	}{
		{80, []int{30, 60}}, // T_end 60: ΔT 30
		{1000, []int{100, 200, 300, 400, 500, 600, 700}}, // T_end 750
	} {
		var at []int
		end := float64(c.total * 3 / 4)
		for done := 1; done <= c.total; done++ {
			up, alpha := fbSchedule(done, c.total)
			if !up {
				continue
			}
			at = append(at, done)
			want := 0.3 / 2 * (1 + math.Cos(math.Pi*float64(done)/end))
			if math.Abs(alpha-want) > 1e-12 {
				t.Errorf("total %d, step %d: alpha %v, want %v", c.total, done, alpha, want)
			}
		}
		if !slices.Equal(at, c.want) {
			t.Errorf("total %d: updates after steps %v, want %v", c.total, at, c.want)
		}
	}
	if up, _ := fbSchedule(1, 1); up {
		t.Error("a one-step phase updates the topology")
	}
}

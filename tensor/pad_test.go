package tensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// padRef is padPlanes by the definition, one element at a time.
func padRef(c, h, w, padT, padL, hp, wp int, x, xp []float32) {
	for ci := range c {
		for r := range hp {
			for q := range wp {
				ih, iw := r-padT, q-padL
				v := float32(0)
				if ih >= 0 && ih < h && iw >= 0 && iw < w {
					v = x[ci*h*w+ih*w+iw]
				}
				xp[ci*hp*wp+r*wp+q] = v
			}
		}
	}
}

// TestPadPlanes checks padPlanes against the definition on padding of
// every side (including negative padding, which crops), over a buffer
// full of garbage from an earlier use.
func TestPadPlanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range []struct{ c, h, w, padT, padL, hp, wp int }{
		{3, 4, 4, 1, 1, 6, 6}, {2, 32, 32, 1, 1, 34, 34}, {5, 1, 1, 1, 1, 3, 3}, {2, 7, 5, 0, 2, 7, 9},
		{2, 6, 6, 1, 1, 7, 7}, {1, 5, 5, -1, -1, 3, 3}, {2, 4, 70, 2, 3, 8, 76}, {1, 3, 3, 5, 5, 4, 4},
		{3, 6, 13, 1, 1, 8, 15}, {2, 16, 16, 1, 1, 18, 18}, {2, 9, 21, -2, -3, 5, 14},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d_p%d,%d_%dx%d", g.c, g.h, g.w, g.padT, g.padL, g.hp, g.wp), func(t *testing.T) {
			x := make([]float32, g.c*g.h*g.w)
			for i := range x {
				x[i] = rng.Float32() + 1
			}
			got := make([]float32, g.c*g.hp*g.wp)
			for i := range got {
				got[i] = -7
			}
			want := make([]float32, len(got))
			padPlanes(g.c, g.h, g.w, g.padT, g.padL, g.hp, g.wp, x, got)
			padRef(g.c, g.h, g.w, g.padT, g.padL, g.hp, g.wp, x, want)
			if !slices.Equal(got, want) {
				t.Errorf("padPlanes differs from the definition:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// BenchmarkPadPlanes pads MobileNet-V2's depthwise planes (3×3, pad 1) at
// the four CIFAR resolutions: the copy every depthwise pass makes.
func BenchmarkPadPlanes(b *testing.B) {
	for _, hw := range []int{32, 16, 8, 4} {
		c := 4096 / hw // about the same work per size
		x := make([]float32, c*hw*hw)
		xp := make([]float32, c*(hw+2)*(hw+2))
		b.Run(fmt.Sprint(hw), func(b *testing.B) {
			for b.Loop() {
				padPlanes(c, hw, hw, 1, 1, hw+2, hw+2, x, xp)
			}
			b.ReportMetric(float64(b.N*c*hw*hw)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}

package report

import (
	"math"
	"strings"
	"testing"
)

func TestSignTest(t *testing.T) {
	for _, c := range []struct {
		a, b int
		want float64
	}{
		{0, 0, 1},
		{5, 5, 1},
		{0, 5, 2.0 / 32},                    // 2·(1/2)^5
		{1, 4, 2 * 6.0 / 32},                // 2·(C(5,0)+C(5,1))/2^5
		{9, 1, 2 * 11.0 / 1024},             // symmetric in a, b
		{3, 35, 2 * 9178 / math.Pow(2, 38)}, // 2·(1+38+703+8436)/2^38
	} {
		got := SignTest(c.a, c.b)
		if math.Abs(got-c.want) > 1e-12*math.Max(c.want, 1e-300) {
			t.Errorf("SignTest(%d, %d) = %.17g, want %.17g", c.a, c.b, got, c.want)
		}
	}
	// Large n stays finite and in [0, 1].
	if p := SignTest(600, 700); !(p > 0 && p < 1) {
		t.Errorf("SignTest(600, 700) = %g", p)
	}
}

// TestPairedCCCert: the per-image outcomes of a model and its baseline are
// matched by test-set index (images only one list holds are left out) and
// the report states the discordant counts with their sign test.
func TestPairedCCCert(t *testing.T) {
	img := func(idx int, correct bool, bound float64) CCImage {
		return CCImage{Index: idx, Correct: correct, Bound: bound}
	}
	model := []CCImage{img(0, true, 0), img(1, true, 0), img(2, true, 0.5), img(3, false, 0), img(4, true, 0.005), img(9, true, 0)}
	base := []CCImage{img(0, true, 0), img(1, false, 0), img(2, true, 0), img(3, true, 0), img(4, true, 0)}
	// ε=1e-3: image 0 both; 1 model only; 2, 3 and 4 baseline only; 9 is
	// not in the baseline's list.
	if got, want := Paired(model, base, 1e-3), (Pairs{Common: 5, Both: 1, OnlyA: 1, OnlyB: 3}); got != want {
		t.Errorf("Paired at 1e-3 = %+v, want %+v", got, want)
	}
	// ε=1e-2: image 4's bound 0.005 now certifies it for both.
	if got, want := Paired(model, base, 1e-2), (Pairs{Common: 5, Both: 2, OnlyA: 1, OnlyB: 2}); got != want {
		t.Errorf("Paired at 1e-2 = %+v, want %+v", got, want)
	}
	r := sample()
	r.CCCert.PerImage, r.CCCert.BaselinePerImage = model, base
	var found bool
	for _, row := range summaryRows(r) {
		if strings.HasPrefix(row[0], "CC-Cert, ε=0.001: of the 5 images, certified for one model only (exact sign test p=0.62)") {
			found = true
			if row[1] != "1" || row[2] != "3" {
				t.Errorf("paired row %q: %s / %s, want 1 / 3", row[0], row[1], row[2])
			}
		}
	}
	if !found {
		t.Errorf("no paired CC-Cert row in %v", summaryRows(r))
	}
}

package results

import (
	"bytes"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/report"
)

// withImages gives a cell per-image CC-Cert outcomes: certified[i] for
// test image index 10·i (bound 0 when certified, 0.5 when not).
func withImages(c *Cell, certified ...bool) *Cell {
	for i, ok := range certified {
		b := 0.5
		if ok {
			b = 0
		}
		c.Verify.CCCert.PerImage = append(c.Verify.CCCert.PerImage, report.CCImage{Index: 10 * i, Correct: true, Bound: b})
	}
	return c
}

func TestPairedCC(t *testing.T) {
	T, F := true, false
	cells := []*Cell{
		withImages(cell("magnitude", 0.9, 1, 0.85, 0.40), T, T, F, F, T),
		withImages(cell("magnitude", 0.9, 2, 0.87, 0.42), T, F, F),
		withImages(cell("csam", 0.9, 1, 0.9, 0.45), T, F, T, F, F),
		withImages(cell("csam", 0.9, 2, 0.9, 0.47), F, T, F),
		cell("csam-B", 0.9, 1, 0.80, 0.48), // no per-image outcomes
	}
	g := Groups(cells)[0]
	p, ok := pairedCC(g.Row("csam"), g.Row("magnitude"), 1e-3)
	// seed 1: both on image 0, csam only on 20, magnitude only on 10 and
	// 40; seed 2: csam only on 10, magnitude only on 0.
	want := Paired{Seeds: 2, Images: 8, CertA: 3, CertB: 4, OnlyA: 2, OnlyB: 3, P: 1}
	if !ok || p != want {
		t.Errorf("pairedCC = %+v, %v; want %+v", p, ok, want)
	}
	if _, ok := pairedCC(g.Row("csam-B"), g.Row("magnitude"), 1e-3); ok {
		t.Error("a row without per-image outcomes was compared")
	}
	var buf bytes.Buffer
	writePaired(&buf, g, 1e-3)
	for _, want := range []string{"Paired CC-Cert at ε=1e-3,", "| C-SAM entry | vs magnitude |", "| csam | 2 / 3 (p=1; 8 images, 2 seeds) |", "| csam-B | – |"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("paired table lacks %q:\n%s", want, buf.String())
		}
	}
	// Without per-image outcomes anywhere there is no table.
	buf.Reset()
	writePaired(&buf, Groups(sample())[1], 1e-3)
	if buf.Len() != 0 {
		t.Errorf("a paired table without per-image outcomes:\n%s", buf.String())
	}
}

// TestCertifiedAt: with per-image outcomes the curve is computed at any
// ε from the bounds; without, it falls back to the reported levels.
func TestCertifiedAt(t *testing.T) {
	c := cell("csam", 0.9, 1, 0.9, 0.45)
	if v, ok := certifiedAt(c, 1e-3); !ok || v != 0.45 {
		t.Errorf("without per-image outcomes: %v, %v; want the reported 0.45", v, ok)
	}
	if _, ok := certifiedAt(c, 0.05); ok {
		t.Error("a level that was not reported was answered without per-image outcomes")
	}
	c.Verify.CCCert.PerImage = []report.CCImage{{Index: 0, Correct: true, Bound: 0}, {Index: 1, Correct: true, Bound: 0.02},
		{Index: 2, Correct: false, Bound: 0}, {Index: 3, Correct: true, Bound: 0.5}}
	for _, c2 := range []struct{ eps, want float64 }{{1e-3, 0.25}, {0.05, 0.5}, {1, 0.75}} {
		if v, ok := certifiedAt(c, c2.eps); !ok || v != c2.want {
			t.Errorf("ε=%g: %v, %v; want %v", c2.eps, v, ok, c2.want)
		}
	}
	if eps := curveEps(); len(eps) != 41 || !near(eps[10], 1e-3) || eps[40] != 1 {
		t.Errorf("curve grid %v", eps)
	}
}

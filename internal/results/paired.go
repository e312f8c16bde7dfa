package results

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/csam-onnx/csam-onnx/report"
)

// Paired compares two methods' CC-Cert outcomes image by image: for every
// seed both verified, the images both certified (same test-set indices,
// which the same seed and subset give), summed over the seeds.
type Paired struct {
	Seeds  int // seeds with per-image outcomes for both
	Images int // image × seed pairs compared
	// CertA and CertB count the pairs each method certified; OnlyA and
	// OnlyB the discordant ones (certified by one method, not the other).
	CertA, CertB, OnlyA, OnlyB int
	// P is the two-sided exact sign test (McNemar's exact test) of
	// OnlyA against OnlyB: the chance of a split at least this uneven if
	// neither method certified more often.
	P float64
}

// pairedCC compares rows a and b at level eps; ok is false when no seed
// has per-image outcomes for both.
func pairedCC(a, b *Row, eps float64) (p Paired, ok bool) {
	for _, ca := range a.Cells {
		for _, cb := range b.Cells {
			if ca.Seed != cb.Seed || !hasPerImage(ca) || !hasPerImage(cb) {
				continue
			}
			c := report.Paired(ca.Verify.CCCert.PerImage, cb.Verify.CCCert.PerImage, eps)
			p.Seeds++
			p.Images += c.Common
			p.CertA += c.Both + c.OnlyA
			p.CertB += c.Both + c.OnlyB
			p.OnlyA += c.OnlyA
			p.OnlyB += c.OnlyB
		}
	}
	p.P = report.SignTest(p.OnlyA, p.OnlyB)
	return p, p.Seeds > 0
}

// hasPerImage reports whether a cell holds per-image CC-Cert outcomes.
func hasPerImage(c *Cell) bool { return c.Verify.CCCert != nil && len(c.Verify.CCCert.PerImage) > 0 }

// writePaired writes the paired CC-Cert table of a group: a row per C-SAM
// entry, a column per baseline, each entry "C-SAM only / baseline only
// (p)". Nothing is written when no pair has per-image outcomes.
func writePaired(w io.Writer, g *Group, eps float64) {
	var csams, bases []*Row
	for _, r := range g.Rows {
		switch {
		case r.BaseMethod == "csam":
			csams = append(csams, r)
		case !r.Dense():
			bases = append(bases, r)
		}
	}
	type entry struct {
		p  Paired
		ok bool
	}
	table := make([][]entry, len(csams))
	found := false
	for i, a := range csams {
		table[i] = make([]entry, len(bases))
		for j, b := range bases {
			p, ok := pairedCC(a, b, eps)
			table[i][j] = entry{p, ok}
			found = found || ok
		}
	}
	if !found {
		return
	}
	fmt.Fprintf(w, "**Paired CC-Cert at ε=%s, on the same images**: each entry is *C-SAM entry only* / *baseline only*, the images (summed over the seeds both verified) certified by one of the two and not the other, then the two-sided exact sign test p (small p: the difference is not chance).\n\n", epsText(eps))
	fmt.Fprintf(w, "| C-SAM entry |")
	for _, b := range bases {
		fmt.Fprintf(w, " vs %s |", mdEscape(b.Method))
	}
	fmt.Fprintf(w, "\n|---|")
	fmt.Fprint(w, strings.Repeat("---:|", len(bases)))
	fmt.Fprintln(w)
	for i, a := range csams {
		fmt.Fprintf(w, "| %s |", mdEscape(a.Method))
		for j := range bases {
			e := table[i][j]
			if !e.ok {
				fmt.Fprintf(w, " – |")
				continue
			}
			seeds := "seeds"
			if e.p.Seeds == 1 {
				seeds = "seed"
			}
			fmt.Fprintf(w, " %d / %d (p=%.2g; %d images, %d %s) |", e.p.OnlyA, e.p.OnlyB, e.p.P, e.p.Images, e.p.Seeds, seeds)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// epsText writes a certification level the way the tables do: 1e-3.
func epsText(eps float64) string {
	m, e, _ := strings.Cut(strconv.FormatFloat(eps, 'e', -1, 64), "e")
	sign := ""
	if strings.HasPrefix(e, "-") {
		sign = "-"
	}
	return m + "e" + sign + strings.TrimLeft(e[1:], "0")
}

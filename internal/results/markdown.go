package results

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Options say where the summary goes.
type Options struct {
	// Markdown is the output file (e.g. docs/RESULTS.md); PlotDir the
	// folder of the PNG plots (e.g. docs/results/plots), linked from the
	// Markdown by relative path.
	Markdown string
	PlotDir  string
	// Regenerate is the command line that regenerates the summary,
	// printed in it.
	Regenerate string
}

// Write regenerates the Markdown summary and its plots from cells,
// each file atomically, and removes the plots of groups that no longer
// exist (PNG files in PlotDir named like the plots Write draws, e.g.
// after a result file was deleted). It returns the files written.
func Write(cells []*Cell, opts Options) ([]string, error) {
	groups := Groups(cells)
	var written []string
	plots := map[string][]plotFile{}
	for _, g := range groups {
		ps, err := groupPlots(g)
		if err != nil {
			return nil, err
		}
		plots[g.Key()] = ps
	}
	for _, g := range groups {
		for _, p := range plots[g.Key()] {
			path := filepath.Join(opts.PlotDir, p.name)
			if err := mkdirFor(path); err != nil {
				return nil, err
			}
			if err := writeAtomic(path, p.png); err != nil {
				return nil, err
			}
			written = append(written, path)
		}
	}
	if err := removeStalePlots(opts.PlotDir, written); err != nil {
		return nil, err
	}
	var b strings.Builder
	if err := writeMarkdown(&b, cells, groups, plots, opts); err != nil {
		return nil, err
	}
	if err := mkdirFor(opts.Markdown); err != nil {
		return nil, err
	}
	if err := writeAtomic(opts.Markdown, []byte(b.String())); err != nil {
		return nil, err
	}
	return append(written, opts.Markdown), nil
}

// plotSuffixes end the names of the plots groupPlots draws.
var plotSuffixes = []string{"_cccert.png", "_scatter.png"}

// removeStalePlots deletes the files in dir whose names end in one of
// plotSuffixes and that are not in keep (paths as Write builds them).
// Other files in dir are left alone.
func removeStalePlots(dir string, keep []string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if e.IsDir() || slices.Contains(keep, path) || !slices.ContainsFunc(plotSuffixes, func(s string) bool { return strings.HasSuffix(e.Name(), s) }) {
			continue
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("removing the stale plot %s: %w", path, err)
		}
	}
	return nil
}

var columns = []struct {
	m      Metric
	header string
	format func(Stat) string
}{
	{Clean, "clean acc. %", pctStat},
	{CorruptionMean, "mean corruption acc. %", pctStat},
	{CCCert1e3, "CC-Cert cert. acc. % (ε=1e-3)", pctStat},
	{Smoothing025, "smoothing cert. acc. % (r=0.25)", pctStat},
	{Nonzero, "nonzero params", func(s Stat) string { return numStat(s, 1, "%.0f") }},
	{FileBytes, "file KiB", func(s Stat) string { return numStat(s, 1024, "%.1f") }},
	{GzipBytes, "gzip KiB", func(s Stat) string { return numStat(s, 1024, "%.1f") }},
	{LatencyB1, "ORT latency ms (batch 1)", func(s Stat) string { return numStat(s, 1, "%.2f") }},
}

func pctStat(s Stat) string {
	return numStat(Stat{Mean: 100 * s.Mean, Std: 100 * s.Std, N: s.N}, 1, "%.2f")
}

func numStat(s Stat, div float64, f string) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmt.Sprintf(f, s.Mean/div)
	}
	return fmt.Sprintf(f+" ± "+f, s.Mean/div, s.Std/div)
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func writeMarkdown(w io.Writer, cells []*Cell, groups []*Group, plots map[string][]plotFile, opts Options) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Results\n\n")
	p("Generated from %d cell result files by `%s`; do not edit by hand.\n", len(cells), opts.Regenerate)
	p("Every figure is measured in onnxruntime on the exported ONNX file; each entry is the mean ± sample standard deviation over the seeds (n in the table).\n\n")
	configs := map[string]int{}
	for _, c := range cells {
		configs[c.ConfigFile]++
	}
	if len(configs) > 0 {
		p("Produced by (each configuration with the number of its cells in this summary; any other cells a configuration defines were not run):\n\n```\n")
		for _, f := range slices.Sorted(maps.Keys(configs)) {
			p("csam-onnx experiment --config %s   # %d cells\n", f, configs[f])
		}
		p("```\n\n")
	}
	writeBudget(w, cells)
	if len(groups) == 0 {
		p("No results yet.\n")
		return nil
	}
	for _, g := range groups {
		title := fmt.Sprintf("%s, %s, sparsity %g", g.Data, g.Arch, g.Sparsity)
		if g.Sparsity == 0 {
			title = fmt.Sprintf("%s, %s, dense only", g.Data, g.Arch)
		}
		p("## %s\n\n", title)
		p("| method | n |")
		for _, c := range columns {
			p(" %s |", c.header)
		}
		p("\n|---|---:|")
		for range columns {
			p("---:|")
		}
		p("\n")
		for _, r := range g.Rows {
			p("| %s | %d |", mdEscape(r.Method), len(r.Cells))
			for _, c := range columns {
				p(" %s |", c.format(r.Stats[c.m]))
			}
			p("\n")
		}
		p("\n")
		writeConditions(w, g)
		p("%s\n", comparison(g))
		writePaired(w, g, 1e-3)
		for _, pf := range plots[g.Key()] {
			rel, err := filepath.Rel(filepath.Dir(opts.Markdown), filepath.Join(opts.PlotDir, pf.name))
			if err != nil {
				rel = filepath.Join(opts.PlotDir, pf.name)
			}
			p("![%s](%s)\n\n", pf.title, filepath.ToSlash(rel))
		}
		writeCommands(w, g)
	}
	return nil
}

// writeBudget states the compute the cells took, from their wall times.
func writeBudget(w io.Writer, cells []*Cell) {
	trained := map[string]float64{}
	given := map[string]bool{}
	var comp, ver float64
	for _, c := range cells {
		if t := c.Settings["train"]; len(t) > 0 && strings.HasPrefix(t[0], "--model=") {
			given[strings.TrimPrefix(t[0], "--model=")] = true
		} else {
			trained[fmt.Sprintf("%s/%s/%d", c.Data, c.Arch, c.Seed)] = c.Wall.Train
		}
		comp += c.Wall.Compress
		ver += c.Wall.Verify + c.Wall.Smoothing
	}
	var tr float64
	for _, v := range trained {
		tr += v
	}
	var parts []string
	if len(trained) > 0 {
		parts = append(parts, fmt.Sprintf("dense training %.2f h (%d dense models)", tr/3600, len(trained)))
	}
	if len(given) > 0 {
		parts = append(parts, fmt.Sprintf("dense models given, not trained by the experiment: %s (their training time is not counted)",
			strings.Join(slices.Sorted(maps.Keys(given)), ", ")))
	}
	dense := strings.Join(parts, "; ")
	fmt.Fprintf(w, "Compute (wall time of the recorded runs): %s, compression %.2f h, verification %.2f h; %.2f h in all.%s\n\n",
		dense, comp/3600, ver/3600, (tr+comp+ver)/3600, threadCounts(cells))
}

var threadsFlag = regexp.MustCompile(`--threads[ =](\d+)`)

// threadCounts says how many cells ran with each --threads value (from
// their first recorded command), so that wall times of cells run on one
// thread beside other jobs and of cells run alone on all cores are not
// taken for one kind; "" when no cell records it.
func threadCounts(cells []*Cell) string {
	n := map[int]int{}
	for _, c := range cells {
		if len(c.Commands) == 0 {
			continue
		}
		if m := threadsFlag.FindStringSubmatch(c.Commands[0]); m != nil {
			t, _ := strconv.Atoi(m[1])
			n[t]++
		}
	}
	if len(n) == 0 {
		return ""
	}
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d with --threads %d", n[t], t))
	}
	return " Cells by thread count: " + strings.Join(parts, ", ") + "."
}

// writeConditions states what the figures were measured on.
func writeConditions(w io.Writer, g *Group) {
	var notes []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			notes = append(notes, s)
		}
	}
	for _, r := range g.Rows {
		for _, c := range r.Cells {
			v := c.Verify
			add(fmt.Sprintf("data `%s` (%s), clean accuracy on %d test images", c.DataSpec, v.DataNote, v.Clean.Images))
			if cr := v.Corruptions; cr != nil {
				s := fmt.Sprintf("corruptions: %d (corruption, severity) cells on %d images", len(cr.Items), cr.Images)
				if len(cr.Excluded) > 0 {
					s += fmt.Sprintf(", %s excluded from the mean", strings.Join(cr.Excluded, ", "))
				}
				add(s)
			}
			if cc := v.CCCert; cc != nil {
				add(fmt.Sprintf("CC-Cert: transform `%s`, n=%d, k=%d, δ=%g on %d images", cc.Transform, cc.N, cc.K, cc.Delta, cc.Images))
			}
			if s := v.Smoothing; s != nil {
				add(fmt.Sprintf("smoothing: σ=%g, n0=%d, n=%d, α=%g on %d images", s.Sigma, s.N0, s.N, s.Alpha, s.Images))
			}
		}
	}
	fmt.Fprintf(w, "Measured on: %s.\n\n", strings.Join(notes, "; "))
	for _, r := range g.Rows {
		if len(r.Cells) > 0 {
			fmt.Fprintf(w, "Dense model: `train %s`.", strings.Join(r.Cells[0].Settings["train"], " "))
			break
		}
	}
	for _, r := range g.Rows {
		if !r.Dense() && len(r.Cells) > 0 {
			var budget []string
			for _, a := range r.Cells[0].Settings["compress"] {
				if !strings.HasPrefix(a, "--method=") {
					budget = append(budget, a)
				}
			}
			fmt.Fprintf(w, " Compression (%s's flags; every method's are in the commands below): `compress %s`.", r.Method, strings.Join(budget, " "))
			break
		}
	}
	fmt.Fprintf(w, "\n\n")
}

// comparison is the computed C-SAM vs baselines paragraph of a group.
func comparison(g *Group) string {
	var b strings.Builder
	var cs *Row
	if cs = g.Row("csam"); cs == nil {
		for _, r := range g.Rows {
			if r.BaseMethod == "csam" {
				cs = r
				break
			}
		}
	}
	if cs == nil {
		return "C-SAM vs baselines: no C-SAM cells in this table yet.\n"
	}
	cc := cs.Stats[CCCert1e3]
	fmt.Fprintf(&b, "**C-SAM (`%s`) vs each baseline** (computed from the table): ", cs.Method)
	if cc.N == 0 {
		b.WriteString("no CC-Cert figures for C-SAM.")
	} else {
		var parts []string
		for _, r := range g.Rows {
			if r.Dense() || r.BaseMethod == "csam" {
				continue
			}
			o := r.Stats[CCCert1e3]
			if o.N == 0 {
				parts = append(parts, fmt.Sprintf("vs %s: no CC-Cert figures", r.Method))
				continue
			}
			parts = append(parts, fmt.Sprintf("vs %s: %s", r.Method, diffText(cc, o)))
		}
		if len(parts) == 0 {
			b.WriteString("no baselines in this table yet")
		} else {
			b.WriteString("certified accuracy at ε=1e-3, C-SAM minus baseline, ")
			b.WriteString(strings.Join(parts, "; "))
		}
		b.WriteString(".")
		if best := bestPruned(g); best != nil {
			fmt.Fprintf(&b, " Highest certified accuracy at ε=1e-3 among pruned methods: %s (%.2f%%).", best.Method, 100*best.Stats[CCCert1e3].Mean)
		}
	}
	if d := dense(g); d != nil && d.Stats[Clean].N > 0 && cs.Stats[Clean].N > 0 {
		diff := 100 * (cs.Stats[Clean].Mean - d.Stats[Clean].Mean)
		within := "yes"
		if math.Abs(diff) > 1 && diff < 0 {
			within = "no"
		}
		fmt.Fprintf(&b, " Clean accuracy: C-SAM %.2f%% vs dense %.2f%% (%+.2f points); within 1 point of dense (or above it): %s.",
			100*cs.Stats[Clean].Mean, 100*d.Stats[Clean].Mean, diff, within)
	} else {
		b.WriteString(" Clean accuracy vs dense: no dense cells for this table.")
	}
	var others []string
	for _, r := range g.Rows {
		if r != cs && r.BaseMethod == "csam" && r.Stats[CCCert1e3].N > 0 && cc.N > 0 {
			others = append(others, fmt.Sprintf("%s %+.2f", r.Method, 100*(r.Stats[CCCert1e3].Mean-cc.Mean)))
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(&b, " Other C-SAM entries, certified accuracy at ε=1e-3 minus `%s`'s, in points: %s.", cs.Method, strings.Join(others, ", "))
	}
	b.WriteString(aboveBaselines(g))
	b.WriteString("\n")
	return b.String()
}

// diffText states a difference of means in points, its sign in words, and
// whether it exceeds the seeds' spread.
func diffText(a, o Stat) string {
	d := 100 * (a.Mean - o.Mean)
	word := "equal"
	switch {
	case d > 0:
		word = "C-SAM higher"
	case d < 0:
		word = "C-SAM lower"
	}
	s := fmt.Sprintf("%+.2f points (%s", d, word)
	if a.N > 1 && o.N > 1 {
		if math.Abs(d) > 100*(a.Std+o.Std) {
			s += ", larger than the sum of the two standard deviations"
		} else {
			s += ", within the sum of the two standard deviations"
		}
	} else {
		s += fmt.Sprintf(", n=%d vs %d: no spread estimate", a.N, o.N)
	}
	return s + ")"
}

// aboveBaselines names the C-SAM entries (default and variants) whose mean
// certified accuracy at ε=1e-3 exceeds every baseline's.
func aboveBaselines(g *Group) string {
	var best, bestCS *Row
	var above []string
	for _, r := range g.Rows {
		if r.Dense() || r.Stats[CCCert1e3].N == 0 {
			continue
		}
		if r.BaseMethod == "csam" {
			if bestCS == nil || r.Stats[CCCert1e3].Mean > bestCS.Stats[CCCert1e3].Mean {
				bestCS = r
			}
		} else if best == nil || r.Stats[CCCert1e3].Mean > best.Stats[CCCert1e3].Mean {
			best = r
		}
	}
	if best == nil || bestCS == nil {
		return ""
	}
	for _, r := range g.Rows {
		if r.BaseMethod == "csam" && r.Stats[CCCert1e3].N > 0 && r.Stats[CCCert1e3].Mean > best.Stats[CCCert1e3].Mean {
			above = append(above, fmt.Sprintf("%s (%.2f%%, n=%d)", r.Method, 100*r.Stats[CCCert1e3].Mean, r.Stats[CCCert1e3].N))
		}
	}
	if len(above) == 0 {
		return fmt.Sprintf(" C-SAM entries above the best baseline (%s, %.2f%%) on certified accuracy at ε=1e-3: none; the best C-SAM entry is %s (%.2f%%, n=%d).",
			best.Method, 100*best.Stats[CCCert1e3].Mean, bestCS.Method, 100*bestCS.Stats[CCCert1e3].Mean, bestCS.Stats[CCCert1e3].N)
	}
	return fmt.Sprintf(" C-SAM entries above the best baseline (%s, %.2f%%) on certified accuracy at ε=1e-3: %s.",
		best.Method, 100*best.Stats[CCCert1e3].Mean, strings.Join(above, ", "))
}

func dense(g *Group) *Row {
	for _, r := range g.Rows {
		if r.Dense() {
			return r
		}
	}
	return nil
}

func bestPruned(g *Group) *Row {
	var best *Row
	for _, r := range g.Rows {
		if r.Dense() || r.Stats[CCCert1e3].N == 0 {
			continue
		}
		if best == nil || r.Stats[CCCert1e3].Mean > best.Stats[CCCert1e3].Mean {
			best = r
		}
	}
	return best
}

// writeCommands lists the command lines of each method's first seed.
func writeCommands(w io.Writer, g *Group) {
	fmt.Fprintf(w, "<details><summary>Commands (first seed of each method)</summary>\n\n```\n")
	for _, r := range g.Rows {
		if len(r.Cells) == 0 {
			continue
		}
		c := r.Cells[0]
		fmt.Fprintf(w, "# %s (%s): train %.0f s, compress %.0f s, verify %.0f s\n", c.ID, r.Method, c.Wall.Train, c.Wall.Compress, c.Wall.Verify+c.Wall.Smoothing)
		for _, cmd := range c.Commands {
			fmt.Fprintln(w, cmd)
		}
	}
	fmt.Fprintf(w, "```\n\n</details>\n\n")
}

func mkdirFor(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

package report

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

func optPct(v *float64) string {
	if v == nil {
		return "–"
	}
	return pct(*v)
}

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

// rows builds the summary table both the Markdown and HTML forms print.
func summaryRows(r *Report) [][3]string {
	base := r.Baseline
	bv := func(f func(*Model) string) string {
		if base == nil {
			return "–"
		}
		return f(base)
	}
	same := func() string {
		if base == nil {
			return "–"
		}
		return "same"
	}
	rows := [][3]string{
		{"file", r.Model.Path, bv(func(m *Model) string { return m.Path })},
		{"parameters (nonzero)", fmt.Sprintf("%d (%d)", r.Model.Params, r.Model.Nonzero), bv(func(m *Model) string { return fmt.Sprintf("%d (%d)", m.Params, m.Nonzero) })},
		{"sparsity of prunable weights", pct(r.Model.Sparsity), bv(func(m *Model) string { return pct(m.Sparsity) })},
		{"file size", kib(r.Model.Bytes), bv(func(m *Model) string { return kib(m.Bytes) })},
		{"gzip size", kib(r.Model.GzipBytes), bv(func(m *Model) string { return kib(m.GzipBytes) })},
	}
	keys := make([]string, 0, len(r.Model.LatencyMs))
	latency := func(m *Model, k string) string {
		v, ok := m.LatencyMs[k]
		if !ok {
			return "–"
		}
		if b, err := strconv.Atoi(k); err == nil && b > 1 {
			return fmt.Sprintf("%.2f ms (%.3f ms/image)", v, v/float64(b))
		}
		return fmt.Sprintf("%.2f ms", v)
	}
	for k := range r.Model.LatencyMs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rows = append(rows, [3]string{"onnxruntime latency (median), batch " + k, latency(&r.Model, k),
			bv(func(m *Model) string { return latency(m, k) })})
	}
	rows = append(rows, [3]string{fmt.Sprintf("clean accuracy (%d images)", r.Clean.Images), pct(r.Clean.Accuracy), optPct(r.Clean.BaselineAccuracy)})
	if c := r.Corruptions; c != nil {
		setting := fmt.Sprintf("%d images × %d corruptions × %d severities", c.Images, len(corruptionNames(c))-countIn(corruptionNames(c), c.Excluded), len(c.Severities))
		if len(c.Excluded) > 0 {
			setting += "; " + strings.Join(c.Excluded, ", ") + " measured but left out"
		}
		rows = append(rows, [3]string{"corruption sweep", setting, same()})
		rows = append(rows, [3]string{"mean corruption accuracy", pct(c.Mean), optPct(c.BaselineMean)})
		rows = append(rows, [3]string{"mCE (unnormalized)", pct(c.MCE), optPct(c.BaselineMCE)})
		if c.RelativeMCE != nil {
			rows = append(rows, [3]string{"mCE (unnormalized), model / baseline", fmt.Sprintf("%.3f", *c.RelativeMCE), "1"})
		}
		if c.MCEVsBaseline != nil {
			rows = append(rows, [3]string{"mCE, baseline-normalized per corruption (Hendrycks & Dietterich)", fmt.Sprintf("%.3f", *c.MCEVsBaseline), "1"})
		}
		if c.RelativeMCEVsBaseline != nil {
			rows = append(rows, [3]string{"relative mCE, baseline-normalized (Hendrycks & Dietterich)", fmt.Sprintf("%.3f", *c.RelativeMCEVsBaseline), "1"})
		}
	}
	if c := r.CCCert; c != nil {
		rows = append(rows, [3]string{"CC-Cert setting", fmt.Sprintf("%s; %d images, n=%d, k=%d, δ=%g", c.Transform, c.Images, c.N, c.K, c.Delta), same()})
		for i, e := range c.Eps {
			b := "–"
			if i < len(c.Baseline) {
				b = pct(c.Baseline[i])
			}
			rows = append(rows, [3]string{fmt.Sprintf("CC-Cert certified accuracy, ε=%g", e), pct(c.Certified[i]), b})
		}
		if c.Empirical != nil {
			rows = append(rows, [3]string{fmt.Sprintf("CC-Cert empirical accuracy (correct at all %d grid transforms)", c.GridPoints), pct(*c.Empirical), optPct(c.BaselineEmpirical)})
		}
		if len(c.PerImage) > 0 && len(c.BaselinePerImage) > 0 {
			for _, e := range c.Eps {
				p := Paired(c.PerImage, c.BaselinePerImage, e)
				rows = append(rows, [3]string{fmt.Sprintf("CC-Cert, ε=%g: of the %d images, certified for one model only (exact sign test p=%.2g)", e, p.Common, SignTest(p.OnlyA, p.OnlyB)),
					fmt.Sprint(p.OnlyA), fmt.Sprint(p.OnlyB)})
			}
		}
	}
	if s := r.Smoothing; s != nil {
		rows = append(rows, [3]string{"smoothing setting", fmt.Sprintf("σ=%g; %d images, n0=%d, n=%d, α=%g; largest certifiable radius %.3f",
			s.Sigma, s.Images, s.N0, s.N, s.Alpha, MaxRadius(s)), same()})
		rmax := MaxRadius(s)
		for i, rad := range s.Radii {
			label := fmt.Sprintf("smoothing certified accuracy, r=%g (σ=%g)", rad, s.Sigma)
			if rad > rmax {
				// Nothing can be certified that far with these n and α,
				// whatever the model: a 0 would read as a result.
				rows = append(rows, [3]string{label, fmt.Sprintf("n/a: beyond the largest certifiable radius %.3f (raise --n)", rmax), same()})
				continue
			}
			b := "–"
			if i < len(s.Baseline) {
				b = pct(s.Baseline[i])
			}
			rows = append(rows, [3]string{label, pct(s.Certified[i]), b})
		}
		b := "–"
		if s.BaselineACR != nil {
			b = fmt.Sprintf("%.3f", *s.BaselineACR)
		}
		rows = append(rows, [3]string{"smoothing ACR", fmt.Sprintf("%.3f", s.ACR), b})
	}
	return rows
}

// WriteMarkdown writes the report as Markdown, referring to the plots by
// file name.
func WriteMarkdown(w io.Writer, r *Report, plots []Plot) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# csam-onnx verification report\n\n")
	fmt.Fprintf(&b, "Measured in onnxruntime %s on the exported file. Data: %s", r.ORTVersion, r.Data)
	if r.DataNote != "" {
		fmt.Fprintf(&b, " (%s)", r.DataNote)
	}
	fmt.Fprintf(&b, ". Seed %d.\n\nCommand: `%s`\n\n", r.Seed, r.Command)
	fmt.Fprintf(&b, "| | model | baseline |\n|---|---|---|\n")
	for _, row := range summaryRows(r) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", row[0], mdEscape(row[1]), mdEscape(row[2]))
	}
	if c := r.Corruptions; c != nil {
		fmt.Fprintf(&b, "\n## Corruptions (CIFAR-10-C-style, regenerated)\n\n")
		if c.Note != "" {
			fmt.Fprintf(&b, "%s\n\n", c.Note)
		}
		if len(c.Excluded) > 0 {
			fmt.Fprintf(&b, "Left out of the means (marked *): %s.\n\n", strings.Join(c.Excluded, ", "))
		}
		head, rows := corruptionTable(c)
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, row := range rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
		if r.Baseline != nil {
			b.WriteString("\nAccuracy of the model, the baseline's in parentheses.\n")
		}
	}
	if len(plots) > 0 {
		b.WriteString("\n## Plots\n\n")
		for _, p := range plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n%s\n\n", p.Title, p.File, p.Caption)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// MaxRadius is the largest radius randomized smoothing can certify with
// s's σ, n and α: σ·Φ⁻¹(α^{1/n}), reached when all n noisy votes agree.
// Rows at larger radii are 0 by construction, not because of the model.
func MaxRadius(s *Smoothing) float64 {
	if s.N < 1 || !(s.Alpha > 0 && s.Alpha < 1) {
		return 0
	}
	return s.Sigma * distuv.UnitNormal.Quantile(math.Pow(s.Alpha, 1/float64(s.N)))
}

func countIn(names, set []string) int {
	n := 0
	for _, x := range names {
		if slices.Contains(set, x) {
			n++
		}
	}
	return n
}

// corruptionTable is the per-corruption accuracy table, one row per
// corruption and one column per severity; a cell holds the model's
// accuracy and, with a baseline, the baseline's in parentheses.
func corruptionTable(c *Corruptions) (head []string, rows [][]string) {
	head = []string{"corruption", "family"}
	for _, s := range c.Severities {
		head = append(head, fmt.Sprintf("s%d", s))
	}
	for _, name := range corruptionNames(c) {
		fam := ""
		cells := map[int]string{}
		for _, it := range c.Items {
			if it.Name == name {
				fam = it.Family
				cell := pct(it.Accuracy)
				if it.BaselineAccuracy != nil {
					cell += " (" + pct(*it.BaselineAccuracy) + ")"
				}
				cells[it.Severity] = cell
			}
		}
		if slices.Contains(c.Excluded, name) {
			name += " *"
		}
		row := []string{name, fam}
		for _, s := range c.Severities {
			row = append(row, cells[s])
		}
		rows = append(rows, row)
	}
	return head, rows
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func corruptionNames(c *Corruptions) []string {
	var names []string
	seen := map[string]bool{}
	for _, it := range c.Items {
		if !seen[it.Name] {
			seen[it.Name] = true
			names = append(names, it.Name)
		}
	}
	return names
}

var htmlPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>csam-onnx report: {{.R.Model.Path}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2rem;overflow-wrap:anywhere}figure{margin:1.5rem 0}img{max-width:100%}
figcaption{color:#555;font-size:.9rem}table.sweep td{font-variant-numeric:tabular-nums;white-space:nowrap;font-size:.85rem}
table.summary td:first-child{white-space:nowrap}table.summary td{font-variant-numeric:tabular-nums}
</style></head><body>
<h1>csam-onnx verification report</h1>
<p>Measured in onnxruntime {{.R.ORTVersion}} on the exported file. Data: {{.R.Data}}{{if .R.DataNote}} ({{.R.DataNote}}){{end}}. Seed {{.R.Seed}}.</p>
<p>Command: <code>{{.R.Command}}</code></p>
<h2>Summary</h2>
<table class="summary"><tr><th></th><th>model</th><th>baseline</th></tr>
{{range .Rows}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td><td>{{index . 2}}</td></tr>
{{end}}</table>
{{with .R.Corruptions}}<h2>Corruptions (CIFAR-10-C-style, regenerated)</h2>
{{if .Note}}<p>{{.Note}}</p>{{end}}{{if .Excluded}}<p>Left out of the means (marked *): {{range $i, $e := .Excluded}}{{if $i}}, {{end}}{{$e}}{{end}}.</p>{{end}}
<table class="sweep"><tr>{{range $.SweepHead}}<th>{{.}}</th>{{end}}</tr>
{{range $.SweepRows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{if $.R.Baseline}}<p>Accuracy of the model, the baseline's in parentheses.</p>{{end}}{{end}}
{{if .Plots}}<h2>Plots</h2>{{end}}
{{range .Plots}}<figure><img alt="{{.Title}}" src="data:image/png;base64,{{.Data}}"><figcaption>{{.Caption}}</figcaption></figure>
{{end}}</body></html>
`))

// WriteHTML writes a self-contained HTML page with the plots embedded.
func WriteHTML(w io.Writer, r *Report, plots []Plot) error {
	type plotData struct {
		Title, Caption string
		Data           string
	}
	var pd []plotData
	for _, p := range plots {
		pd = append(pd, plotData{Title: p.Title, Caption: p.Caption, Data: base64.StdEncoding.EncodeToString(p.PNG)})
	}
	data := map[string]any{"R": r, "Rows": summaryRows(r), "Plots": pd}
	if r.Corruptions != nil {
		data["SweepHead"], data["SweepRows"] = corruptionTable(r.Corruptions)
	}
	return htmlPage.Execute(w, data)
}

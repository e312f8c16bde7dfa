package results

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/report"
)

// cell builds a result with the given clean and ε=1e-3 certified accuracy.
func cell(method string, sp float64, seed uint64, clean, cert float64) *Cell {
	base := method
	if base == "csam-B" {
		base = "csam"
	}
	id := fmt.Sprintf("d_a_s%g_%s_seed%d", sp, method, seed)
	if method == "dense" {
		base, sp = "", 0
		id = fmt.Sprintf("d_a_dense_seed%d", seed)
	}
	order := map[string]int{"dense": 0, "magnitude": 1, "csam": 2, "csam-B": 3}[method]
	return &Cell{Schema: Schema, ID: id, ConfigFile: "experiments/x.yaml", Data: "d", DataSpec: "fashion-mnist", Arch: "a", Sparsity: sp,
		Method: method, BaseMethod: base, MethodOrder: order, Seed: seed, Commands: []string{"csam-onnx verify x"},
		Verify: &report.Report{Schema: report.Schema, Clean: report.Clean{Images: 100, Accuracy: clean},
			Model:  report.Model{Params: 1000, Nonzero: 100, Bytes: 4096, GzipBytes: 2048, LatencyMs: map[string]float64{"1": 0.5}},
			CCCert: &report.CCCert{Transform: "brightness:0.2", Images: 10, N: 20, K: 2, Delta: 0.9, Eps: []float64{1e-4, 1e-3, 1e-2}, Certified: []float64{cert - 0.1, cert, cert + 0.1}}},
		Wall: Wall{Train: 60, Compress: 30, Verify: 10}}
}

func sample() []*Cell {
	return []*Cell{
		cell("dense", 0, 1, 0.90, 0.50), cell("dense", 0, 2, 0.92, 0.52),
		cell("magnitude", 0.9, 1, 0.85, 0.40), cell("magnitude", 0.9, 2, 0.87, 0.42),
		cell("csam", 0.9, 1, 0.905, 0.45), cell("csam", 0.9, 2, 0.905, 0.47),
		cell("csam-B", 0.9, 1, 0.80, 0.48),
		cell("magnitude", 0.5, 1, 0.91, 0.55),
	}
}

func TestGroups(t *testing.T) {
	gs := Groups(sample())
	if len(gs) != 2 || gs[0].Sparsity != 0.5 || gs[1].Sparsity != 0.9 {
		t.Fatalf("got %d groups, want sparsity 0.5 and 0.9 tables", len(gs))
	}
	// The dense row appears in every table of its (data, arch).
	if r := gs[0].Row("dense"); r == nil || len(r.Cells) != 2 {
		t.Errorf("sparsity 0.5 table lacks the shared dense row")
	}
	var names []string
	for _, r := range gs[1].Rows {
		names = append(names, r.Method)
	}
	if got := strings.Join(names, ","); got != "dense,magnitude,csam,csam-B" {
		t.Errorf("rows %s, want the experiment's method order dense,magnitude,csam,csam-B", got)
	}
	s := gs[1].Row("magnitude").Stats[CCCert1e3]
	// mean of 0.40 and 0.42; sample std |0.42−0.40|/√2.
	if s.N != 2 || math.Abs(s.Mean-0.41) > 1e-12 || math.Abs(s.Std-0.02/math.Sqrt2) > 1e-12 {
		t.Errorf("magnitude certified %+v, want mean 0.41, std 0.01414, n 2", s)
	}
}

func TestComparison(t *testing.T) {
	gs := Groups(sample())
	txt := comparison(gs[1])
	for _, want := range []string{
		// C-SAM 0.46 vs magnitude 0.41: +5 points, larger than the two
		// stds (0.0141 each).
		"vs magnitude: +5.00 points (C-SAM higher, larger than the sum of the two standard deviations)",
		// clean 0.905 vs dense 0.91.
		"C-SAM 90.50% vs dense 91.00% (-0.50 points); within 1 point of dense (or above it): yes",
		"csam-B +2.00",
		"Highest certified accuracy at ε=1e-3 among pruned methods: csam-B",
		"C-SAM entries above the best baseline (magnitude, 41.00%) on certified accuracy at ε=1e-3: csam (46.00%, n=2), csam-B (48.00%, n=1).",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("comparison lacks %q:\n%s", want, txt)
		}
	}
	if txt := comparison(gs[0]); !strings.Contains(txt, "no C-SAM cells") {
		t.Errorf("a table without C-SAM says:\n%s", txt)
	}
}

func TestWriteDeterministic(t *testing.T) {
	dir := t.TempDir()
	for _, c := range sample() {
		if _, err := WriteFile(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	cells, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var outs [2][]byte
	var plots [2][]byte
	for i := range 2 {
		opts := Options{Markdown: filepath.Join(dir, "out", "R.md"), PlotDir: filepath.Join(dir, "plots"), Regenerate: "regen"}
		files, err := Write(cells, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 5 {
			t.Errorf("wrote %v, want 2 plots per table and the Markdown", files)
		}
		outs[i], _ = os.ReadFile(opts.Markdown)
		plots[i], _ = os.ReadFile(filepath.Join(opts.PlotDir, "d_a_s0.9_scatter.png"))
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(plots[0], plots[1]) || len(plots[0]) == 0 {
		t.Error("two regenerations from the same files differ")
	}
	md := string(outs[0])
	for _, want := range []string{"| csam | 2 | 90.50 ± 0.00 |", "| csam-B | 1 | 80.00 |", "![CC-Cert certified accuracy vs ε, d, a, sparsity 0.9](../plots/d_a_s0.9_cccert.png)"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestWriteRemovesStalePlots: when a group's cells are gone, the next
// Write removes its plots, and leaves every other file in the folder.
func TestWriteRemovesStalePlots(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Markdown: filepath.Join(dir, "R.md"), PlotDir: filepath.Join(dir, "plots"), Regenerate: "regen"}
	if _, err := Write(sample(), opts); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(opts.PlotDir, "d_a_s0.5_cccert.png")
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the 0.5 group's plot was not written: %v", err)
	}
	other := filepath.Join(opts.PlotDir, "notes_cccert.txt")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var cells []*Cell
	for _, c := range sample() {
		if c.Sparsity != 0.5 {
			cells = append(cells, c)
		}
	}
	if _, err := Write(cells, opts); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{stale, filepath.Join(opts.PlotDir, "d_a_s0.5_scatter.png")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there (err %v)", gone, err)
		}
	}
	for _, kept := range []string{other, filepath.Join(opts.PlotDir, "d_a_s0.9_cccert.png"), filepath.Join(opts.PlotDir, "d_a_s0.9_scatter.png")} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("%s was removed: %v", kept, err)
		}
	}
}

// TestBudgetGivenModels: dense models the experiment was given are named,
// not counted as 0 h of training.
func TestBudgetGivenModels(t *testing.T) {
	cells := sample()
	for _, c := range cells {
		c.Settings = map[string][]string{"train": {"--model=../models/m.onnx", "--sha256=ab"}}
		c.Wall.Train = 0
	}
	var b bytes.Buffer
	writeBudget(&b, cells)
	want := "Compute (wall time of the recorded runs): dense models given, not trained by the experiment: ../models/m.onnx (their training time is not counted), compression 0.07 h, verification 0.02 h; 0.09 h in all."
	if got := strings.TrimSpace(b.String()); got != want {
		t.Errorf("budget line\n%s\nwant\n%s", got, want)
	}
	b.Reset()
	cells[0].Commands = []string{"csam-onnx --seed 1 --threads 1 compress m.onnx"}
	cells[1].Commands = []string{"csam-onnx --threads=2 verify x"}
	cells[2].Commands = []string{"csam-onnx --seed 1 --threads 1 verify y"}
	writeBudget(&b, cells)
	if want := " Cells by thread count: 2 with --threads 1, 1 with --threads 2."; !strings.Contains(b.String(), want) {
		t.Errorf("budget line lacks %q: %s", want, b.String())
	}
	b.Reset()
	writeBudget(&b, sample())
	if !strings.Contains(b.String(), "dense training 0.03 h (2 dense models)") {
		t.Errorf("budget line with trained dense models: %s", b.String())
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	c := sample()[0]
	p, err := WriteFile(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	renamed := filepath.Join(dir, "other.json")
	os.Rename(p, renamed)
	if _, err := ReadFile(renamed); err == nil || !strings.Contains(err.Error(), "must be named") {
		t.Errorf("a cell file under another name: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"schema":"x"}`), 0o644)
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("ReadDir with an invalid file: %v, want an error naming bad.json", err)
	}
}

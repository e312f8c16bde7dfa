package conformance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// The tolerance an output element must meet: |got - want| <= Atol +
// Rtol·|want|. These are the bounds the material's README gives, which
// onnxruntime 1.24.3 meets on every test it passes.
const (
	Atol = 1e-5
	Rtol = 1e-4
)

// tolerance is a comparison bound, atol + rtol·|want|. For a test compared
// more loosely than Atol/Rtol because its expected data is less precise
// than float32 arithmetic, Why says so in the report.
type tolerance struct {
	Atol, Rtol float64
	Why        string
}

// overrides are the tests compared with a looser tolerance, by test
// folder name. Keep this list short and every reason checkable.
var overrides = map[string]tolerance{
	// (0.8816+0.4353+0.5772+0.6623)/9 = 0.284044, written as 0.2841 in the
	// expected output; onnxruntime is off by the same 5.56e-5.
	"test_averagepool_2d_ceil_last_window_starts_on_pad": {
		Atol: 1e-4, Rtol: 1e-4,
		Why: "expected outputs are typed in with 4 decimals (0.2841 for 2.5564/9 = 0.28404); compared at 1e-4 abs, which onnxruntime needs too (its diff is 5.56e-5)",
	},
}

// Folders are the test folders of the conformance material, in report
// order.
var Folders = []string{"node", "node-v1.12.0", "pytorch-operator", "light-models"}

// Status classifies one test.
type Status string

// The statuses of a test.
const (
	Pass        Status = "pass"
	Fail        Status = "fail"
	Unsupported Status = "unsupported"
)

// Result is the outcome of one test.
type Result struct {
	Folder, Test string
	Status       Status
	// WorstDiff is the largest absolute difference over every output
	// element of every data set that ran (0 when nothing ran).
	WorstDiff float64
	// Reason explains a failure or why the test is unsupported.
	Reason string
	// ORT is onnxruntime's status on the test (PASS, FAIL, ERROR, SKIP),
	// "" when the results file does not list it; ORTDetail its message.
	ORT, ORTDetail string
	// Ops are the test graph's op types, sorted.
	Ops []string
}

// ORTPasses reports whether onnxruntime passes the test.
func (r *Result) ORTPasses() bool { return r.ORT == "PASS" }

// ORTResult is one line of a <folder>.ort-results.tsv file.
type ORTResult struct {
	Status, Set, Detail string
	MaxAbsDiff          float64
}

// ReadORTResults reads a results file (columns STATUS DIR SET MAXABSDIFF
// DETAIL, tab-separated; lines that do not have them, such as the version
// line, are skipped). Tests with several data sets keep their worst
// status.
func ReadORTResults(path string) (map[string]ORTResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	defer f.Close()
	out := map[string]ORTResult{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 4 {
			continue
		}
		d, _ := strconv.ParseFloat(cols[3], 64)
		r := ORTResult{Status: cols[0], Set: cols[2], MaxAbsDiff: d}
		if len(cols) > 4 {
			r.Detail = cols[4]
		}
		if prev, ok := out[cols[1]]; ok && prev.Status != "PASS" {
			continue
		}
		out[cols[1]] = r
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", path, err)
	}
	return out, nil
}

// RunAll runs every test of the given folders under root (nil means
// Folders), in folder order and sorted by test name within a folder.
// Missing results files leave Result.ORT empty.
func RunAll(root string, folders []string) ([]Result, error) {
	if folders == nil {
		folders = Folders
	}
	var all []Result
	for _, folder := range folders {
		dir := filepath.Join(root, folder)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("conformance: %w", err)
		}
		ort, err := ReadORTResults(filepath.Join(root, folder+".ort-results.tsv"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			r := RunTest(filepath.Join(dir, e.Name()))
			r.Folder = folder
			if o, ok := ort[e.Name()]; ok {
				r.ORT, r.ORTDetail = o.Status, o.Detail
			}
			all = append(all, r)
		}
	}
	return all, nil
}

// RunTest runs the test in dir: it reads model.onnx, and for each
// test_data_set_N compiles the model for the shapes of its inputs, runs
// Forward and compares every output. It never panics: a panic inside the
// engine is reported as a failure.
func RunTest(dir string) (res Result) {
	res.Test = filepath.Base(dir)
	defer func() {
		if p := recover(); p != nil {
			res.Status = Fail
			res.Reason = fmt.Sprintf("panic: %v", p)
		}
	}()
	// AnyVersion: the material includes opset-1 models that onnxruntime
	// runs; the engine is what is measured here, not the reader's range.
	m, err := onnxio.ReadFileWith(filepath.Join(dir, "model.onnx"), &onnxio.ReadOptions{AnyVersion: true})
	if err != nil {
		res.Status, res.Reason = Unsupported, "cannot read the model: "+err.Error()
		return res
	}
	res.Ops = opTypes(m.Graph)
	if why := unsupportedTypes(m.Graph); why != "" {
		res.Status, res.Reason = Unsupported, why
		return res
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	sort.Strings(sets)
	if len(sets) == 0 {
		res.Status, res.Reason = Unsupported, "no test_data_set_* folder"
		return res
	}
	res.Status = Pass
	tol := tolerance{Atol: Atol, Rtol: Rtol}
	if o, ok := overrides[res.Test]; ok {
		tol = o
		res.Reason = "tolerance " + fmt.Sprint(o.Atol) + " + " + fmt.Sprint(o.Rtol) + "·|want|: " + o.Why
	}
	for _, set := range sets {
		worst, err := runSet(m, set, tol)
		res.WorstDiff = math.Max(res.WorstDiff, worst)
		if err != nil {
			res.Status, res.Reason = classify(m.Graph, err)
			if len(sets) > 1 {
				res.Reason = filepath.Base(set) + ": " + res.Reason
			}
			return res
		}
	}
	return res
}

// mismatchError reports outputs outside the tolerance.
type mismatchError struct{ msg string }

func (e *mismatchError) Error() string { return e.msg }

// runSet runs one data set and returns the worst absolute difference.
func runSet(m *graph.Model, set string, tol tolerance) (float64, error) {
	inputs, err := readTensors(set, "input")
	if err != nil {
		return 0, err
	}
	wants, err := readTensors(set, "output")
	if err != nil {
		return 0, err
	}
	m, fed, err := bindIntegerInputs(m, inputs)
	if err != nil {
		return 0, err
	}
	shapes := make([][]int, len(fed))
	for i, t := range fed {
		shapes[i] = t.Shape
	}
	p, err := autodiff.Compile(m, shapes, &autodiff.Options{Params: []string{}})
	if err != nil {
		return 0, err
	}
	for i, t := range fed {
		dst := p.Input(i)
		if dst.DType != t.DType && !(dst.DType.IsInteger() && t.DType.IsInteger()) {
			return 0, fmt.Errorf("input %d is %s, the model declares %s", i, t.DType, dst.DType)
		}
		if err := copyInto(dst, t); err != nil {
			return 0, fmt.Errorf("input %d: %w", i, err)
		}
	}
	if err := p.Forward(); err != nil {
		return 0, err
	}
	if len(wants) != len(m.Graph.Outputs) {
		return 0, fmt.Errorf("%d expected outputs for %d graph outputs", len(wants), len(m.Graph.Outputs))
	}
	var worst float64
	var bad []string
	for i, want := range wants {
		name := m.Graph.Outputs[i].Name
		d, msg := compare(p.Output(i), want, tol.Atol, tol.Rtol)
		worst = math.Max(worst, d)
		if msg != "" {
			bad = append(bad, fmt.Sprintf("output %q: %s", name, msg))
		}
	}
	if bad != nil {
		return worst, &mismatchError{strings.Join(bad, "; ")}
	}
	return worst, nil
}

// bindIntegerInputs returns a copy of m in which every graph input fed an
// integer tensor (a shape, axes, slice bounds, indices, pads) is an
// initializer holding that tensor, and the tensors still to be fed. The
// engine fixes every shape when it compiles, so such operands must be
// known then; the backend tests feed them as inputs only because the
// reference runtimes do not care.
func bindIntegerInputs(m *graph.Model, inputs []*tensor.Tensor) (*graph.Model, []*tensor.Tensor, error) {
	isInit := map[string]bool{}
	for _, in := range m.Graph.Initializers {
		isInit[in.Name] = true
	}
	var fedNames []*graph.ValueInfo
	for _, vi := range m.Graph.Inputs {
		if !isInit[vi.Name] {
			fedNames = append(fedNames, vi)
		}
	}
	if len(inputs) != len(fedNames) {
		return nil, nil, fmt.Errorf("%d input files for %d graph inputs", len(inputs), len(fedNames))
	}
	g := *m.Graph
	g.Initializers = append([]*graph.Initializer(nil), m.Graph.Initializers...)
	var fed []*tensor.Tensor
	for i, t := range inputs {
		if t.DType.IsInteger() {
			g.Initializers = append(g.Initializers, &graph.Initializer{Name: fedNames[i].Name, Value: t})
			continue
		}
		fed = append(fed, t)
	}
	mm := *m
	mm.Graph = &g
	return &mm, fed, nil
}

// readTensors reads <prefix>_0.pb, <prefix>_1.pb, ... from dir.
func readTensors(dir, prefix string) ([]*tensor.Tensor, error) {
	var ts []*tensor.Tensor
	for i := 0; ; i++ {
		path := filepath.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i))
		if _, err := os.Stat(path); err != nil {
			return ts, nil
		}
		t, err := onnxio.ReadTensorFile(path)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
}

func copyInto(dst, src *tensor.Tensor) error {
	if !slices.Equal(dst.Shape, src.Shape) {
		return fmt.Errorf("shape %v, buffer %v", src.Shape, dst.Shape)
	}
	switch {
	case src.DType == tensor.Float32:
		copy(dst.F32, src.F32)
	case src.DType == tensor.Float64:
		copy(dst.F64, src.F64)
	case src.DType.IsInteger():
		copy(dst.I64, src.I64)
	default:
		return fmt.Errorf("element type %s is not supported", src.DType)
	}
	return nil
}

// compare returns the worst absolute difference between got and want and
// a description of the mismatch ("" when every element is within atol +
// rtol·|want|).
func compare(got, want *tensor.Tensor, atol, rtol float64) (float64, string) {
	if !slices.Equal(got.Shape, want.Shape) {
		return math.Inf(1), fmt.Sprintf("shape %v, want %v", got.Shape, want.Shape)
	}
	var worst float64
	bad := 0
	check := func(g, w float64) {
		if math.IsNaN(w) && math.IsNaN(g) {
			return
		}
		if math.IsInf(w, 0) && g == w {
			return
		}
		d := math.Abs(g - w)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		worst = math.Max(worst, d)
		if !(d <= atol+rtol*math.Abs(w)) {
			bad++
		}
	}
	switch {
	case want.DType == tensor.Float32 && got.DType == tensor.Float32:
		for i, w := range want.F32 {
			check(float64(got.F32[i]), float64(w))
		}
	case want.DType == tensor.Float64 && got.DType == tensor.Float64:
		for i, w := range want.F64 {
			check(got.F64[i], w)
		}
	case want.DType.IsInteger() && got.DType.IsInteger():
		for i, w := range want.I64 {
			if d := math.Abs(float64(got.I64[i]) - float64(w)); d > 0 {
				worst = math.Max(worst, d)
				bad++
			}
		}
	default:
		return math.Inf(1), fmt.Sprintf("element type %s, want %s", got.DType, want.DType)
	}
	if bad > 0 {
		return worst, fmt.Sprintf("%d/%d elements out of tolerance (worst abs diff %.3g)", bad, want.Len(), worst)
	}
	return worst, ""
}

// classify turns a run error into a status: unsupported ops, and errors in
// tests whose graph inputs or outputs need element types other than
// float32 and int64, are unsupported; anything else is a failure.
func classify(g *graph.Graph, err error) (Status, string) {
	var ue *autodiff.UnsupportedOpError
	if errors.As(err, &ue) {
		var ops []string
		for _, n := range ue.Nodes {
			op := n.OpType
			if n.Domain != "" && n.Domain != "ai.onnx" {
				op = n.Domain + "." + op
			}
			if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
		return Unsupported, "op outside the engine's set: " + strings.Join(ops, ", ")
	}
	var me *mismatchError
	if !errors.As(err, &me) {
		if dts := nonFloatTypes(g); dts != "" {
			return Unsupported, "non-float tensors (" + dts + ") outside the op set: " + err.Error()
		}
	}
	return Fail, err.Error()
}

// nonFloatTypes lists the element types of graph inputs and outputs other
// than float32 and int64.
func nonFloatTypes(g *graph.Graph) string {
	var dts []string
	for _, vi := range append(append([]*graph.ValueInfo{}, g.Inputs...), g.Outputs...) {
		if vi.Type == nil || !vi.Type.IsTensor {
			continue
		}
		if dt := vi.Type.Elem; dt != tensor.Float32 && dt != tensor.Int64 && !slices.Contains(dts, dt.String()) {
			dts = append(dts, dt.String())
		}
	}
	return strings.Join(dts, ", ")
}

// unsupportedTypes explains why a graph's inputs or outputs cannot be
// given to the engine at all (non-tensor values), or returns "".
func unsupportedTypes(g *graph.Graph) string {
	for _, vi := range append(append([]*graph.ValueInfo{}, g.Inputs...), g.Outputs...) {
		if vi.Type != nil && !vi.Type.IsTensor {
			return fmt.Sprintf("value %q is not a tensor (a sequence, optional or map); the engine runs tensors only", vi.Name)
		}
	}
	return ""
}

func opTypes(g *graph.Graph) []string {
	var ops []string
	for _, n := range g.Nodes {
		if !slices.Contains(ops, n.OpType) {
			ops = append(ops, n.OpType)
		}
	}
	sort.Strings(ops)
	return ops
}

// Counts summarizes the results of one folder.
type Counts struct {
	Folder                                   string
	Total, Pass, Fail, Unsupported, ORTFails int
	// ORTPassEngineFail counts tests onnxruntime passes and the engine
	// fails (excluding unsupported ones).
	ORTPassEngineFail int
}

// Summarize counts results per folder, in the order the folders first
// appear, plus a total row.
func Summarize(results []Result) []Counts {
	var out []Counts
	idx := map[string]int{}
	total := Counts{Folder: "all"}
	for _, r := range results {
		i, ok := idx[r.Folder]
		if !ok {
			i = len(out)
			idx[r.Folder] = i
			out = append(out, Counts{Folder: r.Folder})
		}
		for _, c := range []*Counts{&out[i], &total} {
			c.Total++
			switch r.Status {
			case Pass:
				c.Pass++
			case Fail:
				c.Fail++
				if r.ORTPasses() {
					c.ORTPassEngineFail++
				}
			case Unsupported:
				c.Unsupported++
			}
			if !r.ORTPasses() {
				c.ORTFails++
			}
		}
	}
	return append(out, total)
}

// Markdown writes the report: a summary table per folder, then one row per
// test. command is the command that made it, quoted in the header; notes
// are extra paragraphs for the header (the machine, the GEMM backend).
func Markdown(w io.Writer, results []Result, command string, notes ...string) error {
	var b strings.Builder
	b.WriteString("# ONNX conformance of the Go engine\n\n")
	fmt.Fprintf(&b, "Generated by `%s` from the backend-test material in `../shared/onnx-conformance/` (see its README). ", command)
	fmt.Fprintf(&b, "Each test's outputs are compared with |got − want| ≤ %g + %g·|want| (integer outputs exactly); ", Atol, Rtol)
	b.WriteString("*worst diff* is the largest absolute difference over every output element. ")
	b.WriteString("*ORT* is what onnxruntime 1.24.3 does on the same test (from the `*.ort-results.tsv` files); ")
	b.WriteString("*ort-fails* counts the tests onnxruntime does not pass (FAIL, ERROR, or SKIP when its Go binding cannot feed the inputs).\n\n")
	b.WriteString("The engine fixes every shape when it compiles, so graph inputs fed integer tensors (shapes, axes, slice bounds, pads, indices) are bound as constants of the compiled model; float inputs are fed at run time. ")
	b.WriteString("A test is *unsupported* when it uses an op outside the engine's set, a non-tensor value, or fails on tensors other than float32 and int64; any other error, and every numeric mismatch, is a *fail*. ")
	b.WriteString("`TestConformance` (package autodiff) fails when a test onnxruntime passes is a *fail* here, unless its row gives the reason as a known failure.\n\n")
	for _, n := range notes {
		b.WriteString(n + "\n\n")
	}
	b.WriteString("| folder | total | pass | fail | unsupported | ort-fails | ORT passes, engine fails |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range Summarize(results) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", c.Folder, c.Total, c.Pass, c.Fail, c.Unsupported, c.ORTFails, c.ORTPassEngineFail)
	}
	b.WriteString("\n## Every test\n\n| folder | test | status | worst diff | ORT | reason |\n|---|---|---|---:|---|---|\n")
	for _, r := range results {
		diff := "–"
		if r.WorstDiff > 0 || r.Status == Pass {
			diff = fmt.Sprintf("%.3g", r.WorstDiff)
		}
		ort := r.ORT
		if ort == "" {
			ort = "?"
		}
		if r.ORT != "" && r.ORT != "PASS" && r.ORTDetail != "" {
			ort += ": " + r.ORTDetail
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Folder, r.Test, r.Status, diff, mdCell(ort), mdCell(r.Reason))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell makes s safe inside a Markdown table cell and keeps it short.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if r := []rune(s); len(r) > 700 {
		s = string(r[:700]) + "…"
	}
	return s
}

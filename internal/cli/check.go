package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// DefaultCheckATol is check's default tolerance on the absolute difference
// between the Go engine and onnxruntime. Both compute in float32 but sum
// in different orders (im2col GEMM vs onnxruntime's MLAS kernels); on the
// project's fixtures the worst difference is a few 1e-6, so 1e-4 leaves a
// wide margin while still catching a wrong kernel, whose errors are of the
// order of the activations themselves.
const DefaultCheckATol = 1e-4

// CheckOptions are the inputs of `csam-onnx check`.
type CheckOptions struct {
	IO     *IOStreams
	Global *GlobalOptions

	Model string
	// Inputs are .pb tensor files, one per graph input in graph order;
	// empty means seeded random inputs.
	Inputs []string
	// Batch is the size given to a symbolic first dimension of random
	// inputs.
	Batch int
	ATol  float64
}

// NewCmdCheck returns the check command. runF, when non-nil, replaces
// checkRun.
func NewCmdCheck(ios *IOStreams, g *GlobalOptions, runF func(context.Context, *CheckOptions) error) *cobra.Command {
	opts := &CheckOptions{IO: ios, Global: g}
	cmd := &cobra.Command{
		Use:   "check <model.onnx> [--input FILE.pb]... [--batch N] [--seed S] [--atol A]",
		Short: "Run a model in the Go engine and in onnxruntime and compare the outputs",
		Long: `Run a model in csam-onnx's Go engine and in onnxruntime on the same inputs
and print, per output, the worst absolute and relative difference.

The inputs are the given .pb tensor files (ONNX TensorProto, as in the
backend tests' input_K.pb), one per graph input in order, or else seeded
random values (standard normal) of each input's declared shape, with a
symbolic first dimension set to --batch.

Exit status 0 when every output is within --atol (absolute), 3 when one is
not, 1 when the model cannot be run.`,
		Example: "  csam-onnx check model.onnx\n  csam-onnx check model.onnx --input test_data_set_0/input_0.pb\n  csam-onnx check model.onnx --batch 8 --seed 7",
		Args:    exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Model = args[0]
			if opts.Batch < 1 {
				return FlagErrorf("--batch %d: want a batch size of at least 1", opts.Batch)
			}
			if !(opts.ATol >= 0) || math.IsInf(opts.ATol, 0) {
				return FlagErrorf("--atol %v: want a finite tolerance >= 0", opts.ATol)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return checkRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.Inputs, "input", nil, "input tensor file (.pb), once per graph input in order")
	f.IntVar(&opts.Batch, "batch", 1, "batch size for a symbolic first dimension of random inputs")
	f.Float64Var(&opts.ATol, "atol", DefaultCheckATol, "largest absolute difference accepted")
	return cmd
}

// CheckFailedError reports outputs that differ by more than the tolerance.
// It maps to exit status 3.
type CheckFailedError struct {
	Model  string
	ATol   float64
	Failed []OutputDiff
}

func (e *CheckFailedError) Error() string {
	var b []byte
	b = fmt.Appendf(b, "check: %s: the Go engine and onnxruntime differ beyond --atol %g:", e.Model, e.ATol)
	for i, d := range e.Failed {
		if i > 0 {
			b = append(b, ',')
		}
		if d.Problem != "" {
			b = fmt.Appendf(b, " output %q: %s", d.Name, d.Problem)
		} else {
			b = fmt.Appendf(b, " output %q: max abs diff %.3g at index %d", d.Name, d.MaxAbs, d.MaxAbsAt)
		}
	}
	b = append(b, "; report it with the model (or run with --input to pin the inputs)"...)
	return string(b)
}

// OutputDiff is the comparison of one output.
type OutputDiff struct {
	Name  string
	Shape []int
	// MaxAbs is the largest |go - ort|; MaxAbsAt its flat index.
	MaxAbs   float64
	MaxAbsAt int
	// MaxRel is the largest |go - ort| / max(|go|, |ort|) (0 where both
	// are 0): bounded by 2, informative only.
	MaxRel float64
	// Problem, when non-empty, is a mismatch that is not a number (shape,
	// type, NaN in one only).
	Problem string
	OK      bool
	// NaNs counts the entries that are NaN in both runtimes (they agree,
	// and check says so, but no model should answer NaN).
	NaNs int
}

func checkRun(ctx context.Context, opts *CheckOptions) error {
	m, err := loadModel(opts.Model)
	if err != nil {
		return err
	}
	// Dropout in training mode draws its own random mask in each runtime:
	// nothing to compare. (BatchNormalization in training mode is
	// deterministic and is compared.)
	for _, n := range graph.TrainingModeNodes(m) {
		if n.OpType == "Dropout" {
			return fmt.Errorf("check: %s was exported in training mode: Dropout %q drops at random (its training_mode input is true), so each runtime draws its own outputs and there is nothing to compare; export it in eval mode (model.eval() before torch.onnx.export), or write an eval-mode copy with the same weights ('csam-onnx train --init %s --eval-mode --epochs 0 --data SPEC -o COPY.onnx', for a classifier)", opts.Model, n.Name, opts.Model)
		}
	}
	inputs, err := checkInputs(m, opts)
	if err != nil {
		return err
	}
	if len(inputs) == 0 {
		return fmt.Errorf("check: %s: the model has no inputs; there is nothing to compare", opts.Model)
	}
	// Find onnxruntime first: a missing library should not cost a run of
	// the Go engine before it is reported.
	lib, err := runtime.FindLibrary(opts.Global.ORTLib)
	if err != nil {
		return err
	}
	if err := runtime.Init(lib); err != nil {
		return err
	}
	shapes := make([][]int, len(inputs))
	for i, t := range inputs {
		shapes[i] = t.Shape
	}

	progressf(opts.IO, opts.Global, "check: compiling %s for the Go engine", opts.Model)
	prog, err := autodiff.Compile(m, shapes, &autodiff.Options{Workers: opts.Global.Threads, Seed: opts.Global.Seed, Params: []string{}})
	if err != nil {
		return fmt.Errorf("check: %s: %w", opts.Model, err)
	}
	for i, t := range inputs {
		if err := copyInto(prog.Input(i), t); err != nil {
			return fmt.Errorf("check: %s: input %d: %w", opts.Model, i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	progressf(opts.IO, opts.Global, "check: running the Go engine")
	if err := prog.Forward(); err != nil {
		return fmt.Errorf("check: %s: Go engine: %w", opts.Model, err)
	}
	g := m.Graph
	goOuts := make(map[string]*tensor.Tensor, len(g.Outputs))
	for i, vi := range g.Outputs {
		goOuts[vi.Name] = prog.Output(i).Clone()
	}

	if err := ctx.Err(); err != nil {
		return err
	}
	progressf(opts.IO, opts.Global, "check: running onnxruntime")
	sess, err := runtime.Open(opts.Model, &runtime.SessionOptions{IntraOpThreads: opts.Global.Threads})
	if err != nil {
		return err
	}
	defer sess.Close()
	byName := map[string]*tensor.Tensor{}
	for i, vi := range graphInputs(g) {
		byName[vi.Name] = inputs[i]
	}
	ortIn := make([]*tensor.Tensor, 0, len(inputs))
	for _, info := range sess.Inputs() {
		t, ok := byName[info.Name]
		if !ok {
			return fmt.Errorf("check: %s: onnxruntime wants input %q, which is not a graph input of the model", opts.Model, info.Name)
		}
		ortIn = append(ortIn, t)
	}
	ortOuts, err := sess.Run(ortIn)
	if err != nil {
		return err
	}

	var diffs []OutputDiff
	var failed []OutputDiff
	for j, info := range sess.Outputs() {
		goT, ok := goOuts[info.Name]
		if !ok {
			return fmt.Errorf("check: %s: onnxruntime output %q is not a graph output of the model", opts.Model, info.Name)
		}
		d := compareTensors(info.Name, goT, ortOuts[j], opts.ATol)
		diffs = append(diffs, d)
		if !d.OK {
			failed = append(failed, d)
		}
	}
	if err := writeCheckTable(opts, inputs, diffs); err != nil {
		return err
	}
	for _, d := range diffs {
		if d.NaNs > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "check: note: output %q holds %d NaN values of %d in both runtimes: they agree, but the model computes no answer there (NaN weights, a negative BatchNormalization variance, an overflow?)\n", d.Name, d.NaNs, tensor.Numel(d.Shape))
		}
	}
	if len(failed) > 0 {
		return &CheckFailedError{Model: opts.Model, ATol: opts.ATol, Failed: failed}
	}
	return nil
}

// checkInputs reads the --input files or makes seeded random inputs, one
// per graph input in graph order.
func checkInputs(m *graph.Model, opts *CheckOptions) ([]*tensor.Tensor, error) {
	ins := graphInputs(m.Graph)
	if len(opts.Inputs) > 0 {
		if len(opts.Inputs) != len(ins) {
			return nil, FlagErrorf("--input given %d times, the model has %d inputs (%s); give one .pb file per input, in order, or none for random inputs",
				len(opts.Inputs), len(ins), valueNames(ins))
		}
		out := make([]*tensor.Tensor, len(ins))
		for i, path := range opts.Inputs {
			t, err := onnxio.ReadTensorFile(path)
			if err != nil {
				return nil, fmt.Errorf("--input %s: %w", path, err)
			}
			if err := fitsDeclared(ins[i], t); err != nil {
				return nil, fmt.Errorf("--input %s: %w", path, err)
			}
			out[i] = t
		}
		return out, nil
	}
	rng := rand.New(rand.NewPCG(opts.Global.Seed, 0xc4ec4))
	out := make([]*tensor.Tensor, len(ins))
	for i, vi := range ins {
		if vi.Type == nil || !vi.Type.IsTensor || !vi.Type.HasShape {
			return nil, fmt.Errorf("check: %s: input %q declares no shape; give its values with --input FILE.pb", opts.Model, vi.Name)
		}
		if vi.Type.Elem != tensor.Float32 && vi.Type.Elem != tensor.Uint8 {
			return nil, fmt.Errorf("check: %s: input %q is %s; random inputs are float32 or uint8 only, give its values with --input FILE.pb", opts.Model, vi.Name, vi.Type.Elem)
		}
		shape := make([]int, len(vi.Type.Shape))
		for k, d := range vi.Type.Shape {
			switch {
			case d.HasValue && d.Value > 0:
				shape[k] = int(d.Value)
			case k == 0:
				shape[k] = opts.Batch
			default:
				return nil, fmt.Errorf("check: %s: input %q: dimension %d is %s, not fixed; give its values with --input FILE.pb", opts.Model, vi.Name, k, d)
			}
		}
		// A size no machine holds is a declared shape to correct, not an
		// allocation to attempt (Go ends a failed one without recovery).
		n := 1
		for _, d := range shape {
			if d > maxCheckElems/n {
				return nil, fmt.Errorf("check: %s: input %q of shape %v holds more than %d values; lower --batch, or give the input's values with --input FILE.pb", opts.Model, vi.Name, shape, maxCheckElems)
			}
			n *= d
		}
		if vi.Type.Elem == tensor.Uint8 { // image bytes, uniform over 0–255
			t := &tensor.Tensor{DType: tensor.Uint8, Shape: shape, I64: make([]int64, tensor.Numel(shape))}
			for k := range t.I64 {
				t.I64[k] = rng.Int64N(256)
			}
			out[i] = t
			continue
		}
		t := tensor.New(shape...)
		for k := range t.F32 {
			t.F32[k] = float32(rng.NormFloat64())
		}
		out[i] = t
	}
	return out, nil
}

// maxCheckElems bounds a random input check makes: 1<<28 float32 values
// are 1 GiB.
const maxCheckElems = 1 << 28

// fitsDeclared checks a tensor read from a file against a graph input's
// declared type.
func fitsDeclared(vi *graph.ValueInfo, t *tensor.Tensor) error {
	if vi.Type == nil || !vi.Type.IsTensor {
		return nil
	}
	if vi.Type.Elem != t.DType {
		return fmt.Errorf("tensor is %s, input %q is %s", t.DType, vi.Name, vi.Type.Elem)
	}
	if !vi.Type.HasShape {
		return nil
	}
	if len(vi.Type.Shape) != len(t.Shape) {
		return fmt.Errorf("tensor has shape %v, input %q has rank %d", t.Shape, vi.Name, len(vi.Type.Shape))
	}
	for k, d := range vi.Type.Shape {
		if d.HasValue && d.Value != int64(t.Shape[k]) {
			return fmt.Errorf("tensor has shape %v, input %q declares dimension %d = %d", t.Shape, vi.Name, k, d.Value)
		}
	}
	return nil
}

func valueNames(vs []*graph.ValueInfo) string {
	var b []byte
	for i, v := range vs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "%q", v.Name)
	}
	return string(b)
}

func copyInto(dst, src *tensor.Tensor) error {
	if dst.DType != src.DType || tensor.Numel(dst.Shape) != tensor.Numel(src.Shape) {
		return fmt.Errorf("engine buffer is %v, input is %v", dst, src)
	}
	switch {
	case dst.F32 != nil:
		copy(dst.F32, src.F32)
	case dst.F64 != nil:
		copy(dst.F64, src.F64)
	case dst.I64 != nil:
		copy(dst.I64, src.I64)
	default:
		return errors.New("unsupported element type " + dst.DType.String())
	}
	return nil
}

// compareTensors compares the Go engine's output a with onnxruntime's b.
func compareTensors(name string, a, b *tensor.Tensor, atol float64) OutputDiff {
	d := OutputDiff{Name: name, Shape: b.Shape}
	if !slices.Equal(a.Shape, b.Shape) {
		d.Problem = fmt.Sprintf("shape %v in the Go engine, %v in onnxruntime", a.Shape, b.Shape)
		return d
	}
	get := func(t *tensor.Tensor) (func(int) float64, bool) {
		switch {
		case t.DType == tensor.Float32:
			return func(i int) float64 { return float64(t.F32[i]) }, true
		case t.DType == tensor.Float64:
			return func(i int) float64 { return t.F64[i] }, true
		case t.DType.IsInteger():
			return func(i int) float64 { return float64(t.I64[i]) }, true
		}
		return nil, false
	}
	fa, okA := get(a)
	fb, okB := get(b)
	if !okA || !okB {
		d.Problem = fmt.Sprintf("type %s in the Go engine, %s in onnxruntime: cannot compare", a.DType, b.DType)
		return d
	}
	n := tensor.Numel(b.Shape)
	for i := 0; i < n; i++ {
		x, y := fa(i), fb(i)
		if math.IsNaN(x) || math.IsNaN(y) {
			if math.IsNaN(x) != math.IsNaN(y) {
				d.Problem = fmt.Sprintf("NaN at index %d in one runtime only (Go %g, onnxruntime %g)", i, x, y)
				return d
			}
			d.NaNs++
			continue
		}
		if math.IsInf(x, 0) || math.IsInf(y, 0) {
			if x != y {
				d.Problem = fmt.Sprintf("index %d: Go %g, onnxruntime %g", i, x, y)
				return d
			}
			continue
		}
		diff := math.Abs(x - y)
		if diff > d.MaxAbs {
			d.MaxAbs, d.MaxAbsAt = diff, i
		}
		if den := math.Max(math.Abs(x), math.Abs(y)); den > 0 {
			d.MaxRel = math.Max(d.MaxRel, diff/den)
		}
	}
	d.OK = d.MaxAbs <= atol
	return d
}

func writeCheckTable(opts *CheckOptions, inputs []*tensor.Tensor, diffs []OutputDiff) error {
	w := opts.IO.Out
	src := "random (seed " + fmt.Sprint(opts.Global.Seed) + ")"
	if len(opts.Inputs) > 0 {
		src = "from --input"
	}
	fmt.Fprintf(w, "model   %s\n", opts.Model)
	for _, t := range inputs {
		fmt.Fprintf(w, "input   %v %s\n", t, src)
	}
	fmt.Fprintf(w, "engines Go (csam-onnx) vs onnxruntime %s, --atol %g\n\n", runtime.Version(), opts.ATol)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "output\tshape\tmax abs diff\tmax rel diff\tresult\n")
	for _, d := range diffs {
		res := "ok"
		if !d.OK {
			res = "FAIL"
			if d.Problem != "" {
				res += ": " + d.Problem
			}
		}
		fmt.Fprintf(tw, "%s\t%v\t%.3g\t%.3g\t%s\n", d.Name, d.Shape, d.MaxAbs, d.MaxRel, res)
	}
	return tw.Flush()
}

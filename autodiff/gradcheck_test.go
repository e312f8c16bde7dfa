package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// This file holds the gradient checker every backward kernel is tested
// with, and small builders for one-node test graphs. They are shared by all
// op tests of the package.

// gradCheckTol is the tolerance to pass to gradCheck for smooth ops.
//
// Why 1e-3: the kernels compute in float32 (unit roundoff u ≈ 6e-8) and the
// loss is a random projection of up to a few hundred outputs of magnitude
// ~1, summed in float64. The float32 rounding of the outputs perturbs the
// loss by about u·sqrt(N)·|out| ≈ 1e-6, which the central difference divides
// by 2h (h = gradCheckStep ≈ 5e-3): ~1e-4. The truncation error of the
// central formula is h²/6·|f⁽³⁾| ≈ 4e-6·|f⁽³⁾|. 1e-3 (relative to
// max(1, |numeric|)) leaves a 10× margin over both, while a wrong backward
// (a missing factor, a wrong index, a forgotten broadcast reduction) is off
// by O(1).
const gradCheckTol = 1e-3

// gradCheckStep is the finite-difference step for float32 kernels: the
// cube root of float32's machine epsilon (2^-23), which balances the
// truncation error of the central formula (∝ h²) against the rounding error
// of float32 outputs (∝ eps/h).
var gradCheckStep = math.Cbrt(float64(math.Nextafter32(1, 2) - 1))

// gradCheckConfig describes one gradient check. Only Node, Inputs and Wrt
// are required.
type gradCheckConfig struct {
	Node  *graph.Node
	Opset int64
	// Inputs are the node's operands, in node order; nil marks an omitted
	// optional input. Integer inputs are passed to Setup as compile-time
	// constants (Value.Const), float inputs as run-time values, as
	// Compile does for initializers that are trainable parameters.
	Inputs []*tensor.Tensor
	// ConstInputs lists float inputs to present as compile-time constants
	// as well (for example a Clip bound); they get no gradient.
	ConstInputs []int
	// Wrt lists the inputs whose gradients are checked (each must be
	// float32).
	Wrt []int
	// Outputs lists the outputs that enter the loss; nil means every
	// float32 output. The other outputs get a nil gout.
	Outputs []int
	// Tol is the tolerance on |analytic - numeric| / max(1, |numeric|);
	// 0 means gradCheckTol.
	Tol float64
	// Training runs the kernel in training mode.
	Training bool
	// Seed seeds both the projection weights and the kernel's RNG. The
	// kernel's RNG is re-seeded before every Forward, so a training-mode
	// Dropout mask is the same in every evaluation of the loss.
	Seed uint64
}

// gradCheck checks node's backward kernel against central finite
// differences (gonum diff/fd) of a scalar loss.
//
// It builds the kernel for node at the given opset, runs Setup with the
// shapes of inputs, and uses L = Σ_k w_k·out_k (w drawn at random, every
// float32 output) as the loss. The analytic gradient comes from one
// Backward call with gout = w; the numeric one perturbs every element of
// each input listed in wrt, running Forward in float32 and accumulating L
// in float64. Each gradient buffer starts with random values, so the check
// also verifies that Backward adds into gin rather than overwriting it.
// tol is relative to max(1, |numeric|); use gradCheckTol unless the op has
// a reason for more (say why at the call site).
//
// Keep inputs away from kinks (Relu at 0, max ties, clip bounds): finite
// differences are meaningless there.
func gradCheck(t *testing.T, node *graph.Node, opset int64, inputs []*tensor.Tensor, wrt []int, tol float64) {
	t.Helper()
	gradCheckWith(t, gradCheckConfig{Node: node, Opset: opset, Inputs: inputs, Wrt: wrt, Tol: tol})
}

// gradCheckWith is gradCheck with every option of gradCheckConfig.
func gradCheckWith(t *testing.T, c gradCheckConfig) {
	t.Helper()
	problems, err := gradCheckProblems(c)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range problems {
		if i == 5 {
			t.Errorf("%s: ... %d more wrong gradient elements", c.Node.OpType, len(problems)-5)
			break
		}
		t.Error(p)
	}
}

// gradCheckProblems runs the check of gradCheckWith and returns one
// message per wrong gradient element; err reports a check that could not
// run (a kernel error, a bad configuration).
func gradCheckProblems(c gradCheckConfig) (problems []string, err error) {
	if c.Tol == 0 {
		c.Tol = gradCheckTol
	}
	kern, outs, err := trySetupKernel(c.Node, c.Opset, c.Inputs, c.ConstInputs)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))

	// The loss weights: one random weight per element of every loss output.
	inLoss := make([]bool, len(outs))
	if c.Outputs == nil {
		for i, o := range outs {
			inLoss[i] = o.DType == tensor.Float32
		}
	} else {
		for _, i := range c.Outputs {
			if i < 0 || i >= len(outs) || outs[i].DType != tensor.Float32 {
				return nil, fmt.Errorf("gradCheck: output %d is not a float32 output of %s", i, c.Node.OpType)
			}
			inLoss[i] = true
		}
	}
	weights := make([]*tensor.Tensor, len(outs))
	for i, o := range outs {
		if inLoss[i] {
			weights[i] = randomTensor(rng, o.Shape...)
		}
	}

	outT := make([]*tensor.Tensor, len(outs))
	for i, o := range outs {
		outT[i] = allocTensor(o.DType, o.Shape)
	}
	// The kernel runs on copies, so the caller's tensors stay unchanged.
	work := make([]*tensor.Tensor, len(c.Inputs))
	for i, in := range c.Inputs {
		if in != nil {
			work[i] = in.Clone()
		}
	}
	newCtx := func() *RunContext {
		return &RunContext{
			Training: c.Training,
			Workers:  1,
			RNG:      pcgRNG{rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15))},
		}
	}
	var fwdErr error
	loss := func() float64 {
		if err := kern.Forward(newCtx(), work, outT); err != nil {
			fwdErr = fmt.Errorf("%s Forward: %w", c.Node.OpType, err)
			return math.NaN()
		}
		var l float64
		for i, w := range weights {
			if w == nil {
				continue
			}
			for j, v := range outT[i].F32 {
				l += float64(w.F32[j]) * float64(v)
			}
		}
		return l
	}

	// Analytic gradient: gin starts at random values, Backward must add.
	loss()
	if fwdErr != nil {
		return nil, fwdErr
	}
	gin := make([]*tensor.Tensor, len(c.Inputs))
	start := make([]*tensor.Tensor, len(c.Inputs))
	for _, i := range c.Wrt {
		if i < 0 || i >= len(c.Inputs) || c.Inputs[i] == nil || c.Inputs[i].DType != tensor.Float32 {
			return nil, fmt.Errorf("gradCheck: input %d of %s is not a float32 input", i, c.Node.OpType)
		}
		start[i] = randomTensor(rng, c.Inputs[i].Shape...)
		gin[i] = start[i].Clone()
	}
	if err := kern.Backward(newCtx(), work, outT, weights, gin); err != nil {
		return nil, fmt.Errorf("%s Backward: %w", c.Node.OpType, err)
	}
	// Kernels that assign a fresh gradient buffer (gradAssigner) must give
	// the same gradient into a buffer full of NaN when told it is fresh.
	if ga, ok := kern.(gradAssigner); ok {
		fresh := make([]bool, len(c.Inputs))
		gin2 := make([]*tensor.Tensor, len(c.Inputs))
		anyFresh := false
		for _, i := range c.Wrt {
			gin2[i] = start[i].Clone()
			if ga.assignsGrad(i) {
				fresh[i], anyFresh = true, true
				for j := range gin2[i].F32 {
					gin2[i].F32[j] = float32(math.NaN())
				}
			}
		}
		if anyFresh {
			ctx := newCtx()
			ctx.Fresh = fresh
			if err := kern.Backward(ctx, work, outT, weights, gin2); err != nil {
				return nil, fmt.Errorf("%s Backward (fresh): %w", c.Node.OpType, err)
			}
			for i, f := range fresh {
				if !f {
					continue
				}
				for j, v := range gin2[i].F32 {
					want := float64(gin[i].F32[j]) - float64(start[i].F32[j])
					if d := math.Abs(float64(v) - want); !(d <= 1e-5*math.Max(1, math.Abs(want))) {
						problems = append(problems, fmt.Sprintf("%s: fresh d loss/d input %d [flat %d] = %.6g, adding gave %.6g", c.Node.OpType, i, j, v, want))
						break
					}
				}
			}
		}
	}

	// Numeric gradient, input by input.
	settings := &fd.Settings{Formula: fd.Central, Step: gradCheckStep}
	for _, i := range c.Wrt {
		orig := c.Inputs[i].F32
		x := make([]float64, len(orig))
		for j, v := range orig {
			x[j] = float64(v)
		}
		f := func(x []float64) float64 {
			for j, v := range x {
				work[i].F32[j] = float32(v)
			}
			return loss()
		}
		num := fd.Gradient(nil, f, x, settings)
		copy(work[i].F32, orig)
		if fwdErr != nil {
			return nil, fwdErr
		}
		for j := range num {
			got := float64(gin[i].F32[j]) - float64(start[i].F32[j])
			if d := math.Abs(got - num[j]); !(d <= c.Tol*math.Max(1, math.Abs(num[j]))) {
				problems = append(problems, fmt.Sprintf("%s: d loss/d input %d [flat %d] = %.6g (backward), want %.6g (finite differences)",
					c.Node.OpType, i, j, got, num[j]))
			}
		}
	}
	return problems, nil
}

// setupKernel makes node's kernel and runs Setup with inputs; integer
// inputs (and the float inputs listed in constInputs) are presented as
// compile-time constants. It fails the test on error.
func setupKernel(t *testing.T, node *graph.Node, opset int64, inputs []*tensor.Tensor, constInputs []int) (Kernel, []Output) {
	t.Helper()
	kern, outs, err := trySetupKernel(node, opset, inputs, constInputs)
	if err != nil {
		t.Fatal(err)
	}
	return kern, outs
}

// trySetupKernel is setupKernel returning the error instead.
func trySetupKernel(node *graph.Node, opset int64, inputs []*tensor.Tensor, constInputs []int) (Kernel, []Output, error) {
	f := kernels[node.OpType]
	if f == nil {
		return nil, nil, fmt.Errorf("no kernel registered for %s", node.OpType)
	}
	kern, err := f(node, opset)
	if err != nil {
		return nil, nil, &NodeError{Node: node, Err: err}
	}
	isConst := map[int]bool{}
	for _, i := range constInputs {
		isConst[i] = true
	}
	vals := make([]Value, len(inputs))
	for i, in := range inputs {
		if in == nil {
			continue
		}
		vals[i] = Value{DType: in.DType, Shape: in.Shape, Present: true}
		if in.DType != tensor.Float32 || isConst[i] {
			vals[i].Const = in
		}
	}
	outs, err := kern.Setup(vals)
	if err != nil {
		return nil, nil, &NodeError{Node: node, Err: err}
	}
	if len(outs) < len(node.Outputs) {
		return nil, nil, fmt.Errorf("%s: Setup declared %d outputs, node has %d", node.OpType, len(outs), len(node.Outputs))
	}
	return kern, outs, nil
}

// runKernel sets up node's kernel, runs Forward once and returns the
// outputs (integer inputs are compile-time constants).
func runKernel(node *graph.Node, opset int64, inputs ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	kern, outs, err := trySetupKernel(node, opset, inputs, nil)
	if err != nil {
		return nil, err
	}
	outT := make([]*tensor.Tensor, len(outs))
	for i, o := range outs {
		outT[i] = allocTensor(o.DType, o.Shape)
	}
	if err := kern.Forward(&RunContext{Workers: 1}, inputs, outT); err != nil {
		return nil, &NodeError{Node: node, Err: err}
	}
	return outT, nil
}

// newTestNode returns a node of opType named "n" with inputs "x0", "x1", ...
// and outputs "y0", "y1", ... (set an entry of Inputs to "" to omit an
// optional input).
func newTestNode(opType string, nIn, nOut int, attrs ...*graph.Attribute) *graph.Node {
	n := &graph.Node{Name: "n", OpType: opType, Attrs: attrs}
	for i := range nIn {
		n.Inputs = append(n.Inputs, fmt.Sprintf("x%d", i))
	}
	for i := range nOut {
		n.Outputs = append(n.Outputs, fmt.Sprintf("y%d", i))
	}
	return n
}

// intAttr, intsAttr, floatAttr, floatsAttr and stringAttr build attributes.
func intAttr(name string, v int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInt, I: v}
}

func intsAttr(name string, v ...int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInts, Ints: v}
}

func floatAttr(name string, v float32) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrFloat, F: v}
}

func floatsAttr(name string, v ...float32) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrFloats, Floats: v}
}

func stringAttr(name, v string) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrString, S: []byte(v)}
}

// randomTensor returns a float32 tensor of the given shape with values
// drawn uniformly from [-1, 1).
func randomTensor(rng *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.F32 {
		t.F32[i] = 2*rng.Float32() - 1
	}
	return t
}

// int64s is a rank-1 int64 tensor of the given values.
func int64s(v ...int64) *tensor.Tensor { return tensor.FromInt64(v, len(v)) }

// TestGradCheckCatchesWrongBackward proves the checker can fail: a kernel
// whose backward is off by a factor of 2, and one that overwrites gin
// instead of adding, are both caught; a correct one passes.
func TestGradCheckCatchesWrongBackward(t *testing.T) {
	tests := []struct {
		kernel opsBrokenKernel
		wantOK bool
	}{
		{opsBrokenKernel{scale: 1}, true},
		{opsBrokenKernel{scale: 2}, false},
		{opsBrokenKernel{scale: 1, overwrite: true}, false},
	}
	const op = "opsTestBroken"
	defer delete(kernels, op)
	for _, tt := range tests {
		kernels[op] = func(*graph.Node, int64) (Kernel, error) { return tt.kernel, nil }
		rng := rand.New(rand.NewPCG(1, 2))
		problems, err := gradCheckProblems(gradCheckConfig{
			Node:   newTestNode(op, 1, 1),
			Opset:  13,
			Inputs: []*tensor.Tensor{randomTensor(rng, 3, 4)},
			Wrt:    []int{0},
		})
		if err != nil {
			t.Fatal(err)
		}
		if ok := len(problems) == 0; ok != tt.wantOK {
			t.Errorf("gradCheck on %+v: ok = %v, want %v (problems: %q)", tt.kernel, ok, tt.wantOK, problems)
		}
	}
}

// opsBrokenKernel computes y = x² with a configurable bug in Backward.
type opsBrokenKernel struct {
	scale     float32
	overwrite bool
}

func (opsBrokenKernel) Setup(in []Value) ([]Output, error) {
	return []Output{{DType: tensor.Float32, Shape: in[0].Shape}}, nil
}

func (opsBrokenKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	for i, v := range in[0].F32 {
		out[0].F32[i] = v * v
	}
	return nil
}

func (k opsBrokenKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	for i, v := range in[0].F32 {
		g := k.scale * 2 * v * gout[0].F32[i]
		if k.overwrite {
			gin[0].F32[i] = g
		} else {
			gin[0].F32[i] += g
		}
	}
	return nil
}

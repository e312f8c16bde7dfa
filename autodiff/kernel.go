package autodiff

import (
	"fmt"
	"sort"
	"strings"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Value describes one kernel operand at compile time: its element type and
// shape, and its value when it is known before any input arrives (an
// initializer, a Constant, a Shape output, or anything computed only from
// those).
type Value struct {
	DType tensor.DType
	Shape []int
	// Const is non-nil when the value is known at compile time. Kernels may
	// read it in Setup (for example Reshape's target shape) and must not
	// modify it.
	Const *tensor.Tensor
	// Present is false for an omitted optional input ("" in the node).
	Present bool
}

// Output is what Setup declares for one node output.
type Output struct {
	DType tensor.DType
	Shape []int
}

// Kernel is the implementation of one ONNX node, created once per compiled
// program. It owns any workspace it needs (allocated in Setup), so that
// Forward and Backward do not allocate.
//
// Contract:
//   - Setup is called once with the operands' types, shapes and known
//     values. It validates attributes and shapes and returns one Output per
//     node output. It returns an error (naming what is wrong) for anything a
//     user's model can get wrong; Forward and Backward may then assume valid
//     operands and panic only on programmer errors.
//   - Forward reads in (len = number of node inputs; nil for an omitted
//     optional input) and writes every element of out (pre-allocated with the
//     shapes from Setup; their contents on entry are unspecified).
//   - Backward is given the forward operands, the forward outputs, and the
//     gradients of the loss with respect to the outputs (gout[i] is nil when
//     no gradient flows into output i). It ADDS the gradient with respect
//     to input i into gin[i] (gin[i] is nil when that gradient is not
//     needed, for example for integer inputs).
type Kernel interface {
	Setup(in []Value) ([]Output, error)
	Forward(ctx *RunContext, in, out []*tensor.Tensor) error
	Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error
}

// RunContext is what a kernel may need at run time besides its operands.
type RunContext struct {
	// Training selects training-mode behaviour (BatchNormalization uses
	// batch statistics and updates running statistics; Dropout drops).
	Training bool
	// RNG supplies randomness for training-mode Dropout. It is owned by the
	// program and seeded by the caller.
	RNG RNG
	// Workers bounds the parallelism of kernels (>= 1).
	Workers int
	// FreezeRunningStats stops training-mode BatchNormalization from
	// updating its running mean and variance (it still normalizes with
	// batch statistics). C-SAM's second pass of a step sets it so that the
	// statistics move once per step.
	FreezeRunningStats bool
	// StatsAverage, when k > 0, makes training-mode BatchNormalization
	// update its running statistics as the plain mean of the batches seen
	// so far, this one being the k-th (running = ((k-1)·running + batch)/k),
	// instead of the exponential average with the node's momentum: the
	// running statistics re-estimated over k batches (finetune.RecalibrateBN).
	StatsAverage int
	// Scratch is workspace shared by all kernels of a program, which run
	// one at a time: at least as long as the largest Workspace any of them
	// asked for. Its contents are unspecified on entry to Forward and
	// Backward and belong to the running kernel until it returns.
	Scratch []float32
	// Fresh, during Backward, marks the gradient buffers gin[i] that hold
	// no contribution yet and were not cleared (their contents are
	// unspecified): the kernel must write every element of them, assigning
	// instead of adding. It is only ever set for inputs the kernel claims
	// through gradAssigner, and only when a gradient flows into the step
	// (its first output gradient is present).
	Fresh []bool
}

// fresh reports whether gin[i] is to be assigned rather than added to.
func (c *RunContext) fresh(i int) bool { return i < len(c.Fresh) && c.Fresh[i] }

// gradAssigner is implemented by kernels whose Backward can assign the
// gradient of input i when RunContext.Fresh says the buffer holds nothing
// yet. For such an input the program skips clearing the buffer before the
// kernel, its first writer, runs: one pass over memory fewer, and the
// kernel's own pass writes without reading.
type gradAssigner interface{ assignsGrad(i int) bool }

// WorkspaceUser is implemented by kernels that need temporary float32
// space in Forward or Backward (im2col columns, per-chunk partial sums).
// Compile calls Workspace after Setup with the program's worker count and
// allocates RunContext.Scratch once for the largest request.
type WorkspaceUser interface {
	Workspace(workers int) int
}

// scratch returns the first n elements of c.Scratch. A context that was not
// made by Compile (a test calling a kernel directly) gets its Scratch grown
// here; a compiled Program never allocates in this call.
func (c *RunContext) scratch(n int) []float32 {
	if len(c.Scratch) < n {
		c.Scratch = make([]float32, n)
	}
	return c.Scratch[:n]
}

// RNG is the source of randomness kernels draw from.
type RNG interface {
	Float32() float32
}

// NonDifferentiable is embedded by kernels with no gradient (Shape, or ops
// whose outputs are integers). Its Backward does nothing.
type NonDifferentiable struct{}

// Backward adds nothing: no gradient flows through the op.
func (NonDifferentiable) Backward(*RunContext, []*tensor.Tensor, []*tensor.Tensor, []*tensor.Tensor, []*tensor.Tensor) error {
	return nil
}

// KernelFactory makes the kernel for node. opset is the model's version of
// the default ONNX domain, for ops whose semantics changed between opsets.
type KernelFactory func(node *graph.Node, opset int64) (Kernel, error)

// kernels maps ONNX op types (default domain) to their factories. Each op
// file registers itself in an init function; the map is never exported.
var kernels = map[string]KernelFactory{}

func register(opType string, f KernelFactory) {
	if _, dup := kernels[opType]; dup {
		panic("autodiff: kernel registered twice: " + opType)
	}
	kernels[opType] = f
}

// SupportedOps lists the op types the engine implements, sorted.
func SupportedOps() []string {
	ops := make([]string, 0, len(kernels))
	for k := range kernels {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	return ops
}

// UnsupportedOpError lists every node whose op the engine does not
// implement.
type UnsupportedOpError struct {
	Nodes []*graph.Node
}

// Error names each unsupported op type once, in graph order, with its
// first node and how many more use it (a Swin export has 54 Mod nodes:
// naming the first ten nodes would hide the other ops).
func (e *UnsupportedOpError) Error() string {
	var order []string
	first, count := map[string]string{}, map[string]int{}
	for _, n := range e.Nodes {
		op := n.OpType
		if n.Domain != "" && n.Domain != "ai.onnx" {
			op = n.Domain + "." + op
		}
		if count[op] == 0 {
			order = append(order, op)
			first[op] = n.Name
		}
		count[op]++
	}
	var parts []string
	for i, op := range order {
		if i == 20 {
			parts = append(parts, fmt.Sprintf("and %d more op types", len(order)-20))
			break
		}
		more := ""
		if c := count[op]; c > 1 {
			more = fmt.Sprintf(" and %d more", c-1)
		}
		parts = append(parts, fmt.Sprintf("%s (node %q%s)", op, first[op], more))
	}
	return "autodiff: unsupported ops: " + strings.Join(parts, ", ") +
		"; supported: " + strings.Join(SupportedOps(), ", ")
}

// NodeError wraps an error raised while setting up or running one node.
type NodeError struct {
	Node *graph.Node
	Err  error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("autodiff: node %q (%s): %v", e.Node.Name, e.Node.OpType, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

package autodiff

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Options configure Compile. A nil *Options means defaults.
type Options struct {
	// Params names the initializers that gradients are wanted for. Nil means
	// every float32 initializer. Gradients with respect to graph inputs are
	// always available.
	Params []string
	// Workers bounds kernel parallelism; 0 means GOMAXPROCS.
	Workers int
	// Seed seeds training-mode randomness (Dropout).
	Seed uint64
	// NoFuse keeps every node its own step: no BatchNormalization or Conv
	// absorbs the Relu after it (fuseRelu). The results are the same; this
	// is for comparisons and for reading the fused values.
	NoFuse bool
	// Logits makes output 0 the scores before a final Softmax: when the
	// first graph output is a Softmax over the class axis (axis 1 of
	// [N, C] or [N, C, 1, ...]) that nothing else reads, the program
	// leaves it out and its input is output 0. Cross-entropy on
	// probabilities would treat them as logits (a classifier exported
	// with its Softmax would then barely train); argmax is the same
	// either way. The model is not changed.
	Logits bool
}

// slot is one value of the program: its buffer, its gradient and how it is
// made.
type slot struct {
	name    string
	val     *tensor.Tensor
	grad    *tensor.Tensor // nil when no gradient is tracked
	isConst bool
	isInput bool
	isParam bool
	init    *graph.Initializer
	// fused: a node's output that its only reader was fused with; it is
	// never computed (no buffer, no gradient).
	fused bool
}

type step struct {
	node     *graph.Node
	kernel   Kernel
	in       []int // slot index per input, -1 for omitted
	out      []int
	inT      []*tensor.Tensor
	outT     []*tensor.Tensor
	goutT    []*tensor.Tensor
	ginT     []*tensor.Tensor
	needGrad bool
	// clearGrads are the gradient buffers this step is the first to add
	// into during Backward; they are zeroed just before it runs, while
	// they are about to be written (and so soon in cache).
	clearGrads [][]float32
	// fresh marks the inputs whose gradient this step writes first and
	// assigns (gradAssigner) instead of having it cleared; nil when none.
	fresh []bool
}

// Program is a graph compiled for fixed input shapes: every buffer is
// allocated once, so Forward and Backward run without allocating. A Program
// is not safe for concurrent use.
type Program struct {
	g       *graph.Graph
	slots   []*slot
	byName  map[string]int
	steps   []*step // non-constant nodes in execution order
	inputs  []int
	outputs []int
	params  []int
	ctx     RunContext
	// pcg is the source of ctx.RNG (training-mode Dropout): its state
	// goes into checkpoints (RNGState).
	pcg *rand.PCG
	// zeroGrads are the gradient buffers Backward clears first: tracked
	// gradients that no step adds into (other than the graph outputs',
	// which the caller fills). The others are cleared by their first
	// writer's step (step.clearGrads).
	zeroGrads [][]float32
	// logits is the slot Options.Logits made output 0 (-1: none).
	logits int
}

// RNGState returns the state of the random stream training-mode ops
// (Dropout) draw from, for a checkpoint; SetRNGState restores it, so a
// resumed run draws what an uninterrupted one would.
func (p *Program) RNGState() []byte {
	b, _ := p.pcg.MarshalBinary() // never fails
	return b
}

// SetRNGState restores a state RNGState returned.
func (p *Program) SetRNGState(b []byte) error {
	if err := p.pcg.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("autodiff: random stream state: %w", err)
	}
	return nil
}

// pcgRNG adapts math/rand/v2 to RNG.
type pcgRNG struct{ r *rand.Rand }

func (p pcgRNG) Float32() float32 { return p.r.Float32() }

// Compile prepares g to run with the given input shapes (one per graph input
// that is not an initializer, in graph order; symbolic dimensions are fixed
// by these). It reports every unsupported op at once, and any shape or
// attribute error naming the node.
func Compile(m *graph.Model, inputShapes [][]int, opts *Options) (*Program, error) {
	if opts == nil {
		opts = &Options{}
	}
	g := m.Graph
	if g == nil {
		return nil, errors.New("autodiff: model has no graph")
	}
	opset := m.Opset()

	var unsupported []*graph.Node
	for _, n := range g.Nodes {
		if (n.Domain != "" && n.Domain != "ai.onnx") || kernels[n.OpType] == nil {
			unsupported = append(unsupported, n)
		}
	}
	if len(unsupported) > 0 {
		return nil, &UnsupportedOpError{Nodes: unsupported}
	}

	order, err := topoOrder(g)
	if err != nil {
		return nil, err
	}

	workers := opts.Workers
	if workers <= 0 {
		workers = defaultWorkers()
	}
	pcg := rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)
	p := &Program{
		g:      g,
		byName: map[string]int{},
		logits: -1,
		ctx: RunContext{
			Workers: workers,
			RNG:     pcgRNG{rand.New(pcg)},
		},
		pcg: pcg,
	}
	add := func(s *slot) int {
		p.byName[s.name] = len(p.slots)
		p.slots = append(p.slots, s)
		return len(p.slots) - 1
	}

	wantParam := map[string]bool{}
	if opts.Params != nil {
		for _, n := range opts.Params {
			wantParam[n] = true
		}
	}
	addInit := func(in *graph.Initializer) {
		if _, ok := p.byName[in.Name]; ok {
			return
		}
		s := &slot{name: in.Name, val: in.Value, isConst: true, init: in}
		if in.Value.DType == tensor.Float32 && (opts.Params == nil || wantParam[in.Name]) {
			s.isParam = true
			s.isConst = false
		}
		idx := add(s)
		if s.isParam {
			p.params = append(p.params, idx)
		}
	}
	for _, in := range g.Initializers {
		addInit(in)
	}
	for _, sp := range g.SparseInitializers {
		if sp.Dense != nil {
			addInit(sp.Dense)
		}
	}
	for name := range wantParam {
		if _, ok := p.byName[name]; !ok {
			return nil, fmt.Errorf("autodiff: parameter %q is not an initializer of the graph", name)
		}
	}

	k := 0
	for _, vi := range g.Inputs {
		if _, isInit := p.byName[vi.Name]; isInit {
			continue // an initializer also listed as input (IR < 4 style)
		}
		if k >= len(inputShapes) {
			return nil, fmt.Errorf("autodiff: graph input %q: no shape given (%d shapes for the graph's inputs)", vi.Name, len(inputShapes))
		}
		shape := append([]int(nil), inputShapes[k]...)
		k++
		dt := tensor.Float32
		if vi.Type != nil && vi.Type.IsTensor {
			dt = vi.Type.Elem
			if vi.Type.HasShape {
				if len(vi.Type.Shape) != len(shape) {
					return nil, fmt.Errorf("autodiff: graph input %q: shape %v has rank %d, the model declares rank %d", vi.Name, shape, len(shape), len(vi.Type.Shape))
				}
				for i, d := range vi.Type.Shape {
					if d.HasValue && d.Value != int64(shape[i]) {
						return nil, fmt.Errorf("autodiff: graph input %q: dimension %d is %d, the model declares %d", vi.Name, i, shape[i], d.Value)
					}
				}
			}
		}
		idx := add(&slot{name: vi.Name, val: allocTensor(dt, shape), isInput: true})
		p.inputs = append(p.inputs, idx)
	}
	if k != len(inputShapes) {
		return nil, fmt.Errorf("autodiff: %d input shapes given, the graph has %d inputs", len(inputShapes), k)
	}

	for _, n := range order {
		kern, err := kernels[n.OpType](n, opset)
		if err != nil {
			return nil, &NodeError{Node: n, Err: err}
		}
		st := &step{node: n, kernel: kern}
		vals := make([]Value, len(n.Inputs))
		allConst := true
		for i, name := range n.Inputs {
			if name == "" {
				st.in = append(st.in, -1)
				continue
			}
			idx, ok := p.byName[name]
			if !ok {
				return nil, &NodeError{Node: n, Err: fmt.Errorf("input %q is produced by no node, initializer or graph input", name)}
			}
			s := p.slots[idx]
			st.in = append(st.in, idx)
			vals[i] = Value{DType: s.val.DType, Shape: s.val.Shape, Present: true}
			if s.isConst {
				vals[i].Const = s.val
			} else {
				allConst = false
			}
		}
		outs, err := kern.Setup(vals)
		if err != nil {
			return nil, &NodeError{Node: n, Err: err}
		}
		if len(outs) < len(n.Outputs) {
			return nil, &NodeError{Node: n, Err: fmt.Errorf("kernel declared %d outputs, node has %d", len(outs), len(n.Outputs))}
		}
		_, isShape := kern.(shapeOnly)
		constNode := allConst || isShape
		for i, name := range n.Outputs {
			if name == "" {
				st.out = append(st.out, -1)
				continue
			}
			if _, dup := p.byName[name]; dup {
				return nil, &NodeError{Node: n, Err: fmt.Errorf("output %q is produced twice", name)}
			}
			idx := add(&slot{name: name, val: allocTensor(outs[i].DType, outs[i].Shape), isConst: constNode})
			st.out = append(st.out, idx)
		}
		st.inT = make([]*tensor.Tensor, len(st.in))
		st.ginT = make([]*tensor.Tensor, len(st.in))
		st.outT = make([]*tensor.Tensor, len(st.out))
		st.goutT = make([]*tensor.Tensor, len(st.out))
		for i, idx := range st.in {
			if idx >= 0 {
				st.inT[i] = p.slots[idx].val
			}
		}
		for i, idx := range st.out {
			if idx >= 0 {
				st.outT[i] = p.slots[idx].val
			} else {
				// An omitted output still needs a buffer to be written.
				st.outT[i] = allocTensor(outs[i].DType, outs[i].Shape)
			}
		}
		if constNode {
			// Fold now: its value never changes.
			if err := kern.Forward(&RunContext{Workers: workers}, st.inT, st.outT); err != nil {
				return nil, &NodeError{Node: n, Err: err}
			}
			continue
		}
		p.steps = append(p.steps, st)
	}

	if opts.Logits && len(g.Outputs) > 0 {
		p.dropFinalSoftmax(g.Outputs[0].Name, opset)
	}
	if !opts.NoFuse {
		p.fuseRelu()
	}

	ws := 0
	for _, st := range p.steps {
		if wu, ok := st.kernel.(WorkspaceUser); ok {
			ws = max(ws, wu.Workspace(workers))
		}
	}
	p.ctx.Scratch = make([]float32, ws)

	for i, vi := range g.Outputs {
		idx, ok := p.byName[vi.Name]
		if !ok {
			return nil, fmt.Errorf("autodiff: graph output %q is produced by no node", vi.Name)
		}
		if i == 0 && p.logits >= 0 {
			idx = p.logits
		}
		p.outputs = append(p.outputs, idx)
	}

	// Gradient buffers: every float32 value that depends on a parameter or
	// an input.
	for _, s := range p.slots {
		if !s.isConst && !s.fused && s.val.DType == tensor.Float32 {
			s.grad = tensor.New(s.val.Shape...)
		}
	}
	isOut := make(map[int]bool, len(p.outputs))
	for _, idx := range p.outputs {
		isOut[idx] = true
	}
	// Backward runs the steps in reverse, so a gradient's first writer is
	// the last step (in forward order) that reads the value.
	firstWriter := map[int]int{}
	for si, st := range p.steps {
		for i, idx := range st.in {
			if idx >= 0 && p.slots[idx].grad != nil {
				st.ginT[i] = p.slots[idx].grad
				st.needGrad = true
				firstWriter[idx] = si
			}
		}
		for i, idx := range st.out {
			if idx >= 0 {
				st.goutT[i] = p.slots[idx].grad
			}
		}
	}
	for i, s := range p.slots {
		if s.grad == nil || isOut[i] {
			continue
		}
		if si, ok := firstWriter[i]; ok {
			st := p.steps[si]
			if pos := assignPos(st, i); pos >= 0 {
				if st.fresh == nil {
					st.fresh = make([]bool, len(st.in))
				}
				st.fresh[pos] = true
				continue
			}
			st.clearGrads = append(st.clearGrads, s.grad.F32)
		} else {
			p.zeroGrads = append(p.zeroGrads, s.grad.F32)
		}
	}
	return p, nil
}

// dropFinalSoftmax removes the step computing the graph output out when
// it is a Softmax over the class axis that no other step reads, and
// records its input as the logits (Options.Logits).
func (p *Program) dropFinalSoftmax(out string, opset int64) {
	idx, ok := p.byName[out]
	if !ok {
		return
	}
	for si, st := range p.steps {
		if len(st.out) != 1 || st.out[0] != idx {
			continue
		}
		if st.node.OpType != "Softmax" || len(st.in) != 1 || st.in[0] < 0 {
			return
		}
		shape := p.slots[idx].val.Shape
		def := int64(1) // before opset 13: the axis from which a 2-D view is taken
		if opset >= 13 {
			def = -1
		}
		axis := st.node.AttrInt("axis", def)
		if axis < 0 {
			axis += int64(len(shape))
		}
		if len(shape) < 2 || axis != 1 || tensor.Numel(shape[2:]) != 1 {
			return
		}
		for _, other := range p.steps {
			if slices.Contains(other.in, idx) {
				return
			}
		}
		p.logits = st.in[0]
		p.steps = slices.Delete(p.steps, si, si+1)
		return
	}
}

// fuseRelu folds each Relu whose input is the first output of a
// BatchNormalization or a Conv, read by that Relu alone and not a graph
// output, into the producing step, which then writes the Relu's output
// directly: a BatchNormalization applies max(·, 0) in its normalization
// pass and masks the gradient it receives by that output inside its two
// backward passes; a Conv applies it in its bias pass and masks the
// received gradient in place (so its Relu output must not be a graph
// output either, whose gradient buffer the caller owns). The intermediate
// value is no longer computed: Value returns nil for it.
func (p *Program) fuseRelu() {
	readers := map[int][]int{}
	for si, st := range p.steps {
		for _, idx := range st.in {
			if idx >= 0 {
				readers[idx] = append(readers[idx], si)
			}
		}
	}
	graphOut := map[string]bool{}
	for _, vi := range p.g.Outputs {
		graphOut[vi.Name] = true
	}
	if p.logits >= 0 {
		graphOut[p.slots[p.logits].name] = true
	}
	drop := map[int]bool{}
	for _, st := range p.steps {
		bn, isBN := st.kernel.(*batchNormKernel)
		conv, isConv := st.kernel.(*convKernel)
		if (!isBN && !isConv) || len(st.out) == 0 || st.out[0] < 0 {
			continue
		}
		y := st.out[0]
		rs := readers[y]
		if len(rs) != 1 || graphOut[p.slots[y].name] {
			continue
		}
		relu := p.steps[rs[0]]
		act, ok := relu.kernel.(*activationKernel)
		if !ok || act.act != actRelu || len(relu.in) != 1 || len(relu.out) != 1 || relu.out[0] < 0 {
			continue
		}
		if isConv {
			if graphOut[p.slots[relu.out[0]].name] {
				continue
			}
			conv.relu = true
		} else {
			bn.relu = true
		}
		st.out[0], st.outT[0] = relu.out[0], relu.outT[0]
		s := p.slots[y]
		s.fused = true
		s.val = &tensor.Tensor{DType: s.val.DType, Shape: s.val.Shape} // its buffer is not needed
		drop[rs[0]] = true
	}
	if len(drop) == 0 {
		return
	}
	kept := p.steps[:0]
	for si, st := range p.steps {
		if !drop[si] {
			kept = append(kept, st)
		}
	}
	clear(p.steps[len(kept):])
	p.steps = kept
}

// assignPos is the input position at which st reads slot idx, when that
// is the only position it reads it at and st's kernel can assign that
// input's gradient (gradAssigner); -1 otherwise. A step whose first output
// carries no gradient writes nothing (every assigning kernel returns early
// then), so its inputs' buffers are cleared instead.
func assignPos(st *step, idx int) int {
	ga, ok := st.kernel.(gradAssigner)
	if !ok || len(st.goutT) == 0 || st.goutT[0] == nil {
		return -1
	}
	pos := -1
	for i, in := range st.in {
		if in != idx {
			continue
		}
		if pos >= 0 {
			return -1 // read twice (Add(x, x)): both contributions add
		}
		pos = i
	}
	if pos < 0 || !ga.assignsGrad(pos) {
		return -1
	}
	return pos
}

// shapeOnly marks kernels whose outputs depend only on input shapes (Shape),
// so they fold at compile time even when their input is not constant.
type shapeOnly interface{ shapeOnly() }

func allocTensor(dt tensor.DType, shape []int) *tensor.Tensor {
	t := &tensor.Tensor{DType: dt, Shape: append([]int(nil), shape...)}
	n := tensor.Numel(shape)
	switch {
	case dt == tensor.Float32:
		t.F32 = make([]float32, n)
	case dt == tensor.Float64:
		t.F64 = make([]float64, n)
	case dt.IsInteger():
		t.I64 = make([]int64, n)
	default:
		t.F32 = make([]float32, n)
	}
	return t
}

// SetTraining selects training mode (batch statistics, active Dropout).
func (p *Program) SetTraining(on bool) { p.ctx.Training = on }

// SetFreezeRunningStats stops (true) or resumes (false) the update of
// BatchNormalization running statistics in training mode; see
// RunContext.FreezeRunningStats.
func (p *Program) SetFreezeRunningStats(on bool) { p.ctx.FreezeRunningStats = on }

// SetRunningStatsAverage sets RunContext.StatsAverage: k > 0 makes the
// next training-mode Forward the k-th batch of a plain average of batch
// statistics; 0 returns to the nodes' momentum.
func (p *Program) SetRunningStatsAverage(k int) { p.ctx.StatsAverage = k }

// Workers is the number of goroutines kernels may use.
func (p *Program) Workers() int { return p.ctx.Workers }

// Input returns the buffer of the i-th graph input; callers fill it before
// Forward.
func (p *Program) Input(i int) *tensor.Tensor { return p.slots[p.inputs[i]].val }

// Output returns the buffer of the i-th graph output, valid after Forward
// until the next Forward.
func (p *Program) Output(i int) *tensor.Tensor { return p.slots[p.outputs[i]].val }

// OutputGrad returns the gradient buffer of the i-th graph output; callers
// fill it (for example with the loss gradient) before Backward.
func (p *Program) OutputGrad(i int) *tensor.Tensor { return p.slots[p.outputs[i]].grad }

// Value returns the current buffer of the value named name, or nil (also
// for a value fused away: compile with Options.NoFuse to read every
// intermediate value).
func (p *Program) Value(name string) *tensor.Tensor {
	if idx, ok := p.byName[name]; ok && !p.slots[idx].fused {
		return p.slots[idx].val
	}
	return nil
}

// Grad returns the gradient buffer of the value named name (valid after
// Backward), or nil when no gradient is tracked for it.
func (p *Program) Grad(name string) *tensor.Tensor {
	if idx, ok := p.byName[name]; ok {
		return p.slots[idx].grad
	}
	return nil
}

// Params lists the names of the initializers that receive gradients, in
// graph order.
func (p *Program) Params() []string {
	out := make([]string, len(p.params))
	for i, idx := range p.params {
		out[i] = p.slots[idx].name
	}
	return out
}

// Forward runs the graph on the current contents of the input buffers.
func (p *Program) Forward() error {
	for _, st := range p.steps {
		if err := st.kernel.Forward(&p.ctx, st.inT, st.outT); err != nil {
			return &NodeError{Node: st.node, Err: err}
		}
	}
	return nil
}

// Backward propagates the gradients placed in OutputGrad buffers back to
// every parameter and input. It first zeroes every other gradient buffer,
// so gradients do not accumulate across calls.
func (p *Program) Backward() error {
	tensor.ForEach(p.ctx.Workers, len(p.zeroGrads), func(_, i int) { clear(p.zeroGrads[i]) })
	for i := len(p.steps) - 1; i >= 0; i-- {
		if st := p.steps[i]; st.needGrad {
			if err := p.backwardStep(st); err != nil {
				return err
			}
		}
	}
	return nil
}

// backwardStep runs one step's backward: it zeroes the gradient buffers
// the step is the first to add into, then runs the kernel with the step's
// fresh inputs.
func (p *Program) backwardStep(st *step) error {
	for _, g := range st.clearGrads {
		coreClear(p.ctx.Workers, g)
	}
	p.ctx.Fresh = st.fresh
	err := st.kernel.Backward(&p.ctx, st.inT, st.outT, st.goutT, st.ginT)
	p.ctx.Fresh = nil
	if err != nil {
		return &NodeError{Node: st.node, Err: err}
	}
	return nil
}

// coreClear zeroes g, splitting large buffers over the workers.
func coreClear(workers int, g []float32) {
	if len(g) < 1<<16 {
		clear(g)
		return
	}
	tensor.Parallel(workers, len(g), func(lo, hi int) { clear(g[lo:hi]) })
}

// topoOrder returns the nodes in a topological order that keeps file order
// among independent nodes, or a *graph.CycleError-like error naming the
// nodes on a cycle.
func topoOrder(g *graph.Graph) ([]*graph.Node, error) {
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				producer[o] = i
			}
		}
	}
	indeg := make([]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if j, ok := producer[in]; ok && in != "" {
				indeg[i]++
				users[j] = append(users[j], i)
			}
		}
	}
	// Smallest-index-first queue keeps file order stable.
	var ready []int
	for i := range g.Nodes {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	order := make([]*graph.Node, 0, len(g.Nodes))
	for len(ready) > 0 {
		mi := 0
		for j := range ready {
			if ready[j] < ready[mi] {
				mi = j
			}
		}
		i := ready[mi]
		ready = append(ready[:mi], ready[mi+1:]...)
		order = append(order, g.Nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(order) != len(g.Nodes) {
		var names []string
		for i, d := range indeg {
			if d > 0 {
				names = append(names, g.Nodes[i].Name)
			}
		}
		return nil, fmt.Errorf("autodiff: graph has a cycle through nodes %q", names)
	}
	return order, nil
}

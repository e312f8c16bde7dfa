package graph

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// InferShapes returns the static shape of every value of m (graph inputs,
// initializers and node outputs) for the given input shapes.
//
// inputShapes maps graph input names to concrete shapes. An input it does
// not name takes the shape the model declares, which must then be fully
// static: a symbolic or unknown dimension is an error naming the input.
// Given shapes must agree with the declared rank and fixed dimensions.
//
// Shapes that depend on values (Reshape's shape, Slice's starts, the axes
// inputs of opset 13 and later) are computed from initializers and
// Constant nodes by a small evaluator of the shape-computation ops (Shape,
// Gather, Unsqueeze, Squeeze, Concat, Slice, Cast, integer Add/Sub/Mul/Div,
// Constant, ConstantOfShape, Identity, Range, Reshape, Expand). A value
// such an op needs that cannot be computed is an error naming the node.
//
// The supported ops are listed by InferableOps; any
// other op, and any shape mismatch, is an error naming the node.
func InferShapes(m *Model, inputShapes map[string][]int) (map[string][]int, error) {
	return InferShapesWith(m, inputShapes, nil)
}

// InferShapesWith is InferShapes where some graph inputs also have known
// contents (inputValues, keyed by input name; their shapes come from the
// tensors), for graphs whose shapes depend on an input, such as a Reshape
// whose target shape is a graph input.
func InferShapesWith(m *Model, inputShapes map[string][]int, inputValues map[string]*tensor.Tensor) (map[string][]int, error) {
	if len(inputValues) > 0 {
		merged := map[string][]int{}
		for k, v := range inputShapes {
			merged[k] = v
		}
		for k, v := range inputValues {
			if v == nil {
				return nil, fmt.Errorf("graph: input value for %q is nil", k)
			}
			merged[k] = v.Shape
		}
		inputShapes = merged
	}
	if err := Validate(m); err != nil {
		return nil, err
	}
	shapes := map[string][]int{}
	for _, vi := range m.Graph.Inputs {
		if s, ok := inputShapes[vi.Name]; ok {
			if err := checkDeclared(vi, s); err != nil {
				return nil, err
			}
			continue
		}
		if m.Graph.Initializer(vi.Name) != nil {
			continue // an initializer with a default value
		}
		s, err := declaredShape(vi)
		if err != nil {
			return nil, err
		}
		shapes[vi.Name] = s
	}
	for name, s := range inputShapes {
		if !m.Graph.IsGraphInput(name) {
			return nil, fmt.Errorf("graph: input shape given for %q, which is not a graph input (inputs: %s)", name, inputNames(m.Graph))
		}
		shapes[name] = s
	}
	inf := newInferer(m, shapes, false, 1<<12)
	for k, v := range inputValues {
		if msg := tensorProblem(v); msg != "" {
			return nil, fmt.Errorf("graph: input value for %q: %s", k, msg)
		}
		inf.vals[k] = &value{shape: slices.Clone(v.Shape), dtype: v.DType, val: v}
	}
	if err := inf.run(); err != nil {
		return nil, err
	}
	out := make(map[string][]int, len(inf.vals))
	for name, v := range inf.vals {
		out[name] = v.shape
	}
	return out, nil
}

func inputNames(g *Graph) string {
	var names []string
	for _, vi := range g.Inputs {
		if g.Initializer(vi.Name) == nil {
			names = append(names, fmt.Sprintf("%q", vi.Name))
		}
	}
	return strings.Join(names, ", ")
}

// declaredShape is vi's declared shape when it is fully static.
func declaredShape(vi *ValueInfo) ([]int, error) {
	t := vi.Type
	if t == nil || !t.IsTensor || !t.HasShape {
		return nil, fmt.Errorf("graph: graph input %q declares no shape; give its shape explicitly", vi.Name)
	}
	s := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		if !d.HasValue || d.Value < 0 {
			return nil, fmt.Errorf("graph: graph input %q has symbolic dimension %d (%s); give its shape explicitly", vi.Name, i, d)
		}
		s[i] = int(d.Value)
	}
	return s, nil
}

// checkDeclared checks a given shape against vi's declared rank and fixed
// dimensions.
func checkDeclared(vi *ValueInfo, s []int) error {
	for i, d := range s {
		if d < 0 {
			return fmt.Errorf("graph: input %q: shape %v has a negative dimension %d", vi.Name, s, i)
		}
	}
	t := vi.Type
	if t == nil || !t.IsTensor || !t.HasShape {
		return nil
	}
	if len(t.Shape) != len(s) {
		return fmt.Errorf("graph: input %q: shape %v has rank %d, the model declares rank %d (%s)", vi.Name, s, len(s), len(t.Shape), dimsString(t.Shape))
	}
	for i, d := range t.Shape {
		if d.HasValue && d.Value >= 0 && int(d.Value) != s[i] {
			return fmt.Errorf("graph: input %q: shape %v: dimension %d is %d, the model declares %d", vi.Name, s, i, s[i], d.Value)
		}
	}
	return nil
}

func dimsString(ds []Dim) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// value is what inference knows about one value: its shape and element
// type, and its contents when they could be computed.
type value struct {
	shape []int
	dtype tensor.DType
	val   *tensor.Tensor // nil when not known
}

// inferer runs shape inference and constant evaluation over a graph.
type inferer struct {
	m     *Model
	g     *Graph
	opset int64
	vals  map[string]*value
	// lenient: a node that fails leaves its outputs unknown instead of
	// stopping inference (used by the passes, which must cope with ops they
	// do not know).
	lenient bool
	// evalLimit bounds the number of elements the evaluator computes for
	// one value.
	evalLimit int
	// failed records the nodes that could not be inferred (lenient mode).
	failed map[*Node]error
}

func newInferer(m *Model, inputShapes map[string][]int, lenient bool, evalLimit int) *inferer {
	inf := &inferer{m: m, g: m.Graph, opset: m.Opset(), vals: map[string]*value{}, lenient: lenient, evalLimit: evalLimit, failed: map[*Node]error{}}
	if inf.opset == 0 {
		inf.opset = 25
	}
	addInit := func(in *Initializer) {
		if in == nil || in.Value == nil {
			return
		}
		inf.vals[in.Name] = &value{shape: append([]int{}, in.Value.Shape...), dtype: in.Value.DType, val: in.Value}
	}
	for _, in := range inf.g.Initializers {
		addInit(in)
	}
	for _, sp := range inf.g.SparseInitializers {
		if sp != nil {
			addInit(sp.Dense)
		}
	}
	for _, vi := range inf.g.Inputs {
		s, ok := inputShapes[vi.Name]
		if !ok {
			continue
		}
		dt := tensor.Float32
		if vi.Type != nil && vi.Type.IsTensor && vi.Type.Elem != tensor.Undefined {
			dt = vi.Type.Elem
		}
		// A graph input overrides an initializer of the same name.
		inf.vals[vi.Name] = &value{shape: append([]int{}, s...), dtype: dt}
	}
	return inf
}

func (inf *inferer) run() error {
	order, err := Sort(inf.g)
	if err != nil {
		return err
	}
	for _, n := range order {
		if err := inf.node(n); err != nil {
			if !inf.lenient {
				return err
			}
			inf.failed[n] = err
		}
	}
	return nil
}

// node infers n's outputs and stores them.
func (inf *inferer) node(n *Node) error {
	ins := make([]*value, len(n.Inputs))
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		v, ok := inf.vals[name]
		if !ok {
			if inf.lenient {
				return nodeErrorf(n, "input %q is unknown", name)
			}
			return nodeErrorf(n, "input %q has no known shape (produced by no node, initializer or graph input, or its producer failed)", name)
		}
		ins[i] = v
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return nodeErrorf(n, "op domain %q is not supported for shape inference", n.Domain)
	}
	rule, ok := shapeRules[n.OpType]
	if !ok {
		return nodeErrorf(n, "op %s is not supported for shape inference", n.OpType)
	}
	c := &opCtx{inf: inf, n: n, ins: ins}
	outs, err := rule(c)
	if err != nil {
		return err
	}
	if len(outs) < len(n.Outputs) {
		// Optional outputs the rule does not model: only allowed when unused.
		for i := len(outs); i < len(n.Outputs); i++ {
			if n.Outputs[i] != "" {
				return nodeErrorf(n, "output %d (%q) is not supported", i, n.Outputs[i])
			}
		}
	}
	// Evaluate when every input is known and the op is one the evaluator
	// does; a failure here is not an error for shapes.
	// Shape and Size need only the input's shape.
	shapeOnly := n.OpType == "Shape" || n.OpType == "Size"
	if ev, ok := evaluators[n.OpType]; ok && (shapeOnly || c.allKnown()) {
		limitOK := true
		for _, o := range outs {
			if !fitsLimit(o.shape, inf.evalLimit) {
				limitOK = false
			}
		}
		if limitOK {
			res, err := ev(c, outs)
			if err == nil {
				for i, r := range res {
					if i < len(outs) && r != nil {
						if !slices.Equal(r.Shape, outs[i].shape) {
							return nodeErrorf(n, "internal: evaluated shape %v differs from inferred %v", r.Shape, outs[i].shape)
						}
						outs[i].val = r
						outs[i].dtype = r.DType
					}
				}
			} else if !errors.Is(err, errNotEvaluable) {
				return err
			}
		}
	}
	for i, name := range n.Outputs {
		if name != "" && i < len(outs) {
			inf.vals[name] = outs[i]
		}
	}
	return nil
}

// fitsLimit reports whether a tensor of the given shape has at most limit
// elements, without overflowing on absurd shapes.
func fitsLimit(shape []int, limit int) bool {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return false
		}
		if d == 0 {
			return true
		}
	}
	for _, d := range shape {
		if n > limit/d {
			return false
		}
		n *= d
	}
	return n <= limit
}

// opCtx is what a shape rule or evaluator sees of one node.
type opCtx struct {
	inf *inferer
	n   *Node
	ins []*value // nil for omitted inputs
}

func (c *opCtx) opset() int64 { return c.inf.opset }

func (c *opCtx) errf(format string, args ...any) error { return nodeErrorf(c.n, format, args...) }

// in returns input i, or nil when it is omitted or absent.
func (c *opCtx) in(i int) *value {
	if i < len(c.ins) {
		return c.ins[i]
	}
	return nil
}

// need returns input i, or an error when it is missing.
func (c *opCtx) need(i int) (*value, error) {
	if v := c.in(i); v != nil {
		return v, nil
	}
	return nil, c.errf("input %d is missing", i)
}

func (c *opCtx) allKnown() bool {
	for _, v := range c.ins {
		if v != nil && v.val == nil {
			return false
		}
	}
	return true
}

// ints returns the values of input i as int64s. present is false when the
// input is omitted. An input whose value cannot be computed is an error.
func (c *opCtx) ints(i int, what string) (vals []int64, present bool, err error) {
	v := c.in(i)
	if v == nil {
		return nil, false, nil
	}
	if v.val == nil {
		return nil, true, c.errf("the %s input %q is not a constant; shapes that depend on data cannot be inferred", what, c.n.Inputs[i])
	}
	if !v.val.DType.IsInteger() || v.val.I64 == nil && v.val.Len() > 0 {
		return nil, true, c.errf("the %s input %q is %s, want an integer tensor", what, c.n.Inputs[i], v.val.DType)
	}
	return v.val.I64, true, nil
}

func (c *opCtx) attrInts(name string) ([]int64, bool) {
	if a := c.n.Attr(name); a != nil {
		return a.Ints, true
	}
	return nil, false
}

func same(v *value) *value { return &value{shape: append([]int{}, v.shape...), dtype: v.dtype} }

func normAxis(c *opCtx, a int64, rank int) (int, error) {
	if a < -int64(rank) || a >= int64(rank) {
		return 0, c.errf("axis %d is out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += int64(rank)
	}
	return int(a), nil
}

// broadcastShapes applies ONNX multidirectional (numpy) broadcasting.
func broadcastShapes(c *opCtx, shapes ...[]int) ([]int, error) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]int, r)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := r - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case d == o || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, c.errf("shapes %v cannot be broadcast together", shapes)
			}
		}
	}
	return out, nil
}

// shapeRules maps op types to their shape rules. A rule returns one value
// per output it models (shape and dtype, no contents).
var shapeRules map[string]func(c *opCtx) ([]*value, error)

func init() {
	unary := func(c *opCtx) ([]*value, error) {
		x, err := c.need(0)
		if err != nil {
			return nil, err
		}
		return []*value{same(x)}, nil
	}
	shapeRules = map[string]func(c *opCtx) ([]*value, error){
		"Relu": unary, "LeakyRelu": unary, "Sigmoid": unary, "HardSigmoid": unary,
		"HardSwish": unary, "Identity": unary, "Clip": unary, "Neg": unary, "LRN": unary,
		"Sqrt": unary, "Reciprocal": unary, "Exp": unary, "Log": unary,
		"Tanh": unary, "Abs": unary, "Erf": unary, "Floor": unary, "Ceil": unary,
		"Elu": unary, "Selu": unary, "Celu": unary, "Gelu": unary, "Softplus": unary,
		"Softsign": unary, "Mish": unary, "Sign": unary, "Sin": unary, "Cos": unary,
		"ArgMax": argShape, "ArgMin": argShape, "Tile": tileShape, "Resize": resizeShape, "Upsample": resizeShape,
		"PRelu": binaryShape, "Greater": equalShape, "Less": equalShape, "GreaterOrEqual": equalShape,
		"LessOrEqual": equalShape, "And": equalShape, "Or": equalShape, "Xor": equalShape,
		"Softmax": softmaxShape, "LogSoftmax": softmaxShape,
		"Add": binaryShape, "Sub": binaryShape, "Mul": binaryShape, "Div": binaryShape,
		"Pow": binaryShape,
		"Sum": variadicShape, "Max": variadicShape, "Min": variadicShape, "Mean": variadicShape,
		"Conv":               convShape,
		"ConvTranspose":      convTransposeShape,
		"MaxPool":            poolShape,
		"AveragePool":        poolShape,
		"GlobalAveragePool":  globalPoolShape,
		"GlobalMaxPool":      globalPoolShape,
		"BatchNormalization": batchNormShape,
		"LayerNormalization": layerNormShape,
		"InstanceNormalization": func(c *opCtx) ([]*value, error) {
			x, err := c.need(0)
			if err != nil {
				return nil, err
			}
			if len(x.shape) < 3 {
				return nil, c.errf("input %q has shape %v, want [N, C, spatial...]", c.n.Inputs[0], x.shape)
			}
			for i := 1; i <= 2; i++ {
				p, err := c.need(i)
				if err != nil {
					return nil, err
				}
				if tensor.Numel(p.shape) != x.shape[1] {
					return nil, c.errf("input %d (%q) has shape %v, want [%d]", i, c.n.Inputs[i], p.shape, x.shape[1])
				}
			}
			return []*value{same(x)}, nil
		},
		"Equal":           equalShape,
		"Where":           whereShape,
		"Mod":             binaryShape,
		"Not":             unary,
		"ScatterND":       scatterNDShape,
		"Gemm":            gemmShape,
		"MatMul":          matMulShape,
		"Concat":          concatShape,
		"Flatten":         flattenShape,
		"Reshape":         reshapeShape,
		"Transpose":       transposeShape,
		"Dropout":         dropoutShape,
		"Constant":        constantShape,
		"Shape":           shapeShape,
		"Size":            sizeShape,
		"Gather":          gatherShape,
		"Unsqueeze":       unsqueezeShape,
		"Squeeze":         squeezeShape,
		"Pad":             padShape,
		"ReduceMean":      reduceShape,
		"ReduceSum":       reduceShape,
		"ReduceMax":       reduceShape,
		"ReduceL2":        reduceShape,
		"ReduceSumSquare": reduceShape,
		"Split":           splitShape,
		"Slice":           sliceShape,
		"Cast":            castShape,
		"ConstantOfShape": constantOfShapeShape,
		"Range":           rangeShape,
		"Expand":          expandShape,
	}
}

// InferableOps lists the op types InferShapes knows, sorted.
func InferableOps() []string {
	ops := make([]string, 0, len(shapeRules))
	for op := range shapeRules {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}

func softmaxShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	def := int64(1)
	if c.opset() >= 13 {
		def = -1
	}
	if _, err := normAxis(c, c.n.AttrInt("axis", def), max(len(x.shape), 1)); err != nil {
		return nil, err
	}
	return []*value{same(x)}, nil
}

func binaryShape(c *opCtx) ([]*value, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	b, err := c.need(1)
	if err != nil {
		return nil, err
	}
	if c.opset() < 7 && c.n.AttrInt("broadcast", 0) == 1 {
		// Legacy unidirectional broadcast: B matches a contiguous run of A's
		// dimensions; the result has A's shape.
		return []*value{same(a)}, nil
	}
	s, err := broadcastShapes(c, a.shape, b.shape)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: s, dtype: a.dtype}}, nil
}

// equalShape: the broadcast of both inputs (of one type), as bool.
func equalShape(c *opCtx) ([]*value, error) {
	out, err := binaryShape(c)
	if err != nil {
		return nil, err
	}
	if a, b := c.ins[0], c.ins[1]; a.dtype != b.dtype {
		return nil, c.errf("input types differ: %s and %s", a.dtype, b.dtype)
	}
	out[0].dtype = tensor.Bool
	return out, nil
}

// whereShape: the broadcast of the condition and both branches, of the
// branches' type.
func whereShape(c *opCtx) ([]*value, error) {
	var shapes [][]int
	for i := range 3 {
		v, err := c.need(i)
		if err != nil {
			return nil, err
		}
		shapes = append(shapes, v.shape)
	}
	if c.ins[0].dtype != tensor.Bool {
		return nil, c.errf("condition %q is %s, want bool", c.n.Inputs[0], c.ins[0].dtype)
	}
	if c.ins[1].dtype != c.ins[2].dtype {
		return nil, c.errf("branches differ in type: %s and %s", c.ins[1].dtype, c.ins[2].dtype)
	}
	s, err := broadcastShapes(c, shapes...)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: s, dtype: c.ins[1].dtype}}, nil
}

// scatterNDShape: the data's shape; indices [..., k] with k at most the
// data's rank and updates shaped indices[:-1] + data[k:].
func scatterNDShape(c *opCtx) ([]*value, error) {
	var v [3]*value
	for i := range 3 {
		x, err := c.need(i)
		if err != nil {
			return nil, err
		}
		v[i] = x
	}
	data, idx, upd := v[0], v[1], v[2]
	if len(idx.shape) == 0 || !idx.dtype.IsInteger() {
		return nil, c.errf("indices %q are %s%v, want an integer tensor of rank ≥ 1", c.n.Inputs[1], idx.dtype, idx.shape)
	}
	k := idx.shape[len(idx.shape)-1]
	if k > len(data.shape) {
		return nil, c.errf("indices %q address %d axes, the data has %d", c.n.Inputs[1], k, len(data.shape))
	}
	want := append(slices.Clone(idx.shape[:len(idx.shape)-1]), data.shape[k:]...)
	if !slices.Equal(upd.shape, want) {
		return nil, c.errf("updates %q have shape %v, want %v", c.n.Inputs[2], upd.shape, want)
	}
	if c.n.AttrString("reduction", "none") != "none" {
		return nil, c.errf("reduction %q is not supported (only none)", c.n.AttrString("reduction", "none"))
	}
	return []*value{same(data)}, nil
}

// argShape: ArgMax/ArgMin's int64 indices, the axis kept as 1 or dropped.
func argShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	ax, err := normAxis(c, c.n.AttrInt("axis", 0), len(x.shape))
	if err != nil {
		return nil, err
	}
	out := slices.Clone(x.shape)
	if c.n.AttrInt("keepdims", 1) != 0 {
		out[ax] = 1
	} else {
		out = slices.Delete(out, ax, ax+1)
	}
	return []*value{{shape: out, dtype: tensor.Int64}}, nil
}

// tileShape: each axis times its constant repeat.
func tileShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	reps, present, err := c.ints(1, "repeats")
	if err != nil {
		return nil, err
	}
	if !present || len(reps) != len(x.shape) {
		return nil, c.errf("repeats must be a constant of %d values (the input's rank)", len(x.shape))
	}
	out := make([]int, len(reps))
	for i, r := range reps {
		if r < 0 {
			return nil, c.errf("repeats %v has a negative value", reps)
		}
		out[i] = x.shape[i] * int(r)
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func variadicShape(c *opCtx) ([]*value, error) {
	var shapes [][]int
	var dt tensor.DType
	for i, v := range c.ins {
		if v == nil {
			return nil, c.errf("input %d is missing", i)
		}
		shapes = append(shapes, v.shape)
		dt = v.dtype
	}
	if len(shapes) == 0 {
		return nil, c.errf("needs at least one input")
	}
	s, err := broadcastShapes(c, shapes...)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: s, dtype: dt}}, nil
}

// spatialAttrs reads strides, dilations and pads for k spatial dimensions.
func spatialAttrs(c *opCtx, k int, dilationsAllowed bool) (strides, dilations, pads []int, err error) {
	get := func(name string, n, def int) ([]int, error) {
		v, ok := c.attrInts(name)
		if !ok || len(v) == 0 {
			out := make([]int, n)
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(v) != n {
			return nil, c.errf("%s has %d values, want %d", name, len(v), n)
		}
		out := make([]int, n)
		for i, x := range v {
			out[i] = int(x)
		}
		return out, nil
	}
	if strides, err = get("strides", k, 1); err != nil {
		return
	}
	if dilationsAllowed {
		if dilations, err = get("dilations", k, 1); err != nil {
			return
		}
	} else {
		dilations = make([]int, k)
		for i := range dilations {
			dilations[i] = 1
		}
	}
	if pads, err = get("pads", 2*k, 0); err != nil {
		return
	}
	for i := range k {
		if strides[i] < 1 {
			err = c.errf("strides %v must be positive", strides)
			return
		}
		if dilations[i] < 1 {
			err = c.errf("dilations %v must be positive", dilations)
			return
		}
		if pads[i] < 0 || pads[i+k] < 0 {
			err = c.errf("pads %v must not be negative", pads)
			return
		}
	}
	return
}

// windowOut computes the spatial output sizes of a Conv or pooling window.
// It returns the pads actually applied too (resolved for auto_pad).
func windowOut(c *opCtx, in, kernel []int, ceilMode, dilationsAllowed bool) ([]int, error) {
	k := len(kernel)
	strides, dilations, pads, err := spatialAttrs(c, k, dilationsAllowed)
	if err != nil {
		return nil, err
	}
	autoPad := c.n.AttrString("auto_pad", "NOTSET")
	out := make([]int, k)
	for i := range k {
		dk := (kernel[i]-1)*dilations[i] + 1
		s := strides[i]
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out[i] = (in[i] + s - 1) / s
		case "VALID":
			if in[i] < dk {
				return nil, c.errf("input size %d of spatial dimension %d is smaller than the dilated kernel %d", in[i], i, dk)
			}
			if ceilMode {
				out[i] = ceilDiv(in[i]-dk, s) + 1
			} else {
				out[i] = (in[i]-dk)/s + 1
			}
		case "NOTSET", "":
			num := in[i] + pads[i] + pads[i+k] - dk
			if num < 0 {
				return nil, c.errf("padded input size %d of spatial dimension %d is smaller than the dilated kernel %d", in[i]+pads[i]+pads[i+k], i, dk)
			}
			if ceilMode {
				o := ceilDiv(num, s) + 1
				// A last window that would start in the right padding is
				// dropped.
				if (o-1)*s >= in[i]+pads[i] {
					o--
				}
				out[i] = o
			} else {
				out[i] = num/s + 1
			}
		default:
			return nil, c.errf("auto_pad %q is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", autoPad)
		}
	}
	return out, nil
}

func ceilDiv(a, b int) int {
	if a >= 0 {
		return (a + b - 1) / b
	}
	return -((-a) / b)
}

// convOperands reads the input, weight and group of a Conv or
// ConvTranspose node and checks what the two share: ranks and group.
func convOperands(c *opCtx) (x, w *value, group int, err error) {
	if x, err = c.need(0); err != nil {
		return nil, nil, 0, err
	}
	if w, err = c.need(1); err != nil {
		return nil, nil, 0, err
	}
	if len(x.shape) < 3 {
		return nil, nil, 0, c.errf("input %q has shape %v, want rank ≥ 3 (N, C, spatial...)", c.n.Inputs[0], x.shape)
	}
	if len(w.shape) != len(x.shape) {
		return nil, nil, 0, c.errf("weight %q has shape %v, want rank %d like the input %v", c.n.Inputs[1], w.shape, len(x.shape), x.shape)
	}
	group = int(c.n.AttrInt("group", 1))
	if group < 1 {
		return nil, nil, 0, c.errf("group %d must be positive", group)
	}
	return x, w, group, nil
}

// checkKernelShape checks a kernel_shape attribute, when there is one,
// against the weight's spatial sizes.
func checkKernelShape(c *opCtx, kernel, wShape []int) error {
	ks, ok := c.attrInts("kernel_shape")
	if !ok || len(ks) == 0 {
		return nil
	}
	if len(ks) != len(kernel) {
		return c.errf("kernel_shape %v has %d values, want %d", ks, len(ks), len(kernel))
	}
	for i, v := range ks {
		if int(v) != kernel[i] {
			return c.errf("kernel_shape %v does not match weight %q %v", ks, c.n.Inputs[1], wShape)
		}
	}
	return nil
}

func convShape(c *opCtx) ([]*value, error) {
	x, w, group, err := convOperands(c)
	if err != nil {
		return nil, err
	}
	if x.shape[1] != w.shape[1]*group {
		return nil, c.errf("input has %d channels but weight %q %v with group %d expects %d", x.shape[1], c.n.Inputs[1], w.shape, group, w.shape[1]*group)
	}
	if w.shape[0]%group != 0 {
		return nil, c.errf("weight %q has %d output channels, not a multiple of group %d", c.n.Inputs[1], w.shape[0], group)
	}
	kernel := w.shape[2:]
	if err := checkKernelShape(c, kernel, w.shape); err != nil {
		return nil, err
	}
	if b := c.in(2); b != nil && (len(b.shape) != 1 || b.shape[0] != w.shape[0]) {
		return nil, c.errf("bias %q has shape %v, want [%d]", c.n.Inputs[2], b.shape, w.shape[0])
	}
	sp, err := windowOut(c, x.shape[2:], kernel, false, true)
	if err != nil {
		return nil, err
	}
	out := append([]int{x.shape[0], w.shape[0]}, sp...)
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func poolShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 3 {
		return nil, c.errf("input %q has shape %v, want rank ≥ 3 (N, C, spatial...)", c.n.Inputs[0], x.shape)
	}
	ks, ok := c.attrInts("kernel_shape")
	if !ok || len(ks) != len(x.shape)-2 {
		return nil, c.errf("kernel_shape %v must have %d values", ks, len(x.shape)-2)
	}
	kernel := make([]int, len(ks))
	for i, v := range ks {
		if v < 1 {
			return nil, c.errf("kernel_shape %v must be positive", ks)
		}
		kernel[i] = int(v)
	}
	ceil := c.n.AttrInt("ceil_mode", 0) == 1
	dil := c.n.OpType == "MaxPool" && c.opset() >= 10 || c.n.OpType == "AveragePool" && c.opset() >= 19
	sp, err := windowOut(c, x.shape[2:], kernel, ceil, dil)
	if err != nil {
		return nil, err
	}
	out := append([]int{x.shape[0], x.shape[1]}, sp...)
	res := []*value{{shape: out, dtype: x.dtype}}
	if c.n.OpType == "MaxPool" && len(c.n.Outputs) > 1 {
		res = append(res, &value{shape: slices.Clone(out), dtype: tensor.Int64})
	}
	return res, nil
}

func globalPoolShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 2 {
		return nil, c.errf("input %q has shape %v, want rank ≥ 2", c.n.Inputs[0], x.shape)
	}
	out := slices.Clone(x.shape)
	for i := 2; i < len(out); i++ {
		out[i] = 1
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func batchNormShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 2 {
		return nil, c.errf("input %q has shape %v, want rank ≥ 2", c.n.Inputs[0], x.shape)
	}
	ch := x.shape[1]
	for i := 1; i <= 4; i++ {
		p, err := c.need(i)
		if err != nil {
			return nil, err
		}
		if c.opset() >= 7 || c.n.AttrInt("spatial", 1) == 1 {
			if tensor.Numel(p.shape) != ch {
				return nil, c.errf("input %d (%q) has shape %v, want [%d]", i, c.n.Inputs[i], p.shape, ch)
			}
		}
	}
	res := []*value{same(x)}
	for i := 1; i < len(c.n.Outputs) && i < 5; i++ {
		res = append(res, &value{shape: []int{ch}, dtype: x.dtype})
	}
	return res, nil
}

// layerNormShape: Y like X; Mean and InvStdDev keep X's leading axes
// (before axis) and have size 1 on the normalized ones.
func layerNormShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	axis, err := normAxis(c, c.n.AttrInt("axis", -1), len(x.shape))
	if err != nil {
		return nil, err
	}
	inner := tensor.Numel(x.shape[axis:])
	for i := 1; i <= 2; i++ {
		p := c.in(i)
		if p == nil {
			if i == 1 {
				return nil, c.errf("input 1 (Scale) is missing")
			}
			continue
		}
		if n := tensor.Numel(p.shape); n != inner {
			return nil, c.errf("input %d (%q) has shape %v, want the normalized shape %v", i, c.n.Inputs[i], p.shape, x.shape[axis:])
		}
	}
	res := []*value{same(x)}
	stat := append([]int{}, x.shape...)
	for i := axis; i < len(stat); i++ {
		stat[i] = 1
	}
	for i := 1; i < len(c.n.Outputs) && i < 3; i++ {
		res = append(res, &value{shape: append([]int{}, stat...), dtype: x.dtype})
	}
	return res, nil
}

func gemmShape(c *opCtx) ([]*value, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	b, err := c.need(1)
	if err != nil {
		return nil, err
	}
	if len(a.shape) != 2 || len(b.shape) != 2 {
		return nil, c.errf("inputs have shapes %v and %v, want two matrices", a.shape, b.shape)
	}
	m, k := a.shape[0], a.shape[1]
	if c.n.AttrInt("transA", 0) != 0 {
		m, k = k, m
	}
	kb, n := b.shape[0], b.shape[1]
	if c.n.AttrInt("transB", 0) != 0 {
		kb, n = n, kb
	}
	if k != kb {
		return nil, c.errf("inner dimensions differ: A %v gives K=%d, B %v gives K=%d (transA=%d, transB=%d)", a.shape, k, b.shape, kb, c.n.AttrInt("transA", 0), c.n.AttrInt("transB", 0))
	}
	if bias := c.in(2); bias != nil {
		if _, err := broadcastShapes(c, bias.shape, []int{m, n}); err != nil {
			return nil, err
		}
	}
	return []*value{{shape: []int{m, n}, dtype: a.dtype}}, nil
}

func matMulShape(c *opCtx) ([]*value, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	b, err := c.need(1)
	if err != nil {
		return nil, err
	}
	as, bs := a.shape, b.shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, c.errf("inputs have shapes %v and %v; MatMul needs rank ≥ 1", as, bs)
	}
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = []int{1, as[0]}
	}
	if bVec {
		bs = []int{bs[0], 1}
	}
	ra, rb := len(as), len(bs)
	if as[ra-1] != bs[rb-2] {
		return nil, c.errf("inner dimensions differ: %v × %v", a.shape, b.shape)
	}
	batch, err := broadcastShapes(c, as[:ra-2], bs[:rb-2])
	if err != nil {
		return nil, err
	}
	out := slices.Clone(batch)
	if !aVec {
		out = append(out, as[ra-2])
	}
	if !bVec {
		out = append(out, bs[rb-1])
	}
	return []*value{{shape: out, dtype: a.dtype}}, nil
}

func concatShape(c *opCtx) ([]*value, error) {
	if len(c.ins) == 0 {
		return nil, c.errf("needs at least one input")
	}
	first, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(first.shape)
	axis, err := normAxis(c, c.n.AttrInt("axis", 0), max(r, 1))
	if err != nil {
		return nil, err
	}
	out := slices.Clone(first.shape)
	if r == 0 {
		return nil, c.errf("cannot concatenate scalars")
	}
	out[axis] = 0
	for i, v := range c.ins {
		if v == nil {
			return nil, c.errf("input %d is missing", i)
		}
		if len(v.shape) != r {
			return nil, c.errf("input %q has shape %v, rank differs from %v", c.n.Inputs[i], v.shape, first.shape)
		}
		for j, d := range v.shape {
			if j != axis && d != first.shape[j] {
				return nil, c.errf("input %q has shape %v, which differs from %v outside axis %d", c.n.Inputs[i], v.shape, first.shape, axis)
			}
		}
		out[axis] += v.shape[axis]
	}
	return []*value{{shape: out, dtype: first.dtype}}, nil
}

func flattenShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(x.shape)
	a := c.n.AttrInt("axis", 1)
	if a < -int64(r) || a > int64(r) {
		return nil, c.errf("axis %d is out of range for rank %d", a, r)
	}
	if a < 0 {
		a += int64(r)
	}
	return []*value{{shape: []int{tensor.Numel(x.shape[:a]), tensor.Numel(x.shape[a:])}, dtype: x.dtype}}, nil
}

// reshapeTo resolves a Reshape target (0 copies, -1 infers) against the
// input shape.
func reshapeTo(c *opCtx, in []int, target []int64, allowZero bool) ([]int, error) {
	out := make([]int, len(target))
	infer := -1
	prod := 1
	for i, t := range target {
		switch {
		case t == -1:
			if infer >= 0 {
				return nil, c.errf("shape %v has more than one -1", target)
			}
			infer = i
			continue
		case t == 0 && !allowZero:
			if i >= len(in) {
				return nil, c.errf("shape %v copies dimension %d, but the input %v has rank %d", target, i, in, len(in))
			}
			out[i] = in[i]
		case t < 0:
			return nil, c.errf("shape %v has a negative dimension %d", target, t)
		default:
			out[i] = int(t)
		}
		prod *= out[i]
	}
	n := tensor.Numel(in)
	if infer >= 0 {
		if prod == 0 || n%prod != 0 {
			return nil, c.errf("cannot reshape %v (%d elements) to %v", in, n, target)
		}
		out[infer] = n / prod
	} else if prod != n {
		return nil, c.errf("cannot reshape %v (%d elements) to %v (%d elements)", in, n, target, prod)
	}
	return out, nil
}

func reshapeShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	var target []int64
	if c.opset() < 5 {
		target, _ = c.attrInts("shape")
	} else {
		var present bool
		target, present, err = c.ints(1, "shape")
		if err != nil {
			return nil, err
		}
		if !present {
			return nil, c.errf("the shape input is missing")
		}
	}
	out, err := reshapeTo(c, x.shape, target, c.n.AttrInt("allowzero", 0) == 1)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func transposeShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	perm, err := transposePerm(c, len(x.shape))
	if err != nil {
		return nil, err
	}
	out := make([]int, len(perm))
	for i, p := range perm {
		out[i] = x.shape[p]
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func transposePerm(c *opCtx, r int) ([]int, error) {
	p, ok := c.attrInts("perm")
	perm := make([]int, r)
	if !ok || len(p) == 0 {
		for i := range perm {
			perm[i] = r - 1 - i
		}
		return perm, nil
	}
	if len(p) != r {
		return nil, c.errf("perm %v has %d values for rank %d", p, len(p), r)
	}
	seen := make([]bool, r)
	for i, v := range p {
		a, err := normAxis(c, v, r)
		if err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, c.errf("perm %v repeats axis %d", p, a)
		}
		seen[a] = true
		perm[i] = a
	}
	return perm, nil
}

func dropoutShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	res := []*value{same(x)}
	if len(c.n.Outputs) > 1 {
		dt := tensor.Bool
		if c.opset() < 10 {
			dt = x.dtype
		}
		res = append(res, &value{shape: slices.Clone(x.shape), dtype: dt})
	}
	return res, nil
}

func constantShape(c *opCtx) ([]*value, error) {
	t, err := constantValue(c.n)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: slices.Clone(t.Shape), dtype: t.DType}}, nil
}

// constantValue is the tensor a Constant node produces.
func constantValue(n *Node) (*tensor.Tensor, error) {
	if len(n.Attrs) != 1 {
		return nil, nodeErrorf(n, "has %d attributes, want exactly one value attribute", len(n.Attrs))
	}
	a := n.Attrs[0]
	switch a.Name {
	case "value":
		if a.T == nil || a.T.Value == nil {
			return nil, nodeErrorf(n, "value attribute has no tensor")
		}
		if msg := tensorProblem(a.T.Value); msg != "" {
			return nil, nodeErrorf(n, "value: %s", msg)
		}
		return a.T.Value, nil
	case "value_float":
		return &tensor.Tensor{DType: tensor.Float32, Shape: []int{}, F32: []float32{a.F}}, nil
	case "value_floats":
		return &tensor.Tensor{DType: tensor.Float32, Shape: []int{len(a.Floats)}, F32: slices.Clone(a.Floats)}, nil
	case "value_int":
		return &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{a.I}}, nil
	case "value_ints":
		return &tensor.Tensor{DType: tensor.Int64, Shape: []int{len(a.Ints)}, I64: slices.Clone(a.Ints)}, nil
	case "value_string":
		return &tensor.Tensor{DType: tensor.String, Shape: []int{}, Str: [][]byte{a.S}}, nil
	case "value_strings":
		return &tensor.Tensor{DType: tensor.String, Shape: []int{len(a.Strings)}, Str: a.Strings}, nil
	}
	return nil, nodeErrorf(n, "attribute %q is not supported (want value, value_float(s), value_int(s) or value_string(s))", a.Name)
}

// shapeRange is the [start, end) of the dimensions Shape (opset 15) returns.
func shapeRange(c *opCtx, r int) (int, int) {
	clamp := func(v int64) int {
		if v < 0 {
			v += int64(r)
		}
		return int(min(max(v, 0), int64(r)))
	}
	start := clamp(c.n.AttrInt("start", 0))
	end := r
	if a := c.n.Attr("end"); a != nil {
		end = clamp(a.I)
	}
	if end < start {
		end = start
	}
	return start, end
}

func shapeShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	s, e := shapeRange(c, len(x.shape))
	return []*value{{shape: []int{e - s}, dtype: tensor.Int64}}, nil
}

func sizeShape(c *opCtx) ([]*value, error) {
	if _, err := c.need(0); err != nil {
		return nil, err
	}
	return []*value{{shape: []int{}, dtype: tensor.Int64}}, nil
}

func gatherShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	idx, err := c.need(1)
	if err != nil {
		return nil, err
	}
	if len(x.shape) == 0 {
		return nil, c.errf("cannot gather from a scalar")
	}
	axis, err := normAxis(c, c.n.AttrInt("axis", 0), len(x.shape))
	if err != nil {
		return nil, err
	}
	out := slices.Clone(x.shape[:axis])
	out = append(out, idx.shape...)
	out = append(out, x.shape[axis+1:]...)
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

// axesOf reads an axes list: from an attribute before opset `inputFrom`,
// from input `idx` after. present reports whether axes were given at all.
func axesOf(c *opCtx, inputFrom int64, idx int) (axes []int64, present bool, err error) {
	if c.opset() < inputFrom {
		a, ok := c.attrInts("axes")
		return a, ok, nil
	}
	return c.ints(idx, "axes")
}

func unsqueezeShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	axes, present, err := axesOf(c, 13, 1)
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, c.errf("axes are missing")
	}
	r := len(x.shape) + len(axes)
	ins := make([]bool, r)
	for _, a := range axes {
		ax, err := normAxis(c, a, r)
		if err != nil {
			return nil, err
		}
		if ins[ax] {
			return nil, c.errf("axes %v repeat axis %d", axes, ax)
		}
		ins[ax] = true
	}
	out := make([]int, r)
	j := 0
	for i := range out {
		if ins[i] {
			out[i] = 1
		} else {
			out[i] = x.shape[j]
			j++
		}
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func squeezeShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	axes, present, err := axesOf(c, 13, 1)
	if err != nil {
		return nil, err
	}
	r := len(x.shape)
	drop := make([]bool, r)
	if !present || len(axes) == 0 {
		for i, d := range x.shape {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		ax, err := normAxis(c, a, r)
		if err != nil {
			return nil, err
		}
		if x.shape[ax] != 1 {
			return nil, c.errf("cannot squeeze axis %d of shape %v: its size is not 1", ax, x.shape)
		}
		drop[ax] = true
	}
	var out []int
	for i, d := range x.shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	if out == nil {
		out = []int{}
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

// padsOf returns the per-axis begin and end pads of a Pad node for an input
// of rank r.
func padsOf(c *opCtx, r int) (begin, end []int, err error) {
	var pads []int64
	var axes []int64
	if c.opset() < 11 {
		p, ok := c.attrInts("pads")
		if !ok {
			p, ok = c.attrInts("paddings")
		}
		if !ok {
			return nil, nil, c.errf("pads attribute is missing")
		}
		pads = p
	} else {
		p, present, err := c.ints(1, "pads")
		if err != nil {
			return nil, nil, err
		}
		if !present {
			return nil, nil, c.errf("the pads input is missing")
		}
		pads = p
		if c.opset() >= 18 {
			a, present, err := c.ints(3, "axes")
			if err != nil {
				return nil, nil, err
			}
			if present {
				axes = a
			}
		}
	}
	if axes == nil {
		axes = make([]int64, r)
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, nil, c.errf("pads %v has %d values, want %d (2 × %d axes)", pads, len(pads), 2*len(axes), len(axes))
	}
	begin, end = make([]int, r), make([]int, r)
	k := len(axes)
	for i, a := range axes {
		ax, err := normAxis(c, a, r)
		if err != nil {
			return nil, nil, err
		}
		begin[ax] = int(pads[i])
		end[ax] = int(pads[i+k])
	}
	return begin, end, nil
}

func padShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	begin, end, err := padsOf(c, len(x.shape))
	if err != nil {
		return nil, err
	}
	out := slices.Clone(x.shape)
	for i := range out {
		out[i] += begin[i] + end[i]
		if out[i] < 0 {
			return nil, c.errf("pads make dimension %d of %v negative", i, x.shape)
		}
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func reduceShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	from := int64(18)
	if c.n.OpType == "ReduceSum" {
		from = 13
	}
	axes, _, err := axesOf(c, from, 1)
	if err != nil {
		return nil, err
	}
	r := len(x.shape)
	red := make([]bool, r)
	if len(axes) == 0 {
		if c.n.AttrInt("noop_with_empty_axes", 0) == 1 {
			return []*value{same(x)}, nil
		}
		for i := range red {
			red[i] = true
		}
	}
	for _, a := range axes {
		ax, err := normAxis(c, a, r)
		if err != nil {
			return nil, err
		}
		red[ax] = true
	}
	keep := c.n.AttrInt("keepdims", 1) == 1
	out := []int{}
	for i, d := range x.shape {
		switch {
		case !red[i]:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

func splitShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if len(x.shape) == 0 {
		return nil, c.errf("cannot split a scalar")
	}
	axis, err := normAxis(c, c.n.AttrInt("axis", 0), len(x.shape))
	if err != nil {
		return nil, err
	}
	var split []int64
	if c.opset() < 13 {
		split, _ = c.attrInts("split")
	} else {
		split, _, err = c.ints(1, "split")
		if err != nil {
			return nil, err
		}
	}
	d := x.shape[axis]
	nOut := len(c.n.Outputs)
	if len(split) == 0 {
		if c.opset() >= 18 {
			if a := c.n.Attr("num_outputs"); a != nil && a.I != int64(nOut) {
				return nil, c.errf("num_outputs is %d but the node has %d outputs", a.I, nOut)
			}
		}
		if nOut < 1 {
			return nil, c.errf("has no outputs")
		}
		if c.opset() >= 18 && c.n.Attr("num_outputs") != nil {
			chunk := ceilDiv(d, nOut)
			split = make([]int64, nOut)
			left := d
			for i := range split {
				split[i] = int64(min(chunk, left))
				left -= int(split[i])
			}
		} else {
			if d%nOut != 0 {
				return nil, c.errf("cannot split dimension %d of size %d into %d equal parts", axis, d, nOut)
			}
			split = make([]int64, nOut)
			for i := range split {
				split[i] = int64(d / nOut)
			}
		}
	}
	if len(split) != len(c.n.Outputs) {
		return nil, c.errf("split %v has %d parts for %d outputs", split, len(split), len(c.n.Outputs))
	}
	sum := int64(0)
	res := make([]*value, len(split))
	for i, s := range split {
		if s < 0 {
			return nil, c.errf("split %v has a negative part", split)
		}
		sum += s
		o := slices.Clone(x.shape)
		o[axis] = int(s)
		res[i] = &value{shape: o, dtype: x.dtype}
	}
	if sum != int64(d) {
		return nil, c.errf("split %v sums to %d, but dimension %d has size %d", split, sum, axis, d)
	}
	return res, nil
}

// sliceParams resolves a Slice node into per-axis start, step and count.
func sliceParams(c *opCtx, shape []int) (start, step, count []int, err error) {
	var starts, ends, axes, steps []int64
	if c.opset() < 10 {
		starts, _ = c.attrInts("starts")
		ends, _ = c.attrInts("ends")
		axes, _ = c.attrInts("axes")
	} else {
		var present bool
		if starts, present, err = c.ints(1, "starts"); err != nil || !present {
			if err == nil {
				err = c.errf("the starts input is missing")
			}
			return
		}
		if ends, present, err = c.ints(2, "ends"); err != nil || !present {
			if err == nil {
				err = c.errf("the ends input is missing")
			}
			return
		}
		if axes, _, err = c.ints(3, "axes"); err != nil {
			return
		}
		if steps, _, err = c.ints(4, "steps"); err != nil {
			return
		}
	}
	r := len(shape)
	if len(starts) != len(ends) {
		return nil, nil, nil, c.errf("starts %v and ends %v differ in length", starts, ends)
	}
	if len(axes) == 0 {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	if len(steps) == 0 {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, nil, nil, c.errf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	start, step, count = make([]int, r), make([]int, r), make([]int, r)
	for i := range r {
		step[i] = 1
		count[i] = shape[i]
	}
	seen := make([]bool, r)
	for i, a := range axes {
		ax, err := normAxis(c, a, r)
		if err != nil {
			return nil, nil, nil, err
		}
		if seen[ax] {
			return nil, nil, nil, c.errf("axes %v repeat axis %d", axes, ax)
		}
		seen[ax] = true
		d := int64(shape[ax])
		s, e, st := starts[i], ends[i], steps[i]
		if st == 0 {
			return nil, nil, nil, c.errf("steps %v has a zero step", steps)
		}
		if s < 0 {
			s += d
		}
		if e < 0 {
			e += d
		}
		var n int64
		if st > 0 {
			s = min(max(s, 0), d)
			e = min(max(e, 0), d)
			if e > s {
				n = (e-s-1)/st + 1
			}
		} else {
			s = min(max(s, -1), d-1)
			e = min(max(e, -1), d-1)
			neg := -st
			if st == math.MinInt64 {
				neg = math.MaxInt64
			}
			if s > e {
				n = (s-e-1)/neg + 1
			}
		}
		start[ax], step[ax], count[ax] = int(s), int(st), int(n)
	}
	return start, step, count, nil
}

func sliceShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	_, _, count, err := sliceParams(c, x.shape)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: count, dtype: x.dtype}}, nil
}

func castShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	to := c.n.Attr("to")
	if to == nil {
		return nil, c.errf("attribute to is missing")
	}
	dt := tensor.DType(to.I)
	if to.Type == AttrString { // opset 6 allowed a type name
		dt = dtypeByName(string(to.S))
	}
	return []*value{{shape: slices.Clone(x.shape), dtype: dt}}, nil
}

func dtypeByName(s string) tensor.DType {
	for dt := tensor.Float32; dt <= tensor.BFloat16; dt++ {
		if strings.EqualFold(dt.String(), s) || strings.EqualFold(strings.ReplaceAll(dt.String(), "32", ""), s) {
			return dt
		}
	}
	switch strings.ToUpper(s) {
	case "FLOAT":
		return tensor.Float32
	case "DOUBLE":
		return tensor.Float64
	}
	return tensor.Undefined
}

// shapeInput reads input i, a shape: constant, present and without a
// negative dimension.
func (c *opCtx) shapeInput(i int) ([]int, error) {
	dims, present, err := c.ints(i, "shape")
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, c.errf("the shape input is missing")
	}
	out := make([]int, len(dims))
	for j, d := range dims {
		if d < 0 {
			return nil, c.errf("shape %v has a negative dimension", dims)
		}
		out[j] = int(d)
	}
	return out, nil
}

func constantOfShapeShape(c *opCtx) ([]*value, error) {
	out, err := c.shapeInput(0)
	if err != nil {
		return nil, err
	}
	dt := tensor.Float32
	if a := c.n.Attr("value"); a != nil && a.T != nil && a.T.Value != nil {
		dt = a.T.Value.DType
	}
	return []*value{{shape: out, dtype: dt}}, nil
}

func rangeShape(c *opCtx) ([]*value, error) {
	for i := range 3 {
		v, err := c.need(i)
		if err != nil {
			return nil, err
		}
		if v.val == nil {
			return nil, c.errf("input %q is not a constant; Range's length cannot be inferred", c.n.Inputs[i])
		}
	}
	start, limit, delta := scalarF(c.ins[0].val), scalarF(c.ins[1].val), scalarF(c.ins[2].val)
	if delta == 0 {
		return nil, c.errf("delta is zero")
	}
	nf := max(0, math.Ceil((limit-start)/delta))
	if math.IsNaN(nf) || nf > 1<<40 {
		return nil, c.errf("range from %v to %v by %v has too many elements", start, limit, delta)
	}
	n := int(nf)
	return []*value{{shape: []int{n}, dtype: c.ins[0].dtype}}, nil
}

func expandShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	s, err := c.shapeInput(1)
	if err != nil {
		return nil, err
	}
	out, err := broadcastShapes(c, x.shape, s)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

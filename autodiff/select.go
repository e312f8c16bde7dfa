package autodiff

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Selection, comparison and indexing ops: the comparisons and logical
// ops, Where, Expand, Tile, ArgMax/ArgMin, Not, Size, Range and ScatterND,
// with numpy broadcasting where the op has it. Exports use them for shape
// arithmetic (ViT's class token is expanded to the batch through
// Where(Equal(shape, -1), 1, shape); Swin builds its window masks with
// Range, Mod and ScatterND) and for masks. Where passes gradients to the
// branch it selected, Expand and Tile sum them over their copies,
// ScatterND to the updates that landed and the data they did not cover.
func init() {
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor"} {
		register(op, func(*graph.Node, int64) (Kernel, error) { return &equalKernel{op: op}, nil })
	}
	for _, op := range []string{"ArgMax", "ArgMin"} {
		register(op, func(n *graph.Node, _ int64) (Kernel, error) {
			return &argKernel{max: op == "ArgMax", axis: n.AttrInt("axis", 0), keepDims: n.AttrInt("keepdims", 1) != 0,
				last: n.AttrInt("select_last_index", 0) != 0}, nil
		})
	}
	register("Tile", func(*graph.Node, int64) (Kernel, error) { return &tileKernel{}, nil })
	register("Where", func(*graph.Node, int64) (Kernel, error) { return &whereKernel{}, nil })
	register("Expand", func(*graph.Node, int64) (Kernel, error) { return &expandKernel{}, nil })
	register("Not", func(*graph.Node, int64) (Kernel, error) { return &notKernel{}, nil })
	register("Size", func(*graph.Node, int64) (Kernel, error) { return &sizeKernel{}, nil })
	register("Range", func(*graph.Node, int64) (Kernel, error) { return &rangeKernel{}, nil })
	register("ScatterND", func(n *graph.Node, _ int64) (Kernel, error) {
		if r := n.AttrString("reduction", "none"); r != "none" {
			return nil, fmt.Errorf("reduction %q is not supported (only none)", r)
		}
		return &scatterNDKernel{}, nil
	})
}

// equalKernel is a comparison (Equal, Greater, Less, GreaterOrEqual,
// LessOrEqual; a comparison with NaN is false) or a logical op on bools
// (And, Or, Xor): a bool tensor.
type equalKernel struct {
	NonDifferentiable
	op    string
	dtype tensor.DType
	plan  *bcastPlan
}

func (k *equalKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 2 || !in[0].Present || !in[1].Present {
		return nil, fmt.Errorf("%s takes 2 inputs", k.op)
	}
	if in[0].DType != in[1].DType {
		return nil, fmt.Errorf("input types differ: %s and %s", in[0].DType, in[1].DType)
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	logical := k.op == "And" || k.op == "Or" || k.op == "Xor"
	if logical != (in[0].DType == tensor.Bool) && (logical || k.op != "Equal") {
		if logical {
			return nil, fmt.Errorf("%s takes bool inputs, not %s", k.op, in[0].DType)
		}
		return nil, fmt.Errorf("%s does not order bool inputs", k.op)
	}
	out, err := broadcastShapes(in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, err
	}
	k.dtype, k.plan = in[0].DType, newBcastPlan(out, in[0].Shape, in[1].Shape)
	return []Output{{DType: tensor.Bool, Shape: out}}, nil
}

// compare applies k.op to a pair of values (bools as 0/1).
func compare[T float32 | float64 | int64](op string, x, y T) bool {
	switch op {
	case "Greater":
		return x > y
	case "Less":
		return x < y
	case "GreaterOrEqual":
		return x >= y
	case "LessOrEqual":
		return x <= y
	case "And":
		return x != 0 && y != 0
	case "Or":
		return x != 0 || y != 0
	case "Xor":
		return (x != 0) != (y != 0)
	}
	return x == y
}

func (k *equalKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	a, b, z := in[0], in[1], out[0].I64
	sa, sb, n := k.plan.innerStride(0), k.plan.innerStride(1), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i := range n {
			ia, ib := offs[0]+i*sa, offs[1]+i*sb
			var eq bool
			switch k.dtype {
			case tensor.Float32:
				eq = compare(k.op, a.F32[ia], b.F32[ib])
			case tensor.Float64:
				eq = compare(k.op, a.F64[ia], b.F64[ib])
			default:
				eq = compare(k.op, a.I64[ia], b.I64[ib])
			}
			z[o+i] = 0
			if eq {
				z[o+i] = 1
			}
		}
	})
	return nil
}

// setElem sets element i of z to element j of x (one type: float32,
// float64, or an integer type stored as int64).
func setElem(z *tensor.Tensor, i int, x *tensor.Tensor, j int) {
	switch z.DType {
	case tensor.Float32:
		z.F32[i] = x.F32[j]
	case tensor.Float64:
		z.F64[i] = x.F64[j]
	default:
		z.I64[i] = x.I64[j]
	}
}

type whereKernel struct {
	dtype tensor.DType
	plan  *bcastPlan
}

func (k *whereKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 3 || !in[0].Present || !in[1].Present || !in[2].Present {
		return nil, errors.New("Where takes 3 inputs (condition, X, Y)")
	}
	if in[0].DType != tensor.Bool {
		return nil, fmt.Errorf("the condition is %s, want bool", in[0].DType)
	}
	if in[1].DType != in[2].DType {
		return nil, fmt.Errorf("X is %s and Y is %s: want one type", in[1].DType, in[2].DType)
	}
	if err := checkDataDType(in[1].DType); err != nil {
		return nil, err
	}
	out, err := broadcastShapes(in[0].Shape, in[1].Shape, in[2].Shape)
	if err != nil {
		return nil, err
	}
	k.dtype, k.plan = in[1].DType, newBcastPlan(out, in[0].Shape, in[1].Shape, in[2].Shape)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

func (k *whereKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	c, x, y, z := in[0].I64, in[1], in[2], out[0]
	sc, sx, sy, n := k.plan.innerStride(0), k.plan.innerStride(1), k.plan.innerStride(2), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i := range n {
			src, j := y, offs[2]+i*sy
			if c[offs[0]+i*sc] != 0 {
				src, j = x, offs[1]+i*sx
			}
			setElem(z, o+i, src, j)
		}
	})
	return nil
}

func (k *whereKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || k.dtype != tensor.Float32 {
		return nil
	}
	c, g := in[0].I64, gout[0].F32
	var gx, gy []float32
	if gin[1] != nil {
		gx = gin[1].F32
	}
	if gin[2] != nil {
		gy = gin[2].F32
	}
	sc, sx, sy, n := k.plan.innerStride(0), k.plan.innerStride(1), k.plan.innerStride(2), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i, gv := range g[o : o+n] {
			if c[offs[0]+i*sc] != 0 {
				if gx != nil {
					gx[offs[1]+i*sx] += gv
				}
			} else if gy != nil {
				gy[offs[2]+i*sy] += gv
			}
		}
	})
	return nil
}

// expandKernel is Expand: X broadcast with a constant shape (numpy rules,
// both ways: a 1 in the shape keeps X's size).
type expandKernel struct {
	dtype tensor.DType
	plan  *bcastPlan
}

func (k *expandKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("Expand takes 2 inputs (input, shape)")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	sh := in[1].Const
	if sh == nil || !in[1].DType.IsInteger() || len(in[1].Shape) != 1 {
		return nil, errors.New("the shape input must be a constant rank-1 integer tensor (the engine fixes every shape when it compiles)")
	}
	shape := make([]int, len(sh.I64))
	for i, v := range sh.I64 {
		if v < 0 {
			return nil, fmt.Errorf("shape %v has a negative dimension", sh.I64)
		}
		shape[i] = int(v)
	}
	out, err := broadcastShapes(in[0].Shape, shape)
	if err != nil {
		return nil, err
	}
	if err := checkOutputSize(out); err != nil {
		return nil, err
	}
	k.dtype, k.plan = in[0].DType, newBcastPlan(out, in[0].Shape)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

func (k *expandKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	x, z := in[0], out[0]
	s, n := k.plan.innerStride(0), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i := range n {
			setElem(z, o+i, x, offs[0]+i*s)
		}
	})
	return nil
}

func (k *expandKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] != nil && gin[0] != nil && k.dtype == tensor.Float32 {
		k.plan.reduceSumInto(0, gin[0].F32, gout[0].F32)
	}
	return nil
}

// notKernel is Not on a bool tensor.
type notKernel struct{ NonDifferentiable }

func (k *notKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present || in[0].DType != tensor.Bool {
		return nil, errors.New("Not takes one bool input")
	}
	return []Output{{DType: tensor.Bool, Shape: in[0].Shape}}, nil
}

func (k *notKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	for i, v := range in[0].I64 {
		out[0].I64[i] = 1 - min(v, 1)
	}
	return nil
}

// rangeKernel is Range with constant scalar inputs (the engine fixes
// every shape when it compiles, and Range's length is its shape).
type rangeKernel struct {
	NonDifferentiable
	dtype tensor.DType
	vals  *tensor.Tensor
}

func (k *rangeKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 3 {
		return nil, errors.New("Range takes 3 inputs (start, limit, delta)")
	}
	var v [3]float64
	var iv [3]int64
	for i, x := range in {
		if !x.Present || x.Const == nil || tensor.Numel(x.Shape) != 1 || x.DType != in[0].DType {
			return nil, errors.New("Range's start, limit and delta must be constant scalars of one type (the engine fixes every shape when it compiles)")
		}
		if err := checkDataDType(x.DType); err != nil {
			return nil, err
		}
		v[i] = castGet(x.Const, 0)
		if x.DType.IsInteger() {
			iv[i] = x.Const.I64[0]
		}
	}
	if v[2] == 0 {
		return nil, errors.New("Range's delta is zero")
	}
	nf := max(0, math.Ceil((v[1]-v[0])/v[2]))
	if math.IsNaN(nf) || nf > 1<<31 {
		return nil, fmt.Errorf("Range from %v to %v by %v has too many elements", v[0], v[1], v[2])
	}
	n := int(nf)
	k.dtype = in[0].DType
	k.vals = allocTensor(k.dtype, []int{n})
	for i := range n {
		switch {
		case k.dtype == tensor.Float32:
			k.vals.F32[i] = float32(v[0] + float64(i)*v[2])
		case k.dtype == tensor.Float64:
			k.vals.F64[i] = v[0] + float64(i)*v[2]
		default:
			k.vals.I64[i] = k.dtype.Wrap(iv[0] + int64(i)*iv[2])
		}
	}
	return []Output{{DType: k.dtype, Shape: []int{n}}}, nil
}

func (k *rangeKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	copyData(out[0], k.vals)
	return nil
}

// scatterNDKernel is ScatterND without reduction: a copy of the data with
// the slices the index tuples address replaced by the updates (a later
// tuple wins where two address the same slice). Gradients: the data's is
// dY where no update landed, each update's the dY slice it landed on.
type scatterNDKernel struct {
	dtype tensor.DType
	// offs[j]: the data offset of update slice j; slice is its length.
	offs  []int
	slice int
	// won[j]: update slice j is the last written to its place; hit[s]:
	// some update lands on data slice s.
	won, hit []bool
}

func (k *scatterNDKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 3 || !in[0].Present || !in[1].Present || !in[2].Present {
		return nil, errors.New("ScatterND takes 3 inputs (data, indices, updates)")
	}
	data, idx, upd := in[0], in[1], in[2]
	if err := checkDataDType(data.DType); err != nil {
		return nil, err
	}
	if upd.DType != data.DType {
		return nil, fmt.Errorf("updates are %s, data %s", upd.DType, data.DType)
	}
	if idx.Const == nil || !idx.DType.IsInteger() || len(idx.Shape) == 0 {
		return nil, errors.New("ScatterND's indices must be a constant integer tensor of rank >= 1")
	}
	kd := idx.Shape[len(idx.Shape)-1]
	if kd > len(data.Shape) {
		return nil, fmt.Errorf("index tuples of %d address more axes than the data's %d", kd, len(data.Shape))
	}
	want := append(slices.Clone(idx.Shape[:len(idx.Shape)-1]), data.Shape[kd:]...)
	if !slices.Equal(upd.Shape, want) {
		return nil, fmt.Errorf("updates have shape %v, want %v", upd.Shape, want)
	}
	k.dtype, k.slice = data.DType, tensor.Numel(data.Shape[kd:])
	nt := tensor.Numel(idx.Shape[:len(idx.Shape)-1])
	k.offs, k.won = make([]int, nt), make([]bool, nt)
	last := map[int]int{}
	for j := range nt {
		off := 0
		for a := range kd {
			v := int(idx.Const.I64[j*kd+a])
			if v < 0 {
				v += data.Shape[a]
			}
			if v < 0 || v >= data.Shape[a] {
				return nil, fmt.Errorf("index %d is out of range for axis %d of size %d", idx.Const.I64[j*kd+a], a, data.Shape[a])
			}
			off = off*data.Shape[a] + v
		}
		k.offs[j] = off * k.slice
		last[k.offs[j]] = j
	}
	k.hit = make([]bool, tensor.Numel(data.Shape[:kd]))
	for off, j := range last {
		k.won[j] = true
		k.hit[off/max(1, k.slice)] = true
	}
	return []Output{{DType: k.dtype, Shape: data.Shape}}, nil
}

func (k *scatterNDKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	copyData(out[0], in[0])
	for j, off := range k.offs {
		switch k.dtype {
		case tensor.Float32:
			copy(out[0].F32[off:off+k.slice], in[2].F32[j*k.slice:])
		case tensor.Float64:
			copy(out[0].F64[off:off+k.slice], in[2].F64[j*k.slice:])
		default:
			copy(out[0].I64[off:off+k.slice], in[2].I64[j*k.slice:])
		}
	}
	return nil
}

func (k *scatterNDKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || k.dtype != tensor.Float32 {
		return nil
	}
	g := gout[0].F32
	if gin[2] != nil {
		gu := gin[2].F32
		for j, off := range k.offs {
			if k.won[j] {
				addInto(gu[j*k.slice:(j+1)*k.slice], g[off:off+k.slice])
			}
		}
	}
	if gin[0] != nil {
		gd := gin[0].F32
		for s, h := range k.hit {
			if !h {
				addInto(gd[s*k.slice:(s+1)*k.slice], g[s*k.slice:(s+1)*k.slice])
			}
		}
	}
	return nil
}

// sizeKernel is Size: the element count of its input, as an int64 scalar.
// It reads only the shape, which the engine fixes when it compiles.
type sizeKernel struct {
	NonDifferentiable
	n int64
}

func (*sizeKernel) shapeOnly() {}

func (k *sizeKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("Size takes one input")
	}
	k.n = int64(tensor.Numel(in[0].Shape))
	return []Output{{DType: tensor.Int64, Shape: []int{}}}, nil
}

func (k *sizeKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	out[0].I64[0] = k.n
	return nil
}

// argKernel is ArgMax or ArgMin along axis: int64 indices of the first
// extreme element (the last with select_last_index; a NaN is the extreme,
// as in numpy).
type argKernel struct {
	NonDifferentiable
	max, keepDims, last bool
	axis                int64
	outer, n, inner     int
}

func (k *argKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("takes one input")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	x := in[0].Shape
	ax, err := axisIndex(k.axis, len(x))
	if err != nil {
		return nil, err
	}
	k.outer, k.n, k.inner = tensor.Numel(x[:ax]), x[ax], tensor.Numel(x[ax+1:])
	if k.n == 0 {
		return nil, fmt.Errorf("axis %d of %v is empty", k.axis, x)
	}
	out := slices.Clone(x)
	if k.keepDims {
		out[ax] = 1
	} else {
		out = slices.Delete(out, ax, ax+1)
	}
	return []Output{{DType: tensor.Int64, Shape: out}}, nil
}

func (k *argKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0], out[0].I64
	for o := range k.outer {
		for i := range k.inner {
			best, bv := 0, castGet(x, o*k.n*k.inner+i)
			for j := 1; j < k.n; j++ {
				v := castGet(x, (o*k.n+j)*k.inner+i)
				if bv != bv {
					break // a NaN stays the extreme
				}
				better := v != v || (k.max && v > bv) || (!k.max && v < bv) || (k.last && v == bv)
				if better {
					best, bv = j, v
				}
			}
			y[o*k.inner+i] = int64(best)
		}
	}
	return nil
}

// tileKernel is Tile with constant repeats: the input repeated along each
// axis; the gradient sums the copies.
type tileKernel struct {
	dtype tensor.DType
	// src[i]: the input offset of output element i.
	src []int
}

func (k *tileKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("Tile takes 2 inputs (input, repeats)")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	x := in[0].Shape
	r := in[1].Const
	if r == nil || !in[1].DType.IsInteger() || len(r.I64) != len(x) {
		return nil, fmt.Errorf("repeats must be a constant integer tensor of %d values (the input's rank)", len(x))
	}
	out := make([]int, len(x))
	for i, v := range r.I64 {
		if v < 0 {
			return nil, fmt.Errorf("repeats %v has a negative value", r.I64)
		}
		if v > maxOutputElements {
			return nil, fmt.Errorf("repeats %v hold an absurd value", r.I64)
		}
		out[i] = x[i] * int(v)
	}
	if err := checkOutputSize(out); err != nil {
		return nil, err
	}
	k.dtype = in[0].DType
	k.src = make([]int, tensor.Numel(out))
	idx := make([]int, len(out))
	for i := range k.src {
		off := 0
		for d := range out {
			off = off*x[d] + idx[d]%x[d]
		}
		k.src[i] = off
		for d := len(out) - 1; d >= 0; d-- {
			if idx[d]++; idx[d] < out[d] {
				break
			}
			idx[d] = 0
		}
	}
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

func (k *tileKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	for i, j := range k.src {
		setElem(out[0], i, in[0], j)
	}
	return nil
}

func (k *tileKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || gin[0] == nil || k.dtype != tensor.Float32 {
		return nil
	}
	g, gx := gout[0].F32, gin[0].F32
	for i, j := range k.src {
		gx[j] += g[i]
	}
	return nil
}

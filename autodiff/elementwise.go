package autodiff

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Add, Sub, Mul, Div, Pow, Mod (numpy broadcasting; before opset 7 the legacy
// `broadcast`/`axis` attributes) and Sum (variadic broadcasting), in
// float32 with gradients, and in float64 and the integer types forward
// only. Integer results wrap to the element type, as numpy's do; integer
// division truncates toward zero, and division by an integer zero is an
// error. Float NaN and Inf follow IEEE arithmetic in every kernel of this
// package's data ops (this file, shape_ops.go, concat_split.go, pad.go,
// reduce.go, softmax.go, lrn.go): they propagate to the outputs they feed
// and are never checked for, so a NaN input gives NaN outputs, not an
// error.

func init() {
	for _, op := range []arithOp{opAdd, opSub, opMul, opDiv, opPow, opMod, opPRelu} {
		register(op.String(), func(n *graph.Node, opset int64) (Kernel, error) {
			opset = opsetOrLatest(opset)
			return newArith(n, opset, op)
		})
	}
	register("Sum", func(n *graph.Node, opset int64) (Kernel, error) { return &sumKernel{}, nil })
	register("Mean", func(n *graph.Node, opset int64) (Kernel, error) { return &sumKernel{op: "Mean"}, nil })
	register("Max", func(n *graph.Node, opset int64) (Kernel, error) { return &sumKernel{op: "Max"}, nil })
	register("Min", func(n *graph.Node, opset int64) (Kernel, error) { return &sumKernel{op: "Min"}, nil })
}

type arithOp int

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
	opPow // floats only: a^b in float64, rounded
	// Mod: integers take the divisor's sign (Python's %) unless fmod=1,
	// which takes the dividend's (C's fmod); floats need fmod=1.
	opMod
	opPRelu // a > 0 ? a : b·a (b: the slope), floats only
)

func (o arithOp) String() string {
	return [...]string{"Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu"}[o]
}

// arithKernel is a binary arithmetic op.
type arithKernel struct {
	op   arithOp
	fmod bool // Mod's fmod attribute
	// Legacy (opset < 7) broadcasting: B is broadcast to A only when
	// broadcast=1, aligned at axis (default: trailing dimensions).
	legacy    bool
	broadcast bool
	axis      int64
	hasAxis   bool

	dtype tensor.DType
	plan  *bcastPlan
}

func newArith(n *graph.Node, opset int64, op arithOp) (Kernel, error) {
	k := &arithKernel{op: op, fmod: n.AttrInt("fmod", 0) == 1}
	if opset < 7 {
		k.legacy = true
		k.broadcast = n.AttrInt("broadcast", 0) != 0
		if a := n.Attr("axis"); a != nil {
			k.axis, k.hasAxis = a.I, true
		}
	}
	if len(n.Inputs) != 2 {
		return nil, fmt.Errorf("%s takes 2 inputs, got %d", op, len(n.Inputs))
	}
	return k, nil
}

// legacyShape returns B's shape as rank(A) dimensions under the opset < 7
// rules.
func (k *arithKernel) legacyShape(a, b []int) ([]int, error) {
	if !k.broadcast {
		if !slices.Equal(a, b) {
			return nil, fmt.Errorf("shapes %v and %v differ and broadcast=0 (opset < 7 needs broadcast=1 to broadcast)", a, b)
		}
		return b, nil
	}
	if len(b) > len(a) {
		return nil, fmt.Errorf("with broadcast=1, B's rank (%v) may not exceed A's (%v)", b, a)
	}
	axis := int64(len(a) - len(b))
	if k.hasAxis {
		axis = k.axis
		if axis < 0 {
			axis += int64(len(a))
		}
		if axis < 0 || axis+int64(len(b)) > int64(len(a)) {
			return nil, fmt.Errorf("axis %d does not place B %v inside A %v", k.axis, b, a)
		}
	}
	out := make([]int, len(a))
	for i := range out {
		out[i] = 1
	}
	for i, d := range b {
		ad := a[int(axis)+i]
		if d != ad && d != 1 {
			return nil, fmt.Errorf("B %v does not broadcast to A %v at axis %d", b, a, axis)
		}
		out[int(axis)+i] = d
	}
	return out, nil
}

func (k *arithKernel) Setup(in []Value) ([]Output, error) {
	if !in[0].Present || !in[1].Present {
		return nil, errors.New("both inputs are required")
	}
	if in[0].DType != in[1].DType {
		return nil, fmt.Errorf("input types differ: %s and %s", in[0].DType, in[1].DType)
	}
	if err := checkArithDType(in[0].DType); err != nil {
		return nil, err
	}
	isFloat := in[0].DType == tensor.Float32 || in[0].DType == tensor.Float64
	if k.op == opPow && !isFloat {
		return nil, fmt.Errorf("Pow of %s: the engine raises float32 and float64 only", in[0].DType)
	}
	if k.op == opPRelu && !isFloat {
		return nil, fmt.Errorf("PRelu of %s: float32 and float64 only", in[0].DType)
	}
	if k.op == opMod && isFloat && !k.fmod {
		return nil, fmt.Errorf("Mod of %s needs fmod=1 (the ONNX rule for floats)", in[0].DType)
	}
	k.dtype = in[0].DType
	a, b := in[0].Shape, in[1].Shape
	if k.legacy {
		var err error
		if b, err = k.legacyShape(a, b); err != nil {
			return nil, err
		}
	}
	out, err := broadcastShapes(a, b)
	if err != nil {
		return nil, err
	}
	k.plan = newBcastPlan(out, a, b)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

// checkArithDType accepts the element types the arithmetic kernels compute
// in.
func checkArithDType(dt tensor.DType) error {
	if dt == tensor.Float32 || dt == tensor.Float64 || (dt.IsInteger() && dt != tensor.Bool) {
		return nil
	}
	return fmt.Errorf("element type %s is not supported (float32, float64 and integer types are)", dt)
}

func (k *arithKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	switch {
	case k.dtype == tensor.Float32 && k.plan.elementwise():
		z, a, b := out[0].F32, in[0].F32, in[1].F32
		if parallelPieces(ctx.Workers, len(z)) == 1 {
			arithSame(k.op, z, a, b)
			break
		}
		parallelChunks(ctx.Workers, len(z), func(lo, hi int) {
			arithSame(k.op, z[lo:hi], a[lo:hi], b[lo:hi])
		})
	case k.dtype == tensor.Float32:
		arithFloat(k.plan, k.op, out[0].F32, in[0].F32, in[1].F32)
	case k.dtype == tensor.Float64:
		arithFloat(k.plan, k.op, out[0].F64, in[0].F64, in[1].F64)
	default:
		return arithInt(k.plan, k.op, k.fmod, k.dtype, out[0].I64, in[0].I64, in[1].I64)
	}
	return nil
}

// arithSame computes z = a op b for operands of the same length.
func arithSame(op arithOp, z, a, b []float32) {
	a, b = a[:len(z)], b[:len(z)]
	switch op {
	case opAdd:
		for i := range z {
			z[i] = a[i] + b[i]
		}
	case opSub:
		for i := range z {
			z[i] = a[i] - b[i]
		}
	case opMul:
		for i := range z {
			z[i] = a[i] * b[i]
		}
	case opDiv:
		for i := range z {
			z[i] = a[i] / b[i]
		}
	case opPow:
		for i := range z {
			z[i] = pow32(a[i], b[i])
		}
	case opMod:
		for i := range z {
			z[i] = float32(math.Mod(float64(a[i]), float64(b[i])))
		}
	case opPRelu:
		for i := range z {
			z[i] = prelu(a[i], b[i])
		}
	}
}

// prelu is x for x > 0 and slope·x otherwise (NaN stays NaN).
func prelu[T float32 | float64](x, slope T) T {
	if x > 0 {
		return x
	}
	return slope * x
}

// pow32 is a^b computed in float64 and rounded (b = 2 gives a·a exactly
// rounded, as float32 multiplication does).
func pow32(a, b float32) float32 { return float32(math.Pow(float64(a), float64(b))) }

// arithFloat computes z = a op b over the plan's rows.
func arithFloat[T float32 | float64](p *bcastPlan, op arithOp, z, a, b []T) {
	sa, sb, n := p.innerStride(0), p.innerStride(1), p.inner
	p.rows(func(o int, offs []int) {
		zz := z[o : o+n]
		ia, ib := offs[0], offs[1]
		switch op {
		case opAdd:
			for i := range zz {
				zz[i] = a[ia+i*sa] + b[ib+i*sb]
			}
		case opSub:
			for i := range zz {
				zz[i] = a[ia+i*sa] - b[ib+i*sb]
			}
		case opMul:
			for i := range zz {
				zz[i] = a[ia+i*sa] * b[ib+i*sb]
			}
		case opDiv:
			for i := range zz {
				zz[i] = a[ia+i*sa] / b[ib+i*sb]
			}
		case opPow:
			for i := range zz {
				zz[i] = T(math.Pow(float64(a[ia+i*sa]), float64(b[ib+i*sb])))
			}
		case opMod:
			for i := range zz {
				zz[i] = T(math.Mod(float64(a[ia+i*sa]), float64(b[ib+i*sb])))
			}
		case opPRelu:
			for i := range zz {
				zz[i] = prelu(a[ia+i*sa], b[ib+i*sb])
			}
		}
	})
}

// arithInt computes z = a op b for integer types, wrapping to dt.
func arithInt(p *bcastPlan, op arithOp, fmod bool, dt tensor.DType, z, a, b []int64) error {
	sa, sb, n := p.innerStride(0), p.innerStride(1), p.inner
	var err error
	p.rows(func(o int, offs []int) {
		if err != nil {
			return
		}
		zz := z[o : o+n]
		ia, ib := offs[0], offs[1]
		for i := range zz {
			x, y := a[ia+i*sa], b[ib+i*sb]
			var r int64
			switch op {
			case opAdd:
				r = x + y
			case opSub:
				r = x - y
			case opMul:
				r = x * y
			case opDiv:
				if y == 0 {
					err = errors.New("integer division by zero")
					return
				}
				if dt == tensor.Uint64 {
					r = int64(uint64(x) / uint64(y))
				} else {
					r = x / y
				}
			case opMod:
				if y == 0 {
					err = errors.New("integer modulo by zero")
					return
				}
				if dt == tensor.Uint64 {
					r = int64(uint64(x) % uint64(y))
					break
				}
				r = x % y
				if !fmod && r != 0 && (r < 0) != (y < 0) {
					r += y
				}
			}
			zz[i] = dt.Wrap(r)
		}
	})
	return err
}

// assignsGrad: a same-shape Add (the residual join) copies dY into fresh
// input gradients instead of adding it.
func (k *arithKernel) assignsGrad(i int) bool {
	return i < 2 && k.op == opAdd && k.dtype == tensor.Float32 && k.plan != nil && k.plan.elementwise()
}

func (k *arithKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || k.dtype != tensor.Float32 {
		return nil
	}
	p, g := k.plan, gout[0].F32
	if p.elementwise() {
		k.backwardSame(ctx, in, out, g, gin)
		return nil
	}
	switch k.op {
	case opAdd:
		for i := range 2 {
			if gin[i] != nil {
				p.reduceSumInto(i, gin[i].F32, g)
			}
		}
		return nil
	case opSub:
		if gin[0] != nil {
			p.reduceSumInto(0, gin[0].F32, g)
		}
		if gin[1] != nil {
			addScaledBroadcast(p, 1, gin[1].F32, g, nil, 0, -1)
		}
		return nil
	}
	a, b, z := in[0].F32, in[1].F32, out[0].F32
	switch k.op {
	case opMul:
		// dz/da = b, dz/db = a.
		if gin[0] != nil {
			addScaledBroadcast(p, 0, gin[0].F32, g, b, 1, 1)
		}
		if gin[1] != nil {
			addScaledBroadcast(p, 1, gin[1].F32, g, a, 0, 1)
		}
	case opDiv, opPow, opMod, opPRelu:
		// Div: dz/da = 1/b, dz/db = -a/b² = -z/b. Pow: dz/da = b·a^(b-1),
		// dz/db = z·ln a. Mod (fmod): dz/da = 1, dz/db = -trunc(a/b).
		sa, sb, n := p.innerStride(0), p.innerStride(1), p.inner
		var ga, gb []float32
		if gin[0] != nil {
			ga = gin[0].F32
		}
		if gin[1] != nil {
			gb = gin[1].F32
		}
		p.rows(func(o int, offs []int) {
			ia, ib := offs[0], offs[1]
			for i, gv := range g[o : o+n] {
				da, db := arithGrads(k.op, gv, a[ia+i*sa], b[ib+i*sb], z[o+i])
				if ga != nil {
					ga[ia+i*sa] += da
				}
				if gb != nil {
					gb[ib+i*sb] += db
				}
			}
		})
	}
	return nil
}

// backwardSame is Backward when no operand is broadcast: every gradient
// element is independent, so the work is split over the workers.
func (k *arithKernel) backwardSame(ctx *RunContext, in, out []*tensor.Tensor, g []float32, gin []*tensor.Tensor) {
	var ga, gb []float32
	if gin[0] != nil {
		ga = gin[0].F32
	}
	if gin[1] != nil {
		gb = gin[1].F32
	}
	if k.op == opAdd && (ctx.fresh(0) || ctx.fresh(1)) {
		fa, fb := ctx.fresh(0), ctx.fresh(1)
		parallelChunks(ctx.Workers, len(g), func(lo, hi int) {
			if ga != nil {
				addOrCopy(ga[lo:hi], g[lo:hi], fa)
			}
			if gb != nil {
				addOrCopy(gb[lo:hi], g[lo:hi], fb)
			}
		})
		return
	}
	a, b, z := in[0].F32, in[1].F32, out[0].F32
	if parallelPieces(ctx.Workers, len(g)) == 1 {
		arithSameBackward(k.op, 0, len(g), g, a, b, z, ga, gb)
		return
	}
	parallelChunks(ctx.Workers, len(g), func(lo, hi int) {
		arithSameBackward(k.op, lo, hi, g, a, b, z, ga, gb)
	})
}

// arithSameBackward adds the gradients of elements [lo, hi) into ga and gb
// (either may be nil).
func arithSameBackward(op arithOp, lo, hi int, g, a, b, z, ga, gb []float32) {
	for i := lo; i < hi; i++ {
		da, db := arithGrads(op, g[i], a[i], b[i], z[i])
		if ga != nil {
			ga[i] += da
		}
		if gb != nil {
			gb[i] += db
		}
	}
}

// arithGrads returns the gradients of z = a op b with respect to a and b
// for the output gradient g.
func arithGrads(op arithOp, g, a, b, z float32) (da, db float32) {
	switch op {
	case opAdd:
		return g, g
	case opSub:
		return g, -g
	case opMul:
		return g * b, g * a
	case opDiv:
		return g / b, -g * z / b
	case opMod:
		return g, -g * float32(math.Trunc(float64(a)/float64(b)))
	case opPRelu:
		if a > 0 {
			return g, 0
		}
		return g * b, g * a
	case opPow:
		da = float32(float64(g) * float64(b) * math.Pow(float64(a), float64(b)-1))
		if z != 0 || g != 0 {
			db = float32(float64(g) * float64(z) * math.Log(float64(a)))
		}
		return da, db
	}
	return 0, 0
}

// addScaledBroadcast adds scale·g·other into dst, reducing over the
// dimensions input k is broadcast along; other (input j of the plan) may be
// nil for a factor of 1.
func addScaledBroadcast(p *bcastPlan, k int, dst, g, other []float32, j int, scale float32) {
	sk, n := p.innerStride(k), p.inner
	sj := 0
	if other != nil {
		sj = p.innerStride(j)
	}
	p.rows(func(o int, offs []int) {
		ik, ij := offs[k], 0
		if other != nil {
			ij = offs[j]
		}
		for i, gv := range g[o : o+n] {
			if other != nil {
				gv *= other[ij+i*sj]
			}
			dst[ik+i*sk] += scale * gv
		}
	})
}

// sumKernel is Sum (op ""), Mean, Max and Min: the elementwise sum,
// mean, maximum or minimum of any number of inputs, with broadcasting.
// Max and Min share each element's gradient evenly among the inputs that
// hold the result, as PyTorch does (a NaN operand is the result, as in
// numpy's maximum, and takes the whole gradient).
type sumKernel struct {
	op    string
	dtype tensor.DType
	plan  *bcastPlan
}

func (k *sumKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 {
		return nil, errors.New("needs at least one input")
	}
	shapes := make([][]int, len(in))
	for i, v := range in {
		if !v.Present {
			return nil, fmt.Errorf("input %d is omitted", i)
		}
		if v.DType != in[0].DType {
			return nil, fmt.Errorf("input types differ: %s and %s", in[0].DType, v.DType)
		}
		shapes[i] = v.Shape
	}
	if err := checkArithDType(in[0].DType); err != nil {
		return nil, err
	}
	if k.op == "Mean" && in[0].DType != tensor.Float32 && in[0].DType != tensor.Float64 {
		return nil, fmt.Errorf("Mean of %s: the engine averages float32 and float64 only", in[0].DType)
	}
	k.dtype = in[0].DType
	out, err := broadcastShapes(shapes...)
	if err != nil {
		return nil, err
	}
	k.plan = newBcastPlan(out, shapes...)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

func (k *sumKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	if k.op == "Max" || k.op == "Min" {
		switch {
		case k.dtype == tensor.Float32:
			extremeRows(k.plan, k.op == "Max", out[0].F32, in, f32Of)
		case k.dtype == tensor.Float64:
			extremeRows(k.plan, k.op == "Max", out[0].F64, in, f64Of)
		default:
			extremeRows(k.plan, k.op == "Max", out[0].I64, in, i64Of)
		}
		return nil
	}
	defer func() {
		if k.op != "Mean" {
			return
		}
		n := float64(len(in))
		if k.dtype == tensor.Float32 {
			for i, v := range out[0].F32 {
				out[0].F32[i] = float32(float64(v) / n)
			}
		} else {
			for i, v := range out[0].F64 {
				out[0].F64[i] = v / n
			}
		}
	}()
	switch {
	case k.dtype == tensor.Float32:
		sumRows(k.plan, out[0].F32, in, f32Of)
	case k.dtype == tensor.Float64:
		sumRows(k.plan, out[0].F64, in, f64Of)
	default:
		sumRows(k.plan, out[0].I64, in, i64Of)
		for i, v := range out[0].I64 {
			out[0].I64[i] = k.dtype.Wrap(v)
		}
	}
	return nil
}

func sumRows[T float32 | float64 | int64](p *bcastPlan, z []T, in []*tensor.Tensor, data func(*tensor.Tensor) []T) {
	n := p.inner
	p.rows(func(o int, offs []int) {
		zz := z[o : o+n]
		for k, t := range in {
			x, s, off := data(t), p.innerStride(k), offs[k]
			if k == 0 {
				for i := range zz {
					zz[i] = x[off+i*s]
				}
				continue
			}
			for i := range zz {
				zz[i] += x[off+i*s]
			}
		}
	})
}

// extremeRows sets z to the elementwise maximum (max) or minimum of the
// inputs; NaN operands win.
func extremeRows[T float32 | float64 | int64](p *bcastPlan, max bool, z []T, in []*tensor.Tensor, data func(*tensor.Tensor) []T) {
	n := p.inner
	p.rows(func(o int, offs []int) {
		zz := z[o : o+n]
		for k, t := range in {
			x, s, off := data(t), p.innerStride(k), offs[k]
			for i := range zz {
				v := x[off+i*s]
				if k == 0 || zz[i] == zz[i] && (v != v || (max && v > zz[i]) || (!max && v < zz[i])) {
					zz[i] = v
				}
			}
		}
	})
}

func (k *sumKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || k.dtype != tensor.Float32 {
		return nil
	}
	g := gout[0].F32
	if k.op == "Max" || k.op == "Min" {
		// Shared evenly by the inputs holding the result, as PyTorch's
		// maximum and minimum do (half each for a tie of two); a NaN
		// result's gradient goes to the first NaN operand.
		z, n := out[0].F32, k.plan.inner
		k.plan.rows(func(o int, offs []int) {
			for i := range n {
				r, gv := z[o+i], g[o+i]
				if r != r {
					for j, t := range in {
						at := offs[j] + i*k.plan.innerStride(j)
						if v := t.F32[at]; v != v {
							if gin[j] != nil {
								gin[j].F32[at] += gv
							}
							break
						}
					}
					continue
				}
				holders := 0
				for j, t := range in {
					if t.F32[offs[j]+i*k.plan.innerStride(j)] == r {
						holders++
					}
				}
				if holders > 1 {
					gv /= float32(holders)
				}
				for j, t := range in {
					at := offs[j] + i*k.plan.innerStride(j)
					if t.F32[at] == r && gin[j] != nil {
						gin[j].F32[at] += gv
					}
				}
			}
		})
		return nil
	}
	scale := float32(1)
	if k.op == "Mean" {
		scale = 1 / float32(len(in))
	}
	for i, gi := range gin {
		if gi == nil {
			continue
		}
		if scale == 1 {
			k.plan.reduceSumInto(i, gi.F32, g)
		} else {
			addScaledBroadcast(k.plan, i, gi.F32, g, nil, 0, scale)
		}
	}
	return nil
}

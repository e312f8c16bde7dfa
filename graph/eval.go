package graph

import (
	"errors"
	"math"
	"slices"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// errNotEvaluable means the evaluator does not handle this case (a data
// type or attribute form): the value stays unknown, which is not an error.
var errNotEvaluable = errors.New("graph: not evaluable")

// evaluators compute the contents of a node's outputs from known inputs.
// outs are the shapes and types the shape rule inferred. They hold the
// ops needed for shape computations and simple constant folding.
var evaluators map[string]func(c *opCtx, outs []*value) ([]*tensor.Tensor, error)

func init() {
	evaluators = map[string]func(c *opCtx, outs []*value) ([]*tensor.Tensor, error){
		"Identity": reshapeEval, "Reshape": reshapeEval, "Flatten": reshapeEval,
		"Squeeze": reshapeEval, "Unsqueeze": reshapeEval, "Dropout": dropoutEval,
		"Constant":        constantEval,
		"Shape":           shapeEval,
		"Size":            sizeEval,
		"Gather":          gatherEval,
		"Concat":          concatEval,
		"Slice":           sliceEval,
		"Transpose":       transposeEval,
		"Expand":          expandEval,
		"Cast":            castEval,
		"Add":             binaryEval,
		"Sub":             binaryEval,
		"Mul":             binaryEval,
		"Div":             binaryEval,
		"ConstantOfShape": constantOfShapeEval,
		"Range":           rangeEval,
		"Equal":           equalEval,
		"Mod":             modEval,
		"Not":             notEval,
		"Where":           whereEval,
		"Neg":             unaryEval, "Sqrt": unaryEval, "Reciprocal": unaryEval,
		"Relu": unaryEval, "Abs": unaryEval, "Floor": unaryEval, "Ceil": unaryEval,
	}
}

// storage kinds of tensor.Tensor.
type kind int

const (
	kindNone kind = iota
	kindF32
	kindF64
	kindI64
	kindStr
)

func kindOf(dt tensor.DType) kind {
	switch {
	case dt == tensor.Float32:
		return kindF32
	case dt == tensor.Float64:
		return kindF64
	case dt.IsInteger():
		return kindI64
	case dt == tensor.String:
		return kindStr
	}
	return kindNone
}

// alloc makes a tensor of dt and shape with the right storage.
func alloc(dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	n := tensor.Numel(shape)
	t := &tensor.Tensor{DType: dt, Shape: slices.Clone(shape)}
	if t.Shape == nil {
		t.Shape = []int{}
	}
	switch kindOf(dt) {
	case kindF32:
		t.F32 = make([]float32, n)
	case kindF64:
		t.F64 = make([]float64, n)
	case kindI64:
		t.I64 = make([]int64, n)
	case kindStr:
		t.Str = make([][]byte, n)
	default:
		return nil, errNotEvaluable
	}
	return t, nil
}

// hasData reports whether t's storage matches its type and shape.
func hasData(t *tensor.Tensor) bool {
	n := t.Len()
	switch kindOf(t.DType) {
	case kindF32:
		return len(t.F32) == n
	case kindF64:
		return len(t.F64) == n
	case kindI64:
		return len(t.I64) == n
	case kindStr:
		return len(t.Str) == n
	}
	return false
}

// remap builds out[i] = src(i) element by element; src returns the source
// tensor (of out's kind) and index.
func remap(dt tensor.DType, shape []int, src func(i int) (*tensor.Tensor, int)) (*tensor.Tensor, error) {
	out, err := alloc(dt, shape)
	if err != nil {
		return nil, err
	}
	n := out.Len()
	switch kindOf(dt) {
	case kindF32:
		for i := range n {
			t, j := src(i)
			out.F32[i] = t.F32[j]
		}
	case kindF64:
		for i := range n {
			t, j := src(i)
			out.F64[i] = t.F64[j]
		}
	case kindI64:
		for i := range n {
			t, j := src(i)
			out.I64[i] = t.I64[j]
		}
	case kindStr:
		for i := range n {
			t, j := src(i)
			out.Str[i] = t.Str[j]
		}
	}
	return out, nil
}

func stridesOf(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// broadcastIndex maps a flat index of outShape to the flat index of an
// input of shape in broadcast to it.
func broadcastIndex(outShape, in []int) func(int) int {
	off := len(outShape) - len(in)
	inStr := stridesOf(in)
	outStr := stridesOf(outShape)
	return func(i int) int {
		j := 0
		for a := range in {
			c := (i / outStr[a+off]) % outShape[a+off]
			if in[a] != 1 {
				j += c * inStr[a]
			}
		}
		return j
	}
}

func inputsOK(c *opCtx) error {
	for _, v := range c.ins {
		if v != nil && v.val != nil && !hasData(v.val) {
			return errNotEvaluable
		}
	}
	return nil
}

func reshapeEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	t := c.ins[0].val.Clone()
	t.Shape = slices.Clone(outs[0].shape)
	return []*tensor.Tensor{t}, nil
}

func dropoutEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if len(c.n.Outputs) > 1 && c.n.Outputs[1] != "" || !dropoutIsInference(c.n, c.inf) {
		return nil, errNotEvaluable
	}
	return reshapeEval(c, outs)
}

func constantEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	t, err := constantValue(c.n)
	if err != nil {
		return nil, err
	}
	if !hasData(t) {
		return nil, errNotEvaluable
	}
	return []*tensor.Tensor{t}, nil
}

func shapeEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	s := c.ins[0].shape
	a, b := shapeRange(c, len(s))
	v := make([]int64, 0, b-a)
	for _, d := range s[a:b] {
		v = append(v, int64(d))
	}
	return []*tensor.Tensor{{DType: tensor.Int64, Shape: []int{len(v)}, I64: v}}, nil
}

func sizeEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{{DType: tensor.Int64, Shape: []int{}, I64: []int64{int64(tensor.Numel(c.ins[0].shape))}}}, nil
}

func gatherEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	x, idx := c.ins[0].val, c.ins[1].val
	if kindOf(idx.DType) != kindI64 {
		return nil, errNotEvaluable
	}
	axis, _ := normAxis(c, c.n.AttrInt("axis", 0), len(x.Shape))
	d := x.Shape[axis]
	inner := tensor.Numel(x.Shape[axis+1:])
	nIdx := len(idx.I64)
	for _, k := range idx.I64 {
		if k < -int64(d) || k >= int64(d) {
			return nil, c.errf("index %d is out of range for dimension %d of size %d", k, axis, d)
		}
	}
	return one(remap(x.DType, outs[0].shape, func(i int) (*tensor.Tensor, int) {
		in := i % inner
		rest := i / inner
		k := idx.I64[rest%nIdx]
		if k < 0 {
			k += int64(d)
		}
		outer := rest / nIdx
		return x, (outer*d+int(k))*inner + in
	}))
}

func one(t *tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}

func concatEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	shape := outs[0].shape
	axis, _ := normAxis(c, c.n.AttrInt("axis", 0), len(shape))
	inner := tensor.Numel(shape[axis+1:])
	// owner[k] and offset[k]: which input holds position k along the axis.
	owner := make([]int, shape[axis])
	offset := make([]int, shape[axis])
	k := 0
	for i, v := range c.ins {
		if kindOf(v.val.DType) != kindOf(c.ins[0].val.DType) {
			return nil, errNotEvaluable
		}
		for j := range v.shape[axis] {
			owner[k], offset[k] = i, j
			k++
		}
	}
	return one(remap(c.ins[0].val.DType, shape, func(i int) (*tensor.Tensor, int) {
		in := i % inner
		rest := i / inner
		a := rest % shape[axis]
		outer := rest / shape[axis]
		v := c.ins[owner[a]]
		return v.val, (outer*v.shape[axis]+offset[a])*inner + in
	}))
}

func sliceEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	x := c.ins[0].val
	start, step, count, err := sliceParams(c, x.Shape)
	if err != nil {
		return nil, err
	}
	inStr := stridesOf(x.Shape)
	outStr := stridesOf(count)
	return one(remap(x.DType, count, func(i int) (*tensor.Tensor, int) {
		j := 0
		for a := range count {
			k := (i / outStr[a]) % count[a]
			j += (start[a] + k*step[a]) * inStr[a]
		}
		return x, j
	}))
}

func transposeEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	x := c.ins[0].val
	perm, err := transposePerm(c, len(x.Shape))
	if err != nil {
		return nil, err
	}
	inStr := stridesOf(x.Shape)
	shape := outs[0].shape
	outStr := stridesOf(shape)
	return one(remap(x.DType, shape, func(i int) (*tensor.Tensor, int) {
		j := 0
		for a := range shape {
			j += ((i / outStr[a]) % shape[a]) * inStr[perm[a]]
		}
		return x, j
	}))
}

func expandEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	x := c.ins[0].val
	idx := broadcastIndex(outs[0].shape, x.Shape)
	return one(remap(x.DType, outs[0].shape, func(i int) (*tensor.Tensor, int) { return x, idx(i) }))
}

func castEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	x := c.ins[0].val
	dt := outs[0].dtype
	out, err := alloc(dt, x.Shape)
	if err != nil {
		return nil, err
	}
	n := x.Len()
	get := func(i int) (float64, int64, bool) { // float value, int value, is int
		switch kindOf(x.DType) {
		case kindF32:
			return float64(x.F32[i]), 0, false
		case kindF64:
			return x.F64[i], 0, false
		default:
			return 0, x.I64[i], true
		}
	}
	if kindOf(x.DType) == kindStr || kindOf(dt) == kindStr {
		return nil, errNotEvaluable
	}
	for i := range n {
		f, iv, isInt := get(i)
		switch kindOf(dt) {
		case kindF32:
			if isInt {
				f = float64(iv)
			}
			out.F32[i] = float32(f)
		case kindF64:
			if isInt {
				f = float64(iv)
			}
			out.F64[i] = f
		case kindI64:
			if !isInt {
				if math.IsNaN(f) || math.IsInf(f, 0) {
					return nil, errNotEvaluable
				}
				if dt == tensor.Bool {
					if f != 0 {
						iv = 1
					} else {
						iv = 0
					}
				} else {
					iv = int64(f) // truncation toward zero
				}
			}
			out.I64[i] = dt.Wrap(iv)
		}
	}
	return []*tensor.Tensor{out}, nil
}

func binaryEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	a, b := c.ins[0].val, c.ins[1].val
	if a.DType != b.DType || c.opset() < 7 && c.n.AttrInt("broadcast", 0) == 1 {
		return nil, errNotEvaluable
	}
	shape := outs[0].shape
	ia, ib := broadcastIndex(shape, a.Shape), broadcastIndex(shape, b.Shape)
	out, err := alloc(a.DType, shape)
	if err != nil {
		return nil, err
	}
	op := c.n.OpType
	fop := func(x, y float64) float64 {
		switch op {
		case "Add":
			return x + y
		case "Sub":
			return x - y
		case "Mul":
			return x * y
		}
		return x / y
	}
	n := out.Len()
	switch kindOf(a.DType) {
	case kindF32:
		// float64 then one rounding: the correctly rounded float32 result.
		for i := range n {
			out.F32[i] = float32(fop(float64(a.F32[ia(i)]), float64(b.F32[ib(i)])))
		}
	case kindF64:
		for i := range n {
			out.F64[i] = fop(a.F64[ia(i)], b.F64[ib(i)])
		}
	case kindI64:
		for i := range n {
			x, y := a.I64[ia(i)], b.I64[ib(i)]
			var r int64
			switch op {
			case "Add":
				r = x + y
			case "Sub":
				r = x - y
			case "Mul":
				r = x * y
			default:
				if y == 0 {
					return nil, c.errf("integer division by zero")
				}
				r = x / y // truncation, as onnxruntime does
			}
			out.I64[i] = a.DType.Wrap(r)
		}
	default:
		return nil, errNotEvaluable
	}
	return []*tensor.Tensor{out}, nil
}

func unaryEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	x := c.ins[0].val
	f := map[string]func(float64) float64{
		"Neg":        func(v float64) float64 { return -v },
		"Sqrt":       math.Sqrt,
		"Reciprocal": func(v float64) float64 { return 1 / v },
		"Relu":       func(v float64) float64 { return max(v, 0) },
		"Abs":        math.Abs,
		"Floor":      math.Floor,
		"Ceil":       math.Ceil,
	}[c.n.OpType]
	out := x.Clone()
	switch kindOf(x.DType) {
	case kindF32:
		for i, v := range x.F32 {
			out.F32[i] = float32(f(float64(v)))
		}
	case kindF64:
		for i, v := range x.F64 {
			out.F64[i] = f(v)
		}
	case kindI64:
		switch c.n.OpType {
		case "Neg", "Abs", "Relu", "Floor", "Ceil":
			for i, v := range x.I64 {
				out.I64[i] = x.DType.Wrap(int64(f(float64(v))))
			}
		default:
			return nil, errNotEvaluable
		}
	default:
		return nil, errNotEvaluable
	}
	return []*tensor.Tensor{out}, nil
}

func constantOfShapeEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	out, err := alloc(outs[0].dtype, outs[0].shape)
	if err != nil {
		return nil, err
	}
	a := c.n.Attr("value")
	if a == nil || a.T == nil || a.T.Value == nil {
		return []*tensor.Tensor{out}, nil // zeros of float32
	}
	v := a.T.Value
	if v.Len() != 1 || !hasData(v) {
		return nil, c.errf("value must hold exactly one element")
	}
	switch kindOf(v.DType) {
	case kindF32:
		for i := range out.F32 {
			out.F32[i] = v.F32[0]
		}
	case kindF64:
		for i := range out.F64 {
			out.F64[i] = v.F64[0]
		}
	case kindI64:
		for i := range out.I64 {
			out.I64[i] = v.I64[0]
		}
	default:
		return nil, errNotEvaluable
	}
	return []*tensor.Tensor{out}, nil
}

func scalarF(t *tensor.Tensor) float64 {
	switch {
	case len(t.F32) > 0:
		return float64(t.F32[0])
	case len(t.F64) > 0:
		return t.F64[0]
	case len(t.I64) > 0:
		return float64(t.I64[0])
	}
	return 0
}

func rangeEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	out, err := alloc(outs[0].dtype, outs[0].shape)
	if err != nil {
		return nil, err
	}
	s, d := c.ins[0].val, c.ins[2].val
	switch kindOf(out.DType) {
	case kindF32:
		for i := range out.F32 {
			out.F32[i] = s.F32[0] + float32(i)*d.F32[0]
		}
	case kindF64:
		for i := range out.F64 {
			out.F64[i] = s.F64[0] + float64(i)*d.F64[0]
		}
	case kindI64:
		for i := range out.I64 {
			out.I64[i] = s.I64[0] + int64(i)*d.I64[0]
		}
	default:
		return nil, errNotEvaluable
	}
	return []*tensor.Tensor{out}, nil
}

// equalEval is Equal (numpy broadcasting) on known inputs of one type.
func equalEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	a, b := c.ins[0].val, c.ins[1].val
	if a.DType != b.DType {
		return nil, errNotEvaluable
	}
	shape := outs[0].shape
	ia, ib := broadcastIndex(shape, a.Shape), broadcastIndex(shape, b.Shape)
	out, err := alloc(tensor.Bool, shape)
	if err != nil {
		return nil, err
	}
	for i := range out.Len() {
		var eq bool
		switch kindOf(a.DType) {
		case kindF32:
			eq = a.F32[ia(i)] == b.F32[ib(i)]
		case kindF64:
			eq = a.F64[ia(i)] == b.F64[ib(i)]
		case kindI64:
			eq = a.I64[ia(i)] == b.I64[ib(i)]
		default:
			return nil, errNotEvaluable
		}
		if eq {
			out.I64[i] = 1
		}
	}
	return []*tensor.Tensor{out}, nil
}

// whereEval is Where (numpy broadcasting of the condition and both
// branches) on known inputs.
func whereEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	cond, x, y := c.ins[0].val, c.ins[1].val, c.ins[2].val
	if cond.DType != tensor.Bool || x.DType != y.DType {
		return nil, errNotEvaluable
	}
	shape := outs[0].shape
	ic, ix, iy := broadcastIndex(shape, cond.Shape), broadcastIndex(shape, x.Shape), broadcastIndex(shape, y.Shape)
	out, err := alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	for i := range out.Len() {
		src, j := y, iy(i)
		if cond.I64[ic(i)] != 0 {
			src, j = x, ix(i)
		}
		switch kindOf(x.DType) {
		case kindF32:
			out.F32[i] = src.F32[j]
		case kindF64:
			out.F64[i] = src.F64[j]
		case kindI64:
			out.I64[i] = src.I64[j]
		default:
			return nil, errNotEvaluable
		}
	}
	return []*tensor.Tensor{out}, nil
}

// modEval is Mod on known inputs: for integers the sign of the divisor
// (Python's %) unless fmod=1, which takes the dividend's (C's fmod), the
// only form floats allow.
func modEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	a, b := c.ins[0].val, c.ins[1].val
	if a.DType != b.DType {
		return nil, errNotEvaluable
	}
	fmod := c.n.AttrInt("fmod", 0) == 1
	shape := outs[0].shape
	ia, ib := broadcastIndex(shape, a.Shape), broadcastIndex(shape, b.Shape)
	out, err := alloc(a.DType, shape)
	if err != nil {
		return nil, err
	}
	for i := range out.Len() {
		switch kindOf(a.DType) {
		case kindF32:
			out.F32[i] = float32(math.Mod(float64(a.F32[ia(i)]), float64(b.F32[ib(i)])))
		case kindF64:
			out.F64[i] = math.Mod(a.F64[ia(i)], b.F64[ib(i)])
		case kindI64:
			x, y := a.I64[ia(i)], b.I64[ib(i)]
			if y == 0 {
				return nil, c.errf("integer modulo by zero")
			}
			r := x % y
			if !fmod && r != 0 && (r < 0) != (y < 0) {
				r += y
			}
			out.I64[i] = r
		default:
			return nil, errNotEvaluable
		}
	}
	return []*tensor.Tensor{out}, nil
}

// notEval is Not on a known bool tensor.
func notEval(c *opCtx, outs []*value) ([]*tensor.Tensor, error) {
	if err := inputsOK(c); err != nil {
		return nil, err
	}
	x := c.ins[0].val
	if x.DType != tensor.Bool {
		return nil, errNotEvaluable
	}
	out := x.Clone()
	for i, v := range x.I64 {
		out.I64[i] = 1 - min(v, 1)
	}
	return []*tensor.Tensor{out}, nil
}

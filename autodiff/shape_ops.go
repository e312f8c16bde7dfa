package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Ops that move or relabel data without arithmetic: Identity, Reshape,
// Flatten, Squeeze, Unsqueeze (all copies into a new shape), Transpose,
// Constant, ConstantOfShape, Shape, Gather, and Cast (which PyTorch
// exports put in shape computations). Gradients flow through the
// float32 data input of each; integer operands (shapes, axes, indices) get
// none.

func init() {
	register("Identity", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		return &reshapeKernel{}, nil
	})
	register("Reshape", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		k := &reshapeKernel{reshape: true, allowZero: n.AttrInt("allowzero", 0) != 0}
		if opset < 5 {
			a := n.Attr("shape")
			if a == nil {
				return nil, errors.New("Reshape before opset 5 needs the shape attribute")
			}
			k.attrShape = a.Ints
		}
		return k, nil
	})
	register("Flatten", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		return &reshapeKernel{flatten: true, axis: n.AttrInt("axis", 1)}, nil
	})
	register("Squeeze", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		k := &reshapeKernel{squeeze: true}
		if opset < 13 {
			k.axes, k.hasAxes = n.AttrInts("axes", nil), n.Attr("axes") != nil
		} else {
			k.axesInput = true
		}
		return k, nil
	})
	register("Unsqueeze", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		k := &reshapeKernel{unsqueeze: true}
		if opset < 13 {
			if n.Attr("axes") == nil {
				return nil, errors.New("Unsqueeze before opset 13 needs the axes attribute")
			}
			k.axes, k.hasAxes = n.AttrInts("axes", nil), true
		} else {
			k.axesInput = true
		}
		return k, nil
	})
	register("Transpose", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		return &transposeKernel{perm: n.AttrInts("perm", nil)}, nil
	})
	register("Constant", newConstant)
	register("ConstantOfShape", newConstantOfShape)
	register("Shape", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		k := &shapeKernel{start: 0, end: math.MaxInt64}
		if opset >= 15 {
			k.start = n.AttrInt("start", 0)
			k.end = n.AttrInt("end", math.MaxInt64)
		}
		return k, nil
	})
	register("Gather", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		return &gatherKernel{axis: n.AttrInt("axis", 0)}, nil
	})
	register("Cast", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		a := n.Attr("to")
		if a == nil {
			return nil, errors.New("Cast needs the to attribute")
		}
		to := tensor.DType(a.I)
		if err := checkDataDType(to); err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
		return &castKernel{to: to}, nil
	})
}

// latestOpset is the newest ai.onnx opset the kernels know.
const latestOpset = 25

// opsetOrLatest reads a model without an ai.onnx opset import (opset 0)
// as the latest opset, so every kernel picks the same (current) forms.
func opsetOrLatest(opset int64) int64 {
	if opset <= 0 {
		return latestOpset
	}
	return opset
}

// maxOutputElements bounds the outputs whose size a model states directly
// (ConstantOfShape's shape, Pad's pads), so that an absurd value is an
// error instead of an allocation that kills the process: 2^31 elements
// is 8 GiB of float32.
const maxOutputElements = 1 << 31

// checkOutputSize returns an error when shape has more than
// maxOutputElements elements (computed without overflow).
func checkOutputSize(shape []int) error {
	n := 1
	for _, d := range shape {
		if d == 0 {
			return nil
		}
	}
	for _, d := range shape {
		if d > maxOutputElements/n {
			return fmt.Errorf("output shape %v has more than %d elements; the model asks for an absurd tensor", shape, maxOutputElements)
		}
		n *= d
	}
	return nil
}

// axisIndex resolves a possibly negative axis against rank (valid range
// [-rank, rank-1]).
func axisIndex(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// constInts returns the values of an integer operand that must be known at
// compile time (a shape, axes, pads, slice bounds): the engine fixes every
// shape when it compiles.
func constInts(v Value, what string) ([]int64, error) {
	if !v.Present {
		return nil, fmt.Errorf("%s is missing", what)
	}
	if !v.DType.IsInteger() {
		return nil, fmt.Errorf("%s has element type %s, want an integer type", what, v.DType)
	}
	if v.Const == nil {
		return nil, fmt.Errorf("%s must be known when the model is compiled (an initializer, a Constant, or computed from shapes), but it depends on the graph inputs' values", what)
	}
	return v.Const.I64, nil
}

// checkDataDType accepts the element types the data-movement ops carry.
func checkDataDType(dt tensor.DType) error {
	if dt == tensor.Float32 || dt == tensor.Float64 || dt.IsInteger() {
		return nil
	}
	return fmt.Errorf("element type %s is not supported (float32, float64 and integer types are)", dt)
}

// copyData copies src's elements into dst; both have the same type and
// number of elements.
func copyData(dst, src *tensor.Tensor) {
	switch {
	case src.DType == tensor.Float32:
		copy(dst.F32, src.F32)
	case src.DType == tensor.Float64:
		copy(dst.F64, src.F64)
	default:
		copy(dst.I64, src.I64)
	}
}

// addInto adds g into dst elementwise (same length): the backward of a
// copy.
func addInto(dst, g []float32) {
	for i, v := range g {
		dst[i] += v
	}
}

// addOrCopy adds g into dst, or with assign (a fresh gradient buffer,
// RunContext.Fresh) copies it.
func addOrCopy(dst, g []float32, assign bool) {
	if assign {
		copy(dst, g)
		return
	}
	addInto(dst, g)
}

// reshapeKernel is every op whose output is its first input's elements in
// a new shape: Identity, Reshape, Flatten, Squeeze and Unsqueeze.
type reshapeKernel struct {
	reshape, flatten, squeeze, unsqueeze bool

	allowZero bool    // Reshape
	attrShape []int64 // Reshape before opset 5
	axis      int64   // Flatten
	axes      []int64 // Squeeze/Unsqueeze before opset 13
	hasAxes   bool
	axesInput bool // Squeeze/Unsqueeze from opset 13: axes is input 1
}

func (k *reshapeKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	x := in[0].Shape
	var out []int
	var err error
	switch {
	case k.reshape:
		shape := k.attrShape
		if shape == nil {
			if len(in) < 2 {
				return nil, errors.New("the shape input is missing")
			}
			if shape, err = constInts(in[1], "the shape input"); err != nil {
				return nil, err
			}
		}
		out, err = reshapeTo(x, shape, k.allowZero)
	case k.flatten:
		var axis int
		if k.axis < -int64(len(x)) || k.axis > int64(len(x)) {
			return nil, fmt.Errorf("axis %d is out of range for rank %d", k.axis, len(x))
		}
		axis = int(k.axis)
		if axis < 0 {
			axis += len(x)
		}
		out = []int{tensor.Numel(x[:axis]), tensor.Numel(x[axis:])}
	case k.squeeze:
		axes, has := k.axes, k.hasAxes
		if k.axesInput && len(in) > 1 && in[1].Present {
			if axes, err = constInts(in[1], "the axes input"); err != nil {
				return nil, err
			}
			has = true
		}
		out, err = squeezeShape(x, axes, has)
	case k.unsqueeze:
		axes := k.axes
		if k.axesInput {
			if len(in) < 2 {
				return nil, errors.New("the axes input is missing")
			}
			if axes, err = constInts(in[1], "the axes input"); err != nil {
				return nil, err
			}
		}
		out, err = unsqueezeShape(x, axes)
	default: // Identity
		out = x
	}
	if err != nil {
		return nil, err
	}
	return []Output{{DType: in[0].DType, Shape: out}}, nil
}

// reshapeTo applies ONNX Reshape's target shape to x: 0 copies x's
// dimension (unless allowZero, where it is a real 0) and one -1 is
// inferred.
func reshapeTo(x []int, shape []int64, allowZero bool) ([]int, error) {
	out := make([]int, len(shape))
	infer := -1
	known := 1
	hasZero := false
	for i, d := range shape {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("target shape %v has more than one -1", shape)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(x) {
				return nil, fmt.Errorf("target shape %v: 0 at index %d copies a dimension the input %v does not have", shape, i, x)
			}
			out[i] = x[i]
		case d < 0:
			return nil, fmt.Errorf("target shape %v has a negative dimension %d", shape, d)
		default:
			if d == 0 {
				hasZero = true
			}
			out[i] = int(d)
		}
		known *= out[i]
	}
	total := tensor.Numel(x)
	if infer >= 0 {
		if hasZero {
			return nil, fmt.Errorf("target shape %v has both -1 and 0 with allowzero=1", shape)
		}
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("cannot reshape input %v (%d elements) to %v: %d is not a multiple of %d", x, total, shape, total, known)
		}
		out[infer] = total / known
		known *= out[infer]
	}
	if known != total {
		return nil, fmt.Errorf("cannot reshape input %v (%d elements) to %v (%d elements)", x, total, out, known)
	}
	return out, nil
}

func squeezeShape(x []int, axes []int64, has bool) ([]int, error) {
	drop := make([]bool, len(x))
	if !has {
		for i, d := range x {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		i, err := axisIndex(a, len(x))
		if err != nil {
			return nil, err
		}
		if x[i] != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of shape %v: its size is %d, not 1", a, x, x[i])
		}
		drop[i] = true
	}
	out := []int{}
	for i, d := range x {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out, nil
}

func unsqueezeShape(x []int, axes []int64) ([]int, error) {
	rank := len(x) + len(axes)
	ins := make([]bool, rank)
	for _, a := range axes {
		i, err := axisIndex(a, rank)
		if err != nil {
			return nil, err
		}
		if ins[i] {
			return nil, fmt.Errorf("axes %v name output axis %d twice", axes, i)
		}
		ins[i] = true
	}
	out := make([]int, 0, rank)
	j := 0
	for i := range rank {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, x[j])
			j++
		}
	}
	return out, nil
}

func (k *reshapeKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	copyData(out[0], in[0])
	return nil
}

func (k *reshapeKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] != nil && gout[0] != nil {
		addInto(gin[0].F32, gout[0].F32)
	}
	return nil
}

// transposeKernel is Transpose.
type transposeKernel struct {
	perm []int64
	fwd  *stridedShape // the input read in output order
}

func (k *transposeKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	x := in[0].Shape
	perm := k.perm
	if perm == nil {
		for i := len(x) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != len(x) {
		return nil, fmt.Errorf("perm %v has %d entries, the input has rank %d", perm, len(perm), len(x))
	}
	seen := make([]bool, len(x))
	xs := contiguousStrides(x)
	out := make([]int, len(x))
	strides := make([]int, len(x))
	for i, p := range perm {
		if p < 0 || p >= int64(len(x)) || seen[p] {
			return nil, fmt.Errorf("perm %v is not a permutation of 0..%d", perm, len(x)-1)
		}
		seen[p] = true
		out[i] = x[p]
		strides[i] = xs[p]
	}
	k.fwd = newStridedShape(out, strides, 0)
	return []Output{{DType: in[0].DType, Shape: out}}, nil
}

func (k *transposeKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	switch x := in[0]; {
	case x.DType == tensor.Float32:
		stridedCopy(k.fwd, out[0].F32, x.F32)
	case x.DType == tensor.Float64:
		stridedCopy(k.fwd, out[0].F64, x.F64)
	default:
		stridedCopy(k.fwd, out[0].I64, x.I64)
	}
	return nil
}

func (k *transposeKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] != nil && gout[0] != nil {
		stridedAddBack(k.fwd, gin[0].F32, gout[0].F32)
	}
	return nil
}

// constantKernel is Constant: its output is an attribute's value.
type constantKernel struct {
	NonDifferentiable
	value *tensor.Tensor
}

func newConstant(n *graph.Node, opset int64) (Kernel, error) {
	var vals []*tensor.Tensor
	var names []string
	for _, a := range n.Attrs {
		var v *tensor.Tensor
		switch a.Name {
		case "value":
			if a.T == nil || a.T.Value == nil {
				return nil, errors.New("attribute value holds no tensor")
			}
			v = a.T.Value
		case "value_float":
			v = &tensor.Tensor{DType: tensor.Float32, Shape: []int{}, F32: []float32{a.F}}
		case "value_floats":
			v = tensor.FromFloat32(append([]float32(nil), a.Floats...), len(a.Floats))
		case "value_int":
			v = &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{a.I}}
		case "value_ints":
			v = tensor.FromInt64(append([]int64(nil), a.Ints...), len(a.Ints))
		case "sparse_value", "value_string", "value_strings":
			return nil, fmt.Errorf("attribute %s is not supported (the engine computes on numeric tensors only)", a.Name)
		default:
			continue
		}
		vals = append(vals, v)
		names = append(names, a.Name)
	}
	if len(vals) != 1 {
		return nil, fmt.Errorf("Constant needs exactly one value attribute, got %d %v", len(vals), names)
	}
	if err := checkDataDType(vals[0].DType); err != nil {
		return nil, err
	}
	return &constantKernel{value: vals[0]}, nil
}

func (k *constantKernel) Setup(in []Value) ([]Output, error) {
	return []Output{{DType: k.value.DType, Shape: k.value.Shape}}, nil
}

func (k *constantKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	copyData(out[0], k.value)
	return nil
}

// constantOfShapeKernel is ConstantOfShape: a tensor of the shape given by
// its (compile-time) input, filled with one value.
type constantOfShapeKernel struct {
	NonDifferentiable
	value *tensor.Tensor // one element
}

func newConstantOfShape(n *graph.Node, opset int64) (Kernel, error) {
	k := &constantOfShapeKernel{value: &tensor.Tensor{DType: tensor.Float32, Shape: []int{1}, F32: []float32{0}}}
	if a := n.Attr("value"); a != nil {
		if a.T == nil || a.T.Value == nil || a.T.Value.Len() != 1 {
			return nil, errors.New("attribute value must be a tensor of one element")
		}
		k.value = a.T.Value
	}
	if err := checkDataDType(k.value.DType); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *constantOfShapeKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("ConstantOfShape takes 1 input, got %d", len(in))
	}
	dims, err := constInts(in[0], "the shape input")
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > maxOutputElements {
			return nil, fmt.Errorf("shape %v has a negative or absurd dimension", dims)
		}
		shape[i] = int(d)
	}
	if err := checkOutputSize(shape); err != nil {
		return nil, err
	}
	return []Output{{DType: k.value.DType, Shape: shape}}, nil
}

func (k *constantOfShapeKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	switch o := out[0]; {
	case o.DType == tensor.Float32:
		for i := range o.F32 {
			o.F32[i] = k.value.F32[0]
		}
	case o.DType == tensor.Float64:
		for i := range o.F64 {
			o.F64[i] = k.value.F64[0]
		}
	default:
		for i := range o.I64 {
			o.I64[i] = k.value.I64[0]
		}
	}
	return nil
}

// shapeKernel is Shape (with start/end from opset 15). Its output depends
// only on its input's shape, so it folds at compile time.
type shapeKernel struct {
	NonDifferentiable
	start, end int64
	lo, hi     int
}

func (*shapeKernel) shapeOnly() {}

func (k *shapeKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	r := int64(len(in[0].Shape))
	clamp := func(v int64) int {
		if v < 0 {
			v += r
		}
		return int(min(max(v, 0), r))
	}
	k.lo, k.hi = clamp(k.start), clamp(k.end)
	n := max(k.hi-k.lo, 0)
	return []Output{{DType: tensor.Int64, Shape: []int{n}}}, nil
}

func (k *shapeKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	for i := range out[0].I64 {
		out[0].I64[i] = int64(in[0].Shape[k.lo+i])
	}
	return nil
}

// gatherKernel is Gather: slices of data along axis, picked by indices.
type gatherKernel struct {
	axis int64

	ax                int
	outer, dim, inner int // data viewed as [outer, dim, inner]
	dtype             tensor.DType
	dataShape         []int
}

func (k *gatherKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("Gather takes 2 inputs (data, indices)")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	if in[1].DType != tensor.Int64 && in[1].DType != tensor.Int32 {
		return nil, fmt.Errorf("indices have element type %s, want int32 or int64", in[1].DType)
	}
	x := in[0].Shape
	if len(x) == 0 {
		return nil, errors.New("data must have rank >= 1")
	}
	ax, err := axisIndex(k.axis, len(x))
	if err != nil {
		return nil, err
	}
	k.ax, k.dtype = ax, in[0].DType
	k.outer, k.dim, k.inner = tensor.Numel(x[:ax]), x[ax], tensor.Numel(x[ax+1:])
	k.dataShape = x
	if c := in[1].Const; c != nil {
		if err := k.checkIndices(c.I64); err != nil {
			return nil, err
		}
	}
	out := append(append(append([]int{}, x[:ax]...), in[1].Shape...), x[ax+1:]...)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

func (k *gatherKernel) checkIndices(idx []int64) error {
	for i, v := range idx {
		if v < -int64(k.dim) || v >= int64(k.dim) {
			return fmt.Errorf("index %d (at flat position %d of the indices) is out of range for axis %d of size %d (data shape %v)", v, i, k.ax, k.dim, k.dataShape)
		}
	}
	return nil
}

func (k *gatherKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	idx := in[1].I64
	if err := k.checkIndices(idx); err != nil {
		return err
	}
	switch {
	case k.dtype == tensor.Float32:
		gatherRows(k, out[0].F32, in[0].F32, idx)
	case k.dtype == tensor.Float64:
		gatherRows(k, out[0].F64, in[0].F64, idx)
	default:
		gatherRows(k, out[0].I64, in[0].I64, idx)
	}
	return nil
}

func gatherRows[T any](k *gatherKernel, dst, src []T, idx []int64) {
	n := k.inner
	for o := range k.outer {
		for j, v := range idx {
			if v < 0 {
				v += int64(k.dim)
			}
			s := (o*k.dim + int(v)) * n
			d := (o*len(idx) + j) * n
			copy(dst[d:d+n], src[s:s+n])
		}
	}
}

func (k *gatherKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] == nil || gout[0] == nil {
		return nil
	}
	idx, g, dst, n := in[1].I64, gout[0].F32, gin[0].F32, k.inner
	for o := range k.outer {
		for j, v := range idx {
			if v < 0 {
				v += int64(k.dim)
			}
			s := (o*k.dim + int(v)) * n
			d := (o*len(idx) + j) * n
			addInto(dst[s:s+n], g[d:d+n])
		}
	}
	return nil
}

// castKernel is Cast between float32, float64 and the integer and boolean
// types. Float to integer truncates toward zero and integers wrap to the
// target type, as numpy's astype does; anything to bool is "!= 0". Only a
// float32 to float32 cast passes a gradient.
type castKernel struct {
	to, from tensor.DType
}

func (k *castKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("Cast takes 1 input")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	k.from = in[0].DType
	return []Output{{DType: k.to, Shape: in[0].Shape}}, nil
}

func (k *castKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0], out[0]
	n := x.Len()
	for i := range n {
		switch {
		case k.to == tensor.Float32:
			y.F32[i] = float32(castGet(x, i))
		case k.to == tensor.Float64:
			y.F64[i] = castGet(x, i)
		case k.from.IsInteger():
			y.I64[i] = k.to.Wrap(x.I64[i])
		default:
			v := castGet(x, i)
			if k.to == tensor.Bool {
				y.I64[i] = 0
				if v != 0 {
					y.I64[i] = 1
				}
				continue
			}
			y.I64[i] = k.to.Wrap(int64(v))
		}
	}
	return nil
}

// castGet reads element i of x as a float64.
func castGet(x *tensor.Tensor, i int) float64 {
	switch {
	case x.DType == tensor.Float32:
		return float64(x.F32[i])
	case x.DType == tensor.Float64:
		return x.F64[i]
	case x.DType == tensor.Uint64:
		return float64(uint64(x.I64[i]))
	}
	return float64(x.I64[i])
}

func (k *castKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if k.from == tensor.Float32 && k.to == tensor.Float32 && gin[0] != nil && gout[0] != nil {
		addInto(gin[0].F32, gout[0].F32)
	}
	return nil
}

package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Concat, Split and Slice: ops that cut or join tensors along axes.

func init() {
	register("Concat", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		def := int64(1) // opsets 1-3 default the axis to 1
		if opset >= 4 {
			if n.Attr("axis") == nil {
				return nil, errors.New("Concat needs the axis attribute")
			}
		}
		return &concatKernel{axis: n.AttrInt("axis", def)}, nil
	})
	register("Split", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		k := &splitKernel{axis: n.AttrInt("axis", 0), nOut: len(n.Outputs)}
		if opset < 13 {
			k.split = n.AttrInts("split", nil)
		} else {
			k.splitInput = true
		}
		if opset >= 18 {
			if a := n.Attr("num_outputs"); a != nil {
				k.numOutputs = a.I
				if a.I != int64(len(n.Outputs)) {
					return nil, fmt.Errorf("num_outputs is %d but the node has %d outputs", a.I, len(n.Outputs))
				}
			}
		}
		if k.nOut == 0 {
			return nil, errors.New("Split has no outputs")
		}
		return k, nil
	})
	register("Slice", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		k := &sliceKernel{}
		if opset < 10 {
			k.attrs = true
			if n.Attr("starts") == nil || n.Attr("ends") == nil {
				return nil, errors.New("Slice before opset 10 needs the starts and ends attributes")
			}
			k.starts, k.ends = n.AttrInts("starts", nil), n.AttrInts("ends", nil)
			k.axes = n.AttrInts("axes", nil)
		}
		return k, nil
	})
}

// concatKernel is Concat.
type concatKernel struct {
	axis         int64
	dtype        tensor.DType
	outer, inner int
	dims         []int // each input's size along the axis
	total        int
}

func (k *concatKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 {
		return nil, errors.New("Concat needs at least one input")
	}
	first := in[0]
	for i, v := range in {
		if !v.Present {
			return nil, fmt.Errorf("input %d is omitted", i)
		}
		if v.DType != first.DType {
			return nil, fmt.Errorf("input types differ: %s and %s", first.DType, v.DType)
		}
	}
	if err := checkDataDType(first.DType); err != nil {
		return nil, err
	}
	rank := len(first.Shape)
	ax, err := axisIndex(k.axis, rank)
	if err != nil {
		return nil, err
	}
	k.dtype = first.DType
	k.dims = make([]int, len(in))
	k.total = 0
	for i, v := range in {
		if len(v.Shape) != rank {
			return nil, fmt.Errorf("input %d has shape %v, input 0 has %v: ranks differ", i, v.Shape, first.Shape)
		}
		for d := range rank {
			if d != ax && v.Shape[d] != first.Shape[d] {
				return nil, fmt.Errorf("input %d has shape %v, input 0 has %v: they differ outside axis %d", i, v.Shape, first.Shape, ax)
			}
		}
		k.dims[i] = v.Shape[ax]
		k.total += v.Shape[ax]
	}
	k.outer, k.inner = tensor.Numel(first.Shape[:ax]), tensor.Numel(first.Shape[ax+1:])
	out := append([]int(nil), first.Shape...)
	out[ax] = k.total
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

// concatRows copies the rows [lo, hi) of each part ([outer,
// dims[i]·inner]) into their place in whole ([outer, total·inner]); data
// picks a tensor's storage.
func concatRows[T any](lo, hi, inner, total int, dims []int, whole []T, parts []*tensor.Tensor, data func(*tensor.Tensor) []T) {
	for o := lo; o < hi; o++ {
		at := o * total * inner
		for i, p := range parts {
			n := dims[i] * inner
			copy(whole[at:at+n], data(p)[o*n:(o+1)*n])
			at += n
		}
	}
}

// rowPieces is how many goroutines should share the rows [0, outer) of a
// concatenation of size elements (1: run serially, without a closure, so
// the serial path does not allocate). Rows are disjoint, so the result
// does not depend on the split.
func rowPieces(ctx *RunContext, outer, size int) int {
	return min(parallelPieces(ctx.Workers, size), outer)
}

func (k *concatKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	if p := rowPieces(ctx, k.outer, out[0].Len()); p > 1 {
		tensor.Parallel(p, k.outer, func(lo, hi int) { k.forward(lo, hi, in, out[0]) })
		return nil
	}
	k.forward(0, k.outer, in, out[0])
	return nil
}

func (k *concatKernel) forward(lo, hi int, in []*tensor.Tensor, out *tensor.Tensor) {
	switch {
	case k.dtype == tensor.Float32:
		concatRows(lo, hi, k.inner, k.total, k.dims, out.F32, in, f32Of)
	case k.dtype == tensor.Float64:
		concatRows(lo, hi, k.inner, k.total, k.dims, out.F64, in, f64Of)
	default:
		concatRows(lo, hi, k.inner, k.total, k.dims, out.I64, in, i64Of)
	}
}

// f32Of, f64Of and i64Of pick a tensor's storage.
func f32Of(t *tensor.Tensor) []float32 { return t.F32 }
func f64Of(t *tensor.Tensor) []float64 { return t.F64 }
func i64Of(t *tensor.Tensor) []int64   { return t.I64 }

// assignsGrad: Concat copies each input's slice of dY into a fresh
// gradient instead of adding it.
func (k *concatKernel) assignsGrad(int) bool { return true }

func (k *concatKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	if p := rowPieces(ctx, k.outer, gout[0].Len()); p > 1 {
		tensor.Parallel(p, k.outer, func(lo, hi int) { k.backward(ctx, lo, hi, gout[0].F32, gin) })
		return nil
	}
	k.backward(ctx, 0, k.outer, gout[0].F32, gin)
	return nil
}

func (k *concatKernel) backward(ctx *RunContext, lo, hi int, g []float32, gin []*tensor.Tensor) {
	for o := lo; o < hi; o++ {
		at := o * k.total * k.inner
		for i, d := range k.dims {
			n := d * k.inner
			if gin[i] != nil {
				addOrCopy(gin[i].F32[o*n:(o+1)*n], g[at:at+n], ctx.fresh(i))
			}
			at += n
		}
	}
}

// splitKernel is Split.
type splitKernel struct {
	axis       int64
	nOut       int
	split      []int64 // attribute form (opset < 13)
	splitInput bool    // opset >= 13: split is the optional input 1
	numOutputs int64   // opset >= 18

	dtype        tensor.DType
	outer, inner int
	dims         []int
	total        int
}

func (k *splitKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	x := in[0].Shape
	ax, err := axisIndex(k.axis, len(x))
	if err != nil {
		return nil, err
	}
	split := k.split
	if k.splitInput && len(in) > 1 && in[1].Present {
		if split, err = constInts(in[1], "the split input"); err != nil {
			return nil, err
		}
		if k.numOutputs != 0 {
			return nil, errors.New("both the split input and num_outputs are given; give one")
		}
	}
	dim := x[ax]
	k.dims = make([]int, k.nOut)
	switch {
	case split != nil:
		if len(split) != k.nOut {
			return nil, fmt.Errorf("split %v has %d entries, the node has %d outputs", split, len(split), k.nOut)
		}
		sum := 0
		for i, s := range split {
			if s < 0 {
				return nil, fmt.Errorf("split %v has a negative size", split)
			}
			k.dims[i] = int(s)
			sum += int(s)
		}
		if sum != dim {
			return nil, fmt.Errorf("split %v sums to %d, but axis %d has size %d", split, sum, ax, dim)
		}
	case dim%k.nOut == 0:
		for i := range k.dims {
			k.dims[i] = dim / k.nOut
		}
	case k.numOutputs != 0:
		// Opset 18: chunks of ceil(dim/n), the last one smaller.
		chunk := (dim + k.nOut - 1) / k.nOut
		left := dim
		for i := range k.dims {
			k.dims[i] = min(chunk, left)
			left -= k.dims[i]
		}
	default:
		return nil, fmt.Errorf("axis %d of size %d does not split evenly into %d outputs; give split sizes", ax, dim, k.nOut)
	}
	k.dtype = in[0].DType
	k.total = dim
	k.outer, k.inner = tensor.Numel(x[:ax]), tensor.Numel(x[ax+1:])
	outs := make([]Output, k.nOut)
	for i, d := range k.dims {
		s := append([]int(nil), x...)
		s[ax] = d
		outs[i] = Output{DType: k.dtype, Shape: s}
	}
	return outs, nil
}

func (k *splitKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	if p := rowPieces(ctx, k.outer, in[0].Len()); p > 1 {
		tensor.Parallel(p, k.outer, func(lo, hi int) { k.forward(lo, hi, in[0], out) })
		return nil
	}
	k.forward(0, k.outer, in[0], out)
	return nil
}

func (k *splitKernel) forward(lo, hi int, in *tensor.Tensor, out []*tensor.Tensor) {
	switch {
	case k.dtype == tensor.Float32:
		splitRows(lo, hi, k.inner, k.total, k.dims, in.F32, out, f32Of)
	case k.dtype == tensor.Float64:
		splitRows(lo, hi, k.inner, k.total, k.dims, in.F64, out, f64Of)
	default:
		splitRows(lo, hi, k.inner, k.total, k.dims, in.I64, out, i64Of)
	}
}

// splitRows is the inverse of concatRows.
func splitRows[T any](lo, hi, inner, total int, dims []int, whole []T, parts []*tensor.Tensor, data func(*tensor.Tensor) []T) {
	for o := lo; o < hi; o++ {
		at := o * total * inner
		for i, p := range parts {
			n := dims[i] * inner
			copy(data(p)[o*n:(o+1)*n], whole[at:at+n])
			at += n
		}
	}
}

func (k *splitKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] == nil {
		return nil
	}
	if p := rowPieces(ctx, k.outer, gin[0].Len()); p > 1 {
		tensor.Parallel(p, k.outer, func(lo, hi int) { k.backward(lo, hi, gout, gin[0].F32) })
		return nil
	}
	k.backward(0, k.outer, gout, gin[0].F32)
	return nil
}

func (k *splitKernel) backward(lo, hi int, gout []*tensor.Tensor, dst []float32) {
	for o := lo; o < hi; o++ {
		at := o * k.total * k.inner
		for i, d := range k.dims {
			n := d * k.inner
			if gout[i] != nil {
				addInto(dst[at:at+n], gout[i].F32[o*n:(o+1)*n])
			}
			at += n
		}
	}
}

// sliceKernel is Slice: attributes before opset 10, then the inputs
// starts, ends, axes (optional) and steps (optional).
type sliceKernel struct {
	attrs              bool
	starts, ends, axes []int64

	dtype tensor.DType
	view  *stridedShape
}

func (k *sliceKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	x := in[0].Shape
	starts, ends, axes := k.starts, k.ends, k.axes
	var steps []int64
	if !k.attrs {
		if len(in) < 3 {
			return nil, errors.New("Slice needs the inputs data, starts and ends")
		}
		var err error
		if starts, err = constInts(in[1], "starts"); err != nil {
			return nil, err
		}
		if ends, err = constInts(in[2], "ends"); err != nil {
			return nil, err
		}
		if len(in) > 3 && in[3].Present {
			if axes, err = constInts(in[3], "axes"); err != nil {
				return nil, err
			}
		}
		if len(in) > 4 && in[4].Present {
			if steps, err = constInts(in[4], "steps"); err != nil {
				return nil, err
			}
		}
	}
	view, err := sliceView(x, starts, ends, axes, steps)
	if err != nil {
		return nil, err
	}
	k.dtype, k.view = in[0].DType, view
	return []Output{{DType: k.dtype, Shape: view.shape}}, nil
}

// sliceView computes the strided view of a tensor of shape x that ONNX
// Slice selects (negative indices count from the end, bounds are clamped,
// steps may be negative).
func sliceView(x []int, starts, ends, axes, steps []int64) (*stridedShape, error) {
	if len(starts) != len(ends) {
		return nil, fmt.Errorf("starts %v and ends %v have different lengths", starts, ends)
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, fmt.Errorf("starts, ends, axes and steps have lengths %d, %d, %d, %d; want them equal", len(starts), len(ends), len(axes), len(steps))
	}
	xs := contiguousStrides(x)
	shape := append([]int(nil), x...)
	strides := append([]int(nil), xs...)
	off := 0
	seen := make([]bool, len(x))
	for i, a := range axes {
		ax, err := axisIndex(a, len(x))
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("axes %v name axis %d twice", axes, ax)
		}
		seen[ax] = true
		d := int64(x[ax])
		step := steps[i]
		if step == 0 {
			return nil, fmt.Errorf("steps %v contain 0", steps)
		}
		start, end := starts[i], ends[i]
		if start < 0 {
			start = satAdd(start, d)
		}
		if end < 0 {
			end = satAdd(end, d)
		}
		var n int64
		if step > 0 {
			start = min(max(start, 0), d)
			end = min(max(end, 0), d)
			if end > start {
				n = (end - start + step - 1) / step
			}
		} else {
			start = min(max(start, 0), d-1)
			end = min(max(end, -1), d-1)
			if start > end {
				n = (start - end + (-step) - 1) / (-step)
			}
		}
		shape[ax] = int(n)
		strides[ax] = xs[ax] * int(step)
		if n > 0 {
			off += int(start) * xs[ax]
		}
	}
	return newStridedShape(shape, strides, off), nil
}

// satAdd adds without overflowing (slice bounds are often ±2^63-1).
func satAdd(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	if b < 0 && s > a {
		return math.MinInt64
	}
	return s
}

func (k *sliceKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	switch {
	case k.dtype == tensor.Float32:
		stridedCopy(k.view, out[0].F32, in[0].F32)
	case k.dtype == tensor.Float64:
		stridedCopy(k.view, out[0].F64, in[0].F64)
	default:
		stridedCopy(k.view, out[0].I64, in[0].I64)
	}
	return nil
}

func (k *sliceKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] != nil && gout[0] != nil {
		stridedAddBack(k.view, gin[0].F32, gout[0].F32)
	}
	return nil
}

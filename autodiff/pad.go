package autodiff

import (
	"errors"
	"fmt"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Pad in the modes constant, reflect, edge and wrap. Before opset 11 pads
// and value are attributes (opset 1 calls pads "paddings"); from 11 they
// are the inputs pads and constant_value, and from 18 an optional axes
// input says which axes pads covers. Negative pads crop.

func init() {
	register("Pad", func(n *graph.Node, opset int64) (Kernel, error) {
		opset = opsetOrLatest(opset)
		k := &padKernel{mode: n.AttrString("mode", "constant")}
		switch k.mode {
		case "constant", "reflect", "edge", "wrap":
		default:
			return nil, fmt.Errorf("mode %q is not supported (constant, reflect, edge and wrap are)", k.mode)
		}
		if opset < 11 {
			k.attrs = true
			a := n.Attr("pads")
			if a == nil {
				a = n.Attr("paddings")
			}
			if a == nil {
				return nil, errors.New("Pad before opset 11 needs the pads attribute")
			}
			k.pads = a.Ints
			k.value = float64(n.AttrFloat("value", 0))
		}
		return k, nil
	})
}

type padKernel struct {
	mode  string
	attrs bool
	pads  []int64
	value float64 // attribute form

	dtype    tensor.DType
	inShape  []int
	outShape []int
	// srcIdx[d][o] is the input index along dimension d that output index
	// o reads, or -1 for the constant.
	srcIdx   [][]int
	inStride []int
	idx      []int // scratch odometer
}

func (k *padKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	x := in[0].Shape
	r := len(x)
	pads := k.pads
	var axes []int64
	if !k.attrs {
		var err error
		if len(in) < 2 {
			return nil, errors.New("the pads input is missing")
		}
		if pads, err = constInts(in[1], "pads"); err != nil {
			return nil, err
		}
		if len(in) > 2 && in[2].Present && in[2].DType != in[0].DType {
			return nil, fmt.Errorf("constant_value has element type %s, data has %s", in[2].DType, in[0].DType)
		}
		if len(in) > 3 && in[3].Present {
			if axes, err = constInts(in[3], "axes"); err != nil {
				return nil, err
			}
		}
	}
	if axes == nil {
		for i := range r {
			axes = append(axes, int64(i))
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, fmt.Errorf("pads %v has %d values, want %d (begin and end for each of %d axes)", pads, len(pads), 2*len(axes), len(axes))
	}
	begin := make([]int, r)
	end := make([]int, r)
	seen := make([]bool, r)
	for _, p := range pads {
		if p > maxOutputElements || p < -maxOutputElements {
			return nil, fmt.Errorf("pads %v hold an absurd value", pads)
		}
	}
	for i, a := range axes {
		ax, err := axisIndex(a, r)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("axes %v name axis %d twice", axes, ax)
		}
		seen[ax] = true
		begin[ax], end[ax] = int(pads[i]), int(pads[i+len(axes)])
	}
	out := make([]int, r)
	for d := range r {
		out[d] = x[d] + begin[d] + end[d]
		if out[d] < 0 {
			return nil, fmt.Errorf("pads %v crop axis %d of size %d below zero", pads, d, x[d])
		}
	}
	if err := checkOutputSize(out); err != nil {
		return nil, err
	}
	k.srcIdx = make([][]int, r)
	for d := range r {
		if x[d] == 0 && out[d] > 0 && k.mode != "constant" {
			return nil, fmt.Errorf("mode %s cannot pad axis %d of size 0", k.mode, d)
		}
		m := make([]int, out[d])
		for o := range m {
			m[o] = padSource(o-begin[d], x[d], k.mode)
		}
		k.srcIdx[d] = m
	}
	k.dtype, k.inShape, k.outShape = in[0].DType, x, out
	k.inStride = contiguousStrides(x)
	k.idx = make([]int, r)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

// padSource maps index i (which may lie outside [0, n)) to the input index
// it reads under mode, or -1 for the constant.
func padSource(i, n int, mode string) int {
	if i >= 0 && i < n {
		return i
	}
	switch mode {
	case "edge":
		return min(max(i, 0), n-1)
	case "wrap":
		return ((i % n) + n) % n
	case "reflect":
		if n == 1 {
			return 0
		}
		p := 2 * (n - 1)
		i = ((i % p) + p) % p
		if i >= n {
			i = p - i
		}
		return i
	}
	return -1
}

// each calls fn(o, s) for every output element o with its input offset s
// (-1 for the constant).
func (k *padKernel) each(fn func(o, s int)) {
	r := len(k.outShape)
	total := tensor.Numel(k.outShape)
	if total == 0 {
		return
	}
	if r == 0 {
		fn(0, 0)
		return
	}
	clear(k.idx)
	inner := k.srcIdx[r-1]
	for o := 0; o < total; o += len(inner) {
		base, valid := 0, true
		for d := range r - 1 {
			s := k.srcIdx[d][k.idx[d]]
			if s < 0 {
				valid = false
				break
			}
			base += s * k.inStride[d]
		}
		for j, s := range inner {
			if !valid || s < 0 {
				fn(o+j, -1)
			} else {
				fn(o+j, base+s)
			}
		}
		for d := r - 2; d >= 0; d-- {
			k.idx[d]++
			if k.idx[d] < k.outShape[d] {
				break
			}
			k.idx[d] = 0
		}
	}
}

func (k *padKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	var cv *tensor.Tensor
	if !k.attrs && len(in) > 2 && in[2] != nil {
		cv = in[2]
	}
	switch {
	case k.dtype == tensor.Float32:
		c := float32(k.value)
		if cv != nil {
			c = cv.F32[0]
		}
		padCopy(k, out[0].F32, in[0].F32, c)
	case k.dtype == tensor.Float64:
		c := k.value
		if cv != nil {
			c = cv.F64[0]
		}
		padCopy(k, out[0].F64, in[0].F64, c)
	default:
		c := int64(k.value)
		if cv != nil {
			c = cv.I64[0]
		}
		padCopy(k, out[0].I64, in[0].I64, c)
	}
	return nil
}

func padCopy[T any](k *padKernel, dst, src []T, c T) {
	k.each(func(o, s int) {
		if s < 0 {
			dst[o] = c
		} else {
			dst[o] = src[s]
		}
	})
}

func (k *padKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	g := gout[0].F32
	var gx []float32
	if gin[0] != nil {
		gx = gin[0].F32
	}
	// The constant_value input gets the sum of the gradient over the
	// padded positions.
	var gc *float32
	if !k.attrs && len(gin) > 2 && gin[2] != nil {
		gc = &gin[2].F32[0]
	}
	k.each(func(o, s int) {
		switch {
		case s >= 0 && gx != nil:
			gx[s] += g[o]
		case s < 0 && gc != nil:
			*gc += g[o]
		}
	})
	return nil
}

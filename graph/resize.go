package graph

import (
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// ResizeOperands finds the scales or the sizes of a Resize (or Upsample)
// node for its opset: Upsample-7 reads the scales attribute, Upsample-9
// and Resize-10 input 1, Resize-11 and later input 2 (scales) or 3
// (sizes), an empty tensor standing for an omitted one. in(i) returns
// the constant value of input i as float64s, or nil when the input is
// omitted or empty; ok is false when it is present but not constant.
func ResizeOperands(n *Node, opset int64, in func(i int) (vals []float64, ok bool)) (scales, sizes []float64, err error) {
	get := func(i int, what string) ([]float64, error) {
		v, ok := in(i)
		if !ok {
			return nil, fmt.Errorf("the %s input must be known when the model is compiled (an initializer or computed from shapes)", what)
		}
		return v, nil
	}
	switch {
	case n.OpType == "Upsample" && opset < 9:
		if a := n.Attr("scales"); a != nil {
			for _, f := range a.Floats {
				scales = append(scales, float64(f))
			}
		}
	case n.OpType == "Upsample" || opset < 11:
		scales, err = get(1, "scales")
	default:
		if scales, err = get(2, "scales"); err != nil {
			return nil, nil, err
		}
		if sizes, err = get(3, "sizes"); err != nil {
			return nil, nil, err
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if (scales == nil) == (sizes == nil) {
		return nil, nil, fmt.Errorf("give exactly one of scales and sizes (got scales %v, sizes %v)", scales, sizes)
	}
	return scales, sizes, nil
}

// ResizeShape returns the output shape of a resize of a tensor of shape
// in by scales (out = ⌊in·scale⌋) or to sizes, and the scale of every
// axis as the coordinate transformation uses it (the given scale, or
// out/in for sizes). Only the spatial axes (from axis 2) may change.
func ResizeShape(in []int, scales, sizes []float64) (out []int, scale []float64, err error) {
	r := len(in)
	if scales != nil && len(scales) != r || sizes != nil && len(sizes) != r {
		return nil, nil, fmt.Errorf("scales %v / sizes %v: want %d values, one per axis of %v", scales, sizes, r, in)
	}
	out, scale = make([]int, r), make([]float64, r)
	for i, d := range in {
		if sizes != nil {
			if sizes[i] > 1<<40 {
				return nil, nil, fmt.Errorf("sizes %v hold an absurd value", sizes)
			}
			out[i] = int(sizes[i])
			scale[i] = float64(out[i]) / float64(max(d, 1))
		} else {
			if scales[i] <= 0 || math.IsNaN(scales[i]) || math.IsInf(scales[i], 0) {
				return nil, nil, fmt.Errorf("scales %v must be positive", scales)
			}
			if float64(d)*scales[i] > 1<<40 {
				return nil, nil, fmt.Errorf("scales %v hold an absurd value", scales)
			}
			out[i] = int(math.Floor(float64(d) * scales[i]))
			scale[i] = scales[i]
		}
		if out[i] < 1 {
			return nil, nil, fmt.Errorf("the output would have size %d along axis %d", out[i], i)
		}
		if i < 2 && r > 2 && out[i] != d {
			return nil, nil, fmt.Errorf("resizing the batch or channel axis (%v to %v) is not supported", in, out)
		}
	}
	return out, scale, nil
}

// Float64s returns t's elements as float64s (floats or integers).
func Float64s(t *tensor.Tensor) []float64 {
	out := make([]float64, t.Len())
	for i := range out {
		switch {
		case t.F32 != nil:
			out[i] = float64(t.F32[i])
		case t.F64 != nil:
			out[i] = t.F64[i]
		default:
			out[i] = float64(t.I64[i])
		}
	}
	return out
}

func resizeShape(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	scales, sizes, err := ResizeOperands(c.n, c.opset(), func(i int) ([]float64, bool) {
		v := c.in(i)
		if v == nil || len(v.shape) == 1 && v.shape[0] == 0 {
			return nil, true
		}
		if v.val == nil {
			return nil, false
		}
		return Float64s(v.val), true
	})
	if err != nil {
		return nil, c.errf("%v", err)
	}
	out, _, err := ResizeShape(x.shape, scales, sizes)
	if err != nil {
		return nil, c.errf("%v", err)
	}
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("MaxPool", func(n *graph.Node, opset int64) (Kernel, error) { return newPool(n, opset, true) })
	register("AveragePool", func(n *graph.Node, opset int64) (Kernel, error) { return newPool(n, opset, false) })
	register("GlobalAveragePool", func(*graph.Node, int64) (Kernel, error) { return &globalAvgPoolKernel{}, nil })
}

// poolKernel is MaxPool and AveragePool over 1-D or 2-D windows.
//
// MaxPool: padding never wins (it counts as -∞); a NaN in a window
// propagates to the output; ties go to the first maximum in row-major
// window order, which also receives the gradient. The optional Indices
// output is not supported. storage_order only affects Indices and is
// ignored.
//
// AveragePool: the divisor counts the window positions inside the image,
// or with count_include_pad=1 those inside the image plus its explicit
// padding (not the extra columns ceil_mode adds).
type poolKernel struct {
	isMax        bool
	spec         *windowSpec
	includePad   bool
	win          resolvedWindow
	planes       int       // N*C
	argmax       []int32   // MaxPool: input index of each output's maximum, -1 for none
	inv          []float32 // AveragePool: 1/divisor per output pixel
	inPl, outPl  int
	outputsShape []int
}

func newPool(n *graph.Node, opset int64, isMax bool) (Kernel, error) {
	spec, err := readWindowSpec(n, true)
	if err != nil {
		return nil, err
	}
	if spec.kernel == nil {
		return nil, errors.New("kernel_shape is required")
	}
	k := &poolKernel{isMax: isMax, spec: spec}
	if isMax {
		if len(n.Outputs) > 1 && n.Outputs[1] != "" {
			return nil, errors.New("the Indices output of MaxPool is not supported; remove it from the node")
		}
	} else {
		switch c := n.AttrInt("count_include_pad", 0); c {
		case 0:
		case 1:
			k.includePad = true
		default:
			return nil, fmt.Errorf("count_include_pad is %d, want 0 or 1", c)
		}
	}
	return k, nil
}

func (k *poolKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("pooling takes one input X")
	}
	x := in[0]
	if x.DType != tensor.Float32 {
		return nil, fmt.Errorf("X is %s; the engine pools float32 only", x.DType)
	}
	if len(x.Shape) != 3 && len(x.Shape) != 4 {
		return nil, fmt.Errorf("X has shape %v: only 1-D and 2-D pooling (rank 3 or 4 input) is supported", x.Shape)
	}
	win, out, err := k.spec.resolve(x.Shape[2:], k.spec.kernel)
	if err != nil {
		return nil, err
	}
	k.win = win
	k.planes = x.Shape[0] * x.Shape[1]
	k.inPl = win.H * win.W
	k.outPl = win.OH * win.OW
	if k.isMax {
		k.argmax = make([]int32, k.planes*k.outPl)
		if k.inPl > math.MaxInt32 {
			return nil, fmt.Errorf("X plane of %d elements is too large", k.inPl)
		}
	} else {
		k.inv = make([]float32, k.outPl)
		g := &k.win
		for oh := range g.OH {
			for ow := range g.OW {
				cnt := 0
				for i := range g.KH {
					ih := oh*g.SH - g.PadT + i*g.DH
					for j := range g.KW {
						iw := ow*g.SW - g.PadL + j*g.DW
						in := ih >= 0 && ih < g.H && iw >= 0 && iw < g.W
						inPad := ih >= -g.PadT && ih < g.H+g.PadB && iw >= -g.PadL && iw < g.W+g.PadR
						if in || (k.includePad && inPad) {
							cnt++
						}
					}
				}
				if cnt > 0 {
					k.inv[oh*g.OW+ow] = 1 / float32(cnt)
				}
			}
		}
	}
	return []Output{{DType: tensor.Float32, Shape: append([]int{x.Shape[0], x.Shape[1]}, out...)}}, nil
}

func (k *poolKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	g := &k.win
	tensor.ForEach(ctx.Workers, k.planes, func(_, p int) {
		src := x[p*k.inPl : (p+1)*k.inPl]
		dst := y[p*k.outPl : (p+1)*k.outPl]
		for oh := range g.OH {
			for ow := range g.OW {
				o := oh*g.OW + ow
				if k.isMax {
					best, arg := float32(math.Inf(-1)), int32(-1)
					for i := range g.KH {
						ih := oh*g.SH - g.PadT + i*g.DH
						if ih < 0 || ih >= g.H {
							continue
						}
						for j := range g.KW {
							iw := ow*g.SW - g.PadL + j*g.DW
							if iw < 0 || iw >= g.W {
								continue
							}
							v := src[ih*g.W+iw]
							if v > best || arg < 0 || (v != v && best == best) {
								best, arg = v, int32(ih*g.W+iw)
							}
						}
					}
					dst[o] = best
					k.argmax[p*k.outPl+o] = arg
					continue
				}
				var s float32
				for i := range g.KH {
					ih := oh*g.SH - g.PadT + i*g.DH
					if ih < 0 || ih >= g.H {
						continue
					}
					for j := range g.KW {
						iw := ow*g.SW - g.PadL + j*g.DW
						if iw < 0 || iw >= g.W {
							continue
						}
						s += src[ih*g.W+iw]
					}
				}
				dst[o] = s * k.inv[o]
			}
		}
	})
	return nil
}

func (k *poolKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || gin[0] == nil {
		return nil
	}
	dy, dx := gout[0].F32, gin[0].F32
	g := &k.win
	tensor.ForEach(ctx.Workers, k.planes, func(_, p int) {
		d := dx[p*k.inPl : (p+1)*k.inPl]
		gy := dy[p*k.outPl : (p+1)*k.outPl]
		if k.isMax {
			am := k.argmax[p*k.outPl : (p+1)*k.outPl]
			for o, a := range am {
				if a >= 0 {
					d[a] += gy[o]
				}
			}
			return
		}
		for oh := range g.OH {
			for ow := range g.OW {
				o := oh*g.OW + ow
				v := gy[o] * k.inv[o]
				for i := range g.KH {
					ih := oh*g.SH - g.PadT + i*g.DH
					if ih < 0 || ih >= g.H {
						continue
					}
					for j := range g.KW {
						iw := ow*g.SW - g.PadL + j*g.DW
						if iw < 0 || iw >= g.W {
							continue
						}
						d[ih*g.W+iw] += v
					}
				}
			}
		}
	})
	return nil
}

// globalAvgPoolKernel is GlobalAveragePool: the mean over all spatial axes.
type globalAvgPoolKernel struct {
	planes, plane int
}

func (k *globalAvgPoolKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("GlobalAveragePool takes one input X")
	}
	x := in[0]
	if x.DType != tensor.Float32 {
		return nil, fmt.Errorf("X is %s; the engine pools float32 only", x.DType)
	}
	if len(x.Shape) < 3 {
		return nil, fmt.Errorf("X has shape %v, want [N, C, spatial...]", x.Shape)
	}
	k.planes = x.Shape[0] * x.Shape[1]
	k.plane = tensor.Numel(x.Shape[2:])
	if k.plane == 0 {
		return nil, fmt.Errorf("X has shape %v: empty spatial axes", x.Shape)
	}
	out := []int{x.Shape[0], x.Shape[1]}
	for range x.Shape[2:] {
		out = append(out, 1)
	}
	return []Output{{DType: tensor.Float32, Shape: out}}, nil
}

func (k *globalAvgPoolKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	inv := 1 / float64(k.plane)
	tensor.Parallel(ctx.Workers, k.planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			var s float64
			for _, v := range x[p*k.plane : (p+1)*k.plane] {
				s += float64(v)
			}
			y[p] = float32(s * inv)
		}
	})
	return nil
}

func (k *globalAvgPoolKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || gin[0] == nil {
		return nil
	}
	dy, dx := gout[0].F32, gin[0].F32
	inv := 1 / float32(k.plane)
	tensor.Parallel(ctx.Workers, k.planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			v := dy[p] * inv
			d := dx[p*k.plane : (p+1)*k.plane]
			for i := range d {
				d[i] += v
			}
		}
	})
	return nil
}

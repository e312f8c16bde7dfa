package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("Resize", newResize)
	register("Upsample", newResize)
}

// resizeKernel is Resize (and the older Upsample) over 1 or 2 spatial
// axes, in nearest or linear mode, with every coordinate transformation
// but tf_crop_and_resize. Each axis gets a table at Setup: for each output
// coordinate its one (nearest) or two (linear) input coordinates and the
// second one's weight. Linear sampling clamps the source coordinate to the
// input, as onnxruntime and PyTorch do. The gradient is the adjoint: each
// output's gradient added to the inputs it read, by their weights.
type resizeKernel struct {
	node    *graph.Node
	opset   int64
	linear  bool
	coord   string
	nearest string
	planes  int
	in, out []int // spatial sizes, as 2-D (height 1 for 1-D)
	// per axis (0: rows, 1: columns), per output coordinate
	i0, i1 [2][]int
	w1     [2][]float32
}

func newResize(n *graph.Node, opset int64) (Kernel, error) {
	opset = opsetOrLatest(opset)
	k := &resizeKernel{node: n, opset: opset, coord: "asymmetric", nearest: "floor"}
	switch mode := n.AttrString("mode", "nearest"); mode {
	case "nearest":
	case "linear", "bilinear":
		k.linear = true
	default:
		return nil, fmt.Errorf("mode %q is not supported (nearest and linear are)", mode)
	}
	if n.OpType == "Resize" && opset >= 11 {
		k.coord = n.AttrString("coordinate_transformation_mode", "half_pixel")
		k.nearest = n.AttrString("nearest_mode", "round_prefer_floor")
	}
	switch k.coord {
	case "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn":
	default:
		return nil, fmt.Errorf("coordinate_transformation_mode %q is not supported", k.coord)
	}
	switch k.nearest {
	case "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
	default:
		return nil, fmt.Errorf("nearest_mode %q is not one of round_prefer_floor, round_prefer_ceil, floor, ceil", k.nearest)
	}
	if n.AttrInt("antialias", 0) != 0 || n.Attr("axes") != nil || n.AttrString("keep_aspect_ratio_policy", "stretch") != "stretch" {
		return nil, errors.New("antialias, axes and keep_aspect_ratio_policy other than the defaults are not supported")
	}
	return k, nil
}

func (k *resizeKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present || in[0].DType != tensor.Float32 {
		return nil, errors.New("Resize needs a float32 input X")
	}
	x := in[0].Shape
	if len(x) != 3 && len(x) != 4 {
		return nil, fmt.Errorf("X has shape %v: only 1-D and 2-D spatial resizes (rank 3 or 4) are supported", x)
	}
	scales, sizes, err := graph.ResizeOperands(k.node, k.opset, func(i int) ([]float64, bool) {
		if i >= len(in) || !in[i].Present || len(in[i].Shape) == 1 && in[i].Shape[0] == 0 {
			return nil, true
		}
		if in[i].Const == nil {
			return nil, false
		}
		return graph.Float64s(in[i].Const), true
	})
	if err != nil {
		return nil, err
	}
	out, scale, err := graph.ResizeShape(x, scales, sizes)
	if err != nil {
		return nil, err
	}
	if err := checkOutputSize(out); err != nil {
		return nil, err
	}
	k.planes = x[0] * x[1]
	k.in, k.out = []int{1, x[2]}, []int{1, out[2]}
	sc := []float64{1, scale[2]}
	if len(x) == 4 {
		k.in, k.out, sc = x[2:], out[2:], scale[2:]
	}
	for a := range 2 {
		k.i0[a], k.i1[a], k.w1[a] = k.table(k.in[a], k.out[a], sc[a])
	}
	return []Output{{DType: tensor.Float32, Shape: out}}, nil
}

// table maps each output coordinate of an axis to its input coordinates
// and the second one's weight.
func (k *resizeKernel) table(in, out int, scale float64) (i0, i1 []int, w1 []float32) {
	i0, i1, w1 = make([]int, out), make([]int, out), make([]float32, out)
	for o := range out {
		x := float64(o)
		switch k.coord {
		case "half_pixel":
			x = (x+0.5)/scale - 0.5
		case "pytorch_half_pixel":
			if out > 1 {
				x = (x+0.5)/scale - 0.5
			} else {
				x = 0
			}
		case "align_corners":
			if out > 1 {
				x = x * float64(in-1) / float64(out-1)
			} else {
				x = 0
			}
		case "asymmetric":
			x /= scale
		case "tf_half_pixel_for_nn":
			x = (x + 0.5) / scale
		}
		if !k.linear {
			var r float64
			switch k.nearest {
			case "floor":
				r = math.Floor(x)
			case "ceil":
				r = math.Ceil(x)
			case "round_prefer_ceil":
				r = math.Floor(x + 0.5)
			default: // round_prefer_floor
				r = math.Ceil(x - 0.5)
			}
			i0[o] = min(max(int(r), 0), in-1)
			i1[o] = i0[o]
			continue
		}
		x = min(max(x, 0), float64(in-1))
		f := math.Floor(x)
		i0[o], i1[o], w1[o] = int(f), min(int(f)+1, in-1), float32(x-f)
	}
	return i0, i1, w1
}

func (k *resizeKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	ih, iw, oh, ow := k.in[0], k.in[1], k.out[0], k.out[1]
	tensor.Parallel(ctx.Workers, k.planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := x[p*ih*iw:][:ih*iw], y[p*oh*ow:][:oh*ow]
			for r := range oh {
				r0, r1, wr := k.i0[0][r], k.i1[0][r], k.w1[0][r]
				for c := range ow {
					c0, c1, wc := k.i0[1][c], k.i1[1][c], k.w1[1][c]
					if !k.linear {
						dst[r*ow+c] = src[r0*iw+c0]
						continue
					}
					top := src[r0*iw+c0] + wc*(src[r0*iw+c1]-src[r0*iw+c0])
					bot := src[r1*iw+c0] + wc*(src[r1*iw+c1]-src[r1*iw+c0])
					dst[r*ow+c] = top + wr*(bot-top)
				}
			}
		}
	})
	return nil
}

func (k *resizeKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || gin[0] == nil {
		return nil
	}
	g, dx := gout[0].F32, gin[0].F32
	ih, iw, oh, ow := k.in[0], k.in[1], k.out[0], k.out[1]
	tensor.Parallel(ctx.Workers, k.planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			gp, dp := g[p*oh*ow:][:oh*ow], dx[p*ih*iw:][:ih*iw]
			for r := range oh {
				r0, r1, wr := k.i0[0][r], k.i1[0][r], k.w1[0][r]
				for c := range ow {
					c0, c1, wc := k.i0[1][c], k.i1[1][c], k.w1[1][c]
					v := gp[r*ow+c]
					if !k.linear {
						dp[r0*iw+c0] += v
						continue
					}
					dp[r0*iw+c0] += v * (1 - wr) * (1 - wc)
					dp[r0*iw+c1] += v * (1 - wr) * wc
					dp[r1*iw+c0] += v * wr * (1 - wc)
					dp[r1*iw+c1] += v * wr * wc
				}
			}
		}
	})
	return nil
}

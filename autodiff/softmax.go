package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D at
// axis (default 1): the normalization runs over all dimensions from axis
// on. From opset 13 it runs over the single dimension axis (default -1).

func init() {
	for _, log := range []bool{false, true} {
		name := "Softmax"
		if log {
			name = "LogSoftmax"
		}
		register(name, func(n *graph.Node, opset int64) (Kernel, error) {
			opset = opsetOrLatest(opset)
			k := &softmaxKernel{log: log, coerce2D: opset < 13, axis: -1}
			if k.coerce2D {
				k.axis = 1
			}
			k.axis = n.AttrInt("axis", k.axis)
			return k, nil
		})
	}
}

type softmaxKernel struct {
	log      bool
	coerce2D bool
	axis     int64

	// The input viewed as [outer, n, inner]; the op normalizes along n.
	outer, n, inner int
}

func (k *softmaxKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	if in[0].DType != tensor.Float32 {
		return nil, fmt.Errorf("element type %s is not supported (float32 is)", in[0].DType)
	}
	x := in[0].Shape
	if k.coerce2D {
		// Opsets < 13 accept axis in [-r, r].
		if k.axis < -int64(len(x)) || k.axis > int64(len(x)) {
			return nil, fmt.Errorf("axis %d is out of range for rank %d", k.axis, len(x))
		}
		ax := int(k.axis)
		if ax < 0 {
			ax += len(x)
		}
		k.outer, k.n, k.inner = tensor.Numel(x[:ax]), tensor.Numel(x[ax:]), 1
	} else {
		ax, err := axisIndex(k.axis, len(x))
		if err != nil {
			return nil, err
		}
		k.outer, k.n, k.inner = tensor.Numel(x[:ax]), x[ax], tensor.Numel(x[ax+1:])
	}
	return []Output{{DType: tensor.Float32, Shape: x}}, nil
}

func (k *softmaxKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	n, inner := k.n, k.inner
	if inner == 1 {
		// Contiguous rows (the last axis, as attention and classifier
		// heads use it), on the workers; each row's arithmetic is the same
		// for any worker count. One worker calls the rows directly (no
		// closure to allocate).
		if ctx.Workers <= 1 || k.outer < 2 {
			k.rows(x, y, 0, k.outer)
		} else {
			tensor.Parallel(ctx.Workers, k.outer, func(lo, hi int) { k.rows(x, y, lo, hi) })
		}
		return nil
	}
	for o := range k.outer {
		for j := range inner {
			base := o*n*inner + j
			m := float32(math.Inf(-1))
			for i := range n {
				m = max(m, x[base+i*inner])
			}
			var sum float64
			for i := range n {
				e := math.Exp(float64(x[base+i*inner] - m))
				sum += e
				if !k.log {
					y[base+i*inner] = float32(e)
				}
			}
			if k.log {
				ls := float32(math.Log(sum))
				for i := range n {
					y[base+i*inner] = x[base+i*inner] - m - ls
				}
				continue
			}
			inv := 1 / sum
			for i := range n {
				y[base+i*inner] = float32(float64(y[base+i*inner]) * inv)
			}
		}
	}
	return nil
}

// rows runs Softmax (or LogSoftmax) over the contiguous rows [lo, hi) of
// length k.n: x − max into y, then e^· in place with the float32 kernel,
// summed in float64.
func (k *softmaxKernel) rows(x, y []float32, lo, hi int) {
	n := k.n
	for o := lo; o < hi; o++ {
		xr, yr := x[o*n:(o+1)*n], y[o*n:(o+1)*n]
		m := float32(math.Inf(-1))
		for _, v := range xr {
			m = max(m, v)
		}
		for i, v := range xr {
			yr[i] = v - m
		}
		tensor.Exp(yr, yr)
		var sum float64
		for _, e := range yr {
			sum += float64(e)
		}
		if k.log {
			ls := float32(math.Log(sum))
			for i, v := range xr {
				yr[i] = v - m - ls
			}
			continue
		}
		inv := 1 / sum
		for i, e := range yr {
			yr[i] = float32(float64(e) * inv)
		}
	}
}

func (k *softmaxKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] == nil || gout[0] == nil {
		return nil
	}
	y, g, gx := out[0].F32, gout[0].F32, gin[0].F32
	n, inner := k.n, k.inner
	for o := range k.outer {
		for j := range inner {
			base := o*n*inner + j
			var dot float64
			for i := range n {
				p := base + i*inner
				if k.log {
					dot += float64(g[p])
				} else {
					dot += float64(g[p]) * float64(y[p])
				}
			}
			d := float32(dot)
			for i := range n {
				p := base + i*inner
				if k.log {
					// d log softmax_i / d x_j = δij - softmax_j.
					gx[p] += g[p] - float32(math.Exp(float64(y[p])))*d
				} else {
					// d softmax_i / d x_j = softmax_i (δij - softmax_j).
					gx[p] += y[p] * (g[p] - d)
				}
			}
		}
	}
	return nil
}

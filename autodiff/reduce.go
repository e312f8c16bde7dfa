package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// ReduceMean, ReduceSum and ReduceMax: the mean, sum or maximum over axes
// (an attribute before opset 18 — 13 for ReduceSum —, the optional input 1
// from then on), keeping the reduced axes as size 1 when keepdims=1 (the
// default). No axes means every axis, unless noop_with_empty_axes=1, which
// makes the op an identity. ReduceMax's gradient is shared evenly by the
// maximal elements of each reduced group (PyTorch's amax); a NaN in a
// group is its maximum and takes the gradient. GlobalMaxPool's goes to
// the first maximum.

type reduceMode int

const (
	reduceMean reduceMode = iota
	reduceSum
	reduceMax
	reduceL2        // √Σx²
	reduceSumSquare // Σx²
)

func init() {
	for name, c := range map[string]struct {
		mode      reduceMode
		inputFrom int64 // the opset from which axes are an input
	}{"ReduceMean": {reduceMean, 18}, "ReduceSum": {reduceSum, 13}, "ReduceMax": {reduceMax, 18},
		"ReduceL2": {reduceL2, 18}, "ReduceSumSquare": {reduceSumSquare, 18}} {
		register(name, func(n *graph.Node, opset int64) (Kernel, error) {
			opset = opsetOrLatest(opset)
			k := &reduceMeanKernel{mode: c.mode, keepDims: n.AttrInt("keepdims", 1) != 0}
			if opset < c.inputFrom {
				k.axes = n.AttrInts("axes", nil)
			} else {
				k.axesInput = true
				k.noopEmpty = n.AttrInt("noop_with_empty_axes", 0) != 0
			}
			return k, nil
		})
	}
	register("GlobalMaxPool", func(*graph.Node, int64) (Kernel, error) {
		return &reduceMeanKernel{mode: reduceMax, keepDims: true, spatial: true}, nil
	})
}

// reduceMeanKernel runs ReduceMean, ReduceSum and ReduceMax (mode), and
// GlobalMaxPool (ReduceMax over the spatial axes).
type reduceMeanKernel struct {
	mode      reduceMode
	keepDims  bool
	spatial   bool // reduce every axis after the first two (GlobalMaxPool)
	axes      []int64
	axesInput bool
	noopEmpty bool

	noop  bool
	plan  *bcastPlan // over the input shape; "input" 0 is the kept output
	count int        // elements averaged into each output
	acc   []float64  // scratch, one per output element
	arg   []int      // ReduceMax: the input offset of each output's maximum
}

func (k *reduceMeanKernel) Setup(in []Value) ([]Output, error) {
	if len(in) == 0 || !in[0].Present {
		return nil, errors.New("the data input is missing")
	}
	if in[0].DType != tensor.Float32 {
		return nil, fmt.Errorf("element type %s is not supported (float32 is)", in[0].DType)
	}
	x := in[0].Shape
	axes := k.axes
	if k.spatial {
		if len(x) < 3 {
			return nil, fmt.Errorf("X has shape %v, want [N, C, spatial...]", x)
		}
		for a := 2; a < len(x); a++ {
			axes = append(axes, int64(a))
		}
	}
	if k.axesInput && len(in) > 1 && in[1].Present {
		var err error
		if axes, err = constInts(in[1], "the axes input"); err != nil {
			return nil, err
		}
	}
	reduce := make([]bool, len(x))
	if len(axes) == 0 {
		if k.noopEmpty {
			k.noop = true
			return []Output{{DType: tensor.Float32, Shape: x}}, nil
		}
		for i := range reduce {
			reduce[i] = true
		}
	}
	for _, a := range axes {
		ax, err := axisIndex(a, len(x))
		if err != nil {
			return nil, err
		}
		reduce[ax] = true
	}
	kept := make([]int, len(x))
	var out []int
	k.count = 1
	for i, d := range x {
		if reduce[i] {
			kept[i] = 1
			k.count *= d
			if k.keepDims {
				out = append(out, 1)
			}
			continue
		}
		kept[i] = d
		out = append(out, d)
	}
	if out == nil {
		out = []int{}
	}
	k.plan = newBcastPlan(x, kept)
	k.acc = make([]float64, tensor.Numel(kept))
	if k.mode == reduceMax {
		if k.count == 0 {
			return nil, fmt.Errorf("ReduceMax over an empty axis of %v", x)
		}
		k.arg = make([]int, len(k.acc))
	}
	return []Output{{DType: tensor.Float32, Shape: out}}, nil
}

func (k *reduceMeanKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	if k.noop {
		copy(out[0].F32, in[0].F32)
		return nil
	}
	x, acc, n, s := in[0].F32, k.acc, k.plan.inner, k.plan.innerStride(0)
	if k.mode == reduceMax {
		k.forwardMax(x, out[0].F32)
		return nil
	}
	clear(acc)
	square := k.mode == reduceL2 || k.mode == reduceSumSquare
	k.plan.rows(func(o int, offs []int) {
		a := offs[0]
		if square {
			for i, v := range x[o : o+n] {
				acc[a+i*s] += float64(v) * float64(v)
			}
			return
		}
		if s == 0 {
			var sum float64
			for _, v := range x[o : o+n] {
				sum += float64(v)
			}
			acc[a] += sum
			return
		}
		for i, v := range x[o : o+n] {
			acc[a+i] += float64(v)
		}
	})
	switch k.mode {
	case reduceL2:
		for i, v := range acc {
			out[0].F32[i] = float32(math.Sqrt(v))
		}
		return nil
	case reduceSumSquare:
		for i, v := range acc {
			out[0].F32[i] = float32(v)
		}
		return nil
	}
	if k.mode == reduceSum {
		for i, v := range acc {
			out[0].F32[i] = float32(v)
		}
		return nil
	}
	// An empty reduction (count 0) gives NaN, as 0/0 does in numpy.
	for i, v := range acc {
		out[0].F32[i] = float32(v / float64(k.count))
	}
	return nil
}

// forwardMax sets each output to the maximum of its group and records
// where it is (the first one; a NaN wins and stays).
func (k *reduceMeanKernel) forwardMax(x, y []float32) {
	n, s := k.plan.inner, k.plan.innerStride(0)
	seen := k.acc // 0: the output has no candidate yet
	clear(seen)
	k.plan.rows(func(o int, offs []int) {
		for i, v := range x[o : o+n] {
			a := offs[0] + i*s
			m := y[a]
			if seen[a] == 0 || (m == m && (v > m || v != v)) {
				y[a], k.arg[a], seen[a] = v, o+i, 1
			}
		}
	})
}

func (k *reduceMeanKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] == nil || gout[0] == nil {
		return nil
	}
	gx, g := gin[0].F32, gout[0].F32
	if k.noop {
		addInto(gx, g)
		return nil
	}
	if k.mode == reduceMax && k.spatial {
		// GlobalMaxPool: to the first maximum, as MaxPool (and PyTorch's
		// adaptive max pooling) do.
		for a, j := range k.arg {
			gx[j] += g[a]
		}
		return nil
	}
	if k.mode == reduceMax {
		// ReduceMax (torch.amax's export): shared evenly by the tied
		// maxima, as PyTorch's amax does; a NaN maximum's to its first NaN.
		x, y := in[0].F32, out[0].F32
		ties := k.acc
		clear(ties)
		n, s := k.plan.inner, k.plan.innerStride(0)
		k.plan.rows(func(o int, offs []int) {
			for i, v := range x[o : o+n] {
				if a := offs[0] + i*s; v == y[a] {
					ties[a]++
				}
			}
		})
		k.plan.rows(func(o int, offs []int) {
			for i, v := range x[o : o+n] {
				if a := offs[0] + i*s; v == y[a] {
					gx[o+i] += g[a] / float32(ties[a])
				}
			}
		})
		for a, j := range k.arg {
			if y[a] != y[a] {
				gx[j] += g[a]
			}
		}
		return nil
	}
	if k.mode == reduceL2 || k.mode == reduceSumSquare {
		// ∂√Σx²/∂x = x/y (0 where y = 0, as PyTorch's norm); ∂Σx²/∂x = 2x.
		x, y := in[0].F32, out[0].F32
		n, s := k.plan.inner, k.plan.innerStride(0)
		k.plan.rows(func(o int, offs []int) {
			for i := range n {
				a := offs[0] + i*s
				d := 2 * x[o+i]
				if k.mode == reduceL2 {
					if y[a] == 0 {
						continue
					}
					d = x[o+i] / y[a]
				}
				gx[o+i] += g[a] * d
			}
		})
		return nil
	}
	inv := float32(1)
	if k.mode == reduceMean {
		inv = 1 / float32(k.count)
	}
	n, s := k.plan.inner, k.plan.innerStride(0)
	k.plan.rows(func(o int, offs []int) {
		a := offs[0]
		for i := range gx[o : o+n] {
			gx[o+i] += g[a+i*s] * inv
		}
	})
	return nil
}

package autodiff

import (
	"errors"
	"fmt"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// Equal, Where and Expand, with numpy broadcasting. Exports use them for
// shape arithmetic (ViT's class token is expanded to the batch through
// Where(Equal(shape, -1), 1, shape)) and for masks; Where passes gradients
// to the branch it selected, Expand sums them over the broadcast axes.
func init() {
	register("Equal", func(*graph.Node, int64) (Kernel, error) { return &equalKernel{}, nil })
	register("Where", func(*graph.Node, int64) (Kernel, error) { return &whereKernel{}, nil })
	register("Expand", func(*graph.Node, int64) (Kernel, error) { return &expandKernel{}, nil })
}

// equalKernel is Equal: a bool tensor, 1 where the operands are equal
// (float NaN equals nothing).
type equalKernel struct {
	NonDifferentiable
	dtype tensor.DType
	plan  *bcastPlan
}

func (k *equalKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("Equal takes 2 inputs")
	}
	if in[0].DType != in[1].DType {
		return nil, fmt.Errorf("input types differ: %s and %s", in[0].DType, in[1].DType)
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	out, err := broadcastShapes(in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, err
	}
	k.dtype, k.plan = in[0].DType, newBcastPlan(out, in[0].Shape, in[1].Shape)
	return []Output{{DType: tensor.Bool, Shape: out}}, nil
}

func (k *equalKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	a, b, z := in[0], in[1], out[0].I64
	sa, sb, n := k.plan.innerStride(0), k.plan.innerStride(1), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i := range n {
			ia, ib := offs[0]+i*sa, offs[1]+i*sb
			var eq bool
			switch k.dtype {
			case tensor.Float32:
				eq = a.F32[ia] == b.F32[ib]
			case tensor.Float64:
				eq = a.F64[ia] == b.F64[ib]
			default:
				eq = a.I64[ia] == b.I64[ib]
			}
			z[o+i] = 0
			if eq {
				z[o+i] = 1
			}
		}
	})
	return nil
}

type whereKernel struct {
	dtype tensor.DType
	plan  *bcastPlan
}

func (k *whereKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 3 || !in[0].Present || !in[1].Present || !in[2].Present {
		return nil, errors.New("Where takes 3 inputs (condition, X, Y)")
	}
	if in[0].DType != tensor.Bool {
		return nil, fmt.Errorf("the condition is %s, want bool", in[0].DType)
	}
	if in[1].DType != in[2].DType {
		return nil, fmt.Errorf("X is %s and Y is %s: want one type", in[1].DType, in[2].DType)
	}
	if err := checkDataDType(in[1].DType); err != nil {
		return nil, err
	}
	out, err := broadcastShapes(in[0].Shape, in[1].Shape, in[2].Shape)
	if err != nil {
		return nil, err
	}
	k.dtype, k.plan = in[1].DType, newBcastPlan(out, in[0].Shape, in[1].Shape, in[2].Shape)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

func (k *whereKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	c, x, y, z := in[0].I64, in[1], in[2], out[0]
	sc, sx, sy, n := k.plan.innerStride(0), k.plan.innerStride(1), k.plan.innerStride(2), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i := range n {
			src, j := y, offs[2]+i*sy
			if c[offs[0]+i*sc] != 0 {
				src, j = x, offs[1]+i*sx
			}
			switch k.dtype {
			case tensor.Float32:
				z.F32[o+i] = src.F32[j]
			case tensor.Float64:
				z.F64[o+i] = src.F64[j]
			default:
				z.I64[o+i] = src.I64[j]
			}
		}
	})
	return nil
}

func (k *whereKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || k.dtype != tensor.Float32 {
		return nil
	}
	c, g := in[0].I64, gout[0].F32
	var gx, gy []float32
	if gin[1] != nil {
		gx = gin[1].F32
	}
	if gin[2] != nil {
		gy = gin[2].F32
	}
	sc, sx, sy, n := k.plan.innerStride(0), k.plan.innerStride(1), k.plan.innerStride(2), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i, gv := range g[o : o+n] {
			if c[offs[0]+i*sc] != 0 {
				if gx != nil {
					gx[offs[1]+i*sx] += gv
				}
			} else if gy != nil {
				gy[offs[2]+i*sy] += gv
			}
		}
	})
	return nil
}

// expandKernel is Expand: X broadcast with a constant shape (numpy rules,
// both ways: a 1 in the shape keeps X's size).
type expandKernel struct {
	dtype tensor.DType
	plan  *bcastPlan
}

func (k *expandKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("Expand takes 2 inputs (input, shape)")
	}
	if err := checkDataDType(in[0].DType); err != nil {
		return nil, err
	}
	sh := in[1].Const
	if sh == nil || !in[1].DType.IsInteger() || len(in[1].Shape) != 1 {
		return nil, errors.New("the shape input must be a constant rank-1 integer tensor (the engine fixes every shape when it compiles)")
	}
	shape := make([]int, len(sh.I64))
	for i, v := range sh.I64 {
		if v < 0 {
			return nil, fmt.Errorf("shape %v has a negative dimension", sh.I64)
		}
		shape[i] = int(v)
	}
	out, err := broadcastShapes(in[0].Shape, shape)
	if err != nil {
		return nil, err
	}
	k.dtype, k.plan = in[0].DType, newBcastPlan(out, in[0].Shape)
	return []Output{{DType: k.dtype, Shape: out}}, nil
}

func (k *expandKernel) Forward(_ *RunContext, in, out []*tensor.Tensor) error {
	x, z := in[0], out[0]
	s, n := k.plan.innerStride(0), k.plan.inner
	k.plan.rows(func(o int, offs []int) {
		for i := range n {
			j := offs[0] + i*s
			switch k.dtype {
			case tensor.Float32:
				z.F32[o+i] = x.F32[j]
			case tensor.Float64:
				z.F64[o+i] = x.F64[j]
			default:
				z.I64[o+i] = x.I64[j]
			}
		}
	})
	return nil
}

func (k *expandKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] != nil && gin[0] != nil && k.dtype == tensor.Float32 {
		k.plan.reduceSumInto(0, gin[0].F32, gout[0].F32)
	}
	return nil
}

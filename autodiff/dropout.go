package autodiff

import (
	"errors"
	"fmt"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("Dropout", newDropout)
}

// dropoutKernel is Dropout. In inference it is the identity (mask all
// true). In training (Program.SetTraining(true), or a true training_mode
// input from opset 12) each element is kept with probability 1-ratio and
// scaled by 1/(1-ratio); the mask is drawn from RunContext.RNG, in element
// order, so a program's seed fixes it. The node's seed attribute is
// ignored: randomness comes from the program. ratio is an attribute before
// opset 12 and an optional input (default 0.5) from opset 12.
type dropoutKernel struct {
	opset      int64
	ratio      float32
	ratioIn    bool // read ratio from input 1 at run time
	trainConst int  // training_mode input: -1 absent/run-time, 0 false, 1 true
	trainIn    bool // read training_mode from input 2 at run time
	isTestAttr bool // opset < 7 is_test=1
	n          int
	maskDType  tensor.DType
	scale      []float32 // per element: 0 or 1/(1-ratio) of the last training Forward
	trained    bool
}

func newDropout(n *graph.Node, opset int64) (Kernel, error) {
	k := &dropoutKernel{opset: opset, ratio: 0.5, trainConst: -1}
	if opset < 12 {
		k.ratio = n.AttrFloat("ratio", 0.5)
		if !(k.ratio >= 0 && k.ratio < 1) {
			return nil, fmt.Errorf("ratio is %v, want 0 <= ratio < 1", k.ratio)
		}
	}
	if opset < 7 && n.AttrInt("is_test", 0) != 0 {
		k.isTestAttr = true
	}
	k.maskDType = tensor.Bool
	if opset < 10 {
		k.maskDType = tensor.Float32
	}
	return k, nil
}

func (k *dropoutKernel) Setup(in []Value) ([]Output, error) {
	if len(in) < 1 || !in[0].Present {
		return nil, errors.New("missing input data")
	}
	if in[0].DType != tensor.Float32 {
		return nil, fmt.Errorf("data is %s; the engine runs Dropout in float32 only", in[0].DType)
	}
	if len(in) > 3 || (k.opset < 12 && len(in) > 1) {
		return nil, fmt.Errorf("%d inputs: Dropout-%d takes %d at most", len(in), k.opset, map[bool]int{true: 3, false: 1}[k.opset >= 12])
	}
	if len(in) > 1 && in[1].Present {
		if tensor.Numel(in[1].Shape) != 1 || in[1].DType != tensor.Float32 {
			return nil, fmt.Errorf("ratio is %s%v, want a float32 scalar", in[1].DType, in[1].Shape)
		}
		if c := in[1].Const; c != nil {
			k.ratio = c.F32[0]
			if !(k.ratio >= 0 && k.ratio < 1) {
				return nil, fmt.Errorf("ratio is %v, want 0 <= ratio < 1", k.ratio)
			}
		} else {
			k.ratioIn = true
		}
	}
	if len(in) > 2 && in[2].Present {
		if tensor.Numel(in[2].Shape) != 1 || !in[2].DType.IsInteger() {
			return nil, fmt.Errorf("training_mode is %s%v, want a bool scalar", in[2].DType, in[2].Shape)
		}
		if c := in[2].Const; c != nil {
			k.trainConst = 0
			if c.I64[0] != 0 {
				k.trainConst = 1
			}
		} else {
			k.trainIn = true
		}
	}
	k.n = tensor.Numel(in[0].Shape)
	k.scale = make([]float32, k.n)
	shape := append([]int(nil), in[0].Shape...)
	return []Output{{DType: tensor.Float32, Shape: shape}, {DType: k.maskDType, Shape: shape}}, nil
}

func (k *dropoutKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	train := ctx.Training || k.trainConst == 1
	if k.trainIn {
		train = train || in[2].I64[0] != 0
	}
	if k.isTestAttr {
		train = false
	}
	ratio := k.ratio
	if k.ratioIn {
		ratio = in[1].F32[0]
		if !(ratio >= 0 && ratio < 1) {
			return fmt.Errorf("ratio input is %v, want 0 <= ratio < 1", ratio)
		}
	}
	if ratio == 0 {
		train = false
	}
	k.trained = train
	x, y := in[0].F32, out[0].F32
	var mask *tensor.Tensor
	if len(out) > 1 {
		mask = out[1]
	}
	if !train {
		copy(y, x)
		if mask != nil {
			for i := range k.n {
				setMask(mask, i, true)
			}
		}
		return nil
	}
	if ctx.RNG == nil {
		return errors.New("training-mode Dropout needs RunContext.RNG")
	}
	s := 1 / (1 - ratio)
	for i, v := range x {
		keep := ctx.RNG.Float32() >= ratio
		if keep {
			k.scale[i] = s
		} else {
			k.scale[i] = 0
		}
		y[i] = v * k.scale[i]
		if mask != nil {
			setMask(mask, i, keep)
		}
	}
	return nil
}

func setMask(m *tensor.Tensor, i int, keep bool) {
	if m.DType == tensor.Float32 {
		if keep {
			m.F32[i] = 1
		} else {
			m.F32[i] = 0
		}
		return
	}
	if keep {
		m.I64[i] = 1
	} else {
		m.I64[i] = 0
	}
}

func (k *dropoutKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil || gin[0] == nil {
		return nil
	}
	dy, dx := gout[0].F32, gin[0].F32
	if !k.trained {
		for i, g := range dy {
			dx[i] += g
		}
		return nil
	}
	for i, g := range dy {
		dx[i] += g * k.scale[i]
	}
	return nil
}

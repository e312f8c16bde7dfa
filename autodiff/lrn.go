package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// LRN, local response normalization across channels (AlexNet, ZFNet,
// Inception v1; Krizhevsky et al. 2012, section 3.3, in ONNX's form):
//
//	s_c = bias + alpha/size · Σ_{c' ∈ W(c)} x_{c'}²,   y_c = x_c · s_c^(-beta)
//
// with W(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to the
// channels. Not in the op list CNN exports need today, but three of the
// conformance light models use it.

func init() {
	register("LRN", func(n *graph.Node, opset int64) (Kernel, error) {
		a := n.Attr("size")
		if a == nil || a.I <= 0 {
			return nil, errors.New("LRN needs a positive size attribute")
		}
		return &lrnKernel{
			size:  int(a.I),
			alpha: float64(n.AttrFloat("alpha", 1e-4)),
			beta:  float64(n.AttrFloat("beta", 0.75)),
			bias:  float64(n.AttrFloat("bias", 1)),
		}, nil
	})
}

type lrnKernel struct {
	size              int
	alpha, beta, bias float64

	n, c, hw int
	scale    []float32 // s from the last Forward, one per element
	tmp      []float64 // Backward scratch, one channel column
}

func (k *lrnKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 1 || !in[0].Present {
		return nil, errors.New("LRN takes 1 input")
	}
	if in[0].DType != tensor.Float32 {
		return nil, fmt.Errorf("element type %s is not supported (float32 is)", in[0].DType)
	}
	x := in[0].Shape
	if len(x) < 2 {
		return nil, fmt.Errorf("input shape %v: want [N, C, ...]", x)
	}
	k.n, k.c, k.hw = x[0], x[1], tensor.Numel(x[2:])
	k.scale = make([]float32, tensor.Numel(x))
	k.tmp = make([]float64, k.c)
	return []Output{{DType: tensor.Float32, Shape: x}}, nil
}

// window returns the channels [lo, hi) of W(c).
func (k *lrnKernel) window(c int) (lo, hi int) {
	return max(c-(k.size-1)/2, 0), min(c+k.size/2+1, k.c)
}

func (k *lrnKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, y := in[0].F32, out[0].F32
	if ctx.Workers <= 1 || k.n == 1 {
		k.forwardRange(0, k.n, x, y)
		return nil
	}
	tensor.Parallel(ctx.Workers, k.n, func(lo, hi int) { k.forwardRange(lo, hi, x, y) })
	return nil
}

// forwardRange computes the samples [lo, hi) of the batch.
func (k *lrnKernel) forwardRange(lo, hi int, x, y []float32) {
	coef := k.alpha / float64(k.size)
	for b := lo; b < hi; b++ {
		base := b * k.c * k.hw
		for p := range k.hw {
			for c := range k.c {
				wlo, whi := k.window(c)
				var sum float64
				for j := wlo; j < whi; j++ {
					v := float64(x[base+j*k.hw+p])
					sum += v * v
				}
				i := base + c*k.hw + p
				s := k.bias + coef*sum
				k.scale[i] = float32(s)
				y[i] = float32(float64(x[i]) * math.Pow(s, -k.beta))
			}
		}
	}
}

// Backward: dL/dx_j = g_j·s_j^(-beta)
//
//	− 2·alpha·beta/size · x_j · Σ_{c : j ∈ W(c)} g_c·x_c·s_c^(-beta-1).
func (k *lrnKernel) Backward(_ *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gin[0] == nil || gout[0] == nil {
		return nil
	}
	x, g, gx := in[0].F32, gout[0].F32, gin[0].F32
	coef := 2 * k.alpha * k.beta / float64(k.size)
	t := k.tmp
	for b := range k.n {
		base := b * k.c * k.hw
		for p := range k.hw {
			for c := range k.c {
				i := base + c*k.hw + p
				s := float64(k.scale[i])
				t[c] = float64(g[i]) * float64(x[i]) * math.Pow(s, -k.beta-1)
			}
			for j := range k.c {
				// c with j ∈ W(c): c ∈ [j - size/2, j + (size-1)/2].
				clo, chi := max(j-k.size/2, 0), min(j+(k.size-1)/2+1, k.c)
				var sum float64
				for c := clo; c < chi; c++ {
					sum += t[c]
				}
				i := base + j*k.hw + p
				s := float64(k.scale[i])
				gx[i] += float32(float64(g[i])*math.Pow(s, -k.beta) - coef*float64(x[i])*sum)
			}
		}
	}
	return nil
}

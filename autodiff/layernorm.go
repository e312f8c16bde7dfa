package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("LayerNormalization", newLayerNorm)
	register("InstanceNormalization", func(n *graph.Node, _ int64) (Kernel, error) {
		return &layerNormKernel{instance: true, eps: float64(n.AttrFloat("epsilon", 1e-5))}, nil
	})
}

// layerNormKernel is LayerNormalization (opset 17): each row of X (the
// axes from axis on) is normalized by its own mean and variance, then
// scaled and shifted elementwise: Y = (X - mean)·InvStdDev·Scale + B, with
// InvStdDev = 1/√(var + epsilon). The statistics are summed in float64
// (stash_type 1 asks for at least float32). The optional outputs Mean and
// InvStdDev hold the rows' statistics; gradients flow through all three.
//
// With instance set it is InstanceNormalization: each (sample, channel)
// plane is a row, and scale and B hold one value per channel (PyTorch
// exports GroupNorm through it).
type layerNormKernel struct {
	instance    bool
	channels    int // instance: C
	axis        int64
	eps         float64
	rows, inner int
	hasBias     bool
	// mean and inv of each row, kept from the forward pass for Backward.
	mean, inv []float32
}

func newLayerNorm(n *graph.Node, _ int64) (Kernel, error) {
	if st := n.AttrInt("stash_type", 1); st != 1 {
		return nil, fmt.Errorf("stash_type %d: only 1 (float32 statistics) is supported", st)
	}
	return &layerNormKernel{axis: n.AttrInt("axis", -1), eps: float64(n.AttrFloat("epsilon", 1e-5))}, nil
}

func (k *layerNormKernel) Setup(in []Value) ([]Output, error) {
	if len(in) < 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("LayerNormalization needs inputs X and Scale")
	}
	x := in[0]
	for i, v := range in {
		if v.Present && v.DType != tensor.Float32 {
			return nil, fmt.Errorf("input %d is %s; the engine runs LayerNormalization in float32 only", i, v.DType)
		}
	}
	if k.instance {
		if len(x.Shape) < 3 {
			return nil, fmt.Errorf("X has shape %v, want [N, C, spatial...]", x.Shape)
		}
		if len(in) < 3 || !in[2].Present {
			return nil, errors.New("InstanceNormalization needs inputs X, scale and B")
		}
		k.channels, k.rows, k.inner = x.Shape[1], x.Shape[0]*x.Shape[1], tensor.Numel(x.Shape[2:])
		for i := 1; i <= 2; i++ {
			if tensor.Numel(in[i].Shape) != k.channels {
				return nil, fmt.Errorf("input %d has shape %v, want [%d] (one value per channel)", i, in[i].Shape, k.channels)
			}
		}
		k.hasBias = true
		k.mean, k.inv = make([]float32, k.rows), make([]float32, k.rows)
		return []Output{{DType: tensor.Float32, Shape: append([]int(nil), x.Shape...)}}, nil
	}
	r := int64(len(x.Shape))
	axis := k.axis
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return nil, fmt.Errorf("axis %d is out of range for X of rank %d", k.axis, r)
	}
	k.rows, k.inner = tensor.Numel(x.Shape[:axis]), tensor.Numel(x.Shape[axis:])
	k.hasBias = len(in) > 2 && in[2].Present
	for i := 1; i < len(in) && i <= 2; i++ {
		if in[i].Present && tensor.Numel(in[i].Shape) != k.inner {
			return nil, fmt.Errorf("input %d has shape %v, want the normalized shape %v", i, in[i].Shape, x.Shape[axis:])
		}
	}
	k.mean, k.inv = make([]float32, k.rows), make([]float32, k.rows)
	stat := append([]int(nil), x.Shape...)
	for i := int(axis); i < len(stat); i++ {
		stat[i] = 1
	}
	return []Output{
		{DType: tensor.Float32, Shape: append([]int(nil), x.Shape...)},
		{DType: tensor.Float32, Shape: stat},
		{DType: tensor.Float32, Shape: append([]int(nil), stat...)},
	}, nil
}

func (k *layerNormKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, scale, y := in[0].F32, in[1].F32, out[0].F32
	var b []float32
	if k.hasBias {
		b = in[2].F32
	}
	tensor.Parallel(ctx.Workers, k.rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*k.inner:][:k.inner], y[r*k.inner:][:k.inner]
			var s float64
			for _, v := range xr {
				s += float64(v)
			}
			mean := s / float64(k.inner)
			var ss float64
			for _, v := range xr {
				d := float64(v) - mean
				ss += d * d
			}
			inv := 1 / math.Sqrt(ss/float64(k.inner)+k.eps)
			k.mean[r], k.inv[r] = float32(mean), float32(inv)
			sr, br, step := k.rowParams(r, scale, b)
			for i, v := range xr {
				t := float32((float64(v) - mean) * inv)
				if br != nil {
					yr[i] = t*sr[i*step] + br[i*step]
				} else {
					yr[i] = t * sr[i*step]
				}
			}
		}
	})
	for i, st := range [][]float32{k.mean, k.inv} {
		if i+1 < len(out) && out[i+1] != nil {
			copy(out[i+1].F32, st)
		}
	}
	return nil
}

// rowParams returns the scale and bias that row r reads and the step of
// element i's index into them: the whole vectors with step 1
// (LayerNormalization), or row r's channel's one value with step 0
// (InstanceNormalization).
func (k *layerNormKernel) rowParams(r int, scale, b []float32) (sr, br []float32, step int) {
	if !k.instance {
		return scale, b, 1
	}
	c := r % k.channels
	sr = scale[c : c+1]
	if b != nil {
		br = b[c : c+1]
	}
	return sr, br, 0
}

func (k *layerNormKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	// dMean and dInvStdDev: the gradients reaching the optional outputs.
	var dm, dv []float32
	if len(gout) > 1 && gout[1] != nil {
		dm = gout[1].F32
	}
	if len(gout) > 2 && gout[2] != nil {
		dv = gout[2].F32
	}
	if gout[0] == nil && dm == nil && dv == nil {
		return nil
	}
	x, scale := in[0].F32, in[1].F32
	var dy []float32
	if gout[0] != nil {
		dy = gout[0].F32
	}
	if gin[0] != nil {
		// dX = inv·(g - mean(g) - x̂·mean(g·x̂)) with g = dY·Scale, plus
		// dMean/n and dInvStdDev·(-inv³·(x - mean)/n) (inv = (var+ε)^-½).
		dx := gin[0].F32
		n := float64(k.inner)
		tensor.Parallel(ctx.Workers, k.rows, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				xr, dr := x[r*k.inner:][:k.inner], dx[r*k.inner:][:k.inner]
				mean, inv := float64(k.mean[r]), float64(k.inv[r])
				var sg, sgx, cm, cv float64
				var gr []float32
				sr, _, step := k.rowParams(r, scale, nil)
				if dy != nil {
					gr = dy[r*k.inner:][:k.inner]
					for i, v := range xr {
						g := float64(gr[i]) * float64(sr[i*step])
						sg += g
						sgx += g * (float64(v) - mean) * inv
					}
					sg /= n
					sgx /= n
				}
				if dm != nil {
					cm = float64(dm[r]) / n
				}
				if dv != nil {
					cv = -float64(dv[r]) * inv * inv * inv / n
				}
				for i, v := range xr {
					d := float64(v) - mean
					var t float64
					if gr != nil {
						t = inv * (float64(gr[i])*float64(sr[i*step]) - sg - d*inv*sgx)
					}
					dr[i] += float32(t + cm + cv*d)
				}
			}
		})
	}
	if dy == nil {
		return nil
	}
	// dScale and dB: sums over the rows, in row order, per element.
	var ds, db []float32
	if gin[1] != nil {
		ds = gin[1].F32
	}
	if k.hasBias && len(gin) > 2 && gin[2] != nil {
		db = gin[2].F32
	}
	if ds == nil && db == nil {
		return nil
	}
	if k.instance {
		// Per channel: its planes in sample order.
		tensor.Parallel(ctx.Workers, k.channels, func(lo, hi int) {
			for c := lo; c < hi; c++ {
				var s1, s2 float64
				for r := c; r < k.rows; r += k.channels {
					mean, inv := float64(k.mean[r]), float64(k.inv[r])
					for i, g := range dy[r*k.inner : (r+1)*k.inner] {
						s1 += float64(g) * (float64(x[r*k.inner+i]) - mean) * inv
						s2 += float64(g)
					}
				}
				if ds != nil {
					ds[c] += float32(s1)
				}
				if db != nil {
					db[c] += float32(s2)
				}
			}
		})
		return nil
	}
	tensor.Parallel(ctx.Workers, k.inner, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			var s1, s2 float64
			for r := range k.rows {
				g := float64(dy[r*k.inner+i])
				s1 += g * (float64(x[r*k.inner+i]) - float64(k.mean[r])) * float64(k.inv[r])
				s2 += g
			}
			if ds != nil {
				ds[i] += float32(s1)
			}
			if db != nil {
				db[i] += float32(s2)
			}
		}
	})
	return nil
}

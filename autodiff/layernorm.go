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
// InvStdDev = 1/√(var + epsilon). The mean is summed in float64 and the
// variance around it in float32 runs totalled in float64 (stash_type 1
// asks for at least float32); the normalization subtracts the float64
// mean as two float32 parts, so rows far from zero stay accurate. The
// optional outputs Mean and InvStdDev hold the rows' statistics; gradients
// flow through all three.
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
	// rowSg and rowSgx: InstanceNormalization's Σ dY and Σ dY·(x - mean)
	// of each plane; acc1 and acc2: LayerNormalization's dScale and dB
	// sums of each element (Backward's scratch).
	rowSg, rowSgx []float64
	acc1, acc2    []float64
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
		k.rowSg, k.rowSgx = make([]float64, k.rows), make([]float64, k.rows)
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
	k.acc1, k.acc2 = make([]float64, k.inner), make([]float64, k.inner)
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
	n := float64(k.inner)
	tensor.Parallel(ctx.Workers, k.rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*k.inner:][:k.inner], y[r*k.inner:][:k.inner]
			// The float64 mean as mean + lo in float32: x - mean is exact
			// for x near the mean, and subtracting lo then keeps rows far
			// from zero accurate (offset 20, spread 0.05: within 1e-6 of
			// float64, TestLayerNormalizationOffsetRows).
			m64 := sum64(xr) / n
			mean := float32(m64)
			lo := float32(m64 - float64(mean))
			inv := float32(1 / math.Sqrt(bnSumSqDev(xr, mean)/n+k.eps))
			k.mean[r], k.inv[r] = mean, inv
			if k.instance {
				// One scale and bias per plane: q·(x - mean) + B - q·lo
				// through the streaming kernel (the first term is 0·x).
				c := r % k.channels
				q := inv * scale[c]
				tensor.Affine2(xr, xr, 0, q, float32(float64(b[c])-float64(q)*float64(lo)), mean, yr, false)
				continue
			}
			scale := scale[:len(xr)]
			if b == nil {
				for i, v := range xr {
					yr[i] = (v - mean - lo) * inv * scale[i]
				}
				continue
			}
			b := b[:len(xr)]
			for i, v := range xr {
				yr[i] = (v-mean-lo)*inv*scale[i] + b[i]
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
	var ds, db []float32
	if dy != nil && gin[1] != nil {
		ds = gin[1].F32
	}
	if dy != nil && k.hasBias && len(gin) > 2 && gin[2] != nil {
		db = gin[2].F32
	}
	var dx []float32
	if gin[0] != nil {
		dx = gin[0].F32
	}
	if dx == nil && !k.instance {
		return k.paramGrads(ctx, x, dy, ds, db)
	}
	// Per row: g = dY·Scale, its sums Σg and Σg·(x - mean) (float32 runs
	// totalled in float64, as BatchNormalization sums), then
	// dX = inv·(g - mean(g) - x̂·mean(g·x̂)) + dMean/n
	// + dInvStdDev·(-inv³·(x - mean)/n), with x̂ = (x - mean)·inv.
	n := float64(k.inner)
	tensor.Parallel(ctx.Workers, k.rows, func(lo, hi int) {
		var buf [bnBlock]float32
		for r := lo; r < hi; r++ {
			off := r * k.inner
			xr := x[off:][:k.inner]
			mean, inv := k.mean[r], k.inv[r]
			var sg, sgx float64
			if dy != nil {
				gr := dy[off:][:k.inner]
				if k.instance {
					// Kept unscaled for dScale and dB (paramGrads).
					sg, sgx = bnGradSums(gr, nil, xr, mean)
					k.rowSg[r], k.rowSgx[r] = sg, sgx
					c := float64(scale[r%k.channels])
					sg, sgx = c*sg, c*sgx
				} else {
					for i := 0; i < k.inner; i += bnBlock {
						e := min(i+bnBlock, k.inner)
						gs := scaled(buf[:e-i], gr[i:e], scale[i:e])
						a, b := bnGradSums(gs, nil, xr[i:e], mean)
						sg += a
						sgx += b
					}
				}
			}
			if dx == nil {
				continue
			}
			// dX = p·g + q·(x - mean) + c with p = inv (times the plane's
			// scale for InstanceNormalization).
			fi := float64(inv)
			q := -fi * fi * fi * sgx / n
			c := -fi * sg / n
			if dm != nil {
				c += float64(dm[r]) / n
			}
			if dv != nil {
				q -= float64(dv[r]) * fi * fi * fi / n
			}
			dr := dx[off:][:k.inner]
			switch {
			case dy == nil:
				tensor.Affine2(xr, xr, 0, float32(q), float32(c), mean, dr, true)
			case k.instance:
				tensor.Affine2(dy[off:][:k.inner], xr, inv*scale[r%k.channels], float32(q), float32(c), mean, dr, true)
			default:
				gr := dy[off:][:k.inner]
				for i := 0; i < k.inner; i += bnBlock {
					e := min(i+bnBlock, k.inner)
					gs := buf[:e-i]
					if k.inner > bnBlock {
						// A row in one run left g·Scale in buf from the sums.
						scaled(gs, gr[i:e], scale[i:e])
					}
					tensor.Affine2(gs, xr[i:e], inv, float32(q), float32(c), mean, dr[i:e], true)
				}
			}
		}
	})
	return k.paramGrads(ctx, x, dy, ds, db)
}

// sum64 is Σ x in float64, four running sums: a float32 sum of a row
// offset far from zero would lose the digits its normalization keeps.
func sum64(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// scaled sets buf = g·s elementwise and returns it.
func scaled(buf, g, s []float32) []float32 {
	g, s = g[:len(buf)], s[:len(buf)]
	for i := range buf {
		buf[i] = g[i] * s[i]
	}
	return buf
}

// paramGrads adds dScale and dB (either may be nil) given dY.
func (k *layerNormKernel) paramGrads(ctx *RunContext, x, dy, ds, db []float32) error {
	if dy == nil || ds == nil && db == nil {
		return nil
	}
	if k.instance {
		// Per channel: its planes' sums Σ dY and Σ dY·(x - mean), which
		// Backward left in rowSg and rowSgx, in sample order.
		for c := range k.channels {
			var s1, s2 float64
			for r := c; r < k.rows; r += k.channels {
				s1 += float64(k.inv[r]) * k.rowSgx[r]
				s2 += k.rowSg[r]
			}
			if ds != nil {
				ds[c] += float32(s1)
			}
			if db != nil {
				db[c] += float32(s2)
			}
		}
		return nil
	}
	// Per element: sums over the rows in row order, each worker over its
	// own run of elements, reading the rows in memory order.
	tensor.Parallel(ctx.Workers, k.inner, func(lo, hi int) {
		s1, s2 := k.acc1[lo:hi], k.acc2[lo:hi]
		clear(s1)
		clear(s2)
		for r := range k.rows {
			off := r * k.inner
			tensor.NormParamSums(dy[off+lo:off+hi], x[off+lo:off+hi], float64(k.mean[r]), float64(k.inv[r]), s1, s2)
		}
		if ds != nil {
			for i, v := range s1 {
				ds[lo+i] += float32(v)
			}
		}
		if db != nil {
			for i, v := range s2 {
				db[lo+i] += float32(v)
			}
		}
	})
	return nil
}

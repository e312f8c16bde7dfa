package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("BatchNormalization", newBatchNorm)
}

// batchNormKernel is BatchNormalization (opsets 1-15).
//
// Inference (the default) normalizes with the running mean and variance
// inputs. Training mode, selected by Program.SetTraining(true) or by the
// opset-14+ training_mode=1 attribute, normalizes with the batch mean and
// biased batch variance (per channel, over batch and spatial axes, as ONNX
// defines them) and computes new running statistics
// running = momentum·running + (1-momentum)·batch. Those go to the optional
// outputs (running_mean/running_var from opset 14; mean, var, saved_mean,
// saved_inv_std before); and when the program is in training mode
// (RunContext.Training) and the statistics are not frozen, they are also
// written back into the mean and var input tensors, which for a compiled
// model are the graph's initializers, so that an exported model carries
// them. No gradient flows through the running-statistics outputs.
type batchNormKernel struct {
	eps, momentum float32
	trainingAttr  bool
	nOut          int
	opset         int64

	n, c, plane int
	mean, istd  []float32 // per channel, of the last Forward
	trained     bool      // the last Forward used batch statistics
	// Per-channel scratch of the passes (each channel is written by the
	// one worker that owns its block): float64 sums, float32 coefficients.
	sum1, sum2 []float64
	coef       [3][]float32
	// fwd: the last Forward's coefficients (y = fwd[0]·x + fwd[1]), which
	// the fused Relu's backward uses to recompute z from x instead of
	// reading it (reluFromX).
	fwd [2][]float32

	// relu: the Relu that was the only reader of output 0 is fused into
	// this kernel (Compile, fuseRelu): output 0 then holds the
	// Relu's output z = max(y, 0), and the backward masks the gradient it
	// receives (z's) by z as the Relu would have. Same bits as the two
	// kernels; the one exception is the inference-mode gradient where an
	// output is +Inf (NaN instead of a finite value there).
	relu bool
}

func newBatchNorm(n *graph.Node, opset int64) (Kernel, error) {
	k := &batchNormKernel{
		eps:      n.AttrFloat("epsilon", 1e-5),
		momentum: n.AttrFloat("momentum", 0.9),
		nOut:     len(n.Outputs),
		opset:    opset,
	}
	if !(k.eps >= 0) {
		return nil, fmt.Errorf("epsilon is %v, want >= 0", k.eps)
	}
	if opset < 9 && n.AttrInt("spatial", 1) != 1 {
		return nil, errors.New("spatial=0 (per-activation statistics) is not supported")
	}
	switch t := n.AttrInt("training_mode", 0); t {
	case 0:
	case 1:
		k.trainingAttr = true
	default:
		return nil, fmt.Errorf("training_mode is %d, want 0 or 1", t)
	}
	// Before opset 14 the form with statistics outputs is the training
	// one (ONNX "output case #1"), which onnxruntime runs on batch
	// statistics whatever the mode.
	if opset < 14 && k.nOut > 1 {
		k.trainingAttr = true
	}
	if opset >= 14 && k.nOut > 3 {
		return nil, fmt.Errorf("%d outputs, BatchNormalization-%d has at most 3", k.nOut, opset)
	}
	if k.nOut > 5 {
		return nil, fmt.Errorf("%d outputs, BatchNormalization has at most 5", k.nOut)
	}
	return k, nil
}

func (k *batchNormKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 5 {
		return nil, fmt.Errorf("%d inputs, want 5 (X, scale, B, input_mean, input_var)", len(in))
	}
	for i, v := range in {
		if !v.Present {
			return nil, fmt.Errorf("input %d is missing; all 5 are required", i)
		}
		if v.DType != tensor.Float32 {
			return nil, fmt.Errorf("input %d is %s; the engine runs BatchNormalization in float32 only", i, v.DType)
		}
	}
	x := in[0].Shape
	if len(x) < 2 {
		return nil, fmt.Errorf("X has shape %v, want [N, C, ...]", x)
	}
	k.n, k.c = x[0], x[1]
	k.plane = tensor.Numel(x[2:])
	for i, name := range []string{"scale", "B", "input_mean", "input_var"} {
		if s := in[i+1].Shape; len(s) != 1 || s[0] != k.c {
			return nil, fmt.Errorf("%s has shape %v, want [%d] (the channels of X %v)", name, s, k.c, x)
		}
	}
	k.mean = make([]float32, k.c)
	k.istd = make([]float32, k.c)
	k.sum1, k.sum2 = make([]float64, k.c), make([]float64, k.c)
	for i := range k.coef {
		k.coef[i] = make([]float32, k.c)
	}
	k.fwd = [2][]float32{make([]float32, k.c), make([]float32, k.c)}
	outs := []Output{{DType: tensor.Float32, Shape: append([]int(nil), x...)}}
	for i := 1; i < k.nOut; i++ {
		outs = append(outs, Output{DType: tensor.Float32, Shape: []int{k.c}})
	}
	return outs, nil
}

// assignsGrad: BatchNormalization assigns dX when it is fresh.
func (k *batchNormKernel) assignsGrad(i int) bool { return i == 0 }

// bnBlockBytes bounds the data one block of channels reads in a pass
// (three arrays of N planes per channel), so that a block's second pass
// finds it in the core's cache. A variable for the tests.
var bnBlockBytes = 768 << 10

// channelBlock is the number of channels per block: the passes run over
// blocks of consecutive channels, sample by sample, so that each sample's
// planes of a block are one contiguous run (small planes read one by one
// across the whole tensor leave the hardware prefetchers little to do).
// Each channel's sums still add its planes in sample order, so the
// results do not depend on the block size or the worker count.
func (k *batchNormKernel) channelBlock() int {
	return max(1, bnBlockBytes/(12*k.n*k.plane))
}

// planes reports whether the passes run a block of one sample with one
// planes call (tensor.SumPlanes and friends) instead of a call per plane:
// when a plane fits in one bnBlock, which keeps each plane's float32 sum
// the same run (same bits either way).
func (k *batchNormKernel) planes() bool { return bnPlanesCalls && k.plane <= bnBlock }

// reluFromX reports whether the backward recomputes the fused Relu's
// output from x and the forward coefficients instead of reading z (one
// array fewer in its two memory-bound passes, the same bits): planes
// calls, a fused Relu, and training mode (the inference-mode backward
// keeps its own path).
func (k *batchNormKernel) reluFromX(z []float32) bool {
	return z != nil && k.trained && bnReluFromX && k.planes()
}

// bnReluFromX turns the recomputation off for the benchmark that compares
// it with reading z.
var bnReluFromX = true

// bnPlanesCalls turns the planes calls off for the benchmark that
// compares them with a call per plane.
var bnPlanesCalls = true

// forEachBlock calls fn(c0, c1) for the channel blocks, spread over the
// workers.
func (k *batchNormKernel) forEachBlock(workers int, fn func(c0, c1 int)) {
	cb := k.channelBlock()
	tensor.ForEach(workers, (k.c+cb-1)/cb, func(_, b int) { fn(b*cb, min(k.c, (b+1)*cb)) })
}

func (k *batchNormKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, scale, bias, rmean, rvar := in[0].F32, in[1].F32, in[2].F32, in[3].F32, in[4].F32
	y := out[0].F32
	k.trained = ctx.Training || k.trainingAttr
	update := ctx.Training && !ctx.FreezeRunningStats
	nm := float64(k.n * k.plane)
	pl := k.plane
	ca, cb := k.fwd[0], k.fwd[1]
	k.forEachBlock(ctx.Workers, func(c0, c1 int) {
		mean, v := k.sum1[c0:c1], k.sum2[c0:c1]
		if k.trained {
			clear(mean)
			clear(v)
			for n := range k.n {
				xs := x[(n*k.c+c0)*pl : (n*k.c+c1)*pl]
				if k.planes() {
					tensor.SumPlanes(xs, pl, mean)
					continue
				}
				for i := range mean {
					mean[i] += bnSum(xs[i*pl : (i+1)*pl])
				}
			}
			m32 := k.mean[c0:c1]
			for i := range mean {
				mean[i] /= nm
				m32[i] = float32(mean[i])
			}
			for n := range k.n {
				xs := x[(n*k.c+c0)*pl : (n*k.c+c1)*pl]
				if k.planes() {
					tensor.SumSqDevPlanes(xs, pl, m32, v)
					continue
				}
				for i := range v {
					v[i] += bnSumSqDev(xs[i*pl:(i+1)*pl], m32[i])
				}
			}
			for i := range v {
				v[i] /= nm
			}
		} else {
			for c := c0; c < c1; c++ {
				mean[c-c0], v[c-c0] = float64(rmean[c]), float64(rvar[c])
			}
		}
		for c := c0; c < c1; c++ {
			m, vc := mean[c-c0], v[c-c0]
			istd := 1 / math.Sqrt(vc+float64(k.eps))
			k.mean[c], k.istd[c] = float32(m), float32(istd)
			ca[c] = float32(float64(scale[c]) * istd)
			cb[c] = float32(float64(bias[c]) - m*float64(scale[c])*istd)
		}
		for n := range k.n {
			off := (n*k.c + c0) * pl
			if k.planes() {
				end := off + (c1-c0)*pl
				tensor.AffinePlanes(x[off:end], pl, ca[c0:c1], cb[c0:c1], y[off:end], k.relu)
				continue
			}
			for c := c0; c < c1; c++ {
				if k.relu {
					tensor.AffineRelu(x[off:off+pl], ca[c], cb[c], y[off:off+pl])
				} else {
					tensor.Affine(x[off:off+pl], ca[c], cb[c], y[off:off+pl])
				}
				off += pl
			}
		}
		if !k.trained {
			return
		}
		mom := float64(k.momentum)
		if n := ctx.StatsAverage; n > 0 {
			mom = float64(n-1) / float64(n)
		}
		for c := c0; c < c1; c++ {
			m, vc := mean[c-c0], v[c-c0]
			newMean := float32(mom*float64(rmean[c]) + (1-mom)*m)
			newVar := float32(mom*float64(rvar[c]) + (1-mom)*vc)
			if k.nOut > 1 && out[1] != nil {
				out[1].F32[c] = newMean
			}
			if k.nOut > 2 && out[2] != nil {
				out[2].F32[c] = newVar
			}
			if k.nOut > 3 && out[3] != nil {
				out[3].F32[c] = float32(m)
			}
			if k.nOut > 4 && out[4] != nil {
				out[4].F32[c] = k.istd[c]
			}
			if update {
				rmean[c], rvar[c] = newMean, newVar
			}
		}
	})
	if !k.trained {
		// Inference-mode extra outputs (opset < 14 allows them) pass the
		// running statistics through.
		for i := 1; i < min(k.nOut, 3); i++ {
			if out[i] != nil {
				copy(out[i].F32, in[i+2].F32)
			}
		}
	}
	return nil
}

func (k *batchNormKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	fresh := ctx.fresh(0)
	x, scale, dy := in[0].F32, in[1].F32, gout[0].F32
	var z []float32 // the fused Relu's output, whose zeros mask dy
	if k.relu {
		z = out[0].F32
	}
	grad := func(i int) []float32 {
		if i < len(gin) && gin[i] != nil {
			return gin[i].F32
		}
		return nil
	}
	dx, dscale, dbias, dmean, dvar := grad(0), grad(1), grad(2), grad(3), grad(4)
	nm := float64(k.n * k.plane)
	pl := k.plane
	ca, cb, cc := k.coef[0], k.coef[1], k.coef[2]
	k.forEachBlock(ctx.Workers, func(c0, c1 int) {
		// Σ dy and Σ dy·x̂ per channel.
		sdy, sdyx := k.sum1[c0:c1], k.sum2[c0:c1]
		clear(sdy)
		clear(sdyx)
		for n := range k.n {
			off := (n*k.c + c0) * pl
			if k.planes() {
				end := off + (c1-c0)*pl
				if k.reluFromX(z) {
					tensor.GradSumsReluXPlanes(dy[off:end], x[off:end], pl, k.fwd[0][c0:c1], k.fwd[1][c0:c1], k.mean[c0:c1], sdy, sdyx)
					continue
				}
				var zs []float32
				if z != nil {
					zs = z[off:end]
				}
				tensor.GradSumsPlanes(dy[off:end], zs, x[off:end], pl, k.mean[c0:c1], sdy, sdyx)
				continue
			}
			for c := c0; c < c1; c++ {
				var zs []float32
				if z != nil {
					zs = z[off : off+pl]
				}
				a, b := bnGradSums(dy[off:off+pl], zs, x[off:off+pl], k.mean[c])
				sdy[c-c0] += a
				sdyx[c-c0] += b
				off += pl
			}
		}
		for c := c0; c < c1; c++ {
			istd := float64(k.istd[c])
			sy, syx := sdy[c-c0], sdyx[c-c0]*istd
			if dscale != nil {
				dscale[c] += float32(syx)
			}
			if dbias != nil {
				dbias[c] += float32(sy)
			}
			sc := float64(scale[c])
			if !k.trained {
				if dmean != nil {
					dmean[c] += float32(-sc * istd * sy)
				}
				if dvar != nil {
					// d/dvar of (x-mean)(var+eps)^-1/2 = -(x-mean)/2 · istd³.
					dvar[c] += float32(-0.5 * sc * istd * istd * syx)
				}
				ca[c], cb[c], cc[c] = float32(sc*istd), 0, 0
				continue
			}
			// dx = scale·istd · (dy - mean(dy) - x̂·mean(dy·x̂)).
			a := float32(sc * istd)
			mdy := float32(sy / nm)
			mdyx := float32(syx / nm * istd) // multiplies (x - mean)
			ca[c], cb[c], cc[c] = a, -a*mdyx, -a*mdy
		}
		if dx == nil {
			return
		}
		for n := range k.n {
			off := (n*k.c + c0) * pl
			if k.reluFromX(z) {
				end := off + (c1-c0)*pl
				tensor.Affine2ReluXPlanes(dy[off:end], x[off:end], pl, k.fwd[0][c0:c1], k.fwd[1][c0:c1], ca[c0:c1], cb[c0:c1], cc[c0:c1], k.mean[c0:c1], dx[off:end], !fresh)
				continue
			}
			if k.trained && k.planes() {
				end := off + (c1-c0)*pl
				var zs []float32
				if z != nil {
					zs = z[off:end]
				}
				tensor.Affine2Planes(dy[off:end], zs, x[off:end], pl, ca[c0:c1], cb[c0:c1], cc[c0:c1], k.mean[c0:c1], dx[off:end], !fresh)
				continue
			}
			for c := c0; c < c1; c++ {
				g, d := dy[off:off+pl], dx[off:off+pl]
				switch {
				case !k.trained && z != nil:
					zz := z[off : off+pl]
					tensor.Affine2Relu(g, zz, zz, ca[c], 0, 0, 0, d, !fresh)
				case !k.trained:
					tensor.Affine2(g, g, ca[c], 0, 0, 0, d, !fresh)
				case z != nil:
					tensor.Affine2Relu(g, z[off:off+pl], x[off:off+pl], ca[c], cb[c], cc[c], k.mean[c], d, !fresh)
				default:
					tensor.Affine2(g, x[off:off+pl], ca[c], cb[c], cc[c], k.mean[c], d, !fresh)
				}
				off += pl
			}
		}
	})
	return nil
}

// bnBlock is the length of the runs that the BatchNormalization sums
// accumulate in float32 (tensor.SumF32 and friends: 16 independent lanes
// with AVX2, 4 in the Go loop, which keeps them throughput-bound rather
// than waiting on each add) before adding them to a float64 total: the
// float32 rounding error stays below bnBlock/4·2^-24 ≈ 1.5e-5 relative per
// block, far below what training notices, and the totals over batch and
// pixels are exact to float64.
const bnBlock = 1024

// bnSum is Σ x.
func bnSum(x []float32) float64 {
	var t float64
	for len(x) > 0 {
		b := x[:min(len(x), bnBlock)]
		x = x[len(b):]
		t += float64(tensor.SumF32(b))
	}
	return t
}

// bnSumSqDev is Σ (x - mean)².
func bnSumSqDev(x []float32, mean float32) float64 {
	var t float64
	for len(x) > 0 {
		b := x[:min(len(x), bnBlock)]
		x = x[len(b):]
		t += float64(tensor.SumSqDevF32(b, mean))
	}
	return t
}

// bnGradSums is Σ g and Σ g·(x - mean), with g masked by the Relu output
// z when z is not empty (a fused Relu).
func bnGradSums(g, z, x []float32, mean float32) (sg, sgx float64) {
	for len(g) > 0 {
		n := min(len(g), bnBlock)
		var a, b float32
		if len(z) > 0 {
			a, b = tensor.GradSumsReluF32(g[:n], z[:n], x[:n], mean)
			z = z[n:]
		} else {
			a, b = tensor.GradSumsF32(g[:n], x[:n], mean)
		}
		g, x = g[n:], x[n:]
		sg += float64(a)
		sgx += float64(b)
	}
	return sg, sgx
}

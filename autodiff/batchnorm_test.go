package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// coreBNInputs returns X [2,3,4,5] and scale, B, mean, var (var > 0).
func coreBNInputs(rng *rand.Rand, x ...int) []*tensor.Tensor {
	if x == nil {
		x = []int{2, 3, 4, 5}
	}
	c := x[1]
	v := randomTensor(rng, c)
	for i := range v.F32 {
		v.F32[i] = 0.5 + v.F32[i]*v.F32[i]
	}
	return []*tensor.Tensor{randomTensor(rng, x...), randomTensor(rng, c), randomTensor(rng, c), randomTensor(rng, c), v}
}

func TestBatchNormInference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	in := coreBNInputs(rng)
	out, err := runKernel(newTestNode("BatchNormalization", 5, 1, floatAttr("epsilon", 1e-3)), 15, in...)
	if err != nil {
		t.Fatal(err)
	}
	x, sc, b, m, v := in[0], in[1].F32, in[2].F32, in[3].F32, in[4].F32
	for i, got := range out[0].F32 {
		c := (i / 20) % 3
		want := (float64(x.F32[i])-float64(m[c]))/math.Sqrt(float64(v[c])+1e-3)*float64(sc[c]) + float64(b[c])
		// float32 arithmetic on values of magnitude ~1.
		if math.Abs(float64(got)-want) > 1e-5 {
			t.Fatalf("y[%d] = %v, want %v", i, got, want)
		}
	}
}

func TestBatchNormTraining(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	in := coreBNInputs(rng)
	rm0, rv0 := append([]float32(nil), in[3].F32...), append([]float32(nil), in[4].F32...)
	node := newTestNode("BatchNormalization", 5, 3, intAttr("training_mode", 1), floatAttr("momentum", 0.8))
	kern, outs := setupKernel(t, node, 15, in, nil)
	outT := []*tensor.Tensor{tensor.New(outs[0].Shape...), tensor.New(3), tensor.New(3)}
	// The attribute alone: batch statistics, running stats to the outputs,
	// inputs untouched.
	if err := kern.Forward(&RunContext{Workers: 2}, in, outT); err != nil {
		t.Fatal(err)
	}
	x := in[0].F32
	for c := range 3 {
		var mean, sq float64
		var ym, yv float64
		for n := range 2 {
			for p := range 20 {
				v := float64(x[(n*3+c)*20+p])
				mean += v / 40
				sq += v * v / 40
				yv0 := (float64(outT[0].F32[(n*3+c)*20+p]) - float64(in[2].F32[c])) / float64(in[1].F32[c])
				ym += yv0 / 40
				yv += yv0 * yv0 / 40
			}
		}
		variance := sq - mean*mean
		// Normalized values have mean 0 and variance var/(var+eps).
		if math.Abs(ym) > 1e-5 || math.Abs(yv-variance/(variance+1e-5)) > 1e-4 {
			t.Errorf("channel %d: normalized mean %v, variance %v; want 0, %v", c, ym, yv, variance/(variance+1e-5))
		}
		wantRM := 0.8*float64(rm0[c]) + 0.2*mean
		wantRV := 0.8*float64(rv0[c]) + 0.2*variance
		if math.Abs(float64(outT[1].F32[c])-wantRM) > 1e-5 || math.Abs(float64(outT[2].F32[c])-wantRV) > 1e-5 {
			t.Errorf("channel %d: running mean, var = %v, %v; want %v, %v", c, outT[1].F32[c], outT[2].F32[c], wantRM, wantRV)
		}
		if in[3].F32[c] != rm0[c] || in[4].F32[c] != rv0[c] {
			t.Errorf("channel %d: running stats input changed without RunContext.Training", c)
		}
	}
	// Program training mode: the running statistics are updated in place,
	// unless frozen.
	if err := kern.Forward(&RunContext{Workers: 1, Training: true, FreezeRunningStats: true}, in, outT); err != nil {
		t.Fatal(err)
	}
	if in[3].F32[0] != rm0[0] {
		t.Errorf("frozen running mean changed: %v, want %v", in[3].F32[0], rm0[0])
	}
	if err := kern.Forward(&RunContext{Workers: 1, Training: true}, in, outT); err != nil {
		t.Fatal(err)
	}
	for c := range 3 {
		if in[3].F32[c] != outT[1].F32[c] || in[4].F32[c] != outT[2].F32[c] {
			t.Errorf("channel %d: running stats %v, %v after a training Forward, want %v, %v", c, in[3].F32[c], in[4].F32[c], outT[1].F32[c], outT[2].F32[c])
		}
	}
}

func TestBatchNormGradients(t *testing.T) {
	tests := []struct {
		name     string
		opset    int64
		attrs    []*graph.Attribute
		training bool
		x        []int
		wrt      []int
	}{
		{"inference", 15, nil, false, nil, []int{0, 1, 2, 3, 4}},
		{"inference-2d", 9, nil, false, []int{4, 3}, []int{0, 1, 2, 3, 4}},
		{"program-training", 15, nil, true, nil, []int{0, 1, 2}},
		{"attr-training", 15, []*graph.Attribute{intAttr("training_mode", 1)}, false, nil, []int{0, 1, 2}},
		{"training-opset9", 9, nil, true, []int{3, 2, 2, 3}, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 3))
			gradCheckWith(t, gradCheckConfig{
				Node:     newTestNode("BatchNormalization", 5, 1, tt.attrs...),
				Opset:    tt.opset,
				Inputs:   coreBNInputs(rng, tt.x...),
				Wrt:      tt.wrt,
				Training: tt.training,
				Outputs:  []int{0},
			})
		})
	}
}

func TestBatchNormSetupErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	in := coreBNInputs(rng)
	in[1] = randomTensor(rng, 4) // wrong channel count
	if _, _, err := trySetupKernel(newTestNode("BatchNormalization", 5, 1), 15, in, nil); err == nil {
		t.Error("BatchNormalization with a scale of 4 channels for 3: no error")
	}
	if _, err := newBatchNorm(newTestNode("BatchNormalization", 5, 1, intAttr("training_mode", 2)), 15); err == nil {
		t.Error("training_mode=2: no error")
	}
}

// TestBatchNormBlockedMatchesPerChannel: the channel-block passes give the
// same bits as the per-channel loops (forward outputs and statistics,
// running statistics, every gradient), for planes below and above the
// summation block, with and without the fused Relu, in training and
// inference mode, assigning and adding dX, with 1 and 3 workers.
func TestBatchNormBlockedMatchesPerChannel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	type run struct{ outs, grads [][]float32 }
	for _, shape := range [][]int{{3, 5, 4, 5}, {16, 40, 8, 8}, {32, 70, 4, 4}, {2, 3, 33, 33}} {
		in := coreBNInputs(rng, shape...)
		dyT := randomTensor(rng, shape...)
		for _, relu := range []bool{false, true} {
			for _, training := range []bool{true, false} {
				for _, fresh := range []bool{true, false} {
					for _, workers := range []int{1, 3} {
						// Blocks of the default size (one block here), of 2
						// channels and of 1.
						for _, blockBytes := range []int{bnBlockBytes, 2 * 12 * shape[0] * shape[2] * shape[3], 1} {
							exec := func(perChannel bool) run {
								ins := make([]*tensor.Tensor, len(in))
								for i, x := range in {
									ins[i] = x.Clone()
								}
								node := newTestNode("BatchNormalization", 5, 3, floatAttr("momentum", 0.8))
								kern, outs := setupKernel(t, node, 15, ins, nil)
								bk := kern.(*batchNormKernel)
								bk.relu = relu
								fwd, bwd := bk.Forward, bk.Backward
								if perChannel {
									fwd, bwd = bk.forwardPerChannel, bk.backwardPerChannel
								}
								outT := []*tensor.Tensor{tensor.New(outs[0].Shape...), tensor.New(shape[1]), tensor.New(shape[1])}
								ctx := &RunContext{Workers: workers, Training: training}
								if err := fwd(ctx, ins, outT); err != nil {
									t.Fatal(err)
								}
								grads := []*tensor.Tensor{tensor.New(shape...), tensor.New(shape[1]), tensor.New(shape[1]), tensor.New(shape[1]), tensor.New(shape[1])}
								for _, g := range grads {
									for i := range g.F32 {
										g.F32[i] = 0.25
									}
								}
								ctx.Fresh = []bool{fresh}
								if err := bwd(ctx, ins, outT, []*tensor.Tensor{dyT, nil, nil}, grads); err != nil {
									t.Fatal(err)
								}
								var r run
								for _, o := range outT {
									r.outs = append(r.outs, o.F32)
								}
								r.outs = append(r.outs, ins[3].F32, ins[4].F32)
								for _, g := range grads {
									r.grads = append(r.grads, g.F32)
								}
								return r
							}
							saved := bnBlockBytes
							bnBlockBytes = blockBytes
							want, got := exec(true), exec(false)
							bnBlockBytes = saved
							for i := range want.outs {
								if !slices.Equal(math32Bits(want.outs[i]), math32Bits(got.outs[i])) {
									t.Errorf("%v relu=%v training=%v workers=%d: forward output %d differs", shape, relu, training, workers, i)
								}
							}
							for i := range want.grads {
								if !slices.Equal(math32Bits(want.grads[i]), math32Bits(got.grads[i])) {
									t.Errorf("%v relu=%v training=%v fresh=%v workers=%d: gradient %d differs", shape, relu, training, fresh, workers, i)
								}
							}
						}
					}
				}
			}
		}
	}
}

// math32Bits is the bit patterns of v (NaN-exact comparison).
func math32Bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, f := range v {
		out[i] = math.Float32bits(f)
	}
	return out
}

// BenchmarkBatchNormPlanes times a training-mode BatchNormalization with a
// fused Relu (forward and backward, 1 worker) on MobileNet-V2 w0.5's
// small-plane shapes and a 32×32 one: the channel-block passes with one
// planes call per block and sample ("planes") against the same passes
// with a call per plane ("perplane"), alternated in every iteration.
func BenchmarkBatchNormPlanes(b *testing.B) {
	for _, shape := range [][]int{{128, 192, 8, 8}, {128, 480, 4, 4}, {128, 72, 32, 32}} {
		b.Run(fmt.Sprint(shape), func(b *testing.B) {
			pass := bnFusedTrainingPass(b, shape)
			alternateSteps(b, "planes", withFlag(&bnPlanesCalls, true, pass), "perplane", withFlag(&bnPlanesCalls, false, pass))
		})
	}
}

// bnFusedTrainingPass sets up a training-mode BatchNormalization with a
// fused Relu over shape (1 worker) and returns one forward + backward.
func bnFusedTrainingPass(b *testing.B, shape []int) func() {
	rng := rand.New(rand.NewPCG(1, 1))
	in := coreBNInputs(rng, shape...)
	kern, outs, err := trySetupKernel(newTestNode("BatchNormalization", 5, 1), 15, in, nil)
	if err != nil {
		b.Fatal(err)
	}
	bk := kern.(*batchNormKernel)
	bk.relu = true
	y := tensor.New(outs[0].Shape...)
	dy, dx := randomTensor(rng, shape...), tensor.New(shape...)
	dsc, dbi := tensor.New(shape[1]), tensor.New(shape[1])
	ctx := &RunContext{Workers: 1, Training: true, Fresh: []bool{true}}
	return func() {
		if err := bk.Forward(ctx, in, []*tensor.Tensor{y}); err != nil {
			b.Fatal(err)
		}
		if err := bk.Backward(ctx, in, []*tensor.Tensor{y}, []*tensor.Tensor{dy}, []*tensor.Tensor{dx, dsc, dbi}); err != nil {
			b.Fatal(err)
		}
	}
}

// withFlag returns f run with *flag set to on (restored after).
func withFlag(flag *bool, on bool, f func()) func() {
	return func() {
		defer func(was bool) { *flag = was }(*flag)
		*flag = on
		f()
	}
}

// alternateSteps times a and c one after the other in every iteration
// and reports their times per call and the ratio c/a (a's speed-up).
func alternateSteps(b *testing.B, nameA string, a func(), nameC string, c func()) {
	ta, tc := timeAlternately(b, a, c)
	b.ReportMetric(float64(ta.Microseconds())/float64(b.N), nameA+"-µs")
	b.ReportMetric(float64(tc.Microseconds())/float64(b.N), nameC+"-µs")
	b.ReportMetric(float64(tc)/float64(ta), "speedup")
}

// forwardPerChannel and backwardPerChannel are the kernel's former loops
// (one channel at a time, its planes sample by sample), kept as the
// reference the channel-block passes must match bit for bit and as the
// benchmark's peer.
func (k *batchNormKernel) forwardPerChannel(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, scale, bias, rmean, rvar := in[0].F32, in[1].F32, in[2].F32, in[3].F32, in[4].F32
	y := out[0].F32
	k.trained = ctx.Training || k.trainingAttr
	update := ctx.Training && !ctx.FreezeRunningStats
	nm := float64(k.n * k.plane)
	tensor.ForEach(ctx.Workers, k.c, func(_, c int) {
		var mean, v float64
		if k.trained {
			for n := range k.n {
				mean += bnSum(x[(n*k.c+c)*k.plane:][:k.plane])
			}
			mean /= nm
			for n := range k.n {
				v += bnSumSqDev(x[(n*k.c+c)*k.plane:][:k.plane], float32(mean))
			}
			v /= nm
		} else {
			mean, v = float64(rmean[c]), float64(rvar[c])
		}
		istd := 1 / math.Sqrt(v+float64(k.eps))
		k.mean[c], k.istd[c] = float32(mean), float32(istd)
		a := float32(float64(scale[c]) * istd)
		b := float32(float64(bias[c]) - mean*float64(scale[c])*istd)
		for n := range k.n {
			off := (n*k.c + c) * k.plane
			if k.relu {
				tensor.AffineRelu(x[off:off+k.plane], a, b, y[off:off+k.plane])
			} else {
				tensor.Affine(x[off:off+k.plane], a, b, y[off:off+k.plane])
			}
		}
		if !k.trained {
			return
		}
		mom := float64(k.momentum)
		newMean := float32(mom*float64(rmean[c]) + (1-mom)*mean)
		newVar := float32(mom*float64(rvar[c]) + (1-mom)*v)
		if k.nOut > 1 && out[1] != nil {
			out[1].F32[c] = newMean
		}
		if k.nOut > 2 && out[2] != nil {
			out[2].F32[c] = newVar
		}
		if k.nOut > 3 && out[3] != nil {
			out[3].F32[c] = float32(mean)
		}
		if k.nOut > 4 && out[4] != nil {
			out[4].F32[c] = float32(istd)
		}
		if update {
			rmean[c], rvar[c] = newMean, newVar
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

func (k *batchNormKernel) backwardPerChannel(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
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
	tensor.ForEach(ctx.Workers, k.c, func(_, c int) {
		mean, istd := k.mean[c], float64(k.istd[c])
		// Σ dy and Σ dy·x̂ over the channel.
		var sdy, sdyx float64
		for n := range k.n {
			off := (n*k.c + c) * k.plane
			var zs []float32
			if z != nil {
				zs = z[off : off+k.plane]
			}
			a, b := bnGradSums(dy[off:off+k.plane], zs, x[off:off+k.plane], mean)
			sdy += a
			sdyx += b
		}
		sdyx *= istd
		if dscale != nil {
			dscale[c] += float32(sdyx)
		}
		if dbias != nil {
			dbias[c] += float32(sdy)
		}
		sc := float64(scale[c])
		if !k.trained {
			if dmean != nil {
				dmean[c] += float32(-sc * istd * sdy)
			}
			if dvar != nil {
				// d/dvar of (x-mean)(var+eps)^-1/2 = -(x-mean)/2 · istd³.
				dvar[c] += float32(-0.5 * sc * istd * istd * sdyx)
			}
		}
		if dx == nil {
			return
		}
		if !k.trained {
			a := float32(sc * istd)
			for n := range k.n {
				off := (n*k.c + c) * k.plane
				g := dy[off : off+k.plane]
				if z != nil {
					zz := z[off : off+k.plane]
					tensor.Affine2Relu(g, zz, zz, a, 0, 0, 0, dx[off:off+k.plane], !fresh)
				} else {
					tensor.Affine2(g, g, a, 0, 0, 0, dx[off:off+k.plane], !fresh)
				}
			}
			return
		}
		// dx = scale·istd · (dy - mean(dy) - x̂·mean(dy·x̂)).
		a := float32(sc * istd)
		mdy := float32(sdy / nm)
		mdyx := float32(sdyx / nm * istd) // multiplies (x - mean)
		for n := range k.n {
			off := (n*k.c + c) * k.plane
			if z != nil {
				tensor.Affine2Relu(dy[off:off+k.plane], z[off:off+k.plane], x[off:off+k.plane], a, -a*mdyx, -a*mdy, mean, dx[off:off+k.plane], !fresh)
			} else {
				tensor.Affine2(dy[off:off+k.plane], x[off:off+k.plane], a, -a*mdyx, -a*mdy, mean, dx[off:off+k.plane], !fresh)
			}
		}
	})
	return nil
}

// BenchmarkBatchNormReluFromX times a training-mode BatchNormalization
// with a fused Relu (forward and backward, 1 worker) whose backward
// recomputes z from x ("fromx") against one that reads z ("readz"),
// alternated, on MobileNet-V2 w0.5's largest planes.
func BenchmarkBatchNormReluFromX(b *testing.B) {
	for _, shape := range [][]int{{128, 72, 32, 32}, {128, 96, 16, 16}, {128, 192, 8, 8}} {
		b.Run(fmt.Sprint(shape), func(b *testing.B) {
			pass := bnFusedTrainingPass(b, shape)
			alternateSteps(b, "fromx", withFlag(&bnReluFromX, true, pass), "readz", withFlag(&bnReluFromX, false, pass))
		})
	}
}

// TestBatchNormTrainingFormBeforeOpset14: before opset 14 a
// BatchNormalization with its statistics outputs is the training form
// (ONNX "output case #1"), which onnxruntime normalizes with batch
// statistics even for inference; it was run on the running statistics.
// The one-output form stays inference.
func TestBatchNormTrainingFormBeforeOpset14(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	in := coreBNInputs(rng)
	five, err := runKernel(newTestNode("BatchNormalization", 5, 5), 9, in...)
	if err != nil {
		t.Fatal(err)
	}
	train, err := runKernel(newTestNode("BatchNormalization", 5, 3, intAttr("training_mode", 1)), 15, in...)
	if err != nil {
		t.Fatal(err)
	}
	one, err := runKernel(newTestNode("BatchNormalization", 5, 1), 9, in...)
	if err != nil {
		t.Fatal(err)
	}
	infer, err := runKernel(newTestNode("BatchNormalization", 5, 1), 15, in...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(five[0].F32, train[0].F32) {
		t.Error("opset 9 with five outputs: Y differs from the training form's")
	}
	if !slices.Equal(one[0].F32, infer[0].F32) {
		t.Error("opset 9 with one output: Y differs from inference")
	}
	for c := range 3 {
		if five[3].F32[c] == 0 || five[4].F32[c] == 0 {
			t.Errorf("channel %d: saved mean %v, saved inverse std %v: not written", c, five[3].F32[c], five[4].F32[c])
		}
	}
	m := &graph.Model{IRVersion: 4, OpsetImports: []graph.OpsetImport{{Version: 9}}, Graph: &graph.Graph{Nodes: []*graph.Node{
		{Name: "bn", OpType: "BatchNormalization", Inputs: []string{"x", "s", "b", "m", "v"}, Outputs: []string{"y", "rm", "rv", "sm", "sv"}}}}}
	if nodes := graph.TrainingModeNodes(m); len(nodes) != 1 {
		t.Errorf("TrainingModeNodes lists %d nodes, want the five-output BatchNormalization-9", len(nodes))
	}
}

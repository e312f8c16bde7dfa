package autodiff

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// TestLayerNormalizationValues compares Y, Mean and InvStdDev with the
// float64 definition, normalizing over the last axis and over the last
// two.
func TestLayerNormalizationValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	for _, c := range []struct {
		axis int64
		bias bool
	}{{-1, true}, {1, false}} {
		x := randomTensor(rng, 3, 4, 5)
		inner := 5
		if c.axis == 1 {
			inner = 20
		}
		scale, b := randomTensor(rng, inner), randomTensor(rng, inner)
		in := []*tensor.Tensor{x, scale}
		if c.bias {
			in = append(in, b)
		}
		out, err := runKernel(newTestNode("LayerNormalization", len(in), 3, intAttr("axis", c.axis), floatAttr("epsilon", 1e-3)), 17, in...)
		if err != nil {
			t.Fatal(err)
		}
		rows := 60 / inner
		for r := range rows {
			xr := x.F32[r*inner:][:inner]
			mean, inv := rowStats64(xr, 1e-3)
			if math.Abs(float64(out[1].F32[r])-mean) > 1e-6 || math.Abs(float64(out[2].F32[r])-inv) > 1e-5*inv {
				t.Errorf("axis %d row %d: mean %v inv %v, want %v %v", c.axis, r, out[1].F32[r], out[2].F32[r], mean, inv)
			}
			for i, v := range xr {
				want := (float64(v) - mean) * inv * float64(scale.F32[i])
				if c.bias {
					want += float64(b.F32[i])
				}
				if got := float64(out[0].F32[r*inner+i]); math.Abs(got-want) > 1e-5 {
					t.Fatalf("axis %d: y[%d][%d] = %v, want %v", c.axis, r, i, got, want)
				}
			}
		}
		if c.axis == 1 && (len(out[1].Shape) != 3 || out[1].Shape[0] != 3 || out[1].Shape[1] != 1 || out[1].Shape[2] != 1) {
			t.Errorf("Mean has shape %v, want [3 1 1]", out[1].Shape)
		}
	}
}

// TestLayerNormalizationGradients checks dX, dScale and dB against finite
// differences.
func TestLayerNormalizationGradients(t *testing.T) {
	for _, axis := range []int64{-1, 1} {
		rng := rand.New(rand.NewPCG(22, 22))
		inner := 5
		if axis == 1 {
			inner = 20
		}
		in := []*tensor.Tensor{randomTensor(rng, 3, 4, 5), randomTensor(rng, inner), randomTensor(rng, inner)}
		gradCheckWith(t, gradCheckConfig{Node: newTestNode("LayerNormalization", 3, 1, intAttr("axis", axis)), Opset: 17,
			Inputs: in, Wrt: []int{0, 1, 2}, Outputs: []int{0}})
	}
	// Rows longer than the 1024-float runs the sums go through.
	rng := rand.New(rand.NewPCG(22, 23))
	in := []*tensor.Tensor{randomTensor(rng, 2, 1100), randomTensor(rng, 1100), randomTensor(rng, 1100)}
	gradCheckWith(t, gradCheckConfig{Node: newTestNode("LayerNormalization", 3, 1), Opset: 17,
		Inputs: in, Wrt: []int{0, 1, 2}, Outputs: []int{0}})
}

// TestLayerNormalizationStatisticsGradients checks dX when the loss also
// reads the optional outputs Mean and InvStdDev, and when it reads only
// them.
func TestLayerNormalizationStatisticsGradients(t *testing.T) {
	for _, outs := range [][]int{{0, 1, 2}, {1}, {2}, {1, 2}} {
		rng := rand.New(rand.NewPCG(24, 24))
		in := []*tensor.Tensor{randomTensor(rng, 3, 4, 5), randomTensor(rng, 20), randomTensor(rng, 20)}
		gradCheckWith(t, gradCheckConfig{Node: newTestNode("LayerNormalization", 3, 3, intAttr("axis", 1)), Opset: 17,
			Inputs: in, Wrt: []int{0, 1, 2}, Outputs: outs})
	}
}

func TestLayerNormalizationBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 23))
	x := randomTensor(rng, 2, 3, 4)
	for _, c := range []struct {
		in   []*tensor.Tensor
		axis int64
		want string
	}{
		{[]*tensor.Tensor{x, randomTensor(rng, 3)}, -1, "normalized shape"},
		{[]*tensor.Tensor{x, randomTensor(rng, 4)}, 3, "out of range"},
		{[]*tensor.Tensor{x, nil}, -1, "needs inputs X and Scale"},
	} {
		_, err := runKernel(newTestNode("LayerNormalization", len(c.in), 1, intAttr("axis", c.axis)), 17, c.in...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("axis %d: error %v, want one containing %q", c.axis, err, c.want)
		}
	}
}

// TestInstanceNormalization compares InstanceNormalization with the
// float64 definition (each sample's channel plane normalized, then that
// channel's scale and bias) and checks its gradients.
func TestInstanceNormalization(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 24))
	x, scale, b := randomTensor(rng, 2, 3, 4, 5), randomTensor(rng, 3), randomTensor(rng, 3)
	node := newTestNode("InstanceNormalization", 3, 1, floatAttr("epsilon", 1e-3))
	out, err := runKernel(node, 6, x, scale, b)
	if err != nil {
		t.Fatal(err)
	}
	for r := range 6 {
		c := r % 3
		xr := x.F32[r*20:][:20]
		mean, inv := rowStats64(xr, 1e-3)
		for i, v := range xr {
			want := (float64(v)-mean)*inv*float64(scale.F32[c]) + float64(b.F32[c])
			if got := float64(out[0].F32[r*20+i]); math.Abs(got-want) > 1e-5 {
				t.Fatalf("y[%d][%d] = %v, want %v", r, i, got, want)
			}
		}
	}
	gradCheck(t, node, 6, []*tensor.Tensor{x, scale, b}, []int{0, 1, 2}, 0)
	if _, err := runKernel(node, 6, x, randomTensor(rng, 4), b); err == nil || !strings.Contains(err.Error(), "one value per channel") {
		t.Errorf("scale of 4 values for 3 channels: %v, want an error", err)
	}
}

// BenchmarkLayerNorm times LayerNormalization over the last axis (ViT's
// 768-float token rows, ConvNeXt's 192-channel pixels) and
// InstanceNormalization (32×32 planes), forward and backward (dX, dScale
// and dB), on one worker, in ns per element of X.
func BenchmarkLayerNorm(b *testing.B) {
	rng := rand.New(rand.NewPCG(25, 25))
	for _, c := range []struct {
		name  string
		op    string
		shape []int
		param int
	}{
		{"vit_768", "LayerNormalization", []int{16, 197, 768}, 768},
		{"convnext_192", "LayerNormalization", []int{32, 28, 28, 192}, 192},
		{"instance_32x32", "InstanceNormalization", []int{32, 64, 32, 32}, 64},
	} {
		x, scale, bias := randomTensor(rng, c.shape...), randomTensor(rng, c.param), randomTensor(rng, c.param)
		in := []*tensor.Tensor{x, scale, bias}
		k, outs, err := trySetupKernel(newTestNode(c.op, 3, 1, intAttr("axis", -1)), 17, in, nil)
		if err != nil {
			b.Fatal(err)
		}
		out := []*tensor.Tensor{tensor.New(outs[0].Shape...)}
		gout := []*tensor.Tensor{randomTensor(rng, c.shape...)}
		gin := []*tensor.Tensor{tensor.New(c.shape...), tensor.New(c.param), tensor.New(c.param)}
		ctx := &RunContext{Workers: 1}
		perElem := func(b *testing.B) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(x.Len()), "ns/elem")
		}
		b.Run(c.name+"/forward", func(b *testing.B) {
			for b.Loop() {
				if err := k.Forward(ctx, in, out); err != nil {
					b.Fatal(err)
				}
			}
			perElem(b)
		})
		b.Run(c.name+"/backward", func(b *testing.B) {
			if err := k.Forward(ctx, in, out); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := k.Backward(ctx, in, out, gout, gin); err != nil {
					b.Fatal(err)
				}
			}
			perElem(b)
		})
	}
}

// TestLayerNormalizationOffsetRows: rows far from zero (offset 20, spread
// 0.05, where a float32 E[x²] - E[x]² or a rounded mean loses digits)
// normalize to within 1e-6 of float64, for LayerNormalization over rows
// longer than the 1024-float runs and for InstanceNormalization.
func TestLayerNormalizationOffsetRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 27))
	for _, op := range []string{"LayerNormalization", "InstanceNormalization"} {
		x := tensor.New(2, 3, 1500)
		for i := range x.F32 {
			x.F32[i] = float32(20 + 0.05*rng.NormFloat64())
		}
		np := 1500
		if op == "InstanceNormalization" {
			np = 3
		}
		scale, b := tensor.New(np), tensor.New(np)
		for i := range scale.F32 {
			scale.F32[i] = 1
		}
		out, err := runKernel(newTestNode(op, 3, 1, intAttr("axis", -1), floatAttr("epsilon", 0)), 17, x, scale, b)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for r := range 6 {
			xr := x.F32[r*1500:][:1500]
			mean, inv := rowStats64(xr, 0)
			for i, v := range xr {
				worst = max(worst, math.Abs(float64(out[0].F32[r*1500+i])-(float64(v)-mean)*inv))
			}
		}
		if worst > 1e-6 {
			t.Errorf("%s: worst abs diff from float64 %.3g, want ≤ 1e-6", op, worst)
		}
		t.Logf("%s: worst abs diff from float64 %.3g", op, worst)
	}
}

// TestLayerNormalizationWorkersSameBits: forward and backward (dX,
// dScale, dB) give the same bits on 1 and 3 workers, for
// LayerNormalization and InstanceNormalization.
func TestLayerNormalizationWorkersSameBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(28, 28))
	for _, c := range []struct {
		op    string
		shape []int
		param int
	}{{"LayerNormalization", []int{5, 7, 1100}, 1100}, {"InstanceNormalization", []int{3, 5, 9, 9}, 5}} {
		x, scale, b := randomTensor(rng, c.shape...), randomTensor(rng, c.param), randomTensor(rng, c.param)
		dy := randomTensor(rng, c.shape...)
		in := []*tensor.Tensor{x, scale, b}
		kern, outs := setupKernel(t, newTestNode(c.op, 3, 1), 17, in, nil)
		var res [2][]*tensor.Tensor
		for i, w := range []int{1, 3} {
			ctx := &RunContext{Workers: w}
			y := tensor.New(outs[0].Shape...)
			gin := []*tensor.Tensor{tensor.New(c.shape...), tensor.New(c.param), tensor.New(c.param)}
			if err := kern.Forward(ctx, in, []*tensor.Tensor{y}); err != nil {
				t.Fatal(err)
			}
			if err := kern.Backward(ctx, in, []*tensor.Tensor{y}, []*tensor.Tensor{dy}, gin); err != nil {
				t.Fatal(err)
			}
			res[i] = append([]*tensor.Tensor{y}, gin...)
		}
		for j, name := range []string{"Y", "dX", "dScale", "dB"} {
			for i, v := range res[0][j].F32 {
				if w := res[1][j].F32[i]; math.Float32bits(v) != math.Float32bits(w) {
					t.Fatalf("%s: %s[%d] = %v with 1 worker, %v with 3", c.op, name, i, v, w)
				}
			}
		}
	}
}

// rowStats64 is the mean of xr and 1/√(var + eps), in float64.
func rowStats64(xr []float32, eps float64) (mean, inv float64) {
	var s, ss float64
	for _, v := range xr {
		s += float64(v)
	}
	mean = s / float64(len(xr))
	for _, v := range xr {
		ss += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, 1 / math.Sqrt(ss/float64(len(xr))+eps)
}

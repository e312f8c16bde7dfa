package autodiff

import (
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"testing"

	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// TestDirectConvMatchesIm2col runs a training step of CIFAR networks with
// the direct convolution and with im2col + GEMM for every convolution, and
// requires the same loss, outputs and gradients up to float32 rounding
// (the two paths sum the same products in another order). The networks
// mix direct and im2col convolutions (by tap count and row width), have
// residual blocks whose dX is assigned or added. (MobileNet-V2 is not
// here: at this batch size its BatchNormalizations over 2×2 and 4×4 planes
// amplify the rounding difference of its one direct convolution, the
// stem, past 1e-4 in 95 gradients; the 3×3 depthwise kernel is checked per
// layer by TestConvForwardMatchesReference and TestConvGradients.)
func TestDirectConvMatchesIm2col(t *testing.T) {
	for _, cfg := range []models.Config{
		{Arch: "resnet20", Width: 1, Seed: 1},
		{Arch: "resnet18", Width: 0.25, Seed: 2},
	} {
		t.Run(cfg.Arch, func(t *testing.T) {
			m, err := models.Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			const batch = 3
			run := func(direct bool) (*Program, map[string][]float32, float64) {
				was := tensor.SetDirectConv(direct)
				p, err := Compile(m, [][]int{{batch, 3, 32, 32}}, &Options{Workers: 2, Seed: 1})
				tensor.SetDirectConv(was)
				if err != nil {
					t.Fatal(err)
				}
				p.SetTraining(true)
				rng := rand.New(rand.NewPCG(7, 8))
				for i := range p.Input(0).F32 {
					p.Input(0).F32[i] = rng.Float32()
				}
				if err := p.Forward(); err != nil {
					t.Fatal(err)
				}
				loss, _, err := SoftmaxCrossEntropy(p.Output(0), []int{3, 1, 4}, 0, p.OutputGrad(0))
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Backward(); err != nil {
					t.Fatal(err)
				}
				out := map[string][]float32{"input": p.slots[p.inputs[0]].grad.F32, "logits": p.Output(0).F32}
				for _, name := range p.Params() {
					out[name] = p.Grad(name).F32
				}
				return p, out, float64(loss)
			}
			p, direct, lossD := run(true)
			nDirect, nIm2col := 0, 0
			for _, st := range p.steps {
				if ck, ok := st.kernel.(*convKernel); ok && !ck.depthwise {
					if ck.dc != nil {
						nDirect++
					} else {
						nIm2col++
					}
				}
			}
			if nDirect == 0 {
				t.Skip("direct convolution not used: no kernels for this CPU/build")
			}
			if nIm2col == 0 {
				t.Fatal("every convolution runs direct: the mixed case is not checked")
			}
			_, ref, lossR := run(false)
			if math.Abs(lossD-lossR) > 1e-5*math.Max(1, math.Abs(lossR)) {
				t.Errorf("loss %v with direct convolution, %v with im2col", lossD, lossR)
			}
			for name, want := range ref {
				got := direct[name]
				var scale, worst float64
				for i := range want {
					scale = math.Max(scale, math.Abs(float64(want[i])))
					worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
				}
				if !(worst <= 1e-4*math.Max(scale, 1e-3)) {
					t.Errorf("%s: worst difference %.3g (largest magnitude %.3g)", name, worst, scale)
				}
			}
		})
	}
}

// TestDirectConvWorkersBitIdentical: with the direct convolution in use,
// a training step's outputs and gradients are bit-identical for 1, 2 and
// 3 workers and under GOMAXPROCS=1 (each image is one unit of work; dW
// partials are summed in a fixed order).
func TestDirectConvWorkersBitIdentical(t *testing.T) {
	m, err := models.Build(models.Config{Arch: "resnet8", Width: 0.5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	const batch = 10
	step := func(workers int) map[string][]float32 {
		p, err := Compile(m, [][]int{{batch, 3, 32, 32}}, &Options{Workers: workers, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		direct := 0
		for _, st := range p.steps {
			if ck, ok := st.kernel.(*convKernel); ok && ck.dc != nil {
				direct++
			}
		}
		if direct == 0 {
			t.Skip("direct convolution not used: no kernels for this CPU/build")
		}
		p.SetTraining(true)
		rng := rand.New(rand.NewPCG(2, 3))
		for i := range p.Input(0).F32 {
			p.Input(0).F32[i] = float32(rng.NormFloat64())
		}
		if err := p.Forward(); err != nil {
			t.Fatal(err)
		}
		labels := make([]int, batch)
		for i := range labels {
			labels[i] = i % 10
		}
		if _, _, err := SoftmaxCrossEntropy(p.Output(0), labels, 0, p.OutputGrad(0)); err != nil {
			t.Fatal(err)
		}
		if err := p.Backward(); err != nil {
			t.Fatal(err)
		}
		out := map[string][]float32{"logits": append([]float32(nil), p.Output(0).F32...), "input": append([]float32(nil), p.Grad("input").F32...)}
		for _, name := range p.Params() {
			out[name] = append([]float32(nil), p.Grad(name).F32...)
		}
		return out
	}
	one := step(1)
	prev := goruntime.GOMAXPROCS(1)
	serial := step(0)
	goruntime.GOMAXPROCS(prev)
	for label, other := range map[string]map[string][]float32{"2 workers": step(2), "3 workers": step(3), "GOMAXPROCS=1": serial} {
		for name, want := range one {
			got := other[name]
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s[%d] = %v with %s, %v with 1 worker", name, i, got[i], label, want[i])
				}
			}
		}
	}
}

// TestConvCasesTakeTheDirectPaths: the "direct-*" cases of coreConvCases
// reach the paths they are named for, so that TestConvGradients and
// TestConvForwardMatchesReference check them.
func TestConvCasesTakeTheDirectPaths(t *testing.T) {
	probe := tensor.Window{H: 16, W: 16, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 1, OH: 16, OW: 16}
	if _, ok := tensor.NewDirectConv(&probe, 1); !ok {
		t.Skip("direct convolution not available on this CPU/build")
	}
	want := map[string][3]bool{ // forward/dW direct, dW direct, dX direct
		"direct-all":     {true, true, true},
		"direct-8wide":   {true, false, true},
		"direct-dx-only": {false, false, true},
	}
	rng := rand.New(rand.NewPCG(1, 1))
	seen := 0
	for _, tc := range coreConvCases() {
		w, ok := want[tc.name]
		if !ok {
			continue
		}
		seen++
		inputs := []*tensor.Tensor{randomTensor(rng, tc.x...), randomTensor(rng, tc.w...)}
		if tc.bias {
			inputs = append(inputs, randomTensor(rng, tc.w[0]))
		}
		kern, _ := setupKernel(t, newTestNode("Conv", len(inputs), 1, tc.attrs...), 13, inputs, nil)
		ck := kern.(*convKernel)
		if got := [3]bool{ck.dc != nil, ck.dwDirect, ck.dcT != nil}; got != w {
			t.Errorf("%s: direct forward/dW/dX = %v, want %v", tc.name, got, w)
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d of the %d direct-* cases", seen, len(want))
	}
}

package autodiff_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// TestNormalizationMatchesORT runs LayerNormalization (last axis with rows
// longer than the kernels' 1024-float runs, a middle axis with the Mean and
// InvStdDev outputs, no bias) and InstanceNormalization in the Go engine
// on two workers and in onnxruntime on the same model, and compares every
// output. The rows are offset from zero by 0.5 with spreads from 0.3 to 2:
// onnxruntime's kernels compute the variance as E[x²] - E[x]² in float32,
// which cancels on rows far from zero (offset 20, spread 0.05: its outputs
// are 3e-3 off the float64 values, the engine's within 1e-5,
// TestLayerNormalizationOffsetRows).
func TestNormalizationMatchesORT(t *testing.T) {
	if err := runtime.Init(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(26, 26))
	for _, c := range []struct {
		op      string
		shape   []int
		axis    int64
		param   []int
		bias    bool
		outputs int
		inner   int // the length of a normalized row
	}{
		{"LayerNormalization", []int{4, 6, 1500}, -1, []int{1500}, true, 1, 1500},
		{"LayerNormalization", []int{3, 5, 8, 8}, 1, []int{5, 8, 8}, false, 3, 320},
		{"InstanceNormalization", []int{2, 5, 40, 40}, 0, []int{5}, true, 1, 1600},
	} {
		name := fmt.Sprintf("%s%v_axis%d", c.op, c.shape, c.axis)
		t.Run(name, func(t *testing.T) {
			inits := []*graph.Initializer{{Name: "scale", Value: uniform(rng, 0.5, 1.5, c.param...)}}
			inputs := []string{"x", "scale"}
			if c.bias {
				inits = append(inits, &graph.Initializer{Name: "b", Value: uniform(rng, -1, 1, c.param...)})
				inputs = append(inputs, "b")
			}
			outs := []string{"y", "mean", "inv"}[:c.outputs]
			node := &graph.Node{Name: "norm", OpType: c.op, Inputs: inputs, Outputs: outs,
				Attrs: []*graph.Attribute{{Name: "epsilon", Type: graph.AttrFloat, F: 1e-5}}}
			if c.op == "LayerNormalization" {
				node.Attrs = append(node.Attrs, &graph.Attribute{Name: "axis", Type: graph.AttrInt, I: c.axis})
			}
			ty := &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true}
			for _, d := range c.shape {
				ty.Shape = append(ty.Shape, graph.Dim{Value: int64(d), HasValue: true})
			}
			g := &graph.Graph{Name: "g", Nodes: []*graph.Node{node}, Initializers: inits,
				Inputs: []*graph.ValueInfo{{Name: "x", Type: ty}}}
			for _, o := range outs {
				g.Outputs = append(g.Outputs, &graph.ValueInfo{Name: o})
			}
			m := &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Version: 17}}, Graph: g}

			// Rows offset by 0.5 with a spread of 0.3 to 2.3 per row.
			x := tensor.New(c.shape...)
			for r := 0; r < len(x.F32); r += c.inner {
				spread := 0.3 + 2*rng.Float64()
				for i := range c.inner {
					x.F32[r+i] = float32(0.5 + spread*rng.NormFloat64())
				}
			}

			data, err := onnxio.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := runtime.OpenBytes(data, &runtime.SessionOptions{IntraOpThreads: 1, DisableSpinning: true})
			if err != nil {
				t.Fatalf("onnxruntime refuses the model: %v", err)
			}
			defer sess.Close()
			want, err := sess.Run([]*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			p, err := autodiff.Compile(m, [][]int{c.shape}, &autodiff.Options{Params: []string{}, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			copy(p.Input(0).F32, x.F32)
			if err := p.Forward(); err != nil {
				t.Fatal(err)
			}
			for o := range outs {
				got := p.Output(o)
				if len(got.F32) != len(want[o].F32) {
					t.Fatalf("output %s: %d values, onnxruntime %d", outs[o], len(got.F32), len(want[o].F32))
				}
				worst := 0.0
				for i, w := range want[o].F32 {
					d := math.Abs(float64(got.F32[i]) - float64(w))
					worst = max(worst, d)
					if !(d <= 1e-5+1e-4*math.Abs(float64(w))) {
						t.Fatalf("output %s[%d]: Go engine %v, onnxruntime %v", outs[o], i, got.F32[i], w)
					}
				}
				t.Logf("output %s: worst abs diff %.3g", outs[o], worst)
			}
		})
	}
}

// uniform is a float32 tensor of the given shape drawn from [lo, hi).
func uniform(rng *rand.Rand, lo, hi float32, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.F32 {
		t.F32[i] = lo + (hi-lo)*rng.Float32()
	}
	return t
}

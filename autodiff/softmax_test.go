package autodiff

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// opsSoftmaxRef computes softmax (or log-softmax) over groups of x: group
// returns the group id of a flat index; float64 throughout.
func opsSoftmaxRef(x []float32, group func(i int) int, log bool) []float64 {
	maxes := map[int]float64{}
	for i, v := range x {
		g := group(i)
		if m, ok := maxes[g]; !ok || float64(v) > m {
			maxes[g] = float64(v)
		}
	}
	sums := map[int]float64{}
	for i, v := range x {
		sums[group(i)] += math.Exp(float64(v) - maxes[group(i)])
	}
	out := make([]float64, len(x))
	for i, v := range x {
		g := group(i)
		if log {
			out[i] = float64(v) - maxes[g] - math.Log(sums[g])
		} else {
			out[i] = math.Exp(float64(v)-maxes[g]) / sums[g]
		}
	}
	return out
}

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	shape := []int{2, 3, 4}
	x := randomTensor(rng, shape...)
	for i := range x.F32 {
		x.F32[i] *= 5
	}
	x.F32[0] = 1000 // large inputs must not overflow
	tests := []struct {
		opset int64
		axis  *int64
		group func(i int) int // flat index -> normalization group
	}{
		// Opset 13: one axis.
		{13, nil, func(i int) int { return i / 4 }},                        // default -1
		{13, opsPtr(int64(1)), func(i int) int { return (i/12)*4 + i%4 }},  // axis 1
		{13, opsPtr(int64(0)), func(i int) int { return i % 12 }},          // axis 0
		{13, opsPtr(int64(-2)), func(i int) int { return (i/12)*4 + i%4 }}, // axis -2
		// Opset 11: coerced to 2-D at axis.
		{11, nil, func(i int) int { return i / 12 }},             // default 1
		{11, opsPtr(int64(2)), func(i int) int { return i / 4 }}, // axis 2
		{11, opsPtr(int64(0)), func(i int) int { return 0 }},     // axis 0: everything
	}
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		for _, tt := range tests {
			var attrs []*graph.Attribute
			if tt.axis != nil {
				attrs = append(attrs, intAttr("axis", *tt.axis))
			}
			node := newTestNode(op, 1, 1, attrs...)
			got, err := runKernel(node, tt.opset, x)
			if err != nil {
				t.Fatal(err)
			}
			want := opsSoftmaxRef(x.F32, tt.group, op == "LogSoftmax")
			for i, w := range want {
				// float32 results: a few ulps of relative error.
				if d := math.Abs(float64(got[0].F32[i]) - w); d > 1e-6*math.Max(1, math.Abs(w)) {
					t.Errorf("%s opset %d axis %v [%d] = %v, want %v", op, tt.opset, tt.axis, i, got[0].F32[i], w)
					break
				}
			}
			gradCheck(t, node, tt.opset, []*tensor.Tensor{randomTensor(rng, shape...)}, []int{0}, gradCheckTol)
		}
	}
}

func opsPtr[T any](v T) *T { return &v }

// TestSoftmaxWorkersSameBits: Softmax and LogSoftmax over contiguous rows
// run the rows on the workers; 1 and 3 workers give the same bits.
func TestSoftmaxWorkersSameBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := randomTensor(rng, 7, 5, 37)
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		kern, outs := setupKernel(t, newTestNode(op, 1, 1), 13, []*tensor.Tensor{x}, nil)
		var ys [2]*tensor.Tensor
		for i, w := range []int{1, 3} {
			ys[i] = tensor.New(outs[0].Shape...)
			if err := kern.Forward(&RunContext{Workers: w}, []*tensor.Tensor{x}, []*tensor.Tensor{ys[i]}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range ys[0].F32 {
			if math.Float32bits(ys[0].F32[i]) != math.Float32bits(ys[1].F32[i]) {
				t.Fatalf("%s: y[%d] = %v with 1 worker, %v with 3", op, i, ys[0].F32[i], ys[1].F32[i])
			}
		}
	}
}

// TestLogitsOption: with Options.Logits a final Softmax over the classes
// is left out and output 0 is its input; a Softmax over another axis, one
// that another node reads, or Logits unset keep the probabilities.
func TestLogitsOption(t *testing.T) {
	x := []float32{1, 2, 3, 4, -1, 0, 1, 5}
	sm := func(in, out string, attrs ...*graph.Attribute) *graph.Node {
		return opsNode(out, "Softmax", []string{in}, []string{out}, attrs...)
	}
	for _, c := range []struct {
		name   string
		shape  []int64
		nodes  []*graph.Node
		outs   []string
		logits bool
		want   bool // output 0 is x itself
	}{
		{"class softmax", []int64{2, 4}, []*graph.Node{sm("x", "y")}, []string{"y"}, true, true},
		{"axis 1 of [N C 1]", []int64{2, 4, 1}, []*graph.Node{sm("x", "y", intAttr("axis", 1))}, []string{"y"}, true, true},
		{"Logits unset", []int64{2, 4}, []*graph.Node{sm("x", "y")}, []string{"y"}, false, false},
		{"last axis of [N C 2]", []int64{2, 2, 2}, []*graph.Node{sm("x", "y")}, []string{"y"}, true, false},
		{"read by another node", []int64{2, 4}, []*graph.Node{sm("x", "y"), opsNode("id", "Identity", []string{"y"}, []string{"z"})}, []string{"y", "z"}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := opsModel(map[string][]int64{"x": c.shape}, []string{"x"}, nil, c.nodes, c.outs...)
			shape := make([]int, len(c.shape))
			for i, d := range c.shape {
				shape[i] = int(d)
			}
			p, err := Compile(m, [][]int{shape}, &Options{Logits: c.logits})
			if err != nil {
				t.Fatal(err)
			}
			copy(p.Input(0).F32, x)
			if err := p.Forward(); err != nil {
				t.Fatal(err)
			}
			if got := slices.Equal(p.Output(0).F32, x); got != c.want {
				t.Errorf("output 0 = %v, is the input: %v, want %v", p.Output(0).F32, got, c.want)
			}
		})
	}
}

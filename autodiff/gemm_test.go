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

func TestGemm(t *testing.T) {
	const m, n, k = 3, 4, 5
	for _, tA := range []int64{0, 1} {
		for _, tB := range []int64{0, 1} {
			for _, cShape := range [][]int{nil, {}, {n}, {1, n}, {m, 1}, {m, n}} {
				name := fmt.Sprintf("tA=%d,tB=%d,C=%v", tA, tB, cShape)
				t.Run(name, func(t *testing.T) {
					rng := rand.New(rand.NewPCG(5, 5))
					aShape, bShape := []int{m, k}, []int{k, n}
					if tA == 1 {
						aShape = []int{k, m}
					}
					if tB == 1 {
						bShape = []int{n, k}
					}
					in := []*tensor.Tensor{randomTensor(rng, aShape...), randomTensor(rng, bShape...)}
					if cShape != nil {
						in = append(in, randomTensor(rng, cShape...))
					}
					node := newTestNode("Gemm", len(in), 1, intAttr("transA", tA), intAttr("transB", tB),
						floatAttr("alpha", 0.7), floatAttr("beta", -1.3))
					out, err := runKernel(node, 13, in...)
					if err != nil {
						t.Fatal(err)
					}
					at := func(x *tensor.Tensor, i, j int, tr bool) float64 {
						if tr {
							i, j = j, i
						}
						return float64(x.F32[i*x.Shape[1]+j])
					}
					for i := range m {
						for j := range n {
							var s float64
							for p := range k {
								s += at(in[0], i, p, tA == 1) * at(in[1], p, j, tB == 1)
							}
							want := 0.7 * s
							if cShape != nil {
								c := in[2]
								ci, cj := i, j
								if len(cShape) < 2 || cShape[0] == 1 {
									ci = 0
								}
								if len(cShape) == 0 || cShape[len(cShape)-1] == 1 {
									cj = 0
								}
								cols := 1
								if len(cShape) > 0 {
									cols = cShape[len(cShape)-1]
								}
								want += -1.3 * float64(c.F32[ci*cols+cj])
							}
							// float32 sums of 5 products of values in [-1, 1).
							if got := float64(out[0].F32[i*n+j]); math.Abs(got-want) > 1e-5 {
								t.Fatalf("Y[%d,%d] = %v, want %v", i, j, got, want)
							}
						}
					}
					wrt := []int{0, 1}
					if cShape != nil {
						wrt = append(wrt, 2)
					}
					gradCheck(t, node, 13, in, wrt, 0)
				})
			}
		}
	}
}

func TestMatMul(t *testing.T) {
	tests := []struct{ a, b, want []int }{
		{[]int{3, 4}, []int{4, 5}, []int{3, 5}},
		{[]int{4}, []int{4, 5}, []int{5}},
		{[]int{3, 4}, []int{4}, []int{3}},
		{[]int{4}, []int{4}, []int{}},
		{[]int{2, 3, 4}, []int{4, 5}, []int{2, 3, 5}},          // folded
		{[]int{3, 4}, []int{2, 4, 5}, []int{2, 3, 5}},          // A shared
		{[]int{2, 1, 3, 4}, []int{3, 4, 2}, []int{2, 3, 3, 2}}, // both broadcast
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v×%v", tt.a, tt.b), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(6, 6))
			a, b := randomTensor(rng, tt.a...), randomTensor(rng, tt.b...)
			node := newTestNode("MatMul", 2, 1)
			out, err := runKernel(node, 13, a, b)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out[0].Shape, tt.want) {
				t.Fatalf("MatMul shape = %v, want %v", out[0].Shape, tt.want)
			}
			gradCheck(t, node, 13, []*tensor.Tensor{a, b}, []int{0, 1}, 0)
		})
	}
	// One value checked by hand: [1 2; 3 4] × [5; 6] = [17; 39].
	out, err := runKernel(newTestNode("MatMul", 2, 1), 13,
		tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 2), tensor.FromFloat32([]float32{5, 6}, 2))
	if err != nil {
		t.Fatal(err)
	}
	if out[0].F32[0] != 17 || out[0].F32[1] != 39 {
		t.Errorf("MatMul([1 2; 3 4], [5 6]) = %v, want [17 39]", out[0].F32)
	}
}

func TestGemmMatMulSetupErrors(t *testing.T) {
	tests := []struct {
		op    string
		in    [][]int
		attrs []*graph.Attribute
	}{
		{"Gemm", [][]int{{3, 4}, {5, 6}}, nil},
		{"Gemm", [][]int{{3, 4}, {4, 6}, {2, 6}}, nil},
		{"Gemm", [][]int{{3, 4, 1}, {4, 6}}, nil},
		{"MatMul", [][]int{{3, 4}, {5, 6}}, nil},
		{"MatMul", [][]int{{2, 3, 4}, {3, 4, 5}}, nil},
	}
	for _, tt := range tests {
		var in []*tensor.Tensor
		for _, s := range tt.in {
			in = append(in, tensor.New(s...))
		}
		if _, _, err := trySetupKernel(newTestNode(tt.op, len(in), 1, tt.attrs...), 13, in, nil); err == nil {
			t.Errorf("%s with inputs %v: no error", tt.op, tt.in)
		}
	}
}

// TestMatMulWorkersSameBits: a MatMul of a batch of matrices by one shared
// weight (a transformer's linear layers) splits its rows over the workers;
// Y, dA and dB must be the same bits for any worker count, with K long
// enough that the GEMM blocks it.
func TestMatMulWorkersSameBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 41))
	a, b := randomTensor(rng, 3, 37, 700), randomTensor(rng, 700, 29)
	kern, outs := setupKernel(t, newTestNode("MatMul", 2, 1), 13, []*tensor.Tensor{a, b}, nil)
	if !kern.(*matMulKernel).fold {
		t.Fatal("MatMul of [3 37 700] by [700 29] does not take the folded path")
	}
	dy := randomTensor(rng, outs[0].Shape...)
	run := func(workers int) [][]float32 {
		ctx := &RunContext{Workers: workers}
		y := tensor.New(outs[0].Shape...)
		if err := kern.Forward(ctx, []*tensor.Tensor{a, b}, []*tensor.Tensor{y}); err != nil {
			t.Fatal(err)
		}
		da, db := tensor.New(a.Shape...), tensor.New(b.Shape...)
		if err := kern.Backward(ctx, []*tensor.Tensor{a, b}, []*tensor.Tensor{y}, []*tensor.Tensor{dy}, []*tensor.Tensor{da, db}); err != nil {
			t.Fatal(err)
		}
		return [][]float32{y.F32, da.F32, db.F32}
	}
	want := run(1)
	for _, w := range []int{2, 3, 7} {
		for i, got := range run(w) {
			if !slices.Equal(math32Bits(got), math32Bits(want[i])) {
				t.Errorf("%d workers: %s differs from 1 worker's", w, []string{"Y", "dA", "dB"}[i])
			}
		}
	}
}

// BenchmarkMatMulRowBlocks times one worker's GEMM of a ViT-B/16 MLP
// layer ([394 768] × [768 3072], batch 2) in one call and in the row
// blocks of matMulRowBlock, alternated: the blocks repack the weight per
// call (matMulRowBlock's comment has the figures).
func BenchmarkMatMulRowBlocks(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	m, k, n := 2*197, 768, 3072
	x, w := randomTensor(rng, m, k), randomTensor(rng, k, n)
	y := make([]float32, m*n)
	one := func() { tensor.Sgemm(false, false, m, n, k, 1, x.F32, k, w.F32, n, 0, y, n) }
	blocks := func() {
		matMulRowBlocks(1, m, func(lo, hi int) {
			tensor.Sgemm(false, false, hi-lo, n, k, 1, x.F32[lo*k:], k, w.F32, n, 0, y[lo*n:], n)
		})
	}
	alternateSteps(b, "blocks", blocks, "onecall", one)
}

// BenchmarkMatMulWeightGrad times the weight gradient of a folded MatMul
// (a ViT-B/16 MLP layer, [394 768] × [768 3072], batch 2: dB = Aᵀ·dY) in
// one call on one worker and in row blocks of matMulRowBlock on two
// workers, alternated.
func BenchmarkMatMulWeightGrad(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	m, k, n := 2*197, 768, 3072
	x, dy := randomTensor(rng, m, k), randomTensor(rng, m, n)
	db := make([]float32, k*n)
	one := func() { tensor.Sgemm(true, false, k, n, m, 1, x.F32, k, dy.F32, n, 0, db, n) }
	blocks := func() {
		matMulRowBlocks(2, k, func(lo, hi int) {
			tensor.Sgemm(true, false, hi-lo, n, m, 1, x.F32[lo:], k, dy.F32, n, 0, db[lo*n:], n)
		})
	}
	alternateSteps(b, "blocks2", blocks, "onecall1", one)
}

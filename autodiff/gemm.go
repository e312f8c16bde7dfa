package autodiff

import (
	"errors"
	"fmt"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("Gemm", newGemm)
	register("MatMul", func(*graph.Node, int64) (Kernel, error) { return &matMulKernel{}, nil })
}

// gemmKernel is Gemm: Y = alpha·op(A)·op(B) + beta·C, with C broadcast
// (unidirectionally) to Y's shape [M, N].
type gemmKernel struct {
	alpha, beta    float32
	transA, transB bool

	m, n, k int
	hasC    bool
	cRow    int // C's stride along M (0 when broadcast)
	cCol    int // C's stride along N (0 when broadcast)
}

func newGemm(n *graph.Node, _ int64) (Kernel, error) {
	k := &gemmKernel{alpha: n.AttrFloat("alpha", 1), beta: n.AttrFloat("beta", 1)}
	for _, a := range []struct {
		name string
		dst  *bool
	}{{"transA", &k.transA}, {"transB", &k.transB}} {
		switch v := n.AttrInt(a.name, 0); v {
		case 0:
		case 1:
			*a.dst = true
		default:
			return nil, fmt.Errorf("%s is %d, want 0 or 1", a.name, v)
		}
	}
	return k, nil
}

func (k *gemmKernel) Setup(in []Value) ([]Output, error) {
	if len(in) < 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("Gemm needs inputs A and B")
	}
	for i := range in {
		if in[i].Present && in[i].DType != tensor.Float32 {
			return nil, fmt.Errorf("input %d is %s; the engine runs Gemm in float32 only", i, in[i].DType)
		}
	}
	a, b := in[0].Shape, in[1].Shape
	if len(a) != 2 || len(b) != 2 {
		return nil, fmt.Errorf("A has shape %v and B %v, both must be 2-D", a, b)
	}
	m, ka := a[0], a[1]
	if k.transA {
		m, ka = ka, m
	}
	kb, n := b[0], b[1]
	if k.transB {
		kb, n = n, kb
	}
	if ka != kb {
		return nil, fmt.Errorf("op(A) is %d×%d and op(B) is %d×%d: inner dimensions differ (A %v, B %v, transA=%v, transB=%v)", m, ka, kb, n, a, b, k.transA, k.transB)
	}
	k.m, k.n, k.k = m, n, ka
	if len(in) > 2 && in[2].Present {
		c := in[2].Shape
		k.hasC = true
		var rows, cols int
		switch len(c) {
		case 0:
			rows, cols = 1, 1
		case 1:
			rows, cols = 1, c[0]
		case 2:
			rows, cols = c[0], c[1]
		default:
			return nil, fmt.Errorf("C has shape %v, want rank <= 2", c)
		}
		if (rows != 1 && rows != m) || (cols != 1 && cols != n) {
			return nil, fmt.Errorf("C has shape %v, which does not broadcast to [%d, %d]", c, m, n)
		}
		if cols != 1 {
			k.cCol = 1
		}
		if rows != 1 {
			k.cRow = cols
		}
	}
	return []Output{{DType: tensor.Float32, Shape: []int{m, n}}}, nil
}

func (k *gemmKernel) lds(a, b []int) (lda, ldb int) { return a[1], b[1] }

func (k *gemmKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	y := out[0].F32
	var beta float32
	if k.hasC && k.beta != 0 {
		c := in[2].F32
		for i := range k.m {
			row := y[i*k.n : (i+1)*k.n]
			for j := range row {
				row[j] = k.beta * c[i*k.cRow+j*k.cCol]
			}
		}
		beta = 1
	}
	lda, ldb := k.lds(in[0].Shape, in[1].Shape)
	tensor.Sgemm(k.transA, k.transB, k.m, k.n, k.k, k.alpha, in[0].F32, lda, in[1].F32, ldb, beta, y, k.n)
	return nil
}

func (k *gemmKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	dy := gout[0].F32
	a, b := in[0].F32, in[1].F32
	lda, ldb := k.lds(in[0].Shape, in[1].Shape)
	m, n, kk, al := k.m, k.n, k.k, k.alpha
	if gin[0] != nil {
		da := gin[0].F32
		switch {
		case !k.transA && !k.transB: // dA = α·dY·Bᵀ
			tensor.Sgemm(false, true, m, kk, n, al, dy, n, b, ldb, 1, da, lda)
		case !k.transA && k.transB: // dA = α·dY·B
			tensor.Sgemm(false, false, m, kk, n, al, dy, n, b, ldb, 1, da, lda)
		case k.transA && !k.transB: // dA = α·B·dYᵀ
			tensor.Sgemm(false, true, kk, m, n, al, b, ldb, dy, n, 1, da, lda)
		default: // dA = α·Bᵀ·dYᵀ
			tensor.Sgemm(true, true, kk, m, n, al, b, ldb, dy, n, 1, da, lda)
		}
	}
	if gin[1] != nil {
		db := gin[1].F32
		switch {
		case !k.transA && !k.transB: // dB = α·Aᵀ·dY
			tensor.Sgemm(true, false, kk, n, m, al, a, lda, dy, n, 1, db, ldb)
		case k.transA && !k.transB: // dB = α·A·dY
			tensor.Sgemm(false, false, kk, n, m, al, a, lda, dy, n, 1, db, ldb)
		case !k.transA && k.transB: // dB = α·dYᵀ·A
			tensor.Sgemm(true, false, n, kk, m, al, dy, n, a, lda, 1, db, ldb)
		default: // dB = α·dYᵀ·Aᵀ
			tensor.Sgemm(true, true, n, kk, m, al, dy, n, a, lda, 1, db, ldb)
		}
	}
	if k.hasC && len(gin) > 2 && gin[2] != nil {
		dc := gin[2].F32
		// Broadcast reduction in a fixed order (row by row).
		for i := range m {
			row := dy[i*n : (i+1)*n]
			for j, g := range row {
				dc[i*k.cRow+j*k.cCol] += k.beta * g
			}
		}
	}
	return nil
}

// matMulKernel is MatMul with numpy semantics: 1-D operands are promoted
// (and the added axis removed from the result), leading batch axes
// broadcast.
type matMulKernel struct {
	m, n, k    int
	aOff, bOff []int // per output batch item: offset of its A and B matrix
	aShared    bool  // some A matrix serves several batch items
	bShared    bool
	fold       bool // B is one matrix and A is contiguous: one GEMM of batch·M rows
}

func (k *matMulKernel) Setup(in []Value) ([]Output, error) {
	if len(in) != 2 || !in[0].Present || !in[1].Present {
		return nil, errors.New("MatMul needs inputs A and B")
	}
	if in[0].DType != tensor.Float32 || in[1].DType != tensor.Float32 {
		return nil, fmt.Errorf("A is %s and B is %s; the engine runs MatMul in float32 only", in[0].DType, in[1].DType)
	}
	a, b := in[0].Shape, in[1].Shape
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("A %v and B %v: MatMul operands must have rank >= 1", a, b)
	}
	a2, b2 := a, b
	if len(a) == 1 {
		a2 = []int{1, a[0]}
	}
	if len(b) == 1 {
		b2 = []int{b[0], 1}
	}
	k.m, k.k = a2[len(a2)-2], a2[len(a2)-1]
	kb := b2[len(b2)-2]
	k.n = b2[len(b2)-1]
	if k.k != kb {
		return nil, fmt.Errorf("A %v and B %v: inner dimensions %d and %d differ", a, b, k.k, kb)
	}
	ab, bb := a2[:len(a2)-2], b2[:len(b2)-2]
	rank := max(len(ab), len(bb))
	batch := make([]int, rank)
	for i := range rank {
		da, db := 1, 1
		if j := i - (rank - len(ab)); j >= 0 {
			da = ab[j]
		}
		if j := i - (rank - len(bb)); j >= 0 {
			db = bb[j]
		}
		switch {
		case da == db, db == 1:
			batch[i] = da
		case da == 1:
			batch[i] = db
		default:
			return nil, fmt.Errorf("A %v and B %v: batch dimensions %d and %d do not broadcast", a, b, da, db)
		}
	}
	nb := tensor.Numel(batch)
	k.aOff = make([]int, nb)
	k.bOff = make([]int, nb)
	idx := make([]int, rank)
	for t := range nb {
		rem := t
		for i := rank - 1; i >= 0; i-- {
			idx[i] = rem % batch[i]
			rem /= batch[i]
		}
		k.aOff[t] = matMulOffset(idx, ab, rank) * k.m * k.k
		k.bOff[t] = matMulOffset(idx, bb, rank) * k.k * k.n
	}
	k.aShared = tensor.Numel(ab) < nb
	k.bShared = tensor.Numel(bb) < nb
	k.fold = tensor.Numel(bb) == 1 && !k.aShared
	out := append([]int(nil), batch...)
	if len(a) > 1 {
		out = append(out, k.m)
	}
	if len(b) > 1 {
		out = append(out, k.n)
	}
	return []Output{{DType: tensor.Float32, Shape: out}}, nil
}

// matMulOffset is the flat matrix index, within an operand of batch shape
// dims, of the broadcast batch index idx (of the given rank).
func matMulOffset(idx, dims []int, rank int) int {
	off := 0
	for i, d := range dims {
		j := idx[i+rank-len(dims)]
		if d == 1 {
			j = 0
		}
		off = off*d + j
	}
	return off
}

func (k *matMulKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	a, b, y := in[0].F32, in[1].F32, out[0].F32
	if k.fold {
		matMulRowBlocks(ctx.Workers, len(k.aOff)*k.m, func(lo, hi int) {
			tensor.Sgemm(false, false, hi-lo, k.n, k.k, 1, a[lo*k.k:], k.k, b, k.n, 0, y[lo*k.n:], k.n)
		})
		return nil
	}
	tensor.ForEach(ctx.Workers, len(k.aOff), func(_, t int) {
		tensor.Sgemm(false, false, k.m, k.n, k.k, 1, a[k.aOff[t]:], k.k, b[k.bOff[t]:], k.n, 0, y[t*k.m*k.n:], k.n)
	})
	return nil
}

// matMulRowBlock is the rows of one GEMM call when a folded MatMul (a
// batch of matrices times one shared weight: a transformer's linear
// layers) is split over the workers. The split is by fixed blocks, not by
// worker: OpenBLAS rounds a row differently depending on where it falls
// in the call, so blocks that do not depend on the worker count keep the
// result the same for any (TestMatMulWorkersSameBits). Each call packs
// the whole weight again, which costs one worker time: on a ViT-B/16 MLP
// layer ([394 768] × [768 3072]) a one-off measurement gave 69.2 GFLOP/s
// in one call, 65.1 with blocks of 128 rows, 68.5 with 256, 57.0 with 64
// (and `go test ./autodiff -run '^$' -bench MatMulRowBlocks` 0.88× for
// 128 beside the training queue). 128 lets a batch-1 ViT (197 tokens) use
// two workers; with two or more the blocks run side by side. The weight
// gradient of a folded MatMul splits B's rows (K) the same way.
const matMulRowBlock = 128

// matMulRowBlocks calls fn for each block of matMulRowBlock rows of n,
// spread over the workers.
func matMulRowBlocks(workers, n int, fn func(lo, hi int)) {
	nb := (n + matMulRowBlock - 1) / matMulRowBlock
	tensor.ForEach(workers, nb, func(_, b int) { fn(b*matMulRowBlock, min(n, (b+1)*matMulRowBlock)) })
}

func (k *matMulKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	a, b, dy := in[0].F32, in[1].F32, gout[0].F32
	nb := len(k.aOff)
	if gin[0] != nil {
		da := gin[0].F32
		if k.fold {
			matMulRowBlocks(ctx.Workers, nb*k.m, func(lo, hi int) {
				tensor.Sgemm(false, true, hi-lo, k.k, k.n, 1, dy[lo*k.n:], k.n, b, k.n, 1, da[lo*k.k:], k.k)
			})
		} else {
			one := func(t int) {
				tensor.Sgemm(false, true, k.m, k.k, k.n, 1, dy[t*k.m*k.n:], k.n, b[k.bOff[t]:], k.n, 1, da[k.aOff[t]:], k.k)
			}
			if k.aShared {
				// Several items add into one dA: keep their order fixed.
				for t := range nb {
					one(t)
				}
			} else {
				tensor.ForEach(ctx.Workers, nb, func(_, t int) { one(t) })
			}
		}
	}
	if gin[1] != nil {
		db := gin[1].F32
		if k.fold {
			// dB's rows (B's K rows) in the same fixed blocks, each the
			// sum over all batch·M rows of A: every row's sum is one
			// call's, whatever the worker count.
			matMulRowBlocks(ctx.Workers, k.k, func(lo, hi int) {
				tensor.Sgemm(true, false, hi-lo, k.n, nb*k.m, 1, a[lo:], k.k, dy, k.n, 1, db[lo*k.n:], k.n)
			})
		} else {
			one := func(t int) {
				tensor.Sgemm(true, false, k.k, k.n, k.m, 1, a[k.aOff[t]:], k.k, dy[t*k.m*k.n:], k.n, 1, db[k.bOff[t]:], k.n)
			}
			if k.bShared {
				for t := range nb {
					one(t)
				}
			} else {
				tensor.ForEach(ctx.Workers, nb, func(_, t int) { one(t) })
			}
		}
	}
	return nil
}

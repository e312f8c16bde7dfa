package autodiff

import (
	"fmt"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// This file holds the broadcasting machinery shared by the elementwise ops,
// ReduceMean and anything else that maps one index space onto another with
// stride-0 dimensions.

// broadcastShapes returns the numpy-style broadcast of shapes: shapes are
// right-aligned, and each dimension is either equal to the others or 1.
func broadcastShapes(shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			switch o := out[off+i]; {
			case d == o || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("shapes %v do not broadcast: dimension %d is %d in one and %d in another", shapes, i-len(s), o, d)
			}
		}
	}
	return out, nil
}

// bcastPlan iterates over an output index space and, for each input, the
// offset of the element that broadcasts to each output element. Dimensions
// of size 1 are dropped and adjacent dimensions that broadcast alike are
// merged, so the innermost loop is as long as possible. The iteration is
// in rows: runs of the innermost (merged) dimension, where each input
// advances by its inner stride (0 when it is broadcast along the row).
//
// A bcastPlan holds scratch space and is not safe for concurrent use.
type bcastPlan struct {
	n       int     // number of output elements
	dims    []int   // merged output dimensions, outermost first; never empty
	strides [][]int // strides[k][d]: input k's stride along merged dimension d
	inner   int     // dims[len(dims)-1]
	// scratch
	idx  []int
	offs []int
}

// newBcastPlan plans the iteration over out for inputs of shapes ins, each
// of which must broadcast to out (checked by the caller, for example with
// broadcastShapes).
func newBcastPlan(out []int, ins ...[]int) *bcastPlan {
	rank := len(out)
	// aligned[k][d] is input k's size along output dimension d.
	aligned := make([][]int, len(ins))
	for k, s := range ins {
		a := make([]int, rank)
		off := rank - len(s)
		for d := range a {
			a[d] = 1
			if d >= off {
				a[d] = s[d-off]
			}
		}
		aligned[k] = a
	}
	// Keep dimensions of size > 1 and merge neighbours whose broadcast
	// pattern (which inputs are broadcast) is the same.
	var dims []int
	var pattern [][]bool
	for d := range rank {
		if out[d] == 1 {
			continue
		}
		p := make([]bool, len(ins))
		for k := range ins {
			p[k] = aligned[k][d] == 1
		}
		if len(dims) > 0 && samePattern(pattern[len(pattern)-1], p) {
			dims[len(dims)-1] *= out[d]
			continue
		}
		dims = append(dims, out[d])
		pattern = append(pattern, p)
	}
	if len(dims) == 0 {
		dims = []int{1}
		pattern = [][]bool{make([]bool, len(ins))}
	}
	strides := make([][]int, len(ins))
	for k := range ins {
		st := make([]int, len(dims))
		acc := 1
		for d := len(dims) - 1; d >= 0; d-- {
			if !pattern[d][k] {
				st[d] = acc
				acc *= dims[d]
			}
		}
		strides[k] = st
	}
	return &bcastPlan{
		n:       tensor.Numel(out),
		dims:    dims,
		strides: strides,
		inner:   dims[len(dims)-1],
		idx:     make([]int, len(dims)),
		offs:    make([]int, len(ins)),
	}
}

func samePattern(a, b []bool) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// elementwise reports whether no input is broadcast: every input has the
// output's shape, so element i of each input meets element i of the
// output.
func (p *bcastPlan) elementwise() bool {
	if len(p.dims) != 1 {
		return false
	}
	for _, st := range p.strides {
		if st[0] != 1 {
			return false
		}
	}
	return true
}

// parallelGrain is the fewest elements worth handing to another goroutine
// in an elementwise loop (a few tens of microseconds of work).
const parallelGrain = 1 << 15

// parallelPieces is how many goroutines an elementwise loop over n
// elements should use: at most workers, and none with less than
// parallelGrain elements. Callers run the loop directly when it is 1, so
// that the serial path does not allocate a closure.
func parallelPieces(workers, n int) int {
	return max(min(workers, (n+parallelGrain-1)/parallelGrain), 1)
}

// parallelChunks calls fn on contiguous ranges covering [0, n), spread
// over parallelPieces(workers, n) goroutines. Each index is handled by
// exactly one call, so elementwise results do not depend on the worker
// count.
func parallelChunks(workers, n int, fn func(lo, hi int)) {
	tensor.Parallel(parallelPieces(workers, n), n, fn)
}

// innerStride is input k's stride along a row (0 or 1).
func (p *bcastPlan) innerStride(k int) int { return p.strides[k][len(p.dims)-1] }

// rows calls fn for each row of p.inner output elements starting at output
// offset o; offs[k] is input k's offset for the row's first element. offs
// is reused between calls.
func (p *bcastPlan) rows(fn func(o int, offs []int)) {
	if p.n == 0 {
		return
	}
	nd := len(p.dims)
	clear(p.idx)
	clear(p.offs)
	for o := 0; o < p.n; o += p.inner {
		fn(o, p.offs)
		// Advance the odometer over the outer dimensions.
		for d := nd - 2; d >= 0; d-- {
			p.idx[d]++
			for k := range p.offs {
				p.offs[k] += p.strides[k][d]
			}
			if p.idx[d] < p.dims[d] {
				break
			}
			for k := range p.offs {
				p.offs[k] -= p.strides[k][d] * p.dims[d]
			}
			p.idx[d] = 0
		}
	}
}

// reduceSumInto adds g (of the plan's output shape) into dst (input k's
// shape), summing over the dimensions along which input k is broadcast:
// the backward of broadcasting.
func (p *bcastPlan) reduceSumInto(k int, dst, g []float32) {
	s := p.innerStride(k)
	n := p.inner
	p.rows(func(o int, offs []int) {
		a := offs[k]
		if s == 0 {
			var sum float32
			for _, v := range g[o : o+n] {
				sum += v
			}
			dst[a] += sum
			return
		}
		d := dst[a : a+n]
		for i, v := range g[o : o+n] {
			d[i] += v
		}
	})
}

// stridedShape describes a strided view for stridedCopy and
// stridedAddBack: an element with multi-index i (within shape) lives at
// offset off + Σ i[d]·strides[d] of the underlying buffer. Strides may be
// negative or zero.
type stridedShape struct {
	shape   []int
	strides []int
	off     int
	idx     []int // scratch
}

func newStridedShape(shape, strides []int, off int) *stridedShape {
	return &stridedShape{shape: shape, strides: strides, off: off, idx: make([]int, len(shape))}
}

// each calls fn(dst, src, n, step) for each innermost run of the view: n
// elements, the first at contiguous index dst and buffer offset src, the
// following ones step apart in the buffer.
func (v *stridedShape) each(fn func(dst, src, n, step int)) {
	total := tensor.Numel(v.shape)
	if total == 0 {
		return
	}
	nd := len(v.shape)
	if nd == 0 {
		fn(0, v.off, 1, 0)
		return
	}
	inner, step := v.shape[nd-1], v.strides[nd-1]
	clear(v.idx)
	src := v.off
	for dst := 0; dst < total; dst += inner {
		fn(dst, src, inner, step)
		for d := nd - 2; d >= 0; d-- {
			v.idx[d]++
			src += v.strides[d]
			if v.idx[d] < v.shape[d] {
				break
			}
			src -= v.strides[d] * v.shape[d]
			v.idx[d] = 0
		}
	}
}

// stridedCopy copies the view of src into the contiguous dst (any element
// type the engine stores).
func stridedCopy[T any](v *stridedShape, dst, src []T) {
	v.each(func(d, s, n, step int) {
		if step == 1 {
			copy(dst[d:d+n], src[s:s+n])
			return
		}
		for i := range n {
			dst[d+i] = src[s+i*step]
		}
	})
}

// stridedAddBack adds the contiguous g into the view's elements of dst:
// the backward of stridedCopy.
func stridedAddBack(v *stridedShape, dst, g []float32) {
	v.each(func(d, s, n, step int) {
		for i, x := range g[d : d+n] {
			dst[s+i*step] += x
		}
	})
}

// contiguousStrides returns the row-major strides of shape.
func contiguousStrides(shape []int) []int {
	st := make([]int, len(shape))
	acc := 1
	for d := len(shape) - 1; d >= 0; d-- {
		st[d] = acc
		acc *= shape[d]
	}
	return st
}

package onnxio

import (
	"bytes"
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// MaxSparseDenseElements bounds the dense size a sparse initializer may
// declare (2^28 elements, 1 GiB of float32): densifying allocates it, and a
// file of a few bytes could otherwise claim terabytes.
const MaxSparseDenseElements = 1 << 28

func sparseFromProto(p *onnxpb.SparseTensor) (*graph.SparseInitializer, error) {
	s := &graph.SparseInitializer{Dims: append([]int64(nil), p.Dims...), Unknown: unknownOf(p)}
	var err error
	if p.Values != nil {
		if s.Values, err = tensorFromProto(p.Values); err != nil {
			return nil, fmt.Errorf("sparse initializer values: %w", err)
		}
	}
	if p.Indices != nil {
		if s.Indices, err = tensorFromProto(p.Indices); err != nil {
			return nil, fmt.Errorf("sparse initializer %q indices: %w", sparseName(s), err)
		}
	}
	if s.Values == nil || s.Indices == nil {
		return nil, fmt.Errorf("sparse initializer %q: values and indices are both required", sparseName(s))
	}
	return s, nil
}

// sparseBudget is how many bytes of dense tensors the sparse initializers
// of a model read from size bytes may claim in total: 16 MiB plus 512
// times the input (a 99.8%-sparse float32 tensor stored with int64
// indices densifies to about 333 times its stored size). It keeps a tiny
// file from making the reader allocate gigabytes.
func sparseBudget(size int64) int64 { return 16<<20 + 512*size }

// elemMemSize is the bytes one element takes in a tensor.Tensor.
func elemMemSize(dt tensor.DType) int64 {
	switch {
	case dt == tensor.Float32:
		return 4
	case dt == tensor.Float64, dt.IsInteger():
		return 8
	case dt == tensor.String:
		return 24
	}
	if l := layoutOf(dt); l.perElem > 0 {
		return int64(l.perElem)
	}
	return 1
}

// densifyAll densifies every sparse initializer whose values and indices
// are loaded, within budget bytes in total, checked before allocating.
func densifyAll(m *graph.Model, budget int64) error {
	return forEachSparse(m.Graph, func(s *graph.SparseInitializer) error {
		if s.Dense != nil || s.Values == nil || s.Indices == nil || !hasData(s.Values.Value) || !hasData(s.Indices.Value) {
			return nil
		}
		n, _, err := dimsNumel(s.Dims)
		if err != nil {
			return fmt.Errorf("sparse initializer %q: %w", sparseName(s), err)
		}
		size := n * elemMemSize(s.Values.Value.DType) // n < 2^56 and size <= 24: no overflow
		if size > budget {
			return fmt.Errorf("sparse initializer %q: dims %v densify to %d bytes, more than a file of this size may claim (16 MiB + 512 x its size, %d bytes left)", sparseName(s), s.Dims, size, budget)
		}
		budget -= size
		d, err := densify(s)
		if err != nil {
			return fmt.Errorf("sparse initializer %q: %w", sparseName(s), err)
		}
		s.Dense = d
		return nil
	})
}

func sparseName(s *graph.SparseInitializer) string {
	if s.Values != nil {
		return s.Values.Name
	}
	return ""
}

// densify builds the dense tensor of a sparse initializer, validating the
// dims and every index first.
func densify(s *graph.SparseInitializer) (*graph.Initializer, error) {
	n, shape, err := dimsNumel(s.Dims)
	if err != nil {
		return nil, err
	}
	if n > MaxSparseDenseElements {
		return nil, fmt.Errorf("dims %v: %d dense elements is more than the supported %d", s.Dims, n, MaxSparseDenseElements)
	}
	vals, idx := s.Values.Value, s.Indices.Value
	if len(vals.Shape) != 1 {
		return nil, fmt.Errorf("values must be 1-D, have shape %v", vals.Shape)
	}
	nnz := vals.Shape[0]
	if idx.DType != tensor.Int64 {
		return nil, fmt.Errorf("indices must be int64, have %s", idx.DType)
	}
	rank := len(shape)
	var coords bool
	switch {
	case len(idx.Shape) == 1 && idx.Shape[0] == nnz:
	case len(idx.Shape) == 2 && idx.Shape[0] == nnz && idx.Shape[1] == rank:
		coords = true
	default:
		return nil, fmt.Errorf("indices shape %v does not fit %d values of a rank-%d tensor (want [%d] or [%d %d])", idx.Shape, nnz, rank, nnz, nnz, rank)
	}
	flat := make([]int64, nnz)
	for i := range nnz {
		if !coords {
			v := idx.I64[i]
			if v < 0 || v >= n {
				return nil, fmt.Errorf("index %d (%d) is outside the %d elements of dims %v", i, v, n, s.Dims)
			}
			flat[i] = v
			continue
		}
		var off int64
		for k := range rank {
			c := idx.I64[i*rank+k]
			if c < 0 || c >= int64(shape[k]) {
				return nil, fmt.Errorf("index %d: coordinate %d is %d, outside dimension %d of dims %v", i, k, c, shape[k], s.Dims)
			}
			off = off*int64(shape[k]) + c
		}
		flat[i] = off
	}
	d := &tensor.Tensor{DType: vals.DType, Shape: shape}
	switch {
	case vals.DType == tensor.Float32:
		d.F32 = make([]float32, n)
		for i, o := range flat {
			d.F32[o] = vals.F32[i]
		}
	case vals.DType == tensor.Float64:
		d.F64 = make([]float64, n)
		for i, o := range flat {
			d.F64[o] = vals.F64[i]
		}
	case vals.DType.IsInteger():
		d.I64 = make([]int64, n)
		for i, o := range flat {
			d.I64[o] = vals.I64[i]
		}
	case vals.DType == tensor.String:
		d.Str = make([][]byte, n)
		for i := range d.Str {
			d.Str[i] = []byte{}
		}
		for i, o := range flat {
			d.Str[o] = vals.Str[i]
		}
	default:
		l := layoutOf(vals.DType)
		if !l.ok || l.perElem == 0 {
			return nil, fmt.Errorf("sparse %s values are not supported", vals.DType)
		}
		w := int64(l.perElem)
		d.Raw = make([]byte, n*w)
		for i, o := range flat {
			copy(d.Raw[o*w:(o+1)*w], vals.Raw[int64(i)*w:])
		}
	}
	return &graph.Initializer{Name: s.Values.Name, Value: d, Encoding: graph.Encoding{RawData: true}}, nil
}

func sparseToProto(s *graph.SparseInitializer) (*onnxpb.SparseTensor, error) {
	if s == nil {
		return nil, fmt.Errorf("nil sparse initializer")
	}
	out := s
	if s.Dense != nil && hasData(s.Dense.Value) {
		// A pass may have changed the dense tensor: write the stored
		// values and indices only when they still describe it.
		stale := s.Values == nil || s.Indices == nil || !hasData(s.Values.Value) || !hasData(s.Indices.Value)
		if !stale {
			d, err := densify(s)
			stale = err != nil || !sameTensor(d.Value, s.Dense.Value)
		}
		if stale {
			out = Sparsify(s.Dense)
			out.Unknown = s.Unknown
		}
	}
	p := &onnxpb.SparseTensor{Dims: append([]int64(nil), out.Dims...)}
	setUnknown(p, out.Unknown)
	var err error
	if out.Values != nil {
		if p.Values, err = tensorToProto(out.Values); err != nil {
			return nil, fmt.Errorf("sparse initializer values: %w", err)
		}
	}
	if out.Indices != nil {
		if p.Indices, err = tensorToProto(out.Indices); err != nil {
			return nil, fmt.Errorf("sparse initializer %q indices: %w", sparseName(out), err)
		}
	}
	return p, nil
}

// sameTensor reports whether a and b have the same type, shape and bits.
func sameTensor(a, b *tensor.Tensor) bool {
	if a.DType != b.DType || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	if a.DType == tensor.String {
		if len(a.Str) != len(b.Str) {
			return false
		}
		for i := range a.Str {
			if !bytes.Equal(a.Str[i], b.Str[i]) {
				return false
			}
		}
		return true
	}
	return bytes.Equal(rawBytes(a), rawBytes(b))
}

// Sparsify returns in as a COO sparse initializer: the elements whose bits
// are not all zero (so -0.0 is kept) as a 1-D values tensor named in.Name,
// and their flat row-major positions as a 1-D int64 indices tensor. Dense
// is in itself. Tensors of packed 4- and 2-bit types come back with every
// element stored.
func Sparsify(in *graph.Initializer) *graph.SparseInitializer {
	t := in.Value
	s := &graph.SparseInitializer{Dense: in}
	for _, d := range t.Shape {
		s.Dims = append(s.Dims, int64(d))
	}
	var idx []int64
	vals := &tensor.Tensor{DType: t.DType}
	switch {
	case t.DType == tensor.Float32:
		vals.F32 = []float32{}
		for i, v := range t.F32 {
			if math.Float32bits(v) != 0 {
				idx = append(idx, int64(i))
				vals.F32 = append(vals.F32, v)
			}
		}
	case t.DType == tensor.Float64:
		vals.F64 = []float64{}
		for i, v := range t.F64 {
			if math.Float64bits(v) != 0 {
				idx = append(idx, int64(i))
				vals.F64 = append(vals.F64, v)
			}
		}
	case t.DType.IsInteger():
		vals.I64 = []int64{}
		for i, v := range t.I64 {
			if v != 0 {
				idx = append(idx, int64(i))
				vals.I64 = append(vals.I64, v)
			}
		}
	case t.DType == tensor.String:
		vals.Str = [][]byte{}
		for i, v := range t.Str {
			if len(v) != 0 {
				idx = append(idx, int64(i))
				vals.Str = append(vals.Str, v)
			}
		}
	default:
		l := layoutOf(t.DType)
		w := l.perElem
		if w == 0 {
			// Packed sub-byte types: store every element.
			vals.Raw = append([]byte{}, t.Raw...)
			idx = make([]int64, tensor.Numel(t.Shape))
			for i := range idx {
				idx[i] = int64(i)
			}
			break
		}
		vals.Raw = []byte{}
		for i := 0; i+w <= len(t.Raw); i += w {
			if e := t.Raw[i : i+w]; !allZero(e) {
				idx = append(idx, int64(i/w))
				vals.Raw = append(vals.Raw, e...)
			}
		}
	}
	if idx == nil {
		idx = []int64{}
	}
	vals.Shape = []int{len(idx)}
	s.Values = &graph.Initializer{Name: in.Name, Value: vals, Encoding: graph.Encoding{RawData: t.DType != tensor.String}}
	s.Indices = &graph.Initializer{Value: &tensor.Tensor{DType: tensor.Int64, Shape: []int{len(idx)}, I64: idx}, Encoding: graph.Encoding{RawData: true}}
	return s
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// SparsifyGraph moves into g.SparseInitializers (as Sparsify makes them)
// every float32 initializer of at least minElements elements whose COO
// form is smaller than its dense form: 4-byte values plus 8-byte flat
// indices, so below a third of the elements non-zero. The densified
// tensor stays reachable through g.Initializer. It returns how many it
// moved. Graph inputs that name a moved initializer are left as they are.
func SparsifyGraph(g *graph.Graph, minElements int) int {
	moved := 0
	kept := g.Initializers[:0:0]
	for _, in := range g.Initializers {
		t := in.Value
		if t == nil || t.DType != tensor.Float32 || len(t.F32) < minElements || len(t.F32) != tensor.Numel(t.Shape) {
			kept = append(kept, in)
			continue
		}
		nnz := 0
		for _, v := range t.F32 {
			if math.Float32bits(v) != 0 {
				nnz++
			}
		}
		if 12*nnz >= 4*len(t.F32) {
			kept = append(kept, in)
			continue
		}
		g.SparseInitializers = append(g.SparseInitializers, Sparsify(in))
		moved++
	}
	g.Initializers = kept
	return moved
}

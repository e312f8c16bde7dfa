package tensor

import (
	"fmt"
	"strings"
)

// DType is an element type. Its values are the ONNX TensorProto.DataType
// numbers, so a DType read from a file needs no translation.
type DType int32

// The element types of ONNX. The engine computes in Float32 and Int64; the
// others are carried (for example in initializers) so that a model survives
// a read and write unchanged.
const (
	Undefined  DType = 0
	Float32    DType = 1
	Uint8      DType = 2
	Int8       DType = 3
	Uint16     DType = 4
	Int16      DType = 5
	Int32      DType = 6
	Int64      DType = 7
	String     DType = 8
	Bool       DType = 9
	Float16    DType = 10
	Float64    DType = 11
	Uint32     DType = 12
	Uint64     DType = 13
	Complex64  DType = 14
	Complex128 DType = 15
	BFloat16   DType = 16
)

var dtypeNames = map[DType]string{
	Undefined: "undefined", Float32: "float32", Uint8: "uint8", Int8: "int8",
	Uint16: "uint16", Int16: "int16", Int32: "int32", Int64: "int64",
	String: "string", Bool: "bool", Float16: "float16", Float64: "float64",
	Uint32: "uint32", Uint64: "uint64", Complex64: "complex64",
	Complex128: "complex128", BFloat16: "bfloat16",
}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// IsInteger reports whether d is an integer or boolean type, whose values
// the engine holds widened to int64 in Tensor.I64.
func (d DType) IsInteger() bool {
	switch d {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Bool, Uint32, Uint64:
		return true
	}
	return false
}

// Wrap reduces v to the range of the integer type d as two's complement
// wrap-around does (as numpy and onnxruntime compute), and a Bool to 0 or
// 1; Int64, Uint64 and the other types keep v.
func (d DType) Wrap(v int64) int64 {
	switch d {
	case Int8:
		return int64(int8(v))
	case Uint8:
		return int64(uint8(v))
	case Int16:
		return int64(int16(v))
	case Uint16:
		return int64(uint16(v))
	case Int32:
		return int64(int32(v))
	case Uint32:
		return int64(uint32(v))
	case Bool:
		if v != 0 {
			return 1
		}
		return 0
	}
	return v
}

// Tensor is a dense, row-major (NCHW for images) array.
//
// Exactly one storage slice is used, chosen by DType:
//   - Float32: F32
//   - Float64: F64
//   - integer and boolean types: I64 (values widened; uint64 keeps its bits)
//   - String: Str
//   - any other type (float16, bfloat16, complex, float8, int4, ...): Raw,
//     the little-endian bytes as ONNX stores them.
//
// A Tensor with an empty Shape is a scalar with one element. A Tensor does
// not own a lock: callers that share one across goroutines synchronize.
type Tensor struct {
	DType DType
	Shape []int
	F32   []float32
	F64   []float64
	I64   []int64
	Str   [][]byte
	Raw   []byte
}

// New returns a zeroed float32 tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{DType: Float32, Shape: append([]int(nil), shape...), F32: make([]float32, Numel(shape))}
}

// FromFloat32 wraps data (not copied) as a float32 tensor of the given shape.
// It panics if len(data) does not match the shape: a programmer error.
func FromFloat32(data []float32, shape ...int) *Tensor {
	if len(data) != Numel(shape) {
		panic(fmt.Sprintf("tensor: FromFloat32: %d values for shape %v", len(data), shape))
	}
	return &Tensor{DType: Float32, Shape: append([]int(nil), shape...), F32: data}
}

// FromInt64 wraps data (not copied) as an int64 tensor of the given shape.
func FromInt64(data []int64, shape ...int) *Tensor {
	if len(data) != Numel(shape) {
		panic(fmt.Sprintf("tensor: FromInt64: %d values for shape %v", len(data), shape))
	}
	return &Tensor{DType: Int64, Shape: append([]int(nil), shape...), I64: data}
}

// Numel is the number of elements of a tensor of the given shape (1 for a
// scalar).
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len is the number of elements of t.
func (t *Tensor) Len() int { return Numel(t.Shape) }

// Rank is len(t.Shape).
func (t *Tensor) Rank() int { return len(t.Shape) }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: append([]int(nil), t.Shape...)}
	if t.F32 != nil {
		c.F32 = append([]float32(nil), t.F32...)
	}
	if t.F64 != nil {
		c.F64 = append([]float64(nil), t.F64...)
	}
	if t.I64 != nil {
		c.I64 = append([]int64(nil), t.I64...)
	}
	if t.Raw != nil {
		c.Raw = append([]byte(nil), t.Raw...)
	}
	if t.Str != nil {
		c.Str = make([][]byte, len(t.Str))
		for i, s := range t.Str {
			c.Str[i] = append([]byte(nil), s...)
		}
	}
	return c
}

// String describes t's type and shape, not its values.
func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s%v", t.DType, t.Shape)
	return b.String()
}

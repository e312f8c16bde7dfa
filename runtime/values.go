package runtime

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// nativeType reports whether the binding has a Go element type for d.
func nativeType(d tensor.DType) bool {
	switch d {
	case tensor.Float32, tensor.Float64, tensor.Bool,
		tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64,
		tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		return true
	}
	return false
}

// rawSize is the element size of the types this package passes as raw
// bytes, 0 for others.
func rawSize(d tensor.DType) int {
	switch d {
	case tensor.Float16, tensor.BFloat16:
		return 2
	case tensor.Complex64:
		return 8
	case tensor.Complex128:
		return 16
	}
	return 0
}

func ortShape(shape []int) ort.Shape {
	s := make(ort.Shape, len(shape))
	for i, d := range shape {
		s[i] = int64(d)
	}
	return s
}

func newValue[T ort.TensorData](shape []int, data []T) (ort.Value, error) {
	if len(shape) == 0 {
		return ort.NewScalar(data[0])
	}
	return ort.NewTensor(ortShape(shape), data)
}

func narrow[T int8 | int16 | int32 | uint8 | uint16 | uint32 | uint64](src []int64) []T {
	dst := make([]T, len(src))
	for i, v := range src {
		dst[i] = T(v)
	}
	return dst
}

// toORT wraps t as an onnxruntime value. float32, float64 and int64 data
// are shared, not copied; the caller destroys the value before t changes.
func toORT(t *tensor.Tensor) (ort.Value, error) {
	n := tensor.Numel(t.Shape)
	for _, d := range t.Shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	var have int
	switch {
	case t.DType == tensor.Float32:
		have = len(t.F32)
	case t.DType == tensor.Float64:
		have = len(t.F64)
	case t.DType == tensor.String:
		have = len(t.Str)
	case t.DType.IsInteger():
		have = len(t.I64)
	case rawSize(t.DType) > 0:
		have = len(t.Raw) / rawSize(t.DType)
	default:
		return nil, fmt.Errorf("element type %s is not supported", t.DType)
	}
	if have != n {
		return nil, fmt.Errorf("%s tensor of shape %v holds %d elements, want %d", t.DType, t.Shape, have, n)
	}
	switch t.DType {
	case tensor.Float32:
		return newValue(t.Shape, t.F32)
	case tensor.Float64:
		return newValue(t.Shape, t.F64)
	case tensor.Int64:
		return newValue(t.Shape, t.I64)
	case tensor.Int32:
		return newValue(t.Shape, narrow[int32](t.I64))
	case tensor.Int16:
		return newValue(t.Shape, narrow[int16](t.I64))
	case tensor.Int8:
		return newValue(t.Shape, narrow[int8](t.I64))
	case tensor.Uint8:
		return newValue(t.Shape, narrow[uint8](t.I64))
	case tensor.Uint16:
		return newValue(t.Shape, narrow[uint16](t.I64))
	case tensor.Uint32:
		return newValue(t.Shape, narrow[uint32](t.I64))
	case tensor.Uint64:
		return newValue(t.Shape, narrow[uint64](t.I64))
	case tensor.Bool:
		b := make([]bool, len(t.I64))
		for i, v := range t.I64 {
			b[i] = v != 0
		}
		return newValue(t.Shape, b)
	case tensor.String:
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("rank-0 string tensors are not supported by onnxruntime_go")
		}
		st, err := ort.NewStringTensor(ortShape(t.Shape))
		if err != nil {
			return nil, err
		}
		strs := make([]string, len(t.Str))
		for i, s := range t.Str {
			strs[i] = string(s)
		}
		if err := st.SetContents(strs); err != nil {
			st.Destroy()
			return nil, err
		}
		return st, nil
	}
	// Raw types.
	if len(t.Shape) == 0 || n == 0 {
		return nil, fmt.Errorf("%s tensor of shape %v: onnxruntime_go cannot pass empty or rank-0 %s tensors", t.DType, t.Shape, t.DType)
	}
	return ort.NewCustomDataTensor(ortShape(t.Shape), t.Raw, ort.TensorElementDataType(t.DType))
}

// newScalarOutput pre-allocates a rank-0 output of type d, which the
// binding cannot allocate itself.
func newScalarOutput(d tensor.DType) (ort.Value, error) {
	switch d {
	case tensor.Float32:
		return ort.NewEmptyScalar[float32]()
	case tensor.Float64:
		return ort.NewEmptyScalar[float64]()
	case tensor.Int64:
		return ort.NewEmptyScalar[int64]()
	case tensor.Int32:
		return ort.NewEmptyScalar[int32]()
	case tensor.Int16:
		return ort.NewEmptyScalar[int16]()
	case tensor.Int8:
		return ort.NewEmptyScalar[int8]()
	case tensor.Uint8:
		return ort.NewEmptyScalar[uint8]()
	case tensor.Uint16:
		return ort.NewEmptyScalar[uint16]()
	case tensor.Uint32:
		return ort.NewEmptyScalar[uint32]()
	case tensor.Uint64:
		return ort.NewEmptyScalar[uint64]()
	case tensor.Bool:
		return ort.NewEmptyScalar[bool]()
	}
	return nil, fmt.Errorf("no scalar of type %s", d)
}

func goShape(s ort.Shape) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

func widenInts[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](src []T) []int64 {
	dst := make([]int64, len(src))
	for i, v := range src {
		dst[i] = int64(v)
	}
	return dst
}

func boolsToInts(src []bool) []int64 {
	dst := make([]int64, len(src))
	for i, v := range src {
		if v {
			dst[i] = 1
		}
	}
	return dst
}

// fromORT copies an output value into a new tensor.Tensor. The binding
// already copied the data into Go memory, so the slices are taken over.
func fromORT(v ort.Value) (*tensor.Tensor, error) {
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		return &tensor.Tensor{DType: tensor.Float32, Shape: goShape(x.GetShape()), F32: x.GetData()}, nil
	case *ort.Tensor[float64]:
		return &tensor.Tensor{DType: tensor.Float64, Shape: goShape(x.GetShape()), F64: x.GetData()}, nil
	case *ort.Tensor[int64]:
		return &tensor.Tensor{DType: tensor.Int64, Shape: goShape(x.GetShape()), I64: x.GetData()}, nil
	case *ort.Tensor[int32]:
		return &tensor.Tensor{DType: tensor.Int32, Shape: goShape(x.GetShape()), I64: widenInts(x.GetData())}, nil
	case *ort.Tensor[int16]:
		return &tensor.Tensor{DType: tensor.Int16, Shape: goShape(x.GetShape()), I64: widenInts(x.GetData())}, nil
	case *ort.Tensor[int8]:
		return &tensor.Tensor{DType: tensor.Int8, Shape: goShape(x.GetShape()), I64: widenInts(x.GetData())}, nil
	case *ort.Tensor[uint8]:
		return &tensor.Tensor{DType: tensor.Uint8, Shape: goShape(x.GetShape()), I64: widenInts(x.GetData())}, nil
	case *ort.Tensor[uint16]:
		return &tensor.Tensor{DType: tensor.Uint16, Shape: goShape(x.GetShape()), I64: widenInts(x.GetData())}, nil
	case *ort.Tensor[uint32]:
		return &tensor.Tensor{DType: tensor.Uint32, Shape: goShape(x.GetShape()), I64: widenInts(x.GetData())}, nil
	case *ort.Tensor[uint64]:
		return &tensor.Tensor{DType: tensor.Uint64, Shape: goShape(x.GetShape()), I64: widenInts(x.GetData())}, nil
	case *ort.Tensor[bool]:
		return &tensor.Tensor{DType: tensor.Bool, Shape: goShape(x.GetShape()), I64: boolsToInts(x.GetData())}, nil
	case *ort.Scalar[float32]:
		return &tensor.Tensor{DType: tensor.Float32, Shape: []int{}, F32: []float32{x.GetData()}}, nil
	case *ort.Scalar[float64]:
		return &tensor.Tensor{DType: tensor.Float64, Shape: []int{}, F64: []float64{x.GetData()}}, nil
	case *ort.Scalar[int64]:
		return &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{x.GetData()}}, nil
	case *ort.Scalar[int32]:
		return scalarInt(tensor.Int32, int64(x.GetData())), nil
	case *ort.Scalar[int16]:
		return scalarInt(tensor.Int16, int64(x.GetData())), nil
	case *ort.Scalar[int8]:
		return scalarInt(tensor.Int8, int64(x.GetData())), nil
	case *ort.Scalar[uint8]:
		return scalarInt(tensor.Uint8, int64(x.GetData())), nil
	case *ort.Scalar[uint16]:
		return scalarInt(tensor.Uint16, int64(x.GetData())), nil
	case *ort.Scalar[uint32]:
		return scalarInt(tensor.Uint32, int64(x.GetData())), nil
	case *ort.Scalar[uint64]:
		return scalarInt(tensor.Uint64, int64(x.GetData())), nil
	case *ort.Scalar[bool]:
		return &tensor.Tensor{DType: tensor.Bool, Shape: []int{}, I64: boolsToInts([]bool{x.GetData()})}, nil
	case *ort.StringTensor:
		strs, err := x.GetContents()
		if err != nil {
			return nil, fmt.Errorf("reading strings: %w", err)
		}
		b := make([][]byte, len(strs))
		for i, s := range strs {
			b[i] = []byte(s)
		}
		return &tensor.Tensor{DType: tensor.String, Shape: goShape(x.GetShape()), Str: b}, nil
	case *ort.CustomDataTensor:
		d := tensor.DType(x.DataType())
		return &tensor.Tensor{DType: d, Shape: goShape(x.GetShape()), Raw: append([]byte(nil), x.GetData()...)}, nil
	}
	return nil, fmt.Errorf("unsupported onnxruntime value %T", v)
}

func scalarInt(d tensor.DType, v int64) *tensor.Tensor {
	return &tensor.Tensor{DType: d, Shape: []int{}, I64: []int64{v}}
}

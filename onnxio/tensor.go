package onnxio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// ONNX element types past tensor.BFloat16 that the IR carries as Raw bytes.
const (
	dtFloat8E4M3FN   = 17
	dtFloat8E4M3FNUZ = 18
	dtFloat8E5M2     = 19
	dtFloat8E5M2FNUZ = 20
	dtUint4          = 21
	dtInt4           = 22
	dtFloat4E2M1     = 23
	dtFloat8E8M0     = 24
	dtUint2          = 25
	dtInt2           = 26
)

// layout describes how n elements of an ONNX type are stored as raw bytes:
// per elements take bytes (1 element per 1..16 bytes, or 2 or 4 elements per
// byte for the packed sub-byte types).
type layout struct {
	perElem  int // bytes per element; 0 for packed sub-byte types
	perByte  int // elements per byte for packed types
	ok       bool
	typedKey string // the typed repeated field this type uses
}

func layoutOf(dt tensor.DType) layout {
	switch dt {
	case tensor.Float32:
		return layout{perElem: 4, ok: true, typedKey: "float_data"}
	case tensor.Float64:
		return layout{perElem: 8, ok: true, typedKey: "double_data"}
	case tensor.Int64:
		return layout{perElem: 8, ok: true, typedKey: "int64_data"}
	case tensor.Int32:
		return layout{perElem: 4, ok: true, typedKey: "int32_data"}
	case tensor.Int16, tensor.Uint16:
		return layout{perElem: 2, ok: true, typedKey: "int32_data"}
	case tensor.Int8, tensor.Uint8, tensor.Bool:
		return layout{perElem: 1, ok: true, typedKey: "int32_data"}
	case tensor.Uint32:
		return layout{perElem: 4, ok: true, typedKey: "uint64_data"}
	case tensor.Uint64:
		return layout{perElem: 8, ok: true, typedKey: "uint64_data"}
	case tensor.String:
		return layout{ok: true, typedKey: "string_data"}
	case tensor.Float16, tensor.BFloat16:
		return layout{perElem: 2, ok: true, typedKey: "int32_data"}
	case tensor.Complex64:
		return layout{perElem: 8, ok: true, typedKey: "float_data"}
	case tensor.Complex128:
		return layout{perElem: 16, ok: true, typedKey: "double_data"}
	case dtFloat8E4M3FN, dtFloat8E4M3FNUZ, dtFloat8E5M2, dtFloat8E5M2FNUZ, dtFloat8E8M0:
		return layout{perElem: 1, ok: true, typedKey: "int32_data"}
	case dtUint4, dtInt4, dtFloat4E2M1:
		return layout{perByte: 2, ok: true, typedKey: "int32_data"}
	case dtUint2, dtInt2:
		return layout{perByte: 4, ok: true, typedKey: "int32_data"}
	}
	return layout{}
}

// rawSize is the number of raw bytes n elements take.
func (l layout) rawSize(n int64) (int64, bool) {
	if l.perByte > 0 {
		return (n + int64(l.perByte) - 1) / int64(l.perByte), true
	}
	hi, lo := bits.Mul64(uint64(n), uint64(l.perElem))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// maxElements bounds the element count a tensor's dims may declare. It is
// far above anything that fits in memory; the real guard is that the count
// must match the data the file actually holds, checked before allocating.
const maxElements = 1 << 56

// dimsNumel validates dims (non-negative, product without overflow) and
// returns the element count and the shape as ints.
func dimsNumel(dims []int64) (int64, []int, error) {
	n := int64(1)
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 {
			return 0, nil, fmt.Errorf("dims %v: dimension %d is negative", dims, i)
		}
		if d > maxElements {
			return 0, nil, fmt.Errorf("dims %v: dimension %d is absurdly large", dims, i)
		}
		shape[i] = int(d)
		if n == 0 {
			continue
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > maxElements {
			return 0, nil, fmt.Errorf("dims %v claim more than 2^56 elements", dims)
		}
		n = int64(lo)
	}
	return n, shape, nil
}

// tensorFromProto converts a TensorProto. Data that lives in an external
// file is left unloaded (Value has DType and Shape but no storage); see
// resolveExternal.
func tensorFromProto(p *onnxpb.Tensor) (*graph.Initializer, error) {
	in := &graph.Initializer{
		Name:      p.GetName(),
		DocString: p.GetDocString(),
		Metadata:  pairsFromProto(p.MetadataProps),
		Unknown:   unknownOf(p),
	}
	if p.Name != nil {
		setPresent(&in.Present, "name")
	}
	if p.DocString != nil {
		setPresent(&in.Present, "doc_string")
	}
	if p.DataType != nil {
		setPresent(&in.Present, "data_type")
	}
	if p.DataLocation != nil {
		setPresent(&in.Present, "data_location")
	}
	in.Encoding.RawData = p.RawData != nil
	in.Encoding.DataLocation = int32(p.GetDataLocation())
	if len(p.ExternalData) > 0 {
		in.Encoding.External = pairsFromProto(p.ExternalData)
	}
	if s := p.Segment; s != nil {
		seg := &graph.Segment{Begin: s.GetBegin(), End: s.GetEnd(), Unknown: unknownOf(s)}
		if s.Begin != nil {
			setPresent(&seg.Present, "begin")
		}
		if s.End != nil {
			setPresent(&seg.Present, "end")
		}
		in.Encoding.Segment = seg
	}
	n, shape, err := dimsNumel(p.Dims)
	if err != nil {
		return nil, tensorErr(in.Name, err)
	}
	dt := tensor.DType(p.GetDataType())
	t := &tensor.Tensor{DType: dt, Shape: shape}
	in.Value = t

	// Which data fields hold something?
	var fields []string
	if p.RawData != nil && (len(p.RawData) > 0 || n > 0) {
		fields = append(fields, "raw_data")
	}
	for _, f := range []struct {
		name string
		n    int
	}{
		{"float_data", len(p.FloatData)}, {"int32_data", len(p.Int32Data)},
		{"string_data", len(p.StringData)}, {"int64_data", len(p.Int64Data)},
		{"double_data", len(p.DoubleData)}, {"uint64_data", len(p.Uint64Data)},
	} {
		if f.n > 0 {
			fields = append(fields, f.name)
		}
	}
	if len(fields) > 1 {
		return nil, tensorErr(in.Name, fmt.Errorf("data is stored in both %s and %s; an ONNX tensor uses one field", fields[0], fields[1]))
	}
	if in.Encoding.DataLocation == int32(onnxpb.Tensor_EXTERNAL) {
		if len(fields) > 0 {
			return nil, tensorErr(in.Name, fmt.Errorf("data_location is EXTERNAL but the tensor also holds data in %s", fields[0]))
		}
		return in, nil // loaded by ReadFile
	}
	if len(fields) == 0 {
		if n > 0 {
			return nil, tensorErr(in.Name, fmt.Errorf("dims %v claim %d elements but the tensor holds no data", p.Dims, n))
		}
		return in, setEmpty(t)
	}
	l := layoutOf(dt)
	if !l.ok {
		return nil, tensorErr(in.Name, fmt.Errorf("unsupported data type %d", int32(dt)))
	}
	if fields[0] == "raw_data" {
		if dt == tensor.String {
			return nil, tensorErr(in.Name, fmt.Errorf("string tensor stored in raw_data; strings belong in string_data"))
		}
		want, ok := l.rawSize(n)
		if !ok || int64(len(p.RawData)) != want {
			return nil, tensorErr(in.Name, fmt.Errorf("dims %v claim %d %s elements (%d bytes) but raw_data holds %d bytes", p.Dims, n, dt, want, len(p.RawData)))
		}
		decodeRaw(t, p.RawData, int(n))
		return in, nil
	}
	if fields[0] != l.typedKey {
		return nil, tensorErr(in.Name, fmt.Errorf("%s data stored in %s; ONNX stores it in %s or raw_data", dt, fields[0], l.typedKey))
	}
	if err := decodeTyped(t, p, n, l); err != nil {
		return nil, tensorErr(in.Name, fmt.Errorf("dims %v: %w", p.Dims, err))
	}
	return in, nil
}

func tensorErr(name string, err error) error {
	return fmt.Errorf("tensor %q: %w", name, err)
}

// setEmpty gives a zero-element tensor the empty storage of its type so
// that callers can tell it from an unloaded external tensor.
func setEmpty(t *tensor.Tensor) error {
	switch {
	case t.DType == tensor.Float32:
		t.F32 = []float32{}
	case t.DType == tensor.Float64:
		t.F64 = []float64{}
	case t.DType.IsInteger():
		t.I64 = []int64{}
	case t.DType == tensor.String:
		t.Str = [][]byte{}
	default:
		t.Raw = []byte{}
	}
	return nil
}

// decodeRaw fills t's storage from little-endian bytes holding n elements;
// len(b) has been checked against n.
func decodeRaw(t *tensor.Tensor, b []byte, n int) {
	le := binary.LittleEndian
	switch t.DType {
	case tensor.Float32:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case tensor.Float64:
		t.F64 = make([]float64, n)
		for i := range t.F64 {
			t.F64[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case tensor.Int64, tensor.Uint64, tensor.Int32, tensor.Uint32, tensor.Int16, tensor.Uint16, tensor.Int8, tensor.Uint8, tensor.Bool:
		// Each element's perElem little-endian bytes as an unsigned
		// number, sign-extended by its type (a Bool byte is kept as is).
		dt, size := t.DType, layoutOf(t.DType).perElem
		if dt == tensor.Bool {
			dt = tensor.Uint8
		}
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			var u uint64
			switch e := b[size*i:]; size {
			case 8:
				u = le.Uint64(e)
			case 4:
				u = uint64(le.Uint32(e))
			case 2:
				u = uint64(le.Uint16(e))
			default:
				u = uint64(e[0])
			}
			t.I64[i] = dt.Wrap(int64(u))
		}
	default:
		t.Raw = append([]byte{}, b...)
	}
}

// decodeTyped fills t from the typed repeated field l.typedKey of p.
func decodeTyped(t *tensor.Tensor, p *onnxpb.Tensor, n int64, l layout) error {
	count := func(have int, want int64) error {
		if int64(have) != want {
			return fmt.Errorf("%d %s elements declared but %s holds %d values", n, t.DType, l.typedKey, have)
		}
		return nil
	}
	switch t.DType {
	case tensor.Float32:
		if err := count(len(p.FloatData), n); err != nil {
			return err
		}
		t.F32 = append([]float32{}, p.FloatData...)
	case tensor.Float64:
		if err := count(len(p.DoubleData), n); err != nil {
			return err
		}
		t.F64 = append([]float64{}, p.DoubleData...)
	case tensor.Int64:
		if err := count(len(p.Int64Data), n); err != nil {
			return err
		}
		t.I64 = append([]int64{}, p.Int64Data...)
	case tensor.Int32, tensor.Int16, tensor.Uint16, tensor.Int8, tensor.Uint8, tensor.Bool:
		if err := count(len(p.Int32Data), n); err != nil {
			return err
		}
		t.I64 = make([]int64, n)
		for i, v := range p.Int32Data {
			t.I64[i] = int64(v)
		}
	case tensor.Uint32, tensor.Uint64:
		if err := count(len(p.Uint64Data), n); err != nil {
			return err
		}
		t.I64 = make([]int64, n)
		for i, v := range p.Uint64Data {
			t.I64[i] = int64(v)
		}
	case tensor.String:
		if err := count(len(p.StringData), n); err != nil {
			return err
		}
		t.Str = make([][]byte, n)
		for i, s := range p.StringData {
			t.Str[i] = append([]byte{}, s...)
		}
	case tensor.Complex64:
		if err := count(len(p.FloatData), 2*n); err != nil {
			return err
		}
		t.Raw = make([]byte, 4*len(p.FloatData))
		for i, v := range p.FloatData {
			binary.LittleEndian.PutUint32(t.Raw[4*i:], math.Float32bits(v))
		}
	case tensor.Complex128:
		if err := count(len(p.DoubleData), 2*n); err != nil {
			return err
		}
		t.Raw = make([]byte, 8*len(p.DoubleData))
		for i, v := range p.DoubleData {
			binary.LittleEndian.PutUint64(t.Raw[8*i:], math.Float64bits(v))
		}
	default:
		// float16, bfloat16, float8 (one element per int32) and the packed
		// 4- and 2-bit types (one byte of packed elements per int32).
		per := l.perElem
		want := n
		if l.perByte > 0 {
			per = 1
			want, _ = l.rawSize(n)
		}
		if err := count(len(p.Int32Data), want); err != nil {
			return err
		}
		limit := int64(1) << (8 * per)
		t.Raw = make([]byte, per*len(p.Int32Data))
		for i, v := range p.Int32Data {
			if int64(v) < 0 || int64(v) >= limit {
				return fmt.Errorf("int32_data[%d] = %d does not fit a %d-byte %s element", i, v, per, t.DType)
			}
			for k := range per {
				t.Raw[per*i+k] = byte(v >> (8 * k))
			}
		}
	}
	return nil
}

// hasData reports whether t's storage is loaded.
func hasData(t *tensor.Tensor) bool {
	return t.F32 != nil || t.F64 != nil || t.I64 != nil || t.Str != nil || t.Raw != nil
}

// storageLen is the number of elements t's storage holds, or for Raw the
// number of bytes.
func storageLen(t *tensor.Tensor) int {
	switch {
	case t.F32 != nil:
		return len(t.F32)
	case t.F64 != nil:
		return len(t.F64)
	case t.I64 != nil:
		return len(t.I64)
	case t.Str != nil:
		return len(t.Str)
	}
	return len(t.Raw)
}

// checkStorage verifies that t's storage slice is the one its DType uses and
// holds exactly as many elements as its shape says.
func checkStorage(t *tensor.Tensor) error {
	n := int64(1)
	for i, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("shape %v: dimension %d is negative", t.Shape, i)
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > maxElements {
			return fmt.Errorf("shape %v is too large", t.Shape)
		}
		n = int64(lo)
	}
	var have int
	var field string
	switch {
	case t.DType == tensor.Float32:
		have, field = len(t.F32), "F32"
	case t.DType == tensor.Float64:
		have, field = len(t.F64), "F64"
	case t.DType.IsInteger():
		have, field = len(t.I64), "I64"
	case t.DType == tensor.String:
		have, field = len(t.Str), "Str"
	default:
		l := layoutOf(t.DType)
		if !l.ok {
			if n == 0 && len(t.Raw) == 0 {
				return nil // an empty tensor of no (or an unknown) type
			}
			return fmt.Errorf("unsupported data type %d", int32(t.DType))
		}
		want, _ := l.rawSize(n)
		if int64(len(t.Raw)) != want {
			return fmt.Errorf("%s shape %v needs %d bytes in Raw, has %d", t.DType, t.Shape, want, len(t.Raw))
		}
		return nil
	}
	if int64(have) != n {
		return fmt.Errorf("%s shape %v needs %d elements in %s, has %d", t.DType, t.Shape, n, field, have)
	}
	return nil
}

// rawBytes encodes t's elements as ONNX raw_data (little-endian).
func rawBytes(t *tensor.Tensor) []byte {
	le := binary.LittleEndian
	switch t.DType {
	case tensor.Float32:
		b := make([]byte, 4*len(t.F32))
		for i, v := range t.F32 {
			le.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	case tensor.Float64:
		b := make([]byte, 8*len(t.F64))
		for i, v := range t.F64 {
			le.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b
	case tensor.Int64, tensor.Uint64:
		b := make([]byte, 8*len(t.I64))
		for i, v := range t.I64 {
			le.PutUint64(b[8*i:], uint64(v))
		}
		return b
	case tensor.Int32, tensor.Uint32:
		b := make([]byte, 4*len(t.I64))
		for i, v := range t.I64 {
			le.PutUint32(b[4*i:], uint32(v))
		}
		return b
	case tensor.Int16, tensor.Uint16:
		b := make([]byte, 2*len(t.I64))
		for i, v := range t.I64 {
			le.PutUint16(b[2*i:], uint16(v))
		}
		return b
	case tensor.Int8, tensor.Uint8, tensor.Bool:
		b := make([]byte, len(t.I64))
		for i, v := range t.I64 {
			b[i] = byte(v)
		}
		return b
	}
	return append([]byte{}, t.Raw...)
}

// putTyped stores t's elements in the typed repeated field of p.
func putTyped(p *onnxpb.Tensor, t *tensor.Tensor) {
	switch t.DType {
	case tensor.Float32:
		p.FloatData = append([]float32(nil), t.F32...)
	case tensor.Float64:
		p.DoubleData = append([]float64(nil), t.F64...)
	case tensor.Int64:
		p.Int64Data = append([]int64(nil), t.I64...)
	case tensor.Int32, tensor.Int16, tensor.Uint16, tensor.Int8, tensor.Uint8, tensor.Bool:
		if len(t.I64) > 0 {
			p.Int32Data = make([]int32, len(t.I64))
		}
		for i, v := range t.I64 {
			p.Int32Data[i] = int32(v)
		}
	case tensor.Uint32, tensor.Uint64:
		if len(t.I64) > 0 {
			p.Uint64Data = make([]uint64, len(t.I64))
		}
		for i, v := range t.I64 {
			p.Uint64Data[i] = uint64(v)
		}
	case tensor.String:
		for _, s := range t.Str {
			p.StringData = append(p.StringData, append([]byte{}, s...))
		}
	case tensor.Complex64:
		for i := 0; i+4 <= len(t.Raw); i += 4 {
			p.FloatData = append(p.FloatData, math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[i:])))
		}
	case tensor.Complex128:
		for i := 0; i+8 <= len(t.Raw); i += 8 {
			p.DoubleData = append(p.DoubleData, math.Float64frombits(binary.LittleEndian.Uint64(t.Raw[i:])))
		}
	default:
		l := layoutOf(t.DType)
		per := l.perElem
		if l.perByte > 0 || per == 0 {
			per = 1
		}
		for i := 0; i+per <= len(t.Raw); i += per {
			var v int32
			for k := range per {
				v |= int32(t.Raw[i+k]) << (8 * k)
			}
			p.Int32Data = append(p.Int32Data, v)
		}
	}
}

// tensorToProto converts an initializer back to a TensorProto, reproducing
// the encoding recorded in in.Encoding. A tensor whose external data was
// loaded (by ReadFile) is written inline as raw_data.
func tensorToProto(in *graph.Initializer) (*onnxpb.Tensor, error) {
	if in == nil {
		return nil, fmt.Errorf("nil tensor")
	}
	p := &onnxpb.Tensor{
		Name:          optString(in.Name, in.Present, "name"),
		DocString:     optString(in.DocString, in.Present, "doc_string"),
		MetadataProps: pairsToProto(in.Metadata),
	}
	setUnknown(p, in.Unknown)
	t := in.Value
	if t == nil {
		return nil, tensorErr(in.Name, fmt.Errorf("no value"))
	}
	if t.DType != 0 || in.Present["data_type"] {
		p.DataType = proto.Int32(int32(t.DType))
	}
	for _, d := range t.Shape {
		p.Dims = append(p.Dims, int64(d))
	}
	if s := in.Encoding.Segment; s != nil {
		ps := &onnxpb.Tensor_Segment{}
		if s.Begin != 0 || s.Present["begin"] {
			ps.Begin = proto.Int64(s.Begin)
		}
		if s.End != 0 || s.Present["end"] {
			ps.End = proto.Int64(s.End)
		}
		setUnknown(ps, s.Unknown)
		p.Segment = ps
	}
	enc := in.Encoding
	external := enc.DataLocation == int32(onnxpb.Tensor_EXTERNAL)
	inlined := false
	if !hasData(t) {
		n, _, err := dimsNumel(p.Dims)
		if err != nil {
			return nil, tensorErr(in.Name, err)
		}
		if !external && n > 0 {
			return nil, tensorErr(in.Name, fmt.Errorf("shape %v but no data", t.Shape))
		}
		if enc.RawData {
			p.RawData = []byte{}
		}
	} else {
		if err := checkStorage(t); err != nil {
			return nil, tensorErr(in.Name, err)
		}
		raw := enc.RawData
		if external {
			// External data that ReadFile loaded is written inline.
			inlined, raw = true, true
		}
		switch {
		case raw && t.DType == tensor.String && len(t.Str) == 0:
			p.RawData = []byte{}
		case raw && t.DType != tensor.String:
			p.RawData = rawBytes(t)
		default:
			putTyped(p, t)
		}
	}
	if !inlined {
		if len(enc.External) > 0 {
			p.ExternalData = pairsToProto(enc.External)
		}
		if enc.DataLocation != 0 || in.Present["data_location"] {
			loc := onnxpb.Tensor_DataLocation(enc.DataLocation)
			p.DataLocation = &loc
		}
	}
	return p, nil
}

// DecodeTensor decodes a serialized ONNX TensorProto, such as the
// input_K.pb and output_K.pb files of the ONNX backend tests.
func DecodeTensor(b []byte) (*tensor.Tensor, error) {
	in, err := decodeTensorProto(b, "")
	if err != nil {
		return nil, err
	}
	return in.Value, nil
}

func decodeTensorProto(b []byte, file string) (*graph.Initializer, error) {
	if len(b) > MaxModelSize {
		return nil, fileErr(file, fmt.Errorf("%d bytes is larger than the %d-byte limit of a protobuf message", len(b), MaxModelSize))
	}
	var p onnxpb.Tensor
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, fileErr(file, fmt.Errorf("not an ONNX tensor: %v", err))
	}
	in, err := tensorFromProto(&p)
	if err != nil {
		return nil, fileErr(file, err)
	}
	if !hasData(in.Value) {
		return nil, fileErr(file, tensorErr(in.Name, fmt.Errorf("data is external; a tensor file must hold its data")))
	}
	return in, nil
}

// ReadTensorFile reads a serialized ONNX TensorProto file.
func ReadTensorFile(path string) (*tensor.Tensor, error) {
	b, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	in, err := decodeTensorProto(b, path)
	if err != nil {
		return nil, err
	}
	return in.Value, nil
}

// EncodeTensor serializes t as an ONNX TensorProto named name (omitted when
// empty), with numeric data in raw_data and strings in string_data, the
// layout the ONNX tools write.
func EncodeTensor(t *tensor.Tensor, name string) ([]byte, error) {
	in := &graph.Initializer{Name: name, Value: t, Encoding: graph.Encoding{RawData: t != nil && t.DType != tensor.String}}
	p, err := tensorToProto(in)
	if err != nil {
		return nil, fmt.Errorf("onnxio: EncodeTensor: %w", err)
	}
	if name == "" {
		p.Name = nil
	}
	return proto.Marshal(p)
}

// readLimited reads a whole file, refusing files over MaxModelSize before
// reading them.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("onnxio: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("onnxio: %w", err)
	}
	if st.IsDir() {
		return nil, fileErr(path, fmt.Errorf("is a directory, not a file"))
	}
	if st.Size() > MaxModelSize {
		return nil, fileErr(path, fmt.Errorf("%d bytes is larger than the %d-byte limit of a protobuf message; store large weights as external data", st.Size(), MaxModelSize))
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fileErr(path, err)
	}
	return b, nil
}

package onnxio

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// withUnknown appends an unknown varint field (number 999) to m.
func withUnknown[T proto.Message](m T) T {
	r := m.ProtoReflect()
	u := protowire.AppendTag(r.GetUnknown(), 999, protowire.VarintType)
	r.SetUnknown(protowire.AppendVarint(u, 42))
	return m
}

// richModel exercises every field the IR carries: unknown fields at many
// levels, explicit empty/zero optional fields, opaque fields.
func richModel() *onnxpb.Model {
	m := reluModel(8, 13, nil)
	m.DocString = proto.String("")
	m.ModelVersion = proto.Int64(0)
	m.Domain = proto.String("test.domain")
	m.MetadataProps = []*onnxpb.StringStringEntry{withUnknown(&onnxpb.StringStringEntry{Key: proto.String("k"), Value: proto.String("")})}
	m.OpsetImport = append(m.OpsetImport, withUnknown(&onnxpb.OperatorSetID{Domain: proto.String("com.example"), Version: proto.Int64(1)}))
	m.TrainingInfo = []*onnxpb.TrainingInfo{{Algorithm: &onnxpb.Graph{Name: proto.String("algo")}}}
	m.Functions = []*onnxpb.Function{{Name: proto.String("f"), Domain: proto.String("com.example"), Node: []*onnxpb.Node{node("n", "Relu", []string{"x"}, "y")}}}
	m.Configuration = []*onnxpb.DeviceConfiguration{{Name: proto.String("cfg"), NumDevices: proto.Int32(2)}}
	withUnknown(m)
	g := m.Graph
	withUnknown(g)
	g.DocString = proto.String("")
	g.QuantizationAnnotation = []*onnxpb.TensorAnnotation{{TensorName: proto.String("W")}}
	g.MetadataProps = []*onnxpb.StringStringEntry{{Key: proto.String("gk"), Value: proto.String("gv")}}
	withUnknown(g.Node[0])
	g.Node[0].Domain = proto.String("")
	g.Node[0].DeviceConfigurations = []*onnxpb.NodeDeviceConfiguration{{ConfigurationId: proto.String("cfg"), PipelineStage: proto.Int32(1)}}
	at := onnxpb.Attribute_FLOAT
	ti := onnxpb.Attribute_TENSOR
	sp := onnxpb.Attribute_SPARSE_TENSOR
	tp := onnxpb.Attribute_TYPE_PROTO
	g.Node[1].Attribute = []*onnxpb.Attribute{
		withUnknown(&onnxpb.Attribute{Name: proto.String("alpha"), Type: &at, F: proto.Float32(0)}),
		{Name: proto.String("s"), S: []byte{}},
		{Name: proto.String("t"), Type: &ti, T: withUnknown(&onnxpb.Tensor{DataType: proto.Int32(10), Dims: []int64{2}, Int32Data: []int32{0x3c00, 0xbc00}})},
		{Name: proto.String("sp"), Type: &sp, SparseTensor: &onnxpb.SparseTensor{Dims: []int64{3}}},
		{Name: proto.String("tp"), Type: &tp, Tp: tensorType(1, 2)},
		{Name: proto.String("g"), G: &onnxpb.Graph{Name: proto.String("sub"), Node: []*onnxpb.Node{node("", "Identity", []string{"X"}, "Z")}}},
	}
	g.Input[0].DocString = proto.String("")
	withUnknown(g.Input[0])
	tt := g.Input[0].Type.GetTensorType()
	withUnknown(tt)
	withUnknown(tt.Shape)
	withUnknown(tt.Shape.Dim[0])
	tt.Shape.Dim[0].Denotation = proto.String("DATA_BATCH")
	g.Input[0].Type.Denotation = proto.String("TENSOR")
	withUnknown(g.Input[0].Type)
	g.ValueInfo = []*onnxpb.ValueInfo{
		{Name: proto.String("S"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType_{SequenceType: &onnxpb.TypeProto_SequenceType{ElemType: tensorType(1)}}}},
		{Name: proto.String("unknown-rank"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType_{TensorType: &onnxpb.TypeProto_TensorType{ElemType: proto.Int32(1)}}}},
		{Name: proto.String("scalar"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType_{TensorType: &onnxpb.TypeProto_TensorType{ElemType: proto.Int32(1), Shape: &onnxpb.TensorShape{}}}}},
		{Name: proto.String("nodim"), Type: tensorType(1, 3)},
	}
	g.ValueInfo[3].Type.GetTensorType().Shape.Dim = append(g.ValueInfo[3].Type.GetTensorType().Shape.Dim, &onnxpb.TensorShape_Dimension{})
	seg := withUnknown(&onnxpb.Tensor_Segment{Begin: proto.Int64(0), End: proto.Int64(4)})
	g.Initializer[0].Segment = seg
	g.Initializer[0].DocString = proto.String("weights")
	withUnknown(g.Initializer[0])
	g.SparseInitializer = []*onnxpb.SparseTensor{withUnknown(&onnxpb.SparseTensor{
		Values:  &onnxpb.Tensor{Name: proto.String("SP"), DataType: proto.Int32(1), Dims: []int64{2}, FloatData: []float32{5, 6}},
		Indices: &onnxpb.Tensor{DataType: proto.Int32(7), Dims: []int64{2, 2}, Int64Data: []int64{0, 1, 2, 0}},
		Dims:    []int64{3, 2},
	})}
	return m
}

func TestRoundTripRichModel(t *testing.T) {
	want := richModel()
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	out, err := Marshal(m)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var got onnxpb.Model
	if err := proto.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, want) {
		t.Errorf("round trip differs:\ngot  %v\nwant %v", &got, want)
	}
	// What the IR shows of it.
	if n := len(m.Opaque); n != 3 {
		t.Errorf("model carries %d opaque fields, want 3", n)
	}
	if !m.Present["doc_string"] || !m.Present["model_version"] {
		t.Errorf("model Present = %v, want doc_string and model_version", m.Present)
	}
	sp := m.Graph.Initializer("SP")
	if sp == nil {
		t.Fatal(`Graph.Initializer("SP") = nil, want the densified sparse initializer`)
	}
	if want := []float32{0, 5, 0, 0, 6, 0}; !cmp.Equal(sp.Value.F32, want) {
		t.Errorf("densified SP = %v, want %v", sp.Value.F32, want)
	}
	if a := m.Graph.Nodes[1].Attr("t"); a == nil || !bytes.Equal(a.T.Value.Raw, []byte{0x00, 0x3c, 0x00, 0xbc}) {
		t.Errorf("float16 attribute tensor not decoded to raw little-endian bytes: %+v", a)
	}
	if d := m.Graph.Inputs[0].Type.Shape[0]; !d.HasParam || d.Param != "N" || d.Denotation != "DATA_BATCH" {
		t.Errorf("input dim 0 = %+v, want symbolic N with denotation", d)
	}
}

// TestTensorEncodings round-trips one tensor of every type through the IR,
// raw and typed, and checks the decoded values.
func TestTensorEncodings(t *testing.T) {
	le := func(vals ...uint64) func(size int) []byte {
		return func(size int) []byte {
			var b []byte
			for _, v := range vals {
				for k := range size {
					b = append(b, byte(v>>(8*k)))
				}
			}
			return b
		}
	}
	tests := []struct {
		name  string
		p     *onnxpb.Tensor
		check func(*tensor.Tensor) bool
	}{
		{"float raw", &onnxpb.Tensor{DataType: proto.Int32(1), Dims: []int64{2}, RawData: le(uint64(math.Float32bits(1.5)), uint64(math.Float32bits(float32(math.Inf(-1)))))(4)},
			func(x *tensor.Tensor) bool { return x.F32[0] == 1.5 && math.IsInf(float64(x.F32[1]), -1) }},
		{"float typed NaN", &onnxpb.Tensor{DataType: proto.Int32(1), Dims: []int64{1}, FloatData: []float32{float32(math.NaN())}},
			func(x *tensor.Tensor) bool { return math.IsNaN(float64(x.F32[0])) }},
		{"double raw", &onnxpb.Tensor{DataType: proto.Int32(11), Dims: []int64{1}, RawData: le(math.Float64bits(-2.25))(8)},
			func(x *tensor.Tensor) bool { return x.F64[0] == -2.25 }},
		{"double typed", &onnxpb.Tensor{DataType: proto.Int32(11), Dims: []int64{1}, DoubleData: []float64{3}},
			func(x *tensor.Tensor) bool { return x.F64[0] == 3 }},
		{"int8 raw", &onnxpb.Tensor{DataType: proto.Int32(3), Dims: []int64{2}, RawData: []byte{0xff, 7}},
			func(x *tensor.Tensor) bool { return x.I64[0] == -1 && x.I64[1] == 7 }},
		{"uint8 raw", &onnxpb.Tensor{DataType: proto.Int32(2), Dims: []int64{1}, RawData: []byte{0xff}},
			func(x *tensor.Tensor) bool { return x.I64[0] == 255 }},
		{"int16 raw", &onnxpb.Tensor{DataType: proto.Int32(5), Dims: []int64{1}, RawData: []byte{0xfe, 0xff}},
			func(x *tensor.Tensor) bool { return x.I64[0] == -2 }},
		{"uint16 typed", &onnxpb.Tensor{DataType: proto.Int32(4), Dims: []int64{1}, Int32Data: []int32{65535}},
			func(x *tensor.Tensor) bool { return x.I64[0] == 65535 }},
		{"int32 raw", &onnxpb.Tensor{DataType: proto.Int32(6), Dims: []int64{1}, RawData: le(0xfffffffd)(4)},
			func(x *tensor.Tensor) bool { return x.I64[0] == -3 }},
		{"int64 typed", &onnxpb.Tensor{DataType: proto.Int32(7), Dims: []int64{3}, Int64Data: []int64{-1, 0, math.MaxInt64}},
			func(x *tensor.Tensor) bool { return x.I64[2] == math.MaxInt64 }},
		{"uint32 typed", &onnxpb.Tensor{DataType: proto.Int32(12), Dims: []int64{1}, Uint64Data: []uint64{4294967295}},
			func(x *tensor.Tensor) bool { return x.I64[0] == 4294967295 }},
		{"uint64 raw", &onnxpb.Tensor{DataType: proto.Int32(13), Dims: []int64{1}, RawData: le(math.MaxUint64)(8)},
			func(x *tensor.Tensor) bool { return uint64(x.I64[0]) == math.MaxUint64 }},
		{"bool raw", &onnxpb.Tensor{DataType: proto.Int32(9), Dims: []int64{2}, RawData: []byte{1, 0}},
			func(x *tensor.Tensor) bool { return x.I64[0] == 1 && x.I64[1] == 0 }},
		{"string", &onnxpb.Tensor{DataType: proto.Int32(8), Dims: []int64{2}, StringData: [][]byte{[]byte("a"), {}}},
			func(x *tensor.Tensor) bool { return string(x.Str[0]) == "a" && len(x.Str[1]) == 0 }},
		{"float16 raw", &onnxpb.Tensor{DataType: proto.Int32(10), Dims: []int64{1}, RawData: []byte{0, 0x3c}},
			func(x *tensor.Tensor) bool { return bytes.Equal(x.Raw, []byte{0, 0x3c}) }},
		{"bfloat16 typed", &onnxpb.Tensor{DataType: proto.Int32(16), Dims: []int64{1}, Int32Data: []int32{0x3f80}},
			func(x *tensor.Tensor) bool { return bytes.Equal(x.Raw, []byte{0x80, 0x3f}) }},
		{"complex64 typed", &onnxpb.Tensor{DataType: proto.Int32(14), Dims: []int64{1}, FloatData: []float32{1, 2}},
			func(x *tensor.Tensor) bool { return len(x.Raw) == 8 }},
		{"complex128 typed", &onnxpb.Tensor{DataType: proto.Int32(15), Dims: []int64{1}, DoubleData: []float64{1, 2}},
			func(x *tensor.Tensor) bool { return len(x.Raw) == 16 }},
		{"float8 typed", &onnxpb.Tensor{DataType: proto.Int32(17), Dims: []int64{2}, Int32Data: []int32{1, 255}},
			func(x *tensor.Tensor) bool { return bytes.Equal(x.Raw, []byte{1, 255}) }},
		{"int4 raw", &onnxpb.Tensor{DataType: proto.Int32(22), Dims: []int64{3}, RawData: []byte{0x21, 0x03}},
			func(x *tensor.Tensor) bool { return bytes.Equal(x.Raw, []byte{0x21, 0x03}) }},
		{"uint4 typed", &onnxpb.Tensor{DataType: proto.Int32(21), Dims: []int64{3}, Int32Data: []int32{0x21, 0x03}},
			func(x *tensor.Tensor) bool { return bytes.Equal(x.Raw, []byte{0x21, 0x03}) }},
		{"empty raw present", &onnxpb.Tensor{DataType: proto.Int32(1), Dims: []int64{0, 3}, RawData: []byte{}},
			func(x *tensor.Tensor) bool { return x.F32 != nil && len(x.F32) == 0 }},
		{"empty typed", &onnxpb.Tensor{DataType: proto.Int32(7), Dims: []int64{0}},
			func(x *tensor.Tensor) bool { return x.I64 != nil && len(x.I64) == 0 }},
		{"scalar", &onnxpb.Tensor{Name: proto.String(""), DataType: proto.Int32(1), FloatData: []float32{7}},
			func(x *tensor.Tensor) bool { return len(x.Shape) == 0 && x.F32[0] == 7 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := tensorFromProto(tt.p)
			if err != nil {
				t.Fatalf("tensorFromProto: %v", err)
			}
			if !tt.check(in.Value) {
				t.Errorf("decoded %s = %+v: wrong values", tt.name, in.Value)
			}
			got, err := tensorToProto(in)
			if err != nil {
				t.Fatalf("tensorToProto: %v", err)
			}
			if !proto.Equal(got, tt.p) {
				t.Errorf("tensorToProto(tensorFromProto(p)) = %v, want %v", got, tt.p)
			}
		})
	}
}

func TestTensorErrors(t *testing.T) {
	tests := []struct {
		name string
		p    *onnxpb.Tensor
		want string
	}{
		{"negative dim", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{2, -1}}, "dimension 1 is negative"},
		{"overflow", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{1 << 40, 1 << 40}, RawData: []byte{1}}, "more than 2^56"},
		{"raw short", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{3}, RawData: make([]byte, 8)}, "raw_data holds 8 bytes"},
		{"typed short", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{3}, FloatData: []float32{1}}, "float_data holds 1 values"},
		{"no data", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{3}}, "holds no data"},
		{"two fields", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{1}, FloatData: []float32{1}, RawData: make([]byte, 4)}, "both raw_data and float_data"},
		{"wrong field", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{1}, Int64Data: []int64{1}}, "float32 data stored in int64_data"},
		{"string raw", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(8), Dims: []int64{1}, RawData: []byte("x")}, "string_data"},
		{"float16 too big", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(10), Dims: []int64{1}, Int32Data: []int32{70000}}, "does not fit"},
		{"unknown type", &onnxpb.Tensor{Name: proto.String("w"), DataType: proto.Int32(99), Dims: []int64{1}, RawData: []byte{1}}, "unsupported data type 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tensorFromProto(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `tensor "w"`) {
				t.Errorf("tensorFromProto = %v, want an error naming tensor \"w\" and containing %q", err, tt.want)
			}
			b, _ := proto.Marshal(tt.p)
			if _, err := DecodeTensor(b); err == nil {
				t.Errorf("DecodeTensor accepted it")
			}
		})
	}
}

func TestEncodeTensor(t *testing.T) {
	for _, x := range []*tensor.Tensor{
		tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		tensor.FromInt64([]int64{-5, 9}, 2),
		{DType: tensor.Int8, Shape: []int{2}, I64: []int64{-128, 127}},
		{DType: tensor.String, Shape: []int{1}, Str: [][]byte{[]byte("hello")}},
		{DType: tensor.Float16, Shape: []int{1}, Raw: []byte{0, 0x3c}},
	} {
		b, err := EncodeTensor(x, "v")
		if err != nil {
			t.Fatalf("EncodeTensor(%v): %v", x, err)
		}
		got, err := DecodeTensor(b)
		if err != nil {
			t.Fatalf("DecodeTensor(EncodeTensor(%v)): %v", x, err)
		}
		if !cmp.Equal(got, x) {
			t.Errorf("DecodeTensor(EncodeTensor(x)) = %+v, want %+v", got, x)
		}
	}
	if _, err := EncodeTensor(&tensor.Tensor{DType: tensor.Float32, Shape: []int{3}, F32: []float32{1}}, "bad"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("EncodeTensor with 1 value for shape [3] = %v, want an error naming the tensor", err)
	}
	dir := t.TempDir()
	b, _ := EncodeTensor(tensor.FromFloat32([]float32{1}, 1), "x")
	p := filepath.Join(dir, "input_0.pb")
	os.WriteFile(p, b, 0o644)
	if x, err := ReadTensorFile(p); err != nil || x.F32[0] != 1 {
		t.Errorf("ReadTensorFile = %v, %v", x, err)
	}
	os.WriteFile(p, []byte{0xff}, 0o644)
	if _, err := ReadTensorFile(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadTensorFile(garbage) = %v, want an error naming %s", err, p)
	}
}

// bigModel is a model with a 1000-element float initializer, a small int64
// one and a typed-storage float one.
func bigModel() *graph.Model {
	w := make([]float32, 1000)
	for i := range w {
		w[i] = float32(i) * 0.5
	}
	g := &graph.Graph{
		Name: "g",
		Nodes: []*graph.Node{
			{Name: "mul", OpType: "Mul", Inputs: []string{"X", "W"}, Outputs: []string{"Y"}},
		},
		Initializers: []*graph.Initializer{
			{Name: "W", Value: tensor.FromFloat32(w, 10, 100), Encoding: graph.Encoding{RawData: true}},
			{Name: "shape", Value: tensor.FromInt64([]int64{1, 2}, 2)},
			{Name: "V", Value: tensor.FromFloat32(append([]float32(nil), w[:300]...), 300)},
		},
		Inputs:  []*graph.ValueInfo{{Name: "X", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32, HasShape: true, Shape: []graph.Dim{{Value: 10, HasValue: true}, {Value: 100, HasValue: true}}}}},
		Outputs: []*graph.ValueInfo{{Name: "Y", Type: &graph.Type{IsTensor: true, Elem: tensor.Float32}}},
	}
	return &graph.Model{IRVersion: 8, OpsetImports: []graph.OpsetImport{{Version: 13}}, ProducerName: "test", Graph: g}
}

func TestWriteFileExternal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	m := bigModel()
	if err := WriteFileExternal(path, m, 1000); err != nil {
		t.Fatalf("WriteFileExternal: %v", err)
	}
	st, err := os.Stat(path + ".data")
	if err != nil {
		t.Fatalf("side file: %v", err)
	}
	// W (4000 bytes) and V (1200 bytes) go out, 64-byte aligned: 4000 +
	// 32 padding + 1200.
	if st.Size() != 5232 {
		t.Errorf("side file has %d bytes, want 5232", st.Size())
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	for i, in := range got.Graph.Initializers {
		if !cmp.Equal(in.Value, m.Graph.Initializers[i].Value) {
			t.Errorf("initializer %s read back as %v, want %v", in.Name, in.Value, m.Graph.Initializers[i].Value)
		}
	}
	if got.Graph.Initializers[0].Encoding.DataLocation != 1 || got.Graph.Initializers[1].Encoding.DataLocation != 0 {
		t.Errorf("data locations = %d, %d, want 1 (external), 0", got.Graph.Initializers[0].Encoding.DataLocation, got.Graph.Initializers[1].Encoding.DataLocation)
	}
	// Decode does not load external data and writes the references back.
	raw, _ := os.ReadFile(path)
	dm, err := Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if in := dm.Graph.Initializer("W"); in.Value.F32 != nil || in.Value.Shape[1] != 100 {
		t.Errorf("Decode loaded external data or lost the shape: %+v", in.Value)
	}
	re, err := Marshal(dm)
	if err != nil || !bytes.Equal(re, raw) {
		t.Errorf("Marshal(Decode(external model)) differs from the file (err %v)", err)
	}
	// A model read with ReadFile is written self-contained.
	inline := filepath.Join(dir, "inline.onnx")
	if err := WriteFile(inline, got); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + ".data")
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), "m.onnx.data") {
		t.Errorf("ReadFile without its data file = %v, want an error naming m.onnx.data", err)
	}
	back, err := ReadFile(inline)
	if err != nil || !cmp.Equal(back.Graph.Initializers[0].Value, m.Graph.Initializers[0].Value) {
		t.Errorf("inline copy: %v", err)
	}
}

func TestExternalDataChecks(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "model")
	os.Mkdir(sub, 0o755)
	data := make([]byte, 64)
	for i := range 4 {
		bin := math.Float32bits(float32(i + 1))
		data[32+4*i], data[33+4*i], data[34+4*i], data[35+4*i] = byte(bin), byte(bin>>8), byte(bin>>16), byte(bin>>24)
	}
	os.WriteFile(filepath.Join(sub, "w.bin"), data, 0o644)
	os.Mkdir(filepath.Join(sub, "d"), 0o755)
	os.WriteFile(filepath.Join(sub, "d", "w.bin"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "outside.bin"), data, 0o644)
	os.Symlink(filepath.Join(dir, "outside.bin"), filepath.Join(sub, "link.bin"))

	write := func(loc, offset, length string) string {
		w := externalW(loc)
		w.ExternalData = []*onnxpb.StringStringEntry{{Key: proto.String("location"), Value: proto.String(loc)}}
		if offset != "" {
			w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntry{Key: proto.String("offset"), Value: proto.String(offset)})
		}
		if length != "" {
			w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntry{Key: proto.String("length"), Value: proto.String(length)})
		}
		p := filepath.Join(sub, "model.onnx")
		os.WriteFile(p, mustMarshal(reluModel(8, 13, w)), 0o644)
		return p
	}
	tests := []struct {
		loc, offset, length string
		want                string // "" means it loads [1 2 3 4]
	}{
		{"w.bin", "32", "16", ""},
		{"w.bin", "32", "", ""},
		{"./d/w.bin", "32", "16", ""},
		{"w.bin", "0", "12", "length 12 does not match the 16 bytes"},
		{"w.bin", "56", "16", "runs past its end"},
		{"w.bin", "-1", "", "not a non-negative integer"},
		{"d/../../outside.bin", "", "", "leaves the model's folder"},
		{"/tmp/x.bin", "", "", "absolute path"},
		{"link.bin", "32", "", "link.bin"},
		{"nope.bin", "", "", "not found"},
		{"", "", "", "no location"},
	}
	for _, tt := range tests {
		t.Run(tt.loc+"@"+tt.offset, func(t *testing.T) {
			p := write(tt.loc, tt.offset, tt.length)
			m, err := ReadFile(p)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ReadFile = %v", err)
				}
				if got := m.Graph.Initializer("W").Value.F32; !cmp.Equal(got, []float32{1, 2, 3, 4}) {
					t.Errorf("W = %v, want [1 2 3 4]", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `tensor "W"`) {
				t.Errorf("ReadFile = %v, want an error naming tensor \"W\" and containing %q", err, tt.want)
			}
		})
	}
}

func TestSparse(t *testing.T) {
	dense := &graph.Initializer{Name: "W", Value: tensor.FromFloat32([]float32{0, 1.5, 0, 0, float32(math.Copysign(0, -1)), 3}, 2, 3)}
	s := Sparsify(dense)
	if !cmp.Equal(s.Indices.Value.I64, []int64{1, 4, 5}) || len(s.Values.Value.F32) != 3 || s.Values.Name != "W" {
		t.Fatalf("Sparsify = indices %v values %v, want [1 4 5] and 3 values named W (-0 kept)", s.Indices.Value.I64, s.Values.Value.F32)
	}
	if !cmp.Equal(s.Dims, []int64{2, 3}) {
		t.Errorf("Sparsify dims = %v, want [2 3]", s.Dims)
	}
	m := bigModel()
	m.Graph.SparseInitializers = []*graph.SparseInitializer{s}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	d := got.Graph.Initializer("W2")
	if d != nil {
		t.Fatalf("unexpected W2")
	}
	gs := got.Graph.SparseInitializers[0]
	if !sameTensor(gs.Dense.Value, dense.Value) {
		t.Errorf("densified %v, want %v", gs.Dense.Value, dense.Value)
	}
	// A pass that changes Dense gets a new sparse tensor written.
	gs.Dense.Value.F32[0] = 9
	b2, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Decode(bytes.NewReader(b2))
	if v := again.Graph.SparseInitializers[0].Dense.Value.F32; v[0] != 9 || v[1] != 1.5 {
		t.Errorf("after changing Dense, re-read dense = %v, want 9 first", v)
	}

	bad := []struct {
		name string
		st   *onnxpb.SparseTensor
		want string
	}{
		{"flat out of range", &onnxpb.SparseTensor{Dims: []int64{4},
			Values:  &onnxpb.Tensor{Name: proto.String("S"), DataType: proto.Int32(1), Dims: []int64{1}, FloatData: []float32{1}},
			Indices: &onnxpb.Tensor{DataType: proto.Int32(7), Dims: []int64{1}, Int64Data: []int64{4}}}, "outside the 4 elements"},
		{"coordinate out of range", &onnxpb.SparseTensor{Dims: []int64{2, 2},
			Values:  &onnxpb.Tensor{Name: proto.String("S"), DataType: proto.Int32(1), Dims: []int64{1}, FloatData: []float32{1}},
			Indices: &onnxpb.Tensor{DataType: proto.Int32(7), Dims: []int64{1, 2}, Int64Data: []int64{0, -1}}}, "coordinate 1 is -1"},
		{"huge dense", &onnxpb.SparseTensor{Dims: []int64{1 << 20, 1 << 20},
			Values:  &onnxpb.Tensor{Name: proto.String("S"), DataType: proto.Int32(1), Dims: []int64{0}},
			Indices: &onnxpb.Tensor{DataType: proto.Int32(7), Dims: []int64{0}}}, "more than a file of this size may claim"},
		{"int32 indices", &onnxpb.SparseTensor{Dims: []int64{4},
			Values:  &onnxpb.Tensor{Name: proto.String("S"), DataType: proto.Int32(1), Dims: []int64{1}, FloatData: []float32{1}},
			Indices: &onnxpb.Tensor{DataType: proto.Int32(6), Dims: []int64{1}, Int32Data: []int32{0}}}, "indices must be int64"},
		{"missing indices", &onnxpb.SparseTensor{Dims: []int64{4},
			Values: &onnxpb.Tensor{Name: proto.String("S"), DataType: proto.Int32(1), Dims: []int64{1}, FloatData: []float32{1}}}, "both required"},
	}
	for _, tt := range bad {
		pm := reluModel(8, 13, nil)
		pm.Graph.SparseInitializer = []*onnxpb.SparseTensor{tt.st}
		_, err := Decode(bytes.NewReader(mustMarshal(pm)))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"S"`) {
			t.Errorf("%s: Decode = %v, want an error naming \"S\" containing %q", tt.name, err, tt.want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.onnx")
	if err := WriteFile(path, bigModel()); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err != nil {
		t.Fatalf("ReadFile(WriteFile) = %v", err)
	}
	// An unencodable model leaves the existing file alone and no temp file.
	before, _ := os.ReadFile(path)
	bad := bigModel()
	bad.Graph.Initializers[0].Value.F32 = bad.Graph.Initializers[0].Value.F32[:10]
	err := WriteFile(path, bad)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"W"`) {
		t.Errorf("WriteFile(bad) = %v, want an error naming the file and tensor W", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("a failed WriteFile changed the existing file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a failed write, want 1 (no temp files)", len(entries))
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.onnx"), bigModel()); err == nil {
		t.Errorf("WriteFile into a missing folder succeeded")
	}
}

func TestDecodeNotONNX(t *testing.T) {
	for _, in := range [][]byte{
		nil,
		[]byte("\xff\xd8\xff\xe0 jpeg"),
		[]byte("{\"json\": 1}"),
		mustMarshal(&onnxpb.Model{ProducerName: proto.String("no graph")}),
		{0x0a, 0x05, 0x01}, // truncated length-delimited field
	} {
		_, err := Decode(bytes.NewReader(in))
		if !errors.Is(err, ErrNotONNX) || !strings.HasPrefix(err.Error(), "onnxio: not an ONNX model") {
			t.Errorf("Decode(%q) = %v, want ErrNotONNX", in, err)
		}
	}
}

func TestSparsifyGraph(t *testing.T) {
	m := bigModel()
	w := m.Graph.Initializers[0].Value.F32
	for i := range w {
		if i%5 != 0 {
			w[i] = 0 // 20% dense: COO is smaller
		}
	}
	want := m.Graph.Initializers[0].Value.Clone()
	if n := SparsifyGraph(m.Graph, 100); n != 1 {
		t.Fatalf("SparsifyGraph moved %d initializers, want 1 (W; V is dense, shape too small)", n)
	}
	if len(m.Graph.Initializers) != 2 || m.Graph.Initializer("W") == nil {
		t.Fatalf("after SparsifyGraph: %d dense initializers, W reachable: %v", len(m.Graph.Initializers), m.Graph.Initializer("W") != nil)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "sparse.onnx")
	if err := WriteFile(p, m); err != nil {
		t.Fatal(err)
	}
	dense := filepath.Join(dir, "dense.onnx")
	WriteFile(dense, bigModel())
	sp, _ := os.Stat(p)
	dn, _ := os.Stat(dense)
	if sp.Size() >= dn.Size() {
		t.Errorf("sparse file %d bytes, dense %d: want smaller", sp.Size(), dn.Size())
	}
	got, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if w := got.Graph.Initializer("W"); w == nil || !sameTensor(w.Value, want) {
		t.Errorf("W read back from the sparse file differs")
	}
	if idx := got.Graph.SparseInitializers[0].Indices.Value; idx.DType != tensor.Int64 || len(idx.Shape) != 1 || idx.Shape[0] != 199 {
		t.Errorf("indices %v, want 199 flat int64 (W[0] is 0)", idx)
	}
}

func TestSetMetadata(t *testing.T) {
	m := bigModel()
	SetMetadata(m, "csam.method", "csam")
	SetMetadata(m, "csam.sparsity", "0.5")
	SetMetadata(m, "csam.sparsity", "0.9")
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := Metadata(got, "csam.sparsity"); !ok || v != "0.9" || len(got.Metadata) != 2 {
		t.Errorf("Metadata(csam.sparsity) = %q, %v with %d entries, want 0.9 and 2 entries", v, ok, len(got.Metadata))
	}
	if _, ok := Metadata(got, "absent"); ok {
		t.Errorf("Metadata(absent) found")
	}
}

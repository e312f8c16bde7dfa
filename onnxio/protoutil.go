package onnxio

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
)

func setPresent(p *graph.Presence, key string) {
	if *p == nil {
		*p = graph.Presence{}
	}
	(*p)[key] = true
}

// optString returns a pointer for an optional string field: set when the
// value is non-empty or was present in the file.
func optString(v string, present graph.Presence, key string) *string {
	if v != "" || present[key] {
		return proto.String(v)
	}
	return nil
}

func optInt64(v int64, present graph.Presence, key string) *int64 {
	if v != 0 || present[key] {
		return proto.Int64(v)
	}
	return nil
}

// unknownOf copies m's unknown fields (nil when there are none).
func unknownOf(m proto.Message) []byte {
	u := m.ProtoReflect().GetUnknown()
	if len(u) == 0 {
		return nil
	}
	return append([]byte(nil), u...)
}

func setUnknown(m proto.Message, b []byte) {
	if len(b) > 0 {
		m.ProtoReflect().SetUnknown(append([]byte(nil), b...))
	}
}

func pairsFromProto(ps []*onnxpb.StringStringEntry) []graph.StringPair {
	if len(ps) == 0 {
		return nil
	}
	out := make([]graph.StringPair, len(ps))
	for i, p := range ps {
		sp := graph.StringPair{Key: p.GetKey(), Value: p.GetValue(), Unknown: unknownOf(p)}
		if p.Key != nil {
			setPresent(&sp.Present, "key")
		}
		if p.Value != nil {
			setPresent(&sp.Present, "value")
		}
		out[i] = sp
	}
	return out
}

func pairsToProto(ps []graph.StringPair) []*onnxpb.StringStringEntry {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*onnxpb.StringStringEntry, len(ps))
	for i, p := range ps {
		e := &onnxpb.StringStringEntry{
			Key:   optString(p.Key, p.Present, "key"),
			Value: optString(p.Value, p.Present, "value"),
		}
		setUnknown(e, p.Unknown)
		out[i] = e
	}
	return out
}

// opaque marshals a message carried encoded in the IR.
func opaque(number int32, m proto.Message) (graph.OpaqueField, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return graph.OpaqueField{}, err
	}
	if b == nil {
		b = []byte{}
	}
	return graph.OpaqueField{Number: number, Bytes: b}, nil
}

// unopaque decodes an opaque field into a new message made by mk.
func unopaque[T proto.Message](f graph.OpaqueField, mk func() T) (T, error) {
	m := mk()
	if err := proto.Unmarshal(f.Bytes, m); err != nil {
		return m, fmt.Errorf("carried field %d: %v", f.Number, err)
	}
	return m, nil
}

// appendRawField appends an opaque field whose number the message type does
// not know to the message's unknown fields.
func appendRawField(m proto.Message, f graph.OpaqueField) {
	r := m.ProtoReflect()
	u := r.GetUnknown()
	u = protowire.AppendTag(u, protowire.Number(f.Number), protowire.BytesType)
	u = protowire.AppendBytes(u, f.Bytes)
	r.SetUnknown(u)
}

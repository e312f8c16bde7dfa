package onnxio

import "github.com/csam-onnx/csam-onnx/graph"

// SetMetadata sets the model's metadata_props entry key to value,
// replacing an existing entry with that key (the first one; later
// duplicates are removed) or appending a new one.
func SetMetadata(m *graph.Model, key, value string) {
	out := m.Metadata[:0]
	found := false
	for _, p := range m.Metadata {
		if p.Key != key {
			out = append(out, p)
			continue
		}
		if !found {
			p.Value = value
			out = append(out, p)
			found = true
		}
	}
	if !found {
		out = append(out, graph.StringPair{Key: key, Value: value})
	}
	m.Metadata = out
}

// Metadata returns the value of the model's metadata_props entry key.
func Metadata(m *graph.Model, key string) (string, bool) {
	for _, p := range m.Metadata {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

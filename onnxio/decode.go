package onnxio

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
)

// ReadOptions adjusts reading. A nil *ReadOptions means the defaults.
type ReadOptions struct {
	// AnyVersion accepts IR versions and ai.onnx opsets outside the
	// supported range (for tools that only look at a file, and for the
	// conformance round trip, which includes opset-1 models).
	AnyVersion bool
}

// Decode reads an ONNX model from r. External data is not resolved: such
// initializers have a Value with DType and Shape but no storage (use
// ReadFile to load it). The IR version and ai.onnx opset must be in the
// supported range.
func Decode(r io.Reader) (*graph.Model, error) {
	return DecodeWith(r, nil)
}

// DecodeWith is Decode with options.
func DecodeWith(r io.Reader, opts *ReadOptions) (*graph.Model, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxModelSize+1))
	if err != nil {
		return nil, fmt.Errorf("onnxio: %w", err)
	}
	if len(b) > MaxModelSize {
		return nil, fileErr("", fmt.Errorf("input is larger than the %d-byte limit of a protobuf message; store large weights as external data", MaxModelSize))
	}
	m, err := decodeModel(b, opts)
	if err == nil {
		err = densifyAll(m, sparseBudget(int64(len(b))))
	}
	if err != nil {
		return nil, fileErr("", err)
	}
	return m, nil
}

// ReadFile reads the ONNX model at path and loads its external data, which
// must lie in files inside the model's folder.
func ReadFile(path string) (*graph.Model, error) {
	return ReadFileWith(path, nil)
}

// ReadFileWith is ReadFile with options.
func ReadFileWith(path string, opts *ReadOptions) (*graph.Model, error) {
	b, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	m, err := decodeModel(b, opts)
	if err != nil {
		return nil, fileErr(path, err)
	}
	loaded, err := resolveExternal(m, filepath.Dir(path))
	if err == nil {
		err = densifyAll(m, sparseBudget(int64(len(b))+loaded))
	}
	if err != nil {
		return nil, fileErr(path, err)
	}
	return m, nil
}

// sniff names well-known non-ONNX formats by their first bytes.
func sniff(b []byte) string {
	for _, s := range []struct {
		magic, name string
	}{
		{"\x89PNG\r\n\x1a\n", "a PNG image"},
		{"\xff\xd8\xff", "a JPEG image"},
		{"GIF8", "a GIF image"},
		{"\x1f\x8b", "gzip-compressed data"},
		{"PK\x03\x04", "a ZIP archive (a PyTorch .pt checkpoint is one)"},
		{"\x93NUMPY", "a NumPy array"},
		{"\x80\x02", "a Python pickle"},
		{"{", "JSON or text"},
		{"<", "XML or HTML"},
		{"ir_version", "ONNX text format; convert it to binary"},
	} {
		if bytes.HasPrefix(b, []byte(s.magic)) {
			return s.name
		}
	}
	return ""
}

func decodeModel(b []byte, opts *ReadOptions) (*graph.Model, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrNotONNX)
	}
	if what := sniff(b); what != "" {
		return nil, fmt.Errorf("%w: it is %s", ErrNotONNX, what)
	}
	var p onnxpb.Model
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: truncated or corrupt protobuf (%v)", ErrNotONNX, err)
	}
	if p.IrVersion == nil || p.Graph == nil {
		return nil, fmt.Errorf("%w: the protobuf has no ir_version or no graph", ErrNotONNX)
	}
	if opts == nil || !opts.AnyVersion {
		if err := checkVersions(&p); err != nil {
			return nil, err
		}
	}
	m, err := modelFromProto(&p)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// checkVersions enforces the supported IR version and ai.onnx opset range.
func checkVersions(p *onnxpb.Model) error {
	if v := p.GetIrVersion(); v < MinIRVersion || v > MaxIRVersion {
		return &VersionError{Kind: "IR version", Version: v, Min: MinIRVersion, Max: MaxIRVersion}
	}
	for _, o := range p.OpsetImport {
		if d := o.GetDomain(); d != "" && d != "ai.onnx" {
			continue
		}
		if v := o.GetVersion(); v < MinOpset || v > MaxOpset {
			return &VersionError{Kind: "opset", Domain: "ai.onnx", Version: v, Min: MinOpset, Max: MaxOpset}
		}
	}
	return nil
}

// CheckVersions reports a *VersionError when m's IR version or ai.onnx
// opset is outside the supported range (for models built in memory).
func CheckVersions(m *graph.Model) error {
	if v := m.IRVersion; v < MinIRVersion || v > MaxIRVersion {
		return &VersionError{Kind: "IR version", Version: v, Min: MinIRVersion, Max: MaxIRVersion}
	}
	for _, o := range m.OpsetImports {
		if o.Domain != "" && o.Domain != "ai.onnx" {
			continue
		}
		if v := o.Version; v < MinOpset || v > MaxOpset {
			return &VersionError{Kind: "opset", Domain: "ai.onnx", Version: v, Min: MinOpset, Max: MaxOpset}
		}
	}
	return nil
}

package onnxio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
)

// externalRef is a parsed external_data entry list.
type externalRef struct {
	location       string
	offset, length int64
	hasLength      bool
}

func parseExternal(pairs []graph.StringPair) (externalRef, error) {
	var r externalRef
	for _, kv := range pairs {
		switch kv.Key {
		case "location":
			r.location = kv.Value
		case "offset", "length":
			v, err := strconv.ParseInt(kv.Value, 10, 64)
			if err != nil || v < 0 {
				return r, fmt.Errorf("external data %s %q is not a non-negative integer", kv.Key, kv.Value)
			}
			if kv.Key == "offset" {
				r.offset = v
			} else {
				r.length, r.hasLength = v, true
			}
		}
	}
	if r.location == "" {
		return r, fmt.Errorf("external data has no location")
	}
	return r, nil
}

// checkLocation refuses external-data paths that could read outside the
// model's folder.
func checkLocation(loc string) error {
	if filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, `\`) || filepath.VolumeName(loc) != "" {
		return fmt.Errorf("external data location %q is an absolute path; external data must be a file inside the model's folder, named relative to it", loc)
	}
	if !filepath.IsLocal(loc) || strings.Contains(loc, `\..`) || strings.HasPrefix(loc, `..\`) {
		return fmt.Errorf("external data location %q leaves the model's folder; external data must be a file inside the model's folder", loc)
	}
	return nil
}

// forEachTensor calls fn on every tensor of the model: graph initializers,
// sparse values and indices, and tensor attributes, in subgraphs too.
func forEachTensor(g *graph.Graph, fn func(*graph.Initializer) error) error {
	if g == nil {
		return nil
	}
	for _, in := range g.Initializers {
		if err := fn(in); err != nil {
			return err
		}
	}
	for _, s := range g.SparseInitializers {
		for _, in := range []*graph.Initializer{s.Values, s.Indices} {
			if in != nil {
				if err := fn(in); err != nil {
					return err
				}
			}
		}
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.T != nil {
				if err := fn(a.T); err != nil {
					return fmt.Errorf("node %q (%s): attribute %q: %w", n.Name, n.OpType, a.Name, err)
				}
			}
			for _, t := range a.Tensors {
				if err := fn(t); err != nil {
					return fmt.Errorf("node %q (%s): attribute %q: %w", n.Name, n.OpType, a.Name, err)
				}
			}
			if err := forEachTensor(a.G, fn); err != nil {
				return err
			}
			for _, sg := range a.Graphs {
				if err := forEachTensor(sg, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func forEachSparse(g *graph.Graph, fn func(*graph.SparseInitializer) error) error {
	if g == nil {
		return nil
	}
	for _, s := range g.SparseInitializers {
		if err := fn(s); err != nil {
			return err
		}
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if err := forEachSparse(a.G, fn); err != nil {
				return err
			}
			for _, sg := range a.Graphs {
				if err := forEachSparse(sg, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// resolveExternal loads every external tensor of m from files in dir and
// returns how many bytes it read.
func resolveExternal(m *graph.Model, dir string) (int64, error) {
	var root *os.Root
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	var loaded int64
	err := forEachTensor(m.Graph, func(in *graph.Initializer) error {
		if in.Encoding.DataLocation != int32(onnxpb.Tensor_EXTERNAL) || hasData(in.Value) {
			return nil
		}
		if root == nil {
			var err error
			if root, err = os.OpenRoot(dir); err != nil {
				return fmt.Errorf("opening the model's folder for external data: %w", err)
			}
		}
		n, err := loadExternal(root, dir, in)
		if err != nil {
			return tensorErr(in.Name, err)
		}
		loaded += n
		return nil
	})
	return loaded, err
}

func loadExternal(root *os.Root, dir string, in *graph.Initializer) (int64, error) {
	ref, err := parseExternal(in.Encoding.External)
	if err != nil {
		return 0, err
	}
	if err := checkLocation(ref.location); err != nil {
		return 0, err
	}
	t := in.Value
	if t.DType == 8 {
		return 0, fmt.Errorf("string tensors cannot use external data")
	}
	l := layoutOf(t.DType)
	if !l.ok {
		return 0, fmt.Errorf("unsupported data type %d", int32(t.DType))
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	n, _, err := dimsNumel(dims)
	if err != nil {
		return 0, err
	}
	want, ok := l.rawSize(n)
	if !ok {
		return 0, fmt.Errorf("dims %v are too large", dims)
	}
	if ref.hasLength && ref.length != want {
		return 0, fmt.Errorf("external data length %d does not match the %d bytes dims %v of %s need", ref.length, want, dims, t.DType)
	}
	f, err := root.Open(ref.location)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("external data file %q not found (looked in %s); keep it next to the model", ref.location, filepath.Join(dir, ref.location))
		}
		return 0, fmt.Errorf("external data file %q: %w", ref.location, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("external data file %q: %w", ref.location, err)
	}
	if ref.offset > st.Size() || want > st.Size()-ref.offset {
		return 0, fmt.Errorf("external data file %q has %d bytes; offset %d + length %d runs past its end", ref.location, st.Size(), ref.offset, want)
	}
	b := make([]byte, want)
	if _, err := f.ReadAt(b, ref.offset); err != nil {
		return 0, fmt.Errorf("external data file %q: %w", ref.location, err)
	}
	decodeRaw(t, b, int(n))
	return want, nil
}

// WriteFileExternal writes m like WriteFile, but moves the data of every
// graph initializer of at least threshold bytes into one side file,
// path's base name plus ".data", in the same folder. Both files are written
// atomically, the data file first. m is not modified.
func WriteFileExternal(path string, m *graph.Model, threshold int64) error {
	p, err := modelToProto(m)
	if err != nil {
		return fileErr(path, err)
	}
	dataName := filepath.Base(path) + ".data"
	var data []byte
	if p.Graph != nil {
		for _, t := range p.Graph.Initializer {
			if t.GetDataLocation() == onnxpb.Tensor_EXTERNAL || t.GetDataType() == 8 {
				continue
			}
			raw := t.RawData
			if raw == nil {
				// Typed storage: re-encode through the IR tensor.
				in, err := tensorFromProto(t)
				if err != nil {
					return fileErr(path, err)
				}
				raw = rawBytes(in.Value)
			}
			if int64(len(raw)) < threshold || len(raw) == 0 {
				continue
			}
			// Align each tensor to 64 bytes so that readers can map it.
			for len(data)%64 != 0 {
				data = append(data, 0)
			}
			off := len(data)
			data = append(data, raw...)
			t.RawData, t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data = nil, nil, nil, nil, nil, nil
			t.ExternalData = []*onnxpb.StringStringEntry{
				{Key: proto.String("location"), Value: proto.String(dataName)},
				{Key: proto.String("offset"), Value: proto.String(strconv.Itoa(off))},
				{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(raw)))},
			}
			loc := onnxpb.Tensor_EXTERNAL
			t.DataLocation = &loc
		}
	}
	b, err := proto.Marshal(p)
	if err != nil {
		return fileErr(path, err)
	}
	if len(b) > MaxModelSize {
		return fileErr(path, fmt.Errorf("the model encodes to %d bytes even with external data, over the %d-byte protobuf limit; lower the threshold", len(b), MaxModelSize))
	}
	if data != nil {
		if err := writeAtomic(filepath.Join(filepath.Dir(path), dataName), data); err != nil {
			return err
		}
	}
	return writeAtomic(path, b)
}

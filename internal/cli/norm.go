package cli

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
	"github.com/spf13/pflag"
)

// Most PyTorch classifiers are trained on normalized images (torchvision's
// Normalize in the data pipeline, not in the model), so their ONNX files
// expect (x - mean) / std, not [0, 1] pixels. The tool keeps every image
// (augmentation, corruptions, CC-Cert transforms, smoothing noise) in
// [0, 1] pixels and applies the model's normalization just before the
// model: in the Go engine through two nodes put in front of the graph for
// the run and removed before writing, in onnxruntime through
// runtime.SessionOptions.Normalize. The written file takes the same input
// as the file read, and records the normalization in its metadata_props
// (metaInputMean, metaInputStd), where verify finds it.
//
// A channels-last model ([N, H, W, C], Keras and tf2onnx exports) is run
// the same way: a Transpose in front of the graph for the Go engine,
// runtime.SessionOptions.ChannelsLast for onnxruntime, and
// csam.input_layout = nhwc in the written file.
const (
	metaInputMean   = "csam.input_mean"
	metaInputStd    = "csam.input_std"
	metaInputLayout = "csam.input_layout"
	// metaSource is the SHA-256 of the file compress read: verify
	// measures a --baseline that is this file with the model's input
	// conventions when the baseline records none itself.
	metaSource = "csam.source_sha256"
)

// inputNormFlags are --input-mean, --input-std and --input-layout.
type inputNormFlags struct {
	Mean, Std []float32
	Layout    string
}

func (f *inputNormFlags) register(fs *pflag.FlagSet) {
	fs.Float32SliceVar(&f.Mean, "input-mean", nil, "per-channel mean the model's input is normalized with outside the model, e.g. 0.485,0.456,0.406 (default: the model's csam.input_mean metadata, else none)")
	fs.Float32SliceVar(&f.Std, "input-std", nil, "per-channel standard deviation of that normalization, e.g. 0.229,0.224,0.225")
	fs.StringVar(&f.Layout, "input-layout", "", "the model's image layout: nchw or nhwc (channels last, Keras/tf2onnx) (default: the model's csam.input_layout metadata, else nchw)")
}

// channelsLast resolves the layout: the flag, else m's metadata.
func (f *inputNormFlags) channelsLast(m *graph.Model) bool {
	if f.Layout != "" {
		return f.Layout == "nhwc"
	}
	return metaValue(m, metaInputLayout) == "nhwc"
}

// check validates the flags alone (both or neither, positive std).
func (f *inputNormFlags) check(cmd string) error {
	if f.Layout != "" && f.Layout != "nchw" && f.Layout != "nhwc" {
		return FlagErrorf("%s: --input-layout %q: want nchw or nhwc", cmd, f.Layout)
	}
	if len(f.Mean) == 0 && len(f.Std) == 0 {
		return nil
	}
	if len(f.Mean) == 0 || len(f.Std) == 0 {
		return FlagErrorf("%s: give --input-mean and --input-std together", cmd)
	}
	n := &runtime.Normalization{Mean: f.Mean, Std: f.Std}
	if err := n.Validate(0); err != nil {
		return FlagErrorf("%s: --input-mean/--input-std: %v", cmd, err)
	}
	return nil
}

// inputConv is how a model's input is fed: the normalization applied
// outside the model (nil: none) and whether it takes channels-last images.
type inputConv struct {
	norm *runtime.Normalization
	nhwc bool
}

// conv resolves m's input conventions: the flags, else m's metadata.
func (f *inputNormFlags) conv(m *graph.Model, path string) (inputConv, error) {
	n, err := f.resolve(m, path)
	return inputConv{norm: n, nhwc: f.channelsLast(m)}, err
}

// baselineConv resolves the input conventions of a --baseline b measured
// beside model m (conventions mc). The flags apply to both. A baseline
// that records no normalization (or layout) while the model does is
// usually the dense export the model was compressed from, whose
// normalization was given to compress by flags: when m records b's
// SHA-256 as its source, b is measured with m's conventions (note says
// so); otherwise warn says that b is measured on plain [0, 1] pixels.
func (f *inputNormFlags) baselineConv(b *graph.Model, bpath string, bsum string, m *graph.Model, mpath string, mc inputConv) (c inputConv, note, warn string, err error) {
	if c, err = f.conv(b, bpath); err != nil {
		return c, "", "", err
	}
	var lacks []string
	if len(f.Mean) == 0 && c.norm == nil && mc.norm != nil {
		lacks = append(lacks, "input normalization")
	}
	if f.Layout == "" && !c.nhwc && mc.nhwc {
		lacks = append(lacks, "channels-last layout")
	}
	if len(lacks) == 0 {
		return c, "", "", nil
	}
	what := strings.Join(lacks, " and ")
	if metaValue(m, metaSource) == bsum {
		if len(f.Mean) == 0 && c.norm == nil {
			c.norm = mc.norm
		}
		if f.Layout == "" {
			c.nhwc = c.nhwc || mc.nhwc
		}
		return c, fmt.Sprintf("verify: --baseline %s is the file %s was compressed from and records no %s: measured with %s's", bpath, mpath, what, mpath), "", nil
	}
	return c, "", fmt.Sprintf("verify: warning: %s records its %s (metadata %s), --baseline %s records none and is measured without; if it takes the same input, give --input-mean/--input-std/--input-layout", mpath, what, strings.Join(inputMetaKeys(mc), ", "), bpath), nil
}

// inputMetaKeys lists the metadata keys that record c.
func inputMetaKeys(c inputConv) []string {
	return slices.Sorted(maps.Keys(inputMetadata(c.norm, c.nhwc)))
}

// metaValue is the value of m's metadata key k, or "".
func metaValue(m *graph.Model, k string) string {
	for _, p := range m.Metadata {
		if p.Key == k {
			return p.Value
		}
	}
	return ""
}

// resolve returns the normalization the flags give, else the one m
// records, else nil.
func (f *inputNormFlags) resolve(m *graph.Model, path string) (*runtime.Normalization, error) {
	if len(f.Mean) > 0 {
		return &runtime.Normalization{Mean: f.Mean, Std: f.Std}, nil
	}
	return modelNorm(m, path)
}

// modelNorm reads the normalization m records in its metadata, or nil.
func modelNorm(m *graph.Model, path string) (*runtime.Normalization, error) {
	mean, std := metaValue(m, metaInputMean), metaValue(m, metaInputStd)
	if mean == "" && std == "" {
		return nil, nil
	}
	n := &runtime.Normalization{}
	for _, c := range []struct {
		key, s string
		dst    *[]float32
	}{{metaInputMean, mean, &n.Mean}, {metaInputStd, std, &n.Std}} {
		for _, f := range strings.Split(c.s, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
			if err != nil {
				return nil, fmt.Errorf("%s: metadata %s = %q: not a list of numbers; give --input-mean and --input-std", path, c.key, c.s)
			}
			*c.dst = append(*c.dst, float32(v))
		}
	}
	if err := n.Validate(0); err != nil {
		return nil, fmt.Errorf("%s: metadata %s/%s: %w", path, metaInputMean, metaInputStd, err)
	}
	return n, nil
}

// inputMetadata is the metadata that records n (nil: none) and a
// channels-last layout; empty, not nil, when there is neither.
func inputMetadata(n *runtime.Normalization, nhwc bool) map[string]string {
	kv := map[string]string{}
	if n != nil {
		join := func(v []float32) string {
			s := make([]string, len(v))
			for i, x := range v {
				s[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
			}
			return strings.Join(s, ",")
		}
		kv[metaInputMean], kv[metaInputStd] = join(n.Mean), join(n.Std)
	}
	if nhwc {
		kv[metaInputLayout] = "nhwc"
	}
	return kv
}

// wrapInput puts (x - mean) / std (n, when not nil), for a channels-last
// model a Transpose to [N, H, W, C], and for a model that takes uint8
// bytes their conversion round(255·x) in front of m's graph, so that the
// Go engine runs m on [0, 1] pixels [N, C, H, W]; unwrap takes
// the nodes and their constants out again and gives the input back its
// name and shape (call it before writing m). A model whose input looks
// channels-last while nhwc is false is refused with a hint.
func wrapInput(m *graph.Model, n *runtime.Normalization, nhwc bool) (unwrap func(), err error) {
	g := m.Graph
	if err := classifierIO(g); err != nil {
		return nil, err
	}
	vi := graphInputs(g)[0]
	var shape []graph.Dim
	if vi.Type != nil && vi.Type.HasShape {
		shape = vi.Type.Shape
	}
	if !nhwc && len(shape) == 4 && shape[3].HasValue && shape[3].Value <= 4 && shape[1].HasValue && shape[1].Value > 4 {
		return nil, fmt.Errorf("input %q is %v: images with the channels last; pass --input-layout nhwc", vi.Name, shape)
	}
	bytes := vi.Type != nil && vi.Type.Elem == tensor.Uint8
	if bytes && n != nil {
		return nil, fmt.Errorf("input %q takes uint8 bytes 0–255: an input normalization (--input-mean/--input-std, or the model's metadata) does not apply to it", vi.Name)
	}
	if n == nil && !nhwc && !bytes {
		return func() {}, nil
	}
	if len(shape) != 4 && (n != nil || nhwc) {
		return nil, fmt.Errorf("input %q: --input-mean/--input-std and --input-layout need images [N, C, H, W] or [N, H, W, C]", vi.Name)
	}
	// pixels: the NCHW shape the engine is fed.
	pixels := slices.Clone(shape)
	if nhwc {
		pixels = []graph.Dim{shape[0], shape[3], shape[1], shape[2]}
	}
	if n != nil {
		if d := pixels[1]; d.HasValue && d.Value != int64(len(n.Mean)) {
			return nil, fmt.Errorf("input %q has %d channels, --input-mean/--input-std give %d", vi.Name, d.Value, len(n.Mean))
		}
	}
	used := map[string]bool{}
	for _, nd := range g.Nodes {
		for _, s := range slices.Concat(nd.Inputs, nd.Outputs) {
			used[s] = true
		}
	}
	for _, in := range g.Initializers {
		used[in.Name] = true
	}
	for _, v := range g.Inputs {
		used[v.Name] = true
	}
	fresh := func(base string) string {
		name := base
		for i := 1; used[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		used[name] = true
		return name
	}
	orig, origType := vi.Name, vi.Type
	var nodes []*graph.Node
	var inits []*graph.Initializer
	var attrs []*graph.Attribute
	if m.Opset() < 7 {
		attrs = []*graph.Attribute{{Name: "broadcast", Type: graph.AttrInt, I: 1}}
	}
	cur := fresh("csam_pixels")
	vi.Name = cur
	vi.Type = &graph.Type{IsTensor: true, Elem: origType.Elem, HasShape: len(pixels) > 0, Shape: pixels}
	if bytes {
		vi.Type.Elem = tensor.Float32
	}
	// step adds a node reading cur; the last one writes the original input.
	step := func(op string, last bool, extra []string, at []*graph.Attribute) {
		out := orig
		if !last {
			out = fresh("csam_pixels_" + strings.ToLower(op))
		}
		nodes = append(nodes, &graph.Node{Name: fresh("csam_input_" + strings.ToLower(op)), OpType: op, Inputs: append([]string{cur}, extra...), Outputs: []string{out}, Attrs: at})
		cur = out
	}
	type op struct {
		name  string
		extra []string
		attrs []*graph.Attribute
	}
	var ops []op
	if n != nil {
		inits = []*graph.Initializer{
			{Name: fresh("csam_input_mean"), Value: tensor.FromFloat32(slices.Clone(n.Mean), 1, len(n.Mean), 1, 1)},
			{Name: fresh("csam_input_std"), Value: tensor.FromFloat32(slices.Clone(n.Std), 1, len(n.Std), 1, 1)},
		}
		ops = append(ops, op{"Sub", []string{inits[0].Name}, attrs}, op{"Div", []string{inits[1].Name}, attrs})
	}
	if nhwc {
		ops = append(ops, op{"Transpose", nil, []*graph.Attribute{{Name: "perm", Type: graph.AttrInts, Ints: []int64{0, 2, 3, 1}}}})
	}
	if bytes {
		// round(255·x) as uint8, as runtime feeds onnxruntime: x·255 + 0.5
		// cast to uint8 (the cast truncates).
		scale := &graph.Initializer{Name: fresh("csam_input_255"), Value: tensor.FromFloat32([]float32{255}, 1)}
		half := &graph.Initializer{Name: fresh("csam_input_half"), Value: tensor.FromFloat32([]float32{0.5}, 1)}
		inits = append(inits, scale, half)
		ops = append(ops, op{"Mul", []string{scale.Name}, attrs}, op{"Add", []string{half.Name}, attrs},
			op{"Cast", nil, []*graph.Attribute{{Name: "to", Type: graph.AttrInt, I: int64(tensor.Uint8)}}})
	}
	for i, o := range ops {
		step(o.name, i == len(ops)-1, o.extra, o.attrs)
	}
	g.Nodes = slices.Concat(nodes, g.Nodes)
	g.Initializers = append(g.Initializers, inits...)
	return func() {
		vi.Name, vi.Type = orig, origType
		g.Nodes = slices.DeleteFunc(g.Nodes, func(nd *graph.Node) bool { return slices.Contains(nodes, nd) })
		g.Initializers = slices.DeleteFunc(g.Initializers, func(in *graph.Initializer) bool { return slices.Contains(inits, in) })
	}, nil
}

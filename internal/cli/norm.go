package cli

import (
	"fmt"
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
const (
	metaInputMean = "csam.input_mean"
	metaInputStd  = "csam.input_std"
)

// inputNormFlags are --input-mean and --input-std.
type inputNormFlags struct {
	Mean, Std []float32
}

func (f *inputNormFlags) register(fs *pflag.FlagSet) {
	fs.Float32SliceVar(&f.Mean, "input-mean", nil, "per-channel mean the model's input is normalized with outside the model, e.g. 0.485,0.456,0.406 (default: the model's csam.input_mean metadata, else none)")
	fs.Float32SliceVar(&f.Std, "input-std", nil, "per-channel standard deviation of that normalization, e.g. 0.229,0.224,0.225")
}

// check validates the flags alone (both or neither, positive std).
func (f *inputNormFlags) check(cmd string) error {
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
	var mean, std string
	for _, p := range m.Metadata {
		switch p.Key {
		case metaInputMean:
			mean = p.Value
		case metaInputStd:
			std = p.Value
		}
	}
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

// normMetadata is the metadata that records n (nil: none).
func normMetadata(n *runtime.Normalization) map[string]string {
	if n == nil {
		return nil
	}
	join := func(v []float32) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		return strings.Join(s, ",")
	}
	return map[string]string{metaInputMean: join(n.Mean), metaInputStd: join(n.Std)}
}

// wrapInputNorm puts (x - mean) / std in front of m's graph, so that the
// Go engine runs m on [0, 1] pixels; unwrap takes the two nodes and their
// constants out again (call it before writing m). A nil n does nothing.
func wrapInputNorm(m *graph.Model, n *runtime.Normalization) (unwrap func(), err error) {
	if n == nil {
		return func() {}, nil
	}
	g := m.Graph
	ins := graphInputs(g)
	if len(ins) == 0 {
		return nil, fmt.Errorf("the model has no input to normalize")
	}
	vi := ins[0]
	if vi.Type == nil || !vi.Type.HasShape || len(vi.Type.Shape) != 4 {
		return nil, fmt.Errorf("input %q: input normalization needs images [N, C, H, W]", vi.Name)
	}
	if d := vi.Type.Shape[1]; d.HasValue && d.Value != int64(len(n.Mean)) {
		return nil, fmt.Errorf("input %q has %d channels, --input-mean/--input-std give %d", vi.Name, d.Value, len(n.Mean))
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
	orig := vi.Name
	pixels, centered := fresh("csam_pixels"), fresh("csam_pixels_centered")
	meanT := tensor.FromFloat32(slices.Clone(n.Mean), 1, len(n.Mean), 1, 1)
	stdT := tensor.FromFloat32(slices.Clone(n.Std), 1, len(n.Std), 1, 1)
	inits := []*graph.Initializer{{Name: fresh("csam_input_mean"), Value: meanT}, {Name: fresh("csam_input_std"), Value: stdT}}
	var attrs []*graph.Attribute
	if m.Opset() < 7 {
		attrs = []*graph.Attribute{{Name: "broadcast", Type: graph.AttrInt, I: 1}}
	}
	nodes := []*graph.Node{
		{Name: fresh("csam_input_sub"), OpType: "Sub", Inputs: []string{pixels, inits[0].Name}, Outputs: []string{centered}, Attrs: attrs},
		{Name: fresh("csam_input_div"), OpType: "Div", Inputs: []string{centered, inits[1].Name}, Outputs: []string{orig}, Attrs: attrs},
	}
	vi.Name = pixels
	g.Nodes = slices.Concat(nodes, g.Nodes)
	g.Initializers = append(g.Initializers, inits...)
	return func() {
		vi.Name = orig
		g.Nodes = slices.DeleteFunc(g.Nodes, func(nd *graph.Node) bool { return nd == nodes[0] || nd == nodes[1] })
		g.Initializers = slices.DeleteFunc(g.Initializers, func(in *graph.Initializer) bool { return in == inits[0] || in == inits[1] })
	}, nil
}

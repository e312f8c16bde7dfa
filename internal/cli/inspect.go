package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// InspectOptions are the inputs of `csam-onnx inspect`.
type InspectOptions struct {
	IO     *IOStreams
	Global *GlobalOptions

	Model string
	JSON  bool
}

// NewCmdInspect returns the inspect command. runF, when non-nil, replaces
// inspectRun (tests use it to capture the parsed options).
func NewCmdInspect(ios *IOStreams, g *GlobalOptions, runF func(context.Context, *InspectOptions) error) *cobra.Command {
	opts := &InspectOptions{IO: ios, Global: g}
	cmd := &cobra.Command{
		Use:   "inspect <model.onnx>",
		Short: "Describe a model: opsets, inputs, ops, parameters, MACs, sparsity",
		Long: `Describe an ONNX model: producer, IR version, opsets, inputs and outputs with
their shapes (symbolic dimensions by name), a histogram of op types, the
parameter count (elements of all initializers), the multiply-accumulates of
every Conv, ConvTranspose, Gemm and MatMul at batch size 1 and in total,
the fraction of exact zeros in each of their weights, and the file size.

With --json the same facts are printed as JSON with a fixed field order, so
the output of two runs on the same file is byte-identical.`,
		Example: "  csam-onnx inspect model.onnx\n  csam-onnx inspect --json model.onnx | jq .macs",
		Args:    exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Model = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return inspectRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON instead of tables")
	return cmd
}

// InspectReport is what inspect finds out about a model. Its JSON form is
// the output of `inspect --json`: fields in this order, maps with sorted
// keys.
type InspectReport struct {
	File            string         `json:"file"`
	FileSize        int64          `json:"file_size"`
	Producer        string         `json:"producer"`
	ProducerVersion string         `json:"producer_version"`
	IRVersion       int64          `json:"ir_version"`
	Opsets          []OpsetInfo    `json:"opsets"`
	Inputs          []ValueSummary `json:"inputs"`
	Outputs         []ValueSummary `json:"outputs"`
	Nodes           int            `json:"nodes"`
	Ops             map[string]int `json:"ops"`
	Initializers    int            `json:"initializers"`
	Parameters      int64          `json:"parameters"`
	// Batch is the batch size the MACs are counted at: the first dimension
	// of every input is set to it (1 unless the graph fixes its batch).
	Batch int   `json:"macs_batch"`
	MACs  int64 `json:"macs"`
	// WeightSparsity is the fraction of exact zeros over all layer weights.
	WeightSparsity float64        `json:"weight_sparsity"`
	Layers         []LayerSummary `json:"layers"`
	// InlinedCalls counts the calls to model-local functions (PyTorch's
	// export_modules_as_functions) that loading replaced by their bodies;
	// the other figures describe the inlined graph.
	InlinedCalls int `json:"inlined_function_calls"`
	// TrainingMode names the nodes that run as in training
	// (graph.TrainingModeNodes: an export in training mode).
	TrainingMode []string `json:"training_mode_nodes,omitempty"`
	// Metadata is the model's metadata_props in file order: what made it
	// (csam-onnx records arch, seed, data, command, method, sparsity).
	Metadata []MetadataEntry `json:"metadata"`
}

// OpsetInfo is one opset import.
type OpsetInfo struct {
	Domain  string `json:"domain"`
	Version int64  `json:"version"`
}

// ValueSummary is a graph input or output.
type ValueSummary struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	// Shape holds each dimension as a number, a symbol, or "?"; nil when the
	// file gives no shape.
	Shape []string `json:"shape"`
}

// LayerSummary is one Conv, ConvTranspose, Gemm or MatMul node.
type LayerSummary struct {
	Name        string  `json:"name"`
	Op          string  `json:"op"`
	Weight      string  `json:"weight"`
	WeightShape []int   `json:"weight_shape"`
	OutputShape []int   `json:"output_shape"`
	Params      int64   `json:"params"`
	MACs        int64   `json:"macs"`
	Zeros       int64   `json:"zeros"`
	Sparsity    float64 `json:"sparsity"`
}

// MetadataEntry is one metadata_props pair.
type MetadataEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func inspectRun(ctx context.Context, opts *InspectOptions) error {
	m, inlined, err := loadModelInlined(opts.Model)
	if err != nil {
		return err
	}
	fi, err := os.Stat(opts.Model)
	if err != nil {
		return err
	}
	r, err := Inspect(m, 1)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	r.File = opts.Model
	r.FileSize = fi.Size()
	r.InlinedCalls = inlined
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return writeInspectText(opts.IO.Out, r)
}

// Inspect summarizes m, counting MACs with every symbolic input dimension
// set to batch. File and FileSize are left empty.
func Inspect(m *graph.Model, batch int) (*InspectReport, error) {
	g := m.Graph
	r := &InspectReport{
		Producer:        m.ProducerName,
		ProducerVersion: m.ProducerVersion,
		IRVersion:       m.IRVersion,
		Nodes:           len(g.Nodes),
		Ops:             map[string]int{},
		Batch:           batch,
		Opsets:          []OpsetInfo{},
		Inputs:          []ValueSummary{},
		Outputs:         []ValueSummary{},
		Layers:          []LayerSummary{},
		Metadata:        []MetadataEntry{},
	}
	for _, p := range m.Metadata {
		r.Metadata = append(r.Metadata, MetadataEntry{Key: p.Key, Value: p.Value})
	}
	for _, n := range graph.TrainingModeNodes(m) {
		r.TrainingMode = append(r.TrainingMode, n.OpType+" "+strconv.Quote(n.Name))
	}
	for _, o := range m.OpsetImports {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		r.Opsets = append(r.Opsets, OpsetInfo{Domain: d, Version: o.Version})
	}
	sort.SliceStable(r.Opsets, func(i, j int) bool { return r.Opsets[i].Domain < r.Opsets[j].Domain })
	inputs := graphInputs(g)
	for _, vi := range inputs {
		r.Inputs = append(r.Inputs, summarizeValue(vi))
	}
	for _, vi := range g.Outputs {
		r.Outputs = append(r.Outputs, summarizeValue(vi))
	}
	for _, n := range g.Nodes {
		op := n.OpType
		if n.Domain != "" && n.Domain != "ai.onnx" {
			op = n.Domain + "." + op
		}
		r.Ops[op]++
	}
	inits := map[string]*graph.Initializer{}
	addInit := func(in *graph.Initializer) {
		if in == nil || in.Value == nil {
			return
		}
		if _, dup := inits[in.Name]; dup {
			return
		}
		inits[in.Name] = in
		r.Initializers++
		r.Parameters += int64(tensor.Numel(in.Value.Shape))
	}
	for _, in := range g.Initializers {
		addInit(in)
	}
	for _, s := range g.SparseInitializers {
		addInit(s.Dense)
	}

	// Shapes at the given batch: the first dimension of every input is set
	// to batch (MACs are per batch of that size whatever batch the export
	// fixed), other symbolic dimensions to 1. When the graph does not allow
	// that (a constant reshape that bakes in the exported batch), the
	// declared sizes are used and Batch says which batch the MACs are for.
	declared := map[string][]int{}
	inShapes := map[string][]int{}
	override := false
	for _, vi := range inputs {
		if vi.Type == nil || !vi.Type.IsTensor || !vi.Type.HasShape {
			return nil, fmt.Errorf("graph input %q declares no shape; MACs cannot be counted", vi.Name)
		}
		d := make([]int, len(vi.Type.Shape))
		s := make([]int, len(vi.Type.Shape))
		for i, dim := range vi.Type.Shape {
			d[i] = 1
			if i == 0 {
				d[i] = batch
			}
			if dim.HasValue {
				d[i] = int(dim.Value)
			}
			s[i] = d[i]
			if i == 0 {
				s[i] = batch
			}
		}
		if len(d) > 0 && d[0] != batch {
			override = true
		}
		declared[vi.Name] = d
		inShapes[vi.Name] = s
	}
	if err := checkInferable(g); err != nil {
		return nil, err
	}
	var shapes map[string][]int
	var err error
	if override {
		// InferShapes holds inputs to their declared sizes: give it a copy
		// of the model whose inputs have a symbolic first dimension.
		shapes, err = graph.InferShapes(withSymbolicBatch(m), inShapes)
	}
	if !override || err != nil {
		shapes, err = graph.InferShapes(m, declared)
		if err == nil && len(inputs) > 0 && len(declared[inputs[0].Name]) > 0 {
			r.Batch = declared[inputs[0].Name][0]
		}
	}
	if err != nil {
		return nil, fmt.Errorf("shape inference at batch %d failed (MACs need every shape): %w", r.Batch, err)
	}
	macs := graph.MACs(m, shapes)
	var zeros, weights int64
	for _, n := range g.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		var wIdx int
		switch n.OpType {
		case "Conv", "ConvTranspose", "Gemm":
			wIdx = 1
		case "MatMul":
			wIdx = 1
			if len(n.Inputs) == 2 && inits[n.Inputs[1]] == nil && inits[n.Inputs[0]] != nil {
				wIdx = 0
			}
		default:
			continue
		}
		if len(n.Inputs) < 2 || len(n.Outputs) < 1 {
			continue
		}
		name := graph.NodeKey(n)
		l := LayerSummary{
			Name:        name,
			Op:          n.OpType,
			WeightShape: []int{},
			OutputShape: []int{},
		}
		out := shapes[n.Outputs[0]]
		if out != nil {
			l.OutputShape = append(l.OutputShape, out...)
		}
		lm, ok := macs[name]
		if !ok {
			return nil, fmt.Errorf("node %q (%s): the shapes of its operands are not known, so its MACs cannot be counted", name, n.OpType)
		}
		l.MACs = lm
		r.MACs += lm
		if w := inits[n.Inputs[wIdx]]; w != nil {
			l.Weight = w.Name
			l.WeightShape = append(l.WeightShape, w.Value.Shape...)
			for _, k := range n.Inputs[1:] {
				if in := inits[k]; in != nil && k != "" {
					l.Params += int64(tensor.Numel(in.Value.Shape))
				}
			}
			if wIdx == 0 {
				l.Params = int64(tensor.Numel(w.Value.Shape))
			}
			l.Zeros = countZeros(w.Value)
			numel := int64(tensor.Numel(w.Value.Shape))
			if numel > 0 {
				l.Sparsity = float64(l.Zeros) / float64(numel)
			}
			zeros += l.Zeros
			weights += numel
		}
		r.Layers = append(r.Layers, l)
	}
	if weights > 0 {
		r.WeightSparsity = float64(zeros) / float64(weights)
	}
	return r, nil
}

// checkInferable lists every node whose op shape inference does not know,
// so that a model with several unknown ops is refused naming all of them.
func checkInferable(g *graph.Graph) error {
	known := map[string]bool{}
	for _, op := range graph.InferableOps() {
		known[op] = true
	}
	var bad []string
	for _, n := range g.Nodes {
		if (n.Domain == "" || n.Domain == "ai.onnx") && known[n.OpType] {
			continue
		}
		op := n.OpType
		if n.Domain != "" && n.Domain != "ai.onnx" {
			op = n.Domain + "." + op
		}
		if len(bad) == 10 {
			bad = append(bad, "...")
			break
		}
		bad = append(bad, fmt.Sprintf("%s (node %q)", op, graph.NodeKey(n)))
	}
	if len(bad) > 0 {
		return fmt.Errorf("unknown ops, so shapes and MACs cannot be computed: %s; inspect knows %s", strings.Join(bad, ", "), strings.Join(graph.InferableOps(), ", "))
	}
	return nil
}

// withSymbolicBatch returns a shallow copy of m whose graph inputs have a
// symbolic first dimension; everything else is shared with m.
func withSymbolicBatch(m *graph.Model) *graph.Model {
	mc := *m
	gc := *m.Graph
	gc.Inputs = make([]*graph.ValueInfo, len(m.Graph.Inputs))
	for i, vi := range m.Graph.Inputs {
		gc.Inputs[i] = vi
		if vi.Type == nil || !vi.Type.IsTensor || len(vi.Type.Shape) == 0 || m.Graph.Initializer(vi.Name) != nil {
			continue
		}
		vc := *vi
		tc := *vi.Type
		tc.Shape = append([]graph.Dim{{Param: "batch", HasParam: true}}, vi.Type.Shape[1:]...)
		vc.Type = &tc
		gc.Inputs[i] = &vc
	}
	mc.Graph = &gc
	return &mc
}

func countZeros(t *tensor.Tensor) int64 {
	var z int64
	switch {
	case t.F32 != nil:
		for _, v := range t.F32 {
			if v == 0 {
				z++
			}
		}
	case t.F64 != nil:
		for _, v := range t.F64 {
			if v == 0 {
				z++
			}
		}
	case t.I64 != nil:
		for _, v := range t.I64 {
			if v == 0 {
				z++
			}
		}
	}
	return z
}

func summarizeValue(vi *graph.ValueInfo) ValueSummary {
	s := ValueSummary{Name: vi.Name, DType: "?"}
	if vi.Type != nil && vi.Type.IsTensor {
		s.DType = vi.Type.Elem.String()
		if vi.Type.HasShape {
			s.Shape = make([]string, len(vi.Type.Shape))
			for i, d := range vi.Type.Shape {
				s.Shape[i] = d.String()
			}
		}
	}
	return s
}

func writeInspectText(w io.Writer, r *InspectReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	opsets := make([]string, len(r.Opsets))
	for i, o := range r.Opsets {
		opsets[i] = fmt.Sprintf("%s %d", o.Domain, o.Version)
	}
	producer := strings.TrimSpace(r.Producer + " " + r.ProducerVersion)
	if producer == "" {
		producer = "(not recorded)"
	}
	fmt.Fprintf(tw, "file\t%s (%s bytes)\n", r.File, group(r.FileSize))
	fmt.Fprintf(tw, "producer\t%s\n", producer)
	fmt.Fprintf(tw, "IR version\t%d\n", r.IRVersion)
	fmt.Fprintf(tw, "opsets\t%s\n", strings.Join(opsets, ", "))
	for _, v := range r.Inputs {
		fmt.Fprintf(tw, "input\t%s\t%s\t%s\n", v.Name, v.DType, shapeString(v.Shape))
	}
	for _, v := range r.Outputs {
		fmt.Fprintf(tw, "output\t%s\t%s\t%s\n", v.Name, v.DType, shapeString(v.Shape))
	}
	fmt.Fprintf(tw, "nodes\t%d\n", r.Nodes)
	fmt.Fprintf(tw, "parameters\t%s (in %d initializers)\n", group(r.Parameters), r.Initializers)
	fmt.Fprintf(tw, "MACs\t%s (batch %d)\n", group(r.MACs), r.Batch)
	fmt.Fprintf(tw, "weight sparsity\t%.2f%%\n", 100*r.WeightSparsity)
	if r.InlinedCalls > 0 {
		fmt.Fprintf(tw, "local functions\t%d calls inlined on load\n", r.InlinedCalls)
	}
	if len(r.TrainingMode) > 0 {
		fmt.Fprintf(tw, "training mode\t%d nodes run as in training (exported in training mode; compress --eval-mode, or an eval-mode copy: train --init FILE --eval-mode --epochs 0): %s\n", len(r.TrainingMode), strings.Join(r.TrainingMode, ", "))
	}
	for _, e := range r.Metadata {
		fmt.Fprintf(tw, "metadata\t%s = %s\n", e.Key, e.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	ops := make([]string, 0, len(r.Ops))
	for op := range r.Ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	rows := [][]string{{"op type", "count"}}
	for _, op := range ops {
		rows = append(rows, []string{op, strconv.Itoa(r.Ops[op])})
	}
	fmt.Fprintln(w)
	if err := writeTable(w, rows, "lr"); err != nil {
		return err
	}

	if len(r.Layers) == 0 {
		return nil
	}
	rows = [][]string{{"layer", "op", "weight shape", "output shape", "params", "MACs", "sparsity"}}
	for _, l := range r.Layers {
		rows = append(rows, []string{l.Name, l.Op, intsString(l.WeightShape), intsString(l.OutputShape),
			group(l.Params), group(l.MACs), fmt.Sprintf("%.2f%%", 100*l.Sparsity)})
	}
	rows = append(rows, []string{"total", "", "", "", "", group(r.MACs), fmt.Sprintf("%.2f%%", 100*r.WeightSparsity)})
	fmt.Fprintln(w)
	return writeTable(w, rows, "llllrrr")
}

// writeTable writes rows as columns two spaces apart; align has one letter
// per column, 'l' (left) or 'r' (right). Trailing blanks are trimmed.
func writeTable(w io.Writer, rows [][]string, align string) error {
	width := make([]int, len(align))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if align[i] == 'r' {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func shapeString(dims []string) string {
	if dims == nil {
		return "(no shape)"
	}
	return "[" + strings.Join(dims, " ") + "]"
}

func intsString(v []int) string {
	s := make([]string, len(v))
	for i, d := range v {
		s[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// group writes n with thousands separators: 1234567 → 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

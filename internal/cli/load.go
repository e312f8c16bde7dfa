package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// loadModel reads the model at path, inlines its model-local functions
// (ModelProto.functions, as PyTorch's export_modules_as_functions writes
// them) and validates it: every command goes through here, so a damaged or
// inconsistent file gets the same one-line refusal whichever verb is run,
// and the engine only ever sees plain graphs. A model written from the
// result (compress, train --init) holds the inlined graph and no functions.
func loadModel(path string) (*graph.Model, error) {
	m, _, err := loadModelInlined(path)
	return m, err
}

// loadModelInlined is loadModel that also returns the number of calls to
// model-local functions it inlined (inspect reports it).
func loadModelInlined(path string) (*graph.Model, int, error) {
	if fi, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("%s: no such file; give the path of an .onnx model", path)
		}
		return nil, 0, err
	} else if fi.IsDir() {
		return nil, 0, fmt.Errorf("%s is a folder; give the path of an .onnx model file", path)
	}
	m, err := onnxio.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if m.Graph == nil {
		return nil, 0, fmt.Errorf("%s: the model has no graph", path)
	}
	inlined, err := onnxio.InlineFunctions(m)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: cannot inline the model's local functions: %w", path, err)
	}
	if err := graph.Validate(m); err != nil {
		return nil, 0, fmt.Errorf("%s: invalid graph: %w", path, err)
	}
	// Unnamed nodes and repeated names (both legal in ONNX) get unique
	// names: the channel analysis and the messages tell nodes apart by
	// name. A written file keeps the names given here.
	graph.NameNodes(m.Graph)
	return m, inlined, nil
}

// graphInputs are the graph inputs that are not initializers: the values a
// caller must feed.
func graphInputs(g *graph.Graph) []*graph.ValueInfo {
	var out []*graph.ValueInfo
	for _, vi := range g.Inputs {
		if g.Initializer(vi.Name) == nil {
			out = append(out, vi)
		}
	}
	return out
}

// classifierIO refuses a model that does not take exactly one input (the
// images: the data sets feed one tensor) of float32 or uint8, or whose
// first output is not float32 (the scores or probabilities).
func classifierIO(g *graph.Graph) error {
	ins := graphInputs(g)
	if len(ins) == 1 {
		if t := ins[0].Type; t != nil && t.IsTensor && t.Elem != tensor.Float32 && t.Elem != tensor.Uint8 {
			return fmt.Errorf("input %q is %s; csam-onnx feeds images as float32 (or as uint8 bytes 0–255): export the model with a float32 input (a cast to %s inside it can stay)", ins[0].Name, t.Elem, t.Elem)
		}
		return scoresFirst(g)
	}
	if len(ins) == 0 {
		return fmt.Errorf("the model has no input; csam-onnx takes image classifiers whose one input is the images")
	}
	names := make([]string, len(ins))
	for i, vi := range ins {
		names[i] = strconv.Quote(vi.Name)
	}
	return fmt.Errorf("the model has %d inputs (%s); csam-onnx takes image classifiers whose one input is the images: export the model with the other inputs fixed (as constants or initializers)", len(ins), strings.Join(names, ", "))
}

// finiteWeights refuses a model whose float initializers hold NaN or
// infinite values, naming the first such tensor: training from it ends
// in a NaN loss, and its outputs are no answers.
func finiteWeights(m *graph.Model, path string) error {
	for _, in := range m.Graph.Initializers {
		if in.Value == nil {
			continue
		}
		bad := 0
		for _, v := range in.Value.F32 {
			if v != v || math.IsInf(float64(v), 0) {
				bad++
			}
		}
		if bad > 0 {
			return fmt.Errorf("%s: initializer %q holds %d NaN or infinite values of %d; the model is broken (a diverged training, or a faulty export): export it again from good weights", path, in.Name, bad, in.Value.Len())
		}
	}
	return nil
}

// evalCopyHint is how verify's refusal of a training-mode file tells the
// user to get one it takes: a pruned file written by compress --eval-mode,
// or an eval-mode copy of the file as it is (train --init --epochs 0).
func evalCopyHint(path, data string) string {
	if data == "" {
		data = "SPEC"
	}
	copyPath := strings.TrimSuffix(path, ".onnx") + ".eval.onnx"
	return fmt.Sprintf("; compress --eval-mode writes its pruned file in eval mode, and 'csam-onnx train --init %s --eval-mode --epochs 0 --data %s -o %s' writes an eval-mode copy with the same weights", path, data, copyPath)
}

// evalMode refuses a model exported in training mode (graph.TrainingModeNodes:
// BatchNormalization on batch statistics, Dropout at random), whose outputs
// depend on the batch and on chance, naming the nodes; with fix (compress's
// and train's --eval-mode) it puts them in eval mode instead and says so on
// errOut. cmd prefixes the note; flag says how to ask for the fix (empty
// where there is none).
func evalMode(m *graph.Model, path string, fix bool, errOut io.Writer, cmd, flag string) error {
	nodes := graph.TrainingModeNodes(m)
	if len(nodes) == 0 {
		return nil
	}
	var parts []string
	for _, k := range []struct{ op, what string }{
		{"BatchNormalization", "in training mode (training_mode = 1, or before opset 14 its statistics outputs: normalizing with each batch's own statistics)"},
		{"Dropout", "whose training_mode input is true (dropping at random)"},
	} {
		var names []string
		for _, n := range nodes {
			if n.OpType == k.op {
				names = append(names, strconv.Quote(n.Name))
			}
		}
		if len(names) == 0 {
			continue
		}
		shown := strings.Join(names[:min(3, len(names))], ", ")
		if len(names) > 3 {
			shown += fmt.Sprintf(" and %d more", len(names)-3)
		}
		parts = append(parts, fmt.Sprintf("%d %s %s: %s", len(names), k.op, k.what, shown))
	}
	list := strings.Join(parts, "; ")
	if !fix {
		return fmt.Errorf("%s was exported in training mode: %s; its outputs depend on the batch and on chance. Export it in eval mode (model.eval() before torch.onnx.export, whose default is training=TrainingMode.EVAL)%s", path, list, flag)
	}
	n, err := graph.SetEvalMode(m)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(errOut, "%s: note: %s was exported in training mode; %d nodes run and are written in eval mode (--eval-mode): %s\n", cmd, path, n, list)
	return nil
}

// scoresFirst refuses a model whose first output is not float32: class
// labels (an ArgMax at the end, say) cannot be trained on or certified.
// It names a later float32 output that could be the scores.
func scoresFirst(g *graph.Graph) error {
	if len(g.Outputs) == 0 {
		return fmt.Errorf("the model has no output")
	}
	out := g.Outputs[0]
	if out.Type == nil || !out.Type.IsTensor || out.Type.Elem == tensor.Float32 || out.Type.Elem == tensor.Undefined {
		return nil
	}
	what := ""
	if n := g.Producers()[out.Name]; n != nil {
		what = fmt.Sprintf(", made by %s %q", n.OpType, n.Name)
	}
	hint := "export the model with its scores (logits or probabilities) as the first output"
	for _, o := range g.Outputs[1:] {
		if o.Type != nil && o.Type.IsTensor && o.Type.Elem == tensor.Float32 {
			hint = fmt.Sprintf("output %q is float32 and may be the scores: export the model with it first", o.Name)
			break
		}
	}
	return fmt.Errorf("the first output %q is %s%s, not the class scores csam-onnx trains on and certifies; %s", out.Name, out.Type.Elem, what, hint)
}

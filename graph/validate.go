package graph

import (
	"errors"
	"fmt"
	"slices"

	"gonum.org/v1/gonum/graph/topo"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// maxProblems bounds how many problems Validate lists before it stops.
const maxProblems = 20

// Validate checks m's structure and returns every problem it finds at once,
// joined with errors.Join (nil when there is none). The problems are typed
// errors a caller can pick out with errors.As:
//
//   - *UndefinedValueError: a node input, or a graph output, that no node,
//     initializer or graph input produces;
//   - *DuplicateValueError: a value defined more than once;
//   - *CycleError: nodes that depend on themselves;
//   - *NodeError: a node with an empty op type;
//   - *InitializerError: an initializer whose data does not fill its shape;
//   - *ModelError: no graph, or no import of the default ONNX opset.
//
// Past 20 problems the list is cut short with a line saying how many more
// there are.
//
// Validate checks structure only: whether an op exists, and whether its
// attributes and shapes fit, is for InferShapes and the engines.
func Validate(m *Model) error {
	var errs []error
	if m == nil {
		return &ModelError{Msg: "model is nil"}
	}
	g := m.Graph
	if g == nil {
		return &ModelError{Msg: "model has no graph"}
	}
	usesDefault := len(g.Nodes) == 0
	for _, n := range g.Nodes {
		if n.Domain == "" || n.Domain == "ai.onnx" {
			usesDefault = true
		}
	}
	if usesDefault && m.Opset() == 0 {
		errs = append(errs, &ModelError{Msg: "model imports no ai.onnx opset (opset_import needs an entry with domain \"\" and a version from 6 to 25)"})
	}

	// Who defines each name.
	definers := map[string][]string{}
	define := func(name, who string) {
		definers[name] = append(definers[name], who)
	}
	var order []string
	note := func(name string) {
		if _, ok := definers[name]; !ok {
			order = append(order, name)
		}
	}
	for _, vi := range g.Inputs {
		note(vi.Name)
		define(vi.Name, "graph input")
	}
	isInputName := map[string]bool{}
	for _, vi := range g.Inputs {
		isInputName[vi.Name] = true
	}
	checkInit := func(in *Initializer, kind string) {
		if in == nil {
			errs = append(errs, &ModelError{Msg: "graph has a nil " + kind})
			return
		}
		// An initializer listed among the graph inputs (IR < 4 style, an
		// overridable default) is one value, not two.
		if !isInputName[in.Name] {
			note(in.Name)
			define(in.Name, kind)
		}
		if msg := tensorProblem(in.Value); msg != "" {
			errs = append(errs, &InitializerError{Name: in.Name, Msg: msg})
		}
	}
	for _, in := range g.Initializers {
		checkInit(in, "initializer")
	}
	for _, sp := range g.SparseInitializers {
		if sp == nil || sp.Dense == nil {
			errs = append(errs, &ModelError{Msg: "graph has a sparse initializer with no dense value"})
			continue
		}
		checkInit(sp.Dense, "sparse initializer")
	}
	for _, n := range g.Nodes {
		if n.OpType == "" {
			errs = append(errs, nodeErrorf(n, "empty op type"))
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			note(o)
			define(o, nodeRef(n))
		}
	}
	for _, name := range order {
		if d := definers[name]; len(d) > 1 {
			errs = append(errs, &DuplicateValueError{Name: name, Definers: d})
		}
	}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == "" {
				continue
			}
			if _, ok := definers[in]; !ok {
				errs = append(errs, &UndefinedValueError{Node: n, Index: i, Name: in})
			}
		}
	}
	for i, vi := range g.Outputs {
		if _, ok := definers[vi.Name]; !ok {
			errs = append(errs, &UndefinedValueError{Index: i, Name: vi.Name})
		}
	}
	errs = append(errs, cycles(g)...)

	if len(errs) > maxProblems {
		more := len(errs) - maxProblems
		errs = append(errs[:maxProblems:maxProblems], fmt.Errorf("graph: ... and %d more problems", more))
	}
	return errors.Join(errs...)
}

// cycles returns a *CycleError for every strongly connected component of
// g's dependency graph (and every node that reads its own output).
func cycles(g *Graph) []error {
	var errs []error
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" && slices.Contains(n.Outputs, in) {
				errs = append(errs, &CycleError{Nodes: []*Node{g.Nodes[i]}})
				break
			}
		}
	}
	dg, _ := dependencyGraph(g)
	sccs := topo.TarjanSCC(dg)
	// Report cycles in file order of their earliest node.
	var comps [][]int
	for _, scc := range sccs {
		if len(scc) < 2 {
			continue
		}
		ids := make([]int, len(scc))
		for i, n := range scc {
			ids[i] = int(n.ID())
		}
		slices.Sort(ids)
		comps = append(comps, ids)
	}
	slices.SortFunc(comps, func(a, b []int) int { return a[0] - b[0] })
	for _, ids := range comps {
		errs = append(errs, &CycleError{Nodes: cycleIn(g, ids)})
	}
	return errs
}

// elemBits is the storage size in bits of one element of the types kept
// as raw bytes, or 0 when unknown.
func elemBits(dt tensor.DType) int {
	switch dt {
	case tensor.Float16, tensor.BFloat16:
		return 16
	case tensor.Complex64:
		return 64
	case tensor.Complex128:
		return 128
	case 17, 18, 19, 20, 24: // the float8 types
		return 8
	case 21, 22, 23: // uint4, int4, float4e2m1: two per byte
		return 4
	case 25, 26: // uint2, int2: four per byte
		return 2
	}
	return 0
}

// tensorProblem says what is wrong with t's data against its shape, or "".
func tensorProblem(t *tensor.Tensor) string {
	if t == nil {
		return "no tensor value"
	}
	n := 1
	for i, d := range t.Shape {
		if d < 0 {
			return fmt.Sprintf("dimension %d is negative (%d)", i, d)
		}
		n *= d
	}
	var have int
	var field string
	switch {
	case t.DType == tensor.Float32:
		have, field = len(t.F32), "float32 values"
	case t.DType == tensor.Float64:
		have, field = len(t.F64), "float64 values"
	case t.DType.IsInteger():
		have, field = len(t.I64), "integer values"
	case t.DType == tensor.String:
		have, field = len(t.Str), "strings"
	default:
		bits := elemBits(t.DType)
		if bits == 0 {
			return "" // a type this version cannot size: carried as is
		}
		if want := (n*bits + 7) / 8; len(t.Raw) != want {
			return fmt.Sprintf("shape %v needs %d bytes of %s data but the data holds %d", t.Shape, want, t.DType, len(t.Raw))
		}
		return ""
	}
	if have != n {
		return fmt.Sprintf("shape %v needs %d elements but the data holds %d %s", t.Shape, n, have, field)
	}
	return ""
}

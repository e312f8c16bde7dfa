package graph

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Function is an ONNX model-local function (a FunctionProto from
// ModelProto.functions): a sub-graph that a node calls by op type, domain
// and, from IR version 10 on, overload. PyTorch writes one per module
// instance when exporting with export_modules_as_functions.
//
// The IR carries a model's functions encoded (Model.Opaque) so that a file
// read and written unchanged stays identical; onnxio.Functions decodes them
// into this type for InlineFunctions.
type Function struct {
	Name     string
	Domain   string
	Overload string
	// Inputs and Outputs are the formal parameter names, in order; the
	// body refers to them by these names.
	Inputs  []string
	Outputs []string
	// Attributes names the attributes a call may set that have no default
	// (FunctionProto.attribute); AttributeDefaults are those with a default
	// value (FunctionProto.attribute_proto).
	Attributes        []string
	AttributeDefaults []*Attribute
	// Nodes is the body. A name in it is local to the function: it is one
	// of Inputs or an output of a body node.
	Nodes []*Node
	// OpsetImports are the operator sets the body uses.
	OpsetImports []OpsetImport
	// ValueInfo is the body's value_info (IR version 10 on). InlineFunctions
	// does not copy it into the graph: a function may be called on inputs of
	// different shapes, so its declared shapes need not fit a call site.
	ValueInfo []*ValueInfo
	DocString string
	Metadata  []StringPair
}

// Ref renders the function for messages: "domain.Name", with
// ":overload" when it has one.
func (f *Function) Ref() string {
	s := f.Name
	if f.Domain != "" {
		s = f.Domain + "." + s
	}
	if f.Overload != "" {
		s += ":" + f.Overload
	}
	return s
}

// FunctionError is a problem with a model-local function or with a call to
// one, found while inlining.
type FunctionError struct {
	// Function is Ref() of the function concerned.
	Function string
	Msg      string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("graph: function %q: %s", e.Function, e.Msg)
}

func fnErrorf(f *Function, format string, args ...any) error {
	return &FunctionError{Function: f.Ref(), Msg: fmt.Sprintf(format, args...)}
}

// fnKey identifies a function: what a call node is matched on.
type fnKey struct{ domain, name, overload string }

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// InlineFunctions replaces every node of m that calls one of fns (matched
// on domain and op type, and on overload when m's IR version is 10 or
// more) by the function's body, in the main graph and in the sub-graphs of
// control-flow nodes, and returns how many calls it inlined (nested calls
// included). fns are the model's local functions, usually decoded with
// onnxio.Functions; onnxio.InlineFunctions does both steps and then drops
// the functions from the model.
//
// Inlining a call:
//
//   - body nodes are copied in body order and renamed under the call
//     node's name ("call/body_node"; the call's first output or the
//     function name when the call has no name), and so are the values
//     local to the body ("call/value"); a name already used anywhere in
//     the model gets the first free numeric suffix ("_1", "_2", ...), so
//     the names are unique and the same on every run;
//   - formal inputs become the call's actual inputs (a missing or omitted
//     optional input becomes "", the ONNX marker of an absent input), and
//     the body nodes that produce a formal output produce the call's
//     actual output instead (an omitted output gets a fresh local name);
//     a formal output that is a formal input is copied with an Identity
//     node;
//   - an attribute that refers to a function attribute (ref_attr_name)
//     takes the value the call gives, else the function's default
//     (attribute_proto), and is dropped when there is neither, which
//     leaves the op's own default;
//   - calls inside the body are inlined in turn; a function that calls
//     itself, directly or not, is an error naming the cycle;
//   - the function's opset imports are merged into m's: a domain the model
//     lacks is added, and a domain imported at another version than the
//     model's is an error.
//
// After a successful call no node of m refers to a function of fns, and
// opset imports of the functions' own domains that no node uses (any more)
// are removed. m.Opaque is not touched: dropping the encoded functions is
// the caller's choice (onnxio.InlineFunctions drops them, so a model
// written afterwards holds the inlined graph and no functions). On error
// m is left unchanged.
func InlineFunctions(m *Model, fns []*Function) (int, error) {
	if m == nil {
		return 0, &ModelError{Msg: "model is nil"}
	}
	if len(fns) == 0 || m.Graph == nil {
		return 0, nil
	}
	in := &inliner{
		fns:         map[fnKey]*Function{},
		useOverload: m.IRVersion >= 10,
		taken:       map[string]bool{},
		used:        map[*Function]bool{},
	}
	for _, f := range fns {
		if f == nil {
			return 0, &ModelError{Msg: "nil function"}
		}
		k := in.key(f.Domain, f.Name, f.Overload)
		if _, dup := in.fns[k]; dup {
			return 0, fnErrorf(f, "defined twice in the model")
		}
		in.fns[k] = f
	}
	collectNames(m.Graph, in.taken)

	var commits []func()
	nodes, changed, err := in.graph(m.Graph, nil, &commits)
	if err != nil {
		return 0, err
	}
	if !changed {
		in.dropFunctionDomains(m)
		return 0, nil
	}
	opsets, err := in.mergeOpsets(m.OpsetImports)
	if err != nil {
		return 0, err
	}

	// Nothing failed: apply.
	for _, c := range commits {
		c()
	}
	m.Graph.Nodes = nodes
	m.OpsetImports = opsets
	in.dropFunctionDomains(m)
	return in.count, nil
}

type inliner struct {
	fns         map[fnKey]*Function
	useOverload bool
	taken       map[string]bool
	used        map[*Function]bool
	count       int
}

func (in *inliner) key(domain, name, overload string) fnKey {
	if !in.useOverload {
		overload = ""
	}
	return fnKey{normDomain(domain), name, overload}
}

func (in *inliner) lookup(n *Node) *Function {
	return in.fns[in.key(n.Domain, n.OpType, n.Overload)]
}

// graph returns g's node list with every call inlined and whether there
// was any. g itself is not modified: changes to the sub-graphs of g's
// nodes are queued in commits. stack holds the functions being expanded.
func (in *inliner) graph(g *Graph, stack []*Function, commits *[]func()) ([]*Node, bool, error) {
	out := make([]*Node, 0, len(g.Nodes))
	changed := false
	for _, n := range g.Nodes {
		if f := in.lookup(n); f != nil {
			body, err := in.expand(n, f, stack, commits)
			if err != nil {
				return nil, false, err
			}
			out = append(out, body...)
			changed = true
			continue
		}
		sub, err := in.subgraphs(n, stack, commits)
		if err != nil {
			return nil, false, err
		}
		changed = changed || sub
		out = append(out, n)
	}
	return out, changed, nil
}

// subgraphs inlines the calls in n's graph attributes, queuing the new
// node lists in commits.
func (in *inliner) subgraphs(n *Node, stack []*Function, commits *[]func()) (bool, error) {
	changed := false
	for _, a := range n.Attrs {
		for _, sg := range attrGraphs(a) {
			nodes, ch, err := in.graph(sg, stack, commits)
			if err != nil {
				return false, err
			}
			if ch {
				changed = true
				*commits = append(*commits, func() { sg.Nodes = nodes })
			}
		}
	}
	return changed, nil
}

func attrGraphs(a *Attribute) []*Graph {
	var gs []*Graph
	if a.G != nil {
		gs = append(gs, a.G)
	}
	for _, g := range a.Graphs {
		if g != nil {
			gs = append(gs, g)
		}
	}
	return gs
}

// expand returns the nodes that replace call, a call of f.
func (in *inliner) expand(call *Node, f *Function, stack []*Function, commits *[]func()) ([]*Node, error) {
	if i := slices.Index(stack, f); i >= 0 {
		var path []string
		for _, s := range stack[i:] {
			path = append(path, s.Ref())
		}
		path = append(path, f.Ref())
		return nil, fnErrorf(f, "calls itself (%s); a recursive function cannot be inlined", strings.Join(path, " → "))
	}
	if len(call.Inputs) > len(f.Inputs) {
		return nil, fnErrorf(f, "%s passes %d inputs, the function has %d", nodeRef(call), len(call.Inputs), len(f.Inputs))
	}
	if len(call.Outputs) > len(f.Outputs) {
		return nil, fnErrorf(f, "%s has %d outputs, the function has %d", nodeRef(call), len(call.Outputs), len(f.Outputs))
	}
	prefix := call.Name
	if prefix == "" {
		for _, o := range call.Outputs {
			if o != "" {
				prefix = o
				break
			}
		}
	}
	if prefix == "" {
		prefix = f.Name
	}

	// Names in the body scope: formal inputs map to the actual inputs,
	// formal outputs to the actual outputs, every other value the body
	// defines to a fresh name.
	vmap := map[string]string{}
	isInput := map[string]bool{}
	for i, formal := range f.Inputs {
		actual := ""
		if i < len(call.Inputs) {
			actual = call.Inputs[i]
		}
		vmap[formal] = actual
		isInput[formal] = true
	}
	outActual := map[string]string{}
	for i, formal := range f.Outputs {
		if i < len(call.Outputs) && call.Outputs[i] != "" {
			outActual[formal] = call.Outputs[i]
		}
	}
	body := make([]*Node, len(f.Nodes))
	produced := map[string]bool{}
	for i, bn := range f.Nodes {
		if bn == nil {
			return nil, fnErrorf(f, "nil node in the body")
		}
		n := bn.Clone()
		base := n.Name
		if base == "" {
			base = n.OpType
		}
		n.Name = uniqueName(in.taken, prefix+"/"+base)
		for j, o := range n.Outputs {
			if o == "" {
				continue
			}
			if isInput[o] {
				return nil, fnErrorf(f, "body node %q redefines the function input %q", bn.Name, o)
			}
			if produced[o] {
				return nil, fnErrorf(f, "value %q is defined twice in the body", o)
			}
			produced[o] = true
			name, ok := outActual[o]
			if !ok {
				name = uniqueName(in.taken, prefix+"/"+o)
			}
			vmap[o] = name
			n.Outputs[j] = name
		}
		body[i] = n
	}
	resolve := func(name string) (string, bool) {
		v, ok := vmap[name]
		return v, ok
	}
	for i, n := range body {
		for j, name := range n.Inputs {
			if name == "" {
				continue
			}
			v, ok := vmap[name]
			if !ok {
				return nil, fnErrorf(f, "body node %q reads %q, which is neither a function input nor an output of a body node", f.Nodes[i].Name, name)
			}
			n.Inputs[j] = v
		}
		attrs, err := resolveAttrs(n.Attrs, call, f)
		if err != nil {
			return nil, err
		}
		n.Attrs = attrs
		for _, a := range n.Attrs {
			for _, sg := range attrGraphs(a) {
				if err := in.renameSubgraph(sg, prefix, resolve, f); err != nil {
					return nil, err
				}
				if err := resolveSubgraphAttrs(sg, call, f); err != nil {
					return nil, err
				}
			}
		}
	}
	// Formal outputs no body node produces.
	for i, formal := range f.Outputs {
		if produced[formal] {
			continue
		}
		if !isInput[formal] {
			return nil, fnErrorf(f, "output %q is neither produced by a body node nor a function input", formal)
		}
		actual := outActual[formal]
		if actual == "" || i >= len(call.Outputs) {
			continue
		}
		body = append(body, &Node{
			Name:    uniqueName(in.taken, prefix+"/Identity_"+formal),
			OpType:  "Identity",
			Inputs:  []string{vmap[formal]},
			Outputs: []string{actual},
		})
	}
	in.used[f] = true
	in.count++

	// Calls inside the body.
	inner := append(slices.Clip(stack), f)
	out := make([]*Node, 0, len(body))
	for _, n := range body {
		if g := in.lookup(n); g != nil {
			nested, err := in.expand(n, g, inner, commits)
			if err != nil {
				return nil, err
			}
			out = append(out, nested...)
			continue
		}
		if _, err := in.subgraphs(n, inner, commits); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// resolveAttrs returns attrs with every reference to a function attribute
// (ref_attr_name) replaced by the call's value or the function's default,
// or dropped when there is neither.
func resolveAttrs(attrs []*Attribute, call *Node, f *Function) ([]*Attribute, error) {
	out := attrs[:0]
	for _, a := range attrs {
		if a.RefAttrName == "" {
			out = append(out, a)
			continue
		}
		src := call.Attr(a.RefAttrName)
		if src == nil {
			for _, d := range f.AttributeDefaults {
				if d != nil && d.Name == a.RefAttrName {
					src = d
					break
				}
			}
		}
		if src == nil {
			continue
		}
		if src.RefAttrName != "" {
			return nil, fnErrorf(f, "%s: attribute %q is itself an unresolved reference to %q", nodeRef(call), src.Name, src.RefAttrName)
		}
		if a.Type != AttrUndefined && src.Type != AttrUndefined && a.Type != src.Type {
			return nil, fnErrorf(f, "attribute %q refers to %q of type %d, but %s gives type %d", a.Name, a.RefAttrName, a.Type, nodeRef(call), src.Type)
		}
		r := src.Clone()
		r.Name = a.Name
		r.DocString = a.DocString
		r.Present = maps.Clone(r.Present)
		if r.Present == nil {
			r.Present = Presence{}
		}
		delete(r.Present, "ref_attr_name")
		delete(r.Present, "doc_string")
		if a.Present["doc_string"] {
			r.Present["doc_string"] = true
		}
		r.Present["name"] = true
		out = append(out, r)
	}
	return out, nil
}

// resolveSubgraphAttrs resolves attribute references in the nodes of a
// sub-graph of a body node (and their sub-graphs).
func resolveSubgraphAttrs(g *Graph, call *Node, f *Function) error {
	for _, n := range g.Nodes {
		attrs, err := resolveAttrs(n.Attrs, call, f)
		if err != nil {
			return err
		}
		n.Attrs = attrs
		for _, a := range n.Attrs {
			for _, sg := range attrGraphs(a) {
				if err := resolveSubgraphAttrs(sg, call, f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// renameSubgraph renames, in place, a copied sub-graph of a body node: the
// values it defines get fresh names under prefix, and the names it reads
// from enclosing scopes are looked up with outer.
func (in *inliner) renameSubgraph(g *Graph, prefix string, outer func(string) (string, bool), f *Function) error {
	local := map[string]string{}
	def := func(name string) string {
		if name == "" {
			return ""
		}
		if v, ok := local[name]; ok {
			return v
		}
		v := uniqueName(in.taken, prefix+"/"+name)
		local[name] = v
		return v
	}
	for _, vi := range g.Inputs {
		vi.Name = def(vi.Name)
	}
	for _, it := range g.Initializers {
		it.Name = def(it.Name)
	}
	for _, sp := range g.SparseInitializers {
		if sp == nil {
			continue
		}
		if sp.Dense != nil {
			name := def(sp.Dense.Name)
			sp.Dense.Name = name
			if sp.Values != nil {
				sp.Values.Name = name
			}
		}
	}
	for _, n := range g.Nodes {
		base := n.Name
		if base == "" {
			base = n.OpType
		}
		n.Name = uniqueName(in.taken, prefix+"/"+base)
		for j, o := range n.Outputs {
			n.Outputs[j] = def(o)
		}
	}
	lookup := func(name string) (string, bool) {
		if v, ok := local[name]; ok {
			return v, true
		}
		return outer(name)
	}
	ref := func(name string) (string, error) {
		if name == "" {
			return "", nil
		}
		v, ok := lookup(name)
		if !ok {
			return "", fnErrorf(f, "a sub-graph in the body reads %q, which is defined neither in it nor in the function", name)
		}
		return v, nil
	}
	for _, n := range g.Nodes {
		for j, name := range n.Inputs {
			v, err := ref(name)
			if err != nil {
				return err
			}
			n.Inputs[j] = v
		}
		for _, a := range n.Attrs {
			for _, sg := range attrGraphs(a) {
				if err := in.renameSubgraph(sg, prefix, lookup, f); err != nil {
					return err
				}
			}
		}
	}
	for _, vi := range g.Outputs {
		v, err := ref(vi.Name)
		if err != nil {
			return err
		}
		vi.Name = v
	}
	for _, vi := range g.ValueInfo {
		if v, ok := lookup(vi.Name); ok {
			vi.Name = v
		}
	}
	return nil
}

// mergeOpsets returns the model's opset imports plus those of the
// functions inlined, or an error on a domain imported at two versions.
func (in *inliner) mergeOpsets(model []OpsetImport) ([]OpsetImport, error) {
	out := slices.Clone(model)
	have := map[string]int64{}
	for _, o := range model {
		have[normDomain(o.Domain)] = o.Version
	}
	used := slices.Collect(maps.Keys(in.used))
	slices.SortFunc(used, func(a, b *Function) int { return strings.Compare(a.Ref(), b.Ref()) })
	for _, f := range used {
		for _, o := range f.OpsetImports {
			d := normDomain(o.Domain)
			if v, ok := have[d]; ok {
				if v != o.Version {
					dn := o.Domain
					if d == "" {
						dn = "ai.onnx"
					}
					return nil, fnErrorf(f, "imports %s opset %d, the model imports version %d; inlining needs one version per domain (re-export the model with one opset)", dn, o.Version, v)
				}
				continue
			}
			have[d] = o.Version
			out = append(out, OpsetImport{Domain: o.Domain, Version: o.Version, Present: Presence{"domain": true, "version": true}})
		}
	}
	return out, nil
}

// dropFunctionDomains removes the opset imports of the functions' own
// domains that no node of m uses any more.
func (in *inliner) dropFunctionDomains(m *Model) {
	fnDomains := map[string]bool{}
	for k := range in.fns {
		if k.domain != "" {
			fnDomains[k.domain] = true
		}
	}
	usedDomains := map[string]bool{}
	var walk func(g *Graph)
	walk = func(g *Graph) {
		for _, n := range g.Nodes {
			usedDomains[normDomain(n.Domain)] = true
			for _, a := range n.Attrs {
				for _, sg := range attrGraphs(a) {
					walk(sg)
				}
			}
		}
	}
	walk(m.Graph)
	m.OpsetImports = slices.DeleteFunc(m.OpsetImports, func(o OpsetImport) bool {
		d := normDomain(o.Domain)
		return fnDomains[d] && !usedDomains[d]
	})
}

// collectNames adds every value and node name of g and its sub-graphs to
// taken.
func collectNames(g *Graph, taken map[string]bool) {
	for _, vi := range g.Inputs {
		taken[vi.Name] = true
	}
	for _, vi := range g.Outputs {
		taken[vi.Name] = true
	}
	for _, vi := range g.ValueInfo {
		taken[vi.Name] = true
	}
	for _, it := range g.Initializers {
		taken[it.Name] = true
	}
	for _, sp := range g.SparseInitializers {
		if sp != nil && sp.Dense != nil {
			taken[sp.Dense.Name] = true
		}
	}
	for _, n := range g.Nodes {
		taken[n.Name] = true
		for _, v := range n.Inputs {
			taken[v] = true
		}
		for _, v := range n.Outputs {
			taken[v] = true
		}
		for _, a := range n.Attrs {
			for _, sg := range attrGraphs(a) {
				collectNames(sg, taken)
			}
		}
	}
	delete(taken, "")
}

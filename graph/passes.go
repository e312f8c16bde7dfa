package graph

import (
	"math"
	"slices"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// foldLimit bounds the elements of one value FoldConstants materializes
// (64 MiB of float32): larger constant sub-graphs are left to run.
const foldLimit = 1 << 24

// FoldConstants evaluates every node whose inputs are all constant
// (initializers that are not graph inputs, Constant nodes, Shape of a value
// whose shape does not depend on a symbolic input dimension, and what is
// computed from those) and replaces it by initializers; see
// FoldConstantsCount.
func FoldConstants(m *Model) error {
	_, err := FoldConstantsCount(m)
	return err
}

// FoldConstantsCount is FoldConstants that also reports how many rewrites
// it made (nodes folded plus Reshape shapes made static).
//
// Symbolic input dimensions (a dynamic batch) are handled by inferring the
// graph twice, with two different sizes for every symbolic dimension: a
// value that is equal in both runs and computed only from constants is
// constant. A Reshape whose shape differs between the runs, as in
// PyTorch's dynamic-batch chain Shape → Gather → Unsqueeze → Concat →
// Reshape, gets a constant shape instead: the varying entry becomes 0
// (copy the input's dimension) when it equals the input's dimension at the
// same position in both runs, else -1 (infer it); the new shape is checked
// to give the inferred output shape in both runs.
//
// Nodes and initializers that become unused are removed. Nodes producing a
// graph output are never folded, graph input and output names never
// change, and values larger than 2^24 elements are not materialized.
func FoldConstantsCount(m *Model) (int, error) {
	if err := Validate(m); err != nil {
		return 0, err
	}
	g := m.Graph
	shapesA, shapesB := probeShapes(m)
	infA := newInferer(m, shapesA, true, foldLimit)
	if err := infA.run(); err != nil {
		return 0, err
	}
	infB := infA
	if !mapsEqualShapes(shapesA, shapesB) {
		infB = newInferer(m, shapesB, true, foldLimit)
		if err := infB.run(); err != nil {
			return 0, err
		}
	}
	before := usedNames(g)

	isConst := map[string]bool{}
	for name, v := range infA.vals {
		if v.val != nil && g.Initializer(name) != nil && !overridable(m, name) {
			isConst[name] = true
		}
	}
	order, err := Sort(g)
	if err != nil {
		return 0, err
	}
	folded := map[*Node]bool{}
	for _, n := range order {
		if _, ok := evaluators[n.OpType]; !ok || n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		shapeOnly := n.OpType == "Shape" || n.OpType == "Size"
		ok := len(n.Outputs) > 0
		for _, in := range n.Inputs {
			if in != "" && !isConst[in] && !shapeOnly {
				ok = false
			}
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			a, b := infA.vals[o], infB.vals[o]
			if a == nil || b == nil || a.val == nil || b.val == nil || !tensorsEqual(a.val, b.val) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		for _, o := range n.Outputs {
			if o != "" {
				isConst[o] = true
			}
		}
		producesOutput := false
		for _, o := range n.Outputs {
			if g.IsGraphOutput(o) {
				producesOutput = true
			}
		}
		if !producesOutput {
			folded[n] = true
		}
	}

	count := 0
	var kept []*Node
	for _, n := range g.Nodes {
		if folded[n] {
			count++
			continue
		}
		kept = append(kept, n)
	}
	// Outputs of folded nodes still read by the remaining nodes become
	// initializers.
	needed := subgraphRefs(g)
	for _, n := range kept {
		for _, in := range n.Inputs {
			needed[in] = true
		}
	}
	for _, n := range g.Nodes {
		if !folded[n] {
			continue
		}
		for _, o := range n.Outputs {
			if o != "" && needed[o] {
				v := infA.vals[o].val
				addInitializer(m, &Initializer{
					Name:  o,
					Value: v,
					// Strings cannot be stored as raw bytes.
					Encoding: Encoding{RawData: v.DType != tensor.String},
				})
			}
		}
	}
	g.Nodes = kept

	// Reshapes whose shape depends on a symbolic dimension.
	taken := g.names()
	for _, n := range g.Nodes {
		if n.OpType != "Reshape" || len(n.Inputs) < 2 || isConst[n.Inputs[1]] || m.Opset() < 5 {
			continue
		}
		if t := staticReshape(n, infA, infB); t != nil {
			name := uniqueName(taken, n.Inputs[1]+"_static")
			addInitializer(m, &Initializer{
				Name:     name,
				Value:    &tensor.Tensor{DType: tensor.Int64, Shape: []int{len(t)}, I64: t},
				Encoding: Encoding{RawData: true},
			})
			n.Inputs[1] = name
			count++
		}
	}
	removeDead(m, before)
	return count, nil
}

// probeShapes gives every graph input two concrete shapes: declared fixed
// dimensions as they are, symbolic and unknown ones two different sizes
// (distinct per symbol, so two symbols never look equal). Inputs without a
// shape are left out (their consumers stay unknown). Graph inputs that are
// initializers take the initializer's shape and lose their value.
func probeShapes(m *Model) (a, b map[string][]int) {
	g := m.Graph
	a, b = map[string][]int{}, map[string][]int{}
	primes := []int{1009, 1013, 1019, 1021, 1031, 1033, 1039, 1049, 1051, 1061, 1063, 1069}
	sym := map[string]int{}
	next := 0
	symbol := func(key string) int {
		if k, ok := sym[key]; ok {
			return k
		}
		sym[key] = next
		next++
		return sym[key]
	}
	for _, vi := range g.Inputs {
		if in := g.Initializer(vi.Name); in != nil && in.Value != nil {
			if !overridable(m, vi.Name) {
				continue // a constant: its value stays known
			}
			a[vi.Name] = slices.Clone(in.Value.Shape)
			b[vi.Name] = slices.Clone(in.Value.Shape)
			continue
		}
		t := vi.Type
		if t == nil || !t.IsTensor || !t.HasShape {
			continue
		}
		sa, sb := make([]int, len(t.Shape)), make([]int, len(t.Shape))
		for i, d := range t.Shape {
			if d.HasValue && d.Value >= 0 {
				sa[i], sb[i] = int(d.Value), int(d.Value)
				continue
			}
			key := "?" + vi.Name + "#" + itoa(int64(i))
			if d.HasParam && d.Param != "" {
				key = d.Param
			}
			k := symbol(key)
			sa[i] = primes[(2*k)%len(primes)] + 100*(2*k/len(primes))
			sb[i] = primes[(2*k+1)%len(primes)] + 100*((2*k+1)/len(primes))
		}
		a[vi.Name], b[vi.Name] = sa, sb
	}
	return a, b
}

func mapsEqualShapes(a, b map[string][]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// staticReshape returns a constant shape for a Reshape whose shape input
// varies with the symbolic dimensions, or nil.
func staticReshape(n *Node, infA, infB *inferer) []int64 {
	sa, sb := infA.vals[n.Inputs[1]], infB.vals[n.Inputs[1]]
	da, db := infA.vals[n.Inputs[0]], infB.vals[n.Inputs[0]]
	oa, ob := infA.vals[n.Outputs[0]], infB.vals[n.Outputs[0]]
	if sa == nil || sb == nil || da == nil || db == nil || oa == nil || ob == nil || sa.val == nil || sb.val == nil {
		return nil
	}
	ta, tb := sa.val.I64, sb.val.I64
	if len(ta) != len(tb) || sa.val.DType != tensor.Int64 {
		return nil
	}
	allowZero := n.AttrInt("allowzero", 0) == 1
	t := make([]int64, len(ta))
	inferred := 0
	for i := range ta {
		switch {
		case ta[i] == tb[i]:
			t[i] = ta[i]
		case !allowZero && i < len(da.shape) && i < len(db.shape) && ta[i] == int64(da.shape[i]) && tb[i] == int64(db.shape[i]):
			t[i] = 0
		default:
			t[i] = -1
		}
		if t[i] == -1 {
			inferred++
		}
	}
	if inferred > 1 {
		return nil
	}
	c := &opCtx{inf: infA, n: n}
	ga, errA := reshapeTo(c, da.shape, t, allowZero)
	gb, errB := reshapeTo(c, db.shape, t, allowZero)
	if errA != nil || errB != nil || !slices.Equal(ga, oa.shape) || !slices.Equal(gb, ob.shape) {
		return nil
	}
	return t
}

func tensorsEqual(a, b *tensor.Tensor) bool {
	return a.DType == b.DType && slices.Equal(a.Shape, b.Shape) &&
		slices.Equal(a.I64, b.I64) && slices.EqualFunc(a.F32, b.F32, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) }) &&
		slices.EqualFunc(a.F64, b.F64, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }) &&
		slices.EqualFunc(a.Str, b.Str, func(x, y []byte) bool { return string(x) == string(y) })
}

// subgraphRefs is the set of names read by nodes inside g's sub-graphs
// (If, Loop, Scan bodies), which may capture values of g.
func subgraphRefs(g *Graph) map[string]bool {
	refs := map[string]bool{}
	var walk func(sg *Graph)
	walk = func(sg *Graph) {
		if sg == nil {
			return
		}
		for _, n := range sg.Nodes {
			if sg != g {
				for _, in := range n.Inputs {
					refs[in] = true
				}
			}
			for _, a := range n.Attrs {
				walk(a.G)
				for _, gg := range a.Graphs {
					walk(gg)
				}
			}
		}
		if sg != g {
			for _, o := range sg.Outputs {
				refs[o.Name] = true
			}
		}
	}
	walk(g)
	return refs
}

// usedNames is the set of values read by a node (including nodes of
// sub-graphs) or named as graph outputs.
func usedNames(g *Graph) map[string]bool {
	u := subgraphRefs(g)
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				u[in] = true
			}
		}
	}
	for _, o := range g.Outputs {
		u[o.Name] = true
	}
	return u
}

// removeDead removes nodes all of whose outputs became unused (were in
// before and are no longer read), repeatedly, then initializers that became
// unused, and value_info entries of values that no longer exist. Nodes
// that were already dead before are kept: removing them is not this
// package's call.
func removeDead(m *Model, before map[string]bool) {
	g := m.Graph
	for {
		now := usedNames(g)
		var kept []*Node
		for _, n := range g.Nodes {
			used, wasUsed := false, false
			for _, o := range n.Outputs {
				if o == "" {
					continue
				}
				used = used || now[o]
				wasUsed = wasUsed || before[o]
			}
			if !used && wasUsed {
				continue
			}
			kept = append(kept, n)
		}
		if len(kept) == len(g.Nodes) {
			break
		}
		g.Nodes = kept
	}
	now := usedNames(g)
	var inits []*Initializer
	gone := map[string]bool{}
	for _, in := range g.Initializers {
		if before[in.Name] && !now[in.Name] && !overridable(m, in.Name) {
			gone[in.Name] = true
			continue
		}
		inits = append(inits, in)
	}
	g.Initializers = inits
	if len(gone) > 0 && !modernIR(m) {
		// IR < 4 lists every initializer among the inputs.
		g.Inputs = slices.DeleteFunc(g.Inputs, func(vi *ValueInfo) bool { return gone[vi.Name] })
	}
	pruneValueInfo(g)
}

// pruneValueInfo drops value_info entries for values nothing defines.
func pruneValueInfo(g *Graph) {
	if len(g.ValueInfo) == 0 {
		return
	}
	defined := g.names()
	var vis []*ValueInfo
	for _, vi := range g.ValueInfo {
		if defined[vi.Name] {
			vis = append(vis, vi)
		}
	}
	g.ValueInfo = vis
}

// modernIR reports whether m follows IR version 4 and later, where an
// initializer listed among the graph inputs is a default a caller may
// override. Before IR 4 every initializer had to be listed there, so the
// listing means nothing and initializers are constants. An unset version
// (a hand-built model) counts as modern.
func modernIR(m *Model) bool { return m.IRVersion == 0 || m.IRVersion >= 4 }

// overridable reports whether the initializer name can be replaced by the
// caller at run time, so that it is not a constant.
func overridable(m *Model, name string) bool {
	return modernIR(m) && m.Graph.IsGraphInput(name)
}

// addInitializer adds in to m's graph; before IR 4 it is listed among the
// graph inputs too, as those versions require.
func addInitializer(m *Model, in *Initializer) {
	g := m.Graph
	g.Initializers = append(g.Initializers, in)
	if !modernIR(m) {
		t := &Type{IsTensor: true, Elem: in.Value.DType, HasShape: true}
		for _, d := range in.Value.Shape {
			t.Shape = append(t.Shape, Dim{Value: int64(d), HasValue: true})
		}
		g.Inputs = append(g.Inputs, &ValueInfo{Name: in.Name, Type: t})
	}
}

// constInit returns the initializer named name when it is a constant (not
// overridable) float32 tensor with valid data, else nil.
func constInit(m *Model, name string) *Initializer {
	g := m.Graph
	if name == "" || overridable(m, name) {
		return nil
	}
	in := g.Initializer(name)
	if in == nil || in.Value == nil || in.Value.DType != tensor.Float32 || len(in.Value.F32) != in.Value.Len() {
		return nil
	}
	return in
}

func isDefaultDomain(n *Node) bool { return n.Domain == "" || n.Domain == "ai.onnx" }

// bnIsInference reports whether a BatchNormalization node normalizes with
// its running statistics and produces only Y.
func bnIsInference(n *Node) bool {
	if n.AttrInt("training_mode", 0) != 0 || n.AttrInt("spatial", 1) != 1 {
		return false
	}
	for _, o := range n.Outputs[1:] {
		if o != "" {
			return false
		}
	}
	return len(n.Inputs) == 5 && len(n.Outputs) >= 1
}

// dropoutIsInference reports whether a Dropout node passes its input
// through: no training_mode input, or one that is a constant false.
func dropoutIsInference(n *Node, inf *inferer) bool {
	if len(n.Inputs) < 3 || n.Inputs[2] == "" {
		return true
	}
	if inf == nil {
		return false
	}
	v := inf.vals[n.Inputs[2]]
	return v != nil && v.val != nil && len(v.val.I64) == 1 && v.val.I64[0] == 0
}

// FoldBatchNorm folds every inference-mode BatchNormalization that
// directly follows a Conv (whose output nothing else reads) into that
// Conv: with s = γ/√(var+ε), the weight of output channel m is scaled by
// s[m] and the bias becomes (b − mean)·s + β, computed in float64 and
// rounded once to float32. The Conv then produces the BatchNormalization's
// output name, so downstream nodes are unchanged. Weights, biases and the
// BatchNormalization parameters must be float32 initializers; other cases
// are left alone. It returns the number of BatchNormalizations folded.
func FoldBatchNorm(m *Model) (int, error) {
	if err := Validate(m); err != nil {
		return 0, err
	}
	g := m.Graph
	before := usedNames(g)
	taken := g.names()
	captured := subgraphRefs(g)
	count := 0
	// Kept up to date as BatchNormalizations are folded.
	producers, consumers := g.Producers(), g.Consumers()
	removed := map[*Node]bool{}
	for _, bn := range slices.Clone(g.Nodes) {
		if bn.OpType != "BatchNormalization" || !isDefaultDomain(bn) || !bnIsInference(bn) {
			continue
		}
		x := bn.Inputs[0]
		conv := producers[x]
		if conv == nil || conv.OpType != "Conv" || !isDefaultDomain(conv) || len(conv.Outputs) != 1 ||
			len(consumers[x]) != 1 || g.IsGraphOutput(x) || captured[x] || len(conv.Inputs) < 2 {
			continue
		}
		w := constInit(m, conv.Inputs[1])
		if w == nil || len(w.Value.Shape) < 2 {
			continue
		}
		mOut := w.Value.Shape[0]
		var params [4][]float32
		ok := true
		for i := range 4 {
			p := constInit(m, bn.Inputs[i+1])
			if p == nil || len(p.Value.F32) != mOut {
				ok = false
				break
			}
			params[i] = p.Value.F32
		}
		var bias *Initializer
		if len(conv.Inputs) > 2 && conv.Inputs[2] != "" {
			bias = constInit(m, conv.Inputs[2])
			if bias == nil || len(bias.Value.F32) != mOut {
				ok = false
			}
		}
		if !ok {
			continue
		}
		gamma, beta, mean, variance := params[0], params[1], params[2], params[3]
		eps := float64(bn.AttrFloat("epsilon", 1e-5))
		per := w.Value.Len() / mOut
		newW := make([]float32, w.Value.Len())
		newB := make([]float32, mOut)
		for c := range mOut {
			s := float64(gamma[c]) / math.Sqrt(float64(variance[c])+eps)
			for j := range per {
				newW[c*per+j] = float32(float64(w.Value.F32[c*per+j]) * s)
			}
			b := 0.0
			if bias != nil {
				b = float64(bias.Value.F32[c])
			}
			newB[c] = float32((b-float64(mean[c]))*s + float64(beta[c]))
		}
		wT := &tensor.Tensor{DType: tensor.Float32, Shape: slices.Clone(w.Value.Shape), F32: newW}
		if len(consumers[w.Name]) == 1 && !g.IsGraphOutput(w.Name) {
			w.Value = wT
		} else {
			name := uniqueName(taken, w.Name+"_bnfolded")
			addInitializer(m, &Initializer{Name: name, Value: wT, Encoding: w.Encoding})
			conv.Inputs[1] = name
		}
		bT := &tensor.Tensor{DType: tensor.Float32, Shape: []int{mOut}, F32: newB}
		switch {
		case bias != nil && len(consumers[bias.Name]) == 1 && !g.IsGraphOutput(bias.Name):
			bias.Value = bT
		case bias == nil && len(consumers[bn.Inputs[2]]) == 1 && !g.IsGraphOutput(bn.Inputs[2]):
			// Reuse the BatchNormalization's β: it is the bias's natural name.
			bi := g.Initializer(bn.Inputs[2])
			bi.Value = bT
			conv.Inputs = append(conv.Inputs[:2], bi.Name)
		default:
			base := w.Name + "_bias"
			if bias != nil {
				base = bias.Name + "_bnfolded"
			}
			name := uniqueName(taken, base)
			addInitializer(m, &Initializer{Name: name, Value: bT, Encoding: Encoding{RawData: true}})
			conv.Inputs = append(conv.Inputs[:2], name)
		}
		conv.Outputs[0] = bn.Outputs[0]
		producers[bn.Outputs[0]] = conv
		delete(producers, x)
		delete(consumers, x)
		for _, in := range conv.Inputs[1:] {
			consumers[in] = slices.DeleteFunc(consumers[in], func(n *Node) bool { return n == bn })
			if !slices.Contains(consumers[in], conv) {
				consumers[in] = append(consumers[in], conv)
			}
		}
		removed[bn] = true
		count++
	}
	if count > 0 {
		g.Nodes = slices.DeleteFunc(g.Nodes, func(n *Node) bool { return removed[n] })
		removeDead(m, before)
	}
	return count, nil
}

// unfoldEpsilon is the ε UnfoldBatchNorm gives its BatchNormalizations:
// 2^-17 (≈ 7.6e-6, close to PyTorch's default 1e-5). Being a power of two,
// 1 − ε is exact in float32, so var + ε = (1 − ε) + ε = 1 exactly in any
// precision and order of evaluation.
const unfoldEpsilon = 1.0 / (1 << 17)

// UnfoldBatchNorm gives every Conv that is not already followed by a
// BatchNormalization one that is an exact identity in inference, so the
// Conv can be trained with batch statistics (the reverse of FoldBatchNorm,
// for models exported with BatchNormalization folded away).
//
// The new BatchNormalization has ε = 2^-17, running variance 1 − 2^-17,
// running mean 0, scale γ = 1 and bias β = 0. Then var + ε is exactly 1,
// √1 = 1, and y = (x − 0)/1·1 + 0 = x bit for bit, whether an
// implementation normalizes step by step or folds γ/√(var+ε) first; in
// training, γ = 1, β = 0 and a running variance of ≈1 are PyTorch's
// initial values. The Conv's output is renamed (suffix "_prebn") and the
// BatchNormalization produces the Conv's old output name, so downstream
// nodes and graph outputs are unchanged. It returns the number of
// BatchNormalizations inserted.
func UnfoldBatchNorm(m *Model) (int, error) {
	if err := Validate(m); err != nil {
		return 0, err
	}
	g := m.Graph
	taken := g.names()
	consumers := g.Consumers()
	eps := float32(unfoldEpsilon)
	variance := 1 - eps
	count := 0
	var nodes []*Node
	for _, conv := range g.Nodes {
		nodes = append(nodes, conv)
		if conv.OpType != "Conv" || !isDefaultDomain(conv) || len(conv.Outputs) != 1 || len(conv.Inputs) < 2 {
			continue
		}
		y := conv.Outputs[0]
		if cs := consumers[y]; len(cs) == 1 && cs[0].OpType == "BatchNormalization" && cs[0].Inputs[0] == y {
			continue
		}
		w := g.Initializer(conv.Inputs[1])
		if w == nil || w.Value == nil || len(w.Value.Shape) < 1 {
			continue
		}
		mOut := w.Value.Shape[0]
		base := conv.Name
		if base == "" {
			base = y
		}
		fill := func(v float32) *tensor.Tensor {
			t := tensor.New(mOut)
			for i := range t.F32 {
				t.F32[i] = v
			}
			return t
		}
		names := [4]string{}
		vals := [4]*tensor.Tensor{fill(1), fill(0), fill(0), fill(variance)}
		for i, suffix := range []string{"_bn.scale", "_bn.bias", "_bn.mean", "_bn.var"} {
			names[i] = uniqueName(taken, base+suffix)
			addInitializer(m, &Initializer{Name: names[i], Value: vals[i], Encoding: Encoding{RawData: true}})
		}
		pre := uniqueName(taken, y+"_prebn")
		conv.Outputs[0] = pre
		bn := &Node{
			Name:    uniqueName(taken, base+"_bn"),
			OpType:  "BatchNormalization",
			Inputs:  []string{pre, names[0], names[1], names[2], names[3]},
			Outputs: []string{y},
			Attrs: []*Attribute{
				{Name: "epsilon", Type: AttrFloat, F: eps},
				{Name: "momentum", Type: AttrFloat, F: 0.9},
			},
		}
		if m.Opset() < 7 {
			bn.Attrs = append(bn.Attrs, &Attribute{Name: "is_test", Type: AttrInt, I: 1})
		}
		nodes = append(nodes, bn)
		count++
	}
	g.Nodes = nodes
	return count, nil
}

// RemoveIdentity removes Identity nodes and inference-mode Dropout nodes
// (no training_mode input, or a constant false one; the mask output
// absent or unused) by rewiring their consumers to their input. When the removed
// node's output is a graph output, the output name is kept by renaming the
// input's producer instead; that is impossible when the input is itself a
// graph input, an initializer or another graph output, and such nodes are
// kept. It returns the number of nodes removed.
func RemoveIdentity(m *Model) (int, error) {
	if err := Validate(m); err != nil {
		return 0, err
	}
	g := m.Graph
	var inf *inferer
	captured := subgraphRefs(g)
	count := 0
	for _, n := range slices.Clone(g.Nodes) {
		if !isDefaultDomain(n) || len(n.Inputs) < 1 || len(n.Outputs) < 1 || n.Inputs[0] == "" || n.Outputs[0] == "" {
			continue
		}
		switch n.OpType {
		case "Identity":
		case "Dropout":
			if len(n.Outputs) > 1 && n.Outputs[1] != "" && (g.IsGraphOutput(n.Outputs[1]) || len(g.Consumers()[n.Outputs[1]]) > 0) {
				continue // the mask is used
			}
			if len(n.Inputs) > 2 && n.Inputs[2] != "" && inf == nil {
				inf = newInferer(m, nil, true, 1)
				_ = inf.run()
			}
			if !dropoutIsInference(n, inf) {
				continue
			}
		default:
			continue
		}
		in, out := n.Inputs[0], n.Outputs[0]
		if captured[in] || captured[out] {
			continue // a sub-graph reads it by name
		}
		if !g.IsGraphOutput(out) {
			renameUses(g, out, in)
		} else {
			p := g.Producers()[in]
			if p == nil || g.IsGraphOutput(in) || g.IsGraphInput(in) || g.Initializer(in) != nil {
				continue
			}
			for i, o := range p.Outputs {
				if o == in {
					p.Outputs[i] = out
				}
			}
			renameUses(g, in, out)
		}
		g.Nodes = slices.DeleteFunc(g.Nodes, func(x *Node) bool { return x == n })
		count++
	}
	if count > 0 {
		pruneValueInfo(g)
	}
	return count, nil
}

// renameUses makes every node input reading from read to instead.
func renameUses(g *Graph, from, to string) {
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == from {
				n.Inputs[i] = to
			}
		}
	}
}

// RemoveUnused removes nodes none of whose outputs is read (by a node, a
// sub-graph or as a graph output), repeatedly, then initializers nothing
// reads (initializers a caller may override as inputs are kept). Pruning
// leaves such debris behind. It returns the number of nodes and
// initializers removed.
func RemoveUnused(m *Model) (int, error) {
	if err := Validate(m); err != nil {
		return 0, err
	}
	g := m.Graph
	// Pretend every value was used before: removeDead then removes all
	// that is unused now.
	all := map[string]bool{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			all[o] = true
		}
	}
	for _, in := range g.Initializers {
		all[in.Name] = true
	}
	nodes, inits := len(g.Nodes), len(g.Initializers)
	removeDead(m, all)
	return nodes - len(g.Nodes) + inits - len(g.Initializers), nil
}

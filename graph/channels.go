package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// Structured (channel) pruning.
//
// ChannelGroups follows the channel dimension (axis 1, NCHW) of every value
// from the Conv that creates it to every op that reads it, and splits the
// channels into dependency groups: sets of channels that must be removed
// together because several tensors index them. A Conv's output channels
// tie its weight rows, its bias, the BatchNormalization after it and the
// input columns of the next Conv; an Add (or Mul) of two branches ties the
// channels of both producers into one group; a depthwise Conv ties its
// input channels to its output channels; Concat places each input's
// channels at an offset in its output; Flatten (or Reshape to [N, -1])
// hands the channels to the classifier's input rows, in blocks of H·W
// entries when the map was not globally pooled.
//
// Removing a channel must compute what the model computes with that
// channel zeroed at its producers (conv weight rows and bias,
// BatchNormalization scale and shift: the Zero slices). The analysis
// therefore tracks where a zeroed channel stops being zero (after Sigmoid,
// HardSigmoid, adding a scalar, a Clip whose range excludes 0): such a
// value may still be multiplied by a zero channel (squeeze-and-excitation)
// but not read by a Conv or the classifier.
//
// The analysis is conservative: a group whose channels reach a graph
// output, an op it does not know (Reshape of a spatial tensor, Transpose,
// Softmax over channels...), a grouped (not depthwise) Conv, or a weight
// it cannot slice (shared, not an initializer, not float32) is marked
// unprunable, with the reason naming the node.

// ChannelGroup is one dependency group of channels.
type ChannelGroup struct {
	// ID is the group's index in ChannelGroups' result (stable for a given
	// model); RemoveChannels takes keep sets keyed by it.
	ID int
	// Channels is the number of channels in the group.
	Channels int
	// Prunable is false when some use of the channels is not understood;
	// Reason then says which (naming the node or value).
	Prunable bool
	Reason   string
	// Sources are the Convs whose output channels are the group (several
	// when a residual Add ties branches together), in graph order.
	Sources []ChannelSource
	// Slices are every initializer slice indexed by the group's channels.
	Slices []ChannelSlice
	// Points are the values the group's consumers (Convs reading them as
	// input channels, the classifier) read: multiplying them by a binary
	// per-channel mask gives the same function as removing the masked
	// channels, since every use of a group's channels ends at a consumer
	// (any other use makes the group unprunable).
	Points []ChannelPoint
	// Depthwise names the depthwise Convs (group = C_in = C_out) whose
	// channels include the group's: removing channels changes their group
	// attribute.
	Depthwise []string
}

// ChannelSource is a Conv whose output channels (weight rows) form a group.
type ChannelSource struct {
	Node   string // node name
	Weight string // weight initializer [C_out, C_in/group, ...]
}

// ChannelSlice is a slice of an initializer indexed by a group's channels:
// channel c of the group is the entries (Offset+c)·Block ...
// (Offset+c+1)·Block−1 along Axis.
type ChannelSlice struct {
	Tensor string // initializer name
	Node   string // the node that reads it
	Axis   int
	Offset int
	Block  int
	// Zero is true for producer-side slices (conv weight rows and bias,
	// BatchNormalization scale and bias, per-channel additive constants):
	// zeroing all of them at a channel makes that channel exactly zero at
	// every Point. Consumer-side slices (the next Conv's weight columns,
	// the classifier's input rows) and slices that must not be zeroed
	// (running variance, a divisor) have Zero false.
	Zero bool
}

// ChannelPoint is a value that carries a group's channels: channel c of the
// group is channel Offset+c of the value, which has Channels channels in
// all and the given rank; each channel spans Block consecutive entries of
// axis 1 (1, or H·W after Flatten of a spatial map).
type ChannelPoint struct {
	Value    string
	Offset   int
	Channels int
	Rank     int
	Block    int
}

// ChannelGroups returns the channel dependency groups of m's Conv outputs,
// in graph order of their first Conv. Groups that cannot be pruned are
// included with Prunable false and the reason.
func ChannelGroups(m *Model) ([]ChannelGroup, error) {
	a, err := analyzeChannels(m)
	if err != nil {
		return nil, err
	}
	return a.groups, nil
}

// seg is a run of consecutive channels of a value that belong to one group.
type seg struct{ g, n int }

// layout describes the channel axis (axis 1) of a value.
type layout struct {
	segs []seg
	rank int
	// block is the number of consecutive entries along axis 1 per channel
	// (1, or H·W after Flatten of a spatial map).
	block int
	// spatial1 is true when every dimension after the channel axis is 1
	// (after a global pool), so Flatten keeps block.
	spatial1 bool
	// live, when set, names the node after which a removed (zeroed)
	// channel is no longer zero (Sigmoid, adding a scalar): a consumer
	// reading such a value cannot have the channel removed, but a Mul by
	// a zero channel (squeeze-and-excitation) makes it zero again.
	live string
}

func (l *layout) channels() int {
	n := 0
	for _, s := range l.segs {
		n += s.n
	}
	return n
}

type rawGroup struct {
	n         int
	reason    string
	sources   []ChannelSource
	slices    []ChannelSlice
	points    []ChannelPoint
	depthwise []string
}

type channelAnalysis struct {
	m      *Model
	g      *Graph
	raw    []*rawGroup
	parent []int
	lay    map[string]*layout
	uses   map[string]int // node-input uses of each name
	shapes map[string][]int
	shaped bool
	groups []ChannelGroup
	// rootID maps a union-find root to its ChannelGroup ID (-1: not
	// reported).
	rootID map[int]int
	// reads are the values consumers read as input channels, in graph
	// order.
	reads []string
	order []*Node
}

// newGroup adds a group of n channels. Groups without a source Conv (the
// fixed channels of a value no Conv produced, concatenated with others)
// are not reported, but mark what they are tied to as unprunable.
func (a *channelAnalysis) newGroup(n int) int {
	a.raw = append(a.raw, &rawGroup{n: n})
	a.parent = append(a.parent, len(a.parent))
	return len(a.raw) - 1
}

func (a *channelAnalysis) find(g int) int {
	for a.parent[g] != g {
		a.parent[g] = a.parent[a.parent[g]]
		g = a.parent[g]
	}
	return g
}

func (a *channelAnalysis) union(x, y int) {
	x, y = a.find(x), a.find(y)
	if x == y {
		return
	}
	if y < x {
		x, y = y, x
	}
	a.parent[y] = x
}

// markGroup records why group g cannot be pruned (first reason wins).
func (a *channelAnalysis) markGroup(g int, reason string) {
	r := a.raw[g]
	if r.reason == "" {
		r.reason = reason
	}
}

func (a *channelAnalysis) mark(l *layout, format string, args ...any) {
	if l == nil {
		return
	}
	reason := fmt.Sprintf(format, args...)
	for _, s := range l.segs {
		a.markGroup(s.g, reason)
	}
}

// shape returns the inferred shape of a value (batch 1 for symbolic
// dimensions), or nil when shape inference fails.
func (a *channelAnalysis) shape(name string) []int {
	if !a.shaped {
		a.shaped = true
		in := map[string][]int{}
		for _, vi := range a.g.Inputs {
			if a.g.Initializer(vi.Name) != nil || vi.Type == nil || !vi.Type.HasShape {
				continue
			}
			s := make([]int, len(vi.Type.Shape))
			for i, d := range vi.Type.Shape {
				s[i] = 1
				if d.HasValue && d.Value > 0 {
					s[i] = int(d.Value)
				}
			}
			in[vi.Name] = s
		}
		if sh, err := InferShapes(a.m, in); err == nil {
			a.shapes = sh
		}
	}
	return a.shapes[name]
}

// denseInit returns the dense float32 initializer name that a node may
// slice, or a reason why it cannot.
func (a *channelAnalysis) denseInit(name string) (*Initializer, string) {
	var in *Initializer
	for _, x := range a.g.Initializers {
		if x.Name == name {
			in = x
			break
		}
	}
	switch {
	case in == nil:
		return nil, fmt.Sprintf("%q is not a dense initializer", name)
	case in.Value == nil || in.Value.DType != tensor.Float32:
		return nil, fmt.Sprintf("initializer %q is not float32", name)
	case a.uses[name] > 1:
		return nil, fmt.Sprintf("initializer %q is shared by %d node inputs", name, a.uses[name])
	case overridable(a.m, name):
		// From IR 4 an initializer listed among the graph inputs is a
		// default the caller may replace; before IR 4 every initializer
		// is listed there and stays a constant.
		return nil, fmt.Sprintf("initializer %q is also a graph input (a default the caller may replace)", name)
	}
	return in, ""
}

// addSlices records tensor[axis] sliced by l's channels (every segment at
// its offset). It checks the tensor's size along axis.
func (a *channelAnalysis) addSlices(l *layout, n *Node, name string, axis int, zero bool) {
	in, why := a.denseInit(name)
	if in == nil {
		a.mark(l, "%s: %s", nodeRef(n), why)
		return
	}
	if axis >= len(in.Value.Shape) || in.Value.Shape[axis] != l.channels()*l.block {
		a.mark(l, "%s: %q has shape %v, want %d along axis %d", nodeRef(n), name, in.Value.Shape, l.channels()*l.block, axis)
		return
	}
	off := 0
	for _, s := range l.segs {
		a.raw[s.g].slices = append(a.raw[s.g].slices, ChannelSlice{Tensor: name, Node: n.Name, Axis: axis, Offset: off, Block: l.block, Zero: zero})
		off += s.n
	}
}

func sameLayout(x, y *layout) bool {
	if x.rank != y.rank || x.block != y.block || len(x.segs) != len(y.segs) {
		return false
	}
	for i := range x.segs {
		if x.segs[i].n != y.segs[i].n {
			return false
		}
	}
	return true
}

func analyzeChannels(m *Model) (*channelAnalysis, error) {
	if m == nil || m.Graph == nil {
		return nil, &ModelError{Msg: "model has no graph"}
	}
	if err := Validate(m); err != nil {
		return nil, err
	}
	g := m.Graph
	if err := uniqueNodeNames(g); err != nil {
		return nil, err
	}
	order, err := Sort(g)
	if err != nil {
		return nil, err
	}
	a := &channelAnalysis{m: m, g: g, lay: map[string]*layout{}, uses: map[string]int{}, order: order}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				a.uses[in]++
			}
		}
	}
	for _, n := range order {
		a.node(n)
		// Values a sub-graph reads from the outer scope are uses the
		// analysis cannot follow.
		for _, at := range n.Attrs {
			for _, sg := range append(slices.Clone(at.Graphs), at.G) {
				if sg == nil {
					continue
				}
				for name := range subgraphReads(sg) {
					a.mark(a.lay[name], "%s: value %q is read by a sub-graph", nodeRef(n), name)
				}
			}
		}
	}
	for _, o := range g.Outputs {
		a.mark(a.lay[o.Name], "channels reach graph output %q", o.Name)
	}
	a.points()
	a.collect()
	return a, nil
}

func subgraphReads(g *Graph) map[string]bool {
	out := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			out[in] = true
		}
		for _, at := range n.Attrs {
			for _, sg := range append(slices.Clone(at.Graphs), at.G) {
				if sg != nil {
					for k := range subgraphReads(sg) {
						out[k] = true
					}
				}
			}
		}
	}
	for _, o := range g.Outputs {
		out[o.Name] = true
	}
	return out
}

// nonZeroUnary ops map a channel to the same channel but a zero channel to
// a nonzero one.
var nonZeroUnary = map[string]bool{"Sigmoid": true, "HardSigmoid": true, "Exp": true, "Softplus": true, "Cos": true}

// zeroPreserving unary ops map a channel to the same channel and a zero
// channel to zero.
var zeroPreserving = map[string]bool{
	"Relu": true, "LeakyRelu": true, "Elu": true, "Selu": true, "Tanh": true, "HardSwish": true,
	"Identity": true, "Neg": true, "Abs": true, "Softsign": true, "Erf": true, "Celu": true,
	"MaxPool": true, "AveragePool": true, "GlobalAveragePool": true, "GlobalMaxPool": true,
	"Dropout": true, "Clip": true,
}

func (a *channelAnalysis) node(n *Node) {
	ins := make([]*layout, len(n.Inputs))
	var tracked []*layout
	for i, name := range n.Inputs {
		if name != "" {
			ins[i] = a.lay[name]
		}
		if ins[i] != nil {
			tracked = append(tracked, ins[i])
		}
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		for _, l := range tracked {
			a.mark(l, "%s: op of domain %q is not understood", nodeRef(n), n.Domain)
		}
		return
	}
	unknown := func(why string) {
		for _, l := range tracked {
			a.mark(l, "%s: %s", nodeRef(n), why)
		}
	}
	out := func(l *layout) {
		if len(n.Outputs) > 0 && n.Outputs[0] != "" && l != nil {
			a.lay[n.Outputs[0]] = l
		}
	}
	switch op := n.OpType; {
	case op == "Conv":
		a.conv(n, ins)
	case op == "BatchNormalization" || op == "InstanceNormalization":
		l := ins[0]
		if l == nil {
			unknown("normalization parameters computed from channel values")
			return
		}
		if len(tracked) > 1 {
			unknown("normalization parameters computed from channel values")
			return
		}
		for _, o := range n.Outputs[1:] {
			if o != "" {
				unknown("training-mode outputs are not supported")
				return
			}
		}
		last := 4
		if op == "InstanceNormalization" {
			last = 2
		}
		if len(n.Inputs) < last+1 {
			unknown("missing parameters")
			return
		}
		for i := 1; i <= last; i++ {
			a.addSlices(l, n, n.Inputs[i], 0, i <= 2)
		}
		// Zeroing the scale and shift makes a removed channel zero
		// whatever its input.
		nl := *l
		nl.live = ""
		out(&nl)
	case zeroPreserving[op]:
		l := ins[0]
		if l == nil {
			if len(tracked) > 0 {
				unknown("channel values used as an operator parameter")
			}
			return
		}
		if len(tracked) > 1 {
			unknown("channel values used as an operator parameter")
			return
		}
		if (op == "MaxPool") && len(n.Outputs) > 1 && n.Outputs[1] != "" {
			unknown("MaxPool indices output encodes channel positions")
			return
		}
		nl := *l
		if op == "Clip" && !clipKeepsZero(a, n) {
			nl.live = nodeRef(n) + " (bounds exclude 0 or are not constant)"
		}
		if op == "GlobalAveragePool" || op == "GlobalMaxPool" {
			nl.spatial1 = true
		}
		out(&nl)
		if op == "Dropout" && len(n.Outputs) > 1 && n.Outputs[1] != "" {
			a.lay[n.Outputs[1]] = &nl
		}
	case nonZeroUnary[op]:
		l := ins[0]
		if l == nil {
			if len(tracked) > 0 {
				unknown("channel values used as an operator parameter")
			}
			return
		}
		if len(tracked) > 1 {
			unknown("channel values used as an operator parameter")
			return
		}
		nl := *l
		nl.live = nodeRef(n)
		out(&nl)
	case op == "Flatten":
		l := ins[0]
		if l == nil {
			return
		}
		axis := n.AttrInt("axis", 1)
		if axis < 0 {
			axis += int64(l.rank)
		}
		if axis != 1 {
			unknown(fmt.Sprintf("Flatten at axis %d mixes the channel axis", axis))
			return
		}
		nl, why := a.flatten(l, n.Inputs[0])
		if nl == nil {
			unknown(why)
			return
		}
		out(nl)
	case op == "Reshape":
		l := ins[0]
		if l == nil {
			if len(tracked) > 0 {
				unknown("shape computed from channel values")
			}
			return
		}
		// Reshape to [batch, -1] is a Flatten; anything else is not
		// followed.
		shp := a.constant(n.Inputs[1])
		if shp == nil || shp.DType != tensor.Int64 || len(shp.I64) != 2 || shp.I64[1] != -1 || shp.I64[0] == -1 {
			unknown("Reshape of a channel tensor (only Reshape to [N, -1] is followed)")
			return
		}
		nl, why := a.flatten(l, n.Inputs[0])
		if nl == nil {
			unknown(why)
			return
		}
		out(nl)
	case op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min" ||
		op == "Sum" || op == "Mean" || op == "PRelu" || op == "Pow":
		if len(tracked) == 0 {
			return
		}
		out(a.elementwise(n, ins, tracked))
	case op == "Concat":
		if len(tracked) == 0 {
			return
		}
		out(a.concat(n, ins, tracked))
	case op == "Gemm":
		l := ins[0]
		if l == nil {
			unknown("Gemm operand B or C computed from channel values")
			return
		}
		if len(tracked) > 1 || n.AttrInt("transA", 0) != 0 || l.rank != 2 || len(n.Inputs) < 2 {
			unknown("Gemm reads channels other than as the rows of input A")
			return
		}
		if l.live != "" {
			unknown(fmt.Sprintf("reads channels that %s makes nonzero when removed", l.live))
		}
		axis := 0
		if n.AttrInt("transB", 0) != 0 {
			axis = 1
		}
		a.addSlices(l, n, n.Inputs[1], axis, false)
		a.reads = append(a.reads, n.Inputs[0])
	case op == "MatMul":
		l := ins[0]
		if l == nil || len(tracked) > 1 || l.rank != 2 {
			unknown("MatMul reads channels other than as the rows of a rank-2 input A")
			return
		}
		if l.live != "" {
			unknown(fmt.Sprintf("reads channels that %s makes nonzero when removed", l.live))
		}
		a.addSlices(l, n, n.Inputs[1], 0, false)
		a.reads = append(a.reads, n.Inputs[0])
	default:
		unknown(fmt.Sprintf("op %s is not followed by channel pruning", op))
	}
}

// flatten is the layout of Flatten(axis 1) of a channel value.
func (a *channelAnalysis) flatten(l *layout, name string) (*layout, string) {
	nl := &layout{segs: l.segs, rank: 2, block: l.block, spatial1: true, live: l.live}
	if l.rank == 2 {
		return nl, ""
	}
	if l.spatial1 {
		return nl, ""
	}
	s := a.shape(name)
	if len(s) != l.rank {
		return nil, fmt.Sprintf("the spatial size of %q is unknown", name)
	}
	hw := 1
	for _, d := range s[2:] {
		hw *= d
	}
	nl.block = l.block * hw
	return nl, ""
}

// constant returns the value of an initializer or of a Constant node's
// output (value attribute), or nil.
func (a *channelAnalysis) constant(name string) *tensor.Tensor {
	if in := a.g.Initializer(name); in != nil {
		return in.Value
	}
	for _, n := range a.g.Nodes {
		if n.OpType == "Constant" && len(n.Outputs) == 1 && n.Outputs[0] == name {
			if at := n.Attr("value"); at != nil && at.T != nil {
				return at.T.Value
			}
			if at := n.Attr("value_float"); at != nil {
				return tensor.FromFloat32([]float32{at.F})
			}
		}
	}
	return nil
}

func clipKeepsZero(a *channelAnalysis, n *Node) bool {
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	if n.Attr("min") != nil {
		lo = n.AttrFloat("min", lo)
	}
	if n.Attr("max") != nil {
		hi = n.AttrFloat("max", hi)
	}
	for i, p := range []*float32{&lo, &hi} {
		if len(n.Inputs) <= i+1 || n.Inputs[i+1] == "" {
			continue
		}
		v := a.constant(n.Inputs[i+1])
		if v == nil || v.DType != tensor.Float32 || len(v.F32) != 1 {
			return false
		}
		*p = v.F32[0]
	}
	return lo <= 0 && hi >= 0
}

func (a *channelAnalysis) conv(n *Node, ins []*layout) {
	l := ins[0]
	for _, x := range ins[1:] {
		if x != nil {
			a.mark(x, "%s: Conv weight or bias computed from channel values", nodeRef(n))
			a.mark(l, "%s: Conv weight or bias computed from channel values", nodeRef(n))
			return
		}
	}
	if len(n.Inputs) < 2 {
		return
	}
	w, why := a.denseInit(n.Inputs[1])
	if w == nil || len(w.Value.Shape) < 3 {
		if why == "" {
			why = "weight has rank < 3"
		}
		a.mark(l, "%s: %s", nodeRef(n), why)
		// The output channels still form a group, unprunable, so the
		// reason reaches whoever asks why nothing can be pruned.
		if ws := a.shape(n.Inputs[1]); len(ws) >= 3 {
			g := a.newGroup(ws[0])
			a.raw[g].sources = append(a.raw[g].sources, ChannelSource{Node: n.Name, Weight: n.Inputs[1]})
			a.markGroup(g, fmt.Sprintf("%s: %s", nodeRef(n), why))
			a.lay[n.Outputs[0]] = &layout{segs: []seg{{g, ws[0]}}, rank: len(ws), block: 1}
		}
		return
	}
	cout, cinG := w.Value.Shape[0], w.Value.Shape[1]
	group := int(n.AttrInt("group", 1))
	rank := len(w.Value.Shape)
	bias := ""
	if len(n.Inputs) > 2 {
		bias = n.Inputs[2]
	}
	if l != nil && (l.block != 1 || l.rank != rank) {
		a.mark(l, "%s: Conv input is not an NCHW channel map", nodeRef(n))
		l = nil
		// The input stays as it is; the output can still be pruned.
	}
	switch {
	case group == 1:
		if l != nil && l.live != "" {
			a.mark(l, "%s reads channels that %s makes nonzero when removed", nodeRef(n), l.live)
		}
		if l != nil {
			a.addSlices(l, n, n.Inputs[1], 1, false)
			a.reads = append(a.reads, n.Inputs[0])
		}
		g := a.newGroup(cout)
		nl := &layout{segs: []seg{{g, cout}}, rank: rank, block: 1}
		a.raw[g].sources = append(a.raw[g].sources, ChannelSource{Node: n.Name, Weight: n.Inputs[1]})
		a.addSlices(nl, n, n.Inputs[1], 0, true)
		if bias != "" {
			a.addSlices(nl, n, bias, 0, true)
		}
		a.lay[n.Outputs[0]] = nl
	case cinG == 1 && cout == group && (l == nil || l.channels() == group):
		// Depthwise: output channel c reads input channel c only.
		nl := l
		if nl == nil {
			// Its input's channels are not followed (a Pad, a channel
			// shuffle, the graph input): removing an output channel
			// would need the same input channel gone.
			g := a.newGroup(cout)
			a.raw[g].sources = append(a.raw[g].sources, ChannelSource{Node: n.Name, Weight: n.Inputs[1]})
			a.markGroup(g, fmt.Sprintf("%s: depthwise convolution on channels the analysis does not follow (%q); its channels are not pruned", nodeRef(n), n.Inputs[0]))
			nl = &layout{segs: []seg{{g, cout}}, rank: rank, block: 1}
		} else {
			nl = &layout{segs: l.segs, rank: rank, block: 1}
		}
		a.addSlices(nl, n, n.Inputs[1], 0, true)
		if bias != "" {
			a.addSlices(nl, n, bias, 0, true)
		}
		for _, s := range nl.segs {
			a.raw[s.g].depthwise = append(a.raw[s.g].depthwise, n.Name)
		}
		a.lay[n.Outputs[0]] = nl
	default:
		reason := fmt.Sprintf("%s: grouped convolution (group %d) is not pruned", nodeRef(n), group)
		a.mark(l, "%s", reason)
		g := a.newGroup(cout)
		a.raw[g].sources = append(a.raw[g].sources, ChannelSource{Node: n.Name, Weight: n.Inputs[1]})
		a.markGroup(g, reason)
		a.lay[n.Outputs[0]] = &layout{segs: []seg{{g, cout}}, rank: rank, block: 1}
	}
}

// elementwise handles Add, Mul and the other broadcasting binary ops.
func (a *channelAnalysis) elementwise(n *Node, ins []*layout, tracked []*layout) *layout {
	op := n.OpType
	fail := func(format string, args ...any) *layout {
		why := fmt.Sprintf(format, args...)
		for _, l := range tracked {
			a.mark(l, "%s: %s", nodeRef(n), why)
		}
		return nil
	}
	first := tracked[0]
	for _, l := range tracked[1:] {
		if !sameLayout(first, l) {
			return fail("operands carry channel groups that do not line up")
		}
	}
	if (op == "Div" || op == "Pow" || op == "PRelu") && (ins[0] == nil || len(tracked) > 1) {
		return fail("channel values as divisor, exponent or slope")
	}
	type constIn struct {
		name string
		axis int
	}
	var consts []constIn
	live := "" // set when a scalar operand makes a zero channel nonzero
	for i, name := range n.Inputs {
		if ins[i] != nil || name == "" {
			continue
		}
		val := a.constant(name)
		if val == nil {
			return fail("operand %q is neither a channel map nor a constant", name)
		}
		if val.DType != tensor.Float32 {
			return fail("operand %q is not float32", name)
		}
		numel := tensor.Numel(val.Shape)
		if numel == 1 {
			v := val.F32[0]
			ok := true
			switch op {
			case "Add", "Sum", "Mean", "Sub":
				ok = v == 0
			case "Max":
				ok = v <= 0
			case "Min":
				ok = v >= 0
			case "Pow":
				ok = v > 0
			}
			if !ok {
				live = fmt.Sprintf("%s (scalar %v)", nodeRef(n), v)
			}
			continue
		}
		cs := val.Shape
		j := 1 - (first.rank - len(cs))
		if j < 0 || len(cs) > first.rank || cs[j] != first.channels()*first.block || numel != cs[j] {
			return fail("constant %q of shape %v is not per-channel", name, cs)
		}
		if op == "Pow" {
			return fail("per-channel exponent")
		}
		consts = append(consts, constIn{name, j})
	}
	for _, l := range tracked[1:] {
		for i := range l.segs {
			a.union(first.segs[i].g, l.segs[i].g)
		}
	}
	zero := op != "Div" && op != "PRelu"
	for _, c := range consts {
		a.addSlices(first, n, c.name, c.axis, zero)
	}
	nl := *first
	for _, l := range tracked {
		nl.spatial1 = nl.spatial1 && l.spatial1
	}
	switch op {
	case "Mul":
		// A zero channel times anything is zero.
		for _, l := range tracked {
			if l.live == "" {
				nl.live = ""
			}
		}
	case "Div", "PRelu", "Pow":
		nl.live = ins[0].live
		if live != "" {
			nl.live = live
		}
	default:
		nl.live = live
		for _, l := range tracked {
			if l.live != "" {
				nl.live = l.live
			}
		}
	}
	return &nl
}

func (a *channelAnalysis) concat(n *Node, ins []*layout, tracked []*layout) *layout {
	fail := func(why string) *layout {
		for _, l := range tracked {
			a.mark(l, "%s: %s", nodeRef(n), why)
		}
		return nil
	}
	rank := tracked[0].rank
	axis := n.AttrInt("axis", 1)
	if axis < 0 {
		axis += int64(rank)
	}
	if axis != 1 {
		return fail(fmt.Sprintf("Concat along axis %d", axis))
	}
	nl := &layout{rank: rank, block: 1, spatial1: true}
	for i, name := range n.Inputs {
		l := ins[i]
		if l == nil {
			// Channels no Conv produced: a fixed segment.
			s := a.shape(name)
			if len(s) != rank {
				return fail(fmt.Sprintf("channel count of %q is unknown", name))
			}
			g := a.newGroup(s[1])
			a.markGroup(g, fmt.Sprintf("%s: concatenated with fixed channels of %q", nodeRef(n), name))
			l = &layout{segs: []seg{{g, s[1]}}, rank: rank, block: 1}
		}
		if l.rank != rank || l.block != 1 {
			return fail("Concat of values of different ranks")
		}
		nl.segs = append(nl.segs, l.segs...)
		nl.spatial1 = nl.spatial1 && l.spatial1
		if l.live != "" {
			nl.live = l.live
		}
	}
	return nl
}

// points lists, per group, the values its consumers read (once each).
func (a *channelAnalysis) points() {
	seen := map[string]bool{}
	for _, v := range a.reads {
		if seen[v] {
			continue
		}
		seen[v] = true
		l := a.lay[v]
		off := 0
		for _, s := range l.segs {
			a.raw[s.g].points = append(a.raw[s.g].points, ChannelPoint{Value: v, Offset: off, Channels: l.channels(), Rank: l.rank, Block: l.block})
			off += s.n
		}
	}
}

// collect merges the raw groups into ChannelGroups.
func (a *channelAnalysis) collect() {
	a.rootID = map[int]int{}
	byRoot := map[int]*ChannelGroup{}
	var roots []int
	for i, r := range a.raw {
		root := a.find(i)
		cg := byRoot[root]
		if cg == nil {
			cg = &ChannelGroup{Channels: r.n, Prunable: true}
			byRoot[root] = cg
			roots = append(roots, root)
		}
		if r.reason != "" && cg.Reason == "" {
			cg.Reason = r.reason
		}
		cg.Sources = append(cg.Sources, r.sources...)
		cg.Slices = append(cg.Slices, r.slices...)
		cg.Points = append(cg.Points, r.points...)
		for _, d := range r.depthwise {
			if !slices.Contains(cg.Depthwise, d) {
				cg.Depthwise = append(cg.Depthwise, d)
			}
		}
	}
	slices.Sort(roots)
	for _, root := range roots {
		cg := byRoot[root]
		if len(cg.Sources) == 0 {
			a.rootID[root] = -1
			continue
		}
		cg.Prunable = cg.Reason == ""
		cg.ID = len(a.groups)
		a.rootID[root] = cg.ID
		a.groups = append(a.groups, *cg)
	}
}

// groupOf returns the ChannelGroup ID of raw group g, or -1.
func (a *channelAnalysis) groupOf(g int) int {
	id, ok := a.rootID[a.find(g)]
	if !ok {
		return -1
	}
	return id
}

// RemoveChannels physically removes channels from m: for each prunable
// group ID in keep (IDs as ChannelGroups numbers them for m), only the
// listed channels (sorted, distinct, at least one) stay, in every tensor
// the group indexes: Conv weight rows and biases, BatchNormalization
// parameters, the consumers' input columns, depthwise Conv weights (whose
// group attribute is updated) and the classifier's input rows. Declared
// value_info shapes are updated. Groups not in keep are left whole. The
// result is a smaller dense model computing what m computes with the
// removed channels' Zero slices zeroed.
func RemoveChannels(m *Model, keep map[int][]int) error {
	a, err := analyzeChannels(m)
	if err != nil {
		return err
	}
	// kept[id][c] is true when channel c of group id stays.
	kept := map[int][]bool{}
	for id, idx := range keep {
		if id < 0 || id >= len(a.groups) {
			return fmt.Errorf("graph: RemoveChannels: no channel group %d (the model has %d)", id, len(a.groups))
		}
		cg := &a.groups[id]
		name := cg.Sources[0].Node
		if !cg.Prunable {
			return fmt.Errorf("graph: RemoveChannels: channel group %d (Conv %q) cannot be pruned: %s", id, name, cg.Reason)
		}
		if len(idx) == 0 {
			return fmt.Errorf("graph: RemoveChannels: channel group %d (Conv %q): keep at least one of its %d channels", id, name, cg.Channels)
		}
		k := make([]bool, cg.Channels)
		for i, c := range idx {
			if c < 0 || c >= cg.Channels || (i > 0 && c <= idx[i-1]) {
				return fmt.Errorf("graph: RemoveChannels: channel group %d (Conv %q): keep list must be sorted distinct channels in [0, %d), got %v", id, name, cg.Channels, idx)
			}
			k[c] = true
		}
		kept[id] = k
	}
	// drop[tensor][axis] holds the element indices to remove.
	drop := map[string]map[int]map[int]bool{}
	for id, k := range kept {
		for _, s := range a.groups[id].Slices {
			axes := drop[s.Tensor]
			if axes == nil {
				axes = map[int]map[int]bool{}
				drop[s.Tensor] = axes
			}
			d := axes[s.Axis]
			if d == nil {
				d = map[int]bool{}
				axes[s.Axis] = d
			}
			for c, ok := range k {
				if ok {
					continue
				}
				for j := 0; j < s.Block; j++ {
					d[(s.Offset+c)*s.Block+j] = true
				}
			}
		}
	}
	names := make([]string, 0, len(drop))
	for n := range drop {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		in, _ := a.denseInit(name)
		if in == nil {
			return fmt.Errorf("graph: RemoveChannels: initializer %q disappeared", name)
		}
		in.Value = gatherAxes(in.Value, drop[name])
		// Before IR 4 the initializer is also a graph input, whose
		// declared shape follows it.
		for _, vi := range a.g.Inputs {
			if vi.Name == name && vi.Type != nil && vi.Type.HasShape && len(vi.Type.Shape) == len(in.Value.Shape) {
				for i, d := range in.Value.Shape {
					vi.Type.Shape[i] = Dim{Value: int64(d), HasValue: true}
				}
			}
		}
	}
	dw := map[string]bool{}
	for id := range kept {
		for _, d := range a.groups[id].Depthwise {
			dw[d] = true
		}
	}
	for _, n := range a.g.Nodes {
		if !dw[n.Name] || n.OpType != "Conv" {
			continue
		}
		w := a.g.Initializer(n.Inputs[1])
		if at := n.Attr("group"); at != nil {
			at.I = int64(w.Value.Shape[0])
		} else {
			n.Attrs = append(n.Attrs, &Attribute{Name: "group", Type: AttrInt, I: int64(w.Value.Shape[0])})
		}
	}
	// Declared shapes of intermediate values.
	for _, vi := range a.g.ValueInfo {
		l := a.lay[vi.Name]
		if l == nil || vi.Type == nil || !vi.Type.HasShape || len(vi.Type.Shape) < 2 || !vi.Type.Shape[1].HasValue {
			continue
		}
		c := 0
		for _, s := range l.segs {
			id := a.groupOf(s.g)
			if k, ok := kept[id]; ok && id >= 0 {
				for _, b := range k {
					if b {
						c++
					}
				}
			} else {
				c += s.n
			}
		}
		vi.Type.Shape[1].Value = int64(c * l.block)
	}
	return nil
}

// gatherAxes returns t without the indices listed in drop along each axis.
func gatherAxes(t *tensor.Tensor, drop map[int]map[int]bool) *tensor.Tensor {
	shape := slices.Clone(t.Shape)
	keepIdx := make([][]int, len(shape))
	for ax := range shape {
		for i := 0; i < t.Shape[ax]; i++ {
			if !drop[ax][i] {
				keepIdx[ax] = append(keepIdx[ax], i)
			}
		}
		shape[ax] = len(keepIdx[ax])
	}
	out := tensor.New(shape...)
	out.DType = t.DType
	strides := make([]int, len(t.Shape))
	st := 1
	for ax := len(t.Shape) - 1; ax >= 0; ax-- {
		strides[ax] = st
		st *= t.Shape[ax]
	}
	idx := make([]int, len(shape))
	for o := range out.F32 {
		src := 0
		for ax, i := range idx {
			src += keepIdx[ax][i] * strides[ax]
		}
		out.F32[o] = t.F32[src]
		for ax := len(idx) - 1; ax >= 0; ax-- {
			idx[ax]++
			if idx[ax] < shape[ax] {
				break
			}
			idx[ax] = 0
		}
	}
	return out
}

// ChannelGroupName is a short human name for a group: its first Conv, and
// the number of Convs tied into it.
func ChannelGroupName(cg *ChannelGroup) string {
	if len(cg.Sources) == 0 {
		return fmt.Sprintf("group%d", cg.ID)
	}
	if len(cg.Sources) == 1 {
		return cg.Sources[0].Node
	}
	var b strings.Builder
	b.WriteString(cg.Sources[0].Node)
	fmt.Fprintf(&b, "+%d", len(cg.Sources)-1)
	return b.String()
}

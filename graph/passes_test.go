package graph

import (
	"math"
	"slices"
	"testing"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// dynChain builds PyTorch's x.view(x.size(0), ...) pattern over an input of
// shape [batch, 4, 6]: Shape → Gather(0) → (extra) → Unsqueeze → Concat
// with tail → Reshape.
func dynChain(opset int64, mulBy int64, tail ...int64) *Model {
	inits := []*Initializer{i64init("tail", tail...)}
	nodes := []*Node{
		nd("shape", "Shape", s("x"), s("shp")),
		nd("idx", "Constant", nil, s("zero"), aTensor("value", &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{0}})),
		nd("gather", "Gather", s("shp", "zero"), s("b"), aInt("axis", 0)),
	}
	dim := "b"
	if mulBy != 0 {
		inits = append(inits, &Initializer{Name: "k", Value: &tensor.Tensor{DType: tensor.Int64, Shape: []int{}, I64: []int64{mulBy}}})
		nodes = append(nodes, nd("mul", "Mul", s("b", "k"), s("bk")))
		dim = "bk"
	}
	if opset >= 13 {
		inits = append(inits, i64init("ax0", 0))
		nodes = append(nodes, nd("unsq", "Unsqueeze", s(dim, "ax0"), s("u")))
	} else {
		nodes = append(nodes, nd("unsq", "Unsqueeze", s(dim), s("u"), aInts("axes", 0)))
	}
	nodes = append(nodes,
		nd("concat", "Concat", s("u", "tail"), s("target"), aInt("axis", 0)),
		nd("reshape", "Reshape", s("x", "target"), s("y")),
	)
	m := mdl(opset, []*ValueInfo{tvi("x", -1, 4, 6)}, []*ValueInfo{tvi("y")}, inits, nodes...)
	m.Graph.ValueInfo = []*ValueInfo{tvi("shp"), tvi("target")}
	return m
}

func TestFoldConstantsDynamicBatch(t *testing.T) {
	tests := []struct {
		name    string
		m       *Model
		want    []int64 // the Reshape's new constant shape
		batch5  []int   // output shape at batch 5
		rewrite int
	}{
		{"view(size(0), -1)", dynChain(13, 0, -1), []int64{0, -1}, []int{5, 24}, 2},
		{"view(size(0), 2, 12) opset 11", dynChain(11, 0, 2, 12), []int64{0, 2, 12}, []int{5, 2, 12}, 2},
		{"view(size(0)*4, 6)", dynChain(14, 4, 6), []int64{-1, 6}, []int{20, 6}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := FoldConstantsCount(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.rewrite {
				t.Errorf("FoldConstantsCount = %d, want %d (the Constant and the Reshape)", n, tt.rewrite)
			}
			if err := Validate(tt.m); err != nil {
				t.Fatalf("Validate after folding: %v", err)
			}
			g := tt.m.Graph
			if len(g.Nodes) != 1 || g.Nodes[0].OpType != "Reshape" {
				t.Fatalf("nodes after folding = %v, want only the Reshape", names(g.Nodes))
			}
			shape := g.Initializer(g.Nodes[0].Inputs[1])
			if shape == nil || !slices.Equal(shape.Value.I64, tt.want) {
				t.Fatalf("Reshape's shape = %v, want %v", shape, tt.want)
			}
			if len(g.Initializers) != 1 {
				t.Errorf("initializers after folding: %d, want 1 (unused ones removed)", len(g.Initializers))
			}
			if len(g.ValueInfo) != 0 {
				t.Errorf("value_info of removed values kept: %v", g.ValueInfo)
			}
			shapes, err := InferShapes(tt.m, map[string][]int{"x": {5, 4, 6}})
			if err != nil || !slices.Equal(shapes["y"], tt.batch5) {
				t.Errorf("InferShapes at batch 5: y = %v, %v; want %v", shapes["y"], err, tt.batch5)
			}
		})
	}
}

func TestFoldConstantsStatic(t *testing.T) {
	// With a fixed batch the whole chain, Shape included, is constant.
	m := dynChain(13, 0, -1)
	m.Graph.Inputs[0] = tvi("x", 2, 4, 6)
	n, err := FoldConstantsCount(m)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if n != 5 || len(g.Nodes) != 1 {
		t.Fatalf("FoldConstantsCount = %d leaving %v, want 5 folded and only the Reshape", n, names(g.Nodes))
	}
	if v := g.Initializer(g.Nodes[0].Inputs[1]).Value.I64; !slices.Equal(v, []int64{2, -1}) {
		t.Errorf("Reshape's shape = %v, want [2 -1]", v)
	}
	// Float arithmetic on constants folds too; a node producing a graph
	// output stays.
	m = mdl(13, []*ValueInfo{tvi("x", 3)}, []*ValueInfo{tvi("y"), tvi("c")},
		[]*Initializer{f32init("a", []int{3}, func(i int) float32 { return float32(i) + 0.5 })},
		nd("k", "Constant", nil, s("two"), aFloat("value_float", 2)),
		nd("m", "Mul", s("a", "two"), s("a2")),
		nd("sq", "Sqrt", s("a2"), s("c")),
		nd("add", "Add", s("x", "a2"), s("y")))
	m.Graph.Nodes[0].Attrs[0].Name = "value_float"
	if n, err := FoldConstantsCount(m); err != nil || n != 2 {
		t.Fatalf("FoldConstantsCount = %d, %v; want 2, nil", n, err)
	}
	if got := names(m.Graph.Nodes); !slices.Equal(got, []string{"sq", "add"}) {
		t.Errorf("nodes = %v, want [sq add]", got)
	}
	if v := m.Graph.Initializer("a2"); v == nil || !slices.Equal(v.Value.F32, []float32{1, 3, 5}) {
		t.Errorf("a2 = %v, want [1 3 5]", v)
	}
	if m.Graph.Initializer("a") != nil {
		t.Error("initializer a is unused after folding but was kept")
	}
}

func TestFoldConstantsLeavesUnknownAlone(t *testing.T) {
	// An op the package does not know, and a Reshape that depends on data,
	// must survive untouched.
	m := mdl(13, []*ValueInfo{tvi("x", -1, 4), {Name: "s", Type: &Type{IsTensor: true, Elem: tensor.Int64, HasShape: true, Shape: []Dim{{Value: 2, HasValue: true}}}}},
		[]*ValueInfo{tvi("y")}, nil,
		nd("w", "Weird", s("x"), s("h")),
		nd("r", "Reshape", s("h", "s"), s("y")))
	m.Graph.Nodes[0].Domain = "com.example"
	n, err := FoldConstantsCount(m)
	if err != nil || n != 0 || len(m.Graph.Nodes) != 2 {
		t.Errorf("FoldConstantsCount = %d, %v with %d nodes; want 0, nil, 2", n, err, len(m.Graph.Nodes))
	}
	bad := mdl(13, nil, []*ValueInfo{tvi("y")}, nil, nd("r", "Relu", s("q"), s("y")))
	if _, err := FoldConstantsCount(bad); err == nil {
		t.Error("FoldConstants on an invalid graph = nil error")
	}
}

func TestRemoveIdentity(t *testing.T) {
	x := []*ValueInfo{tvi("x", 1, 4)}
	tests := []struct {
		name      string
		m         *Model
		want      int
		wantNodes []string
		check     func(t *testing.T, g *Graph)
	}{
		{"identity in the middle", mdl(13, x, []*ValueInfo{tvi("y")}, nil,
			nd("r", "Relu", s("x"), s("r")), nd("id", "Identity", s("r"), s("i")), nd("s", "Sigmoid", s("i"), s("y"))),
			1, []string{"r", "s"}, func(t *testing.T, g *Graph) {
				if g.Nodes[1].Inputs[0] != "r" {
					t.Errorf("Sigmoid reads %q, want r", g.Nodes[1].Inputs[0])
				}
			}},
		{"identity to graph output keeps the name", mdl(13, x, []*ValueInfo{tvi("y")}, nil,
			nd("r", "Relu", s("x"), s("r")), nd("s", "Sigmoid", s("r"), s("q")), nd("id", "Identity", s("r"), s("y"))),
			1, []string{"r", "s"}, func(t *testing.T, g *Graph) {
				if g.Nodes[0].Outputs[0] != "y" || g.Nodes[1].Inputs[0] != "y" {
					t.Errorf("after renaming: Relu → %v, Sigmoid ← %v; want y and y", g.Nodes[0].Outputs, g.Nodes[1].Inputs)
				}
			}},
		{"chain of identities and dropouts", mdl(12, x, []*ValueInfo{tvi("y")}, []*Initializer{{Name: "ratio", Value: tensor.FromFloat32([]float32{0.5}, 1)}},
			nd("r", "Relu", s("x"), s("r")), nd("d", "Dropout", s("r", "ratio"), s("d")), nd("id", "Identity", s("d"), s("y"))),
			2, []string{"r"}, nil},
		{"input straight to output is kept", mdl(13, x, []*ValueInfo{tvi("y")}, nil, nd("id", "Identity", s("x"), s("y"))),
			0, []string{"id"}, nil},
		{"output to output is kept", mdl(13, x, []*ValueInfo{tvi("r"), tvi("y")}, nil,
			nd("r", "Relu", s("x"), s("r")), nd("id", "Identity", s("r"), s("y"))), 0, []string{"r", "id"}, nil},
		{"dropout with used mask is kept", mdl(13, x, []*ValueInfo{tvi("y"), tvi("mask")}, nil,
			nd("d", "Dropout", s("x"), s("y", "mask"))), 0, []string{"d"}, nil},
		{"dropout in training mode is kept", mdl(13, x, []*ValueInfo{tvi("y")},
			[]*Initializer{{Name: "t", Value: &tensor.Tensor{DType: tensor.Bool, Shape: []int{}, I64: []int64{1}}}},
			nd("r", "Relu", s("x"), s("r")), nd("d", "Dropout", s("r", "", "t"), s("y"))), 0, []string{"r", "d"}, nil},
		{"dropout with training_mode false goes", mdl(13, x, []*ValueInfo{tvi("y")},
			[]*Initializer{{Name: "t", Value: &tensor.Tensor{DType: tensor.Bool, Shape: []int{}, I64: []int64{0}}}},
			nd("r", "Relu", s("x"), s("r")), nd("d", "Dropout", s("r", "", "t"), s("y"))), 1, []string{"r"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := RemoveIdentity(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want || !slices.Equal(names(tt.m.Graph.Nodes), tt.wantNodes) {
				t.Errorf("RemoveIdentity = %d leaving %v, want %d leaving %v", n, names(tt.m.Graph.Nodes), tt.want, tt.wantNodes)
			}
			if err := Validate(tt.m); err != nil {
				t.Errorf("Validate after RemoveIdentity: %v", err)
			}
			if tt.check != nil {
				tt.check(t, tt.m.Graph)
			}
		})
	}
}

// convBN builds x → Conv(w[, b]) → BatchNormalization → Relu.
func convBN(withBias bool, bnAttrs ...*Attribute) *Model {
	inits := []*Initializer{
		f32init("w", []int{3, 2, 1, 2}, func(i int) float32 { return float32(i%5) - 1.5 }),
		f32init("gamma", []int{3}, func(i int) float32 { return 0.5 + float32(i) }),
		f32init("beta", []int{3}, func(i int) float32 { return 0.1 * float32(i) }),
		f32init("mean", []int{3}, func(i int) float32 { return -0.3 + 0.2*float32(i) }),
		f32init("var", []int{3}, func(i int) float32 { return 0.7 + float32(i) }),
	}
	conv := nd("conv", "Conv", s("x", "w"), s("c"))
	if withBias {
		inits = append(inits, f32init("b", []int{3}, func(i int) float32 { return 1 - float32(i) }))
		conv.Inputs = append(conv.Inputs, "b")
	}
	return mdl(14, []*ValueInfo{tvi("x", 1, 2, 4, 4)}, []*ValueInfo{tvi("y")}, inits,
		conv, nd("bn", "BatchNormalization", s("c", "gamma", "beta", "mean", "var"), s("z"), bnAttrs...),
		nd("relu", "Relu", s("z"), s("y")))
}

func TestFoldBatchNorm(t *testing.T) {
	for _, withBias := range []bool{true, false} {
		m := convBN(withBias, aFloat("epsilon", 1e-3))
		orig := convBN(withBias)
		n, err := FoldBatchNorm(m)
		if err != nil || n != 1 {
			t.Fatalf("FoldBatchNorm = %d, %v; want 1, nil", n, err)
		}
		if err := Validate(m); err != nil {
			t.Fatal(err)
		}
		g := m.Graph
		if got := names(g.Nodes); !slices.Equal(got, []string{"conv", "relu"}) {
			t.Fatalf("nodes = %v, want [conv relu]", got)
		}
		conv := g.Nodes[0]
		if conv.Outputs[0] != "z" {
			t.Errorf("Conv output = %q, want the BatchNormalization's z", conv.Outputs[0])
		}
		og := orig.Graph
		gamma, beta := og.Initializer("gamma").Value.F32, og.Initializer("beta").Value.F32
		mean, variance := og.Initializer("mean").Value.F32, og.Initializer("var").Value.F32
		w0 := og.Initializer("w").Value.F32
		w := g.Initializer(conv.Inputs[1]).Value.F32
		b := g.Initializer(conv.Inputs[2]).Value.F32
		for c := range 3 {
			sc := float64(gamma[c]) / math.Sqrt(float64(variance[c])+float64(float32(1e-3)))
			for j := range 4 {
				if want := float32(float64(w0[c*4+j]) * sc); w[c*4+j] != want {
					t.Errorf("bias=%v: w[%d] = %v, want %v", withBias, c*4+j, w[c*4+j], want)
				}
			}
			b0 := 0.0
			if withBias {
				b0 = float64(og.Initializer("b").Value.F32[c])
			}
			if want := float32((b0-float64(mean[c]))*sc + float64(beta[c])); b[c] != want {
				t.Errorf("bias=%v: b[%d] = %v, want %v", withBias, c, b[c], want)
			}
		}
		for _, gone := range []string{"gamma", "mean", "var"} {
			if g.Initializer(gone) != nil {
				t.Errorf("bias=%v: unused initializer %q kept", withBias, gone)
			}
		}
		if !withBias && conv.Inputs[2] != "beta" {
			t.Errorf("new bias named %q, want the reused β name beta", conv.Inputs[2])
		}
	}
}

func TestFoldBatchNormLeavesAlone(t *testing.T) {
	training := convBN(true, aInt("training_mode", 1))
	shared := convBN(true)
	shared.Graph.Nodes = append(shared.Graph.Nodes, nd("other", "Sigmoid", s("c"), s("o")))
	shared.Graph.Outputs = append(shared.Graph.Outputs, tvi("o"))
	dataWeight := convBN(false)
	dataWeight.Graph.Inputs = append(dataWeight.Graph.Inputs, tvi("w", 3, 2, 1, 2)) // overridable
	for name, m := range map[string]*Model{"training mode": training, "conv output shared": shared, "weight is an input": dataWeight} {
		n, err := FoldBatchNorm(m)
		if err != nil || n != 0 {
			t.Errorf("%s: FoldBatchNorm = %d, %v; want 0, nil", name, n, err)
		}
	}
}

func TestUnfoldBatchNormIsIdentity(t *testing.T) {
	eps := float32(unfoldEpsilon)
	v := 1 - eps
	// var + ε is exactly 1 in float32 and float64, so √(var+ε) is 1.
	if v+eps != 1 || float64(v)+float64(eps) != 1 || float64(v) != 1-unfoldEpsilon {
		t.Fatalf("1-ε = %v: var+ε = %v (float32), %v (float64); want exactly 1", v, v+eps, float64(v)+float64(eps))
	}
	m := convBN(true)
	g := m.Graph
	g.Nodes = []*Node{g.Nodes[0], nd("conv2", "Conv", s("c", "w2"), s("y"))}
	g.Initializers = append(g.Initializers, f32init("w2", []int{2, 3, 1, 1}, func(int) float32 { return 1 }))
	n, err := UnfoldBatchNorm(m)
	if err != nil || n != 2 {
		t.Fatalf("UnfoldBatchNorm = %d, %v; want 2, nil", n, err)
	}
	if err := Validate(m); err != nil {
		t.Fatal(err)
	}
	if got := names(g.Nodes); !slices.Equal(got, []string{"conv", "conv_bn", "conv2", "conv2_bn"}) {
		t.Errorf("nodes = %v, want [conv conv_bn conv2 conv2_bn]", got)
	}
	if g.Nodes[3].Outputs[0] != "y" || g.Nodes[2].Outputs[0] != "y_prebn" {
		t.Errorf("graph output y is produced by %v, want conv2_bn with conv2 → y_prebn", g.Nodes[3].Outputs)
	}
	shapes, err := InferShapes(m, nil)
	if err != nil || !slices.Equal(shapes["y"], []int{1, 2, 4, 3}) {
		t.Errorf("InferShapes after unfolding: y = %v, %v", shapes["y"], err)
	}
	// Folding back restores the weights bit for bit.
	if n, err := FoldBatchNorm(m); err != nil || n != 2 {
		t.Fatalf("FoldBatchNorm = %d, %v; want 2, nil", n, err)
	}
	orig := convBN(true)
	if !slices.Equal(g.Initializer("w").Value.F32, orig.Graph.Initializer("w").Value.F32) ||
		!slices.Equal(g.Initializer("b").Value.F32, orig.Graph.Initializer("b").Value.F32) {
		t.Error("unfold then fold changed the conv weights or bias")
	}
}

func TestPassesRespectSubgraphCaptures(t *testing.T) {
	body := &Graph{Name: "then", Nodes: []*Node{nd("inner", "Relu", s("i"), s("t"))}, Outputs: []*ValueInfo{tvi("t")}}
	cond := &Initializer{Name: "cond", Value: &tensor.Tensor{DType: tensor.Bool, Shape: []int{}, I64: []int64{1}}}
	m := mdl(13, []*ValueInfo{tvi("x", 1, 4)}, []*ValueInfo{tvi("y")}, []*Initializer{cond},
		nd("id", "Identity", s("x"), s("i")),
		nd("if", "If", s("cond"), s("y"), &Attribute{Name: "then_branch", Type: AttrGraph, G: body}, &Attribute{Name: "else_branch", Type: AttrGraph, G: body}))
	n, err := RemoveIdentity(m)
	if err != nil || n != 0 || len(m.Graph.Nodes) != 2 {
		t.Errorf("RemoveIdentity = %d, %v leaving %d nodes; want the Identity a sub-graph reads kept", n, err, len(m.Graph.Nodes))
	}
}

func TestRemoveUnused(t *testing.T) {
	m := mdl(13, []*ValueInfo{tvi("x", 1, 4)}, []*ValueInfo{tvi("y")},
		[]*Initializer{
			f32init("used", []int{4}, func(int) float32 { return 1 }),
			f32init("unused", []int{4}, func(int) float32 { return 1 }),
			f32init("deadonly", []int{4}, func(int) float32 { return 1 }),
		},
		nd("a", "Add", s("x", "used"), s("y")),
		nd("dead1", "Mul", s("x", "deadonly"), s("d1")),
		nd("dead2", "Relu", s("d1"), s("d2")),
		nd("dropout", "Dropout", s("x"), s("kept", "")),
	)
	m.Graph.Outputs = append(m.Graph.Outputs, tvi("kept"))
	n, err := RemoveUnused(m)
	if err != nil || n != 4 {
		t.Fatalf("RemoveUnused = %d, %v; want 4 (dead1, dead2, unused, deadonly), nil", n, err)
	}
	if got := names(m.Graph.Nodes); !slices.Equal(got, []string{"a", "dropout"}) {
		t.Errorf("nodes = %v, want [a dropout]", got)
	}
	if len(m.Graph.Initializers) != 1 || m.Graph.Initializers[0].Name != "used" {
		t.Errorf("initializers = %d, want only used", len(m.Graph.Initializers))
	}
}

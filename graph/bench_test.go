package graph

import (
	"fmt"
	"testing"
)

// chainModel is a plain CNN of depth convolutions (Conv → BN → Relu) with
// a dynamic-batch reshape at the end, to measure the analyses on a graph
// of realistic size.
func chainModel(depth int) *Model {
	var nodes []*Node
	var inits []*Initializer
	cur := "x"
	for i := range depth {
		w := fmt.Sprint("w", i)
		inits = append(inits, f32init(w, []int{8, 8, 3, 3}, func(j int) float32 { return float32(j%3) - 1 }))
		bn := [4]string{}
		for k, p := range []string{"g", "b", "m", "v"} {
			bn[k] = fmt.Sprint(p, i)
			inits = append(inits, f32init(bn[k], []int{8}, func(int) float32 { return 1 }))
		}
		c, b, r := fmt.Sprint("c", i), fmt.Sprint("bn", i), fmt.Sprint("r", i)
		nodes = append(nodes,
			nd(c, "Conv", s(cur, w), s(c), aInts("pads", 1, 1, 1, 1)),
			nd(b, "BatchNormalization", s(c, bn[0], bn[1], bn[2], bn[3]), s(b)),
			nd(r, "Relu", s(b), s(r)))
		cur = r
	}
	inits = append(inits, i64init("tail", -1))
	nodes = append(nodes,
		nd("shape", "Shape", s(cur), s("shp")),
		nd("zero", "Constant", nil, s("zero"), aInt("value_int", 0)),
		nd("gather", "Gather", s("shp", "zero"), s("bsz")),
		nd("unsq", "Unsqueeze", s("bsz"), s("u"), aInts("axes", 0)),
		nd("concat", "Concat", s("u", "tail"), s("tgt"), aInt("axis", 0)),
		nd("reshape", "Reshape", s(cur, "tgt"), s("y")))
	nodes[len(nodes)-5].Attrs[0].Name = "value_int"
	return mdl(11, []*ValueInfo{tvi("x", -1, 8, 16, 16)}, []*ValueInfo{tvi("y")}, inits, nodes...)
}

func BenchmarkInferShapes(b *testing.B) {
	for _, depth := range []int{10, 100} {
		m := chainModel(depth)
		b.Run(fmt.Sprint("depth", depth), func(b *testing.B) {
			for b.Loop() {
				if _, err := InferShapes(m, map[string][]int{"x": {4, 8, 16, 16}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPasses(b *testing.B) {
	for _, depth := range []int{10, 100} {
		b.Run(fmt.Sprint("depth", depth), func(b *testing.B) {
			for b.Loop() {
				m := chainModel(depth)
				if _, err := FoldConstantsCount(m); err != nil {
					b.Fatal(err)
				}
				if n, err := FoldBatchNorm(m); err != nil || n != depth {
					b.Fatalf("FoldBatchNorm = %d, %v", n, err)
				}
			}
		})
	}
}

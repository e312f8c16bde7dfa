package autodiff

import (
	"fmt"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("ConvTranspose", newConvTranspose)
}

// convTransposeKernel is ConvTranspose. Its output is the input gradient
// of the Conv with the same window, weights and groups that maps the
// output back to the input (inner: X of shape [N, M, out...] to
// [N, C, in...] with W as its [C, M/group, k...] weight). So the forward
// pass is inner's dX of dY := X, the input gradient is inner's forward pass
// over dY, and the weight gradient is inner's with the roles of its input
// (dY here) and output gradient (X here) taken by them: every kernel of
// the convolution (direct, depthwise, im2col + GEMM) serves it as is.
type convTransposeKernel struct {
	node    *graph.Node
	group   int
	inner   *convKernel
	hasBias bool
	n, m    int // batch, output channels
	plane   int // output pixels per channel
	// dxTmp holds dX while it is added into a gradient another step has
	// written already (allocated on the first such call).
	dxTmp []float32
}

func newConvTranspose(n *graph.Node, _ int64) (Kernel, error) {
	g, err := convGroup(n)
	if err != nil {
		return nil, err
	}
	return &convTransposeKernel{node: n, group: g}, nil
}

func (k *convTransposeKernel) Setup(in []Value) ([]Output, error) {
	x, w, err := convInputs("ConvTranspose", in)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) < 3 || len(x.Shape) > 5 || len(w.Shape) != len(x.Shape) {
		return nil, fmt.Errorf("X has shape %v and W %v: want equal ranks, 1-D to 3-D windows", x.Shape, w.Shape)
	}
	if x.Shape[1] != w.Shape[0] || w.Shape[0]%k.group != 0 {
		return nil, fmt.Errorf("X has %d channels, W %v (C, M/group, kernel...) with group %d wants %d, a multiple of the group", x.Shape[1], w.Shape, k.group, w.Shape[0])
	}
	if ks := k.node.AttrInts("kernel_shape", nil); len(ks) > 0 {
		for i, v := range ks {
			if i+2 >= len(w.Shape) || int(v) != w.Shape[i+2] {
				return nil, fmt.Errorf("kernel_shape %v does not match W %v", ks, w.Shape)
			}
		}
	}
	pads, out, err := graph.ConvTransposeGeometry(k.node, x.Shape[2:], w.Shape[2:])
	if err != nil {
		return nil, err
	}
	k.n, k.m = x.Shape[0], w.Shape[1]*k.group
	k.hasBias = len(in) > 2 && in[2].Present
	if k.hasBias && (in[2].DType != tensor.Float32 || len(in[2].Shape) != 1 || in[2].Shape[0] != k.m) {
		return nil, fmt.Errorf("B is %s %v, want float32 [%d]", in[2].DType, in[2].Shape, k.m)
	}
	yShape := append([]int{k.n, k.m}, out...)
	if err := checkOutputSize(yShape); err != nil {
		return nil, err
	}
	k.plane = tensor.Numel(out)
	ints := func(v []int) []int64 {
		r := make([]int64, len(v))
		for i, x := range v {
			r[i] = int64(x)
		}
		return r
	}
	nd := len(out)
	// A negative end pad (an output_shape past the window's reach) is
	// output the convolution ignores: trailing inputs no window covers.
	pads = slices.Clone(pads)
	for i := nd; i < 2*nd; i++ {
		pads[i] = max(pads[i], 0)
	}
	conv := &graph.Node{Name: k.node.Name, OpType: "Conv", Attrs: []*graph.Attribute{
		{Name: "group", Type: graph.AttrInt, I: int64(k.group)},
		{Name: "pads", Type: graph.AttrInts, Ints: ints(pads)},
		{Name: "strides", Type: graph.AttrInts, Ints: k.node.AttrInts("strides", ints(ones(nd)))},
		{Name: "dilations", Type: graph.AttrInts, Ints: k.node.AttrInts("dilations", ints(ones(nd)))},
	}}
	kern, err := newConv(conv, 0)
	if err != nil {
		return nil, err
	}
	k.inner = kern.(*convKernel)
	outs, err := k.inner.Setup([]Value{{DType: tensor.Float32, Shape: yShape, Present: true}, w})
	if err != nil {
		return nil, err
	}
	if got := outs[0].Shape; !slices.Equal(got, x.Shape) {
		// output_padding at or past the stride (allowed below the
		// dilation) makes the output one the convolution does not map back.
		return nil, fmt.Errorf("output %v is not one the transposed convolution maps back onto X %v (output_padding %v)", yShape, x.Shape, k.node.AttrInts("output_padding", nil))
	}
	return []Output{{DType: tensor.Float32, Shape: yShape}}, nil
}

func ones(n int) []int {
	v := make([]int, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// Workspace implements WorkspaceUser: the inner convolution's.
func (k *convTransposeKernel) Workspace(workers int) int { return k.inner.Workspace(workers) }

// assignsGrad: dX is the inner forward pass, which assigns its output.
func (k *convTransposeKernel) assignsGrad(i int) bool { return i == 0 }

func (k *convTransposeKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, w, y := in[0].F32, in[1].F32, out[0].F32
	if k.inner.depthwise {
		k.inner.depthwiseBackward(ctx, nil, w, x, y, nil, true)
	} else {
		k.inner.gemmBackward(ctx, nil, w, x, y, nil, true)
	}
	if k.hasBias {
		b := in[2].F32
		tensor.Parallel(ctx.Workers, k.n*k.m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				bv := b[i%k.m]
				for j := range y[i*k.plane : (i+1)*k.plane] {
					y[i*k.plane+j] += bv
				}
			}
		})
	}
	return nil
}

func (k *convTransposeKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	dy := gout[0].F32
	x, w := in[0].F32, in[1].F32
	if k.hasBias && len(gin) > 2 && gin[2] != nil {
		addBiasGrad(ctx.Workers, dy, gin[2].F32, k.n, k.m, k.plane)
	}
	if gin[1] != nil {
		// dW[c][m][tap] = Σ X[c] · dY[m] at the tap: the inner weight
		// gradient with dY as its input and X as its output gradient.
		if k.inner.depthwise {
			k.inner.depthwiseBackward(ctx, dy, w, x, nil, gin[1].F32, false)
		} else {
			k.inner.gemmBackward(ctx, dy, w, x, nil, gin[1].F32, false)
		}
	}
	if gin[0] == nil {
		return nil
	}
	dx := gin[0].F32
	if !ctx.fresh(0) {
		if len(k.dxTmp) < len(dx) {
			k.dxTmp = make([]float32, len(dx))
		}
		dx = k.dxTmp[:len(dx)]
	}
	if k.inner.depthwise {
		k.inner.depthwiseForward(ctx, dy, w, dx)
	} else {
		k.inner.gemmForward(ctx, dy, w, dx)
	}
	if !ctx.fresh(0) {
		g := gin[0].F32
		tensor.Parallel(ctx.Workers, len(g), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g[i] += dx[i]
			}
		})
	}
	return nil
}

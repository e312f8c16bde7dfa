package autodiff

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/tensor"
)

func init() {
	register("Conv", newConv)
}

// windowSpec is the sliding-window attributes shared by Conv, MaxPool and
// AveragePool: kernel_shape, strides, pads, dilations, auto_pad and (for
// pools) ceil_mode. The engine supports 1-D and 2-D windows; a 1-D window
// runs as a 2-D one of height 1.
type windowSpec struct {
	kernel    []int // nil: take it from the weight (Conv)
	strides   []int
	dilations []int
	pads      []int // begin..., end...; nil means zeros
	autoPad   string
	ceil      bool
}

func readWindowSpec(n *graph.Node, withCeil bool) (*windowSpec, error) {
	ints := func(name string) ([]int, error) {
		a := n.Attr(name)
		if a == nil {
			return nil, nil
		}
		out := make([]int, len(a.Ints))
		for i, v := range a.Ints {
			if v < 0 || v > math.MaxInt32 {
				return nil, fmt.Errorf("%s has value %d out of range", name, v)
			}
			out[i] = int(v)
		}
		return out, nil
	}
	s := &windowSpec{}
	var err error
	if s.kernel, err = ints("kernel_shape"); err != nil {
		return nil, err
	}
	if s.strides, err = ints("strides"); err != nil {
		return nil, err
	}
	if s.dilations, err = ints("dilations"); err != nil {
		return nil, err
	}
	if s.pads, err = ints("pads"); err != nil {
		return nil, err
	}
	s.autoPad = n.AttrString("auto_pad", "NOTSET")
	switch s.autoPad {
	case "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		return nil, fmt.Errorf("auto_pad %q is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", s.autoPad)
	}
	if s.autoPad != "NOTSET" && s.pads != nil {
		for _, p := range s.pads {
			if p != 0 {
				return nil, fmt.Errorf("auto_pad %s and explicit pads %v are both set; the model must use one of them", s.autoPad, s.pads)
			}
		}
	}
	if withCeil {
		switch c := n.AttrInt("ceil_mode", 0); c {
		case 0:
		case 1:
			s.ceil = true
		default:
			return nil, fmt.Errorf("ceil_mode is %d, want 0 or 1", c)
		}
	}
	for _, v := range s.strides {
		if v == 0 {
			return nil, errors.New("strides contain 0")
		}
	}
	for _, v := range s.dilations {
		if v == 0 {
			return nil, errors.New("dilations contain 0")
		}
	}
	return s, nil
}

// resolvedWindow is a window spec applied to an input: the geometry and
// the padding after each axis (which AveragePool's divisor needs).
type resolvedWindow struct {
	tensor.Window
	PadBack, PadB, PadR int
}

// resolve applies s to the spatial dimensions in (1 to 3 of them) with the
// given kernel size, and computes the output size.
func (s *windowSpec) resolve(in, kernel []int) (resolvedWindow, []int, error) {
	r := len(in)
	if r < 1 || r > 3 {
		return resolvedWindow{}, nil, fmt.Errorf("%d spatial dimensions: only 1-D, 2-D and 3-D windows are supported", r)
	}
	get := func(v []int, name string, def int) ([]int, error) {
		if v == nil {
			out := make([]int, r)
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(v) != r {
			return nil, fmt.Errorf("%s has %d values, want %d (one per spatial axis)", name, len(v), r)
		}
		return v, nil
	}
	if len(kernel) != r {
		return resolvedWindow{}, nil, fmt.Errorf("kernel_shape has %d values, want %d (one per spatial axis)", len(kernel), r)
	}
	for _, k := range kernel {
		if k <= 0 {
			return resolvedWindow{}, nil, fmt.Errorf("kernel_shape %v has a non-positive size", kernel)
		}
	}
	strides, err := get(s.strides, "strides", 1)
	if err != nil {
		return resolvedWindow{}, nil, err
	}
	dil, err := get(s.dilations, "dilations", 1)
	if err != nil {
		return resolvedWindow{}, nil, err
	}
	pads := s.pads
	if pads == nil {
		pads = make([]int, 2*r)
	} else if len(pads) != 2*r {
		return resolvedWindow{}, nil, fmt.Errorf("pads has %d values, want %d (begin and end per spatial axis)", len(pads), 2*r)
	}
	pb := make([]int, r)
	pe := make([]int, r)
	out := make([]int, r)
	for i := range r {
		dk := (kernel[i]-1)*dil[i] + 1
		switch s.autoPad {
		case "VALID":
			out[i] = floorDiv(in[i]-dk, strides[i]) + 1
		case "SAME_UPPER", "SAME_LOWER":
			out[i] = (in[i] + strides[i] - 1) / strides[i]
			total := max(0, (out[i]-1)*strides[i]+dk-in[i])
			if s.autoPad == "SAME_UPPER" {
				pb[i] = total / 2
			} else {
				pb[i] = total - total/2
			}
			pe[i] = total - pb[i]
		default:
			pb[i], pe[i] = pads[i], pads[i+r]
			span := in[i] + pb[i] + pe[i] - dk
			if s.ceil {
				out[i] = ceilDiv(span, strides[i]) + 1
				// A last window that would start in the end padding is
				// dropped (the rule of PyTorch and onnxruntime).
				if out[i] > 1 && (out[i]-1)*strides[i] >= in[i]+pb[i] {
					out[i]--
				}
			} else {
				out[i] = floorDiv(span, strides[i]) + 1
			}
		}
		if out[i] <= 0 {
			return resolvedWindow{}, nil, fmt.Errorf("spatial input size %v with kernel %v, dilations %v and pads %v gives an empty output", in, kernel, dil, pads)
		}
	}
	// Left-pad the per-axis values to 3 axes (depth, height, width).
	ax := func(v []int, def int) [3]int {
		a := [3]int{def, def, def}
		copy(a[3-r:], v)
		return a
	}
	inA, kA, sA, dA, pbA, peA, oA := ax(in, 1), ax(kernel, 1), ax(strides, 1), ax(dil, 1), ax(pb, 0), ax(pe, 0), ax(out, 1)
	w := resolvedWindow{
		Window: tensor.Window{
			D: inA[0], H: inA[1], W: inA[2],
			KD: kA[0], KH: kA[1], KW: kA[2],
			SD: sA[0], SH: sA[1], SW: sA[2],
			DD: dA[0], DH: dA[1], DW: dA[2],
			PadF: pbA[0], PadT: pbA[1], PadL: pbA[2],
			OD: oA[0], OH: oA[1], OW: oA[2],
		},
		PadBack: peA[0], PadB: peA[1], PadR: peA[2],
	}
	return w, out, nil
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

// convTargetCols is the number of GEMM columns (batch × output pixels) the
// convolution groups into one chunk: a few samples at once when the output
// plane is small, so that the GEMM stays efficient. Chunks depend only on
// shapes, never on the worker count, which keeps results bit-identical for
// any number of workers.
const convTargetCols = 256

// convReduceGroups bounds the partial weight gradients: chunks are split
// into at most this many contiguous groups, each accumulating its own
// partial dW, summed in group order.
const convReduceGroups = 4

// convKernel is Conv (ONNX opset 1-22 semantics; 1-D and 2-D): im2col +
// GEMM for dense and grouped convolutions, a direct kernel for depthwise
// ones.
type convKernel struct {
	spec  *windowSpec
	group int

	win       resolvedWindow
	n, c, m   int // batch, input channels, output channels
	cg, mg    int // per group
	kg        int // cg*KH*KW
	inPlane   int // H*W
	outPlane  int // OH*OW
	hasBias   bool
	depthwise bool
	direct1x1 bool // 1×1, stride 1, no padding: the image is its own im2col
	// transposed: stride 1 and pads < dilated kernel size, so that dX is
	// the convolution of dY (padded by dk-1-pad) with the flipped,
	// transposed weights: im2col of dY and one GEMM that adds into dX,
	// instead of a GEMM and col2im's scattered adds.
	transposed bool
	tWin       tensor.Window
	// relu: the Relu that alone read this convolution's output is fused
	// into it (Compile, fuseRelu): the output holds the Relu's, and the
	// backward masks the gradient it receives in place first.
	relu bool
	// cols, tCols: the im2col plans of the window and of the transposed
	// window (tensor.Im2colPlan: a gather table for small planes).
	cols, tCols *tensor.Im2colPlan
	kk          int // KD*KH*KW
	chunk       int // samples per chunk
	nChunks     int
	nGroups     int // reduction groups for dW
	// dc runs the forward pass without im2col (stride-1 2-D convolutions
	// with one group, output rows 8 or a multiple of 16 wide and at most
	// directMaxTaps taps, on CPUs with the kernels), and dW too when
	// dwDirect; dcT runs dX on the transposed path (a stride-1 convolution
	// of dY) under the same rule. nil: im2col + GEMM.
	dc, dcT  *tensor.DirectConv
	dwDirect bool
	// dw3, dw3T: the 3×3 stride-1 depthwise kernel for the forward pass
	// and, when the transposed path applies, for dX.
	dw3, dw3T *tensor.Depthwise3x3
	// dwSums: per output channel, its 9 taps' weight gradient summed over
	// the batch (3×3 depthwise), before it is added into dW.
	dwSums []float32
	// dwFlip: the flipped filters of the many-planes dX (dwPlanes,
	// dwStride2).
	dwFlip []float32
	// dwS2: for a 3×3, pad-1, stride-2 depthwise convolution of 8×8 or
	// 4×4 planes with one filter per channel, the stride-1 many-planes
	// kernel over the same planes (dwStride2).
	dwS2 *tensor.Depthwise3x3
	// runs: per tap (row-major), its phaseRun on the phase-split planes
	// (depthwise convolutions strided along the rows).
	runs []tapRun
}

// tapRun is one tap's phaseRun: the output rows and columns it reaches and
// where its inputs start in the phase-split plane, with the row stride.
type tapRun struct {
	ohLo, ohHi, owLo, owHi, base, ld int
	ok                               bool
}

// dwPlanes reports whether the depthwise convolution runs many planes
// per call (tensor.Depthwise3x3.ForwardPlanes, WeightGradPlanes): a 3×3,
// pad-1, stride-1 window over 4×4 or 8×8 planes with one filter per
// channel (Setup then made dwFlip).
func (k *convKernel) dwPlanes() bool {
	return dwPlanesOn && k.dw3 != nil && k.dwFlip != nil
}

// dwPlanesOn turns the many-planes calls off for the tests and benchmarks
// that compare them with the plane-by-plane path.
var dwPlanesOn = true

// dwStride2 reports whether the stride-2 depthwise convolution runs
// through the stride-1 many-planes kernel (dwS2): its output pixel (r, q)
// is the stride-1 output at (2r, 2q), so the forward pass computes the
// stride-1 planes and keeps their even pixels, and the backward pass
// spreads dY onto the even pixels of zero planes and runs the stride-1
// dX and dW kernels on them. That is four times the multiply-adds, but at
// 8×8 and 4×4 the phase-split path's calls and copies per plane cost
// several times more than the arithmetic (docs/performance.md item 23).
func (k *convKernel) dwStride2() bool {
	return dwStride2On && k.dwS2 != nil
}

// dwStride2On turns the dwS2 path off for the tests and benchmarks that
// compare it with the phase-split path.
var dwStride2On = true

// directMaxTaps: the direct convolution is used up to this many taps per
// output pixel (C·KH·KW). BenchmarkDirectConv in package tensor, one core,
// 3×3 stride 1, direct vs im2col + OpenBLAS GEMM in GFLOP/s, forward and
// weight gradient: 16 channels (144 taps) 51 vs 31 and 43 vs 28; 32
// channels (288) 43 vs 35 and 36 vs 35; 64 channels (576) 53 vs 54 and 51
// vs 50; 128 channels (1152) 50 vs 54 and 37 vs 60; 256 channels 52 vs 58
// and 38 vs 58.
const directMaxTaps = 576

// directDWMinPixels: the direct weight gradient reduces over one image's
// output pixels per call, and below this many its per-call overhead
// dominates (64 channels at 8×8: 16 vs 32 GFLOP/s for im2col + GEMM, while
// the direct forward pass was 48 vs 41).
const directDWMinPixels = 256

func newConv(n *graph.Node, _ int64) (Kernel, error) {
	spec, err := readWindowSpec(n, false)
	if err != nil {
		return nil, err
	}
	g, err := convGroup(n)
	if err != nil {
		return nil, err
	}
	return &convKernel{spec: spec, group: g}, nil
}

// convGroup reads the group attribute of a Conv or ConvTranspose.
func convGroup(n *graph.Node) (int, error) {
	g := n.AttrInt("group", 1)
	if g < 1 || g > math.MaxInt32 {
		return 0, fmt.Errorf("group is %d, want >= 1", g)
	}
	return int(g), nil
}

// convInputs checks that a Conv or ConvTranspose has float32 inputs X and
// W, and returns them.
func convInputs(op string, in []Value) (x, w Value, err error) {
	if len(in) < 2 || !in[0].Present || !in[1].Present {
		return x, w, fmt.Errorf("%s needs inputs X and W", op)
	}
	x, w = in[0], in[1]
	if x.DType != tensor.Float32 || w.DType != tensor.Float32 {
		return x, w, fmt.Errorf("X is %s and W is %s; the engine runs %s in float32 only", x.DType, w.DType, op)
	}
	return x, w, nil
}

func (k *convKernel) Setup(in []Value) ([]Output, error) {
	x, w, err := convInputs("Conv", in)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) < 3 || len(x.Shape) > 5 {
		return nil, fmt.Errorf("X has shape %v: only 1-D, 2-D and 3-D convolutions (rank 3 to 5 input) are supported", x.Shape)
	}
	if len(w.Shape) != len(x.Shape) {
		return nil, fmt.Errorf("W has shape %v, X has shape %v: ranks differ", w.Shape, x.Shape)
	}
	k.n, k.c, k.m = x.Shape[0], x.Shape[1], w.Shape[0]
	if k.c%k.group != 0 || k.m%k.group != 0 {
		return nil, fmt.Errorf("group %d does not divide input channels %d and output channels %d", k.group, k.c, k.m)
	}
	k.cg, k.mg = k.c/k.group, k.m/k.group
	if w.Shape[1] != k.cg {
		return nil, fmt.Errorf("W has shape %v: %d input channels per group, X has %d channels in %d groups (%d each)", w.Shape, w.Shape[1], k.c, k.group, k.cg)
	}
	kshape := w.Shape[2:]
	if k.spec.kernel != nil && !slices.Equal(k.spec.kernel, kshape) {
		return nil, fmt.Errorf("kernel_shape %v does not match W's spatial shape %v", k.spec.kernel, kshape)
	}
	if len(in) > 2 && in[2].Present {
		if in[2].DType != tensor.Float32 || len(in[2].Shape) != 1 || in[2].Shape[0] != k.m {
			return nil, fmt.Errorf("B is %s%v, want float32[%d]", in[2].DType, in[2].Shape, k.m)
		}
		k.hasBias = true
	}
	win, out, err := k.spec.resolve(x.Shape[2:], kshape)
	if err != nil {
		return nil, err
	}
	k.win = win
	k.inPlane = win.InSize()
	k.outPlane = win.OutSize()
	k.kg = k.cg * win.KD * win.KH * win.KW
	k.depthwise = k.group > 1 && k.cg == 1 && win.D == 1 && win.KD == 1
	k.direct1x1 = win.KD == 1 && win.KH == 1 && win.KW == 1 && win.SD == 1 && win.SH == 1 && win.SW == 1 &&
		win.PadF == 0 && win.PadT == 0 && win.PadL == 0 && win.OD == win.D && win.OH == win.H && win.OW == win.W
	k.kk = win.KD * win.KH * win.KW
	if !k.direct1x1 && win.SD == 1 && win.SH == 1 && win.SW == 1 {
		dkD, dkH, dkW := (win.KD-1)*win.DD+1, (win.KH-1)*win.DH+1, (win.KW-1)*win.DW+1
		if win.PadF < dkD && win.PadBack < dkD && win.PadT < dkH && win.PadB < dkH && win.PadL < dkW && win.PadR < dkW {
			k.transposed = true
			k.tWin = tensor.Window{
				D: win.OD, H: win.OH, W: win.OW,
				KD: win.KD, KH: win.KH, KW: win.KW,
				SD: 1, SH: 1, SW: 1,
				DD: win.DD, DH: win.DH, DW: win.DW,
				PadF: dkD - 1 - win.PadF, PadT: dkH - 1 - win.PadT, PadL: dkW - 1 - win.PadL,
				OD: win.D, OH: win.H, OW: win.W,
			}
		}
	}
	if k.depthwise {
		k.dw3, _ = tensor.NewDepthwise3x3(&win.Window)
		if k.dw3 != nil && k.transposed {
			k.dw3T, _ = tensor.NewDepthwise3x3(&k.tWin)
		}
		if k.dw3 != nil {
			k.dwSums = make([]float32, k.m*9)
		}
		if k.dw3 != nil && k.mg == 1 && k.dw3.PlaneSide() != 0 {
			k.dwFlip = make([]float32, k.m*9)
		}
		if g := &win.Window; k.mg == 1 && g.D == 1 && g.KH == 3 && g.KW == 3 && g.SH == 2 && g.SW == 2 &&
			max(g.DH, 1) == 1 && max(g.DW, 1) == 1 && g.PadT == 1 && g.PadL == 1 && (g.H == 4 || g.H == 8) &&
			g.W == g.H && g.OH == g.H/2 && g.OW == g.W/2 {
			// The last output row and column read input rows and columns
			// up to H-1 only, so the bottom and right pads do not matter.
			s1 := tensor.Window{H: g.H, W: g.W, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, OH: g.H, OW: g.W}
			if d, ok := tensor.NewDepthwise3x3(&s1); ok && d.PlaneSide() != 0 {
				k.dwS2 = d
				k.dwFlip = make([]float32, k.m*9)
				k.dwSums = make([]float32, k.m*9)
			}
		}
	}
	if k.phaseSize() > 0 {
		k.runs = make([]tapRun, win.KH*win.KW)
		for ki := range win.KH {
			for kj := range win.KW {
				r := &k.runs[ki*win.KW+kj]
				r.ohLo, r.ohHi, r.owLo, r.owHi, r.base, r.ld, r.ok = phaseRun(&win.Window, k.phaseWidth(), ki, kj)
			}
		}
	}
	if k.group == 1 && !k.depthwise && !k.direct1x1 {
		if dc, ok := tensor.NewDirectConv(&win.Window, k.c); ok && dc.K() <= directMaxTaps {
			k.dc = dc
			k.dwDirect = k.outPlane >= directDWMinPixels
		}
		if k.transposed {
			if dc, ok := tensor.NewDirectConv(&k.tWin, k.m); ok && dc.K() <= directMaxTaps {
				k.dcT = dc
			}
		}
	}
	if !k.depthwise {
		k.cols = tensor.NewIm2colPlan(&win.Window)
		if k.transposed {
			k.tCols = tensor.NewIm2colPlan(&k.tWin)
		}
	}
	k.chunk = max(1, min(k.n, (convTargetCols+k.outPlane-1)/k.outPlane))
	k.nChunks = (k.n + k.chunk - 1) / k.chunk
	k.nGroups = min(k.nChunks, convReduceGroups)
	return []Output{{DType: tensor.Float32, Shape: append([]int{k.n, k.m}, out...)}}, nil
}

// convSpace is the layout of a worker's workspace: col (kg×cols), dcol
// (kg×cols for col2im, or mg·kk × the chunk's input pixels for the im2col
// of dY on the transposed path), tmp (m×cols: output or dY chunk) and tmp2 (c×cols:
// dX chunk on the transposed path).
func (k *convKernel) convSpace() (col, dcol, tmp, tmp2 int) {
	cols := k.chunk * k.outPlane
	col, dcol, tmp = k.kg*cols, k.kg*cols, k.m*cols
	if k.transposed {
		dcol = max(dcol, k.mg*k.kk*k.chunk*k.inPlane)
		if k.chunk > 1 {
			tmp2 = k.c * k.chunk * k.inPlane
		}
	}
	return col, dcol, tmp, tmp2
}

func (k *convKernel) workerSpace() int {
	a, b, c, d := k.convSpace()
	return a + b + c + d
}

// Workspace implements WorkspaceUser: per-worker space, the partial
// weight gradients of the reduction groups, and the transposed weights.
func (k *convKernel) Workspace(workers int) int {
	if k.depthwise {
		return workers * k.depthwiseSpace()
	}
	pad, packed := k.directSpace()
	return workers*k.workerSpace() + (k.nGroups+1)*k.m*k.kg + workers*pad + packed
}

// directSpace is the space of the direct convolutions: per worker, the
// padded image and padded dY; shared, the packed weights (W for the
// forward pass, the transposed weights for dX).
func (k *convKernel) directSpace() (perWorker, packed int) {
	if k.dc != nil {
		perWorker += k.dc.PadSize()
		packed = k.dc.PackedSize(k.m)
	}
	if k.dcT != nil {
		perWorker += k.dcT.PadSize()
		packed = max(packed, k.dcT.PackedSize(k.c))
	}
	return perWorker, packed
}

// depthwiseSpace is a worker's space for the 3×3 depthwise kernel: a
// padded plane of X (or dY) and 9 flipped weights.
func (k *convKernel) depthwiseSpace() int {
	if k.dwS2 != nil {
		// A sample's stride-1 planes (Y, or dY spread onto them).
		return max(k.phaseSize(), k.m*k.inPlane)
	}
	if k.dw3 == nil {
		return k.phaseSize()
	}
	n := k.dw3.PadSize()
	if k.dw3T != nil {
		n = max(n, k.dw3T.PadSize())
	}
	return n + 9
}

// Depthwise convolutions strided along the rows (other than the 3×3
// kernel's stride 1) run on phase-split planes: each row's columns
// regrouped by stride phase (columns r, r+SW, r+2·SW, ... for phase r), so
// that a tap's inputs for consecutive outputs are consecutive floats and
// tensor.AxpyRows/DotRows run them as vector rows instead of a strided Go
// loop. phaseWidth is the floats per phase, phaseSize a split plane's
// length (0 when the rows are not strided).
func (k *convKernel) phaseWidth() int {
	g := &k.win.Window
	return (g.W + g.SW - 1) / g.SW
}

func (k *convKernel) phaseSize() int {
	g := &k.win.Window
	if !k.depthwise || g.SW == 1 {
		return 0
	}
	return g.H * g.SW * k.phaseWidth()
}

// splitPhases copies plane src into dst split by stride phase (the floats
// past a row's end in its last phases are set to 0).
func splitPhases(g *tensor.Window, wq int, src, dst []float32) {
	if g.SW == 2 {
		// The common stride: each row's W/2 column pairs deinterleaved by
		// one call for the plane (phase 0 at the row's start, phase 1 wq
		// floats on), then an odd width's last column.
		h := g.W / 2
		tensor.SplitPairsRows(g.H, h, src, g.W, dst, dst[wq:], 2*wq)
		if g.W%2 == 1 {
			for ih := range g.H {
				dst[ih*2*wq+h], dst[ih*2*wq+wq+h] = src[ih*g.W+g.W-1], 0
			}
		}
		return
	}
	for ih := range g.H {
		row := src[ih*g.W : (ih+1)*g.W]
		out := dst[ih*g.SW*wq : (ih+1)*g.SW*wq]
		for r := range g.SW {
			ph := out[r*wq : (r+1)*wq]
			q := 0
			for iw := r; iw < g.W; iw += g.SW {
				ph[q] = row[iw]
				q++
			}
			clear(ph[q:])
		}
	}
}

// mergePhases writes the phase-split plane src back into plane dst (adds
// with add).
func mergePhases(g *tensor.Window, wq int, src, dst []float32, add bool) {
	if g.SW == 2 {
		h := g.W / 2
		tensor.MergePairsRows(g.H, h, src, src[wq:], 2*wq, dst, g.W, add)
		if g.W%2 == 1 {
			for ih := range g.H {
				d, v := &dst[ih*g.W+g.W-1], src[ih*2*wq+h]
				if add {
					*d += v
				} else {
					*d = v
				}
			}
		}
		return
	}
	for ih := range g.H {
		row := dst[ih*g.W : (ih+1)*g.W]
		in := src[ih*g.SW*wq : (ih+1)*g.SW*wq]
		for r := range g.SW {
			ph := in[r*wq : (r+1)*wq]
			q := 0
			for iw := r; iw < g.W; iw += g.SW {
				if add {
					row[iw] += ph[q]
				} else {
					row[iw] = ph[q]
				}
				q++
			}
		}
	}
}

// phaseRun locates tap (ki, kj)'s inputs in a phase-split plane: the
// outputs [ohLo, ohHi) × [owLo, owHi) whose tap falls inside the image,
// the split-plane offset of the first one's input, and the stride between
// output rows' inputs. ok is false when no output's tap is inside.
func phaseRun(g *tensor.Window, wq, ki, kj int) (ohLo, ohHi, owLo, owHi, base, ld int, ok bool) {
	ohLo, ohHi = tensor.ValidRange(g.OH, g.SH, ki*g.DH-g.PadT, g.H)
	owLo, owHi = tensor.ValidRange(g.OW, g.SW, kj*g.DW-g.PadL, g.W)
	if ohLo >= ohHi || owLo >= owHi {
		return 0, 0, 0, 0, 0, 0, false
	}
	off := kj*g.DW - g.PadL // input column of output column 0
	r := ((off % g.SW) + g.SW) % g.SW
	q := owLo + (off-r)/g.SW
	ih := ohLo*g.SH - g.PadT + ki*g.DH
	return ohLo, ohHi, owLo, owHi, ih*g.SW*wq + r*wq + q, g.SH * g.SW * wq, true
}

// directScratch splits the direct convolutions' part of the scratch: the
// padded buffers of worker wk (image, dY) and the packed weights.
func (k *convKernel) directScratch(scratch []float32, workers, wk int) (xp, dyp, packed []float32) {
	pad, np := k.directSpace()
	base := workers*k.workerSpace() + (k.nGroups+1)*k.m*k.kg
	ws := scratch[base+wk*pad : base+(wk+1)*pad]
	if k.dc != nil {
		xp, ws = ws[:k.dc.PadSize()], ws[k.dc.PadSize():]
	}
	if k.dcT != nil {
		dyp = ws[:k.dcT.PadSize()]
	}
	return xp, dyp, scratch[base+workers*pad:][:np]
}

func (k *convKernel) Forward(ctx *RunContext, in, out []*tensor.Tensor) error {
	x, w, y := in[0].F32, in[1].F32, out[0].F32
	if k.depthwise {
		k.depthwiseForward(ctx, x, w, y)
	} else {
		k.gemmForward(ctx, x, w, y)
	}
	if k.hasBias || k.relu {
		inf := float32(math.Inf(1))
		tensor.Parallel(ctx.Workers, k.n*k.m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := y[i*k.outPlane : (i+1)*k.outPlane]
				if k.hasBias {
					bv := in[2].F32[i%k.m]
					for j := range row {
						row[j] += bv
					}
				}
				if k.relu {
					tensor.Clip(row, 0, inf, row) // the fused Relu, in place
				}
			}
		})
	}
	return nil
}

func (k *convKernel) chunkRange(q int) (s0, s1 int) {
	s0 = q * k.chunk
	return s0, min(k.n, s0+k.chunk)
}

func (k *convKernel) gemmForward(ctx *RunContext, x, w, y []float32) {
	workers := max(1, ctx.Workers)
	per := k.workerSpace()
	scratch := ctx.scratch(k.Workspace(workers))
	if k.dc != nil {
		_, _, wp := k.directScratch(scratch, workers, 0)
		k.dc.PackWeights(k.m, w, wp)
		tensor.ForEach(workers, k.n, func(wk, s int) {
			xp, _, _ := k.directScratch(scratch, workers, wk)
			k.dc.Pad(x[s*k.c*k.inPlane:], xp)
			k.dc.Forward(xp, wp, k.m, y[s*k.m*k.outPlane:], false)
		})
		return
	}
	nCol, nDcol, _, _ := k.convSpace()
	tensor.ForEach(workers, k.nChunks, func(wk, q int) {
		ws := scratch[wk*per : (wk+1)*per]
		col := ws[:nCol]
		tmp := ws[nCol+nDcol:]
		s0, s1 := k.chunkRange(q)
		nc := (s1 - s0) * k.outPlane
		for g := range k.group {
			wg := w[g*k.mg*k.kg:]
			var bmat []float32
			ldb := nc
			if k.direct1x1 && s1-s0 == 1 {
				bmat, ldb = x[(s0*k.c+g*k.cg)*k.inPlane:], k.inPlane
			} else {
				for s := s0; s < s1; s++ {
					k.cols.Im2col(k.cg, x[(s*k.c+g*k.cg)*k.inPlane:], col, nc, (s-s0)*k.outPlane)
				}
				bmat = col
			}
			if s1-s0 == 1 {
				tensor.Sgemm(false, false, k.mg, nc, k.kg, 1, wg, k.kg, bmat, ldb, 0, y[(s0*k.m+g*k.mg)*k.outPlane:], k.outPlane)
				continue
			}
			tensor.Sgemm(false, false, k.mg, nc, k.kg, 1, wg, k.kg, bmat, ldb, 0, tmp, nc)
			for s := s0; s < s1; s++ {
				for m := range k.mg {
					copy(y[(s*k.m+g*k.mg+m)*k.outPlane:][:k.outPlane], tmp[m*nc+(s-s0)*k.outPlane:])
				}
			}
		}
	})
}

// assignsGrad: Conv assigns dX when it is fresh (GEMMs with beta 0, or
// planes cleared just before col2im adds into them).
func (k *convKernel) assignsGrad(i int) bool { return i == 0 }

func (k *convKernel) Backward(ctx *RunContext, in, out, gout, gin []*tensor.Tensor) error {
	if gout[0] == nil {
		return nil
	}
	dy := gout[0].F32
	if k.relu {
		// The fused Relu's backward, in place: dY = dZ where Z is not +0.
		// dZ is complete here and read by no later step.
		z := out[0].F32
		tensor.Parallel(ctx.Workers, len(dy), func(lo, hi int) {
			tensor.ReluGrad(z[lo:hi], dy[lo:hi], dy[lo:hi], false)
		})
	}
	if k.hasBias && len(gin) > 2 && gin[2] != nil {
		addBiasGrad(ctx.Workers, dy, gin[2].F32, k.n, k.m, k.outPlane)
	}
	var dx, dw []float32
	if gin[0] != nil {
		dx = gin[0].F32
	}
	if gin[1] != nil {
		dw = gin[1].F32
	}
	if dx == nil && dw == nil {
		return nil
	}
	fresh := dx != nil && ctx.fresh(0)
	if k.depthwise {
		k.depthwiseBackward(ctx, in[0].F32, in[1].F32, dy, dx, dw, fresh)
		return nil
	}
	k.gemmBackward(ctx, in[0].F32, in[1].F32, dy, dx, dw, fresh)
	return nil
}

// addBiasGrad adds to db[m] the sum of channel m of dy (n samples of m
// channels of plane floats), summed in float64 in sample order.
func addBiasGrad(workers int, dy, db []float32, n, m, plane int) {
	tensor.Parallel(workers, m, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var s float64
			for i := range n {
				for _, v := range dy[(i*m+c)*plane:][:plane] {
					s += float64(v)
				}
			}
			db[c] += float32(s)
		}
	})
}

// gemmBackward adds dW into dw and dX into dx, or with fresh assigns dX
// (every element of dx is written).
func (k *convKernel) gemmBackward(ctx *RunContext, x, w, dy, dx, dw []float32, fresh bool) {
	var dxBeta float32 = 1
	if fresh {
		dxBeta = 0
	}
	workers := max(1, ctx.Workers)
	per := k.workerSpace()
	scratch := ctx.scratch(k.Workspace(workers))
	wsz := k.m * k.kg // = group*mg*kg, the size of W
	partials := scratch[workers*per : workers*per+k.nGroups*wsz]
	wt := scratch[workers*per+k.nGroups*wsz:][:wsz]
	mkk := k.mg * k.kk
	if dx != nil && k.transposed {
		// wt[g][c][(m·KD+a')·KH+i')·KW+j'] = W[g·mg+m][c][KD-1-a'][KH-1-i'][KW-1-j']
		tensor.Parallel(workers, k.group*k.cg, func(lo, hi int) {
			for gc := lo; gc < hi; gc++ {
				g, c := gc/k.cg, gc%k.cg
				dst := wt[gc*mkk : (gc+1)*mkk]
				for m := range k.mg {
					src := w[((g*k.mg+m)*k.cg+c)*k.kk:][:k.kk]
					for t := range k.kk {
						dst[m*k.kk+t] = src[k.kk-1-t]
					}
				}
			}
		})
	}
	var wtp []float32
	if dx != nil && k.dcT != nil {
		_, _, wtp = k.directScratch(scratch, workers, 0)
		k.dcT.PackWeights(k.c, wt, wtp)
	}
	nCol, nDcol, nTmp, _ := k.convSpace()
	tensor.ForEach(workers, k.nGroups, func(wk, r int) {
		ws := scratch[wk*per : (wk+1)*per]
		col := ws[:nCol]
		dcol := ws[nCol : nCol+nDcol]
		tmp := ws[nCol+nDcol : nCol+nDcol+nTmp]
		tmp2 := ws[nCol+nDcol+nTmp:]
		part := partials[r*wsz : (r+1)*wsz]
		q0, q1 := r*k.nChunks/k.nGroups, (r+1)*k.nChunks/k.nGroups
		// Direct convolutions work image by image; whatever they do not
		// cover (dW below 256 pixels, dX of strided convolutions, or
		// everything) goes through im2col chunk by chunk.
		xp, dyp, _ := k.directScratch(scratch, workers, wk)
		if dw != nil && k.dwDirect {
			clear(part)
		}
		dxRest, dwRest := dxIfNotDirect(dx, k.dcT), dwIfNotDirect(dw, k.dwDirect)
		for q := q0; q < q1; q++ {
			s0, s1 := k.chunkRange(q)
			for s := s0; s < s1; s++ {
				dys := dy[s*k.m*k.outPlane:][:k.m*k.outPlane]
				if dw != nil && k.dwDirect {
					k.dc.Pad(x[s*k.c*k.inPlane:], xp)
					k.dc.WeightGrad(xp, dys, k.m, part)
				}
				if dx != nil && k.dcT != nil {
					k.dcT.Pad(dys, dyp)
					k.dcT.Forward(dyp, wtp, k.c, dx[s*k.c*k.inPlane:], !fresh)
				}
			}
			if dxRest != nil || dwRest != nil {
				k.gemmBackwardChunk(q, q0, col, dcol, tmp, tmp2, part, x, w, wt, dy, dxRest, dwRest, dxBeta, fresh)
			}
		}
	})
	if dw == nil {
		return
	}
	// Sum the partials in group order: elementwise, so the split over
	// workers does not change the result.
	tensor.Parallel(workers, wsz, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s := partials[i]
			for r := 1; r < k.nGroups; r++ {
				s += partials[r*wsz+i]
			}
			dw[i] += s
		}
	})
}

func dxIfNotDirect(dx []float32, dcT *tensor.DirectConv) []float32 {
	if dcT != nil {
		return nil
	}
	return dx
}

func dwIfNotDirect(dw []float32, direct bool) []float32 {
	if direct {
		return nil
	}
	return dw
}

// gemmBackwardChunk runs chunk q of the im2col path of gemmBackward: dW
// of the chunk into part (assigned for the first chunk q0 of the
// reduction group, added after) when dw is not nil, and dX when dx is not
// nil.
func (k *convKernel) gemmBackwardChunk(q, q0 int, col, dcol, tmp, tmp2, part, x, w, wt, dy, dx, dw []float32, dxBeta float32, fresh bool) {
	mkk := k.mg * k.kk
	s0, s1 := k.chunkRange(q)
	ns := s1 - s0
	nc := ns * k.outPlane
	// The output gradient of the chunk as an m × nc matrix.
	dyMat, lddy := dy[s0*k.m*k.outPlane:], k.outPlane
	if ns > 1 {
		for s := s0; s < s1; s++ {
			for m := range k.m {
				copy(tmp[m*nc+(s-s0)*k.outPlane:][:k.outPlane], dy[(s*k.m+m)*k.outPlane:])
			}
		}
		dyMat, lddy = tmp, nc
	}
	for g := range k.group {
		dyg := dyMat[g*k.mg*lddy:]
		direct := k.direct1x1 && ns == 1
		if dw != nil {
			var bmat []float32
			ldb := nc
			if direct {
				bmat, ldb = x[(s0*k.c+g*k.cg)*k.inPlane:], k.inPlane
			} else {
				for s := s0; s < s1; s++ {
					k.cols.Im2col(k.cg, x[(s*k.c+g*k.cg)*k.inPlane:], col, nc, (s-s0)*k.outPlane)
				}
				bmat = col
			}
			var beta float32
			if q > q0 {
				beta = 1
			}
			tensor.Sgemm(false, true, k.mg, k.kg, nc, 1, dyg, lddy, bmat, ldb, beta, part[g*k.mg*k.kg:], k.kg)
		}
		if dx == nil {
			continue
		}
		wg := w[g*k.mg*k.kg:]
		switch {
		case direct:
			tensor.Sgemm(true, false, k.kg, nc, k.mg, 1, wg, k.kg, dyg, lddy, dxBeta, dx[(s0*k.c+g*k.cg)*k.inPlane:], k.inPlane)
		case k.transposed:
			// dX_g += Wt_g (cg × mg·kk) · im2col(dY_g) (mg·kk × inPlane per sample).
			ni := ns * k.inPlane
			for s := s0; s < s1; s++ {
				k.tCols.Im2col(k.mg, dy[(s*k.m+g*k.mg)*k.outPlane:], dcol, ni, (s-s0)*k.inPlane)
			}
			wtg := wt[g*k.cg*mkk:]
			if ns == 1 {
				tensor.Sgemm(false, false, k.cg, ni, mkk, 1, wtg, mkk, dcol, ni, dxBeta, dx[(s0*k.c+g*k.cg)*k.inPlane:], k.inPlane)
				break
			}
			tensor.Sgemm(false, false, k.cg, ni, mkk, 1, wtg, mkk, dcol, ni, 0, tmp2, ni)
			for s := s0; s < s1; s++ {
				for c := range k.cg {
					d := dx[(s*k.c+g*k.cg+c)*k.inPlane:][:k.inPlane]
					src := tmp2[c*ni+(s-s0)*k.inPlane:][:k.inPlane]
					addOrCopy(d, src, fresh)
				}
			}
		default:
			tensor.Sgemm(true, false, k.kg, nc, k.mg, 1, wg, k.kg, dyg, lddy, 0, dcol, nc)
			for s := s0; s < s1; s++ {
				d := dx[(s*k.c+g*k.cg)*k.inPlane:]
				if fresh {
					clear(d[:k.cg*k.inPlane])
				}
				k.cols.Col2im(k.cg, dcol, nc, (s-s0)*k.outPlane, d)
			}
		}
	}
}

// depthwiseForward runs a group == channels convolution directly: each
// output channel reads one input channel.
func (k *convKernel) depthwiseForward(ctx *RunContext, x, w, y []float32) {
	g := &k.win.Window
	khw := g.KH * g.KW
	if k.dwPlanes() {
		// 4×4 or 8×8 planes: a sample's planes in one call (same bits as
		// below).
		pl := k.inPlane
		tensor.ForEach(ctx.Workers, k.n, func(_, n int) {
			k.dw3.ForwardPlanes(x[n*k.c*pl:(n+1)*k.c*pl], w[:k.m*9], y[n*k.m*pl:(n+1)*k.m*pl], false)
		})
		return
	}
	per := k.depthwiseSpace()
	scratch := ctx.scratch(k.Workspace(max(1, ctx.Workers)))
	if k.dwStride2() {
		pl, side := k.inPlane, k.win.W
		tensor.ForEach(ctx.Workers, k.n, func(wk, n int) {
			full := scratch[wk*per:][:k.m*pl]
			k.dwS2.ForwardPlanes(x[n*k.c*pl:(n+1)*k.c*pl], w[:k.m*9], full, false)
			evenPixels(side, k.m, full, y[n*k.m*k.outPlane:(n+1)*k.m*k.outPlane])
		})
		return
	}
	tensor.ForEach(ctx.Workers, k.n*k.m, func(wk, i int) {
		n, m := i/k.m, i%k.m
		c := m / k.mg
		plane := x[(n*k.c+c)*k.inPlane:][:k.inPlane]
		wm := w[m*khw : (m+1)*khw]
		dst := y[i*k.outPlane : (i+1)*k.outPlane]
		if k.dw3 != nil {
			xp := scratch[wk*per:][:k.dw3.PadSize()]
			k.dw3.Pad(plane, xp)
			k.dw3.Forward(xp, wm, dst, false)
			return
		}
		clear(dst)
		if k.phaseSize() > 0 {
			wq := k.phaseWidth()
			xs := scratch[wk*per : (wk+1)*per]
			splitPhases(g, wq, plane, xs)
			for ki := range g.KH {
				for kj := range g.KW {
					if r := k.runs[ki*g.KW+kj]; r.ok {
						tensor.AxpyRows(r.ohHi-r.ohLo, r.owHi-r.owLo, wm[ki*g.KW+kj], xs[r.base:], r.ld, dst[r.ohLo*g.OW+r.owLo:], g.OW)
					}
				}
			}
			return
		}
		for ki := range g.KH {
			for kj := range g.KW {
				depthwiseTap(g, ki, kj, wm[ki*g.KW+kj], plane, dst, false)
			}
		}
	})
}

// depthwiseTap applies one window tap (ki, kj) with weight wv between an
// input plane and an output plane: out[o] += wv·in[x(o)] when adjoint is
// false, in[x(o)] += wv·out[o] when it is true, for every output pixel o
// whose tap falls inside the image.
func depthwiseTap(g *tensor.Window, ki, kj int, wv float32, in, out []float32, adjoint bool) {
	ohLo, ohHi := tensor.ValidRange(g.OH, g.SH, ki*g.DH-g.PadT, g.H)
	owLo, owHi := tensor.ValidRange(g.OW, g.SW, kj*g.DW-g.PadL, g.W)
	if owLo >= owHi {
		return
	}
	nw := owHi - owLo
	if g.SW == 1 && ohLo < ohHi {
		// Stride 1 along rows: the rows of the tap are runs of nw floats
		// in both planes, strided by the planes' widths.
		ih := ohLo*g.SH - g.PadT + ki*g.DH
		iw := owLo - g.PadL + kj*g.DW
		rows, ldi := ohHi-ohLo, g.SH*g.W
		o := out[ohLo*g.OW+owLo:]
		i := in[ih*g.W+iw:]
		if adjoint {
			tensor.AxpyRows(rows, nw, wv, o, g.OW, i, ldi)
		} else {
			tensor.AxpyRows(rows, nw, wv, i, ldi, o, g.OW)
		}
		return
	}
	for oh := ohLo; oh < ohHi; oh++ {
		ih := oh*g.SH - g.PadT + ki*g.DH
		iw := owLo*g.SW - g.PadL + kj*g.DW
		o := out[oh*g.OW+owLo:][:nw]
		row := in[ih*g.W+iw:]
		if adjoint {
			for t, v := range o {
				row[t*g.SW] += wv * v
			}
		} else {
			for t := range o {
				o[t] += wv * row[t*g.SW]
			}
		}
	}
}

// depthwiseDot is Σ_o out[o]·in[x(o)] over the output pixels whose tap
// (ki, kj) falls inside the image: one weight's gradient for one sample.
func depthwiseDot(g *tensor.Window, ki, kj int, in, out []float32) float32 {
	ohLo, ohHi := tensor.ValidRange(g.OH, g.SH, ki*g.DH-g.PadT, g.H)
	owLo, owHi := tensor.ValidRange(g.OW, g.SW, kj*g.DW-g.PadL, g.W)
	var s float32
	if owLo >= owHi {
		return 0
	}
	nw := owHi - owLo
	if g.SW == 1 {
		if ohLo >= ohHi {
			return 0
		}
		ih := ohLo*g.SH - g.PadT + ki*g.DH
		iw := owLo - g.PadL + kj*g.DW
		return tensor.DotRows(ohHi-ohLo, nw, out[ohLo*g.OW+owLo:], g.OW, in[ih*g.W+iw:], g.SH*g.W)
	}
	for oh := ohLo; oh < ohHi; oh++ {
		ih := oh*g.SH - g.PadT + ki*g.DH
		iw := owLo*g.SW - g.PadL + kj*g.DW
		o := out[oh*g.OW+owLo:][:nw]
		row := in[ih*g.W+iw:]
		for t, v := range o {
			s += v * row[t*g.SW]
		}
	}
	return s
}

func (k *convKernel) depthwiseBackward(ctx *RunContext, x, w, dy, dx, dw []float32, fresh bool) {
	g := &k.win.Window
	khw := g.KH * g.KW
	per := k.depthwiseSpace()
	scratch := ctx.scratch(k.Workspace(max(1, ctx.Workers)))
	if k.dwStride2() {
		k.depthwiseStride2Backward(ctx, x, w, dy, dx, dw, fresh, scratch, per)
		return
	}
	if dx != nil && k.dwPlanes() && k.dw3T != nil && k.dw3T.PlaneSide() != 0 {
		// 4×4 or 8×8 planes, one filter per channel: dX of a sample's
		// planes in one call with the flipped filters (same bits as below).
		pl := k.inPlane
		for m := range k.m {
			for t := range 9 {
				k.dwFlip[m*9+t] = w[m*9+8-t]
			}
		}
		tensor.ForEach(ctx.Workers, k.n, func(_, n int) {
			k.dw3T.ForwardPlanes(dy[n*k.m*pl:(n+1)*k.m*pl], k.dwFlip, dx[n*k.c*pl:(n+1)*k.c*pl], !fresh)
		})
	} else if dx != nil {
		// Each input channel gathers from its mg output channels.
		tensor.ForEach(ctx.Workers, k.n*k.c, func(wk, i int) {
			n, c := i/k.c, i%k.c
			dplane := dx[i*k.inPlane : (i+1)*k.inPlane]
			if k.dw3T != nil {
				// dX = dY (padded by 2 - pad) convolved with the flipped filter.
				ws := scratch[wk*per : (wk+1)*per]
				flip, dyp := ws[:9], ws[9:][:k.dw3T.PadSize()]
				for m := c * k.mg; m < (c+1)*k.mg; m++ {
					for t := range 9 {
						flip[t] = w[m*9+8-t]
					}
					k.dw3T.Pad(dy[(n*k.m+m)*k.outPlane:][:k.outPlane], dyp)
					k.dw3T.Forward(dyp, flip, dplane, !fresh || m > c*k.mg)
				}
				return
			}
			if k.phaseSize() > 0 {
				// Taps added into a phase-split dX, merged once.
				wq := k.phaseWidth()
				ds := scratch[wk*per : (wk+1)*per]
				clear(ds)
				for m := c * k.mg; m < (c+1)*k.mg; m++ {
					src := dy[(n*k.m+m)*k.outPlane:][:k.outPlane]
					wm := w[m*khw : (m+1)*khw]
					for ki := range g.KH {
						for kj := range g.KW {
							if r := k.runs[ki*g.KW+kj]; r.ok {
								tensor.AxpyRows(r.ohHi-r.ohLo, r.owHi-r.owLo, wm[ki*g.KW+kj], src[r.ohLo*g.OW+r.owLo:], g.OW, ds[r.base:], r.ld)
							}
						}
					}
				}
				mergePhases(g, wq, ds, dplane, !fresh)
				return
			}
			if fresh {
				clear(dplane)
			}
			for m := c * k.mg; m < (c+1)*k.mg; m++ {
				src := dy[(n*k.m+m)*k.outPlane:][:k.outPlane]
				wm := w[m*khw : (m+1)*khw]
				for ki := range g.KH {
					for kj := range g.KW {
						depthwiseTap(g, ki, kj, wm[ki*g.KW+kj], dplane, src, true)
					}
				}
			}
		})
	}
	if dw != nil && k.dw3 != nil {
		// Blocks of filters, sample by sample (depthwiseBlocks); each
		// filter's 9 taps summed over the batch in order.
		k.depthwiseBlocks(ctx.Workers, func(wk, m0, m1 int) {
			xp := scratch[wk*per+9:][:k.dw3.PadSize()]
			sums := k.dwSums[m0*9 : m1*9]
			clear(sums)
			if k.dwPlanes() {
				pl := k.inPlane
				for n := range k.n {
					k.dw3.WeightGradPlanes(x[(n*k.c+m0)*pl:(n*k.c+m1)*pl], dy[(n*k.m+m0)*pl:(n*k.m+m1)*pl], sums)
				}
				for i, v := range sums {
					dw[m0*9+i] += v
				}
				return
			}
			var one [9]float32
			for n := range k.n {
				for m := m0; m < m1; m++ {
					k.dw3.Pad(x[(n*k.c+m/k.mg)*k.inPlane:][:k.inPlane], xp)
					k.dw3.WeightGrad(xp, dy[(n*k.m+m)*k.outPlane:][:k.outPlane], &one)
					sum := sums[(m-m0)*9:][:9]
					for t := range 9 {
						sum[t] += one[t]
					}
				}
			}
			for i, v := range sums {
				dw[m0*9+i] += v
			}
		})
		return
	}
	if dw != nil && k.phaseSize() > 0 {
		// Blocks of filters, sample by sample: each sample's plane split
		// once per filter, its taps' dot products added into dW in
		// sample order.
		wq := k.phaseWidth()
		k.depthwiseBlocks(ctx.Workers, func(wk, m0, m1 int) {
			xs := scratch[wk*per : (wk+1)*per]
			for n := range k.n {
				for m := m0; m < m1; m++ {
					splitPhases(g, wq, x[(n*k.c+m/k.mg)*k.inPlane:][:k.inPlane], xs)
					src := dy[(n*k.m+m)*k.outPlane:][:k.outPlane]
					sum := dw[m*khw : (m+1)*khw]
					for ki := range g.KH {
						for kj := range g.KW {
							if r := k.runs[ki*g.KW+kj]; r.ok {
								sum[ki*g.KW+kj] += tensor.DotRows(r.ohHi-r.ohLo, r.owHi-r.owLo, src[r.ohLo*g.OW+r.owLo:], g.OW, xs[r.base:], r.ld)
							}
						}
					}
				}
			}
		})
		return
	}
	if dw != nil {
		// One weight tap per item, summed over the batch in order.
		tensor.ForEach(ctx.Workers, k.m*khw, func(_, i int) {
			m, t := i/khw, i%khw
			ki, kj := t/g.KW, t%g.KW
			c := m / k.mg
			var s float32
			for n := range k.n {
				s += depthwiseDot(g, ki, kj, x[(n*k.c+c)*k.inPlane:][:k.inPlane], dy[(n*k.m+m)*k.outPlane:][:k.outPlane])
			}
			dw[i] += s
		})
	}
}

// depthwiseStride2Backward is depthwiseBackward on the dwS2 path: dY
// spread onto the even pixels of zero planes is the gradient of the
// stride-1 output the forward pass subsampled, so dX is the stride-1
// convolution of it with the flipped filters, and dW the stride-1 weight
// gradient, each filter's taps summed over the batch in order.
func (k *convKernel) depthwiseStride2Backward(ctx *RunContext, x, w, dy, dx, dw []float32, fresh bool, scratch []float32, per int) {
	pl, op, side := k.inPlane, k.outPlane, k.win.W
	if dx != nil {
		for m := range k.m {
			for t := range 9 {
				k.dwFlip[m*9+t] = w[m*9+8-t]
			}
		}
		tensor.ForEach(ctx.Workers, k.n, func(wk, n int) {
			up := scratch[wk*per:][:k.m*pl]
			spreadPixels(side, k.m, dy[n*k.m*op:(n+1)*k.m*op], up)
			k.dwS2.ForwardPlanes(up, k.dwFlip, dx[n*k.c*pl:(n+1)*k.c*pl], !fresh)
		})
	}
	if dw == nil {
		return
	}
	k.depthwiseBlocks(ctx.Workers, func(wk, m0, m1 int) {
		up := scratch[wk*per:][:(m1-m0)*pl]
		sums := k.dwSums[m0*9 : m1*9]
		clear(sums)
		for n := range k.n {
			spreadPixels(side, m1-m0, dy[(n*k.m+m0)*op:(n*k.m+m1)*op], up)
			k.dwS2.WeightGradPlanes(x[(n*k.c+m0)*pl:(n*k.c+m1)*pl], up, sums)
		}
		for i, v := range sums {
			dw[m0*9+i] += v
		}
	})
}

// evenPixels writes, for each of np side×side planes of full, its pixels
// at even rows and columns into the (side/2)×(side/2) planes of y.
func evenPixels(side, np int, full, y []float32) {
	h := side / 2
	_ = full[np*side*side-1]
	_ = y[np*h*h-1]
	for p := range np {
		src, dst := full[p*side*side:], y[p*h*h:]
		for r := range h {
			row, out := src[2*r*side:][:side], dst[r*h:][:h]
			for q := range out {
				out[q] = row[2*q]
			}
		}
	}
}

// spreadPixels is evenPixels' adjoint: each (side/2)×(side/2) plane of dy
// goes to the even rows and columns of a side×side plane of up, whose
// other pixels are set to zero.
func spreadPixels(side, np int, dy, up []float32) {
	h := side / 2
	_ = up[np*side*side-1]
	_ = dy[np*h*h-1]
	clear(up[:np*side*side])
	for p := range np {
		src, dst := dy[p*h*h:], up[p*side*side:]
		for r := range h {
			in, row := src[r*h:][:h], dst[2*r*side:][:side]
			for q, v := range in {
				row[2*q] = v
			}
		}
	}
}

// depthwiseBlocksPerWorker: the depthwise weight gradient splits the
// filters into this many blocks per worker (a variable for the tests).
var depthwiseBlocksPerWorker = 4

// depthwiseBlocks calls fn(worker, m0, m1) for blocks of consecutive
// filters spread over the workers. A block runs sample by sample, so
// that each sample's planes of the block are one contiguous run of X and
// of dY (one filter at a time over the batch reads one small plane per
// sample, a whole sample apart). Each filter still sums its samples in
// order, so the result does not depend on the blocks or the workers.
func (k *convKernel) depthwiseBlocks(workers int, fn func(wk, m0, m1 int)) {
	nb := min(k.m, max(1, workers)*depthwiseBlocksPerWorker)
	tensor.ForEach(workers, nb, func(wk, b int) { fn(wk, b*k.m/nb, (b+1)*k.m/nb) })
}

package graph

// ConvTransposeGeometry resolves the window of ConvTranspose node n over an
// input of spatial size in with a kernel of spatial size kernel: the pads
// actually applied (begins, then ends) and the output's spatial size
//
//	out[i] = strides[i]·(in[i]-1) + output_padding[i] + (kernel[i]-1)·dilations[i] + 1 - pads[i] - pads[i+k]
//
// with the pads from the attribute, or, when output_shape or a SAME
// auto_pad fixes the output size (SAME: in[i]·strides[i]), derived from
// the total padding that size needs: SAME_UPPER puts the larger half at
// the end, SAME_LOWER and an explicit output_shape at the beginning (the
// ONNX operator's definition; halves rounded down, so an output_shape past
// what the window reaches gives a negative end pad: outputs at the end no
// input reaches, as output_padding adds). A ConvTranspose is the input gradient of a
// Conv with the same window that maps out back to in, which is how the
// engine runs it.
func ConvTransposeGeometry(n *Node, in, kernel []int) (pads, out []int, err error) {
	c := &opCtx{n: n}
	k := len(kernel)
	strides, dilations, pads, err := spatialAttrs(c, k, true)
	if err != nil {
		return nil, nil, err
	}
	outPad := make([]int, k)
	if v, ok := c.attrInts("output_padding"); ok && len(v) > 0 {
		if len(v) != k {
			return nil, nil, c.errf("output_padding has %d values, want %d", len(v), k)
		}
		for i, x := range v {
			if x < 0 || (int(x) >= strides[i] && int(x) >= dilations[i]) {
				return nil, nil, c.errf("output_padding %v must be ≥ 0 and below the stride or the dilation of its axis (strides %v, dilations %v)", v, strides, dilations)
			}
			outPad[i] = int(x)
		}
	}
	var want []int
	if v, ok := c.attrInts("output_shape"); ok && len(v) > 0 {
		switch len(v) {
		case k:
		case k + 2:
			v = v[2:] // N and C given too
		default:
			return nil, nil, c.errf("output_shape %v has %d values, want %d (the spatial sizes)", v, len(v), k)
		}
		for _, x := range v {
			if x < 1 {
				return nil, nil, c.errf("output_shape %v must be positive", v)
			}
			want = append(want, int(x))
		}
	}
	autoPad := n.AttrString("auto_pad", "NOTSET")
	switch autoPad {
	case "NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return nil, nil, c.errf("auto_pad %q is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", autoPad)
	}
	if want == nil && (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
		for i := range k {
			want = append(want, in[i]*strides[i])
		}
	}
	out = make([]int, k)
	for i := range k {
		full := strides[i]*(in[i]-1) + outPad[i] + (kernel[i]-1)*dilations[i] + 1
		switch {
		case want != nil:
			// Halves rounded down: an output larger than the window
			// reaches (total < 0) gets a negative end pad, extra outputs
			// at the end that no input reaches, like output_padding.
			total := full - want[i]
			half := total >> 1
			if autoPad == "SAME_UPPER" {
				pads[i], pads[i+k] = half, total-half
			} else {
				pads[i], pads[i+k] = total-half, half
			}
			if pads[i] < 0 {
				return nil, nil, c.errf("output size %d of spatial axis %d needs outputs before the first one the window reaches (%d with auto_pad %s); not supported", want[i], i, full, autoPad)
			}
		case autoPad == "VALID":
			pads[i], pads[i+k] = 0, 0
		}
		out[i] = full - pads[i] - pads[i+k]
		if out[i] < 1 {
			return nil, nil, c.errf("pads %v leave no output along spatial axis %d (%d before padding)", pads, i, full)
		}
	}
	return pads, out, nil
}

func convTransposeShape(c *opCtx) ([]*value, error) {
	x, w, group, err := convOperands(c)
	if err != nil {
		return nil, err
	}
	if x.shape[1] != w.shape[0] || w.shape[0]%group != 0 {
		return nil, c.errf("input has %d channels but weight %q %v (C, M/group, kernel...) with group %d expects %d, a multiple of the group", x.shape[1], c.n.Inputs[1], w.shape, group, w.shape[0])
	}
	m := w.shape[1] * group
	if b := c.in(2); b != nil && (len(b.shape) != 1 || b.shape[0] != m) {
		return nil, c.errf("bias %q has shape %v, want [%d]", c.n.Inputs[2], b.shape, m)
	}
	kernel := w.shape[2:]
	if err := checkKernelShape(c, kernel, w.shape); err != nil {
		return nil, err
	}
	_, sp, err := ConvTransposeGeometry(c.n, x.shape[2:], kernel)
	if err != nil {
		return nil, err
	}
	out := append([]int{x.shape[0], m}, sp...)
	return []*value{{shape: out, dtype: x.dtype}}, nil
}

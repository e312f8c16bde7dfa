package corrupt

import "math"

// border says how an index outside 0..n-1 maps back into the image.
type border int

const (
	// nearest repeats the edge: a a a | a b c d (scipy "nearest",
	// skimage's default for gaussian, ImageMagick's edge virtual pixels).
	nearest border = iota
	// reflect mirrors about the edge: b a | a b c d (scipy "reflect",
	// half-sample symmetric).
	reflect
	// reflect101 mirrors about the edge pixel: c b | a b c d (OpenCV's
	// default BORDER_REFLECT_101, scipy "mirror").
	reflect101
)

// index maps i into 0..n-1 by the border rule.
func (b border) index(i, n int) int {
	if i >= 0 && i < n {
		return i
	}
	switch b {
	case reflect:
		p := 2 * n
		i %= p
		if i < 0 {
			i += p
		}
		if i >= n {
			i = p - 1 - i
		}
		return i
	case reflect101:
		if n == 1 {
			return 0
		}
		p := 2*n - 2
		i %= p
		if i < 0 {
			i += p
		}
		if i >= n {
			i = p - i
		}
		return i
	default:
		if i < 0 {
			return 0
		}
		return n - 1
	}
}

// gaussKernel1D is scipy.ndimage's gaussian_filter1d kernel: radius
// int(truncate·σ + 0.5), weights exp(−x²/2σ²) normalized to sum 1. σ ≤ 0
// gives the identity kernel [1].
func gaussKernel1D(sigma, truncate float64) []float64 {
	if sigma <= 0 {
		return []float64{1}
	}
	r := int(truncate*sigma + 0.5)
	k := make([]float64, 2*r+1)
	var sum float64
	for i := -r; i <= r; i++ {
		v := math.Exp(-0.5 * float64(i*i) / (sigma * sigma))
		k[i+r] = v
		sum += v
	}
	for i := range k {
		k[i] /= sum
	}
	return k
}

// correlate1D filters a h×w plane along rows (axis 1) or columns (axis 0)
// with the odd-length kernel k centered on its middle tap.
func correlate1D(src, dst []float64, h, w int, k []float64, axis int, b border) {
	r := len(k) / 2
	if axis == 1 {
		for y := 0; y < h; y++ {
			row := src[y*w : (y+1)*w]
			out := dst[y*w : (y+1)*w]
			for x := 0; x < w; x++ {
				var s float64
				if x >= r && x < w-r {
					for j, kv := range k {
						s += kv * row[x+j-r]
					}
				} else {
					for j, kv := range k {
						s += kv * row[b.index(x+j-r, w)]
					}
				}
				out[x] = s
			}
		}
		return
	}
	for y := 0; y < h; y++ {
		out := dst[y*w : (y+1)*w]
		for x := range out {
			out[x] = 0
		}
		for j, kv := range k {
			row := src[b.index(y+j-r, h)*w:]
			for x := 0; x < w; x++ {
				out[x] += kv * row[x]
			}
		}
	}
}

// gaussianPlane blurs one h×w plane in place with scipy's gaussian_filter
// (separable, both spatial axes).
func gaussianPlane(p []float64, h, w int, sigma, truncate float64, b border) {
	if sigma <= 0 {
		return
	}
	k := gaussKernel1D(sigma, truncate)
	tmp := make([]float64, len(p))
	correlate1D(p, tmp, h, w, k, 1, b)
	correlate1D(tmp, p, h, w, k, 0, b)
}

// gaussianRaster blurs every channel of x in place (skimage's gaussian with
// multichannel=True: no blur across channels).
func gaussianRaster(x *raster, sigma, truncate float64, b border) {
	for ch := 0; ch < x.c; ch++ {
		gaussianPlane(x.plane(ch), x.h, x.w, sigma, truncate, b)
	}
}

// kernel2D is a k×k correlation kernel, row-major, anchored at its center.
type kernel2D struct {
	size int
	k    []float64
}

// correlate2D is OpenCV's filter2D on one plane (correlation, anchor at the
// kernel's center).
func correlate2D(src, dst []float64, h, w int, kern kernel2D, b border) {
	r := kern.size / 2
	pw := w + 2*r
	pad := padPlane(src, h, w, r, b)
	// Only the nonzero taps (disk kernels are mostly zero).
	var offs []int
	var ws []float64
	for i := 0; i < kern.size; i++ {
		for j := 0; j < kern.size; j++ {
			if kv := kern.k[i*kern.size+j]; kv != 0 {
				offs = append(offs, i*pw+j)
				ws = append(ws, kv)
			}
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			base := y*pw + x
			var s float64
			for t, o := range offs {
				s += ws[t] * pad[base+o]
			}
			dst[y*w+x] = s
		}
	}
}

// padPlane returns the plane extended by r pixels on every side by the
// border rule, as a (h+2r)×(w+2r) plane.
func padPlane(src []float64, h, w, r int, b border) []float64 {
	pw := w + 2*r
	pad := make([]float64, (h+2*r)*pw)
	for y := -r; y < h+r; y++ {
		row := src[b.index(y, h)*w:]
		out := pad[(y+r)*pw:]
		for x := -r; x < w+r; x++ {
			out[x+r] = row[b.index(x, w)]
		}
	}
	return pad
}

// boxBlur3 is OpenCV's blur with a 3×3 box (normalized, reflect-101).
func boxBlur3(src, dst []float64, h, w int) {
	k := kernel2D{size: 3, k: make([]float64, 9)}
	for i := range k.k {
		k.k[i] = 1.0 / 9
	}
	correlate2D(src, dst, h, w, k, reflect101)
}

// bilinear samples plane p (h×w) at row y, column x, with out-of-range
// neighbours mapped by border b.
func bilinear(p []float64, h, w int, y, x float64, b border) float64 {
	y0f, x0f := math.Floor(y), math.Floor(x)
	fy, fx := y-y0f, x-x0f
	y0, x0 := int(y0f), int(x0f)
	ya, yb := b.index(y0, h), b.index(y0+1, h)
	xa, xb := b.index(x0, w), b.index(x0+1, w)
	v00, v01 := p[ya*w+xa], p[ya*w+xb]
	v10, v11 := p[yb*w+xa], p[yb*w+xb]
	return (1-fy)*((1-fx)*v00+fx*v01) + fy*((1-fx)*v10+fx*v11)
}

// bilinearZero samples like bilinear but treats pixels outside the image
// as 0 (kornia's and PyTorch grid_sample's zero padding).
func bilinearZero(p []float64, h, w int, y, x float64) float64 {
	y0f, x0f := math.Floor(y), math.Floor(x)
	fy, fx := y-y0f, x-x0f
	y0, x0 := int(y0f), int(x0f)
	at := func(yy, xx int) float64 {
		if yy < 0 || yy >= h || xx < 0 || xx >= w {
			return 0
		}
		return p[yy*w+xx]
	}
	return (1-fy)*((1-fx)*at(y0, x0)+fx*at(y0, x0+1)) + fy*((1-fx)*at(y0+1, x0)+fx*at(y0+1, x0+1))
}

// clippedZoom is make_cifar_c.py's clipped_zoom on one plane: crop the
// central ⌈h/z⌉×⌈w/z⌉ block, zoom it by z with scipy.ndimage.zoom
// (order 1: output size round(n·z), output index o samples input
// coordinate o·(n−1)/(out−1)), and trim the center h×w back out.
func clippedZoom(p []float64, h, w int, z float64, dst []float64) {
	ch := int(math.Ceil(float64(h) / z))
	cw := int(math.Ceil(float64(w) / z))
	top := (h - ch) / 2
	left := (w - cw) / 2
	oh := int(math.RoundToEven(float64(ch) * z))
	ow := int(math.RoundToEven(float64(cw) * z))
	trimTop := (oh - h) / 2
	trimLeft := (ow - w) / 2
	sy, sx := 0.0, 0.0
	if oh > 1 {
		sy = float64(ch-1) / float64(oh-1)
	}
	if ow > 1 {
		sx = float64(cw-1) / float64(ow-1)
	}
	for y := 0; y < h; y++ {
		iy := float64(y+trimTop) * sy
		y0 := int(iy)
		fy := iy - float64(y0)
		y1 := min(y0+1, ch-1)
		r0 := p[(top+y0)*w:]
		r1 := p[(top+y1)*w:]
		for x := 0; x < w; x++ {
			ix := float64(x+trimLeft) * sx
			x0 := int(ix)
			fx := ix - float64(x0)
			x1 := min(x0+1, cw-1)
			a := (1-fx)*r0[left+x0] + fx*r0[left+x1]
			c := (1-fx)*r1[left+x0] + fx*r1[left+x1]
			dst[y*w+x] = (1-fy)*a + fy*c
		}
	}
}

// motionKernel is the kernel of ImageMagick's MotionBlurImage: width
// 2⌈radius⌉+1 taps of a one-sided Gaussian exp(−i²/2σ²), i = 0..width−1,
// normalized to sum 1, placed along the line at angle degrees at the
// offsets (⌈i·cos θ − ½⌉, ⌈i·sin θ − ½⌉) (x right, y down).
type motionKernel struct {
	weights []float64
	dx, dy  []int
}

func newMotionKernel(radius, sigma, angle float64) motionKernel {
	width := int(2*math.Ceil(radius) + 1)
	if radius <= 0 {
		width = 1
	}
	mk := motionKernel{weights: make([]float64, width), dx: make([]int, width), dy: make([]int, width)}
	var sum float64
	for i := range mk.weights {
		v := math.Exp(-float64(i*i) / (2 * sigma * sigma))
		mk.weights[i] = v
		sum += v
	}
	th := angle * math.Pi / 180
	px, py := float64(width)*math.Sin(th), float64(width)*math.Cos(th)
	hyp := math.Hypot(px, py)
	for i := range mk.weights {
		mk.weights[i] /= sum
		mk.dx[i] = int(math.Ceil(float64(i)*py/hyp - 0.5))
		mk.dy[i] = int(math.Ceil(float64(i)*px/hyp - 0.5))
	}
	return mk
}

// apply blurs plane src into dst with edge (nearest) virtual pixels.
func (mk motionKernel) apply(src, dst []float64, h, w int) {
	r := 0
	for i := range mk.dx {
		r = max(r, abs(mk.dx[i]), abs(mk.dy[i]))
	}
	pw := w + 2*r
	pad := padPlane(src, h, w, r, nearest)
	off := make([]int, len(mk.dx))
	for i := range off {
		off[i] = (mk.dy[i]+r)*pw + mk.dx[i] + r
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			base := y*pw + x
			var s float64
			for i, kv := range mk.weights {
				s += kv * pad[base+off[i]]
			}
			dst[y*w+x] = s
		}
	}
}

// nextPow2 is the smallest power of two ≥ n (and ≥ 2).
func nextPow2(n int) int {
	p := 2
	for p < n {
		p *= 2
	}
	return p
}

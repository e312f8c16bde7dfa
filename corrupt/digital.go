package corrupt

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

var (
	brightnessShift = [5]float64{0.05, 0.1, 0.15, 0.2, 0.3}
	contrastFactor  = [5]float64{0.75, 0.5, 0.4, 0.3, 0.15}
	// saturate: multiplier, addend of S.
	saturateParams = [5][2]float64{{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}}
	// elastic: α, σ, affine jitter, as fractions of the image size (32 for
	// CIFAR: 32·(0.05, 0.2, 0.07) = (1.6, 6.4, 2.24) and so on).
	elasticParams  = [5][3]float64{{0, 0, 0.08}, {0.05, 0.2, 0.07}, {0.08, 0.06, 0.06}, {0.1, 0.04, 0.05}, {0.1, 0.03, 0.03}}
	pixelateFactor = [5]float64{0.95, 0.9, 0.85, 0.75, 0.65}
	jpegQuality    = [5]int{80, 65, 58, 50, 40}
)

// rgbToHSV is skimage's rgb2hsv for one pixel (h in [0,1)).
func rgbToHSV(r, g, b float64) (h, s, v float64) {
	v = max(r, g, b)
	delta := v - min(r, g, b)
	if delta == 0 {
		return 0, 0, v
	}
	s = delta / v
	switch {
	case b == v:
		h = 4 + (r-g)/delta
	case g == v:
		h = 2 + (b-r)/delta
	default:
		h = (g - b) / delta
	}
	// skimage assigns red, then green, then blue, so the last max wins;
	// the switch above checks in the reverse order for the same result.
	h = math.Mod(h/6, 1)
	if h < 0 {
		h++
	}
	return h, s, v
}

// hsvToRGB is skimage's hsv2rgb for one pixel.
func hsvToRGB(h, s, v float64) (r, g, b float64) {
	h6 := h * 6
	hi := int(math.Floor(h6)) % 6
	if hi < 0 {
		hi += 6
	}
	f := h6 - math.Floor(h6)
	p := v * (1 - s)
	q := v * (1 - f*s)
	t := v * (1 - (1-f)*s)
	switch hi {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}

// mapHSV applies fn to every pixel of an RGB raster in HSV space.
func mapHSV(x *raster, fn func(h, s, v float64) (float64, float64, float64)) {
	r, g, b := x.plane(0), x.plane(1), x.plane(2)
	for i := range r {
		h, s, v := rgbToHSV(r[i], g[i], b[i])
		h, s, v = fn(h, s, v)
		r[i], g[i], b[i] = hsvToRGB(h, s, v)
	}
}

// brightness: V ← clip(V + Δv) in HSV.
func brightness(sev int, x *raster, _ *rand.Rand) {
	dv := brightnessShift[sev-1]
	mapHSV(x, func(h, s, v float64) (float64, float64, float64) {
		return h, s, clip01(v + dv)
	})
}

// saturate: S ← clip(S·mult + add) in HSV.
func saturate(sev int, x *raster, _ *rand.Rand) {
	p := saturateParams[sev-1]
	mapHSV(x, func(h, s, v float64) (float64, float64, float64) {
		return h, clip01(s*p[0] + p[1]), v
	})
}

// contrast: (x − m)·c + m with m the mean of each channel.
func contrast(sev int, x *raster, _ *rand.Rand) {
	c := contrastFactor[sev-1]
	for ch := 0; ch < x.c; ch++ {
		pl := x.plane(ch)
		var m float64
		for _, v := range pl {
			m += v
		}
		m /= float64(len(pl))
		for i, v := range pl {
			pl[i] = (v-m)*c + m
		}
	}
}

// elasticTransform: a random affine warp (three anchor points around the
// center jittered by U(−a, a), OpenCV warpAffine with bilinear sampling and
// reflect-101 borders), then displacement fields dx, dy =
// gaussian(U(−1,1), σ, reflect, truncate 3)·α applied with
// map_coordinates(order 1, mode reflect). α, σ and a are fractions of the
// image size (min(h, w)).
func elasticTransform(sev int, x *raster, rng *rand.Rand) {
	p := elasticParams[sev-1]
	size := float64(min(x.h, x.w))
	alpha, sigma, aff := p[0]*size, p[1]*size, p[2]*size
	cx, cy := float64(x.w/2), float64(x.h/2)
	sq := float64(min(x.h, x.w) / 3)
	src := [3][2]float64{{cx + sq, cy + sq}, {cx + sq, cy - sq}, {cx - sq, cy - sq}}
	var dst [3][2]float64
	for i := range src {
		for j := range src[i] {
			dst[i][j] = src[i][j] + aff*(2*rng.Float64()-1)
		}
	}
	inv, ok := inverseAffine(src, dst)
	warped := newRaster(x.c, x.h, x.w)
	for ch := 0; ch < x.c; ch++ {
		in, out := x.plane(ch), warped.plane(ch)
		if !ok { // degenerate jitter: keep the image
			copy(out, in)
			continue
		}
		for y := 0; y < x.h; y++ {
			for xx := 0; xx < x.w; xx++ {
				fx, fy := float64(xx), float64(y)
				sx := inv[0]*fx + inv[1]*fy + inv[2]
				sy := inv[3]*fx + inv[4]*fy + inv[5]
				out[y*x.w+xx] = bilinear(in, x.h, x.w, sy, sx, reflect101)
			}
		}
	}
	dx := elasticField(x.h, x.w, sigma, rng)
	dy := elasticField(x.h, x.w, sigma, rng)
	for ch := 0; ch < x.c; ch++ {
		in, out := warped.plane(ch), x.plane(ch)
		for y := 0; y < x.h; y++ {
			for xx := 0; xx < x.w; xx++ {
				i := y*x.w + xx
				out[i] = bilinear(in, x.h, x.w, float64(y)+alpha*dy[i], float64(xx)+alpha*dx[i], reflect)
			}
		}
	}
}

// elasticField is one displacement field before scaling by α:
// gaussian(U(−1,1), σ, mode reflect, truncate 3).
func elasticField(h, w int, sigma float64, rng *rand.Rand) []float64 {
	f := make([]float64, h*w)
	for i := range f {
		f[i] = 2*rng.Float64() - 1
	}
	gaussianPlane(f, h, w, sigma, 3, reflect)
	return f
}

// inverseAffine returns the 2×3 matrix mapping dst points back to src
// points, i.e. the inverse of OpenCV's getAffineTransform(src, dst), which
// warpAffine applies to find each output pixel's source. ok is false for
// collinear points.
func inverseAffine(src, dst [3][2]float64) (m [6]float64, ok bool) {
	// Rows [u v 1]·[a b c]ᵀ = t for the map dst (u,v) → src, by Cramer's rule.
	var a [3][3]float64
	for i := range dst {
		a[i] = [3]float64{dst[i][0], dst[i][1], 1}
	}
	d := det3(a)
	if math.Abs(d) < 1e-12 {
		return m, false
	}
	for row := 0; row < 2; row++ {
		for col := 0; col < 3; col++ {
			b := a
			for i := range b {
				b[i][col] = src[i][row]
			}
			m[3*row+col] = det3(b) / d
		}
	}
	return m, true
}

func det3(a [3][3]float64) float64 {
	return a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) -
		a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) +
		a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
}

// boxCoeffs are Pillow's BOX-filter resampling coefficients from in to out
// samples, as 22-bit fixed-point weights: output i averages the inputs
// whose centers fall in its footprint (downscaling) or takes the one input
// under its center (upscaling).
type boxCoeffs struct {
	lo      []int
	weights [][]int64
}

const pilPrecisionBits = 32 - 8 - 2

func newBoxCoeffs(in, out int) boxCoeffs {
	scale := float64(in) / float64(out)
	fs := max(scale, 1)
	support := 0.5 * fs
	bc := boxCoeffs{lo: make([]int, out), weights: make([][]int64, out)}
	for o := 0; o < out; o++ {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		ws := make([]float64, hi-lo)
		var sum float64
		for i := range ws {
			t := (float64(i+lo) - center + 0.5) / fs
			if t > -0.5 && t <= 0.5 {
				ws[i] = 1
				sum++
			}
		}
		iw := make([]int64, len(ws))
		for i := range ws {
			if sum != 0 {
				iw[i] = int64(math.Floor(ws[i]/sum*(1<<pilPrecisionBits) + 0.5))
			}
		}
		bc.lo[o], bc.weights[o] = lo, iw
	}
	return bc
}

// resample resizes 8-bit levels (as float64 0..255) along one axis with
// Pillow's rounding: (2²¹ + Σ wᵢ·vᵢ) >> 22, clipped to 0..255.
func (bc boxCoeffs) resample(get func(i int) float64, set func(o int, v float64)) {
	for o, ws := range bc.weights {
		acc := int64(1) << (pilPrecisionBits - 1)
		for i, wv := range ws {
			acc += wv * int64(get(bc.lo[o]+i))
		}
		v := acc >> pilPrecisionBits
		set(o, float64(min(max(v, 0), 255)))
	}
}

// resizeBox is Pillow's Image.resize(..., BOX) of one 8-bit plane (levels
// 0..255 as float64): the horizontal pass first, rounded to 8 bits, then
// the vertical pass.
func resizeBox(src []float64, h, w, nh, nw int) []float64 {
	tmp := make([]float64, h*nw)
	hc := newBoxCoeffs(w, nw)
	for y := 0; y < h; y++ {
		row, out := src[y*w:(y+1)*w], tmp[y*nw:(y+1)*nw]
		hc.resample(func(i int) float64 { return row[i] }, func(o int, v float64) { out[o] = v })
	}
	dst := make([]float64, nh*nw)
	vc := newBoxCoeffs(h, nh)
	for x := 0; x < nw; x++ {
		vc.resample(func(i int) float64 { return tmp[i*nw+x] }, func(o int, v float64) { dst[o*nw+x] = v })
	}
	return dst
}

// pixelateSize is int(n·c) for the severity, as make_cifar_c.py computes
// int(32·c): 30, 28, 27, 24, 20 for n = 32.
func pixelateSize(n, sev int) int {
	return max(1, int(float64(n)*pixelateFactor[sev-1]))
}

// pixelate: Pillow BOX resize to int(h·c)×int(w·c) and BOX resize back.
func pixelate(sev int, x *raster, _ *rand.Rand) {
	nh, nw := pixelateSize(x.h, sev), pixelateSize(x.w, sev)
	lv := make([]float64, x.h*x.w)
	for ch := 0; ch < x.c; ch++ {
		pl := x.plane(ch)
		for i, v := range pl {
			lv[i] = level(v)
		}
		small := resizeBox(lv, x.h, x.w, nh, nw)
		back := resizeBox(small, nh, nw, x.h, x.w)
		for i, v := range back {
			pl[i] = v / 255
		}
	}
}

// jpegCompression encodes the 8-bit image with Go's image/jpeg at the
// severity's quality (4:2:0 chroma subsampling for color, like PIL's
// default) and decodes it again.
func jpegCompression(sev int, x *raster, _ *rand.Rand) {
	if _, err := jpegRoundTrip(x, jpegQuality[sev-1]); err != nil {
		// Encoding an in-memory image to a bytes.Buffer cannot fail.
		panic(fmt.Sprintf("corrupt: jpeg_compression: %v", err))
	}
}

// jpegRoundTrip replaces x by its JPEG round trip at quality q and returns
// the encoded size in bytes.
func jpegRoundTrip(x *raster, q int) (int, error) {
	var src image.Image
	n := x.h * x.w
	if x.c == 1 {
		g := image.NewGray(image.Rect(0, 0, x.w, x.h))
		for i := 0; i < n; i++ {
			g.Pix[i] = uint8(level(x.p[i]))
		}
		src = g
	} else {
		m := image.NewRGBA(image.Rect(0, 0, x.w, x.h))
		r, gg, b := x.plane(0), x.plane(1), x.plane(2)
		for i := 0; i < n; i++ {
			m.Pix[4*i] = uint8(level(r[i]))
			m.Pix[4*i+1] = uint8(level(gg[i]))
			m.Pix[4*i+2] = uint8(level(b[i]))
			m.Pix[4*i+3] = 255
		}
		src = m
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: q}); err != nil {
		return 0, err
	}
	size := buf.Len()
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		return 0, err
	}
	b := dec.Bounds()
	if yc, ok := dec.(*image.YCbCr); ok && yc.SubsampleRatio == image.YCbCrSubsampleRatio420 {
		// libjpeg (under Pillow) upsamples chroma with its "fancy" triangle
		// filter; Go's YCbCrAt repeats each chroma sample. Do as libjpeg.
		cb := fancyUpsample420(yc.Cb, yc.CStride, x.h, x.w)
		cr := fancyUpsample420(yc.Cr, yc.CStride, x.h, x.w)
		for y := 0; y < x.h; y++ {
			for xx := 0; xx < x.w; xx++ {
				i := y*x.w + xx
				r, g, bl := color.YCbCrToRGB(yc.Y[y*yc.YStride+xx], cb[i], cr[i])
				x.p[i], x.p[n+i], x.p[2*n+i] = float64(r)/255, float64(g)/255, float64(bl)/255
			}
		}
		return size, nil
	}
	for y := 0; y < x.h; y++ {
		for xx := 0; xx < x.w; xx++ {
			i := y*x.w + xx
			switch d := dec.(type) {
			case *image.Gray:
				v := float64(d.GrayAt(b.Min.X+xx, b.Min.Y+y).Y) / 255
				for ch := 0; ch < x.c; ch++ {
					x.p[ch*n+i] = v
				}
			case *image.YCbCr:
				c := d.YCbCrAt(b.Min.X+xx, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				x.p[i], x.p[n+i], x.p[2*n+i] = float64(r)/255, float64(g)/255, float64(bl)/255
			default:
				r, g, bl, _ := dec.At(b.Min.X+xx, b.Min.Y+y).RGBA()
				x.p[i], x.p[n+i], x.p[2*n+i] = float64(r>>8)/255, float64(g>>8)/255, float64(bl>>8)/255
			}
		}
	}
	return size, nil
}

// fancyUpsample420 doubles a chroma plane in both directions with libjpeg's
// h2v2_fancy_upsample: each output sample weighs its nearest input sample
// 9/16, the two next 3/16 each and the diagonal one 1/16 (edges
// replicated), with libjpeg's alternating rounding biases 8 and 7. The
// result is cropped to h×w.
func fancyUpsample420(c []uint8, stride, h, w int) []uint8 {
	ch, cw := (h+1)/2, (w+1)/2
	at := func(y, x int) int {
		y = min(max(y, 0), ch-1)
		x = min(max(x, 0), cw-1)
		return int(c[y*stride+x])
	}
	out := make([]uint8, h*w)
	for oy := 0; oy < h; oy++ {
		y := oy / 2
		ny := y - 1 // the other row: above for even output rows, below for odd
		if oy%2 == 1 {
			ny = y + 1
		}
		colsum := func(x int) int { return 3*at(y, x) + at(ny, x) }
		for ox := 0; ox < w; ox++ {
			x := ox / 2
			this := colsum(x)
			var v int
			if ox%2 == 0 {
				v = (3*this + colsum(x-1) + 8) >> 4
			} else {
				v = (3*this + colsum(x+1) + 7) >> 4
			}
			out[oy*w+ox] = uint8(v)
		}
	}
	return out
}

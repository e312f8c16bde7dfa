package corrupt

import (
	"math"
	"math/rand/v2"
)

var (
	gaussianBlurSigma = [5]float64{0.4, 0.6, 0.7, 0.8, 1.0}
	// glass blur: σ, max_delta, iterations.
	glassBlurParams = [5][3]float64{{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}}
	// defocus blur: disk radius, alias_blur.
	defocusParams = [5][2]float64{{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}}
	// motion blur: ImageMagick radius, sigma.
	motionParams = [5][2]float64{{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}}
	// zoom blur: the stop of np.arange(1, stop, 0.01).
	zoomStops = [5]float64{1.06, 1.11, 1.16, 1.21, 1.26}
)

// gaussianBlur is skimage's gaussian (truncate 4, mode nearest) per
// channel, σ scaled by min(h,w)/32.
func gaussianBlur(sev int, x *raster, _ *rand.Rand) {
	gaussianRaster(x, gaussianBlurSigma[sev-1]*x.scale(), 4, nearest)
}

// glassBlur: gaussian(σ) → uint8 (truncation) → iterations of local pixel
// "swaps" → gaussian(σ). The loops visit h from H−d down to d+1 and, inside,
// w from W−d down to d+1 (31..2 for CIFAR), and draw dx, dy from numpy's
// randint(−d, d), whose upper bound is exclusive: for d = 1 the offsets are
// only −1 and 0. The original writes the swap as
// x[h,w], x[h',w'] = x[h',w'], x[h,w] on a 3-D numpy array, where both
// sides are views: the first assignment copies pixel (h',w') into (h,w)
// and the second then copies it back onto itself. So the "swap" is a copy,
// and since (h',w') lies up-left of (h,w) and is visited later, each pass
// moves every visited pixel's content by one random up-left step taken from
// the pass's input. This is reproduced here (see glassShuffle). σ and d
// scale with min(h,w)/32 (d rounded, at least 1).
func glassBlur(sev int, x *raster, rng *rand.Rand) {
	p := glassBlurParams[sev-1]
	s := x.scale()
	sigma := p[0] * s
	d := max(1, int(math.Round(p[1]*s)))
	gaussianRaster(x, sigma, 4, nearest)
	for i, v := range x.p {
		x.p[i] = truncLevel(v) / 255
	}
	glassShuffle(x, d, int(p[2]), rng)
	gaussianRaster(x, sigma, 4, nearest)
}

// glassShuffle is the pixel-moving stage of glass blur, with the
// semantics of the original's numpy view "swap": pixel (h,w) takes the
// value of pixel (h+dy, w+dx), which keeps its own (all channels move
// together).
func glassShuffle(x *raster, d, iters int, rng *rand.Rand) {
	n := x.h * x.w
	for it := 0; it < iters; it++ {
		for hh := x.h - d; hh > d; hh-- {
			for ww := x.w - d; ww > d; ww-- {
				dx := rng.IntN(2*d) - d
				dy := rng.IntN(2*d) - d
				a := hh*x.w + ww
				b := (hh+dy)*x.w + ww + dx
				for ch := 0; ch < x.c; ch++ {
					o := ch * n
					x.p[o+a] = x.p[o+b]
				}
			}
		}
	}
}

// diskKernel is make_cifar_c.py's disk(radius, alias_blur): the indicator
// of X²+Y² ≤ r² on an integer grid, normalized, then OpenCV's GaussianBlur
// with ksize 3×3 (5×5 when r > 8) and σ = alias_blur. The original grid is
// −8..8 for r ≤ 8 and −r..r above; here it is padded by the blur's width
// so the blur's reflected border never reaches the disk (the kernel then
// sums to exactly 1; identical to the original whenever r ≤ 7), and the
// result is cropped to its nonzero support.
func diskKernel(radius, aliasBlur float64) kernel2D {
	ks := 3
	if radius > 8 {
		ks = 5
	}
	half := max(8, int(math.Ceil(radius))) + ks
	size := 2*half + 1
	disk := make([]float64, size*size)
	var sum float64
	for i := 0; i < size; i++ {
		for j := 0; j < size; j++ {
			y, x := float64(i-half), float64(j-half)
			if x*x+y*y <= radius*radius {
				disk[i*size+j] = 1
				sum++
			}
		}
	}
	for i := range disk {
		disk[i] /= sum
	}
	// OpenCV getGaussianKernel(ks, σ): exp(−(i−(ks−1)/2)²/2σ²), normalized.
	g := make([]float64, ks)
	var gs float64
	for i := range g {
		t := float64(i) - float64(ks-1)/2
		g[i] = math.Exp(-t * t / (2 * aliasBlur * aliasBlur))
		gs += g[i]
	}
	for i := range g {
		g[i] /= gs
	}
	tmp := make([]float64, len(disk))
	correlate1D(disk, tmp, size, size, g, 1, reflect101)
	correlate1D(tmp, disk, size, size, g, 0, reflect101)
	// Crop to the nonzero support, which is symmetric about the center.
	r := 0
	for i := 0; i < size; i++ {
		for j := 0; j < size; j++ {
			if disk[i*size+j] != 0 {
				r = max(r, abs(i-half), abs(j-half))
			}
		}
	}
	n := 2*r + 1
	k := kernel2D{size: n, k: make([]float64, n*n)}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			k.k[i*n+j] = disk[(i-r+half)*size+(j-r+half)]
		}
	}
	return k
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// defocusBlur: OpenCV filter2D of every channel with the disk kernel
// (reflect-101 borders). Radius and alias_blur scale with min(h,w)/32.
func defocusBlur(sev int, x *raster, _ *rand.Rand) {
	p := defocusParams[sev-1]
	s := x.scale()
	k := diskKernel(p[0]*s, p[1]*s)
	tmp := make([]float64, x.h*x.w)
	for ch := 0; ch < x.c; ch++ {
		pl := x.plane(ch)
		correlate2D(pl, tmp, x.h, x.w, k, reflect101)
		copy(pl, tmp)
	}
}

// motionBlur is ImageMagick's MotionBlurImage (see motionKernel) with
// angle ~ U(−45°, 45°), on the 8-bit image (the original goes through a
// PNG), rounding the result to 8 bits. Radius and σ scale with
// min(h,w)/32.
func motionBlur(sev int, x *raster, rng *rand.Rand) {
	p := motionParams[sev-1]
	s := x.scale()
	angle := -45 + 90*rng.Float64()
	mk := newMotionKernel(p[0]*s, p[1]*s, angle)
	tmp := make([]float64, x.h*x.w)
	for ch := 0; ch < x.c; ch++ {
		pl := x.plane(ch)
		mk.apply(pl, tmp, x.h, x.w)
		for i, v := range tmp {
			pl[i] = level(v) / 255
		}
	}
}

// zoomFactors returns np.arange(1, stop, 0.01) as numpy computes it: the
// length ⌈(stop−1)/0.01⌉ in floating point, and the values 1 + i·δ with
// δ = (1+0.01) − 1. The rounding gives 7, 12, 16, 21, 26 factors for the
// five severities: the stops 1.06 and 1.11 are included, 1.16, 1.21 and
// 1.26 are not.
func zoomFactors(sev int) []float64 {
	const start, step = 1.0, 0.01
	stop := zoomStops[sev-1]
	n := int(math.Ceil((stop - start) / step))
	delta := (start + step) - start
	z := make([]float64, n)
	for i := range z {
		z[i] = start + float64(i)*delta
	}
	return z
}

// zoomBlur: (x + Σ_z clipped_zoom(x, z)) / (n_z + 1).
func zoomBlur(sev int, x *raster, _ *rand.Rand) {
	zs := zoomFactors(sev)
	n := x.h * x.w
	acc := make([]float64, n)
	tmp := make([]float64, n)
	for ch := 0; ch < x.c; ch++ {
		pl := x.plane(ch)
		for i := range acc {
			acc[i] = 0
		}
		for _, z := range zs {
			clippedZoom(pl, x.h, x.w, z, tmp)
			for i, v := range tmp {
				acc[i] += v
			}
		}
		for i := range pl {
			pl[i] = (pl[i] + acc[i]) / float64(len(zs)+1)
		}
	}
}

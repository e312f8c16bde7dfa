package corrupt

import (
	"math"
	"math/rand/v2"
)

var (
	// snow: loc, scale, zoom, threshold, blur radius, blur σ, blend.
	snowParams = [5][7]float64{
		{0.1, 0.2, 1, 0.6, 8, 3, 0.95},
		{0.1, 0.2, 1, 0.5, 10, 4, 0.9},
		{0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
		{0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
		{0.3, 0.3, 1.25, 0.65, 14, 12, 0.8},
	}
	// frost: image weight, frost weight.
	frostParams = [5][2]float64{{1, 0.2}, {1, 0.3}, {0.9, 0.4}, {0.85, 0.4}, {0.75, 0.45}}
	// fog: amount, wibble decay.
	fogParams = [5][2]float64{{0.2, 3}, {0.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}}
	// spatter: loc, scale, σ, threshold, intensity, mode (0 water, 1 mud).
	spatterParams = [5][6]float64{
		{0.62, 0.1, 0.7, 0.7, 0.5, 0},
		{0.65, 0.1, 0.8, 0.7, 0.5, 0},
		{0.65, 0.3, 1, 0.69, 0.5, 0},
		{0.65, 0.1, 0.7, 0.69, 0.6, 1},
		{0.65, 0.1, 0.5, 0.68, 0.6, 1},
	}
)

// plasmaFractal is make_cifar_c.py's diamond-square height map on a
// mapsize×mapsize torus (mapsize a power of two): corners start at 0,
// every new point is the mean of its four neighbours plus
// wibble·U(−wibble, wibble), wibble starts at 100 and is divided by
// wibbleDecay at every level; the result is rescaled to [0,1].
func plasmaFractal(mapsize int, wibbleDecay float64, rng *rand.Rand) []float64 {
	m := make([]float64, mapsize*mapsize)
	at := func(y, x int) *float64 { return &m[y*mapsize+x] }
	wibble := 100.0
	wibbled := func(sum float64) float64 {
		return sum/4 + wibble*(wibble*(2*rng.Float64()-1))
	}
	for step := mapsize; step >= 2; step /= 2 {
		half := step / 2
		n := mapsize / step
		// Squares: the center of each square of corners.
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				i1, j1 := (i+1)%n, (j+1)%n
				sum := *at(i*step, j*step) + *at(i1*step, j*step) + *at(i*step, j1*step) + *at(i1*step, j1*step)
				*at(i*step+half, j*step+half) = wibbled(sum)
			}
		}
		// Diamonds: the midpoints of the square edges, from the two
		// centers and two corners around each.
		dr := func(i, j int) float64 { return *at(((i+n)%n)*step+half, ((j+n)%n)*step+half) }
		ul := func(i, j int) float64 { return *at((i%n)*step, (j%n)*step) }
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				*at(i*step, j*step+half) = wibbled(dr(i, j) + dr(i-1, j) + ul(i, j) + ul(i, j+1))
			}
		}
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				*at(i*step+half, j*step) = wibbled(dr(i, j) + dr(i, j-1) + ul(i, j) + ul(i+1, j))
			}
		}
		wibble /= wibbleDecay
	}
	lo, hi := m[0], m[0]
	for _, v := range m {
		lo, hi = min(lo, v), max(hi, v)
	}
	for i := range m {
		if hi > lo {
			m[i] = (m[i] - lo) / (hi - lo)
		} else {
			m[i] = 0
		}
	}
	return m
}

// fog: x + amount·plasma (the top-left h×w of a map whose side is the
// smallest power of two ≥ max(h, w): 32 for CIFAR), then x·M/(M + amount)
// with M the maximum of the input.
func fog(sev int, x *raster, rng *rand.Rand) {
	p := fogParams[sev-1]
	var mx float64
	for _, v := range x.p {
		mx = max(mx, v)
	}
	ms := nextPow2(max(x.h, x.w))
	pf := plasmaFractal(ms, p[1], rng)
	for ch := 0; ch < x.c; ch++ {
		pl := x.plane(ch)
		for y := 0; y < x.h; y++ {
			for xx := 0; xx < x.w; xx++ {
				i := y*x.w + xx
				pl[i] = (pl[i] + p[0]*pf[y*ms+xx]) * mx / (mx + p[0])
			}
		}
	}
}

// snow: a gray layer N(loc, scale) per pixel, clipped_zoom by zoom, zeroed
// below the threshold, stored as 8 bits, motion-blurred (ImageMagick kernel,
// angle ~ U(−135°, −45°), radius and σ scaled by min(h,w)/32); the image is
// whitened toward max(x, 1.5·gray(x) + 0.5) by 1 − blend and the layer is
// added twice, once rotated by 180°.
func snow(sev int, x *raster, rng *rand.Rand) {
	p := snowParams[sev-1]
	s := x.scale()
	h, w := x.h, x.w
	n := h * w
	layer := make([]float64, n)
	for i := range layer {
		layer[i] = p[0] + p[1]*rng.NormFloat64()
	}
	zoomed := make([]float64, n)
	clippedZoom(layer, h, w, p[2], zoomed)
	for i, v := range zoomed {
		if v < p[3] {
			v = 0
		}
		zoomed[i] = truncLevel(v)
	}
	angle := -135 + 90*rng.Float64()
	mk := newMotionKernel(p[4]*s, p[5]*s, angle)
	mk.apply(zoomed, layer, h, w)
	for i, v := range layer {
		layer[i] = level(v/255) / 255
	}
	r, g, b := x.plane(0), x.plane(1), x.plane(2)
	blend := p[6]
	for i := 0; i < n; i++ {
		gr := gray(r[i], g[i], b[i])*1.5 + 0.5
		for _, pl := range [][]float64{r, g, b} {
			pl[i] = blend*pl[i] + (1-blend)*max(pl[i], gr)
		}
	}
	for ch := 0; ch < 3; ch++ {
		pl := x.plane(ch)
		for i := range pl {
			pl[i] += layer[i] + layer[n-1-i]
		}
	}
}

// frost: w_img·x + w_frost·frost. The original crops a random 32×32 patch
// from one of five photographs of frost on glass (scaled by 0.2); those
// photographs are not available, so the texture here is procedural: see
// frostTexture.
func frost(sev int, x *raster, rng *rand.Rand) {
	p := frostParams[sev-1]
	tex := frostTexture(x.h, x.w, x.scale(), rng)
	for ch := 0; ch < 3; ch++ {
		pl, tp := x.plane(ch), tex.plane(ch)
		for i := range pl {
			pl[i] = p[0]*pl[i] + p[1]*tp[i]
		}
	}
}

// frostTexture draws an icy texture in the manner of the frost photographs
// at the scale the original crops them (photographs scaled by 0.2, then a
// 32×32 crop): a blotchy blue-gray diamond-square haze with many small
// dendritic ice crystals over it (bright needles with side branches at
// ±60°, as ice grows in six-fold symmetry), slightly blurred, with grain.
// Crystals are blended over the haze in "screen" mode, so they read as
// white-cyan ice on a bluish pane.
func frostTexture(h, w int, s float64, rng *rand.Rand) *raster {
	n := h * w
	ms := nextPow2(max(h, w))
	haze := plasmaFractal(ms, 1.5, rng)
	cr := make([]float64, n)
	count := max(3, int(math.Round(24*float64(n)/(1024*s*s))))
	for k := 0; k < count; k++ {
		x0 := (1.2*rng.Float64() - 0.1) * float64(w)
		y0 := (1.2*rng.Float64() - 0.1) * float64(h)
		angle := 2 * math.Pi * rng.Float64()
		length := (3 + 8*rng.Float64()) * s
		bright := 0.4 + 0.6*rng.Float64()
		drawCrystal(cr, h, w, x0, y0, angle, length, bright, 2, s, rng)
	}
	gaussianPlane(cr, h, w, 0.5*s, 4, nearest)
	bgTint := [3]float64{0.62, 0.74, 0.92}
	tex := newRaster(3, h, w)
	for ch := 0; ch < 3; ch++ {
		pl := tex.plane(ch)
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				i := y*w + xx
				bg := (0.12 + 0.45*haze[y*ms+xx]) * bgTint[ch]
				c := min(1, 1.1*cr[i]) * (0.93 + 0.035*float64(ch))
				pl[i] = clip01(1 - (1-bg)*(1-c) + 0.02*rng.NormFloat64())
			}
		}
	}
	return tex
}

// drawCrystal draws one needle from (x0, y0) with a brightness that fades
// along it, and side branches at ±60° when depth > 0. Pixels keep the
// maximum of what is drawn over them.
func drawCrystal(dst []float64, h, w int, x0, y0, angle, length, bright float64, depth int, s float64, rng *rand.Rand) {
	dx, dy := math.Cos(angle), math.Sin(angle)
	next := (1 + 1.5*rng.Float64()) * s
	for t := 0.0; t <= length; t += 0.35 {
		v := bright * (1 - 0.55*t/length)
		splatMax(dst, h, w, x0+t*dx, y0+t*dy, v)
		if depth > 0 && t >= next {
			side := 1.0
			if rng.Float64() < 0.5 {
				side = -1
			}
			bl := (length - t) * (0.35 + 0.3*rng.Float64())
			drawCrystal(dst, h, w, x0+t*dx, y0+t*dy, angle+side*math.Pi/3, bl, v*0.9, depth-1, s, rng)
			next = t + (1+1.5*rng.Float64())*s
		}
	}
}

// splatMax deposits v at a sub-pixel position over the four nearest pixels
// with bilinear weights, keeping the maximum.
func splatMax(dst []float64, h, w int, x, y, v float64) {
	x0f, y0f := math.Floor(x), math.Floor(y)
	fx, fy := x-x0f, y-y0f
	x0, y0 := int(x0f), int(y0f)
	for _, c := range [4]struct {
		dx, dy int
		wt     float64
	}{{0, 0, (1 - fx) * (1 - fy)}, {1, 0, fx * (1 - fy)}, {0, 1, (1 - fx) * fy}, {1, 1, fx * fy}} {
		xx, yy := x0+c.dx, y0+c.dy
		if xx < 0 || yy < 0 || xx >= w || yy >= h {
			continue
		}
		// A soft line: the weight enters as a square root so that thin
		// lines stay visible between pixel centers.
		dst[yy*w+xx] = max(dst[yy*w+xx], v*math.Sqrt(c.wt))
	}
}

// spatter: a liquid layer N(loc, scale) per pixel, blurred (σ scaled by
// min(h,w)/32), zeroed below the threshold. Water (severities 1–3): the
// layer's Canny edges → Euclidean distance to the nearest edge, truncated
// at 20 (scaled) → 3×3 box blur → histogram equalization → emboss filter →
// 3×3 box blur; liquid·that, normalized to its maximum and scaled by the
// intensity, adds pale turquoise (175, 238, 238)/255. Mud (severities 4–5):
// the mask liquid > threshold blurred with σ = intensity (scaled), zeroed
// below 0.8, mixes in brown (63, 42, 20)/255.
func spatter(sev int, x *raster, rng *rand.Rand) {
	p := spatterParams[sev-1]
	s := x.scale()
	h, w := x.h, x.w
	n := h * w
	liquid := make([]float64, n)
	for i := range liquid {
		liquid[i] = p[0] + p[1]*rng.NormFloat64()
	}
	gaussianPlane(liquid, h, w, p[2]*s, 4, nearest)
	for i, v := range liquid {
		if v < p[3] {
			liquid[i] = 0
		}
	}
	if p[5] == 0 {
		// (liquid·255).astype(uint8); values above 1, rare, are clipped
		// here where numpy's cast would wrap around.
		l8 := make([]float64, n)
		for i, v := range liquid {
			l8[i] = truncLevel(v)
		}
		edges := canny(l8, h, w, 50, 150)
		dist := distanceToEdges(edges, h, w)
		trunc := 20 * s
		for i, v := range dist {
			dist[i] = min(v, trunc)
		}
		tmp := make([]float64, n)
		boxBlur3(dist, tmp, h, w)
		for i, v := range tmp {
			tmp[i] = math.Floor(v) // float32 → uint8 cast
		}
		eq := equalizeHist(tmp)
		emboss := kernel2D{size: 3, k: []float64{-2, -1, 0, -1, 1, 1, 0, 1, 2}}
		correlate2D(eq, tmp, h, w, emboss, reflect101)
		for i, v := range tmp {
			tmp[i] = min(max(math.RoundToEven(v), 0), 255)
		}
		boxBlur3(tmp, dist, h, w)
		var mx float64
		for i := range dist {
			// The original multiplies by the uint8 layer (it reuses the
			// variable); the scale cancels in the normalization below.
			dist[i] = min(max(math.RoundToEven(dist[i]), 0), 255) * l8[i]
			mx = max(mx, dist[i])
		}
		if mx == 0 {
			return
		}
		color := [3]float64{175.0 / 255, 238.0 / 255, 238.0 / 255}
		for ch := 0; ch < 3; ch++ {
			pl := x.plane(ch)
			for i := range pl {
				pl[i] += dist[i] / mx * p[4] * color[ch]
			}
		}
		return
	}
	m := make([]float64, n)
	for i, v := range liquid {
		if v > p[3] {
			m[i] = 1
		}
	}
	gaussianPlane(m, h, w, p[4]*s, 4, nearest)
	color := [3]float64{63.0 / 255, 42.0 / 255, 20.0 / 255}
	for ch := 0; ch < 3; ch++ {
		pl := x.plane(ch)
		for i := range pl {
			mv := m[i]
			if mv < 0.8 {
				continue
			}
			pl[i] = pl[i]*(1-mv) + color[ch]*mv
		}
	}
}

// canny finds edges of an 8-bit plane the way OpenCV's Canny does with a
// 3×3 Sobel aperture and the L1 gradient norm: non-maximum suppression
// along the quantized gradient direction, then hysteresis (pixels above
// high, and pixels above low connected to them). It returns 1 on edges.
func canny(p []float64, h, w int, low, high float64) []bool {
	n := h * w
	gx := make([]float64, n)
	gy := make([]float64, n)
	mag := make([]float64, n)
	at := func(y, x int) float64 { return p[nearest.index(y, h)*w+nearest.index(x, w)] }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			gx[i] = (at(y-1, x+1) + 2*at(y, x+1) + at(y+1, x+1)) - (at(y-1, x-1) + 2*at(y, x-1) + at(y+1, x-1))
			gy[i] = (at(y+1, x-1) + 2*at(y+1, x) + at(y+1, x+1)) - (at(y-1, x-1) + 2*at(y-1, x) + at(y-1, x+1))
			mag[i] = math.Abs(gx[i]) + math.Abs(gy[i])
		}
	}
	m := func(y, x int) float64 {
		if y < 0 || y >= h || x < 0 || x >= w {
			return 0
		}
		return mag[y*w+x]
	}
	const tan22 = 0.41421356237309503 // tan(22.5°)
	// 0: not an edge, 1: weak candidate, 2: strong.
	state := make([]uint8, n)
	var stack []int
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			v := mag[i]
			if v <= low {
				continue
			}
			ax, ay := math.Abs(gx[i]), math.Abs(gy[i])
			var keep bool
			switch {
			case ay < ax*tan22: // horizontal gradient
				keep = v > m(y, x-1) && v >= m(y, x+1)
			case ay > ax/tan22: // vertical gradient
				keep = v > m(y-1, x) && v >= m(y+1, x)
			default:
				sgn := 1
				if (gx[i] < 0) != (gy[i] < 0) {
					sgn = -1
				}
				keep = v > m(y-1, x-sgn) && v > m(y+1, x+sgn)
			}
			if !keep {
				continue
			}
			if v > high {
				state[i] = 2
				stack = append(stack, i)
			} else {
				state[i] = 1
			}
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		y, x := i/w, i%w
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				yy, xx := y+dy, x+dx
				if yy < 0 || yy >= h || xx < 0 || xx >= w {
					continue
				}
				j := yy*w + xx
				if state[j] == 1 {
					state[j] = 2
					stack = append(stack, j)
				}
			}
		}
	}
	edges := make([]bool, n)
	for i, st := range state {
		edges[i] = st == 2
	}
	return edges
}

// distanceToEdges is the exact Euclidean distance from every pixel to the
// nearest edge pixel (Felzenszwalb & Huttenlocher's two-pass transform);
// +Inf everywhere when there is no edge. OpenCV's DIST_L2 with a 5×5 mask
// approximates the same distance.
func distanceToEdges(edges []bool, h, w int) []float64 {
	inf := math.Inf(1)
	f := make([]float64, h*w)
	for i, e := range edges {
		if e {
			f[i] = 0
		} else {
			f[i] = inf
		}
	}
	buf := make([]float64, max(h, w))
	out := make([]float64, max(h, w))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			buf[y] = f[y*w+x]
		}
		edt1D(buf[:h], out[:h])
		for y := 0; y < h; y++ {
			f[y*w+x] = out[y]
		}
	}
	for y := 0; y < h; y++ {
		edt1D(f[y*w:(y+1)*w], out[:w])
		copy(f[y*w:(y+1)*w], out[:w])
	}
	for i, v := range f {
		f[i] = math.Sqrt(v)
	}
	return f
}

// edt1D is the 1-D squared distance transform of sampled function f
// (lower envelope of parabolas).
func edt1D(f, d []float64) {
	n := len(f)
	v := make([]int, n)
	z := make([]float64, n+1)
	k := -1
	for q := 0; q < n; q++ {
		if math.IsInf(f[q], 1) {
			continue
		}
		if k < 0 {
			k = 0
			v[0] = q
			z[0] = math.Inf(-1)
			z[1] = math.Inf(1)
			continue
		}
		inter := func() float64 {
			return ((f[q] + float64(q*q)) - (f[v[k]] + float64(v[k]*v[k]))) / float64(2*q-2*v[k])
		}
		s := inter()
		for s <= z[k] { // z[0] = −Inf stops this before k < 0
			k--
			s = inter()
		}
		k++
		v[k] = q
		z[k] = s
		z[k+1] = math.Inf(1)
	}
	if k < 0 {
		for i := range d {
			d[i] = math.Inf(1)
		}
		return
	}
	j := 0
	for q := 0; q < n; q++ {
		for z[j+1] < float64(q) {
			j++
		}
		dq := float64(q - v[j])
		d[q] = dq*dq + f[v[j]]
	}
}

// equalizeHist is OpenCV's equalizeHist on 8-bit levels (as float64).
func equalizeHist(p []float64) []float64 {
	var hist [256]int
	for _, v := range p {
		hist[int(v)]++
	}
	out := make([]float64, len(p))
	i0 := 0
	for i0 < 255 && hist[i0] == 0 {
		i0++
	}
	total := len(p)
	if hist[i0] == total {
		for i := range out {
			out[i] = float64(i0)
		}
		return out
	}
	scale := 255.0 / float64(total-hist[i0])
	var lut [256]float64
	sum := 0
	for i := i0 + 1; i < 256; i++ {
		sum += hist[i]
		lut[i] = min(max(math.RoundToEven(float64(sum)*scale), 0), 255)
	}
	for i, v := range p {
		out[i] = lut[int(v)]
	}
	return out
}

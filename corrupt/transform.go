package corrupt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// A Transform is a CC-Cert transform distribution S_T (Pautov et al.,
// AAAI 2022; the official code's aug_aug.random_augment): a sequence of
// random operations, each drawing its parameter afresh on every Sample
// and clipping the image to [0,1] after it. The zero Transform is the
// identity.
type Transform struct {
	ops []transformOp
}

// transformOp is one family with its parameters.
type transformOp struct {
	name string
	a, b float64 // a: the parameter; b: the second one (translation, scale)
}

// TransformFamilies lists the families ParseTransform accepts, with the
// default parameter used when a spec names a family without one.
func TransformFamilies() []string {
	return []string{"rotation", "translation", "scale", "brightness", "contrast", "gamma", "blur", "awgn", "corruption"}
}

// The parameters a spec gets when it names a family bare. The paper's
// values are unknown (CSAM-SPEC §4.1); these are mild photometric and
// geometric changes in the range the CC-Cert paper uses.
var transformDefaults = map[string][2]float64{
	"rotation":    {10, 0},    // degrees: angle ~ U(−10°, 10°)
	"translation": {0.1, 0.1}, // fractions of W and H
	"scale":       {0.9, 0.9}, // per axis ~ U(0.9, 1.1)
	"brightness":  {0.2, 0},   // x + U(−0.2, 0.2)
	"contrast":    {0.8, 0},   // x·U(0.8, 1.2)
	"gamma":       {0.8, 0},   // x^U(0.8, 1.25)
	"blur":        {1, 0},     // Gaussian σ ~ U(0, 1)
	"awgn":        {0.1, 0},   // x + 0.1·N(0, I)
	"corruption":  {5, 0},     // a benchmark corruption at severity 1..5
}

var transformAliases = map[string]string{
	"rotate": "rotation", "translate": "translation", "shift": "translation",
	"gaussian_noise": "awgn", "noise": "awgn", "gaussian": "awgn",
}

// ParseTransform reads a transform spec: operations separated by commas,
// each "family" (default parameter) or "family:p" or, for translation and
// scale, "family:px/py" (one value serves both axes). A dash joins bare
// families, as the CC-Cert code names compositions: "rotation-brightness"
// is "rotation,brightness". Operations apply in the order written.
//
//	rotation:10           angle ~ U(−10°, 10°), bilinear, zero padding
//	translation:0.1/0.05  shift ~ U(±0.1·W), U(±0.05·H), bilinear, zero padding
//	scale:0.9             per-axis factor ~ U(1−|1−s|, 1+|1−s|) about the center
//	brightness:0.2        x + b, b ~ U(−0.2, 0.2)
//	contrast:0.8          x·c, c ~ U(1−|1−c₀|, 1+|1−c₀|)
//	gamma:0.8             x^g, g ~ U(min(γ, 1/γ), max(γ, 1/γ))
//	blur:1                Gaussian blur, σ ~ U(0, 1)
//	awgn:0.1              x + 0.1·N(0, I)
//	corruption:3          one of the 15 benchmark corruptions, uniformly, at a
//	                      severity uniform in 1..3 (CSAM-SPEC §4.1's option for
//	                      CIFAR-10-C; needs 1 or 3 channels, output on 8-bit levels)
func ParseTransform(spec string) (Transform, error) {
	var t Transform
	if strings.TrimSpace(spec) == "" {
		return t, fmt.Errorf("corrupt: empty transform spec; want e.g. %q", "rotation:10,brightness:0.2")
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		name, params, hasParams := strings.Cut(item, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if item == "" {
			return Transform{}, fmt.Errorf("corrupt: transform %q: empty operation", spec)
		}
		if strings.Contains(name, "-") {
			if hasParams {
				return Transform{}, fmt.Errorf("corrupt: transform %q: %q joins families with '-' and so cannot take parameters; write %q",
					spec, item, strings.ReplaceAll(name, "-", ",")+":...")
			}
			for _, part := range strings.Split(name, "-") {
				op, err := newTransformOp(spec, part, "", false)
				if err != nil {
					return Transform{}, err
				}
				t.ops = append(t.ops, op)
			}
			continue
		}
		op, err := newTransformOp(spec, name, params, hasParams)
		if err != nil {
			return Transform{}, err
		}
		t.ops = append(t.ops, op)
	}
	return t, nil
}

func newTransformOp(spec, name, params string, hasParams bool) (transformOp, error) {
	if a, ok := transformAliases[name]; ok {
		name = a
	}
	def, ok := transformDefaults[name]
	if !ok {
		return transformOp{}, fmt.Errorf("corrupt: transform %q: unknown family %q (known: %s)",
			spec, name, strings.Join(TransformFamilies(), ", "))
	}
	op := transformOp{name: name, a: def[0], b: def[1]}
	if !hasParams {
		return op, nil
	}
	two := name == "translation" || name == "scale"
	fields := strings.Split(params, "/")
	if len(fields) > 2 || (len(fields) == 2 && !two) {
		return transformOp{}, fmt.Errorf("corrupt: transform %q: %s takes %s, got %q", spec, name,
			map[bool]string{true: "one or two values (a or a/b)", false: "one value"}[two], params)
	}
	vals := make([]float64, len(fields))
	for i, f := range fields {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return transformOp{}, fmt.Errorf("corrupt: transform %q: %s parameter %q is not a number", spec, name, f)
		}
		vals[i] = v
	}
	op.a = vals[0]
	op.b = vals[len(vals)-1]
	if two && len(vals) == 1 {
		op.b = op.a
	}
	if err := op.check(); err != nil {
		return transformOp{}, fmt.Errorf("corrupt: transform %q: %w", spec, err)
	}
	return op, nil
}

func (op transformOp) check() error {
	switch op.name {
	case "corruption":
		if op.a != math.Trunc(op.a) || op.a < 1 || op.a > MaxSeverity {
			return fmt.Errorf("corruption severity %g must be an integer in 1..%d", op.a, MaxSeverity)
		}
	case "gamma":
		if op.a <= 0 {
			return fmt.Errorf("gamma %g must be > 0", op.a)
		}
	case "scale":
		if op.a <= 0 || op.b <= 0 || op.a >= 2 || op.b >= 2 {
			return fmt.Errorf("scale %g/%g must lie in (0, 2) so that factors stay positive", op.a, op.b)
		}
	case "contrast":
		if op.a <= 0 || op.a >= 2 {
			return fmt.Errorf("contrast %g must lie in (0, 2) so that factors stay positive", op.a)
		}
	default:
		if op.a < 0 || op.b < 0 {
			return fmt.Errorf("%s parameters must be ≥ 0, got %g/%g", op.name, op.a, op.b)
		}
	}
	return nil
}

// String writes the transform back in ParseTransform's syntax.
func (t Transform) String() string {
	parts := make([]string, len(t.ops))
	for i, op := range t.ops {
		v := strconv.FormatFloat(op.a, 'g', -1, 64)
		if op.name == "translation" || op.name == "scale" {
			v += "/" + strconv.FormatFloat(op.b, 'g', -1, 64)
		}
		parts[i] = op.name + ":" + v
	}
	return strings.Join(parts, ",")
}

// Sample draws one random transformation and applies it to src (CHW,
// c·h·w values in [0,1]), writing dst (which may be src). Every operation
// clips to [0,1]; no 8-bit quantization happens here.
func (t Transform) Sample(rng *rand.Rand, src []float32, c, h, w int, dst []float32) error {
	if err := t.checkShape(c, h, w); err != nil {
		return err
	}
	if err := checkTransformImage(src, c, h, w, dst); err != nil {
		return err
	}
	if rng == nil {
		return fmt.Errorf("corrupt: transform %q: nil random source", t.String())
	}
	t.sample(rng, src, c, h, w, dst)
	return nil
}

func (t Transform) checkShape(c, h, w int) error {
	if c < 1 || h < 1 || w < 1 {
		return fmt.Errorf("corrupt: transform %q: image shape %d×%d×%d must be positive", t.String(), c, h, w)
	}
	for _, op := range t.ops {
		if op.name == "corruption" && (c != 1 && c != 3 || h < 2 || w < 2) {
			return fmt.Errorf("corrupt: transform %q: corruptions need 1 or 3 channels and at least 2×2 pixels, image is %d×%d×%d", t.String(), c, h, w)
		}
	}
	return nil
}

func checkTransformImage(src []float32, c, h, w int, dst []float32) error {
	if n := c * h * w; len(src) != n || len(dst) != n {
		return fmt.Errorf("corrupt: transform: buffers hold %d (src) and %d (dst) values, want c·h·w = %d", len(src), len(dst), n)
	}
	return nil
}

// Sampler returns the function the CC-Cert code calls per sample,
// func(rng, x, dst), for images of shape c×h×w. The shape is checked here
// once; the returned function panics if later handed buffers of another
// length, which is a programming error.
func (t Transform) Sampler(c, h, w int) (func(rng *rand.Rand, x, dst []float32), error) {
	n := c * h * w
	if err := t.checkShape(c, h, w); err != nil {
		return nil, err
	}
	return func(rng *rand.Rand, x, dst []float32) {
		if len(x) != n || len(dst) != n {
			panic(fmt.Sprintf("corrupt: transform sampler for %d×%d×%d called with %d and %d values", c, h, w, len(x), len(dst)))
		}
		t.sample(rng, x, c, h, w, dst)
	}, nil
}

func (t Transform) sample(rng *rand.Rand, src []float32, c, h, w int, dst []float32) {
	x := make([]float64, len(src))
	for i, v := range src {
		x[i] = clip01(float64(v))
	}
	tmp := make([]float64, len(src))
	for _, op := range t.ops {
		op.apply(rng, x, tmp, c, h, w)
		for i, v := range x {
			x[i] = clip01(v)
		}
	}
	for i, v := range x {
		dst[i] = float32(v)
	}
}

// uniformSym draws U(1−|1−v|, 1+|1−v|).
func uniformSym(rng *rand.Rand, v float64) float64 {
	d := math.Abs(1 - v)
	return 1 - d + 2*d*rng.Float64()
}

func (op transformOp) apply(rng *rand.Rand, x, tmp []float64, c, h, w int) {
	n := h * w
	switch op.name {
	case "brightness":
		b := op.a * (2*rng.Float64() - 1)
		for i := range x {
			x[i] += b
		}
	case "contrast":
		f := uniformSym(rng, op.a)
		for i := range x {
			x[i] *= f
		}
	case "gamma":
		lo, hi := min(op.a, 1/op.a), max(op.a, 1/op.a)
		g := lo + (hi-lo)*rng.Float64()
		for i, v := range x {
			x[i] = math.Pow(v, g)
		}
	case "corruption":
		bench := benchmarkEntries()
		k := bench[rng.IntN(len(bench))]
		sev := 1 + rng.IntN(int(op.a))
		r := &raster{c: c, h: h, w: w, p: x}
		out := corruptRaster(k, sev, r, rng)
		copy(x, out.p)
	case "awgn":
		for i := range x {
			x[i] += op.a * rng.NormFloat64()
		}
	case "blur":
		sigma := op.a * rng.Float64()
		if sigma < 1e-3 { // imgaug skips such small σ
			return
		}
		for ch := 0; ch < c; ch++ {
			gaussianPlane(x[ch*n:(ch+1)*n], h, w, sigma, 4, reflect101)
		}
	case "rotation", "translation", "scale":
		// Output pixel (u, v) samples the input at A·(u−cx, v−cy) + (cx, cy) − t.
		cx, cy := float64(w-1)/2, float64(h-1)/2
		a00, a01, a10, a11, tx, ty := 1.0, 0.0, 0.0, 1.0, 0.0, 0.0
		switch op.name {
		case "rotation":
			th := op.a * (2*rng.Float64() - 1) * math.Pi / 180
			cs, sn := math.Cos(th), math.Sin(th)
			a00, a01, a10, a11 = cs, sn, -sn, cs
		case "translation":
			tx = op.a * float64(w) * (2*rng.Float64() - 1)
			ty = op.b * float64(h) * (2*rng.Float64() - 1)
		case "scale":
			sx, sy := uniformSym(rng, op.a), uniformSym(rng, op.b)
			a00, a11 = 1/sx, 1/sy
		}
		copy(tmp, x)
		for ch := 0; ch < c; ch++ {
			in, out := tmp[ch*n:(ch+1)*n], x[ch*n:(ch+1)*n]
			for v := 0; v < h; v++ {
				for u := 0; u < w; u++ {
					du, dv := float64(u)-cx-tx, float64(v)-cy-ty
					sx := a00*du + a01*dv + cx
					sy := a10*du + a11*dv + cy
					out[v*w+u] = bilinearZero(in, h, w, sy, sx)
				}
			}
		}
	}
}

// uniformDraws is how many uniform draws one application of a family
// makes (rng.Float64 calls, in order); 0 for families that draw
// otherwise (awgn: normals; corruption: a choice of corruption), which
// have no parameter grid.
func (op transformOp) uniformDraws() int {
	switch op.name {
	case "brightness", "contrast", "gamma", "blur", "rotation":
		return 1
	case "translation", "scale":
		return 2
	}
	return 0
}

// GridSize is the number of points of the deterministic parameter grid
// with points values per drawn parameter (the cartesian product over the
// transform's parameters), as the official CC-Cert script's
// empirical_accuracy checks every transform of such a grid. Families
// without a parameter grid (awgn, corruption) are an error.
func (t Transform) GridSize(points int) (int, error) {
	if points < 2 {
		return 0, fmt.Errorf("corrupt: transform grid: %d points per parameter, want at least 2", points)
	}
	n := 1
	for _, op := range t.ops {
		d := op.uniformDraws()
		if d == 0 {
			return 0, fmt.Errorf("corrupt: transform %q: %s draws no bounded parameter, so it has no grid", t.String(), op.name)
		}
		for range d {
			if n > 1<<20/points {
				return 0, fmt.Errorf("corrupt: transform %q: a grid of %d points per parameter is too large", t.String(), points)
			}
			n *= points
		}
	}
	return n, nil
}

// GridSampler returns a function applying t at point i (0 ≤ i < GridSize)
// of the grid: each drawn parameter takes the values of linspace over its
// range, endpoints included (the last parameter varies fastest).
func (t Transform) GridSampler(points, c, h, w int) (func(i int, x, dst []float32), error) {
	size, err := t.GridSize(points)
	if err != nil {
		return nil, err
	}
	if err := t.checkShape(c, h, w); err != nil {
		return nil, err
	}
	draws := 0
	for _, op := range t.ops {
		draws += op.uniformDraws()
	}
	n := c * h * w
	return func(i int, x, dst []float32) {
		if i < 0 || i >= size || len(x) != n || len(dst) != n {
			panic(fmt.Sprintf("corrupt: grid point %d of %d on %d and %d values (want %d)", i, size, len(x), len(dst), n))
		}
		src := &gridSource{u: make([]uint64, draws)}
		for d := draws - 1; d >= 0; d-- {
			k := i % points
			i /= points
			// Float64 returns (u<<11>>11)/2^53: k/(points−1), the upper
			// end as the largest value below 1.
			src.u[d] = min(uint64(float64(k)/float64(points-1)*(1<<53)), 1<<53-1)
		}
		t.sample(rand.New(src), x, c, h, w, dst)
	}, nil
}

// gridSource replays a fixed sequence of draws.
type gridSource struct {
	u []uint64
	i int
}

func (s *gridSource) Uint64() uint64 {
	v := s.u[s.i%len(s.u)]
	s.i++
	return v
}

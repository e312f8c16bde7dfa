package corrupt

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
)

// MaxSeverity is the highest severity; severities run from 1 to MaxSeverity.
const MaxSeverity = 5

// Family groups corruptions as Hendrycks & Dietterich (2019) do.
type Family string

// The four corruption families.
const (
	Noise   Family = "noise"
	Blur    Family = "blur"
	Weather Family = "weather"
	Digital Family = "digital"
)

// Info describes one corruption.
type Info struct {
	Name   string // snake_case name as in make_cifar_c.py, e.g. "gaussian_noise"
	Family Family
	// Extra marks the 4 held-out corruptions (speckle_noise, gaussian_blur,
	// spatter, saturate) that are not part of the 15-corruption benchmark.
	Extra bool
	// Procedural marks a corruption whose original uses assets that are not
	// available here and are replaced by procedurally generated ones
	// (frost: photographs of frost). Reports that compare with published
	// CIFAR-10-C numbers can leave these out of their means and say so.
	Procedural bool
	// Approximate marks corruptions that depend on a library whose output
	// is reproduced in shape but not bit for bit (ImageMagick's motion blur,
	// OpenCV's Canny and distance transform, Go's JPEG codec for PIL's).
	Approximate bool
}

// Corruption is one corruption of the benchmark.
type Corruption interface {
	Name() string
	Family() Family
	// Apply corrupts img (CHW, values in [0,1]) at severity 1..5 into dst,
	// which may be img itself.
	Apply(severity int, img []float32, c, h, w int, rng *rand.Rand, dst []float32) error
}

// corruption is the registry entry behind Corruption.
type corruption struct {
	info Info
	// rgb: the operation needs three channels; a one-channel image is
	// expanded to gray RGB and collapsed back with the BT.601 luma weights.
	rgb bool
	fn  func(sev int, x *raster, rng *rand.Rand)
}

func (k *corruption) Name() string   { return k.info.Name }
func (k *corruption) Family() Family { return k.info.Family }
func (k *corruption) Info() Info     { return k.info }

func (k *corruption) Apply(severity int, img []float32, c, h, w int, rng *rand.Rand, dst []float32) error {
	return apply(k, severity, img, c, h, w, rng, dst)
}

var registry = []*corruption{
	{info: Info{Name: "gaussian_noise", Family: Noise}, fn: gaussianNoise},
	{info: Info{Name: "shot_noise", Family: Noise}, fn: shotNoise},
	{info: Info{Name: "impulse_noise", Family: Noise}, fn: impulseNoise},
	{info: Info{Name: "defocus_blur", Family: Blur}, fn: defocusBlur},
	{info: Info{Name: "glass_blur", Family: Blur}, fn: glassBlur},
	{info: Info{Name: "motion_blur", Family: Blur, Approximate: true}, fn: motionBlur},
	{info: Info{Name: "zoom_blur", Family: Blur}, fn: zoomBlur},
	{info: Info{Name: "snow", Family: Weather, Approximate: true}, rgb: true, fn: snow},
	{info: Info{Name: "frost", Family: Weather, Procedural: true}, rgb: true, fn: frost},
	{info: Info{Name: "fog", Family: Weather}, fn: fog},
	{info: Info{Name: "brightness", Family: Weather}, rgb: true, fn: brightness},
	{info: Info{Name: "contrast", Family: Digital}, fn: contrast},
	{info: Info{Name: "elastic_transform", Family: Digital}, fn: elasticTransform},
	{info: Info{Name: "pixelate", Family: Digital}, fn: pixelate},
	{info: Info{Name: "jpeg_compression", Family: Digital, Approximate: true}, fn: jpegCompression},
	{info: Info{Name: "speckle_noise", Family: Noise, Extra: true}, fn: speckleNoise},
	{info: Info{Name: "gaussian_blur", Family: Blur, Extra: true}, fn: gaussianBlur},
	{info: Info{Name: "spatter", Family: Weather, Extra: true, Approximate: true}, rgb: true, fn: spatter},
	{info: Info{Name: "saturate", Family: Digital, Extra: true}, rgb: true, fn: saturate},
}

// aliases are the other spellings accepted by Lookup (the released file
// names and the display names of make_cifar_c.py, normalized).
var aliases = map[string]string{
	"elastic": "elastic_transform",
	"jpeg":    "jpeg_compression",
}

// Names returns all 19 corruptions: the 15 of the benchmark in the order of
// make_cifar_c.py, then the 4 extra ones.
func Names() []string {
	out := make([]string, len(registry))
	for i, k := range registry {
		out[i] = k.info.Name
	}
	return out
}

// Benchmark returns the 15 benchmark corruptions in the order of
// make_cifar_c.py.
func Benchmark() []string {
	var out []string
	for _, k := range registry {
		if !k.info.Extra {
			out = append(out, k.info.Name)
		}
	}
	return out
}

// Extra returns the 4 held-out corruptions.
func Extra() []string {
	var out []string
	for _, k := range registry {
		if k.info.Extra {
			out = append(out, k.info.Name)
		}
	}
	return out
}

// Infos returns the Info of every corruption, in the order of Names.
func Infos() []Info {
	out := make([]Info, len(registry))
	for i, k := range registry {
		out[i] = k.info
	}
	return out
}

// Lookup finds a corruption by name. Names are case-insensitive; spaces and
// dashes count as underscores, so "Gaussian Noise" and "gaussian-noise"
// work, and "elastic" and "jpeg" are accepted for the two corruptions whose
// display names are shorter.
func Lookup(name string) (Corruption, error) {
	k, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Describe returns the Info of the named corruption.
func Describe(name string) (Info, error) {
	k, err := lookup(name)
	if err != nil {
		return Info{}, err
	}
	return k.info, nil
}

func lookup(name string) (*corruption, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.NewReplacer(" ", "_", "-", "_").Replace(n)
	if a, ok := aliases[n]; ok {
		n = a
	}
	for _, k := range registry {
		if k.info.Name == n {
			return k, nil
		}
	}
	return nil, fmt.Errorf("corrupt: unknown corruption %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Apply corrupts img, a CHW float32 image with c = 1 or 3 channels and
// values in [0,1], with the named corruption at severity 1..5, writing the
// result to dst (len c·h·w; dst may be img). The input is first rounded to
// 8-bit levels, as the original pipeline starts from uint8 images; the
// output is clipped to [0,1] and truncated to 8-bit levels k/255, as
// make_cifar_c.py's final np.uint8 cast does. All randomness comes from
// rng, so the same seed gives the same output.
func Apply(name string, severity int, img []float32, c, h, w int, rng *rand.Rand, dst []float32) error {
	k, err := lookup(name)
	if err != nil {
		return err
	}
	return apply(k, severity, img, c, h, w, rng, dst)
}

func checkImage(what string, img []float32, c, h, w int, dst []float32) error {
	if c != 1 && c != 3 {
		return fmt.Errorf("corrupt: %s: image has %d channels, want 1 or 3", what, c)
	}
	if h < 2 || w < 2 {
		return fmt.Errorf("corrupt: %s: image is %d×%d, want at least 2×2", what, h, w)
	}
	if n := c * h * w; len(img) != n || len(dst) != n {
		return fmt.Errorf("corrupt: %s: buffers hold %d (src) and %d (dst) values, want c·h·w = %d·%d·%d = %d",
			what, len(img), len(dst), c, h, w, n)
	}
	return nil
}

func apply(k *corruption, severity int, img []float32, c, h, w int, rng *rand.Rand, dst []float32) error {
	if severity < 1 || severity > MaxSeverity {
		return fmt.Errorf("corrupt: %s: severity %d out of range, want 1..%d", k.info.Name, severity, MaxSeverity)
	}
	if err := checkImage(k.info.Name, img, c, h, w, dst); err != nil {
		return err
	}
	if rng == nil {
		return fmt.Errorf("corrupt: %s: nil random source; pass rand.New(rand.NewPCG(seed, ...))", k.info.Name)
	}
	x := newRaster(c, h, w)
	for i, v := range img {
		x.p[i] = float64(v)
	}
	x = corruptRaster(k, severity, x, rng)
	for i, v := range x.p {
		dst[i] = float32(v)
	}
	return nil
}

// corruptRaster runs corruption k on a checked image x (values in [0,1],
// modified in place) and returns the result on 8-bit levels k/255.
func corruptRaster(k *corruption, severity int, x *raster, rng *rand.Rand) *raster {
	for i, v := range x.p {
		x.p[i] = level(v) / 255
	}
	c := x.c
	if k.rgb && c == 1 {
		x = x.toRGB()
	}
	k.fn(severity, x, rng)
	if k.rgb && c == 1 {
		x = x.toGray()
	}
	for i, v := range x.p {
		x.p[i] = truncLevel(v) / 255
	}
	return x
}

// benchmarkEntries are the registry entries of the 15 benchmark corruptions.
func benchmarkEntries() []*corruption {
	var out []*corruption
	for _, k := range registry {
		if !k.info.Extra {
			out = append(out, k)
		}
	}
	return out
}

// level rounds v in [0,1] (clipped) to the nearest of the 256 levels 0..255.
func level(v float64) float64 {
	return math.Floor(clip01(v)*255 + 0.5)
}

// truncLevel clips v to [0,1] and truncates to a level 0..255 as numpy's
// uint8 cast of a float array does. The 1e-6 (a millionth of a level)
// absorbs rounding in float64 so that an exact level k/255 maps back to k.
func truncLevel(v float64) float64 {
	return math.Floor(clip01(v)*255 + 1e-6)
}

func clip01(v float64) float64 {
	if v < 0 || v != v {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// raster is a CHW float64 image used inside the package.
type raster struct {
	c, h, w int
	p       []float64
}

func newRaster(c, h, w int) *raster {
	return &raster{c: c, h: h, w: w, p: make([]float64, c*h*w)}
}

func (x *raster) plane(ch int) []float64 {
	n := x.h * x.w
	return x.p[ch*n : (ch+1)*n]
}

func (x *raster) clone() *raster {
	y := &raster{c: x.c, h: x.h, w: x.w, p: make([]float64, len(x.p))}
	copy(y.p, x.p)
	return y
}

func (x *raster) toRGB() *raster {
	y := newRaster(3, x.h, x.w)
	for ch := 0; ch < 3; ch++ {
		copy(y.plane(ch), x.p)
	}
	return y
}

// toGray collapses RGB with the ITU-R BT.601 luma weights (those of
// OpenCV's RGB2GRAY).
func (x *raster) toGray() *raster {
	y := newRaster(1, x.h, x.w)
	r, g, b := x.plane(0), x.plane(1), x.plane(2)
	for i := range y.p {
		y.p[i] = gray(r[i], g[i], b[i])
	}
	return y
}

func gray(r, g, b float64) float64 { return 0.299*r + 0.587*g + 0.114*b }

// clipAll clips every value to [0,1].
func (x *raster) clipAll() {
	for i, v := range x.p {
		x.p[i] = clip01(v)
	}
}

// scale is the factor by which parameters given in pixels for 32×32
// images grow for an image of this size: min(h, w)/32.
func (x *raster) scale() float64 {
	return float64(min(x.h, x.w)) / 32
}

// NewRNG returns the random source for one image of a corruption sweep:
// a PCG seeded from the run's seed and a hash of (corruption name,
// severity, image index). Every image gets its own stream, so results do
// not depend on the order in which images are processed, on batching or on
// sharding.
func NewRNG(seed uint64, name string, severity, index int) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%d", name, severity, index)
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

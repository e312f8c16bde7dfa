package corrupt

import (
	"math"
	"math/rand/v2"
	"os"
	goreflect "reflect"
	"slices"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
)

// lsb is one 8-bit level.
const lsb = 1.0 / 255

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// synthImage is a natural-looking test image: a smooth diamond-square field
// per channel, a bright disc and a dark bar, on 8-bit levels.
func synthImage(seed uint64, c, h, w int) []float32 {
	rng := newRNG(seed)
	img := make([]float32, c*h*w)
	ms := nextPow2(max(h, w))
	cy, cx, r := float64(h)*(0.3+0.4*rng.Float64()), float64(w)*(0.3+0.4*rng.Float64()), float64(min(h, w))*0.2
	for ch := 0; ch < c; ch++ {
		pf := plasmaFractal(ms, 2, rng)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := 0.15 + 0.6*pf[y*ms+x]
				if (float64(y)-cy)*(float64(y)-cy)+(float64(x)-cx)*(float64(x)-cx) < r*r {
					v = 0.85 - 0.1*float64(ch)
				}
				if x > w/5 && x < w/5+w/10 {
					v = 0.08
				}
				img[ch*h*w+y*w+x] = float32(math.Round(v*255) / 255)
			}
		}
	}
	return img
}

func constImage(v float64, c, h, w int) []float32 {
	img := make([]float32, c*h*w)
	for i := range img {
		img[i] = float32(v)
	}
	return img
}

func applyT(t *testing.T, name string, sev int, img []float32, c, h, w int, seed uint64) []float32 {
	t.Helper()
	dst := make([]float32, len(img))
	if err := Apply(name, sev, img, c, h, w, newRNG(seed), dst); err != nil {
		t.Fatalf("Apply(%s, %d) on %d×%d×%d: %v", name, sev, c, h, w, err)
	}
	return dst
}

func meanStd(v []float32) (mean, std float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		d := float64(x) - mean
		std += d * d
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

func meanAbsDiff(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}

func TestNames(t *testing.T) {
	want := []string{"gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
		"motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
		"elastic_transform", "pixelate", "jpeg_compression"}
	if got := Benchmark(); !slices.Equal(got, want) {
		t.Errorf("Benchmark() = %v, want %v", got, want)
	}
	wantExtra := []string{"speckle_noise", "gaussian_blur", "spatter", "saturate"}
	if got := Extra(); !slices.Equal(got, wantExtra) {
		t.Errorf("Extra() = %v, want %v", got, wantExtra)
	}
	if got := Names(); !slices.Equal(got, append(want, wantExtra...)) {
		t.Errorf("Names() = %v", got)
	}
	families := map[Family]int{}
	for _, info := range Infos() {
		if !info.Extra {
			families[info.Family]++
		}
		if info.Procedural != (info.Name == "frost") {
			t.Errorf("%s: Procedural = %v", info.Name, info.Procedural)
		}
	}
	// Hendrycks & Dietterich: 3 noise, 4 blur, 4 weather, 4 digital.
	if families[Noise] != 3 || families[Blur] != 4 || families[Weather] != 4 || families[Digital] != 4 {
		t.Errorf("benchmark families = %v, want noise 3, blur 4, weather 4, digital 4", families)
	}
	for in, want := range map[string]string{"Gaussian Noise": "gaussian_noise", "elastic": "elastic_transform",
		"JPEG": "jpeg_compression", "motion-blur": "motion_blur"} {
		k, err := Lookup(in)
		if err != nil || k.Name() != want {
			t.Errorf("Lookup(%q) = %v, %v, want %s", in, k, err, want)
		}
	}
}

func TestApplyBadInput(t *testing.T) {
	img := constImage(0.5, 3, 8, 8)
	dst := make([]float32, len(img))
	rng := newRNG(1)
	for _, tc := range []struct {
		name    string
		sev     int
		img     []float32
		c, h, w int
		dst     []float32
		rng     *rand.Rand
		want    string
	}{
		{"nope", 1, img, 3, 8, 8, dst, rng, `unknown corruption "nope"`},
		{"fog", 0, img, 3, 8, 8, dst, rng, "severity 0 out of range"},
		{"fog", 6, img, 3, 8, 8, dst, rng, "severity 6 out of range"},
		{"fog", 1, img[:10], 3, 8, 8, dst, rng, "buffers hold 10 (src)"},
		{"fog", 1, img, 3, 8, 8, dst[:5], rng, "and 5 (dst)"},
		{"fog", 1, img, 3, 8, 9, dst, rng, "want c·h·w"},
		{"fog", 1, make([]float32, 2*64), 2, 8, 8, make([]float32, 2*64), rng, "2 channels"},
		{"fog", 1, make([]float32, 3), 3, 1, 1, make([]float32, 3), rng, "at least 2×2"},
		{"fog", 1, img, 3, 8, 8, dst, nil, "nil random source"},
	} {
		err := Apply(tc.name, tc.sev, tc.img, tc.c, tc.h, tc.w, tc.rng, tc.dst)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "corrupt: ") {
			t.Errorf("Apply(%q, %d, len %d, %d×%d×%d, len %d) = %v, want error containing %q",
				tc.name, tc.sev, len(tc.img), tc.c, tc.h, tc.w, len(tc.dst), err, tc.want)
		}
	}
}

// TestAllSizesRangeDeterminism: every corruption at every severity works on
// several sizes and channel counts, stays in [0,1] on 8-bit levels, is
// deterministic for a seed, and accepts dst == img.
func TestAllSizesRangeDeterminism(t *testing.T) {
	sizes := [][3]int{{3, 32, 32}, {3, 64, 64}, {3, 96, 96}, {3, 40, 56}, {1, 32, 32}, {1, 28, 28},
		{3, 2, 2}, {1, 3, 5}, {3, 7, 7}, {3, 17, 9}}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, name := range Names() {
		for _, sz := range sizes {
			c, h, w := sz[0], sz[1], sz[2]
			img := synthImage(7, c, h, w)
			for sev := 1; sev <= MaxSeverity; sev++ {
				a := applyT(t, name, sev, img, c, h, w, 42)
				for i, v := range a {
					if !(v >= 0 && v <= 1) || math.Abs(float64(v)*255-math.Round(float64(v)*255)) > 1e-3 {
						t.Fatalf("%s sev %d %d×%d×%d: value %d = %v not an 8-bit level in [0,1]", name, sev, c, h, w, i, v)
					}
				}
				inPlace := slices.Clone(img)
				if err := Apply(name, sev, inPlace, c, h, w, newRNG(42), inPlace); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(a, inPlace) {
					t.Errorf("%s sev %d %d×%d×%d: same seed (in place) gave a different image", name, sev, c, h, w)
				}
			}
		}
	}
}

// damage is the mean absolute difference to the clean image, averaged over
// images and seeds; the seed does not depend on the severity, so random
// choices such as the motion-blur angle are shared across severities.
func damage(t *testing.T, name string, imgs [][]float32, c, h, w int) [MaxSeverity]float64 {
	t.Helper()
	var d [MaxSeverity]float64
	for sev := 1; sev <= MaxSeverity; sev++ {
		for i, img := range imgs {
			for seed := uint64(0); seed < 3; seed++ {
				d[sev-1] += meanAbsDiff(applyT(t, name, sev, img, c, h, w, seed*100+uint64(i)), img)
			}
		}
	}
	return d
}

// increasing lists, per corruption, the chains of severities along which the
// damage must strictly increase. Most corruptions have one chain 1..5. The
// exceptions follow from make_cifar_c.py's parameter table:
//   - glass_blur: σ = 0.05, 0.25, 0.4, 0.25, 0.4 with 1, 1, 1, 2, 2
//     iterations. More iterations do more damage at equal σ (2 → 4, 3 → 5,
//     and 1 → 4), but a larger σ also smooths the jitter away, so 1, 2, 3
//     come out nearly equal and 5 below 4 (measured on CIFAR-10: 0.041,
//     0.042, 0.040, 0.066, 0.063).
//   - frost: the image weight falls (1, 1, 0.9, 0.85, 0.75) while the frost
//     weight rises, so the mean difference partly cancels; frost is checked
//     by its weights instead (TestFrostWeights). Only 1 → 2 is asserted.
//   - elastic_transform: the affine jitter falls (2.56 → 0.96 px) while the
//     elastic field grows; the pixel difference falls. Checked by
//     TestElasticAffineThenField instead.
//   - motion_blur: severities 3 (radius 6, σ 2) and 4 (radius 8, σ 2) have
//     the same kernel up to taps of weight exp(−13²/8) ≈ 7e-10, so they
//     differ only by the random angle (TestMotionKernel checks this).
//   - spatter: water (1–3) then mud (4–5): monotone within each mode.
//   - saturate: S·0.3, S·0.1 (desaturating), then S·1.5, S·2+0.1,
//     S·2.5+0.2 (saturating): monotone within each direction.
var increasing = map[string][][]int{
	"glass_blur":        {{2, 4}, {3, 5}, {1, 4}},
	"frost":             {{1, 2}},
	"elastic_transform": {},
	"spatter":           {{1, 2, 3}, {4, 5}},
	"motion_blur":       {{1, 2, 3, 5}, {4, 5}},
	"saturate":          {{1, 2}, {3, 4, 5}},
}

func checkIncreasing(t *testing.T, label, name string, d [MaxSeverity]float64) {
	t.Helper()
	chains, ok := increasing[name]
	if !ok {
		chains = [][]int{{1, 2, 3, 4, 5}}
	}
	for _, ch := range chains {
		for i := 1; i < len(ch); i++ {
			if !(d[ch[i]-1] > d[ch[i-1]-1]) {
				t.Errorf("%s %s: damage at severity %d = %.5f, not above severity %d = %.5f (all: %.4f)",
					label, name, ch[i], d[ch[i]-1], ch[i-1], d[ch[i-1]-1], d)
			}
		}
	}
}

func TestSeverityIncreasesDamage(t *testing.T) {
	var imgs [][]float32
	for s := uint64(1); s <= 3; s++ {
		imgs = append(imgs, synthImage(s, 3, 32, 32))
	}
	for _, name := range Names() {
		checkIncreasing(t, "synthetic", name, damage(t, name, imgs, 3, 32, 32))
	}
}

// TestSeverityIncreasesDamageCIFAR repeats the check on real CIFAR-10 test
// images (lossless ones from ../shared).
func TestSeverityIncreasesDamageCIFAR(t *testing.T) {
	path := testenv.SharedDir(t, "data", "cifar10", "test_249.bin")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const rec = 1 + 3*1024
	var imgs [][]float32
	for i := 0; i < 8; i++ {
		img := make([]float32, 3*1024)
		for j := range img {
			img[j] = float32(b[i*rec+1+j]) / 255
		}
		imgs = append(imgs, img)
	}
	for _, name := range Names() {
		checkIncreasing(t, "CIFAR-10", name, damage(t, name, imgs, 3, 32, 32))
	}
}

func TestSeedsDiffer(t *testing.T) {
	img := synthImage(3, 3, 32, 32)
	deterministic := map[string]bool{"defocus_blur": true, "zoom_blur": true, "brightness": true, "contrast": true,
		"pixelate": true, "jpeg_compression": true, "gaussian_blur": true, "saturate": true}
	for _, name := range Names() {
		a := applyT(t, name, 3, img, 3, 32, 32, 1)
		b := applyT(t, name, 3, img, 3, 32, 32, 2)
		if same := slices.Equal(a, b); same != deterministic[name] {
			t.Errorf("%s: seeds 1 and 2 give equal images = %v, want %v", name, same, deterministic[name])
		}
	}
}

// mid is the mid-grey level 128/255, far from clipping for every noise.
const mid = 128.0 / 255

// quantVar is the variance that truncation to 8 bits adds (uniform over one
// level).
const quantVar = lsb * lsb / 12

func TestGaussianNoiseStd(t *testing.T) {
	img := constImage(mid, 3, 64, 64)
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "gaussian_noise", sev, img, 3, 64, 64, uint64(sev))
		m, s := meanStd(out)
		got := math.Sqrt(s*s - quantVar)
		want := specGaussianNoiseSigma[sev-1]
		// 12288 samples: the std estimate's standard error is σ/√(2N) ≈ 0.6%;
		// 3% is five standard errors.
		if math.Abs(got-want) > 0.03*want {
			t.Errorf("gaussian_noise sev %d: std = %.5f, want σ = %.3f", sev, got, want)
		}
		// Truncation lowers the mean by half a level.
		if math.Abs(m-(mid-0.5*lsb)) > 4*want/math.Sqrt(float64(len(out)))+0.1*lsb {
			t.Errorf("gaussian_noise sev %d: mean = %.5f, want %.5f", sev, m, mid-0.5*lsb)
		}
	}
}

func TestShotNoiseVariance(t *testing.T) {
	img := constImage(mid, 3, 64, 64)
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "shot_noise", sev, img, 3, 64, 64, uint64(sev))
		m, s := meanStd(out)
		lam := specShotNoiseLambda[sev-1]
		want := mid / lam // Poisson(xλ)/λ has variance x/λ
		got := s*s - quantVar
		// Variance estimate: standard error var·√(2/N) ≈ 1.3%; 6% allows for
		// the quantization correction being approximate on a 1/λ lattice.
		if math.Abs(got-want) > 0.06*want {
			t.Errorf("shot_noise sev %d: variance = %.6f, want x/λ = %.6f", sev, got, want)
		}
		if math.Abs(m-(mid-0.5*lsb)) > lsb {
			t.Errorf("shot_noise sev %d: mean = %.5f, want ≈ %.5f", sev, m, mid)
		}
	}
}

func TestImpulseNoiseFraction(t *testing.T) {
	img := constImage(mid, 3, 64, 64)
	n := float64(len(img))
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "impulse_noise", sev, img, 3, 64, 64, uint64(sev))
		var salt, pepper, other float64
		for _, v := range out {
			switch {
			case v == 1:
				salt++
			case v == 0:
				pepper++
			case math.Abs(float64(v)-mid) > 1e-6:
				other++
			}
		}
		a := specImpulseNoiseAmount[sev-1]
		se := math.Sqrt(a * (1 - a) / n) // binomial standard error
		if got := (salt + pepper) / n; math.Abs(got-a) > 4*se {
			t.Errorf("impulse_noise sev %d: replaced fraction = %.4f, want amount %.3f ± %.4f", sev, got, a, 4*se)
		}
		if math.Abs(salt-pepper)/n > 4*se {
			t.Errorf("impulse_noise sev %d: salt %v vs pepper %v, want equal odds", sev, salt, pepper)
		}
		if other != 0 {
			t.Errorf("impulse_noise sev %d: %v elements changed to something other than 0 or 1", sev, other)
		}
	}
}

func TestSpeckleNoiseStd(t *testing.T) {
	img := constImage(mid, 3, 64, 64)
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "speckle_noise", sev, img, 3, 64, 64, uint64(sev))
		_, s := meanStd(out)
		got := math.Sqrt(s*s - quantVar)
		want := mid * specSpeckleNoiseSigma[sev-1] // x·N(0, σ²) has std x·σ
		if math.Abs(got-want) > 0.03*want {
			t.Errorf("speckle_noise sev %d: std = %.5f, want x·σ = %.5f", sev, got, want)
		}
	}
}

func TestGaussianKernels(t *testing.T) {
	for _, sigma := range []float64{0.05, 0.25, 0.4, 0.6, 0.7, 0.8, 1, 2.4} {
		k := gaussKernel1D(sigma, 4)
		if want := 2*int(4*sigma+0.5) + 1; len(k) != want {
			t.Errorf("gaussKernel1D(%v) has %d taps, want %d (scipy radius int(4σ+0.5))", sigma, len(k), want)
		}
		var sum, m2 float64
		r := len(k) / 2
		for i, v := range k {
			sum += v
			m2 += v * float64((i-r)*(i-r))
			if math.Abs(v-k[len(k)-1-i]) > 1e-15 {
				t.Errorf("gaussKernel1D(%v) not symmetric at %d", sigma, i)
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("gaussKernel1D(%v) sums to %v, want 1", sigma, sum)
		}
		// A sampled Gaussian's variance equals σ² closely once σ ≥ 0.8
		// (the aliasing error falls like exp(−2π²σ²)).
		if sigma >= 0.8 && math.Abs(m2-sigma*sigma) > 2e-3 {
			t.Errorf("gaussKernel1D(%v) variance %v, want σ² = %v", sigma, m2, sigma*sigma)
		}
	}
	// gaussian_blur at each severity keeps a constant image and lowers the
	// variance of a textured one.
	img := synthImage(5, 3, 32, 32)
	_, s0 := meanStd(img)
	prev := s0
	for sev := 1; sev <= 5; sev++ {
		c := applyT(t, "gaussian_blur", sev, constImage(100.0/255, 3, 32, 32), 3, 32, 32, 1)
		if c[0] != float32(100.0/255) || slices.Max(c) != slices.Min(c) {
			t.Errorf("gaussian_blur sev %d changed a constant image: %v..%v", sev, slices.Min(c), slices.Max(c))
		}
		_, s := meanStd(applyT(t, "gaussian_blur", sev, img, 3, 32, 32, 1))
		if s >= prev {
			t.Errorf("gaussian_blur sev %d: std %v, not below severity %d's %v", sev, s, sev-1, prev)
		}
		prev = s
	}
}

func TestDefocusDiskKernel(t *testing.T) {
	// Support of the disk: radius < 1 → the center pixel, 1 → a 5-pixel
	// plus, 1.5 → a 3×3 block; the 3×3 alias blur widens each by one.
	wantSize := [5]int{3, 3, 3, 5, 5}
	for sev := 1; sev <= 5; sev++ {
		p := specDefocusParams[sev-1]
		k := diskKernel(p[0], p[1])
		if k.size != wantSize[sev-1] {
			t.Errorf("disk kernel sev %d: size %d, want %d", sev, k.size, wantSize[sev-1])
		}
		var sum float64
		n := k.size
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				v := k.k[i*n+j]
				sum += v
				for _, o := range []float64{k.k[(n-1-i)*n+j], k.k[i*n+n-1-j], k.k[j*n+i]} {
					if math.Abs(v-o) > 1e-15 {
						t.Errorf("disk kernel sev %d not symmetric at (%d,%d)", sev, i, j)
					}
				}
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("disk kernel sev %d sums to %v, want 1", sev, sum)
		}
		if sev <= 3 {
			// One-pixel disk blurred by OpenCV's 3-tap Gaussian: the center
			// weight is g², g = 1/(1 + 2·exp(−1/2σ²)).
			g := 1 / (1 + 2*math.Exp(-1/(2*p[1]*p[1])))
			if c := k.k[n*n/2]; math.Abs(c-g*g) > 1e-12 {
				t.Errorf("disk kernel sev %d: center %v, want %v", sev, c, g*g)
			}
		}
	}
	// Bigger images: scaled radii still give kernels that sum to 1.
	for _, s := range []float64{2, 3, 6} {
		k := diskKernel(1.5*s, 0.1*s)
		var sum float64
		for _, v := range k.k {
			sum += v
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("disk kernel at scale %v sums to %v", s, sum)
		}
	}
}

func TestGlassShuffle(t *testing.T) {
	// The original's numpy "swap" of two views is a copy: pixel (h,w)
	// takes the value of (h+dy, w+dx), dx,dy ∈ {−1, 0}, from the pass's
	// input, and rows and columns 0 and 1 are never written.
	const h, w = 32, 32
	x := newRaster(3, h, w)
	for i := range x.p {
		x.p[i] = float64(i) // all distinct, channels tied by offset
	}
	in := x.clone()
	glassShuffle(x, 1, 1, newRNG(9))
	moved := 0
	for y := 0; y < h; y++ {
		for xx := 0; xx < w; xx++ {
			v := x.p[y*w+xx]
			if y < 2 || xx < 2 {
				if v != in.p[y*w+xx] {
					t.Errorf("pixel (%d,%d) outside the loop range changed", y, xx)
				}
				continue
			}
			ok := false
			for _, d := range [][2]int{{0, 0}, {-1, 0}, {0, -1}, {-1, -1}} {
				j := (y+d[0])*w + xx + d[1]
				if v == in.p[j] && x.p[h*w+y*w+xx] == in.p[h*w+j] && x.p[2*h*w+y*w+xx] == in.p[2*h*w+j] {
					ok = true
				}
			}
			if !ok {
				t.Errorf("pixel (%d,%d) = %v, not a copy of itself or an up-left neighbour", y, xx, v)
			}
			if v != in.p[y*w+xx] {
				moved++
			}
		}
	}
	// Each visited pixel moves unless dx = dy = 0 (probability 1/4).
	if frac := float64(moved) / (30 * 30); math.Abs(frac-0.75) > 0.06 {
		t.Errorf("fraction of moved pixels = %.3f, want 3/4", frac)
	}
	// Loop range for other sizes: h from H−d down to d+1.
	y := newRaster(1, 64, 64)
	for i := range y.p {
		y.p[i] = float64(i)
	}
	glassShuffle(y, 2, 1, newRNG(3))
	for i := 0; i < 64*3; i++ { // rows 0..2 are never written with d = 2
		if y.p[i] != float64(i) {
			t.Fatalf("64×64, d = 2: pixel %d in rows 0..2 changed", i)
		}
	}
	// The first Gaussian stage's σ per severity (scipy radius int(4σ+0.5)).
	for sev, want := range [5]int{1, 3, 5, 3, 5} {
		if got := len(gaussKernel1D(specGlassBlurParams[sev][0], 4)); got != want {
			t.Errorf("glass_blur sev %d: Gaussian has %d taps, want %d", sev+1, got, want)
		}
	}
}

func TestMotionKernel(t *testing.T) {
	for sev := 1; sev <= 5; sev++ {
		p := specMotionParams[sev-1]
		for _, angle := range []float64{-45, -10, 0, 30, 45, -90, -135} {
			mk := newMotionKernel(p[0], p[1], angle)
			if want := 2*int(math.Ceil(p[0])) + 1; len(mk.weights) != want {
				t.Errorf("motion sev %d: %d taps, want 2⌈r⌉+1 = %d", sev, len(mk.weights), want)
			}
			var sum float64
			th := angle * math.Pi / 180
			for i, v := range mk.weights {
				sum += v
				if i > 0 && v >= mk.weights[i-1] {
					t.Errorf("motion sev %d: weight %d = %v not below weight %d (one-sided Gaussian)", sev, i, v, i-1)
				}
				// Offsets are the line i·(cos θ, sin θ) rounded.
				if math.Abs(float64(mk.dx[i])-float64(i)*math.Cos(th)) > 0.5+1e-9 ||
					math.Abs(float64(mk.dy[i])-float64(i)*math.Sin(th)) > 0.5+1e-9 {
					t.Errorf("motion sev %d angle %v: offset %d = (%d,%d) off the line", sev, angle, i, mk.dx[i], mk.dy[i])
				}
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Errorf("motion sev %d: weights sum to %v, want 1", sev, sum)
			}
			if r := mk.weights[1] / mk.weights[0]; math.Abs(r-math.Exp(-1/(2*p[1]*p[1]))) > 1e-12 {
				t.Errorf("motion sev %d: w1/w0 = %v, want exp(−1/2σ²)", sev, r)
			}
		}
		if sev == 4 {
			k3, k4 := newMotionKernel(6, 2, 20), newMotionKernel(8, 2, 20)
			for i, v := range k4.weights {
				if i < len(k3.weights) && math.Abs(v-k3.weights[i]) > 1e-8 || i >= len(k3.weights) && v > 1e-8 {
					t.Errorf("motion kernels of severities 3 and 4 differ at tap %d: %v", i, v)
				}
			}
		}
		c := applyT(t, "motion_blur", sev, constImage(77.0/255, 3, 32, 32), 3, 32, 32, 3)
		if slices.Max(c) != slices.Min(c) || c[0] != float32(77.0/255) {
			t.Errorf("motion_blur sev %d changed a constant image", sev)
		}
	}
}

func TestZoomFactors(t *testing.T) {
	for sev, want := range [5]int{7, 12, 16, 21, 26} {
		z := zoomFactors(sev + 1)
		if len(z) != want {
			t.Errorf("zoomFactors(%d) has %d factors, want %d (np.arange quirk)", sev+1, len(z), want)
		}
		// The stop itself is included for severities 1 and 2 only.
		last := specZoomStops[sev]
		if sev >= 2 {
			last -= 0.01
		}
		if z[0] != 1 || math.Abs(z[len(z)-1]-last) > 1e-9 || math.Abs(z[1]-z[0]-0.01) > 1e-12 {
			t.Errorf("zoomFactors(%d) = %v, want 1, 1.01, …, %v", sev+1, z, last)
		}
	}
	// clipped_zoom by 1 is the identity; a constant image stays constant.
	img := synthImage(2, 1, 32, 32)
	p := make([]float64, len(img))
	for i, v := range img {
		p[i] = float64(v)
	}
	out := make([]float64, len(p))
	clippedZoom(p, 32, 32, 1, out)
	if !slices.Equal(p, out) {
		t.Error("clippedZoom(z = 1) is not the identity")
	}
	for sev := 1; sev <= 5; sev++ {
		c := applyT(t, "zoom_blur", sev, constImage(0.4, 3, 32, 32), 3, 32, 32, 1)
		if slices.Max(c) != slices.Min(c) {
			t.Errorf("zoom_blur sev %d changed a constant image", sev)
		}
	}
	// clipped_zoom(z) magnifies about the center: with z = 2 a pixel at
	// distance d from the center comes from distance ≈ d/2.
	ramp := make([]float64, 32*32)
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			ramp[y*32+x] = float64(x)
		}
	}
	clippedZoom(ramp, 32, 32, 2, out)
	if slope := (out[16*32+24] - out[16*32+8]) / 16; math.Abs(slope-0.5) > 0.05 {
		t.Errorf("clippedZoom(z = 2) slope = %v, want ≈ 1/2", slope)
	}
}

func TestPixelateBlocks(t *testing.T) {
	for _, size := range []int{32, 64} {
		rng := newRNG(uint64(size))
		img := make([]float32, 3*size*size)
		for i := range img {
			img[i] = float32(rng.IntN(256)) / 255
		}
		for sev := 1; sev <= 5; sev++ {
			n := pixelateSize(size, sev)
			if size == 32 {
				if want := [5]int{30, 28, 27, 24, 20}[sev-1]; n != want {
					t.Errorf("pixelate sev %d: size %d, want %d", sev, n, want)
				}
			}
			out := applyT(t, "pixelate", sev, img, 3, size, size, 1)
			// Piecewise constant on the implied blocks: upscaling n → size
			// with BOX repeats size − n of the n columns (and rows); on a
			// noise image no other neighbours coincide.
			sameCols, sameRows := 0, 0
			for x := 1; x < size; x++ {
				eq := true
				for ch := 0; ch < 3 && eq; ch++ {
					for y := 0; y < size; y++ {
						if out[ch*size*size+y*size+x] != out[ch*size*size+y*size+x-1] {
							eq = false
							break
						}
					}
				}
				if eq {
					sameCols++
				}
			}
			for y := 1; y < size; y++ {
				eq := true
				for ch := 0; ch < 3 && eq; ch++ {
					for x := 0; x < size; x++ {
						if out[ch*size*size+y*size+x] != out[ch*size*size+(y-1)*size+x] {
							eq = false
							break
						}
					}
				}
				if eq {
					sameRows++
				}
			}
			if sameCols != size-n || sameRows != size-n {
				t.Errorf("pixelate %d×%d sev %d: %d repeated columns and %d rows, want %d (blocks of a %d×%d image)",
					size, size, sev, sameCols, sameRows, size-n, n, n)
			}
		}
	}
}

func TestJPEGQualityMonotone(t *testing.T) {
	for s := uint64(1); s <= 3; s++ {
		img := synthImage(s, 3, 32, 32)
		prevSize, prevErr := math.MaxInt, -1.0
		for sev := 1; sev <= 5; sev++ {
			x := newRaster(3, 32, 32)
			for i, v := range img {
				x.p[i] = float64(v)
			}
			size, err := jpegRoundTrip(x, specJpegQuality[sev-1])
			if err != nil {
				t.Fatal(err)
			}
			out := applyT(t, "jpeg_compression", sev, img, 3, 32, 32, 1)
			for i, v := range out {
				if math.Abs(float64(v)-x.p[i]) > 1e-6 {
					t.Fatalf("jpeg_compression sev %d differs from the round trip at quality %d", sev, specJpegQuality[sev-1])
				}
			}
			e := meanAbsDiff(out, img)
			if size >= prevSize || e <= prevErr {
				t.Errorf("image %d sev %d (q %d): %d bytes, error %.5f; severity %d: %d bytes, error %.5f",
					s, sev, specJpegQuality[sev-1], size, e, sev-1, prevSize, prevErr)
			}
			prevSize, prevErr = size, e
		}
	}
}

func TestContrastFactor(t *testing.T) {
	img := synthImage(4, 3, 32, 32)
	n := 32 * 32
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "contrast", sev, img, 3, 32, 32, 1)
		c := specContrastFactor[sev-1]
		for ch := 0; ch < 3; ch++ {
			var m float64
			for _, v := range img[ch*n : (ch+1)*n] {
				m += float64(v)
			}
			m /= float64(n)
			for i := ch * n; i < (ch+1)*n; i++ {
				want := (float64(img[i])-m)*c + m
				// Exact up to the final truncation to 8 bits.
				if d := want - float64(out[i]); d < -1e-6 || d >= lsb+1e-6 {
					t.Fatalf("contrast sev %d: pixel %d = %v, want trunc8(%v)", sev, i, out[i], want)
				}
			}
		}
	}
}

func hsvImage(img []float32, n int) (h, s, v []float64) {
	h, s, v = make([]float64, n), make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		h[i], s[i], v[i] = rgbToHSV(float64(img[i]), float64(img[n+i]), float64(img[2*n+i]))
	}
	return h, s, v
}

func TestBrightnessShiftsV(t *testing.T) {
	img := synthImage(6, 3, 32, 32)
	n := 32 * 32
	h0, s0, v0 := hsvImage(img, n)
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "brightness", sev, img, 3, 32, 32, 1)
		h1, s1, v1 := hsvImage(out, n)
		dv := specBrightnessShift[sev-1]
		for i := 0; i < n; i++ {
			want := math.Min(v0[i]+dv, 1)
			// V is the largest channel, truncated to 8 bits.
			if d := want - v1[i]; d < -1e-6 || d >= lsb+1e-6 {
				t.Fatalf("brightness sev %d pixel %d: V = %v, want trunc8(%v)", sev, i, v1[i], want)
			}
			// Hue and saturation are kept (up to 8-bit rounding, which
			// moves S by at most 2 levels relative to V).
			if s0[i] > 0.2 && v1[i] > 0.2 {
				if math.Abs(s1[i]-s0[i]) > 2*lsb/v1[i] {
					t.Fatalf("brightness sev %d pixel %d: S %v → %v", sev, i, s0[i], s1[i])
				}
				dh := math.Abs(h1[i] - h0[i])
				dh = math.Min(dh, 1-dh)
				if dh > 2*lsb/(s0[i]*v1[i]) {
					t.Fatalf("brightness sev %d pixel %d: H %v → %v", sev, i, h0[i], h1[i])
				}
			}
		}
	}
}

func TestSaturateScalesS(t *testing.T) {
	img := synthImage(8, 3, 32, 32)
	n := 32 * 32
	_, s0, v0 := hsvImage(img, n)
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "saturate", sev, img, 3, 32, 32, 1)
		_, s1, v1 := hsvImage(out, n)
		p := specSaturateParams[sev-1]
		checked := 0
		for i := 0; i < n; i++ {
			if v0[i] < 0.3 {
				continue
			}
			checked++
			want := math.Min(math.Max(s0[i]*p[0]+p[1], 0), 1)
			// 8-bit truncation of the three channels moves S = (max−min)/max
			// by at most about 2 levels relative to V.
			if math.Abs(s1[i]-want) > 2*lsb/v1[i]+1e-9 {
				t.Fatalf("saturate sev %d pixel %d: S = %v, want %v", sev, i, s1[i], want)
			}
			if d := v0[i] - v1[i]; d < -1e-6 || d >= lsb+1e-6 {
				t.Fatalf("saturate sev %d pixel %d: V %v → %v, want unchanged", sev, i, v0[i], v1[i])
			}
		}
		if checked < n/4 {
			t.Fatalf("only %d pixels checked", checked)
		}
	}
}

func TestFrostWeights(t *testing.T) {
	// Same seed, same texture: out_a − out_b = w_img·(a − b) where nothing
	// clips, up to one 8-bit level of truncation.
	a := synthImage(1, 3, 32, 32)
	b := synthImage(2, 3, 32, 32)
	for i := range a {
		a[i] *= 0.5
		b[i] *= 0.5
		a[i] = float32(math.Round(float64(a[i])*255) / 255)
		b[i] = float32(math.Round(float64(b[i])*255) / 255)
	}
	for sev := 1; sev <= 5; sev++ {
		oa := applyT(t, "frost", sev, a, 3, 32, 32, 11)
		ob := applyT(t, "frost", sev, b, 3, 32, 32, 11)
		wImg := specFrostParams[sev-1][0]
		checked := 0
		for i := range a {
			if oa[i] >= 1 || ob[i] >= 1 {
				continue
			}
			checked++
			if d := float64(oa[i]-ob[i]) - wImg*float64(a[i]-b[i]); math.Abs(d) > lsb+1e-6 {
				t.Fatalf("frost sev %d: pixel %d: difference off by %v levels from w_img = %v", sev, i, d*255, wImg)
			}
		}
		if checked < len(a)/2 {
			t.Fatalf("frost sev %d: only %d unclipped values", sev, checked)
		}
	}
	// The texture is an image in [0,1] with a plausible brightness.
	tex := frostTexture(32, 32, 1, newRNG(5))
	var m float64
	for _, v := range tex.p {
		if v < 0 || v > 1 {
			t.Fatalf("frost texture value %v outside [0,1]", v)
		}
		m += v
	}
	if m /= float64(len(tex.p)); m < 0.2 || m > 0.7 {
		t.Errorf("frost texture mean %v, want a gray-white texture (0.2..0.7)", m)
	}
}

func TestFogPlasma(t *testing.T) {
	for _, ms := range []int{2, 8, 32, 64} {
		pf := plasmaFractal(ms, 2, newRNG(uint64(ms)))
		if slices.Min(pf) != 0 || slices.Max(pf) != 1 {
			t.Errorf("plasmaFractal(%d): range %v..%v, want 0..1", ms, slices.Min(pf), slices.Max(pf))
		}
	}
	// On a constant image v the output is (v + a·p)·v/(v + a) with p
	// spanning [0,1] (the map is exactly 32 or 64 wide), so its range is
	// a·v/(v + a), up to one level of truncation.
	const v = 102.0 / 255
	for _, size := range []int{32, 64} {
		for sev := 1; sev <= 5; sev++ {
			out := applyT(t, "fog", sev, constImage(v, 3, size, size), 3, size, size, uint64(sev))
			a := specFogParams[sev-1][0]
			want := a * v / (v + a)
			if got := float64(slices.Max(out) - slices.Min(out)); math.Abs(got-want) > lsb+1e-6 {
				t.Errorf("fog %d×%d sev %d: range %.4f, want a·v/(v+a) = %.4f", size, size, sev, got, want)
			}
		}
	}
}

func TestSnowBrightens(t *testing.T) {
	img := synthImage(3, 3, 32, 32)
	m0, _ := meanStd(img)
	for sev := 1; sev <= 5; sev++ {
		out := applyT(t, "snow", sev, img, 3, 32, 32, 4)
		m, _ := meanStd(out)
		if m <= m0 {
			t.Errorf("snow sev %d: mean %v, not above the clean %v", sev, m, m0)
		}
		for i := range out {
			if out[i] < img[i]-float32(lsb) {
				t.Fatalf("snow sev %d darkened pixel %d: %v → %v", sev, i, img[i], out[i])
			}
		}
	}
}

func TestSpatterModes(t *testing.T) {
	img := synthImage(9, 3, 32, 32)
	n := 32 * 32
	brown := [3]float64{63.0 / 255, 42.0 / 255, 20.0 / 255}
	for sev := 1; sev <= 5; sev++ {
		changed := 0
		for seed := uint64(0); seed < 4; seed++ {
			out := applyT(t, "spatter", sev, img, 3, 32, 32, seed)
			for i := 0; i < n; i++ {
				same := true
				for ch := 0; ch < 3; ch++ {
					if math.Abs(float64(out[ch*n+i]-img[ch*n+i])) > lsb+1e-6 {
						same = false
					}
				}
				if same {
					continue
				}
				changed++
				for ch := 0; ch < 3; ch++ {
					o, x := float64(out[ch*n+i]), float64(img[ch*n+i])
					if sev <= 3 {
						// Water only adds pale turquoise: brighter, G = B gain.
						if o < x-lsb {
							t.Fatalf("spatter sev %d (water) darkened pixel %d", sev, i)
						}
					} else if o < 0.8*brown[ch]-lsb-1e-6 || o > brown[ch]+0.2+1e-6 {
						// Mud: x·(1−m) + brown·m with m ∈ [0.8, 1].
						t.Fatalf("spatter sev %d (mud) pixel %d channel %d = %v, want within [0.8, 1]·brown + 0.2·x", sev, i, ch, o)
					}
				}
			}
		}
		if changed == 0 {
			t.Errorf("spatter sev %d changed nothing in 4 seeds", sev)
		}
	}
}

// planeResidual is the RMS residual of a least-squares plane a + b·x + c·y
// fitted to the interior of a one-channel image.
func planeResidual(img []float32, h, w, margin int) float64 {
	var sxx, sxy, syy, sx, sy, s1, sv, sxv, syv float64
	for y := margin; y < h-margin; y++ {
		for x := margin; x < w-margin; x++ {
			v, fx, fy := float64(img[y*w+x]), float64(x), float64(y)
			sxx += fx * fx
			sxy += fx * fy
			syy += fy * fy
			sx += fx
			sy += fy
			s1++
			sv += v
			sxv += fx * v
			syv += fy * v
		}
	}
	a := [3][3]float64{{s1, sx, sy}, {sx, sxx, sxy}, {sy, sxy, syy}}
	rhs := [3]float64{sv, sxv, syv}
	d := det3(a)
	var coef [3]float64
	for col := 0; col < 3; col++ {
		b := a
		for i := range b {
			b[i][col] = rhs[i]
		}
		coef[col] = det3(b) / d
	}
	var r2 float64
	for y := margin; y < h-margin; y++ {
		for x := margin; x < w-margin; x++ {
			e := float64(img[y*w+x]) - (coef[0] + coef[1]*float64(x) + coef[2]*float64(y))
			r2 += e * e
		}
	}
	return math.Sqrt(r2 / s1)
}

func TestElasticAffineThenField(t *testing.T) {
	// A linear ramp stays planar under an affine warp (away from the
	// reflected borders): severity 1 (α = 0) is a pure random affine. From
	// severity 2 on, the elastic field adds a non-planar residual that
	// grows with severity (field RMS α·std(gaussian(U(−1,1), σ)) ≈ 0.04,
	// 0.2, 0.4, 0.5 px).
	const h, w = 32, 32
	ramp := make([]float32, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			ramp[y*w+x] = float32(math.Round((0.1+0.8*float64(x)/31)*255) / 255)
		}
	}
	base := planeResidual(ramp, h, w, 7)
	var res [5]float64
	for sev := 1; sev <= 5; sev++ {
		for seed := uint64(0); seed < 6; seed++ {
			out := applyT(t, "elastic_transform", sev, ramp, 1, h, w, seed)
			res[sev-1] += planeResidual(out, h, w, 7) / 6
		}
	}
	// Bilinear sampling of a quantized ramp, then truncation: about half a
	// level of residual on top of the ramp's own.
	if res[0] > base+0.6*lsb {
		t.Errorf("elastic sev 1 residual %v levels, want ≤ %v (affine only)", res[0]*255, (base+0.6*lsb)*255)
	}
	for sev := 3; sev <= 5; sev++ {
		if res[sev-1] <= res[sev-2] {
			t.Errorf("elastic residual at severity %d (%v) not above severity %d (%v)", sev, res[sev-1], sev-1, res[sev-2])
		}
	}
	// The affine part moves the image: severity 1 differs from the input.
	if d := meanAbsDiff(applyT(t, "elastic_transform", 1, ramp, 1, h, w, 1), ramp); d < 2*lsb {
		t.Errorf("elastic sev 1 mean change %v levels, want a visible affine warp", d*255)
	}
}

func TestHSVRoundTrip(t *testing.T) {
	rng := newRNG(2)
	for i := 0; i < 10000; i++ {
		r, g, b := rng.Float64(), rng.Float64(), rng.Float64()
		if i%7 == 0 {
			g = r
		}
		h, s, v := rgbToHSV(r, g, b)
		r2, g2, b2 := hsvToRGB(h, s, v)
		if math.Abs(r-r2)+math.Abs(g-g2)+math.Abs(b-b2) > 1e-12 {
			t.Fatalf("HSV round trip of (%v,%v,%v) = (%v,%v,%v)", r, g, b, r2, g2, b2)
		}
	}
}

func TestCannyAndDistance(t *testing.T) {
	// A bright square on black: Canny finds its outline, and the distance
	// transform is the Euclidean distance to it.
	const h, w = 24, 24
	p := make([]float64, h*w)
	for y := 8; y < 16; y++ {
		for x := 8; x < 16; x++ {
			p[y*w+x] = 200
		}
	}
	edges := canny(p, h, w, 50, 150)
	count := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if edges[y*w+x] {
				count++
				if y < 6 || y > 17 || x < 6 || x > 17 {
					t.Errorf("edge at (%d,%d), far from the square", y, x)
				}
			}
		}
	}
	if count < 16 {
		t.Errorf("canny found %d edge pixels around an 8×8 square", count)
	}
	one := make([]bool, h*w)
	one[5*w+7] = true
	d := distanceToEdges(one, h, w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			want := math.Hypot(float64(y-5), float64(x-7))
			if math.Abs(d[y*w+x]-want) > 1e-12 {
				t.Fatalf("distance at (%d,%d) = %v, want %v", y, x, d[y*w+x], want)
			}
		}
	}
	if d := distanceToEdges(make([]bool, 9), 3, 3); !math.IsInf(d[4], 1) {
		t.Errorf("distance with no edges = %v, want +Inf", d[4])
	}
}

func BenchmarkApply(b *testing.B) {
	img := synthImage(1, 3, 32, 32)
	dst := make([]float32, len(img))
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			rng := newRNG(1)
			for b.Loop() {
				if err := Apply(name, 5, img, 3, 32, 32, rng, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPixelateMatchesPillow compares with Pillow's own BOX resizes
// (testdata/pixelate_pillow.bin, made by make_pixelate_golden.py with
// Pillow 9.4.0): the result must be identical, byte for byte.
func TestPixelateMatchesPillow(t *testing.T) {
	b, err := os.ReadFile("testdata/pixelate_pillow.bin")
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, sz := range [][2]int{{32, 32}, {40, 56}} {
		h, w := sz[0], sz[1]
		n := h * w
		hwc := func() []float32 { // HWC bytes → CHW float32
			img := make([]float32, 3*n)
			for i := 0; i < n; i++ {
				for ch := 0; ch < 3; ch++ {
					img[ch*n+i] = float32(b[off+3*i+ch]) / 255
				}
			}
			off += 3 * n
			return img
		}
		img := hwc()
		for sev := 1; sev <= 5; sev++ {
			want := hwc()
			got := applyT(t, "pixelate", sev, img, 3, h, w, 1)
			if !slices.Equal(got, want) {
				diff := 0
				for i := range got {
					if got[i] != want[i] {
						diff++
					}
				}
				t.Errorf("pixelate %d×%d sev %d: %d of %d values differ from Pillow", h, w, sev, diff, len(got))
			}
		}
	}
	if off != len(b) {
		t.Errorf("read %d of %d golden bytes", off, len(b))
	}
}

// TestPlasmaMatchesOriginal compares statistics of the diamond-square map
// with those of make_cifar_c.py's plasma_fractal, measured by running the
// original function with numpy 1.24 (2000 maps of 32×32 per decay, seed 0):
// mean, standard deviation, and mean absolute differences at horizontal
// lags 1 and 4.
func TestPlasmaMatchesOriginal(t *testing.T) {
	ref := map[float64][4]float64{
		3:    {0.5018, 0.1470, 0.0204, 0.0783},
		2.5:  {0.4971, 0.1512, 0.0215, 0.0816},
		2:    {0.5010, 0.1618, 0.0245, 0.0893},
		1.75: {0.5023, 0.1705, 0.0289, 0.0987},
	}
	const maps, n = 1000, 32
	rng := newRNG(1)
	for decay, want := range ref {
		var got [4]float64
		for k := 0; k < maps; k++ {
			p := plasmaFractal(n, decay, rng)
			var m, s, l1, l4 float64
			for _, v := range p {
				m += v
			}
			m /= n * n
			for _, v := range p {
				s += (v - m) * (v - m)
			}
			for y := 0; y < n; y++ {
				for x := 0; x < n; x++ {
					if x >= 1 {
						l1 += math.Abs(p[y*n+x] - p[y*n+x-1])
					}
					if x >= 4 {
						l4 += math.Abs(p[y*n+x] - p[y*n+x-4])
					}
				}
			}
			got[0] += m / maps
			got[1] += math.Sqrt(s/(n*n)) / maps
			got[2] += l1 / (n * (n - 1)) / maps
			got[3] += l4 / (n * (n - 4)) / maps
		}
		// The map means vary by ~0.1 from map to map: over 1000 (Go) and
		// 2000 (numpy) maps the difference of averages has a standard error
		// near 0.004; the other statistics vary less. 5%, or 0.012 for the mean.
		t.Logf("decay %v: %.4f", decay, got)
		for i := range got {
			if math.Abs(got[i]-want[i]) > max(0.05*want[i], 0.012*boolF(i == 0)) {
				t.Errorf("plasma decay %v: statistic %d = %.4f, original %.4f", decay, i, got[i], want[i])
			}
		}
	}
}

func boolF(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestNewRNG(t *testing.T) {
	a := NewRNG(1, "fog", 3, 17).Uint64()
	if b := NewRNG(1, "fog", 3, 17).Uint64(); a != b {
		t.Error("NewRNG is not deterministic")
	}
	for _, o := range []*rand.Rand{NewRNG(2, "fog", 3, 17), NewRNG(1, "snow", 3, 17), NewRNG(1, "fog", 4, 17), NewRNG(1, "fog", 3, 18)} {
		if o.Uint64() == a {
			t.Error("NewRNG gives the same stream for different inputs")
		}
	}
}

// The parameter table of make_cifar_c.py as CSAM-SPEC.md §4.3 transcribes
// it, written out again here so that the statistic tests check the
// package's tables rather than reuse them.
var (
	specGaussianNoiseSigma = [5]float64{0.04, 0.06, 0.08, 0.09, 0.10}
	specShotNoiseLambda    = [5]float64{500, 250, 100, 75, 50}
	specImpulseNoiseAmount = [5]float64{0.01, 0.02, 0.03, 0.05, 0.07}
	specSpeckleNoiseSigma  = [5]float64{0.06, 0.10, 0.12, 0.16, 0.20}
	specGaussianBlurSigma  = [5]float64{0.4, 0.6, 0.7, 0.8, 1.0}
	specGlassBlurParams    = [5][3]float64{{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}}
	specDefocusParams      = [5][2]float64{{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}}
	specMotionParams       = [5][2]float64{{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}}
	specZoomStops          = [5]float64{1.06, 1.11, 1.16, 1.21, 1.26}
	specSnowParams         = [5][7]float64{{0.1, 0.2, 1, 0.6, 8, 3, 0.95}, {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
		{0.15, 0.3, 1.75, 0.55, 10, 4, 0.9}, {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85}, {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8}}
	specFrostParams     = [5][2]float64{{1, 0.2}, {1, 0.3}, {0.9, 0.4}, {0.85, 0.4}, {0.75, 0.45}}
	specFogParams       = [5][2]float64{{0.2, 3}, {0.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}}
	specBrightnessShift = [5]float64{0.05, 0.1, 0.15, 0.2, 0.3}
	specContrastFactor  = [5]float64{0.75, 0.5, 0.4, 0.3, 0.15}
	specSaturateParams  = [5][2]float64{{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}}
	specElasticPixels   = [5][3]float64{{0, 0, 2.56}, {1.6, 6.4, 2.24}, {2.56, 1.92, 1.92}, {3.2, 1.28, 1.6}, {3.2, 0.96, 0.96}}
	specPixelateFactor  = [5]float64{0.95, 0.9, 0.85, 0.75, 0.65}
	specJpegQuality     = [5]int{80, 65, 58, 50, 40}
	specSpatterParams   = [5][6]float64{{0.62, 0.1, 0.7, 0.7, 0.5, 0}, {0.65, 0.1, 0.8, 0.7, 0.5, 0},
		{0.65, 0.3, 1, 0.69, 0.5, 0}, {0.65, 0.1, 0.7, 0.69, 0.6, 1}, {0.65, 0.1, 0.5, 0.68, 0.6, 1}}
)

// TestParameterTables compares every table of the package with the
// transcription above; the tables without a statistic test of their own
// (snow, spatter, elastic, gaussian blur, pixelate factors) are covered here.
func TestParameterTables(t *testing.T) {
	eq := func(name string, got, want any) {
		t.Helper()
		if !goreflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v (CSAM-SPEC §4.3)", name, got, want)
		}
	}
	eq("gaussian_noise σ", gaussianNoiseSigma, specGaussianNoiseSigma)
	eq("shot_noise λ", shotNoiseLambda, specShotNoiseLambda)
	eq("impulse_noise amount", impulseNoiseAmount, specImpulseNoiseAmount)
	eq("speckle_noise σ", speckleNoiseSigma, specSpeckleNoiseSigma)
	eq("gaussian_blur σ", gaussianBlurSigma, specGaussianBlurSigma)
	eq("glass_blur", glassBlurParams, specGlassBlurParams)
	eq("defocus_blur", defocusParams, specDefocusParams)
	eq("motion_blur", motionParams, specMotionParams)
	eq("zoom_blur stops", zoomStops, specZoomStops)
	eq("snow", snowParams, specSnowParams)
	eq("frost", frostParams, specFrostParams)
	eq("fog", fogParams, specFogParams)
	eq("brightness", brightnessShift, specBrightnessShift)
	eq("contrast", contrastFactor, specContrastFactor)
	eq("saturate", saturateParams, specSaturateParams)
	eq("pixelate", pixelateFactor, specPixelateFactor)
	eq("jpeg quality", jpegQuality, specJpegQuality)
	eq("spatter", spatterParams, specSpatterParams)
	for sev, want := range specElasticPixels {
		for j := range want {
			// elasticParams are fractions of IMSIZE = 32.
			if got := 32 * elasticParams[sev][j]; math.Abs(got-want[j]) > 1e-12 {
				t.Errorf("elastic sev %d parameter %d = %v px at 32×32, want %v", sev+1, j, got, want[j])
			}
		}
	}
}

// TestJPEGNearPillow measures the documented deviation of jpeg_compression:
// Go's image/jpeg against Pillow's libjpeg at the same qualities
// (testdata/jpeg_pillow.bin, made by make_jpeg_golden.py with Pillow
// 9.4.0) on a smooth formula image.
func TestJPEGNearPillow(t *testing.T) {
	b, err := os.ReadFile("testdata/jpeg_pillow.bin")
	if err != nil {
		t.Fatal(err)
	}
	const n = 32 * 32
	if len(b) != 6*3*n {
		t.Fatalf("jpeg_pillow.bin has %d bytes, want %d", len(b), 6*3*n)
	}
	chw := func(k int) []float32 {
		img := make([]float32, 3*n)
		for i := 0; i < n; i++ {
			for ch := 0; ch < 3; ch++ {
				img[ch*n+i] = float32(b[k*3*n+3*i+ch]) / 255
			}
		}
		return img
	}
	img := chw(0)
	for sev := 1; sev <= 5; sev++ {
		pil := chw(sev)
		got := applyT(t, "jpeg_compression", sev, img, 3, 32, 32, 1)
		d := meanAbsDiff(got, pil) * 255
		eGo, ePIL := meanAbsDiff(got, img)*255, meanAbsDiff(pil, img)*255
		t.Logf("quality %d: Go–Pillow %.2f levels; error to clean: Go %.2f, Pillow %.2f", specJpegQuality[sev-1], d, eGo, ePIL)
		// Measured 0.2–1.1 levels here (0.5–0.7 on 20 CIFAR-10 images): the
		// encoders share tables and subsampling and the decoders both use
		// libjpeg's fancy chroma upsampling; DCT rounding differs. A wrong
		// quality, subsampling or upsampling gives 3 levels or more.
		if d > 2 || math.Abs(eGo-ePIL) > 0.1*ePIL {
			t.Errorf("quality %d: Go is %.2f levels from Pillow (errors %.2f vs %.2f)", specJpegQuality[sev-1], d, eGo, ePIL)
		}
	}
}

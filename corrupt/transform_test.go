package corrupt

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseTransform(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rotation:10,brightness:0.2", "rotation:10,brightness:0.2"},
		{"rotation-brightness", "rotation:10,brightness:0.2"},
		{"Translation:0.1/0.05, scale:0.9", "translation:0.1/0.05,scale:0.9/0.9"},
		{"contrast:0.7,gamma:1.5,blur:2,awgn:0.05", "contrast:0.7,gamma:1.5,blur:2,awgn:0.05"},
		{"gaussian_noise:0.1", "awgn:0.1"},
	} {
		tr, err := ParseTransform(tc.in)
		if err != nil {
			t.Errorf("ParseTransform(%q): %v", tc.in, err)
			continue
		}
		if got := tr.String(); got != tc.want {
			t.Errorf("ParseTransform(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		again, err := ParseTransform(tr.String())
		if err != nil || again.String() != tr.String() {
			t.Errorf("ParseTransform(%q) does not round-trip: %q, %v", tr.String(), again.String(), err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty transform spec"},
		{"rotation,,blur", "empty operation"},
		{"twirl:3", `unknown family "twirl"`},
		{"rotation:abc", `"abc" is not a number`},
		{"rotation:1/2", "takes one value"},
		{"translation:1/2/3", "one or two values"},
		{"rotation-brightness:0.2", "cannot take parameters"},
		{"gamma:0", "must be > 0"},
		{"scale:2.5", "must lie in (0, 2)"},
		{"blur:-1", "must be ≥ 0"},
		{"awgn:NaN", "is not a number"},
	} {
		_, err := ParseTransform(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "corrupt: ") {
			t.Errorf("ParseTransform(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func mustTransform(t *testing.T, spec string) Transform {
	t.Helper()
	tr, err := ParseTransform(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func sample(t *testing.T, tr Transform, img []float32, c, h, w int, seed uint64) []float32 {
	t.Helper()
	dst := make([]float32, len(img))
	if err := tr.Sample(newRNG(seed), img, c, h, w, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestTransformPhotometric checks each photometric family's parameter range:
// the parameter is recovered from input and output and must lie in the
// family's interval, and it must vary between calls.
func TestTransformPhotometric(t *testing.T) {
	img := synthImage(3, 3, 16, 16)
	for i := range img {
		img[i] = 0.2 + 0.6*img[i] // away from clipping
	}
	for _, tc := range []struct {
		spec    string
		recover func(in, out float64) float64
		lo, hi  float64
	}{
		{"brightness:0.15", func(in, out float64) float64 { return out - in }, -0.15, 0.15},
		{"contrast:0.7", func(in, out float64) float64 { return out / in }, 0.7, 1.3},
		{"contrast:1.2", func(in, out float64) float64 { return out / in }, 0.8, 1.2},
		{"gamma:0.5", func(in, out float64) float64 { return math.Log(out) / math.Log(in) }, 0.5, 2},
		{"gamma:2", func(in, out float64) float64 { return math.Log(out) / math.Log(in) }, 0.5, 2},
	} {
		tr := mustTransform(t, tc.spec)
		var params []float64
		for seed := uint64(0); seed < 50; seed++ {
			out := sample(t, tr, img, 3, 16, 16, seed)
			p := tc.recover(float64(img[0]), float64(out[0]))
			for i := range img {
				if out[i] >= 1 || out[i] <= 0 {
					continue
				}
				// float32 storage: 1e-5 relative.
				if q := tc.recover(float64(img[i]), float64(out[i])); math.Abs(q-p) > 1e-4 {
					t.Fatalf("%s: parameter not uniform over the image: %v vs %v", tc.spec, q, p)
				}
			}
			if p < tc.lo-1e-4 || p > tc.hi+1e-4 {
				t.Errorf("%s: sampled parameter %v outside [%v, %v]", tc.spec, p, tc.lo, tc.hi)
			}
			params = append(params, p)
		}
		// 50 uniform draws: the spread covers most of the interval.
		if spread := slices.Max(params) - slices.Min(params); spread < 0.8*(tc.hi-tc.lo) {
			t.Errorf("%s: parameters span only %v of [%v, %v]", tc.spec, spread, tc.lo, tc.hi)
		}
	}
}

func TestTransformAWGN(t *testing.T) {
	img := constImage(0.5, 3, 64, 64)
	for _, sigma := range []float64{0.02, 0.05, 0.1} {
		tr := mustTransform(t, "awgn:"+strconv.FormatFloat(sigma, 'g', -1, 64))
		out := sample(t, tr, img, 3, 64, 64, 7)
		m, s := meanStd(out)
		// 12288 samples: standard error of the std is 0.6%; no quantization.
		if math.Abs(s-sigma) > 0.03*sigma || math.Abs(m-0.5) > 4*sigma/math.Sqrt(12288) {
			t.Errorf("awgn:%v: mean %v std %v, want 0.5 and %v", sigma, m, s, sigma)
		}
	}
}

func ramp(h, w int, horizontal bool) []float32 {
	img := make([]float32, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 0.1 + 0.8*float64(y)/float64(h-1)
			if horizontal {
				v = 0.1 + 0.8*float64(x)/float64(w-1)
			}
			img[y*w+x] = float32(v)
		}
	}
	return img
}

func TestTransformGeometric(t *testing.T) {
	const h, w = 33, 33 // odd, so the center is a pixel
	center := (h/2)*w + w/2
	img := synthImage(4, 1, h, w)
	for _, spec := range []string{"rotation:0", "translation:0", "scale:1"} {
		if out := sample(t, mustTransform(t, spec), img, 1, h, w, 1); !slices.Equal(out, img) {
			t.Errorf("%s is not the identity", spec)
		}
	}
	// Rotation and scale about the center keep the center pixel.
	for _, spec := range []string{"rotation:30", "scale:0.7"} {
		for seed := uint64(0); seed < 5; seed++ {
			out := sample(t, mustTransform(t, spec), img, 1, h, w, seed)
			if math.Abs(float64(out[center]-img[center])) > 1e-6 {
				t.Errorf("%s moved the center pixel: %v → %v", spec, img[center], out[center])
			}
		}
	}
	// Rotation by φ of a horizontal ramp: the gradient direction turns by
	// at most φ, and varies between draws.
	rx := ramp(h, w, true)
	var angles []float64
	for seed := uint64(0); seed < 20; seed++ {
		out := sample(t, mustTransform(t, "rotation:20"), rx, 1, h, w, seed)
		gx := float64(out[center+1] - out[center-1])
		gy := float64(out[center+w] - out[center-w])
		a := math.Atan2(gy, gx) * 180 / math.Pi
		if math.Abs(a) > 20+0.5 { // bilinear sampling of a ramp is exact; 0.5° for float32
			t.Errorf("rotation:20 turned the gradient by %v°", a)
		}
		angles = append(angles, a)
	}
	if slices.Max(angles)-slices.Min(angles) < 20 {
		t.Errorf("rotation:20 angles span %v°, want most of 40°", slices.Max(angles)-slices.Min(angles))
	}
	// Translation of a ramp: interior values shift by slope·t with
	// |t| ≤ a·W.
	slope := 0.8 / float64(w-1)
	for seed := uint64(0); seed < 10; seed++ {
		out := sample(t, mustTransform(t, "translation:0.1/0"), rx, 1, h, w, seed)
		shift := float64(out[center]-rx[center]) / slope // = −tx
		if math.Abs(shift) > 0.1*float64(w)+1e-3 {
			t.Errorf("translation:0.1/0 shifted by %v px, more than %v", -shift, 0.1*float64(w))
		}
		for x := 6; x < w-6; x++ {
			i := (h/2)*w + x
			if math.Abs(float64(out[i]-rx[i])/slope-shift) > 1e-3 {
				t.Fatalf("translation is not a uniform shift at x = %d", x)
			}
		}
		for y := 0; y < h; y++ { // no vertical shift with b = 0
			if out[y*w+w/2] != out[(h/2)*w+w/2] {
				t.Fatalf("translation:0.1/0 moved rows")
			}
		}
	}
	// Scale: the ramp's slope is divided by the factor, within [0.8, 1.2].
	for seed := uint64(0); seed < 10; seed++ {
		out := sample(t, mustTransform(t, "scale:0.8"), rx, 1, h, w, seed)
		f := float64(out[center+4]-out[center-4]) / (8 * slope)
		if f < 1/1.2-1e-4 || f > 1/0.8+1e-4 {
			t.Errorf("scale:0.8 changed the slope by %v, want 1/s with s in [0.8, 1.2]", f)
		}
	}
}

func TestTransformBlurAndClip(t *testing.T) {
	c := constImage(0.3, 3, 16, 16)
	out := sample(t, mustTransform(t, "blur:2"), c, 3, 16, 16, 3)
	for i := range out {
		if math.Abs(float64(out[i])-0.3) > 1e-6 {
			t.Fatalf("blur changed a constant image: %v", out[i])
		}
	}
	img := synthImage(2, 3, 16, 16)
	_, s0 := meanStd(img)
	_, s1 := meanStd(sample(t, mustTransform(t, "blur:3"), img, 3, 16, 16, 5))
	if s1 >= s0 {
		t.Errorf("blur did not smooth: std %v → %v", s0, s1)
	}
	// Order and clipping after each operation: on a white image,
	// "brightness:0.5,contrast:0.5" gives min(1, min(1, 1+b)·c), with b and
	// c the first two draws of the source (b = 0.5·(2u₁−1), c = 0.5 + u₂).
	white := constImage(1, 1, 4, 4)
	for seed := uint64(0); seed < 20; seed++ {
		out := sample(t, mustTransform(t, "brightness:0.5,contrast:0.5"), white, 1, 4, 4, seed)
		rng := newRNG(seed)
		b := 0.5 * (2*rng.Float64() - 1)
		c := 0.5 + rng.Float64()
		want := math.Min(1, math.Min(1, 1+b)*c)
		for _, v := range out {
			if math.Abs(float64(v)-want) > 1e-6 {
				t.Fatalf("seed %d: brightness %v then contrast %v of white = %v, want %v", seed, b, c, v, want)
			}
		}
	}
	out = sample(t, mustTransform(t, "awgn:5"), constImage(0.5, 1, 8, 8), 1, 8, 8, 1)
	if slices.Min(out) < 0 || slices.Max(out) > 1 {
		t.Errorf("awgn:5 output outside [0,1]: %v..%v", slices.Min(out), slices.Max(out))
	}
}

func TestTransformSampler(t *testing.T) {
	tr := mustTransform(t, "rotation-brightness")
	img := synthImage(1, 3, 16, 16)
	fn, err := tr.Sampler(3, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	a := make([]float32, len(img))
	fn(newRNG(9), img, a)
	b := sample(t, tr, img, 3, 16, 16, 9)
	if !slices.Equal(a, b) {
		t.Error("Sampler and Sample differ for the same seed")
	}
	rng := newRNG(9)
	fn(rng, img, a)
	fn(rng, img, b)
	if slices.Equal(a, b) {
		t.Error("two calls with one source gave the same sample")
	}
	if _, err := tr.Sampler(0, 16, 16); err == nil {
		t.Error("Sampler(0, 16, 16) succeeded")
	}
	if err := tr.Sample(newRNG(1), img[:5], 3, 16, 16, a); err == nil || !strings.Contains(err.Error(), "buffers hold 5") {
		t.Errorf("Sample with a short buffer = %v", err)
	}
	if err := tr.Sample(nil, img, 3, 16, 16, a); err == nil {
		t.Error("Sample with a nil source succeeded")
	}
	var id Transform
	if out := sample(t, id, img, 3, 16, 16, 1); !slices.Equal(out, img) {
		t.Error("the zero Transform is not the identity")
	}
}

func TestTransformCorruption(t *testing.T) {
	tr := mustTransform(t, "corruption:2")
	img := synthImage(5, 3, 32, 32)
	changed := 0
	for seed := uint64(0); seed < 10; seed++ {
		out := sample(t, tr, img, 3, 32, 32, seed)
		for _, v := range out {
			if math.Abs(float64(v)*255-math.Round(float64(v)*255)) > 1e-3 {
				t.Fatalf("corruption transform output %v not on an 8-bit level", v)
			}
		}
		if !slices.Equal(out, img) {
			changed++
		}
	}
	if changed < 8 {
		t.Errorf("corruption:2 changed only %d of 10 samples", changed)
	}
	if _, err := tr.Sampler(2, 32, 32); err == nil || !strings.Contains(err.Error(), "1 or 3 channels") {
		t.Errorf("Sampler(2, 32, 32) = %v, want a channel error", err)
	}
	for _, bad := range []string{"corruption:0", "corruption:2.5", "corruption:6"} {
		if _, err := ParseTransform(bad); err == nil {
			t.Errorf("ParseTransform(%q) succeeded", bad)
		}
	}
}

// TestTransformGrid: the grid of the official script's empirical accuracy
// (linspace over each drawn parameter, endpoints included; the last
// parameter fastest), and no grid for families without bounded
// parameters.
func TestTransformGrid(t *testing.T) {
	tr, err := ParseTransform("brightness:0.2,contrast:0.5")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tr.GridSize(5); err != nil || n != 25 {
		t.Fatalf("GridSize(5) = %d, %v; want 25", n, err)
	}
	g, err := tr.GridSampler(5, 1, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.5, 0.25}
	dst := make([]float32, 2)
	for i := range 25 {
		g(i, x, dst)
		b := -0.2 + 0.1*float64(i/5)       // brightness, the first parameter
		f := 0.5 + 0.25*float64(i%5)       // contrast U(0.5, 1.5), the second
		want := min(1, max(0, (0.25+b)*f)) // pixel 1, clipped after each op
		if math.Abs(float64(dst[1])-want) > 1e-6 {
			t.Errorf("point %d: %v, want %v (b %v, f %v)", i, dst[1], want, b, f)
		}
	}
	for _, spec := range []string{"awgn:0.1", "brightness:0.1,corruption:2"} {
		tr, err := ParseTransform(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.GridSize(20); err == nil || !strings.Contains(err.Error(), "has no grid") {
			t.Errorf("%s: GridSize = %v, want an error", spec, err)
		}
	}
}

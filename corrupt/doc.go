// Package corrupt regenerates the image corruptions of CIFAR-10-C and the
// random transform families of CC-Cert, in Go, deterministically from a
// seed.
//
// # Sources
//
// Corruptions: D. Hendrycks and T. Dietterich, "Benchmarking Neural Network
// Robustness to Common Corruptions and Perturbations", ICLR 2019, and the
// script that made CIFAR-10-C, hendrycks/robustness
// ImageNet-C/create_c/make_cifar_c.py, whose per-severity parameters are
// transcribed here (CSAM-SPEC.md §4.3 lists them). Results are
// "CIFAR-10-C-style (regenerated)", not the released CIFAR-10-C files.
//
// CC-Cert transforms: M. Pautov et al., "CC-Cert: A Probabilistic Approach
// to Certify General Robustness of Neural Networks", AAAI 2022, official
// code mikhailpautov/cccert (estimates/code/aug_aug.py); see ParseTransform.
//
// # Conventions
//
// Images are float32, CHW, values in [0,1], with 1 or 3 channels and any
// height and width (CIFAR is 3×32×32). Destination last; dst may alias the
// source. Randomness is always passed in as a *rand.Rand (math/rand/v2):
// the same seed gives the same output. Bad input (unknown name, severity
// outside 1..5, wrong buffer length, channel count other than 1 or 3, nil
// source) returns an error; nothing panics on user input.
//
// Corruptions work like the original pipeline on 8-bit images: the input is
// rounded to 8-bit levels k/255 first, and the output is clipped to [0,1]
// and truncated to 8-bit levels, as make_cifar_c.py's final np.uint8 cast
// truncates. Stages that went through an 8-bit file or library in the
// original (PNG for ImageMagick, PIL for JPEG and pixelate, the uint8 step
// inside glass blur) are quantized at the same points. Transforms
// (CC-Cert) are not quantized: they clip to [0,1] after every operation.
//
// One-channel images: operations defined on color (brightness, saturate in
// HSV; snow, frost, spatter) see the gray image as R = G = B and are
// collapsed back with the BT.601 luma weights 0.299, 0.587, 0.114.
//
// # Other image sizes
//
// The parameters are those of 32×32 CIFAR. For an h×w image, quantities in
// pixels scale by s = min(h, w)/32: the σ of gaussian_blur, glass_blur
// (and its maximal offset, rounded, at least 1) and spatter; the disk radius
// and alias blur of defocus_blur; radius and σ of the motion-blur kernel
// (motion_blur, snow); the frost crystal sizes. Elastic's α, σ and affine
// jitter are fractions of the image size as in the original (IMSIZE·c).
// Pixelate shrinks each axis to int(n·c). Fog uses a diamond-square map whose
// side is the smallest power of two ≥ max(h, w) (32 for CIFAR). The glass
// blur swap loops run from h−d down to d+1 (31 down to 2 for CIFAR). Zoom
// factors, noise levels, JPEG qualities and HSV shifts do not depend on
// size.
//
// # Quirks of the original kept on purpose
//
//   - glass_blur: offsets come from numpy's randint(−1, 1), whose upper
//     bound is exclusive, so only −1 and 0 occur; the loops run from 31 down
//     to 2 only. The "swap" x[h,w], x[h',w'] = x[h',w'], x[h,w] acts on
//     numpy views and is really a copy: pixel (h,w) takes the value of its
//     up-left neighbour (h',w'), which keeps its own (checked with numpy
//     1.24). So each pass jitters every visited pixel by one random up-left
//     step and does not preserve the pixel multiset; this is reproduced.
//   - zoom_blur: np.arange(1, stop, 0.01) in floating point gives 7, 12, 16,
//     21, 26 factors (the stops 1.06 and 1.11 are included, 1.16 to 1.26 are
//     not); factor 1 is included, so the clean image counts twice.
//   - pixelate: Pillow's BOX filter both ways to int(32·c) = 30, 28, 27, 24,
//     20; upscaling with BOX is nearest-neighbour, so the result is
//     piecewise constant. Each pass rounds to 8 bits as Pillow does.
//   - defocus_blur: the disk on the integer grid −8..8 contains one pixel
//     for radii 0.3–0.5, a 5-pixel plus for radius 1 and a 3×3 block for
//     1.5, blurred by a 3×3 Gaussian with σ = alias_blur; filtering uses
//     reflect-101 borders as OpenCV's filter2D.
//   - fog: wibble starts at 100 and the random term is wibble·U(−wibble,
//     wibble); the map is a torus (np.roll).
//   - spatter: severities 1–3 are water, 4–5 mud; the mud mask is blurred
//     with σ = "intensity" (0.6).
//   - motion_blur: severities 3 (radius 6, σ 2) and 4 (radius 8, σ 2) have
//     the same kernel up to taps of weight ~1e-9; they differ only in the
//     random angle.
//   - elastic_transform: the affine jitter falls with severity (2.56 to
//     0.96 pixels) while the elastic field grows, so the mean pixel change
//     falls; frost's image weight falls (1 to 0.75) while the frost weight
//     grows, so its mean change is not monotone either.
//   - saturate is not monotone in severity by design (S·0.3, S·0.1, then
//     S·1.5 and up); glass_blur severity 4 uses a smaller σ than 3.
//
// # Deviations (documented, not bit-exact)
//
//   - Random numbers come from math/rand/v2, not numpy: the same statistics,
//     not the same draws. Poisson uses Hörmann's PTRS like numpy.
//   - motion_blur and snow: ImageMagick's MotionBlurImage is reimplemented:
//     2⌈radius⌉+1 taps of a one-sided Gaussian exp(−i²/2σ²), normalized, at
//     offsets (⌈i·cos θ − ½⌉, ⌈i·sin θ − ½⌉), edge virtual pixels, rounded to
//     8 bits. This is the shape of ImageMagick's kernel but not bit-exact
//     (ImageMagick versions differ in rounding and in virtual pixels).
//   - frost: the five frost photographs of ImageNet-C are not available.
//     The texture is procedural (frostTexture: a diamond-square haze, ice
//     needles with ±60° side branches, slight blur and grain, tinted
//     cyan-white), mixed with the original weights. Info.Procedural is true
//     for frost so that reports can leave it out of means compared with
//     published CIFAR-10-C numbers, and say so.
//   - spatter (water): OpenCV's Canny is reimplemented (3×3 Sobel, L1 norm,
//     non-maximum suppression, hysteresis 50/150); the distance transform
//     is the exact Euclidean one where OpenCV's DIST_L2 with a 5×5 mask
//     approximates it; equalizeHist, the emboss filter and the box blurs
//     follow OpenCV's rounding.
//   - jpeg_compression: Go's image/jpeg encoder and decoder replace PIL's
//     libjpeg (same quality scaling of the standard tables and 4:2:0 chroma
//     subsampling). Go's decoder repeats chroma samples where libjpeg
//     interpolates them ("fancy upsampling"), so the chroma planes are
//     upsampled here with libjpeg's triangle filter; DCT and
//     color-conversion rounding still differ slightly.
//   - elastic_transform: warpAffine's fixed-point (1/32 pixel) bilinear
//     weights are exact floating point here; map_coordinates' reflect mode
//     is applied to the two bilinear neighbours.
//   - defocus_blur: the disk grid is padded by the alias blur's width so
//     the blur's reflected border never reaches the disk and the kernel
//     sums to 1; identical to the original for radius ≤ 7 (all images up
//     to 149 pixels), slightly different above.
//   - spatter: the rare liquid values above 1 are clipped before the uint8
//     cast, where numpy's cast would wrap around.
//   - skimage's gaussian is computed in float64 like scipy's, with
//     truncate 4 and mode nearest; OpenCV's GaussianBlur in the disk kernel
//     uses the exact Gaussian (σ > 0).
//
// # Sweeps
//
// NewRNG gives every (seed, corruption, severity, image index) its own
// random stream, so a sweep gives the same images whatever the order,
// batching or sharding. runtime.CorruptionSweep (what verify runs) keys
// its streams by (seed, severity, image index) alone, with a stream
// constant of its own: its images are not those of NewRNG, and the
// corruptions of one image at one severity draw from the same stream
// (gaussian_noise and speckle_noise, say, from the same normals), which
// leaves each corruption's accuracy unbiased but correlates them. Info.Procedural (frost) and Info.Approximate
// (motion_blur, snow, spatter, jpeg_compression) say which corruptions
// are not reproductions of the original's numerics.
//
// # Validation against the original
//
// pixelate is byte-identical to Pillow 9.4's BOX resizes
// (testdata/pixelate_pillow.bin); the diamond-square map matches the
// statistics of make_cifar_c.py's plasma_fractal run with numpy; on the
// first 20 lossless CIFAR-10 test images, jpeg_compression differs from
// Pillow 9.4's JPEG round trip by 0.5–0.7 levels on average, and its mean
// error to the clean image equals Pillow's within 0.02 levels (5.01 vs
// 5.00 at quality 80, 7.82 vs 7.81 at quality 40); testdata/jpeg_pillow.bin
// holds such a check. numpy's arange gives the zoom counts 7, 12, 16, 21,
// 26 and its view "swap" is a copy (both checked with numpy 1.24).
//
// # CC-Cert transforms
//
// ParseTransform reads specs such as "rotation:10,brightness:0.2" or the
// CC-Cert code's "rotation-brightness"; Transform.Sample draws fresh
// parameters per call, and Transform.Sampler adapts it to the
// func(rng, x, dst) that the certification code calls. Geometric families
// sample bilinearly with zero padding (kornia's defaults); "blur" uses
// reflect-101 borders and truncation at 4σ. The family "corruption:s"
// draws one of the 15 benchmark corruptions at a severity in 1..s, one
// option CSAM-SPEC §4.1 lists for CIFAR-10-C. Bare families get
// documented defaults (rotation 10°, translation 0.1, scale 0.9,
// brightness 0.2, contrast 0.8, gamma 0.8, blur 1, awgn 0.1), a choice made
// here since the paper's values are unknown.
package corrupt

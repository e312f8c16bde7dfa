package corrupt

import (
	"math"
	"math/rand/v2"
)

// Severity tables of make_cifar_c.py (index severity−1).
var (
	gaussianNoiseSigma = [5]float64{0.04, 0.06, 0.08, 0.09, 0.10}
	shotNoiseLambda    = [5]float64{500, 250, 100, 75, 50}
	impulseNoiseAmount = [5]float64{0.01, 0.02, 0.03, 0.05, 0.07}
	speckleNoiseSigma  = [5]float64{0.06, 0.10, 0.12, 0.16, 0.20}
)

// gaussianNoise: x + N(0, σ²) per element.
func gaussianNoise(sev int, x *raster, rng *rand.Rand) {
	s := gaussianNoiseSigma[sev-1]
	for i := range x.p {
		x.p[i] += s * rng.NormFloat64()
	}
}

// shotNoise: Poisson(x·λ)/λ per element.
func shotNoise(sev int, x *raster, rng *rand.Rand) {
	lam := shotNoiseLambda[sev-1]
	for i, v := range x.p {
		x.p[i] = poisson(rng, v*lam) / lam
	}
}

// impulseNoise is skimage's random_noise(mode='s&p', amount, salt_vs_pepper
// 0.5): each element (channels separately) is replaced with probability
// amount, by 1 (salt) or 0 (pepper) with equal odds.
func impulseNoise(sev int, x *raster, rng *rand.Rand) {
	amount := impulseNoiseAmount[sev-1]
	for i := range x.p {
		if rng.Float64() < amount {
			if rng.Float64() < 0.5 {
				x.p[i] = 1
			} else {
				x.p[i] = 0
			}
		}
	}
}

// speckleNoise: x + x·N(0, σ²) per element.
func speckleNoise(sev int, x *raster, rng *rand.Rand) {
	s := speckleNoiseSigma[sev-1]
	for i, v := range x.p {
		x.p[i] = v + v*s*rng.NormFloat64()
	}
}

// poisson draws from Poisson(lam): multiplication of uniforms below 10,
// Hörmann's transformed rejection (PTRS, 1993, the method numpy uses) above.
func poisson(rng *rand.Rand, lam float64) float64 {
	if lam <= 0 {
		return 0
	}
	if lam < 10 {
		limit := math.Exp(-lam)
		k := 0.0
		prod := rng.Float64()
		for prod > limit {
			k++
			prod *= rng.Float64()
		}
		return k
	}
	slam := math.Sqrt(lam)
	loglam := math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return k
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lam+k*loglam-lg {
			return k
		}
	}
}

package finetune

import (
	"fmt"
	"math"
)

// SGD is stochastic gradient descent with momentum, optional Nesterov
// momentum and decoupled-from-nothing (classic L2) weight decay, as
// PyTorch's torch.optim.SGD defines it:
//
//	g ← g + wd·w
//	v ← μ·v + g
//	step = g + μ·v (Nesterov) or v
//	w ← w − lr·step
type SGD struct {
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
	// vel holds one velocity buffer per parameter, by name.
	vel map[string][]float32
}

// Param is one tensor the optimizer updates.
type Param struct {
	Name string
	W    []float32 // weights, updated in place
	G    []float32 // gradient
	// Mask, when non-nil, freezes the entries where it is 0: their gradient
	// and velocity are ignored and the weight is kept at 0.
	Mask []float32
	// NoDecay exempts the parameter from weight decay (BatchNorm scale and
	// shift, biases).
	NoDecay bool
}

// Step applies one update with learning rate lr.
func (o *SGD) Step(params []Param, lr float64) {
	if o.vel == nil {
		o.vel = map[string][]float32{}
	}
	mu := float32(o.Momentum)
	l := float32(lr)
	for _, p := range params {
		wd := float32(o.WeightDecay)
		if p.NoDecay {
			wd = 0
		}
		v := o.vel[p.Name]
		if v == nil && mu != 0 {
			v = make([]float32, len(p.W))
			o.vel[p.Name] = v
		}
		w, g, m := p.W, p.G, p.Mask
		for i := range w {
			if m != nil && m[i] == 0 {
				w[i] = 0
				continue
			}
			gi := g[i] + wd*w[i]
			step := gi
			if mu != 0 {
				v[i] = mu*v[i] + gi
				if o.Nesterov {
					step = gi + mu*v[i]
				} else {
					step = v[i]
				}
			}
			w[i] -= l * step
		}
	}
}

// State returns the optimizer's buffers for a checkpoint (shared, not
// copied).
func (o *SGD) State() map[string][]float32 {
	out := make(map[string][]float32, len(o.vel))
	for k, v := range o.vel {
		out["sgd.velocity."+k] = v
	}
	return out
}

// Restore loads buffers saved by State.
func (o *SGD) Restore(state map[string][]float32) {
	o.vel = map[string][]float32{}
	const prefix = "sgd.velocity."
	for k, v := range state {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			o.vel[k[len(prefix):]] = append([]float32(nil), v...)
		}
	}
}

// Schedule is a learning-rate schedule over optimizer steps.
type Schedule struct {
	// Kind is "cosine" (default), "step" or "constant".
	Kind string
	// Base is the peak learning rate.
	Base float64
	// WarmupSteps ramps linearly from Base/WarmupSteps to Base.
	WarmupSteps int
	// TotalSteps is the length of the run (cosine decays to 0 at the end).
	TotalSteps int
	// StepEvery and Gamma define the step schedule: multiply by Gamma every
	// StepEvery steps.
	StepEvery int
	Gamma     float64
}

// Validate reports a schedule that cannot run.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "", "cosine", "constant":
	case "step":
		if s.StepEvery <= 0 || s.Gamma <= 0 {
			return fmt.Errorf("finetune: step schedule needs StepEvery > 0 and Gamma > 0 (got %d, %v)", s.StepEvery, s.Gamma)
		}
	default:
		return fmt.Errorf("finetune: unknown learning-rate schedule %q (want cosine, step or constant)", s.Kind)
	}
	if s.Base <= 0 || math.IsNaN(s.Base) || math.IsInf(s.Base, 0) {
		return fmt.Errorf("finetune: learning rate %v must be positive", s.Base)
	}
	return nil
}

// At returns the learning rate for step (0-based).
func (s Schedule) At(step int) float64 {
	if s.WarmupSteps > 0 && step < s.WarmupSteps {
		return s.Base * float64(step+1) / float64(s.WarmupSteps)
	}
	switch s.Kind {
	case "constant":
		return s.Base
	case "step":
		return s.Base * math.Pow(s.Gamma, float64(step/s.StepEvery))
	}
	total := s.TotalSteps - s.WarmupSteps
	if total <= 0 {
		return s.Base
	}
	t := float64(step-s.WarmupSteps) / float64(total)
	if t > 1 {
		t = 1
	}
	return s.Base * 0.5 * (1 + math.Cos(math.Pi*t))
}

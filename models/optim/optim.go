package optim

import (
	"fmt"
	"math"
)

// Tensor is one trained tensor: its values, the gradient of the loss with
// respect to them (same length), and whether weight decay applies to it
// (usually matrices, not norms or biases).
type Tensor struct {
	Value, Grad []float32
	Decay       bool
}

// AdamW is the Adam optimizer with decoupled weight decay (Loshchilov and
// Hutter). The zero value is not usable: build it with NewAdamW.
type AdamW struct {
	// Beta1 and Beta2 are the decay rates of the first and second moment
	// estimates; Eps is added to the root of the second moment.
	Beta1, Beta2, Eps float64
	// WeightDecay multiplies a decayed tensor's values by 1 − lr·WeightDecay
	// at each step.
	WeightDecay float64

	state AdamWState
}

// AdamWState is the part of an AdamW that changes as it steps: what a
// checkpoint must keep to resume exactly.
type AdamWState struct {
	// Step counts the steps taken.
	Step int
	// M and V hold the first and second moments, one slice per tensor.
	M, V [][]float32
}

// NewAdamW returns an AdamW for tensors of the given sizes with the usual
// betas (0.9, 0.999), eps 1e-8 and the given weight decay.
func NewAdamW(sizes []int, weightDecay float64) *AdamW {
	a := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay}
	a.state.M = make([][]float32, len(sizes))
	a.state.V = make([][]float32, len(sizes))
	for i, n := range sizes {
		a.state.M[i] = make([]float32, n)
		a.state.V[i] = make([]float32, n)
	}
	return a
}

// State returns a copy of the optimizer's state.
func (a *AdamW) State() AdamWState {
	s := AdamWState{Step: a.state.Step, M: make([][]float32, len(a.state.M)), V: make([][]float32, len(a.state.V))}
	for i := range s.M {
		s.M[i] = append([]float32(nil), a.state.M[i]...)
		s.V[i] = append([]float32(nil), a.state.V[i]...)
	}
	return s
}

// SetState restores a state State returned; the tensor sizes must match the
// optimizer's.
func (a *AdamW) SetState(s AdamWState) error {
	if len(s.M) != len(a.state.M) || len(s.V) != len(a.state.V) {
		return fmt.Errorf("adamw: restore state of %d tensors into an optimizer of %d", len(s.M), len(a.state.M))
	}
	for i := range s.M {
		if len(s.M[i]) != len(a.state.M[i]) || len(s.V[i]) != len(a.state.M[i]) {
			return fmt.Errorf("adamw: restore state: tensor %d has %d values, the optimizer %d", i, len(s.M[i]), len(a.state.M[i]))
		}
	}
	a.state.Step = s.Step
	for i := range s.M {
		copy(a.state.M[i], s.M[i])
		copy(a.state.V[i], s.V[i])
	}
	return nil
}

// Step applies one update with learning rate lr to the tensors, which must
// be the ones (and sizes) the optimizer was made for, in the same order.
func (a *AdamW) Step(ts []Tensor, lr float64) error {
	if len(ts) != len(a.state.M) {
		return fmt.Errorf("adamw: step over %d tensors, the optimizer has %d", len(ts), len(a.state.M))
	}
	for i, t := range ts {
		if len(t.Value) != len(a.state.M[i]) || len(t.Grad) != len(t.Value) {
			return fmt.Errorf("adamw: tensor %d has %d values and %d gradients, the optimizer holds %d", i, len(t.Value), len(t.Grad), len(a.state.M[i]))
		}
	}
	a.state.Step++
	b1, b2 := a.Beta1, a.Beta2
	c1 := 1 - math.Pow(b1, float64(a.state.Step))
	c2 := 1 - math.Pow(b2, float64(a.state.Step))
	for i, t := range ts {
		m, v := a.state.M[i], a.state.V[i]
		decay := 1.0
		if t.Decay {
			decay = 1 - lr*a.WeightDecay
		}
		for j, g64 := range t.Grad {
			g := float64(g64)
			mj := b1*float64(m[j]) + (1-b1)*g
			vj := b2*float64(v[j]) + (1-b2)*g*g
			m[j], v[j] = float32(mj), float32(vj)
			upd := (mj / c1) / (math.Sqrt(vj/c2) + a.Eps)
			t.Value[j] = float32(float64(t.Value[j])*decay - lr*upd)
		}
	}
	return nil
}

// Schedule is a learning rate that rises linearly from 0 to Peak over
// Warmup steps, then falls along a half cosine to Min at step Total, and
// stays at Min after it.
type Schedule struct {
	Peak, Min     float64
	Warmup, Total int
}

// At returns the learning rate of step (counted from 0).
func (s Schedule) At(step int) float64 {
	if step < s.Warmup {
		return s.Peak * float64(step+1) / float64(s.Warmup)
	}
	if step >= s.Total || s.Total <= s.Warmup {
		return s.Min
	}
	frac := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	return s.Min + (s.Peak-s.Min)*0.5*(1+math.Cos(math.Pi*frac))
}

// ClipGlobalNorm scales every gradient by maxNorm/‖g‖ when the global norm
// ‖g‖ of all of them together exceeds maxNorm (maxNorm ≤ 0 clips nothing),
// and returns ‖g‖ before clipping.
func ClipGlobalNorm(ts []Tensor, maxNorm float64) float64 {
	var ss float64
	for _, t := range ts {
		for _, g := range t.Grad {
			ss += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 && norm > maxNorm {
		f := float32(maxNorm / norm)
		for _, t := range ts {
			for j := range t.Grad {
				t.Grad[j] *= f
			}
		}
	}
	return norm
}

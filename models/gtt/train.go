package gtt

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// TrainConfig sets the optimizer: AdamW with decoupled weight decay on the
// weight matrices (not on norms and biases), a linear warmup to LR, then a
// cosine decay to LR·MinLRFrac at Steps, and clipping of the gradient's
// global norm.
type TrainConfig struct {
	LR          float64
	MinLRFrac   float64
	WarmupSteps int
	Steps       int
	WeightDecay float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	ClipNorm    float64 // 0 disables clipping
	// TargetClip bounds normalized targets (in units of the window's
	// standard deviation) so that a rare jump cannot dominate the loss.
	TargetClip float64
}

// DefaultTrainConfig returns the settings the embedded checkpoint was
// trained with, for the given number of steps.
func DefaultTrainConfig(steps int) TrainConfig {
	return TrainConfig{
		LR: 1e-3, MinLRFrac: 0.05, WarmupSteps: min(200, max(1, steps/20)), Steps: steps,
		WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.98, Eps: 1e-8, ClipNorm: 1, TargetClip: 10,
	}
}

// Sample is one training example: a multivariate window and the next
// PatchLen steps of its first len(Target) channels (later channels, such as
// time features, are inputs only).
type Sample struct {
	// Series holds the window's channels, all of one length (NaN marks a
	// missing value); only the last Context steps are read.
	Series [][]float32
	// Target holds PatchLen steps per predicted channel; NaN steps are
	// left out of the loss.
	Target [][]float32
	// Rollout, when positive, is the number of steps (a multiple of
	// PatchLen) at the end of each predicted channel's window that Pretrain
	// overwrites with the model's own forecast from the steps before them
	// (one pass per patch, as a long forecast rolls out) before it trains
	// on the sample, so that the model learns to continue its own
	// predictions. The other channels keep their values there. Trainer
	// methods read the window as it is.
	Rollout int
}

// Trainer runs optimization steps on a model.
type Trainer struct {
	m      *Model
	cfg    TrainConfig
	step   int
	grads  []float32
	gv     paramViews
	mom    []float32
	vel    []float32
	decay  []bool // per tensor: whether weight decay applies
	ws     workspace
	b      *batch
	dout   []float32
	weight []float32
}

// NewTrainer returns a trainer for m that starts at step start (for
// resuming a schedule).
func NewTrainer(m *Model, cfg TrainConfig, start int) (*Trainer, error) {
	if cfg.Steps <= 0 || cfg.LR <= 0 || cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1 {
		return nil, fmt.Errorf("new gtt trainer: bad settings %+v", cfg)
	}
	t := &Trainer{
		m: m, cfg: cfg, step: start,
		grads: make([]float32, len(m.params)),
		mom:   make([]float32, len(m.params)),
		vel:   make([]float32, len(m.params)),
		b:     newBatch(m.cfg),
	}
	t.gv = bind(m.cfg, m.specs, t.grads)
	t.ws.train = true
	for _, s := range m.specs {
		t.decay = append(t.decay, strings.HasSuffix(s.name, ".weight") && len(s.shape) == 2)
	}
	return t, nil
}

// Step returns the number of steps taken.
func (t *Trainer) Step() int { return t.step }

// LR returns the learning rate of the next step.
func (t *Trainer) LR() float64 {
	c := t.cfg
	s := float64(t.step)
	if t.step < c.WarmupSteps {
		return c.LR * (s + 1) / float64(c.WarmupSteps)
	}
	p := math.Min(1, (s-float64(c.WarmupSteps))/math.Max(1, float64(c.Steps-c.WarmupSteps)))
	lo := c.LR * c.MinLRFrac
	return lo + (c.LR-lo)*0.5*(1+math.Cos(math.Pi*p))
}

// ErrNoTargets is returned by TrainStep for a batch without a single
// observed target value.
var ErrNoTargets = errors.New("batch has no observed target")

// Loss returns the mean squared error, in each window's normalized units,
// of the model's next-patch prediction over samples, without training.
func (t *Trainer) Loss(samples []Sample) (float64, error) {
	t.ws.train = false
	defer func() { t.ws.train = true }()
	l, _, err := t.lossAndGrad(samples)
	return l, err
}

// TrainStep runs one optimization step on samples and returns the batch's
// loss (before the step) and the gradient's global norm (before clipping).
func (t *Trainer) TrainStep(samples []Sample) (loss, gradNorm float64, err error) {
	clear(t.grads)
	loss, _, err = t.lossAndGrad(samples)
	if err != nil {
		return 0, 0, err
	}
	var sq float64
	for _, g := range t.grads {
		sq += float64(g) * float64(g)
	}
	gradNorm = math.Sqrt(sq)
	if math.IsNaN(gradNorm) || math.IsInf(gradNorm, 0) {
		return loss, gradNorm, fmt.Errorf("gtt train step %d: gradient is not finite", t.step)
	}
	clip := 1.0
	if t.cfg.ClipNorm > 0 && gradNorm > t.cfg.ClipNorm {
		clip = t.cfg.ClipNorm / gradNorm
	}
	t.apply(clip)
	return loss, gradNorm, nil
}

// lossAndGrad runs the forward pass (and, when training, the backward pass
// into t.grads) and returns the loss and the number of target values.
func (t *Trainer) lossAndGrad(samples []Sample) (float64, int, error) {
	m := t.m
	pl := m.cfg.PatchLen
	b := t.b
	b.reset()
	for i, s := range samples {
		if err := checkSample(m.cfg, s); err != nil {
			return 0, 0, fmt.Errorf("gtt train: sample %d: %w", i, err)
		}
		b.addGroup(s.Series)
	}
	m.forward(b, &t.ws)
	out := t.ws.out
	t.dout = grow(t.dout, len(out))
	clear(t.dout)
	// Normalized targets and their mask, row by row.
	var loss float64
	count := 0
	row := 0
	for _, s := range samples {
		for c := range s.Series {
			if c < len(s.Target) {
				mean, sd := b.mean[row+c], b.scale[row+c]
				for k, v := range s.Target[c] {
					if !usable(v) {
						continue
					}
					z := (float64(v) - mean) / sd
					z = math.Max(-t.cfg.TargetClip, math.Min(t.cfg.TargetClip, z))
					e := float64(out[(row+c)*pl+k]) - z
					loss += e * e
					t.dout[(row+c)*pl+k] = float32(e)
					count++
				}
			}
		}
		row += len(s.Series)
	}
	if count == 0 {
		return 0, 0, ErrNoTargets
	}
	loss /= float64(count)
	if !t.ws.train {
		return loss, count, nil
	}
	scale := float32(2 / float64(count))
	for i := range t.dout {
		t.dout[i] *= scale
	}
	m.backward(b, &t.ws, t.dout, t.gv)
	return loss, count, nil
}

func checkSample(cfg Config, s Sample) error {
	if len(s.Series) == 0 || len(s.Series[0]) == 0 {
		return fmt.Errorf("empty window")
	}
	if len(s.Target) > len(s.Series) {
		return fmt.Errorf("%d targets for %d channels", len(s.Target), len(s.Series))
	}
	for c, ch := range s.Series {
		if len(ch) != len(s.Series[0]) {
			return fmt.Errorf("channel %d has %d steps, channel 0 has %d", c, len(ch), len(s.Series[0]))
		}
	}
	for c, tg := range s.Target {
		if len(tg) != cfg.PatchLen {
			return fmt.Errorf("target %d has %d steps, want %d", c, len(tg), cfg.PatchLen)
		}
	}
	return nil
}

// apply takes one AdamW step with the gradient scaled by clip.
func (t *Trainer) apply(clip float64) {
	c := t.cfg
	t.step++
	lr := t.lrAt(t.step - 1)
	b1, b2 := c.Beta1, c.Beta2
	bc1 := 1 - math.Pow(b1, float64(t.step))
	bc2 := 1 - math.Pow(b2, float64(t.step))
	stepSize := float32(lr / bc1)
	invBC2 := float32(1 / bc2)
	fb1, fb2 := float32(b1), float32(b2)
	eps := float32(c.Eps)
	cl := float32(clip)
	for si, s := range t.m.specs {
		lo, hi := s.off, s.off+s.size()
		p, g, mo, ve := t.m.params[lo:hi], t.grads[lo:hi], t.mom[lo:hi], t.vel[lo:hi]
		wd := float32(0)
		if t.decay[si] {
			wd = float32(lr * c.WeightDecay)
		}
		for i := range p {
			gi := g[i] * cl
			mo[i] = fb1*mo[i] + (1-fb1)*gi
			ve[i] = fb2*ve[i] + (1-fb2)*gi*gi
			p[i] -= stepSize*mo[i]/(float32(math.Sqrt(float64(ve[i]*invBC2)))+eps) + wd*p[i]
		}
	}
}

func (t *Trainer) lrAt(step int) float64 {
	s := t.step
	t.step = step
	lr := t.LR()
	t.step = s
	return lr
}

// NaiveLoss returns the loss, in the units of Loss, of the naive forecast
// (each channel's last observed value) on samples: the baseline a trained
// model should beat.
func NaiveLoss(cfg Config, samples []Sample, targetClip float64) float64 {
	var sum float64
	n := 0
	for _, s := range samples {
		for c, tg := range s.Target {
			h := s.Series[c]
			h = h[max(0, len(h)-cfg.Context):]
			mean, sd := revinStats(h)
			last := math.NaN()
			for i := len(h) - 1; i >= 0; i-- {
				if usable(h[i]) {
					last = (float64(h[i]) - mean) / sd
					break
				}
			}
			if math.IsNaN(last) {
				continue
			}
			for _, v := range tg {
				if !usable(v) {
					continue
				}
				z := math.Max(-targetClip, math.Min(targetClip, (float64(v)-mean)/sd))
				sum += (last - z) * (last - z)
				n++
			}
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

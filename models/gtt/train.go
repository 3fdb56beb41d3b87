package gtt

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
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

// Trainer runs optimization steps on a model. A model with several threads
// is trained data-parallel: each step's samples are split into shards of
// about equal token counts, one per thread, whose forward and backward
// passes run at the same time on single-threaded views of the weights and
// whose gradients are then summed. (Splitting each matrix product over
// threads instead scales poorly at these sizes.)
type Trainer struct {
	m      *Model
	cfg    TrainConfig
	step   int
	grads  []float32
	mom    []float32
	vel    []float32
	decay  []bool // per tensor: whether weight decay applies
	shards []*shard
}

// shard is the state of one data-parallel worker: a view of the model, its
// own batch and activations, and the gradient of its part of the loss.
type shard struct {
	m     *Model
	b     *batch
	ws    workspace
	dout  []float32
	grads []float32
	gv    paramViews
	sse   float64 // sum of squared errors of the last run
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
	}
	for _, s := range m.specs {
		t.decay = append(t.decay, strings.HasSuffix(s.name, ".weight") && len(s.shape) == 2)
	}
	return t, nil
}

// shard returns worker i's state, created on first use. Shard 0 writes
// its gradient straight into t.grads.
func (t *Trainer) shard(i int) *shard {
	for len(t.shards) <= i {
		sh := &shard{m: t.m.WithThreads(1), b: newBatch(t.m.cfg)}
		if len(t.shards) == 0 {
			sh.grads = t.grads
		} else {
			sh.grads = make([]float32, len(t.m.params))
		}
		sh.gv = bind(t.m.cfg, t.m.specs, sh.grads)
		t.shards = append(t.shards, sh)
	}
	return t.shards[i]
}

// SetSteps changes the schedule's length (the step the cosine decay ends
// at), as a run with a time budget does once it knows its speed.
func (t *Trainer) SetSteps(n int) { t.cfg.Steps = max(n, t.cfg.WarmupSteps+1) }

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
	l, _, err := t.lossAndGrad(samples, false)
	return l, err
}

// TrainStep runs one optimization step on samples and returns the batch's
// loss (before the step) and the gradient's global norm (before clipping).
func (t *Trainer) TrainStep(samples []Sample) (loss, gradNorm float64, err error) {
	loss, _, err = t.lossAndGrad(samples, true)
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
// into t.grads, which it overwrites) and returns the loss and the number of
// target values.
func (t *Trainer) lossAndGrad(samples []Sample, train bool) (float64, int, error) {
	count := 0
	for i, s := range samples {
		if err := checkSample(t.m.cfg, s); err != nil {
			return 0, 0, fmt.Errorf("gtt train: sample %d: %w", i, err)
		}
		for _, tg := range s.Target {
			for _, v := range tg {
				if usable(v) {
					count++
				}
			}
		}
	}
	if count == 0 {
		return 0, 0, ErrNoTargets
	}
	parts := t.split(samples)
	if len(parts) == 1 {
		sh := t.shard(0)
		sh.m = t.m // one shard: the matrix products use every thread
		sh.run(samples, t.cfg.TargetClip, count, train)
		return sh.sse / float64(count), count, nil
	}
	var wg sync.WaitGroup
	for i, p := range parts {
		sh := t.shard(i)
		sh.m = t.m.WithThreads(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.run(p, t.cfg.TargetClip, count, train)
		}()
	}
	wg.Wait()
	var sse float64
	for i := range parts {
		sse += t.shards[i].sse
	}
	if train {
		t.sumGrads(len(parts))
	}
	return sse / float64(count), count, nil
}

// split cuts samples into up to one contiguous part per thread, of about
// equal token counts, keeping at least two samples per part.
func (t *Trainer) split(samples []Sample) [][]Sample {
	n := min(t.m.threads, len(samples)/2)
	if n <= 1 {
		return [][]Sample{samples}
	}
	total := 0
	for _, s := range samples {
		total += t.m.tokensOf(s)
	}
	parts := make([][]Sample, 0, n)
	lo, acc := 0, 0
	for i, s := range samples {
		acc += t.m.tokensOf(s)
		// Close part k once it holds its share of the tokens, leaving at
		// least one sample for each part still to come.
		if k := len(parts); k < n-1 && acc*n >= total*(k+1) && len(samples)-(i+1) >= n-1-k {
			parts = append(parts, samples[lo:i+1])
			lo = i + 1
		}
	}
	return append(parts, samples[lo:])
}

// sumGrads adds the gradients of shards 1..n-1 into shard 0's, t.grads,
// splitting the parameters over the threads.
func (t *Trainer) sumGrads(n int) {
	parallel(len(t.grads), t.m.threads, func(lo, hi int) {
		dst := t.grads[lo:hi]
		for _, sh := range t.shards[1:n] {
			for i, g := range sh.grads[lo:hi] {
				dst[i] += g
			}
		}
	})
}

// run computes the shard's sum of squared errors over samples and, when
// training, overwrites its gradient with that of the sum's share of the
// mean squared error over count target values.
func (sh *shard) run(samples []Sample, targetClip float64, count int, train bool) {
	m := sh.m
	pl := m.cfg.PatchLen
	b := sh.b
	b.reset()
	for _, s := range samples {
		b.addGroup(s.Series)
	}
	sh.ws.train = train
	m.forward(b, &sh.ws)
	out := sh.ws.out
	sh.dout = grow(sh.dout, len(out))
	clear(sh.dout)
	// Normalized targets and their mask, row by row.
	var sse float64
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
					z = math.Max(-targetClip, math.Min(targetClip, z))
					e := float64(out[(row+c)*pl+k]) - z
					sse += e * e
					sh.dout[(row+c)*pl+k] = float32(e)
				}
			}
		}
		row += len(s.Series)
	}
	sh.sse = sse
	if !train {
		return
	}
	scale := float32(2 / float64(count))
	for i := range sh.dout {
		sh.dout[i] *= scale
	}
	clear(sh.grads)
	m.backward(b, &sh.ws, sh.dout, sh.gv)
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

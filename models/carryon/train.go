package carryon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"

	"github.com/carryon/carryon/models/optim"
	"github.com/carryon/carryon/models/safetensors"
)

// LMHead is the frozen LM head W_pred of a base model as training sees it:
// *llm.Model implements it. CrossEntropy scores hidden rows against their
// next tokens (rows with a negative target are skipped), returning the sum
// of the losses and the number of scored rows, and when grad is not nil
// writes scale times each row's gradient with respect to its hidden row.
type LMHead interface {
	CrossEntropy(grad, hidden []float32, targets []int32, scale float32) (sum float64, n int, err error)
}

// Example is one training sequence, from position 0.
type Example struct {
	// Hidden holds the base model's final-norm state at each position
	// (Base.Dim floats per position): what the head's delta is added to.
	Hidden []float32
	// Input holds the head's raw input at each position (the taps'
	// states concatenated, Config.InputDim floats per position), before
	// the bridge. Nil means Hidden (a head that reads only the final
	// state).
	Input []float32
	// Targets holds the token that follows each position; negative
	// targets are not trained on (prompt tokens of a chat, padding).
	Targets []int32
}

// TrainOptions configures a Trainer.
type TrainOptions struct {
	// Steps is the number of optimizer steps of the whole run (the
	// schedule's length).
	Steps int
	// Batch is the number of sequences per step; 0 means 8.
	Batch int
	// LR is the peak learning rate (0 means 1e-3), reached after Warmup
	// steps (0 means Steps/20) and decayed along a cosine to LR/10.
	LR     float64
	Warmup int
	// WeightDecay applies to the matrices; ClipNorm bounds the global
	// gradient norm (0 means 1; negative disables clipping).
	WeightDecay float64
	ClipNorm    float64
	// LearnAlpha trains α as well; otherwise it stays at Config.Alpha.
	LearnAlpha bool
	// Seed picks the batches: step s uses a generator seeded by Seed and
	// s, so a resumed run sees the batches an uninterrupted one would.
	Seed uint64
	// Workers bounds the sequences processed in parallel; 0 means
	// GOMAXPROCS. The result does not depend on it.
	Workers int
}

func (o *TrainOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 8
	}
	if o.LR == 0 {
		o.LR = 1e-3
	}
	if o.Warmup == 0 {
		o.Warmup = max(1, o.Steps/20)
	}
	if o.ClipNorm == 0 {
		o.ClipNorm = 1
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// StepReport describes one optimizer step.
type StepReport struct {
	Step     int     // steps taken, counting this one
	Loss     float64 // mean loss over the batch's scored tokens
	Tokens   int     // scored tokens of the batch
	LR       float64
	GradNorm float64 // before clipping
}

// Trainer trains a head's weights (kept in float32 whatever the head's
// type) with AdamW against a frozen LM head. It is not safe for concurrent
// use.
type Trainer struct {
	cfg   Config
	net   *net[float32]
	opt   *optim.AdamW
	sched optim.Schedule
	opts  TrainOptions
	lm    LMHead
	step  int
	alpha []float32 // α as a one-element tensor, for the optimizer

	// acc holds a step's summed gradients; spare holds per-sequence
	// gradient buffers (zeroed) for reuse. Both live as long as the
	// trainer, so a step allocates no parameter-sized memory.
	acc   [][]float32
	spare chan [][]float32
}

// NewTrainer starts training from h's weights and configuration.
func NewTrainer(h *Head, lm LMHead, opts TrainOptions) (*Trainer, error) {
	if opts.Steps <= 0 {
		return nil, fmt.Errorf("new trainer: %d steps", opts.Steps)
	}
	opts.defaults()
	cfg := h.Config()
	t := &Trainer{cfg: cfg, opts: opts, lm: lm}
	h.mu.Lock()
	t.net = newNet[float32](&t.cfg, h.w)
	h.mu.Unlock()
	t.alpha = []float32{cfg.Alpha}
	sizes := make([]int, 0, len(t.net.p)+1)
	for _, p := range t.net.p {
		sizes = append(sizes, len(p))
	}
	sizes = append(sizes, 1)
	t.opt = optim.NewAdamW(sizes, opts.WeightDecay)
	t.sched = optim.Schedule{Peak: opts.LR, Min: opts.LR / 10, Warmup: opts.Warmup, Total: opts.Steps}
	return t, nil
}

// Steps returns the steps taken.
func (t *Trainer) Steps() int { return t.step }

// bridgeInput returns an example's bridged input as the head's forward
// computes it: the int8 round trip of each tap's row for an int8 bridge,
// the raw input otherwise (a linear bridge is part of the network).
func bridgeInput(c *Config, raw []float32) []float32 {
	if c.Bridge.Kind != BridgeInt8 {
		return raw
	}
	u := append([]float32(nil), raw...)
	for t := 0; t < len(u); t += c.Base.Dim {
		int8RoundTrip(u[t : t+c.Base.Dim])
	}
	return u
}

// check validates an example against the head.
func (t *Trainer) check(i int, e *Example) error {
	d, n := t.cfg.Base.Dim, len(e.Targets)
	if n == 0 {
		return fmt.Errorf("example %d: no positions", i)
	}
	if len(e.Hidden) != n*d {
		return fmt.Errorf("example %d: %d hidden floats for %d positions of width %d", i, len(e.Hidden), n, d)
	}
	if e.Input != nil && len(e.Input) != n*t.cfg.InputDim() {
		return fmt.Errorf("example %d: %d input floats for %d positions of width %d", i, len(e.Input), n, t.cfg.InputDim())
	}
	if limit := t.cfg.maxPositions(); limit > 0 && n > limit {
		return fmt.Errorf("example %d: %d positions exceed the head's context of %d", i, n, limit)
	}
	return nil
}

// seqResult is what one sequence of a batch contributes.
type seqResult struct {
	loss   float64
	tokens int
	grads  [][]float32
	dAlpha float32
	err    error
}

// run computes the loss of an example under the current weights and, when
// grads is not nil, adds the gradients of scale times that loss to grads.
func (t *Trainer) run(e *Example, scale float32, grads [][]float32) seqResult {
	n, d := len(e.Targets), t.cfg.Base.Dim
	raw := e.Input
	if raw == nil {
		raw = e.Hidden
	}
	out, tr := t.net.forward(bridgeInput(&t.cfg, raw), n)
	for i := range out {
		out[i] += e.Hidden[i]
	}
	var res seqResult
	var dy []float32
	if grads != nil {
		dy = make([]float32, n*d)
	}
	res.loss, res.tokens, res.err = t.lm.CrossEntropy(dy, out, e.Targets, scale)
	if res.err != nil || grads == nil {
		return res
	}
	res.grads = grads
	res.dAlpha = t.net.backward(tr, dy, res.grads)
	return res
}

// gradBuffer returns a zeroed buffer shaped like the parameters.
func (t *Trainer) gradBuffer() [][]float32 {
	select {
	case g := <-t.spare:
		return g
	default:
		return t.net.zeros()
	}
}

// releaseGrads zeroes a buffer from gradBuffer and keeps it for reuse.
func (t *Trainer) releaseGrads(g [][]float32) {
	for _, v := range g {
		clear(v)
	}
	select {
	case t.spare <- g:
	default:
	}
}

// gradients runs every example of a batch on the trainer's workers and
// sums their gradients into t.acc in example order (so the sum does not
// depend on Workers), returning the summed loss and α gradient. At most
// Workers sequences are computed or waiting to be added at any time, so
// the memory for gradients is Workers+1 parameter-sized buffers whatever
// the batch size.
func (t *Trainer) gradients(ctx context.Context, batch []Example, scale float32) (loss float64, dAlpha float32, err error) {
	workers := min(t.opts.Workers, len(batch))
	if t.acc == nil {
		t.acc = t.net.zeros()
		t.spare = make(chan [][]float32, t.opts.Workers)
	} else {
		for _, v := range t.acc {
			clear(v)
		}
	}
	type done struct {
		i int
		r seqResult
	}
	next := make(chan int)
	results := make(chan done, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results <- done{i, t.run(&batch[i], scale, t.gradBuffer())}
			}
		}()
	}
	pending := map[int]seqResult{}
	sent, added := 0, 0
	for added < sent || (sent < len(batch) && err == nil) {
		for sent < len(batch) && sent-added < workers && err == nil {
			if err = ctx.Err(); err != nil {
				break
			}
			next <- sent
			sent++
		}
		if added == sent {
			break
		}
		d := <-results
		pending[d.i] = d.r
		for r, ok := pending[added]; ok; r, ok = pending[added] {
			delete(pending, added)
			added++
			if r.err != nil && err == nil {
				err = r.err
			}
			if r.grads == nil {
				continue
			}
			if err == nil {
				loss += float64(r.loss)
				dAlpha += r.dAlpha
				for i, g := range r.grads {
					axpy(t.acc[i], 1, g)
				}
			}
			t.releaseGrads(r.grads)
		}
	}
	close(next)
	wg.Wait()
	return loss, dAlpha, err
}

// each runs f over the examples on the trainer's workers and returns the
// results in example order.
func (t *Trainer) each(ctx context.Context, n int, f func(i int) seqResult) ([]seqResult, error) {
	res := make([]seqResult, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(t.opts.Workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res[i] = f(i)
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, r := range res {
		if r.err != nil {
			return nil, r.err
		}
	}
	return res, nil
}

// Step takes one optimizer step on a batch of examples: the mean loss over
// their scored tokens, its gradients, clipping, and AdamW at the
// schedule's rate.
func (t *Trainer) Step(ctx context.Context, batch []Example) (StepReport, error) {
	tokens := 0
	for i := range batch {
		if err := t.check(i, &batch[i]); err != nil {
			return StepReport{}, fmt.Errorf("train step: %w", err)
		}
		for _, tg := range batch[i].Targets {
			if tg >= 0 {
				tokens++
			}
		}
	}
	if tokens == 0 {
		return StepReport{}, errors.New("train step: the batch has no targets")
	}
	scale := 1 / float32(tokens)
	loss, dAlpha, err := t.gradients(ctx, batch, scale)
	if err != nil {
		return StepReport{}, fmt.Errorf("train step: %w", err)
	}
	grads := t.acc
	ts := make([]optim.Tensor, 0, len(grads)+1)
	for i, p := range t.net.p {
		ts = append(ts, optim.Tensor{Value: p, Grad: grads[i], Decay: len(t.net.shapes[i]) == 2})
	}
	ag := []float32{0}
	if t.opts.LearnAlpha {
		ag[0] = dAlpha
	}
	ts = append(ts, optim.Tensor{Value: t.alpha, Grad: ag})
	norm := optim.ClipGlobalNorm(ts, t.opts.ClipNorm)
	lr := t.sched.At(t.step)
	if err := t.opt.Step(ts, lr); err != nil {
		return StepReport{}, fmt.Errorf("train step: %w", err)
	}
	t.net.alpha = t.alpha[0]
	t.step++
	return StepReport{Step: t.step, Loss: loss / float64(tokens), Tokens: tokens, LR: lr, GradNorm: norm}, nil
}

// Batch returns the indices of the examples that step s trains on, drawn
// from Seed and s alone.
func (t *Trainer) Batch(step, examples int) []int {
	rng := rand.New(rand.NewPCG(t.opts.Seed, uint64(step)))
	idx := make([]int, t.opts.Batch)
	for i := range idx {
		idx[i] = rng.IntN(examples)
	}
	return idx
}

// Run takes steps until Steps are taken (or ctx is done), each on the batch
// Batch picks from train, calling report after each step when it is not
// nil; an error from report stops the run and is returned.
func (t *Trainer) Run(ctx context.Context, train []Example, report func(StepReport) error) error {
	if len(train) == 0 {
		return errors.New("train: no examples")
	}
	batch := make([]Example, t.opts.Batch)
	for t.step < t.opts.Steps {
		for i, j := range t.Batch(t.step, len(train)) {
			batch[i] = train[j]
		}
		r, err := t.Step(ctx, batch)
		if err != nil {
			return err
		}
		if report != nil {
			if err := report(r); err != nil {
				return err
			}
		}
	}
	t.releaseBuffers()
	return nil
}

// releaseBuffers drops the step's gradient buffers once the run's steps are
// taken, so that what follows (evaluation, Head, saving) does not hold them;
// a later Step allocates them again.
func (t *Trainer) releaseBuffers() {
	t.acc, t.spare = nil, nil
}

// Eval returns the mean loss over the scored tokens of examples with the
// head (and the number of tokens), and the base model's own loss on them.
func (t *Trainer) Eval(ctx context.Context, examples []Example) (head, base float64, tokens int, err error) {
	for i := range examples {
		if err := t.check(i, &examples[i]); err != nil {
			return 0, 0, 0, fmt.Errorf("evaluate: %w", err)
		}
	}
	res, err := t.each(ctx, len(examples), func(i int) seqResult { return t.run(&examples[i], 1, nil) })
	if err != nil {
		return 0, 0, 0, fmt.Errorf("evaluate: %w", err)
	}
	for i, r := range res {
		head += r.loss
		tokens += r.tokens
		s, _, err := t.lm.CrossEntropy(nil, examples[i].Hidden, examples[i].Targets, 1)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("evaluate: %w", err)
		}
		base += s
	}
	if tokens == 0 {
		return 0, 0, 0, errors.New("evaluate: no targets")
	}
	return head / float64(tokens), base / float64(tokens), tokens, nil
}

// Head returns the trained head: the trainer's weights in the head's
// weight type, α as trained.
func (t *Trainer) Head() (*Head, error) {
	cfg := t.cfg
	cfg.Alpha = t.alpha[0]
	cfg.Taps = append([]int(nil), cfg.Taps...)
	h := &Head{cfg: cfg, seqs: map[SeqID]*seqState{}}
	h.w = t.net.weights()
	c, w, err := h.encode()
	if err != nil {
		return nil, err
	}
	h.version = Version(c, w)
	return h, nil
}

// SaveCheckpoint writes everything a resumed run needs (weights in float32,
// α, the optimizer's moments and step, the configuration) to one
// safetensors file, atomically. The file is encoded as it is written, and
// the gradient buffers of the steps are released first (and collected), so
// saving needs no more memory than a step.
func (t *Trainer) SaveCheckpoint(path string) error {
	cfgJSON, err := json.Marshal(t.cfg)
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	// The optimizer hands out a copy of its moments. The step's gradient
	// buffers are idle between steps: drop them (the next step allocates
	// them again) and collect them first, so that the copy takes their
	// place instead of adding to the trainer's peak memory.
	if t.acc != nil {
		t.releaseBuffers()
		runtime.GC()
	}
	st := t.opt.State()
	w := safetensors.NewWriter()
	w.Metadata = map[string]string{
		"format": "carryon-train", "step": strconv.Itoa(t.step), "adam_step": strconv.Itoa(st.Step),
		"config": string(cfgJSON),
	}
	// The tensors are encoded as they are written, so saving holds no
	// copy of the weights or moments.
	add := func(name string, shape []int, v []float32) {
		if err == nil {
			err = w.AddFloat32Ref(name, shape, v)
		}
	}
	for i, p := range t.net.p {
		add(t.net.names[i], t.net.shapes[i], p)
		add("adam.m."+t.net.names[i], t.net.shapes[i], st.M[i])
		add("adam.v."+t.net.names[i], t.net.shapes[i], st.V[i])
	}
	k := len(t.net.p)
	add("alpha", []int{1}, t.alpha)
	add("adam.m.alpha", []int{1}, st.M[k])
	add("adam.v.alpha", []int{1}, st.V[k])
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := w.WriteFile(tmp); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	return nil
}

// LoadCheckpoint restores a checkpoint SaveCheckpoint wrote for a head of
// the same configuration.
func (t *Trainer) LoadCheckpoint(path string) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(f.Metadata["config"]), &cfg); err != nil {
		return fmt.Errorf("load checkpoint %s: config: %w", path, err)
	}
	a, _ := json.Marshal(cfg)
	b, _ := json.Marshal(t.cfg)
	if string(a) != string(b) {
		return fmt.Errorf("load checkpoint %s: it was written for another head configuration", path)
	}
	step, err1 := strconv.Atoi(f.Metadata["step"])
	adamStep, err2 := strconv.Atoi(f.Metadata["adam_step"])
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	get := func(name string, n int) ([]float32, error) {
		tn, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("missing tensor %s", name)
		}
		v, err := tn.Float32s()
		if err != nil {
			return nil, err
		}
		if len(v) != n {
			return nil, fmt.Errorf("tensor %s has %d values, want %d", name, len(v), n)
		}
		return v, nil
	}
	names := append(append([]string(nil), t.net.names...), "alpha")
	st := optim.AdamWState{Step: adamStep}
	values := make([][]float32, len(names))
	for i, name := range names {
		n := 1
		if i < len(t.net.p) {
			n = len(t.net.p[i])
		}
		var m, v []float32
		values[i], err = get(name, n)
		if err == nil {
			m, err = get("adam.m."+name, n)
		}
		if err == nil {
			v, err = get("adam.v."+name, n)
		}
		if err != nil {
			return fmt.Errorf("load checkpoint %s: %w", path, err)
		}
		st.M, st.V = append(st.M, m), append(st.V, v)
	}
	if err := t.opt.SetState(st); err != nil {
		return fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	for i := range t.net.p {
		copy(t.net.p[i], values[i])
	}
	t.alpha[0] = values[len(values)-1][0]
	t.net.alpha = t.alpha[0]
	t.step = step
	return nil
}

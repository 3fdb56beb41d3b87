package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/sdk"
)

var _ sdk.Trainer = (*heads)(nil)

// trainOptions are the settings of a run, from TrainJob.Options.
type trainOptions struct {
	steps, epochs, batch int
	lr, weightDecay      float64
	warmup               int
	alpha                *float64
	learnAlpha           bool
	seed                 uint64
	threads              int
	// Shape of a new head.
	layers, dim, heads int
	bridge             string
}

// parseTrainOptions reads the options a run understands: steps or epochs,
// batch, lr, warmup, weight_decay, alpha, learn_alpha, seed, threads, and
// for a new head layers, dim, heads and bridge. Unknown names are errors.
func parseTrainOptions(m map[string]string) (trainOptions, error) {
	o := trainOptions{batch: 8, lr: 1e-3, seed: 1, threads: 1, bridge: carryon.BridgeIdentity}
	for k, v := range m {
		var err error
		atoi := func(dst *int, lo, hi int) {
			var n int
			if n, err = strconv.Atoi(v); err == nil && (n < lo || n > hi) {
				err = fmt.Errorf("out of range [%d, %d]", lo, hi)
			}
			*dst = n
		}
		atof := func(dst *float64) {
			var f float64
			if f, err = strconv.ParseFloat(v, 64); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
				err = errors.New("not finite")
			}
			*dst = f
		}
		switch k {
		case "steps":
			atoi(&o.steps, 1, 1<<20)
		case "epochs":
			atoi(&o.epochs, 1, 1000)
		case "batch":
			atoi(&o.batch, 1, 4096)
		case "warmup":
			atoi(&o.warmup, 0, 1<<20)
		case "threads":
			atoi(&o.threads, 1, 1024)
		case "layers":
			atoi(&o.layers, 1, carryon.MaxBlocks)
		case "dim":
			atoi(&o.dim, 2, 1<<16)
		case "heads":
			atoi(&o.heads, 1, 1024)
		case "lr":
			atof(&o.lr)
			if err == nil && !(o.lr > 0) {
				err = errors.New("must be positive")
			}
		case "weight_decay":
			atof(&o.weightDecay)
		case "alpha":
			var a float64
			atof(&a)
			o.alpha = &a
		case "learn_alpha":
			o.learnAlpha, err = strconv.ParseBool(v)
		case "seed":
			o.seed, err = strconv.ParseUint(v, 10, 64)
		case "bridge":
			o.bridge = v
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			return o, fmt.Errorf("option %s=%q: %v", k, v, err)
		}
	}
	if o.steps > 0 && o.epochs > 0 {
		return o, errors.New("options steps and epochs: give one")
	}
	if o.steps == 0 && o.epochs == 0 {
		o.epochs = 1
	}
	return o, nil
}

// lmHeads keeps the LM head the last run used, so that runs on the same
// base do not map it again. Only the LM head is loaded: the base's states
// come with the examples, so its blocks are never needed here.
type lmHeads struct {
	mu   sync.Mutex
	path string
	mod  time.Time
	m    *llm.LMHead
	base carryon.Base
}

// get returns the LM head of the base model at path (mapped, read in
// place) and the base's identity.
func (l *lmHeads) get(path string) (*llm.LMHead, carryon.Base, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, carryon.Base{}, fmt.Errorf("base model: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m != nil && l.path == path && l.mod.Equal(st.ModTime()) {
		return l.m, l.base, nil
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, carryon.Base{}, fmt.Errorf("base model: %w", err)
	}
	base, err := carryon.BaseFromGGUF(f)
	f.Close()
	if err != nil {
		return nil, carryon.Base{}, fmt.Errorf("base model %s: %w", path, err)
	}
	m, err := llm.LoadLMHead(path, llm.Options{Threads: 1})
	if err != nil {
		return nil, carryon.Base{}, fmt.Errorf("base model: %w", err)
	}
	if m.Dim() != base.Dim {
		_ = m.Close()
		return nil, carryon.Base{}, fmt.Errorf("base model %s: LM head of width %d, the base has %d", path, m.Dim(), base.Dim)
	}
	if l.m != nil {
		_ = l.m.Close()
	}
	l.path, l.mod, l.m, l.base = path, st.ModTime(), m, base
	return m, base, nil
}

// Train trains a new head version. It starts from the loaded head
// job.Head, else from the head directory job.Dir, else from a fresh head
// of the shape the options give (layers, dim, heads, bridge, alpha, seed)
// for the base model at job.BasePath. It reads every example first: each
// row is the head's input (its taps concatenated), followed by the base's
// final-norm state when the taps do not include it. It then takes the
// optimizer steps (steps, or epochs over the examples in batches), sends
// progress after each, writes the new version to job.OutDir and returns
// its HeadInfo (with an empty ID: it is not loaded).
func (h *heads) Train(ctx context.Context, job sdk.TrainJob, s sdk.TrainStream) (sdk.HeadInfo, error) {
	o, err := parseTrainOptions(job.Options)
	if err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w: %v", sdk.ErrInvalid, err)
	}
	if job.OutDir == "" {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w: no output directory", sdk.ErrInvalid)
	}
	if job.BasePath == "" {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w: no base model path", sdk.ErrInvalid)
	}
	lm, base, err := h.lm.get(job.BasePath)
	if err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w: %v", sdk.ErrInvalid, err)
	}
	start, err := h.startHead(job, o, base)
	if err != nil {
		return sdk.HeadInfo{}, err
	}
	cfg := start.Config()
	if cfg.Base.Fingerprint != base.Fingerprint || cfg.Base.Dim != base.Dim {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w: the head was made for base %s (d=%d), not for %s (d=%d)",
			sdk.ErrInvalid, cfg.Base.Fingerprint, cfg.Base.Dim, base.Fingerprint, base.Dim)
	}
	examples, err := readExamples(ctx, s, &cfg)
	if err != nil {
		return sdk.HeadInfo{}, err
	}
	steps := o.steps
	if steps == 0 {
		steps = max(1, (o.epochs*len(examples)+o.batch-1)/o.batch)
	}
	tr, err := carryon.NewTrainer(start, lm, carryon.TrainOptions{
		Steps: steps, Batch: o.batch, LR: o.lr, Warmup: o.warmup, WeightDecay: o.weightDecay,
		LearnAlpha: o.learnAlpha, Seed: o.seed, Workers: min(o.threads, runtime.GOMAXPROCS(0)),
	})
	if err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w: %v", sdk.ErrInvalid, err)
	}
	// The final loss is the mean over the last tenth of the run.
	window := max(1, steps/10)
	var recent []float64
	err = tr.Run(ctx, examples, func(r carryon.StepReport) error {
		recent = append(recent, r.Loss)
		if len(recent) > window {
			recent = recent[1:]
		}
		return s.Send(sdk.TrainProgress{Step: r.Step, Loss: r.Loss})
	})
	if err != nil {
		if ctx.Err() != nil {
			return sdk.HeadInfo{}, fmt.Errorf("train: %w", ctx.Err())
		}
		return sdk.HeadInfo{}, fmt.Errorf("train: %w", err)
	}
	var mean float64
	for _, l := range recent {
		mean += l
	}
	mean /= float64(len(recent))
	if err := s.Send(sdk.TrainProgress{Loss: mean, Message: fmt.Sprintf("Trained %d steps on %d examples; mean loss of the last %d steps %.4f", steps, len(examples), len(recent), mean)}); err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w", err)
	}
	out, err := tr.Head()
	if err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w", err)
	}
	if err := out.Save(job.OutDir); err != nil {
		return sdk.HeadInfo{}, fmt.Errorf("train: %w", err)
	}
	return headInfo("", out), nil
}

// startHead returns the head a run starts from.
func (h *heads) startHead(job sdk.TrainJob, o trainOptions, base carryon.Base) (*carryon.Head, error) {
	switch {
	case job.Head != "":
		head, ok := h.set.Head(job.Head)
		if !ok {
			return nil, fmt.Errorf("train: %w %q", sdk.ErrUnknownHead, job.Head)
		}
		return head, nil
	case job.Dir != "":
		head, err := carryon.Load(job.Dir)
		if err != nil {
			return nil, fmt.Errorf("train: %w: %v", sdk.ErrInvalid, err)
		}
		return head, nil
	}
	cfg := carryon.DefaultConfig(base)
	if o.dim > 0 {
		cfg.Width, cfg.FFN = o.dim, 4*o.dim
	}
	if o.layers > 0 {
		cfg.Blocks = o.layers
	}
	if o.heads > 0 {
		cfg.Heads = o.heads
	}
	for cfg.Heads > 1 && (cfg.Width%cfg.Heads != 0 || (cfg.Width/cfg.Heads)%2 != 0) && o.heads == 0 {
		cfg.Heads /= 2
	}
	if o.alpha != nil {
		cfg.Alpha = float32(*o.alpha)
	}
	cfg.Bridge = carryon.Bridge{Kind: o.bridge}
	cfg.Seed = o.seed
	head, err := carryon.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("train: %w: %v", sdk.ErrInvalid, err)
	}
	return head, nil
}

// readExamples reads the stream's examples until io.EOF.
func readExamples(ctx context.Context, s sdk.TrainStream, cfg *carryon.Config) ([]carryon.Example, error) {
	d, in := cfg.Base.Dim, cfg.InputDim()
	final := -1 // position of the final-norm state among the taps
	for k, t := range cfg.Taps {
		if t == carryon.FinalLayer {
			final = k
		}
	}
	if len(cfg.Taps) == 0 {
		final = 0
	}
	width := in
	if final < 0 {
		width = in + d
	}
	var out []carryon.Example
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		ex, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("train: receive examples: %w", err)
		}
		n := len(ex.Targets)
		if n == 0 || len(ex.Hidden) != n {
			return nil, fmt.Errorf("train: %w: example %d has %d rows and %d targets", sdk.ErrInvalid, len(out), len(ex.Hidden), n)
		}
		e := carryon.Example{Targets: ex.Targets, Hidden: make([]float32, 0, n*d)}
		if in != d || final < 0 {
			e.Input = make([]float32, 0, n*in)
		}
		for p, row := range ex.Hidden {
			if len(row) != width {
				return nil, fmt.Errorf("train: %w: example %d row %d has %d floats, the head reads %d", sdk.ErrInvalid, len(out), p, len(row), width)
			}
			if e.Input != nil {
				e.Input = append(e.Input, row[:in]...)
			}
			if final >= 0 {
				e.Hidden = append(e.Hidden, row[final*d:(final+1)*d]...)
			} else {
				e.Hidden = append(e.Hidden, row[in:]...)
			}
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("train: %w: no examples", sdk.ErrInvalid)
	}
	return out, nil
}

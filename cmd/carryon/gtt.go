package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/models/safetensors"
	"github.com/carryon/carryon/models/tsdata"
)

func newGTTCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gtt",
		Short: "Pretrain and evaluate GTT time-series forecasters",
		Long: `GTT is carryon's zero-shot multivariate forecaster (see docs/forecasting.md).
"gtt pretrain" trains one on synthetic and real series; "gtt eval" scores one
with the standard long-horizon protocol against naive baselines.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newGTTPretrainCommand(), newGTTEvalCommand())
	cmd.AddCommand(newGTTM4Command())
	return cmd
}

// pretrainOptions are the flags of `carryon gtt pretrain`.
type pretrainOptions struct {
	preset          string
	dim, layers     int
	heads, mlp      int
	steps           int
	tokens          int
	lr              float64
	warmup          int
	seed            uint64
	threads         int
	data            string
	synthetic       float64
	out             string
	dtype           string
	checkpointEvery int
	resume          string
	valEvery        int
	maxTime         time.Duration
	timeBudget      time.Duration
	rollout         float64
	rolloutPatches  int
}

func newGTTPretrainCommand() *cobra.Command {
	o := pretrainOptions{}
	cmd := &cobra.Command{
		Use:   "pretrain [--config small-cpu] [--steps N] [--data DIR] [--out FILE]",
		Short: "Pretrain a GTT model on synthetic series and real training splits",
		Long: `Pretrain a GTT model from scratch (or --resume a checkpoint) on a mix of
synthetic series and the training parts of the real sets under --data (the
layout of the shared tsdata directory: the first 70% of the rows of
exchange_rate, national_illness and weather, the M4 hourly and weekly
training files, the first 70% of each classic series; never a test part).
Each step draws samples until the batch holds --tokens tokens (a token is one
patch of one channel). A progress line shows the step, loss, speed and ETA;
the model is written to --out every --checkpoint-every steps (as F32) and at
the end (as --dtype). Interrupting saves the last weights.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGTTPretrain(cmd.Context(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.preset, "config", "small-cpu", "model shape: small-cpu (d=128 L=3), tiny (d=384 L=4), small (d=512 L=6)")
	f.IntVar(&o.dim, "dim", 0, "override the width d")
	f.IntVar(&o.layers, "layers", 0, "override the number of layers")
	f.IntVar(&o.heads, "heads", 0, "override the number of attention heads")
	f.IntVar(&o.mlp, "mlp", 0, "override the MLP width (default 4·d when --dim is set)")
	f.IntVar(&o.steps, "steps", 5500, "optimizer steps")
	f.IntVar(&o.tokens, "tokens", 2048, "tokens per step")
	f.Float64Var(&o.lr, "lr", 1e-3, "peak learning rate")
	f.IntVar(&o.warmup, "warmup", 0, "warmup steps (0: 5% of --steps, at most 200)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the initialization and the sample stream")
	f.IntVarP(&o.threads, "threads", "t", 1, "compute threads")
	f.StringVar(&o.data, "data", filepath.Join("..", "shared", "tsdata"), "directory of real training sets (empty: synthetic only)")
	f.Float64Var(&o.synthetic, "synthetic-weight", 0.49, "weight of synthetic series in the mix (the real sets weigh 0.51 together)")
	f.StringVar(&o.out, "out", "gtt.safetensors", "output checkpoint")
	f.StringVar(&o.dtype, "dtype", "f16", "final weight type: f32, f16 or bf16")
	f.IntVar(&o.checkpointEvery, "checkpoint-every", 500, "steps between checkpoints (0: only at the end)")
	f.StringVar(&o.resume, "resume", "", "continue from this checkpoint (its step count is read from its metadata)")
	f.IntVar(&o.valEvery, "val-every", 250, "steps between validation losses (0: never)")
	f.DurationVar(&o.maxTime, "max-time", 0, "stop and save after this long (0: no limit)")
	f.DurationVar(&o.timeBudget, "time-budget", 0, "train for this long: the schedule ends when the time does (--steps is then only the first guess)")
	f.Float64Var(&o.rollout, "rollout", 0, "share of samples whose last patches before the target are the model's own forecast (see docs/forecasting.md)")
	f.IntVar(&o.rolloutPatches, "rollout-patches", 3, "most patches of such a rollout")
	return cmd
}

func parseDType(s string) (safetensors.DType, error) {
	switch strings.ToLower(s) {
	case "f32":
		return safetensors.F32, nil
	case "f16":
		return safetensors.F16, nil
	case "bf16":
		return safetensors.BF16, nil
	}
	return "", fmt.Errorf("weight type %q: want f32, f16 or bf16", s)
}

func runGTTPretrain(ctx context.Context, logw io.Writer, o pretrainOptions) error {
	dtype, err := parseDType(o.dtype)
	if err != nil {
		return err
	}
	if o.steps < 1 || o.tokens < 1 {
		return fmt.Errorf("gtt pretrain: --steps and --tokens must be positive")
	}
	var m *gtt.Model
	start := 0
	if o.resume != "" {
		data, err := os.ReadFile(o.resume)
		if err != nil {
			return fmt.Errorf("gtt pretrain: %w", err)
		}
		var meta map[string]string
		if m, meta, err = gtt.Parse(data); err != nil {
			return fmt.Errorf("gtt pretrain: resume %s: %w", o.resume, err)
		}
		start, _ = strconv.Atoi(meta["step"])
	} else {
		cfg, err := gtt.ConfigByName(o.preset)
		if err != nil {
			return err
		}
		if o.dim > 0 {
			cfg.Dim = o.dim
			cfg.MLPDim = 4 * o.dim
		}
		if o.layers > 0 {
			cfg.Layers = o.layers
		}
		if o.heads > 0 {
			cfg.Heads = o.heads
		}
		if o.mlp > 0 {
			cfg.MLPDim = o.mlp
		}
		if m, err = gtt.New(cfg, o.seed); err != nil {
			return err
		}
	}
	m = m.WithThreads(o.threads)
	cfg := m.Config()

	corpus := gtt.NewCorpus(cfg, o.synthetic)
	corpus.Rollout, corpus.RolloutPatches = o.rollout, o.rolloutPatches
	val := gtt.NewCorpus(cfg, o.synthetic)
	val.Rollout = 0 // validation samples stay the same whatever the recipe
	if o.data != "" {
		notes, err := corpus.AddSharedData(o.data, gtt.DefaultSourceWeights())
		if err != nil {
			return fmt.Errorf("gtt pretrain: %w", err)
		}
		for _, n := range notes {
			fmt.Fprintln(logw, "data:", n)
		}
		if err := addValidationData(val, o.data, cfg); err != nil {
			return fmt.Errorf("gtt pretrain: %w", err)
		}
	}
	valSamples := drawValidation(val, 256)
	fmt.Fprintf(logw, "validation: %d fixed samples from the validation rows and the synthetic generator; naive (last value) loss %.4f\n",
		len(valSamples), gtt.NaiveLoss(cfg, valSamples, gtt.DefaultTrainConfig(1).TargetClip))

	tc := gtt.DefaultTrainConfig(o.steps)
	tc.LR = o.lr
	if o.warmup > 0 {
		tc.WarmupSteps = o.warmup
	}
	fmt.Fprintf(logw, "model: %s, %d parameters, %d thread(s)\n", cfg, m.NumParams(), m.Threads())
	fmt.Fprintf(logw, "mix: %s; %.0f%% of samples continue up to %d patches of the model's own forecast\n",
		corpus.Describe(), 100*o.rollout, o.rolloutPatches)
	length := strconv.Itoa(o.steps)
	if o.timeBudget > 0 {
		length = fmt.Sprintf("set by a time budget of %s (first guess %d)", o.timeBudget, o.steps)
	}
	fmt.Fprintf(logw, "schedule: steps %s (from %d), %d tokens/step, lr %g, warmup %d, cosine to %g, AdamW wd %g, clip %g\n",
		length, start, o.tokens, tc.LR, tc.WarmupSteps, tc.LR*tc.MinLRFrac, tc.WeightDecay, tc.ClipNorm)

	notes := func(st gtt.PretrainStats) map[string]string {
		return map[string]string{
			"step":            strconv.Itoa(st.Step),
			"steps":           strconv.Itoa(st.Steps),
			"tokens":          strconv.Itoa(st.Tokens),
			"tokens_per_step": strconv.Itoa(o.tokens),
			"lr":              strconv.FormatFloat(o.lr, 'g', -1, 64),
			"seed":            strconv.FormatUint(o.seed, 10),
			"mix":             corpus.Describe(),
			"rollout":         fmt.Sprintf("%g of samples, up to %d patches", o.rollout, o.rolloutPatches),
			"train_seconds":   strconv.FormatFloat(st.Elapsed.Seconds(), 'f', 0, 64),
			"loss_avg":        strconv.FormatFloat(st.AvgLoss, 'f', 4, 64),
		}
	}
	runCtx := ctx
	if o.maxTime > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.maxTime)
		defer cancel()
	}
	bar := newProgressBar(logw)
	var last gtt.PretrainStats
	lastVal := math.NaN()
	err = gtt.Pretrain(runCtx, m, corpus, valSamples, gtt.PretrainConfig{
		Train: tc, Start: start, TokensPerBatch: o.tokens, Seed: o.seed, ValEvery: o.valEvery,
		Budget: o.timeBudget,
	}, func(st gtt.PretrainStats) error {
		last = st
		if !math.IsNaN(st.ValLoss) {
			lastVal = st.ValLoss
		}
		bar.update(st, lastVal, start)
		if o.checkpointEvery > 0 && st.Step%o.checkpointEvery == 0 && st.Step < st.Steps {
			if err := m.Save(o.out, safetensors.F32, notes(st)); err != nil {
				return err
			}
		}
		return nil
	})
	bar.done()
	interrupted := err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	if err != nil && !interrupted {
		return err
	}
	if last.Step == 0 {
		return fmt.Errorf("gtt pretrain: stopped before the first step")
	}
	saveType := dtype
	if interrupted {
		saveType = safetensors.F32 // keep full precision for --resume
	}
	if serr := m.Save(o.out, saveType, notes(last)); serr != nil {
		return serr
	}
	fmt.Fprintf(logw, "saved %s (%s) at step %d after %s; average loss %.4f, validation loss %.4f\n",
		o.out, saveType, last.Step, last.Elapsed.Round(time.Second), last.AvgLoss, lastVal)
	if interrupted {
		fmt.Fprintf(logw, "stopped early (%v); continue with --resume %s\n", err, o.out)
	}
	return nil
}

// addValidationData adds the validation rows of the long tables (with up
// to one context of train rows before them, so that every window's target
// lies mostly in validation rows) as validation sources.
func addValidationData(val *gtt.Corpus, dir string, cfg gtt.Config) error {
	for _, p := range []string{"exchange_rate/exchange_rate.csv", "illness/national_illness.csv", "weather/weather.values_noheader.csv"} {
		f, err := tsdata.LoadCSV(filepath.Join(dir, p))
		if err != nil {
			continue
		}
		sp := tsdata.RatioSplit(f.Len())
		lo := max(0, sp.Train-cfg.Context)
		if err := val.AddFrame(filepath.Base(p), f, lo, sp.TestStart(), 0.15); err != nil {
			return err
		}
	}
	return nil
}

// drawValidation draws a fixed set of samples.
func drawValidation(c *gtt.Corpus, n int) []gtt.Sample {
	rng := newSeededRand(0x76616c)
	out := make([]gtt.Sample, n)
	for i := range out {
		out[i] = c.Sample(rng)
	}
	return out
}

// progressBar draws training progress on one line of a terminal, or
// prints a line every few seconds elsewhere.
type progressBar struct {
	w        io.Writer
	tty      bool
	lastDraw time.Time
}

func newProgressBar(w io.Writer) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, tty: tty}
}

func (p *progressBar) update(st gtt.PretrainStats, val float64, start int) {
	now := time.Now()
	every := 200 * time.Millisecond
	if !p.tty {
		every = 15 * time.Second
	}
	if now.Sub(p.lastDraw) < every && st.Step < st.Steps && math.IsNaN(st.ValLoss) {
		return
	}
	p.lastDraw = now
	doneSteps := st.Step - start
	rate := float64(doneSteps) / st.Elapsed.Seconds()
	eta := time.Duration(float64(st.Steps-st.Step) / rate * float64(time.Second)).Round(time.Second)
	const width = 24
	filled := width * st.Step / st.Steps
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	line := fmt.Sprintf("step %d/%d [%s] loss %.4f avg %.4f val %.4f lr %.2e |g| %.2f %.2f it/s %.0f tok/s ETA %s",
		st.Step, st.Steps, bar, st.Loss, st.AvgLoss, val, st.LR, st.GradNorm, rate,
		float64(st.Tokens)/st.Elapsed.Seconds(), eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progressBar) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func newSeededRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

// evalOptions are the flags of `carryon gtt eval`.
type evalOptions struct {
	csv          string
	horizons     string
	context      int
	stride       int
	json         bool
	model        string
	split        string
	season       int
	threads      int
	batch        int
	timeFeatures bool
	on           string
	ensemble     string
	guard        guardOptions
}

func newGTTEvalCommand() *cobra.Command {
	o := evalOptions{}
	cmd := &cobra.Command{
		Use:   "eval --csv FILE [--horizons 96,192,336,720] [--context 1024] [--stride 1] [--json]",
		Short: "Score a GTT model with the long-horizon protocol against naive baselines",
		Long: `Score a GTT model (the embedded one unless --model is given) on a CSV table
with the standard long-horizon protocol: a chronological 70/10/20 split (or the
12/4/4-month split of ETTh*/ETTm* files), every column z-normalized with
train-split statistics, a window starting at every --stride-th row of the test
split for each horizon (1 is the standard protocol), the model reading up to
--context rows before it; MSE and MAE per horizon in normalized units, next to
the naive forecast (last value) and the seasonal-naive forecast (last season
repeated; the period comes from the timestamps' step, else from
autocorrelation, and is printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGTTEval(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.csv, "csv", "", "CSV table: optional date column, then one column per series (required)")
	f.StringVar(&o.horizons, "horizons", "96,192,336,720", "comma-separated horizons")
	f.IntVar(&o.context, "context", 1024, "history rows given to the model (at most the model's context)")
	f.IntVar(&o.stride, "stride", 1, "rows between window starts (1: the standard protocol)")
	f.BoolVar(&o.json, "json", false, `print {"horizons":{"96":{"model":{"mse","mae"},"naive":{...},"seasonal_naive":{...}},...}}`)
	f.StringVar(&o.model, "model", "", "checkpoint file or directory (default: the embedded model)")
	f.StringVar(&o.split, "split", "auto", "auto (ETT files by name, else ratio), ratio, etth or ettm")
	f.IntVar(&o.season, "season", 0, "seasonal-naive period (0: detect)")
	f.IntVarP(&o.threads, "threads", "t", 1, "compute threads")
	f.IntVar(&o.batch, "batch", 32, "windows per forward pass")
	f.BoolVar(&o.timeFeatures, "time-features", true, "give the model the timestamps (calendar channels) when the file has a date column")
	f.StringVar(&o.on, "on", "test", "rows to score: test, or val (the validation rows, for choosing a recipe without reading the test rows)")
	f.StringVar(&o.ensemble, "ensemble", "", "comma-separated history lengths whose forecasts are averaged (empty: one forecast from --context)")
	o.guard.addFlags(f)
	cmd.MarkFlagRequired("csv")
	return cmd
}

// evalHorizon is one horizon of the --json output.
type evalHorizon struct {
	Model         tsdata.Metrics `json:"model"`
	Naive         tsdata.Metrics `json:"naive"`
	SeasonalNaive tsdata.Metrics `json:"seasonal_naive"`
}

// guardOptions are the forecaster flags shared by forecast, gtt eval and
// gtt m4: --raw for the network alone, --walk for the random-walk guard
// without the mixes.
type guardOptions struct {
	raw, walk bool
}

func (g *guardOptions) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&g.raw, "raw", false, "the network's forecast alone, without the guard (gtt.Guard)")
	f.BoolVar(&g.walk, "walk", false, "guard random-walk channels only, without the seasonal-naive and trend mixes")
}

// wrap returns p behind the guard the flags ask for (by default gtt.Guard
// with the seasonal and trend mixes) and a phrase naming it.
func (g guardOptions) wrap(p gtt.Predictor) (gtt.Predictor, string, error) {
	switch {
	case g.raw && g.walk:
		return nil, "", errors.New("--walk chooses a guard; it cannot go with --raw")
	case g.raw:
		return p, "network alone", nil
	case g.walk:
		return gtt.Guard{Predictor: p}, "random-walk guard only", nil
	}
	return gtt.Guard{Predictor: p, Seasonal: true, Trend: true}, "guarded", nil
}

// progressPrinter returns a progress callback that prints "what done/total,
// elapsed, ETA" to w every 10 seconds and at the end.
func progressPrinter(w io.Writer, what string) func(done, total int) {
	began := time.Now()
	var lastDraw time.Time
	return func(done, total int) {
		if time.Since(lastDraw) < 10*time.Second && done < total {
			return
		}
		lastDraw = time.Now()
		el := time.Since(began)
		eta := time.Duration(float64(el) / float64(max(done, 1)) * float64(total-done)).Round(time.Second)
		fmt.Fprintf(w, "%s %d/%d, %s elapsed, ETA %s\n", what, done, total, el.Round(time.Second), eta)
	}
}

// modelForecaster adapts a GTT predictor to tsdata.Forecaster.
type modelForecaster struct{ p gtt.Predictor }

func (f modelForecaster) Forecast(ctx context.Context, windows []tsdata.Window, horizon int) ([][][]float32, error) {
	in := make([]gtt.Input, len(windows))
	for i, w := range windows {
		in[i] = gtt.Input{Series: w.Series, Timestamps: w.Times}
	}
	return f.p.ForecastBatch(ctx, in, horizon)
}

func loadGTT(path string) (*gtt.Model, string, error) {
	if path == "" {
		m, _, err := gtt.Default()
		return m, "embedded " + gtt.DefaultCheckpoint, err
	}
	m, err := gtt.Load(path)
	return m, path, err
}

func runGTTEval(ctx context.Context, out, logw io.Writer, o evalOptions) error {
	var hs []int
	for _, s := range strings.Split(o.horizons, ",") {
		h, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || h < 1 {
			return fmt.Errorf("gtt eval: horizon %q is not a positive integer", s)
		}
		hs = append(hs, h)
	}
	m, name, err := loadGTT(o.model)
	if err != nil {
		return fmt.Errorf("gtt eval: %w", err)
	}
	m = m.WithThreads(o.threads)
	if o.context < 1 || o.context > m.Config().Context {
		return fmt.Errorf("gtt eval: --context %d is outside [1, %d]", o.context, m.Config().Context)
	}
	f, err := tsdata.LoadCSV(o.csv)
	if err != nil {
		return fmt.Errorf("gtt eval: %w", err)
	}
	base := strings.ToLower(filepath.Base(o.csv))
	var sp tsdata.Split
	switch kind := o.split; {
	case kind == "etth" || kind == "auto" && strings.HasPrefix(base, "etth"):
		sp, err = tsdata.ETTSplit(f.Len(), 1)
	case kind == "ettm" || kind == "auto" && strings.HasPrefix(base, "ettm"):
		sp, err = tsdata.ETTSplit(f.Len(), 4)
	case kind == "ratio" || kind == "auto":
		sp = tsdata.RatioSplit(f.Len())
	default:
		err = fmt.Errorf("--split %q: want auto, ratio, etth or ettm", kind)
	}
	if err != nil {
		return fmt.Errorf("gtt eval: %w", err)
	}
	switch o.on {
	case "test":
	case "val":
		sp = sp.Validation()
	default:
		return fmt.Errorf("gtt eval: --on %q: want test or val", o.on)
	}
	var lengths []int
	if o.ensemble != "" {
		for _, s := range strings.Split(o.ensemble, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > o.context {
				return fmt.Errorf("gtt eval: --ensemble length %q is not in [1, --context %d]", s, o.context)
			}
			lengths = append(lengths, n)
		}
	}
	p, how, err := o.guard.wrap(gtt.ContextEnsemble{Predictor: m, Lengths: lengths})
	if err != nil {
		return fmt.Errorf("gtt eval: %w", err)
	}
	name += ", " + how
	fc := modelForecaster{p}
	began := time.Now()
	res, err := tsdata.Evaluate(ctx, f, fc, tsdata.EvalConfig{
		Horizons: hs, Context: o.context, Stride: o.stride, Split: sp, Season: o.season,
		Batch: o.batch, Times: o.timeFeatures, Progress: progressPrinter(logw, "windows"),
	})
	if err != nil {
		return fmt.Errorf("gtt eval %s: %w", o.csv, err)
	}
	if o.json {
		// {"horizons":{"96":{...},...}} with the horizons in increasing order.
		var b strings.Builder
		b.WriteString(`{"horizons":{`)
		for i, h := range res.Horizons {
			e, err := json.Marshal(evalHorizon{h.Model, h.Naive, h.SeasonalNaive})
			if err != nil {
				return fmt.Errorf("gtt eval: %w", err)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", strconv.Itoa(h.Horizon), e)
		}
		b.WriteString("}}\n")
		_, err := io.WriteString(out, b.String())
		return err
	}
	timesUsed := "no timestamps"
	if f.Times != nil {
		timesUsed = "timestamps not given to the model"
		if o.timeFeatures {
			timesUsed = "timestamps given to the model"
		}
	}
	fmt.Fprintf(out, "%s: %d rows x %d columns; split %s (test rows %d..%d); model %s; context %d; stride %d; %s\n",
		o.csv, f.Len(), res.Channels, sp.Kind, sp.TestStart(), sp.TestEnd()-1, name, o.context, max(o.stride, 1), timesUsed)
	fmt.Fprintf(out, "seasonal-naive period %d, %s\n", res.Season, res.SeasonFrom)
	fmt.Fprintf(out, "%8s %8s | %9s %9s | %9s %9s | %9s %9s\n", "horizon", "windows", "model MSE", "MAE", "naive MSE", "MAE", "s-naive MSE", "MAE")
	for _, h := range res.Horizons {
		fmt.Fprintf(out, "%8d %8d | %9.4f %9.4f | %9.4f %9.4f | %9.4f %9.4f\n", h.Horizon, h.Windows,
			h.Model.MSE, h.Model.MAE, h.Naive.MSE, h.Naive.MAE, h.SeasonalNaive.MSE, h.SeasonalNaive.MAE)
	}
	fmt.Fprintf(out, "took %s\n", time.Since(began).Round(time.Second))
	return nil
}

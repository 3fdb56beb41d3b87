package gtt

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Predictor is a point forecaster that Quantiles can backtest: a Model or a
// Tuned model.
type Predictor interface {
	// Config returns the model's shape.
	Config() Config
	// ForecastBatch predicts the next horizon steps of every channel of
	// every input, as Model.ForecastBatch does.
	ForecastBatch(ctx context.Context, inputs []Input, horizon int) ([][][]float32, error)
}

var (
	_ Predictor = (*Model)(nil)
	_ Predictor = (*Tuned)(nil)
)

// Prediction is a point forecast with quantiles, for one Input.
type Prediction struct {
	// Mean holds the point forecast: horizon steps per value channel.
	Mean [][]float32
	// Quantiles holds, per requested level, horizon steps per value
	// channel ([level][channel][step]).
	Quantiles [][][]float32
}

// Backtest settings of Quantiles.
const (
	// BacktestOrigins is the largest number of rolling forecast origins
	// one input is backtested from.
	BacktestOrigins = 8
	// BandSpread widens every backtest-calibrated quantile's distance from
	// the calibrated median, on top of the small-sample widening (see
	// Quantiles). It is the factor that puts the mean miss of the 0.1–0.9
	// and 0.05–0.95 bands at zero over 40 windows from the validation rows
	// (the 10% between the 70% train and the 20% test rows) of each of
	// exchange_rate (horizon 96), weather (96) and national_illness (24)
	// and 40 synthetic series (48), forecast through the default guard
	// (Guard with Seasonal), found by bisection and rounded to two
	// decimals; the test rows were not read. Recompute it with
	//
	//	GOMAXPROCS=1 go test ./models/gtt/ -run BandSpreadCalibration -v
	BandSpread = 1.11
	// minNormalResiduals is the number of backtest residuals below which
	// the standardized residual distribution is taken to be normal instead
	// of empirical.
	minNormalResiduals = 30
)

// Quantiles forecasts every input with p and adds the requested quantile
// levels (each in (0, 1), increasing), calibrated on the input's own
// history: p forecasts the input again from up to BacktestOrigins earlier
// origins (the last one horizon steps before the end, the others spaced
// half a horizon apart), and the errors of those forecasts against what
// followed give, per channel, a scale per horizon step (their root mean
// square across origins, smoothed over neighbouring steps and made
// non-decreasing) and the distribution of errors divided by that scale. A
// level's forecast is the point forecast plus the scale times that
// distribution's quantile, whose distance from the distribution's median
// is widened twice: by the ratio of Student's t quantile with as many
// degrees of freedom as there were origins to the normal quantile (a scale
// estimated from n origins understates the next error's spread, more so
// for few origins and far levels: 1.09 at 0.9 and 1.13 at 0.95 for 8), and
// by BandSpread, calibrated on real validation data. Steps beyond the backtested horizon (a history
// too short to backtest all of it) grow the last scale with the square
// root of the step, as a random walk's errors do; an input too short to
// backtest at all (or a channel with under 30 residuals) takes the scale of
// its one-step changes that way and normal quantiles. The forecasts run
// through ForecastBatch in chunks of MaxPassInputs inputs.
func Quantiles(ctx context.Context, p Predictor, inputs []Input, horizon int, levels []float64) ([]Prediction, error) {
	for i, q := range levels {
		if !(q > 0 && q < 1) {
			return nil, fmt.Errorf("forecast quantiles: level %v is outside (0, 1): %w", q, ErrInvalid)
		}
		if i > 0 && q <= levels[i-1] {
			return nil, fmt.Errorf("forecast quantiles: levels are not increasing (%v after %v): %w", q, levels[i-1], ErrInvalid)
		}
	}
	if horizon < 1 || horizon > MaxHorizon {
		return nil, fmt.Errorf("forecast quantiles: horizon %d is outside [1, %d]: %w", horizon, MaxHorizon, ErrInvalid)
	}
	bt, err := runBacktests(ctx, p, inputs, horizon, len(levels) > 0)
	if err != nil {
		return nil, err
	}
	return bt.predictions(inputs, horizon, levels, BandSpread), nil
}

// backtests holds the point forecasts of a batch of inputs (first, in
// order) followed by those of their backtests.
type backtests struct {
	out   [][][]float32
	plans []backtest
}

// runBacktests forecasts every input and, when withBacktests is set, every
// input again from its backtest origins, in chunks of MaxPassInputs.
func runBacktests(ctx context.Context, p Predictor, inputs []Input, horizon int, withBacktests bool) (backtests, error) {
	if g, ok := p.(Guard); ok && withBacktests {
		return runGuardedBacktests(ctx, g, inputs, horizon)
	}
	all := slices.Clone(inputs)
	plans := make([]backtest, len(inputs))
	if withBacktests {
		for i, in := range inputs {
			if len(in.Series) == 0 || len(in.Series[0]) == 0 {
				continue // ForecastBatch reports it
			}
			plans[i] = planBacktest(p.Config(), in, horizon)
			plans[i].first = len(all)
			for _, o := range plans[i].origins {
				all = append(all, cutInput(in, o, horizon))
			}
		}
	}
	out, err := forecastInChunks(ctx, p, all, horizon)
	if err != nil {
		return backtests{}, err
	}
	return backtests{out: out, plans: plans}, nil
}

// predictions builds the quantiles of levels (none: point forecasts only)
// from the backtests, widening each standardized quantile's distance from
// the standardized median by spread.
// runGuardedBacktests is runBacktests through a guard: the guard forecasts
// the inputs and chooses per channel from their whole histories, and the
// backtests are the network's forecasts from the earlier origins with those
// same choices applied to the history before each origin. Choosing afresh
// at every origin would cost each backtest the seasonal mix's own
// backtests, several forecasts more.
func runGuardedBacktests(ctx context.Context, g Guard, inputs []Input, horizon int) (backtests, error) {
	head, choices, err := g.Forecast(ctx, inputs, horizon)
	if err != nil {
		return backtests{}, err
	}
	plans := make([]backtest, len(inputs))
	var cuts []Input
	var owner []int
	for i, in := range inputs {
		plans[i] = planBacktest(g.Config(), in, horizon)
		plans[i].first = len(inputs) + len(cuts)
		for _, o := range plans[i].origins {
			cuts = append(cuts, cutInput(in, o, horizon))
			owner = append(owner, i)
		}
	}
	out, err := forecastInChunks(ctx, g.Predictor, cuts, horizon)
	if err != nil {
		return backtests{}, err
	}
	for j, cut := range cuts {
		for c, h := range cut.Series {
			choices[owner[j]][c].apply(h, out[j][c])
		}
	}
	return backtests{out: append(head, out...), plans: plans}, nil
}

func (b backtests) predictions(inputs []Input, horizon int, levels []float64, spread float64) []Prediction {
	preds := make([]Prediction, len(inputs))
	for i, in := range inputs {
		preds[i].Mean = b.out[i]
		if len(levels) == 0 {
			continue
		}
		bt := b.plans[i]
		preds[i].Quantiles = make([][][]float32, len(levels))
		for l := range levels {
			preds[i].Quantiles[l] = make([][]float32, len(in.Series))
		}
		for c, hist := range in.Series {
			var errs [][]float64 // [origin][step]
			for j, o := range bt.origins {
				fc := b.out[bt.first+j][c]
				e := make([]float64, bt.steps)
				for h := range e {
					a := hist[o+h]
					if usable(a) {
						e[h] = float64(a) - float64(fc[h])
					} else {
						e[h] = math.NaN()
					}
				}
				errs = append(errs, e)
			}
			scale, dist := residualModel(errs, hist, horizon, levels, spread)
			for l := range levels {
				q := make([]float32, horizon)
				for h := range q {
					q[h] = float32(float64(b.out[i][c][h]) + scale[h]*dist[l])
				}
				preds[i].Quantiles[l][c] = q
			}
		}
	}
	return preds
}

// MaxPassInputs bounds the inputs of one ForecastBatch call that Quantiles
// makes: a call holds the activations of all its inputs at once (a request
// of 512 series of 1024 steps with quantiles, 4608 inputs, took 1.1 GB in
// one call and 0.3 GB in chunks), and larger calls run no faster.
const MaxPassInputs = 512

// forecastInChunks runs p.ForecastBatch on inputs in chunks of at most
// MaxPassInputs. Inputs are independent, so the results are those of one
// call.
func forecastInChunks(ctx context.Context, p Predictor, inputs []Input, horizon int) ([][][]float32, error) {
	if len(inputs) <= MaxPassInputs {
		return p.ForecastBatch(ctx, inputs, horizon)
	}
	out := make([][][]float32, 0, len(inputs))
	for lo := 0; lo < len(inputs); lo += MaxPassInputs {
		hi := min(lo+MaxPassInputs, len(inputs))
		part, err := p.ForecastBatch(ctx, inputs[lo:hi], horizon)
		if err != nil {
			return nil, fmt.Errorf("inputs %d to %d: %w", lo, hi-1, err)
		}
		out = append(out, part...)
	}
	return out, nil
}

// backtest places the rolling origins of one input.
type backtest struct {
	origins []int // history lengths the backtests start from
	steps   int   // steps scored after each origin
	first   int   // index of the first backtest among the batch's inputs
}

// planBacktest chooses the origins: each keeps at least a minimum history
// (two patches, or half the input for a shorter one) and is followed by
// steps actual values, steps being the horizon or what the history allows.
func planBacktest(cfg Config, in Input, horizon int) backtest {
	t := len(in.Series[0])
	minHist := max(8, min(2*cfg.PatchLen, t/2))
	steps := min(horizon, t-minHist)
	if steps < 1 {
		return backtest{}
	}
	stride := max(1, (steps+1)/2)
	var bt backtest
	bt.steps = steps
	for j := 0; j < BacktestOrigins; j++ {
		o := t - steps - j*stride
		if o < minHist {
			break
		}
		if observedBefore(cfg, in.Series, o) {
			bt.origins = append(bt.origins, o)
		}
	}
	return bt
}

// observedBefore reports whether every channel has an observed value in the
// Context steps before o.
func observedBefore(cfg Config, series [][]float32, o int) bool {
	for _, s := range series {
		if !slices.ContainsFunc(s[max(0, o-cfg.Context):o], usable) {
			return false
		}
	}
	return true
}

// cutInput returns in with its history cut to its first o steps.
func cutInput(in Input, o, horizon int) Input {
	c := Input{Series: make([][]float32, len(in.Series))}
	for k, s := range in.Series {
		c.Series[k] = s[:o:o]
	}
	if in.Timestamps != nil {
		c.Timestamps = in.Timestamps[:o:o]
	}
	if in.Known != nil {
		c.Known = make([][]float32, len(in.Known))
		for k, s := range in.Known {
			c.Known[k] = s[: o+horizon : o+horizon]
		}
	}
	return c
}

// residualModel turns one channel's backtest errors ([origin][step], NaN
// where the actual value was missing) into a scale per horizon step and the
// standardized quantile of each level.
func residualModel(errs [][]float64, hist []float32, horizon int, levels []float64, spread float64) (scale, dist []float64) {
	steps := 0
	if len(errs) > 0 {
		steps = len(errs[0])
	}
	rms := make([]float64, steps)
	valid := 0
	for h := range rms {
		var s float64
		n := 0
		for _, e := range errs {
			if !math.IsNaN(e[h]) {
				s += e[h] * e[h]
				n++
			}
		}
		if n == 0 {
			rms[h] = math.NaN()
			continue
		}
		rms[h] = math.Sqrt(s / float64(n))
		valid += n
	}
	scale = make([]float64, horizon)
	if valid < minNormalResiduals {
		// Too little to calibrate on: a random walk with the history's
		// one-step change scale.
		d := diffScale(hist)
		for h := range scale {
			scale[h] = d * math.Sqrt(float64(h+1))
		}
		dist = make([]float64, len(levels))
		for l, q := range levels {
			dist[l] = normalQuantile(q)
		}
		return scale, dist
	}
	smooth := smoothRising(rms)
	copy(scale, smooth)
	last := smooth[len(smooth)-1]
	for h := steps; h < horizon; h++ {
		scale[h] = last * math.Sqrt(float64(h+1)/float64(steps))
	}
	var u []float64
	for _, e := range errs {
		for h, v := range e {
			if !math.IsNaN(v) && smooth[h] > 0 {
				u = append(u, v/smooth[h])
			}
		}
	}
	dist = make([]float64, len(levels))
	if len(u) < minNormalResiduals {
		for l, q := range levels {
			dist[l] = spread * studentWidening(q, len(errs)) * normalQuantile(q)
		}
		return scale, dist
	}
	slices.Sort(u)
	mid := empiricalQuantile(u, 0.5)
	for l, q := range levels {
		widen := spread * studentWidening(q, len(errs))
		dist[l] = mid + widen*(empiricalQuantile(u, q)-mid)
	}
	return scale, dist
}

// smoothRising averages x over a window of about an eighth of its length
// (NaN entries left out) and makes the result non-decreasing: forecast
// errors grow with the horizon, and a handful of origins per step is noisy.
func smoothRising(x []float64) []float64 {
	n := len(x)
	w := max(1, n/16)
	out := make([]float64, n)
	for h := range x {
		var s float64
		k := 0
		for j := max(0, h-w); j <= min(n-1, h+w); j++ {
			if !math.IsNaN(x[j]) {
				s += x[j]
				k++
			}
		}
		if k > 0 {
			out[h] = s / float64(k)
		} else {
			out[h] = math.NaN()
		}
	}
	run := 0.0
	for h, v := range out {
		if !math.IsNaN(v) {
			run = math.Max(run, v)
		}
		out[h] = run
	}
	return out
}

// diffScale returns the root mean square of the observed one-step changes
// of h (0 when there are none).
func diffScale(h []float32) float64 {
	var s float64
	n := 0
	for i := 1; i < len(h); i++ {
		if usable(h[i]) && usable(h[i-1]) {
			d := float64(h[i]) - float64(h[i-1])
			s += d * d
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return math.Sqrt(s / float64(n))
}

// empiricalQuantile returns the q-quantile of sorted values, interpolating
// linearly between order statistics.
func empiricalQuantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}

// normalQuantile returns the q-quantile of the standard normal
// distribution.
func normalQuantile(q float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*q-1)
}

// studentWidening returns the ratio of the q-quantile of Student's t
// distribution with df degrees of freedom (at least 2 is used) to the
// normal q-quantile (its limit at the median), by the Cornish–Fisher
// expansion of the t quantile around the normal one: within 1% of the exact
// ratio for levels in [0.01, 0.99] with df of 4 and more, or in [0.05, 0.95]
// with df of 2 and more, and below it further out.
func studentWidening(q float64, df int) float64 {
	z := normalQuantile(q)
	v := float64(max(df, 2))
	z2 := z * z
	g1 := (z2 + 1) / 4
	g2 := ((5*z2+16)*z2 + 3) / 96
	g3 := (((3*z2+19)*z2+17)*z2 - 15) / 384
	return 1 + g1/v + g2/(v*v) + g3/(v*v*v)
}

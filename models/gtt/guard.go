package gtt

import (
	"context"
	"math"

	"github.com/carryon/carryon/models/tsdata"
)

// Guard wraps a predictor and falls back on a classic baseline where the
// input's own history says the baseline is the better forecast.
//
// A value channel whose last Context steps behave as a random walk gets the
// naive forecast, its last observed value: the best forecast of a random
// walk, to which a network only adds drift, compounding over long
// rollouts. The test is a variance ratio in the manner of Lo and MacKinlay,
// read at the scales that long forecasts live on: the variance of the
// channel's 2q-step changes must be twice that of its q-step changes,
// within RandomWalkZ standard errors, at q = 8, 16, 32 and 64 (and the
// channel needs 256 observed one-step changes). Noise on top of a random
// walk (a quoted price's bid-ask bounce, a peg's jitter) up to about the
// size of a step passes, as it only adds a constant to every variance;
// smooth or trending series (ratios near 2), mean-reverting ones (near
// 1/2) and seasonal ones (whose variances rise and fall with the season)
// fail at some scale and keep the network's forecast.
//
// With Seasonal set, a channel with a season (from the timestamps' step
// when it is a usual one, tsdata.SeasonFromStep, else by autocorrelation of
// the history, tsdata.SeasonByACF) that is not a random walk and whose own
// history shows the season (tsdata.SeasonScore at least 4/√n over its last
// n ≤ Context steps) gets the mean of the network's and the seasonal-naive
// forecast (the last season repeated), each weighted by the inverse of its
// squared error over backtests (Bates and Granger's combination): the
// seasonal naive's weight is e_m / (e_m + e_s), e_m and e_s being the
// channel's two forecasts' squared errors summed over backtests from up to
// BacktestOrigins earlier origins, one patch (or the horizon, when shorter)
// each. That costs one forecast per origin.
type Guard struct {
	// Predictor makes the network forecasts (a Model, a Tuned model or an
	// ensemble of them).
	Predictor Predictor
	// Seasonal mixes in the seasonal-naive forecast as described above.
	Seasonal bool
}

// RandomWalkZ is the number of standard errors within which every variance
// ratio of a random-walk channel lies.
const RandomWalkZ = 2.0

var _ Predictor = Guard{}

// Config returns the shape of the underlying model.
func (g Guard) Config() Config { return g.Predictor.Config() }

// GuardChoice says how one channel's forecast was made.
type GuardChoice struct {
	// RandomWalk is set when the channel got the naive forecast.
	RandomWalk bool
	// Season is the seasonal-naive period and SeasonalWeight its weight
	// (0: the seasonal naive was not used).
	Season         int
	SeasonalWeight float64
}

// apply turns fc, the network's forecast of the channel whose history is h,
// into the forecast the choice says: the last observed value for a random
// walk, else the mix with the seasonal naive at its weight (none at 0).
func (c GuardChoice) apply(h, fc []float32) {
	naive := tsdata.LastObserved(h)
	switch {
	case c.RandomWalk:
		for k := range fc {
			fc[k] = float32(naive)
		}
	case c.Season > 0 && c.SeasonalWeight > 0:
		w, t := c.SeasonalWeight, len(h)
		for k, v := range fc {
			fc[k] = float32((1-w)*float64(v) + w*tsdata.SeasonalNaive(h, t, k, c.Season, naive))
		}
	}
}

// ForecastBatch predicts the next horizon steps of every value channel of
// every input, as Model.ForecastBatch does, guarded as described on Guard.
func (g Guard) ForecastBatch(ctx context.Context, inputs []Input, horizon int) ([][][]float32, error) {
	out, _, err := g.Forecast(ctx, inputs, horizon)
	return out, err
}

// Forecast is ForecastBatch that also says, per input and channel, how each
// forecast was made.
func (g Guard) Forecast(ctx context.Context, inputs []Input, horizon int) ([][][]float32, [][]GuardChoice, error) {
	fc, err := forecastInChunks(ctx, g.Predictor, inputs, horizon)
	if err != nil {
		return nil, nil, err
	}
	cfg := g.Config()
	choices := make([][]GuardChoice, len(inputs))
	for i, in := range inputs {
		choices[i] = make([]GuardChoice, len(in.Series))
		for c, h := range in.Series {
			if randomWalk(h[max(0, len(h)-cfg.Context):], RandomWalkZ) {
				choices[i][c].RandomWalk = true
				choices[i][c].apply(h, fc[i][c])
			}
		}
	}
	if g.Seasonal {
		if err := g.mixSeasonal(ctx, cfg, inputs, horizon, fc, choices); err != nil {
			return nil, nil, err
		}
	}
	return fc, choices, nil
}

// mixSeasonal backtests the inputs with a season and mixes the seasonal
// naive into the forecasts fc of their channels that are not random walks.
func (g Guard) mixSeasonal(ctx context.Context, cfg Config, inputs []Input, horizon int, fc [][][]float32, choices [][]GuardChoice) error {
	steps := min(horizon, cfg.PatchLen)
	var backs []Input
	plans := make([]seasonPlan, len(inputs))
	for i, in := range inputs {
		plans[i] = planSeason(cfg, in, steps)
		plans[i].first = len(backs)
		for _, o := range plans[i].origins {
			backs = append(backs, cutInput(in, o, steps))
		}
	}
	if len(backs) == 0 {
		return nil
	}
	bt, err := forecastInChunks(ctx, g.Predictor, backs, steps)
	if err != nil {
		return err
	}
	for i, in := range inputs {
		p := plans[i]
		if len(p.origins) == 0 {
			continue
		}
		for c, h := range in.Series {
			if choices[i][c].RandomWalk || !showsSeason(h[max(0, len(h)-cfg.Context):], p.season) {
				continue
			}
			var em, es float64 // squared errors of the network and the seasonal naive
			for j, o := range p.origins {
				naive := tsdata.LastObserved(h[:o])
				for k := range p.steps {
					if y := h[o+k]; usable(y) {
						e := float64(y) - float64(bt[p.first+j][c][k])
						em += e * e
						e = float64(y) - tsdata.SeasonalNaive(h, o, k, p.season, naive)
						es += e * e
					}
				}
			}
			if em+es == 0 {
				continue
			}
			choices[i][c].Season, choices[i][c].SeasonalWeight = p.season, em/(em+es)
			choices[i][c].apply(h, fc[i][c])
		}
	}
	return nil
}

// seasonPlan is where one input with a season is backtested.
type seasonPlan struct {
	origins []int
	steps   int // steps scored after each origin
	season  int // seasonal-naive period, 0 for none
	first   int // index of the first backtest among all backtests
}

// planSeason finds the season of in and places its backtest origins: the
// last steps before its end, then every steps earlier, each keeping at
// least two patches, half the input and one season of history. Inputs
// without a season get no origins.
func planSeason(cfg Config, in Input, steps int) seasonPlan {
	var p seasonPlan
	if len(in.Series) == 0 || len(in.Series[0]) == 0 {
		return p
	}
	t := len(in.Series[0])
	if p.season = inputSeason(in, cfg.Context); p.season == 0 {
		return p
	}
	minHist := max(8, min(2*cfg.PatchLen, t/2), p.season)
	p.steps = min(steps, t-minHist)
	if p.steps < 1 {
		return p
	}
	for j := range BacktestOrigins {
		o := t - (j+1)*p.steps
		if o < minHist {
			break
		}
		if observedBefore(cfg, in.Series, o) {
			p.origins = append(p.origins, o)
		}
	}
	return p
}

// inputSeason returns the seasonal period of in: from the step of its
// timestamps, else from the autocorrelation of its last context steps
// (its peak clear of noise, at most a quarter of the history); 0 when there
// is none or the history holds fewer than two seasons.
func inputSeason(in Input, context int) int {
	t := len(in.Series[0])
	season := 0
	if step, ok := tsdata.StepOf(in.Timestamps); ok {
		season = tsdata.SeasonFromStep(step)
	}
	if season == 0 {
		n := min(t, context)
		cols := make([][]float64, len(in.Series))
		for c, s := range in.Series {
			col := make([]float64, n)
			for k, v := range s[t-n:] {
				if usable(v) {
					col[k] = float64(v)
				} else {
					col[k] = math.NaN()
				}
			}
			cols[c] = col
		}
		// Up to a quarter of the history: SeasonByACF reads lags up to
		// 1.5 seasons and needs columns twice as long as that.
		var score float64
		season, score = tsdata.SeasonByACF(cols, n/4)
		// White noise's autocorrelations scatter by about 1/√n: a peak
		// that stands less than 4/√n above its neighbours is noise.
		if score < 4/math.Sqrt(float64(n)) {
			season = 0
		}
	}
	if season < 2 || 2*season > t {
		return 0
	}
	return season
}

// showsSeason reports whether the channel's history h has a clear peak of
// autocorrelation at the season: white noise's autocorrelations scatter by
// about 1/√n, so the peak must stand 4/√n above its neighbours.
func showsSeason(h []float32, season int) bool {
	col := make([]float64, len(h))
	for k, v := range h {
		if usable(v) {
			col[k] = float64(v)
		} else {
			col[k] = math.NaN()
		}
	}
	return tsdata.SeasonScore(col, season) >= 4/math.Sqrt(float64(len(h)))
}

// randomWalk reports whether h behaves as a random walk at every scale from
// 8 to 128 steps (see Guard), at z standard errors.
func randomWalk(h []float32, z float64) bool {
	n := 0
	for i := 1; i < len(h); i++ {
		if usable(h[i]) && usable(h[i-1]) {
			n++
		}
	}
	if n < 256 {
		return false
	}
	v := changeVariance(h, 8)
	for q := 8; q <= 64; q *= 2 {
		v2 := changeVariance(h, 2*q)
		if v == 0 || v2 == 0 {
			return false
		}
		// The ratio is a two-step variance ratio of the series read every
		// q steps: about n/q changes, so a standard error of about √(q/n).
		if math.Abs(v2/(2*v)-1) > z*math.Sqrt(float64(q)/float64(n)) {
			return false
		}
		v = v2
	}
	return true
}

// changeVariance returns the mean square of the observed q-step changes of
// h (0 when there are none).
func changeVariance(h []float32, q int) float64 {
	var s float64
	n := 0
	for i := q; i < len(h); i++ {
		if usable(h[i]) && usable(h[i-q]) {
			d := float64(h[i]) - float64(h[i-q])
			s += d * d
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

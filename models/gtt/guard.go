package gtt

import (
	"context"
	"math"
	"slices"

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
// each, every season an origin lies further back discounting its errors by
// SeasonDiscount (recent seasons say more about the next one). That costs
// one forecast per origin.
//
// With Trend set, a channel that is not a random walk and shows no season
// is backtested the same way against a damped trend (its last value plus
// the least-squares slope of its last TrendWindow steps, damped by
// TrendDamping a step); when the trend's squared backtest error is below
// TrendGate times the network's, the two are mixed by the inverse of their
// errors. Straight and slowly bending trends, which the network alone
// forecasts nearly flat, are then continued.
type Guard struct {
	// Predictor makes the network forecasts (a Model, a Tuned model or an
	// ensemble of them).
	Predictor Predictor
	// Seasonal mixes in the seasonal-naive forecast as described above.
	Seasonal bool
	// Trend mixes in a damped trend as described above.
	Trend bool
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
	// TrendWeight is the damped-trend forecast's weight and Slope its
	// slope per step (0: not used).
	TrendWeight, Slope float64
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
	default:
		ws, wt, t := c.SeasonalWeight, c.TrendWeight, len(h)
		if c.Season == 0 {
			ws = 0
		}
		if ws == 0 && wt == 0 {
			return
		}
		for k, v := range fc {
			f := (1 - ws - wt) * float64(v)
			if ws > 0 {
				f += ws * tsdata.SeasonalNaive(h, t, k, c.Season, naive)
			}
			if wt > 0 {
				f += wt * dampedTrend(naive, c.Slope, k)
			}
			fc[k] = float32(f)
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
	if g.Seasonal || g.Trend {
		if err := g.mixBaselines(ctx, cfg, inputs, horizon, fc, choices); err != nil {
			return nil, nil, err
		}
	}
	return fc, choices, nil
}

// mixBaselines backtests the inputs that have a season (or, with Trend,
// any input) and mixes the seasonal naive or the damped trend into the
// forecasts fc of their channels that are not random walks, as Guard
// describes.
func (g Guard) mixBaselines(ctx context.Context, cfg Config, inputs []Input, horizon int, fc [][][]float32, choices [][]GuardChoice) error {
	steps := min(horizon, cfg.PatchLen)
	var backs []Input
	plans := make([]seasonPlan, len(inputs))
	for i, in := range inputs {
		if !slices.ContainsFunc(choices[i], func(c GuardChoice) bool { return !c.RandomWalk }) {
			continue // every channel has its last value already
		}
		plans[i] = planSeason(cfg, in, steps, g.Seasonal, g.Trend)
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
			if choices[i][c].RandomWalk {
				continue
			}
			season := p.season
			if season > 0 && !showsSeason(h[max(0, len(h)-cfg.Context):], season) {
				season = 0
			}
			trend := g.Trend && season == 0
			if season == 0 && !trend {
				continue
			}
			var em, es, et float64 // squared errors of the network, the seasonal naive and the trend
			for j, o := range p.origins {
				w := p.discount(j)
				naive := tsdata.LastObserved(h[:o])
				slope := trendSlope(h[:o])
				for k := range p.steps {
					if y := h[o+k]; usable(y) {
						e := float64(y) - float64(bt[p.first+j][c][k])
						em += w * e * e
						if season > 0 {
							e = float64(y) - tsdata.SeasonalNaive(h, o, k, season, naive)
							es += w * e * e
						}
						e = float64(y) - dampedTrend(naive, slope, k)
						et += w * e * e
					}
				}
			}
			if trend && !(et < TrendGate*em) {
				continue // the trend alone was a candidate, and it failed the gate
			}
			ch := &choices[i][c]
			ws, wt := inverseWeights(em, es, et, season > 0, trend)
			if ws > 0 {
				ch.Season, ch.SeasonalWeight = season, ws
			}
			if wt > 0 {
				ch.TrendWeight, ch.Slope = wt, trendSlope(h)
			}
			ch.apply(h, fc[i][c])
		}
	}
	return nil
}

// SeasonDiscount is the factor by which a backtest's squared errors count
// less in the mix's weights for every season its origin lies before the
// last origin: after a change of regime (a year of larger flu seasons) the
// recent backtests tell the mix more. Inputs without a season weigh their
// backtests equally.
const SeasonDiscount = 0.8

// seasonPlan is where one input is backtested for the mix.
type seasonPlan struct {
	origins []int
	steps   int // steps scored after each origin
	season  int // seasonal-naive period, 0 for none
	first   int // index of the first backtest among all backtests
}

// discount returns the weight of the errors of backtest j (0 the latest):
// SeasonDiscount to the power of the seasons between its origin and the
// latest one, 1 without a season.
func (p seasonPlan) discount(j int) float64 {
	if p.season == 0 {
		return 1
	}
	return math.Pow(SeasonDiscount, float64(j*p.steps)/float64(p.season))
}

// planSeason finds the season of in (when seasonal is set) and places its
// backtest origins: the last steps before its end, then every steps
// earlier, each keeping at least two patches, half the input and one
// season of history. Inputs without a season get no origins unless trend
// is set.
func planSeason(cfg Config, in Input, steps int, seasonal, trend bool) seasonPlan {
	var p seasonPlan
	if len(in.Series) == 0 || len(in.Series[0]) == 0 {
		return p
	}
	t := len(in.Series[0])
	if seasonal {
		p.season = inputSeason(in, cfg.Context)
	}
	if p.season == 0 && !trend {
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

// inverseWeights returns the weights of the seasonal naive and the trend
// in a mix with the network, each forecast weighted by the inverse of its
// squared backtest error (a forecast left out when its flag is not set); a
// forecast with no error takes all the weight.
func inverseWeights(em, es, et float64, useS, useT bool) (ws, wt float64) {
	errs := []float64{em, es, et}
	use := []bool{true, useS, useT}
	var sum float64
	zeros := 0
	for i, e := range errs {
		if use[i] && e == 0 {
			zeros++
		}
	}
	w := make([]float64, 3)
	for i, e := range errs {
		switch {
		case !use[i]:
		case zeros > 0:
			if e == 0 {
				w[i] = 1 / float64(zeros)
			}
		default:
			w[i] = 1 / e
		}
		sum += w[i]
	}
	if sum == 0 {
		return 0, 0
	}
	return w[1] / sum, w[2] / sum
}

// Settings of the damped trend (Guard.Trend): the number of last steps
// whose least-squares line gives its slope, the factor each further step
// of the forecast multiplies the slope by, and how far below the network's
// its backtest error must lie for the trend to be mixed in at all.
const (
	TrendWindow  = 64
	TrendDamping = 0.98
	TrendGate    = 0.5
)

// trendSlope returns the least-squares slope per step of the observed
// values among the last TrendWindow steps of h (0 for fewer than 3).
func trendSlope(h []float32) float64 {
	h = h[max(0, len(h)-TrendWindow):]
	var sx, sy, sxx, sxy, n float64
	for i, v := range h {
		if !usable(v) {
			continue
		}
		x := float64(i)
		sx += x
		sy += float64(v)
		sxx += x * x
		sxy += x * float64(v)
		n++
	}
	den := n*sxx - sx*sx
	if n < 3 || den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// dampedTrend is the damped-trend forecast k steps (from 0) past a history
// whose last value is level: level + slope·(φ + φ² + … + φ^(k+1)).
func dampedTrend(level, slope float64, k int) float64 {
	phi := TrendDamping
	return level + slope*phi*(1-math.Pow(phi, float64(k+1)))/(1-phi)
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

package tsdata

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// M4Set is one frequency of the M4 competition: its name, the number of
// steps to forecast, and the official seasonal period ("frequency") that
// the competition's MASE and Naive2 use.
type M4Set struct {
	Name    string
	Horizon int
	Period  int
}

// The M4 sets carryon evaluates on. They are values: copy them, never
// change them.
var (
	// M4Hourly is the hourly set: 414 series, 48 steps, period 24.
	M4Hourly = M4Set{Name: "hourly", Horizon: 48, Period: 24}
	// M4Weekly is the weekly set: 359 series, 13 steps. Its official period
	// is 1 (M4 gives weekly data no season), so its MASE scale is the mean
	// absolute one-step change, and both the seasonal naive and Naive2
	// forecasts are the naive one.
	M4Weekly = M4Set{Name: "weekly", Horizon: 13, Period: 1}
)

// M4SetByName returns the known set called name ("hourly" or "weekly",
// any case).
func M4SetByName(name string) (M4Set, error) {
	for _, s := range []M4Set{M4Hourly, M4Weekly} {
		if strings.EqualFold(name, s.Name) {
			return s, nil
		}
	}
	return M4Set{}, fmt.Errorf("M4 set %q: want hourly or weekly", name)
}

// Files returns the names of the set's training and test files as the
// competition publishes them ("Hourly-train.csv", "Hourly-test.csv").
func (s M4Set) Files() (train, test string) {
	stem := s.Name
	if stem != "" {
		stem = strings.ToUpper(stem[:1]) + stem[1:]
	}
	return stem + "-train.csv", stem + "-test.csv"
}

// M4Series is one series of an M4 set: its training part (the history
// given to forecasters) and its test part (the values to forecast).
type M4Series struct {
	ID    string
	Train []float64
	Test  []float64
}

// PairM4 pairs the series of a training file with those of its test file by
// id (the first cell of each row). Every id must appear exactly once in
// each file; an id found in only one of them, or twice in one, is an error
// naming it. The pairs keep the order of train.
func PairM4(train, test []Series) ([]M4Series, error) {
	byID := make(map[string]int, len(test))
	for i, s := range test {
		if _, dup := byID[s.Name]; dup {
			return nil, fmt.Errorf("pair M4 series: id %q appears twice in the test file", s.Name)
		}
		byID[s.Name] = i
	}
	seen := make(map[string]bool, len(train))
	out := make([]M4Series, 0, len(train))
	for _, s := range train {
		if seen[s.Name] {
			return nil, fmt.Errorf("pair M4 series: id %q appears twice in the training file", s.Name)
		}
		seen[s.Name] = true
		i, ok := byID[s.Name]
		if !ok {
			return nil, fmt.Errorf("pair M4 series: id %q of the training file is not in the test file", s.Name)
		}
		out = append(out, M4Series{ID: s.Name, Train: s.Values, Test: test[i].Values})
	}
	for _, s := range test {
		if !seen[s.Name] {
			return nil, fmt.Errorf("pair M4 series: id %q of the test file is not in the training file", s.Name)
		}
	}
	return out, nil
}

// SMAPE returns the symmetric mean absolute percentage error of forecast
// against truth as M4 defines it, 200/h · Σ |y−ŷ| / (|y|+|ŷ|), over the
// h = len(truth) steps (forecast must hold at least h values). A step where
// both y and ŷ are 0 counts as no error. It is in percent, from 0 to 200.
func SMAPE(truth, forecast []float64) float64 {
	var s float64
	for i, y := range truth {
		d := math.Abs(y) + math.Abs(forecast[i])
		if d == 0 {
			continue
		}
		s += math.Abs(y-forecast[i]) / d
	}
	return 200 * s / float64(len(truth))
}

// MASEScale returns the denominator of M4's MASE for a series with the
// given history: the mean over t ≥ m of |x_t − x_{t−m}|, m being the set's
// period, or 1 when the period is below 2 or the history holds no more than
// m values. Pairs with a missing (NaN) value are left out. It is NaN when no
// pair is left, and 0 for a history that never changes at that lag; either
// makes MASE meaningless for the series.
func MASEScale(history []float64, period int) float64 {
	m := period
	if m < 2 || len(history) <= m {
		m = 1
	}
	var s float64
	n := 0
	for t := m; t < len(history); t++ {
		d := math.Abs(history[t] - history[t-m])
		if math.IsNaN(d) {
			continue
		}
		s += d
		n++
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// MASE returns the mean absolute scaled error of forecast against truth:
// the mean of |y−ŷ| over the len(truth) steps divided by scale (MASEScale
// of the series' history).
func MASE(truth, forecast []float64, scale float64) float64 {
	var s float64
	for i, y := range truth {
		s += math.Abs(y - forecast[i])
	}
	return s / float64(len(truth)) / scale
}

// OWA returns M4's overall weighted average of a method from its sMAPE and
// MASE and those of Naive2 on the same series, all averaged over the set
// first: (sMAPE/sMAPE_Naive2 + MASE/MASE_Naive2) / 2. Naive2 itself scores
// exactly 1; a method below 1 beats it.
func OWA(smape, mase, naive2SMAPE, naive2MASE float64) float64 {
	return (smape/naive2SMAPE + mase/naive2MASE) / 2
}

// NaiveForecast repeats the last observed (not NaN) value of history for
// horizon steps; with no observed value it forecasts 0.
func NaiveForecast(history []float64, horizon int) []float64 {
	last := 0.0
	for i := len(history) - 1; i >= 0; i-- {
		if !math.IsNaN(history[i]) {
			last = history[i]
			break
		}
	}
	out := make([]float64, horizon)
	for k := range out {
		out[k] = last
	}
	return out
}

// SeasonalNaiveForecast repeats the last period values of history (step k
// gets the value a whole number of periods before it). With a period below
// 2, a history shorter than one period, or a missing value in the place it
// would read, that step gets the naive forecast.
func SeasonalNaiveForecast(history []float64, horizon, period int) []float64 {
	out := NaiveForecast(history, horizon)
	n := len(history)
	if period < 2 || n < period {
		return out
	}
	for k := range out {
		if v := history[n-period+k%period]; !math.IsNaN(v) {
			out[k] = v
		}
	}
	return out
}

// SeasonalityTest is the seasonality test of the M4 benchmarks: a history
// of n values is seasonal at period m > 1 when n ≥ 3m and its
// autocorrelation at lag m lies outside the 90% band of white noise
// corrected for the autocorrelations below it, |r_m| > 1.645 ·
// sqrt((1 + 2 Σ_{k<m} r_k²) / n). As in the competition's reference code,
// which reads r_m from R's acf with its default lag limit, a lag m beyond
// ⌊10·log10 n⌋ is never seasonal (an hourly series needs 252 values). A
// history with a missing value, or constant, is not seasonal.
func SeasonalityTest(history []float64, period int) bool {
	n := len(history)
	if period < 2 || n < 3*period || period > int(math.Floor(10*math.Log10(float64(n)))) || period > n-1 {
		return false
	}
	var mean float64
	for _, v := range history {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
		mean += v
	}
	mean /= float64(n)
	var v0 float64
	for _, v := range history {
		v0 += (v - mean) * (v - mean)
	}
	if v0 == 0 {
		return false
	}
	acf := func(lag int) float64 {
		var s float64
		for t := lag; t < n; t++ {
			s += (history[t] - mean) * (history[t-lag] - mean)
		}
		return s / v0
	}
	var sum2 float64
	for k := 1; k < period; k++ {
		r := acf(k)
		sum2 += r * r
	}
	limit := 1.645 * math.Sqrt((1+2*sum2)/float64(n))
	return math.Abs(acf(period)) > limit
}

// SeasonalIndices returns the seasonal indices of a classical
// multiplicative decomposition of history at the given period, one per
// position t mod period (counted from the first value): the series divided
// by its centered moving average of order period (a 2×period average for an
// even period), averaged per position over the whole seasons the average
// covers, and scaled to a mean of 1. It returns false when the indices
// cannot be formed or are not all positive and finite (a history with
// missing or non-positive values can give such).
func SeasonalIndices(history []float64, period int) ([]float64, bool) {
	n := len(history)
	if period < 2 || n < 2*period {
		return nil, false
	}
	// Weights of the centered moving average, reaching half steps either
	// side of the centre.
	half := period / 2
	w := make([]float64, 2*half+1)
	for j := range w {
		w[j] = 1 / float64(period)
	}
	if period%2 == 0 {
		w[0] /= 2
		w[len(w)-1] /= 2
	}
	sums := make([]float64, period)
	counts := make([]int, period)
	for t := half; t+half < n; t++ {
		var trend float64
		for j, wj := range w {
			trend += wj * history[t-half+j]
		}
		r := history[t] / trend
		if math.IsNaN(r) || math.IsInf(r, 0) {
			continue
		}
		sums[t%period] += r
		counts[t%period]++
	}
	idx := make([]float64, period)
	var mean float64
	for i := range idx {
		if counts[i] == 0 {
			return nil, false
		}
		idx[i] = sums[i] / float64(counts[i])
		mean += idx[i]
	}
	mean /= float64(period)
	for i := range idx {
		idx[i] /= mean
		if !(idx[i] > 0) || math.IsInf(idx[i], 0) {
			return nil, false
		}
	}
	return idx, true
}

// Naive2 is the M4 benchmark Naive2: when the history passes
// SeasonalityTest at period, it is divided by its multiplicative seasonal
// indices (SeasonalIndices), its last adjusted value is repeated and each
// step multiplied back by the index of its position in the season;
// otherwise (or when the indices cannot be formed) it is the naive
// forecast. It also reports whether the seasonal path was taken.
func Naive2(history []float64, horizon, period int) ([]float64, bool) {
	n := len(history)
	if n == 0 || math.IsNaN(history[n-1]) || !SeasonalityTest(history, period) {
		return NaiveForecast(history, horizon), false
	}
	idx, ok := SeasonalIndices(history, period)
	if !ok {
		return NaiveForecast(history, horizon), false
	}
	level := history[n-1] / idx[(n-1)%period]
	out := make([]float64, horizon)
	for k := range out {
		out[k] = level * idx[(n+k)%period]
	}
	return out, true
}

// M4Scores are one method's scores over a set: sMAPE and MASE averaged over
// the series, and OWA formed from those averages.
type M4Scores struct {
	SMAPE float64 `json:"smape"`
	MASE  float64 `json:"mase"`
	OWA   float64 `json:"owa"`
}

// M4Result is the outcome of EvaluateM4.
type M4Result struct {
	Set M4Set
	// Series is the number of series scored, and Skipped the ids of those
	// left out (see EvaluateM4).
	Series  int
	Skipped []string
	// Seasonal is the number of scored series that passed SeasonalityTest
	// (Naive2 deseasonalized them).
	Seasonal int
	// The methods: the forecaster, the naive forecast, the seasonal naive
	// at the set's period, and Naive2.
	Model, Naive, SeasonalNaive, Naive2 M4Scores
}

// EvaluateM4 scores fc on the M4 set whose training and test files hold
// train and test (paired by id with PairM4), with the competition's
// metrics, next to the naive, seasonal-naive and Naive2 benchmarks.
//
// Each series is one univariate window of its last contextSteps training values
// (no timestamps: the M4 files have none), forecast set.Horizon steps ahead,
// batch windows per Forecast call (32 when batch < 1); progress, when not
// nil, is called with the series done and in total after each call. The
// benchmarks and the MASE scale read the whole training part, as the
// competition's reference code does. The test part of every series must
// hold set.Horizon values. A series whose test values are not all finite,
// or whose MASE scale (MASEScale) is 0 or not finite, cannot be scored by
// MASE; it is skipped, its id listed in Skipped, and left out of every
// average. A forecast that is not finite is an error naming the series.
func EvaluateM4(ctx context.Context, train, test []Series, set M4Set, fc Forecaster, batch, contextSteps int, progress func(done, total int)) (M4Result, error) {
	if set.Horizon < 1 {
		return M4Result{}, fmt.Errorf("evaluate M4 %s: horizon %d is not positive", set.Name, set.Horizon)
	}
	if contextSteps < 1 {
		return M4Result{}, fmt.Errorf("evaluate M4 %s: context %d is not positive", set.Name, contextSteps)
	}
	if batch < 1 {
		batch = 32
	}
	pairs, err := PairM4(train, test)
	if err != nil {
		return M4Result{}, fmt.Errorf("evaluate M4 %s: %w", set.Name, err)
	}
	res := M4Result{Set: set}
	type scored struct {
		s     M4Series
		scale float64
	}
	var use []scored
	for _, p := range pairs {
		if len(p.Test) != set.Horizon {
			return M4Result{}, fmt.Errorf("evaluate M4 %s: series %q has %d test values, want %d", set.Name, p.ID, len(p.Test), set.Horizon)
		}
		scale := MASEScale(p.Train, set.Period)
		ok := scale > 0 && !math.IsInf(scale, 0)
		for _, v := range p.Test {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				ok = false
			}
		}
		if !ok {
			res.Skipped = append(res.Skipped, p.ID)
			continue
		}
		use = append(use, scored{p, scale})
	}
	if len(use) == 0 {
		return M4Result{}, fmt.Errorf("evaluate M4 %s: no series can be scored (%d skipped)", set.Name, len(res.Skipped))
	}
	var model, naive, snaive, naive2 M4Scores
	add := func(acc *M4Scores, truth, f []float64, scale float64) {
		acc.SMAPE += SMAPE(truth, f)
		acc.MASE += MASE(truth, f, scale)
	}
	for lo := 0; lo < len(use); lo += batch {
		if err := ctx.Err(); err != nil {
			return M4Result{}, fmt.Errorf("evaluate M4 %s: %w", set.Name, err)
		}
		hi := min(lo+batch, len(use))
		windows := make([]Window, hi-lo)
		for i, u := range use[lo:hi] {
			h := u.s.Train[max(0, len(u.s.Train)-contextSteps):]
			w := make([]float32, len(h))
			for j, v := range h {
				w[j] = float32(v)
			}
			windows[i] = Window{Series: [][]float32{w}}
		}
		preds, err := fc.Forecast(ctx, windows, set.Horizon)
		if err != nil {
			return M4Result{}, fmt.Errorf("evaluate M4 %s: series %q..%q: %w", set.Name, use[lo].s.ID, use[hi-1].s.ID, err)
		}
		if len(preds) != len(windows) {
			return M4Result{}, fmt.Errorf("evaluate M4 %s: forecaster returned %d forecasts for %d series", set.Name, len(preds), len(windows))
		}
		f := make([]float64, set.Horizon)
		for i, u := range use[lo:hi] {
			p := preds[i]
			if len(p) != 1 || len(p[0]) < set.Horizon {
				return M4Result{}, fmt.Errorf("evaluate M4 %s: series %q: forecaster returned %d channels, want 1 of %d steps", set.Name, u.s.ID, len(p), set.Horizon)
			}
			for k := range f {
				f[k] = float64(p[0][k])
				if math.IsNaN(f[k]) || math.IsInf(f[k], 0) {
					return M4Result{}, fmt.Errorf("evaluate M4 %s: series %q: forecast step %d is %v", set.Name, u.s.ID, k, f[k])
				}
			}
			truth, hist := u.s.Test, u.s.Train
			add(&model, truth, f, u.scale)
			add(&naive, truth, NaiveForecast(hist, set.Horizon), u.scale)
			add(&snaive, truth, SeasonalNaiveForecast(hist, set.Horizon, set.Period), u.scale)
			n2, seasonal := Naive2(hist, set.Horizon, set.Period)
			add(&naive2, truth, n2, u.scale)
			if seasonal {
				res.Seasonal++
			}
		}
		if progress != nil {
			progress(hi, len(use))
		}
	}
	n := float64(len(use))
	res.Series = len(use)
	for _, acc := range []*M4Scores{&model, &naive, &snaive, &naive2} {
		acc.SMAPE /= n
		acc.MASE /= n
	}
	for _, acc := range []*M4Scores{&model, &naive, &snaive, &naive2} {
		acc.OWA = OWA(acc.SMAPE, acc.MASE, naive2.SMAPE, naive2.MASE)
	}
	res.Model, res.Naive, res.SeasonalNaive, res.Naive2 = model, naive, snaive, naive2
	return res, nil
}

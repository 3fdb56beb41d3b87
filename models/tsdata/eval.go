package tsdata

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Split is a chronological train/validation/test split of a table's rows:
// train is [0, Train), validation [Train, Train+Val), test [Train+Val,
// Train+Val+Test).
type Split struct {
	Train, Val, Test int
	// Kind names the rule that made the split.
	Kind string
}

// TestStart returns the first test row.
func (s Split) TestStart() int { return s.Train + s.Val }

// TestEnd returns one past the last test row.
func (s Split) TestEnd() int { return s.Train + s.Val + s.Test }

// Validation returns the split that scores the validation rows in place of
// the test rows: the same train rows (and normalization), no validation
// part, and the validation rows as its test part. Recipes are chosen on it,
// so that the test rows stay unseen.
func (s Split) Validation() Split {
	return Split{Train: s.Train, Val: 0, Test: s.Val, Kind: s.Kind + ", validation rows"}
}

// RatioSplit is the 70/10/20 split of the long-horizon benchmarks: train
// and test are ⌊0.7·n⌋ and ⌊0.2·n⌋ rows, validation the rest.
func RatioSplit(n int) Split {
	train := int(float64(n) * 0.7)
	test := int(float64(n) * 0.2)
	return Split{Train: train, Val: n - train - test, Test: test, Kind: "70/10/20"}
}

// ETTSplit is the fixed split of the ETT files: 12 months of train, 4 of
// validation and 4 of test, counting 30-day months of stepsPerHour rows
// per hour (1 for ETTh, 4 for ETTm). Rows after the 20 months are unused.
func ETTSplit(n, stepsPerHour int) (Split, error) {
	month := 30 * 24 * stepsPerHour
	s := Split{Train: 12 * month, Val: 4 * month, Test: 4 * month, Kind: "ETT 12/4/4 months"}
	if s.TestEnd() > n {
		return Split{}, fmt.Errorf("ETT split needs %d rows, the file has %d", s.TestEnd(), n)
	}
	return s, nil
}

// Window is one forecasting input: the channels' histories (equal lengths,
// NaN missing) and, when known, the time of each step.
type Window struct {
	Series [][]float32
	Times  []time.Time
}

// Forecaster predicts the next horizon steps of each channel of each
// window: the result holds one [channels][horizon] block per window.
type Forecaster interface {
	Forecast(ctx context.Context, windows []Window, horizon int) ([][][]float32, error)
}

// EvalConfig sets up an evaluation.
type EvalConfig struct {
	// Horizons lists the forecast lengths to score.
	Horizons []int
	// Context is the longest history given to the forecaster.
	Context int
	// Stride is the spacing of window starts over the test split (1 is
	// the standard protocol; larger values score a subsample, faster).
	Stride int
	// Split is the chronological split.
	Split Split
	// Season is the seasonal-naive period; 0 detects it (SeasonOf).
	Season int
	// Batch is the number of windows per Forecast call.
	Batch int
	// Times passes the frame's timestamps to the forecaster.
	Times bool
	// Progress, when set, is called with the windows done and in total.
	Progress func(done, total int)
}

// Metrics are the mean squared and mean absolute errors over every
// window, channel and step, in train-normalized units.
type Metrics struct {
	MSE float64 `json:"mse"`
	MAE float64 `json:"mae"`
}

// HorizonResult scores one horizon.
type HorizonResult struct {
	Horizon       int
	Windows       int
	Model         Metrics
	Naive         Metrics
	SeasonalNaive Metrics
}

// EvalResult is the outcome of Evaluate.
type EvalResult struct {
	Horizons []HorizonResult
	// Season is the seasonal-naive period and SeasonFrom how it was found.
	Season     int
	SeasonFrom string
	Split      Split
	Channels   int
}

// Evaluate runs the long-horizon protocol on f: every column is
// z-normalized with its train-split mean and deviation; for each horizon H
// a window starts at every Stride-th row t of the test split with t+H inside
// it, reads up to Context rows before t (reaching back into validation and
// train), and is scored on rows [t, t+H) against the forecaster, the naive
// forecast (the last observed value) and the seasonal-naive forecast (the
// last observed season repeated). Missing values in the truth are skipped.
func Evaluate(ctx context.Context, f *Frame, fc Forecaster, cfg EvalConfig) (EvalResult, error) {
	if len(cfg.Horizons) == 0 {
		return EvalResult{}, errors.New("evaluate: no horizons")
	}
	hs := slices.Clone(cfg.Horizons)
	slices.Sort(hs)
	hs = slices.Compact(hs)
	if hs[0] < 1 {
		return EvalResult{}, fmt.Errorf("evaluate: horizon %d is not positive", hs[0])
	}
	if cfg.Context < 1 {
		return EvalResult{}, fmt.Errorf("evaluate: context %d is not positive", cfg.Context)
	}
	stride := max(cfg.Stride, 1)
	batchSize := cfg.Batch
	if batchSize < 1 {
		batchSize = 32
	}
	sp := cfg.Split
	n := f.Len()
	if sp.Train < 2 || sp.TestEnd() > n || sp.Test < hs[0] {
		return EvalResult{}, fmt.Errorf("evaluate: split %+v does not fit %d rows and horizon %d", sp, n, hs[0])
	}
	if hs[len(hs)-1] > sp.Test {
		return EvalResult{}, fmt.Errorf("evaluate: horizon %d is longer than the %d-row test split", hs[len(hs)-1], sp.Test)
	}
	norm, err := Normalize(f, sp.Train)
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	res := EvalResult{Split: sp, Channels: len(norm)}
	res.Season, res.SeasonFrom = cfg.Season, "given"
	if res.Season <= 0 {
		res.Season, res.SeasonFrom = SeasonOf(f, sp.Train)
	}

	// Windows, grouped by the longest scored horizon that fits.
	type win struct{ t, need int }
	var wins []win
	for t := sp.TestStart(); t+hs[0] <= sp.TestEnd(); t += stride {
		need := 0
		for _, h := range hs {
			if t+h <= sp.TestEnd() {
				need = h
			}
		}
		wins = append(wins, win{t, need})
	}
	type acc struct {
		n                        int
		windows                  int
		se, ae, nse, nae, ss, sa float64
	}
	accs := make([]acc, len(hs))
	done := 0
	for lo := 0; lo < len(wins); {
		if err := ctx.Err(); err != nil {
			return EvalResult{}, fmt.Errorf("evaluate: %w", err)
		}
		hi := lo
		for hi < len(wins) && hi-lo < batchSize && wins[hi].need == wins[lo].need {
			hi++
		}
		need := wins[lo].need
		batch := make([]Window, hi-lo)
		for i, w := range wins[lo:hi] {
			from := max(0, w.t-cfg.Context)
			ws := Window{Series: make([][]float32, len(norm))}
			for c, col := range norm {
				ws.Series[c] = col[from:w.t]
			}
			if cfg.Times && f.Times != nil {
				ws.Times = f.Times[from:w.t]
			}
			batch[i] = ws
		}
		preds, err := fc.Forecast(ctx, batch, need)
		if err != nil {
			return EvalResult{}, fmt.Errorf("evaluate: windows at rows %d..%d: %w", wins[lo].t, wins[hi-1].t, err)
		}
		if len(preds) != len(batch) {
			return EvalResult{}, fmt.Errorf("evaluate: forecaster returned %d forecasts for %d windows", len(preds), len(batch))
		}
		for i, w := range wins[lo:hi] {
			p := preds[i]
			if len(p) != len(norm) {
				return EvalResult{}, fmt.Errorf("evaluate: forecaster returned %d channels, want %d", len(p), len(norm))
			}
			for c, col := range norm {
				if len(p[c]) < need {
					return EvalResult{}, fmt.Errorf("evaluate: forecaster returned %d steps, want %d", len(p[c]), need)
				}
				hist := col[max(0, w.t-cfg.Context):w.t]
				last := LastObserved(hist)
				for j, h := range hs {
					if h > need {
						break
					}
					a := &accs[j]
					for k := 0; k < h; k++ {
						truth := float64(col[w.t+k])
						if math.IsNaN(truth) {
							continue
						}
						e := float64(p[c][k]) - truth
						a.se += e * e
						a.ae += math.Abs(e)
						e = last - truth
						a.nse += e * e
						a.nae += math.Abs(e)
						s := SeasonalNaive(col, w.t, k, res.Season, last)
						e = s - truth
						a.ss += e * e
						a.sa += math.Abs(e)
						a.n++
					}
				}
			}
			for j, h := range hs {
				if h <= need {
					accs[j].windows++
				}
			}
		}
		done += hi - lo
		if cfg.Progress != nil {
			cfg.Progress(done, len(wins))
		}
		lo = hi
	}
	for i, h := range hs {
		a := accs[i]
		r := HorizonResult{Horizon: h, Windows: a.windows}
		if a.n > 0 {
			n := float64(a.n)
			r.Model = Metrics{a.se / n, a.ae / n}
			r.Naive = Metrics{a.nse / n, a.nae / n}
			r.SeasonalNaive = Metrics{a.ss / n, a.sa / n}
		}
		res.Horizons = append(res.Horizons, r)
	}
	return res, nil
}

// LastObserved returns the last observed value of h (missing values are
// NaN or ±Inf), or 0 when there is none: the naive forecast.
func LastObserved(h []float32) float64 {
	for i := len(h) - 1; i >= 0; i-- {
		if v := float64(h[i]); !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v
		}
	}
	return 0
}

// SeasonalNaive is the seasonal-naive forecast of row t+k from the history
// col[:t]: the value a whole number of seasons earlier within the last
// season before t; naive when there is no season or that value is missing.
func SeasonalNaive(col []float32, t, k, season int, naive float64) float64 {
	if season < 2 || t < season {
		return naive
	}
	v := float64(col[t-season+k%season])
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return naive
	}
	return v
}

// Normalize returns the columns of f as float32, each z-normalized with the
// mean and standard deviation of its first train rows (missing values
// ignored, kept as NaN).
func Normalize(f *Frame, train int) ([][]float32, error) {
	out := make([][]float32, len(f.Columns))
	for c, col := range f.Columns {
		mean, sd, ok := meanStd(col[:train])
		if !ok {
			return nil, fmt.Errorf("column %d (%s) has no observed value in the train split", c, f.Names[c])
		}
		if sd == 0 {
			sd = 1
		}
		o := make([]float32, len(col))
		for i, v := range col {
			o[i] = float32((v - mean) / sd)
		}
		out[c] = o
	}
	return out, nil
}

// meanStd returns the mean and population standard deviation of the
// non-NaN values of x.
func meanStd(x []float64) (mean, sd float64, ok bool) {
	var s, n float64
	for _, v := range x {
		if !math.IsNaN(v) {
			s += v
			n++
		}
	}
	if n == 0 {
		return 0, 0, false
	}
	mean = s / n
	var q float64
	for _, v := range x {
		if !math.IsNaN(v) {
			q += (v - mean) * (v - mean)
		}
	}
	return mean, math.Sqrt(q / n), true
}

package tsdata

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// StepOf returns the median spacing of times.
func StepOf(times []time.Time) (time.Duration, bool) {
	if len(times) < 2 {
		return 0, false
	}
	d := make([]time.Duration, len(times)-1)
	for i := range d {
		d[i] = times[i+1].Sub(times[i])
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)/2] > 0
}

// SeasonFromStep returns the usual seasonal period of data sampled every
// step: a day of sub-daily steps, a week of days, a year of weeks (52),
// months (12) or quarters (4). It returns 0 for other steps.
func SeasonFromStep(step time.Duration) int {
	day := 24 * time.Hour
	switch {
	case step <= 0:
		return 0
	case step < day && day%step == 0:
		return int(day / step)
	case step == day:
		return 7
	case step == 7*day:
		return 52
	case step >= 28*day && step <= 31*day:
		return 12
	case step >= 89*day && step <= 92*day:
		return 4
	}
	return 0
}

// SeasonOf picks the seasonal-naive period of f from its first train rows:
// from the step of its timestamps when that is a usual one (SeasonFromStep),
// else by autocorrelation (SeasonByACF). It returns the period and a
// phrase saying how it was found; period 1 means no season was found.
func SeasonOf(f *Frame, train int) (int, string) {
	if step, ok := StepOf(f.Times); ok {
		if s := SeasonFromStep(step); s > 0 {
			return s, fmt.Sprintf("from the %s step of the timestamps", step)
		}
	}
	cols := make([][]float64, len(f.Columns))
	for c, col := range f.Columns {
		cols[c] = col[:train]
	}
	s, r := SeasonByACF(cols, min(train/4, 1000))
	if s < 2 {
		return 1, "autocorrelation found no season; seasonal naive equals naive"
	}
	return s, fmt.Sprintf("by autocorrelation of the train split (peak at lag %d, score %.2f)", s, r)
}

// minBump is the score a seasonal peak needs (see SeasonByACF).
const minBump = 0.1

// SeasonByACF returns the seasonal period of the columns by
// autocorrelation: each column is detrended (its least-squares line
// removed), the autocorrelations are averaged over the columns, and each lag
// l in [2, maxLag] is scored by how far the autocorrelation at l rises above
// the mean of those at l/2 and 3l/2. A season of period P has troughs at
// P/2 and 3P/2, so it scores high, while a multiple 2P does not (its
// neighbours P and 3P are peaks too), and neither does a random walk's
// slowly decaying autocorrelation, nor does a decaying trend shift the
// peak. Columns shorter than 3·maxLag+2 steps (twice the largest lag read)
// are left out. It returns 1 when no lag scores 0.1, and the best score.
func SeasonByACF(cols [][]float64, maxLag int) (int, float64) {
	if maxLag < 3 {
		return 1, 0
	}
	acf, used := meanACF(cols, maxLag*3/2+1)
	if used == 0 {
		return 1, 0
	}
	best, bestScore := 1, minBump
	for lag := 2; lag <= maxLag; lag++ {
		if score := peakScore(acf, lag); score > bestScore {
			best, bestScore = lag, score
		}
	}
	if best == 1 {
		return 1, 0
	}
	return best, bestScore
}

// SeasonScore returns SeasonByACF's score of lag (at least 2) for col
// alone: how far its detrended autocorrelation at lag rises above the mean
// of those at lag/2 and 3·lag/2; 0 when col is shorter than 3·lag+2 steps
// or constant. White noise scores about ±1/√n.
func SeasonScore(col []float64, lag int) float64 {
	if lag < 2 {
		return 0
	}
	acf, used := meanACF([][]float64{col}, lag*3/2+1)
	if used == 0 {
		return 0
	}
	return peakScore(acf, lag)
}

// peakScore is the rise of acf at lag above its neighbours at lag/2 and
// 3·lag/2.
func peakScore(acf []float64, lag int) float64 {
	return acf[lag] - 0.5*(acf[lag/2]+acf[lag*3/2])
}

// meanACF returns the autocorrelations at lags 0..top of the detrended
// columns, averaged over the columns long enough (at least 2·top steps) and
// not constant, and how many those were.
func meanACF(cols [][]float64, top int) ([]float64, int) {
	acf := make([]float64, top+1)
	used := 0
	for _, col := range cols {
		d := detrend(col)
		if len(d) < 2*top {
			continue
		}
		var v0 float64
		for _, v := range d {
			v0 += v * v
		}
		if v0 == 0 {
			continue
		}
		for lag := 1; lag <= top; lag++ {
			var s float64
			for i := lag; i < len(d); i++ {
				s += d[i] * d[i-lag]
			}
			acf[lag] += s / v0
		}
		used++
	}
	if used > 0 {
		for lag := range acf {
			acf[lag] /= float64(used)
		}
	}
	return acf, used
}

// detrend returns x less its least-squares line, missing values as 0.
func detrend(x []float64) []float64 {
	var sx, sy, sxx, sxy, n float64
	for i, v := range x {
		if math.IsNaN(v) {
			continue
		}
		t := float64(i)
		sx += t
		sy += v
		sxx += t * t
		sxy += t * v
		n++
	}
	out := make([]float64, len(x))
	if n < 2 {
		return out
	}
	den := n*sxx - sx*sx
	slope := 0.0
	if den != 0 {
		slope = (n*sxy - sx*sy) / den
	}
	icept := (sy - slope*sx) / n
	for i, v := range x {
		if !math.IsNaN(v) {
			out[i] = v - icept - slope*float64(i)
		}
	}
	return out
}

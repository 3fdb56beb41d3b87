package gtt

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/carryon/carryon/models/testenv"
	"github.com/carryon/carryon/models/tsdata"
)

// coverageCase is a set of forecast windows and what followed each.
type coverageCase struct {
	name    string
	horizon int
	inputs  []Input
	truth   [][][]float32 // [window][channel][step]
}

// coverageSets are the real sets the band is measured on, with the
// horizons of the long-horizon benchmarks.
var coverageSets = []struct {
	name, path string
	horizon    int
}{
	{"exchange_rate", "../tsdata/exchange_rate/exchange_rate.csv", 96},
	{"weather", "../tsdata/weather/weather.values_noheader.csv", 96},
	{"national_illness", "../tsdata/illness/national_illness.csv", 24},
}

// coverageWindows is the number of windows per set.
const coverageWindows = 40

// realCoverageCases cuts coverageWindows windows, evenly spread, from the
// validation rows (rows "val") or the test rows ("test") of the 70/10/20
// split of each real set: every column, the last Context rows before the
// window start, no timestamps.
func realCoverageCases(t *testing.T, rows string) []coverageCase {
	var cases []coverageCase
	for _, s := range coverageSets {
		f, err := tsdata.LoadCSV(testenv.Path(t, s.path))
		if err != nil {
			t.Fatal(err)
		}
		sp := tsdata.RatioSplit(f.Len())
		if rows == "val" {
			sp = sp.Validation()
		}
		lo, hi := sp.TestStart(), sp.TestEnd()-s.horizon
		c := coverageCase{name: s.name + " " + rows, horizon: s.horizon}
		for w := range coverageWindows {
			at := lo + w*(hi-lo)/(coverageWindows-1)
			from := max(0, at-1024)
			in := Input{Series: make([][]float32, len(f.Columns))}
			truth := make([][]float32, len(f.Columns))
			for k, col := range f.Columns {
				in.Series[k] = toFloat32(col[from:at])
				truth[k] = toFloat32(col[at : at+s.horizon])
			}
			c.inputs = append(c.inputs, in)
			c.truth = append(c.truth, truth)
		}
		cases = append(cases, c)
	}
	return cases
}

// syntheticCoverageCase draws coverageWindows series of the pretraining
// generator (other seeds than pretraining's) and forecasts the last 48
// steps of each from the 1024 before.
func syntheticCoverageCase(seed uint64) coverageCase {
	const horizon = 48
	rng := rand.New(rand.NewPCG(seed, 7))
	c := coverageCase{name: "synthetic", horizon: horizon}
	for range coverageWindows {
		s := tsdata.Synthesize(rng, 1024+horizon, 1+rng.IntN(3))
		in := Input{Series: make([][]float32, len(s.Series))}
		truth := make([][]float32, len(s.Series))
		for k, col := range s.Series {
			in.Series[k] = toFloat32(col[:1024])
			truth[k] = toFloat32(col[1024:])
		}
		if s.Times != nil {
			in.Timestamps = s.Times[:1024]
		}
		c.inputs = append(c.inputs, in)
		c.truth = append(c.truth, truth)
	}
	return c
}

func toFloat32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// bandCoverage returns the share of observed truth values inside the band
// from the first to the last of levels, built with spread.
func bandCoverage(bt backtests, c coverageCase, levels []float64, spread float64) float64 {
	preds := bt.predictions(c.inputs, c.horizon, levels, spread)
	inside, total := 0, 0
	for w, p := range preds {
		lo, hi := p.Quantiles[0], p.Quantiles[len(levels)-1]
		for k, tr := range c.truth[w] {
			for h, a := range tr {
				if math.IsNaN(float64(a)) {
					continue
				}
				if a >= lo[k][h] && a <= hi[k][h] {
					inside++
				}
				total++
			}
		}
	}
	return float64(inside) / float64(total)
}

// TestQuantilesCoverageRealSets measures the 0.1–0.9 and 0.05–0.95 bands on
// the validation and test rows of the real sets and on synthetic series.
// It takes minutes on one thread:
//
//	GOMAXPROCS=1 go test ./models/gtt/ -run QuantilesCoverage -v
func TestQuantilesCoverageRealSets(t *testing.T) {
	if testing.Short() {
		t.Skip("minutes of forecasting")
	}
	m, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := append(realCoverageCases(t, "val"), realCoverageCases(t, "test")...)
	cases = append(cases, syntheticCoverageCase(1))
	for _, c := range cases {
		bt, err := runBacktests(context.Background(), Guard{Predictor: m, Seasonal: true, Trend: true}, c.inputs, c.horizon, true)
		if err != nil {
			t.Fatal(err)
		}
		c80 := bandCoverage(bt, c, []float64{0.1, 0.9}, BandSpread)
		c90 := bandCoverage(bt, c, []float64{0.05, 0.95}, BandSpread)
		t.Logf("%-24s horizon %3d: 0.1–0.9 band %.3f, 0.05–0.95 band %.3f (spread 1: %.3f, %.3f)", c.name, c.horizon, c80, c90,
			bandCoverage(bt, c, []float64{0.1, 0.9}, 1), bandCoverage(bt, c, []float64{0.05, 0.95}, 1))
	}
}

// TestBandSpreadCalibration recomputes BandSpread on the validation rows
// of the real sets and on synthetic series, and checks the constant. It
// takes about a minute on one thread:
//
//	GOMAXPROCS=1 go test ./models/gtt/ -run BandSpreadCalibration -v
func TestBandSpreadCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of forecasting")
	}
	m, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := append(realCoverageCases(t, "val"), syntheticCoverageCase(1))
	bts := make([]backtests, len(cases))
	for i, c := range cases {
		if bts[i], err = runBacktests(context.Background(), Guard{Predictor: m, Seasonal: true, Trend: true}, c.inputs, c.horizon, true); err != nil {
			t.Fatal(err)
		}
	}
	// miss is the mean shortfall of both bands' coverage from their
	// nominal 80% and 90%, over the cases; it falls as spread grows.
	miss := func(spread float64) float64 {
		var s float64
		for i, c := range cases {
			s += 0.8 - bandCoverage(bts[i], c, []float64{0.1, 0.9}, spread)
			s += 0.9 - bandCoverage(bts[i], c, []float64{0.05, 0.95}, spread)
		}
		return s / float64(2*len(cases))
	}
	lo, hi := 0.5, 3.0
	for range 30 {
		mid := (lo + hi) / 2
		if miss(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	spread := math.Round((lo+hi)/2*100) / 100
	for i, c := range cases {
		t.Logf("%-24s spread %.2f: 0.1–0.9 band %.3f, 0.05–0.95 band %.3f", c.name, spread,
			bandCoverage(bts[i], c, []float64{0.1, 0.9}, spread), bandCoverage(bts[i], c, []float64{0.05, 0.95}, spread))
	}
	t.Logf("calibrated spread %.2f (mean miss %+.4f), BandSpread %.2f", spread, miss(spread), BandSpread)
	if math.Abs(spread-BandSpread) > 0.05 {
		t.Errorf("calibrated spread %.2f, BandSpread is %.2f: set it to the calibrated value", spread, BandSpread)
	}
}

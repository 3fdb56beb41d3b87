package gtt

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// randomWalkSeries returns n steps of a Gaussian random walk from 100.
func randomWalkSeries(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	s := make([]float32, n)
	v := 100.0
	for i := range s {
		v += r.NormFloat64()
		s[i] = float32(v)
	}
	return s
}

// TestRandomWalkTest checks the variance-ratio test on series whose nature
// is known: random walks pass it, with or without noise on top (most of
// them: the test rejects a true random walk at some scale now and then),
// while white noise, an AR(1) process, a season with noise and a smooth
// trend fail it.
func TestRandomWalkTest(t *testing.T) {
	passed, noisy := 0, 0
	for seed := range uint64(40) {
		s := randomWalkSeries(1024, seed)
		if randomWalk(s, RandomWalkZ) {
			passed++
		}
		// The same walk observed with noise the size of its step.
		r := rand.New(rand.NewPCG(seed, 9))
		for i := range s {
			s[i] += float32(r.NormFloat64())
		}
		if randomWalk(s, RandomWalkZ) {
			noisy++
		}
	}
	if passed < 28 || noisy < 28 {
		t.Errorf("%d of 40 random walks and %d of 40 noisy ones pass as random walks, want at least 28 of each", passed, noisy)
	}
	r := rand.New(rand.NewPCG(3, 3))
	noise := make([]float32, 1024)
	ar := make([]float32, 1024)
	seasonal := make([]float32, 1024)
	smooth := make([]float32, 1024)
	x := 0.0
	for i := range noise {
		noise[i] = float32(r.NormFloat64())
		x = 0.9*x + r.NormFloat64()
		ar[i] = float32(x)
		seasonal[i] = float32(5*math.Sin(2*math.Pi*float64(i)/24) + r.NormFloat64())
		smooth[i] = float32(0.01*float64(i)*float64(i)/1024 + math.Sin(float64(i)/50))
	}
	for name, s := range map[string][]float32{"white noise": noise, "AR(1) 0.9": ar, "season of 24": seasonal, "smooth trend": smooth} {
		if randomWalk(s, RandomWalkZ) {
			t.Errorf("%s passes as a random walk", name)
		}
	}
	if randomWalk(randomWalkSeries(200, 1), RandomWalkZ) {
		t.Error("a 200-step history is judged; under 256 changes it should not be")
	}
	// Missing values are skipped, not taken as changes.
	seed := uint64(0)
	for !randomWalk(randomWalkSeries(1024, seed), RandomWalkZ) {
		seed++
	}
	gappy := randomWalkSeries(1024, seed)
	for i := 100; i < 1024; i += 37 {
		gappy[i] = float32(math.NaN())
	}
	if !randomWalk(gappy, RandomWalkZ) {
		t.Error("a random walk with missing values fails the test")
	}
}

// TestGuardForecasts checks that a random-walk channel gets its last value
// while the other channels of the same input keep the network's forecast,
// with timestamps and known covariates passed through.
func TestGuardForecasts(t *testing.T) {
	m := testModel(t)
	ctx := context.Background()
	const n, h = 1024, 100
	var walk []float32
	for seed := uint64(0); ; seed++ {
		if walk = randomWalkSeries(n, seed); randomWalk(walk[n-m.Config().Context:], RandomWalkZ) {
			break
		}
	}
	season := sineSeries(n, 24, 0, 3, 1)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = t0.Add(time.Duration(i) * time.Hour)
	}
	in := Input{Series: [][]float32{walk, season}, Timestamps: ts, Known: [][]float32{sineSeries(n+h, 12, 0, 0, 1)}}
	got, choices, err := Guard{Predictor: m}.Forecast(ctx, []Input{in}, h)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.ForecastBatch(ctx, []Input{in}, h)
	if err != nil {
		t.Fatal(err)
	}
	if !choices[0][0].RandomWalk || choices[0][1].RandomWalk {
		t.Fatalf("choices %+v, want the walk (only) judged a random walk", choices[0])
	}
	for k := range h {
		if got[0][0][k] != walk[n-1] {
			t.Fatalf("random walk step %d: %g, want the last value %g", k, got[0][0][k], walk[n-1])
		}
		if got[0][1][k] != raw[0][1][k] {
			t.Fatalf("seasonal channel step %d: %g, want the network's %g", k, got[0][1][k], raw[0][1][k])
		}
	}
	// Quantiles run through the guard like any predictor.
	preds, err := Quantiles(ctx, Guard{Predictor: m}, []Input{in}, h, []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if preds[0].Mean[0][h-1] != walk[n-1] || !(preds[0].Quantiles[0][0][h-1] < walk[n-1] && walk[n-1] < preds[0].Quantiles[1][0][h-1]) {
		t.Errorf("random-walk quantiles %g..%g around %g", preds[0].Quantiles[0][0][h-1], preds[0].Quantiles[1][0][h-1], preds[0].Mean[0][h-1])
	}
}

// TestGuardSeasonalMix checks the seasonal mix: on a noiseless season the
// seasonal naive is exact, so it takes nearly all the weight and the
// forecast continues the season; without a season nothing changes.
func TestGuardSeasonalMix(t *testing.T) {
	m := testModel(t)
	ctx := context.Background()
	const n, h = 600, 80
	saw := make([]float32, n+h)
	for i := range saw {
		saw[i] = float32(i%12) + 5
	}
	in := Input{Series: [][]float32{saw[:n]}}
	got, choices, err := Guard{Predictor: m, Seasonal: true}.Forecast(ctx, []Input{in}, h)
	if err != nil {
		t.Fatal(err)
	}
	c := choices[0][0]
	if c.Season != 12 || c.SeasonalWeight < 0.99 || c.SeasonalWeight > 1 {
		t.Fatalf("choice %+v, want season 12 with a weight near 1", c)
	}
	for k := range h {
		if d := math.Abs(float64(got[0][0][k] - saw[n+k])); d > 0.1 {
			t.Fatalf("step %d: %g, want the season's %g", k, got[0][0][k], saw[n+k])
		}
	}

	r := rand.New(rand.NewPCG(5, 5))
	noise := make([]float32, n)
	for i := range noise {
		noise[i] = float32(r.NormFloat64())
	}
	flat := Input{Series: [][]float32{noise}}
	plain, err := m.ForecastBatch(ctx, []Input{flat}, h)
	if err != nil {
		t.Fatal(err)
	}
	got, choices, err = Guard{Predictor: m, Seasonal: true}.Forecast(ctx, []Input{flat}, h)
	if err != nil {
		t.Fatal(err)
	}
	if choices[0][0].Season != 0 || got[0][0][h-1] != plain[0][0][h-1] {
		t.Errorf("a series without a season: choice %+v, forecast %g, want the network's %g", choices[0][0], got[0][0][h-1], plain[0][0][h-1])
	}
}

// TestGuardSeasonShown checks that the seasonal mix goes only to channels
// whose own history shows the season: a monthly channel with a yearly cycle
// and a daily one with a weekly cycle get it, a monthly channel of smooth
// noise beside the first keeps the network's forecast.
func TestGuardSeasonShown(t *testing.T) {
	m := testModel(t)
	ctx := context.Background()
	const n, h = 240, 24
	r := rand.New(rand.NewPCG(8, 8))
	cycle := make([]float32, n)
	week := make([]float32, n)
	drift := make([]float32, n)
	x := 0.0
	for i := range cycle {
		cycle[i] = float32(10 + 0.02*float64(i) + 3*math.Sin(2*math.Pi*float64(i)/12) + 0.3*r.NormFloat64())
		week[i] = float32(10 + 3*math.Sin(2*math.Pi*float64(i)/7) + 0.3*r.NormFloat64())
		x = 0.9*x + r.NormFloat64()
		drift[i] = float32(x)
	}
	stamps := func(step func(i int) time.Time) []time.Time {
		ts := make([]time.Time, n)
		for i := range ts {
			ts[i] = step(i)
		}
		return ts
	}
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	monthly := Input{Series: [][]float32{cycle, drift}, Timestamps: stamps(func(i int) time.Time { return t0.AddDate(0, i, 0) })}
	daily := Input{Series: [][]float32{week}, Timestamps: stamps(func(i int) time.Time { return t0.AddDate(0, 0, i) })}
	raw, err := m.ForecastBatch(ctx, []Input{monthly, daily}, h)
	if err != nil {
		t.Fatal(err)
	}
	got, choices, err := Guard{Predictor: m, Seasonal: true}.Forecast(ctx, []Input{monthly, daily}, h)
	if err != nil {
		t.Fatal(err)
	}
	if c := choices[0][0]; c.Season != 12 || c.SeasonalWeight <= 0 {
		t.Errorf("monthly cycle: choice %+v, want season 12 with some weight", c)
	}
	if c := choices[1][0]; c.Season != 7 || c.SeasonalWeight <= 0 {
		t.Errorf("daily weekly cycle: choice %+v, want season 7 with some weight", c)
	}
	if c := choices[0][1]; c.Season != 0 || got[0][1][h-1] != raw[0][1][h-1] {
		t.Errorf("monthly noise: choice %+v, forecast %g, want the network's %g", c, got[0][1][h-1], raw[0][1][h-1])
	}
}

// TestInputSeasonAnyLength checks that a daily cycle in hourly values
// without timestamps is found whatever the history's length.
func TestInputSeasonAnyLength(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for n := 300; n < 1100; n += 37 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(5 + math.Sin(2*math.Pi*float64(i)/24) + 0.3*r.NormFloat64())
		}
		if got := inputSeason(Input{Series: [][]float32{x}}, 1024); got != 24 {
			t.Errorf("%d steps: season %d, want 24", n, got)
		}
	}
}

// countingPredictor counts the inputs it forecasts.
type countingPredictor struct {
	Predictor
	inputs *int
}

func (c countingPredictor) ForecastBatch(ctx context.Context, inputs []Input, horizon int) ([][][]float32, error) {
	*c.inputs += len(inputs)
	return c.Predictor.ForecastBatch(ctx, inputs, horizon)
}

// TestGuardedQuantilesReuseChoices checks that quantiles through the guard
// backtest with the guard's choices instead of guarding every backtest
// again: one forecast, the seasonal mix's backtests and the band's, no
// more; and that the band still holds the mean.
func TestGuardedQuantilesReuseChoices(t *testing.T) {
	m := testModel(t)
	const n, h = 1024, 96
	r := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(10 + 3*math.Sin(2*math.Pi*float64(i)/24) + 0.5*r.NormFloat64())
	}
	count := 0
	g := Guard{Predictor: countingPredictor{m, &count}, Seasonal: true}
	preds, err := Quantiles(context.Background(), g, []Input{{Series: [][]float32{x}}}, h, []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if count > 1+2*BacktestOrigins {
		t.Errorf("%d inputs forecast, want at most %d", count, 1+2*BacktestOrigins)
	}
	_, choices, err := Guard{Predictor: m, Seasonal: true}.Forecast(context.Background(), []Input{{Series: [][]float32{x}}}, h)
	if err != nil || choices[0][0].SeasonalWeight <= 0 {
		t.Fatalf("choice %+v (%v): the test needs a mixed channel", choices[0][0], err)
	}
	p := preds[0]
	for k := range h {
		if !(p.Quantiles[0][0][k] <= p.Quantiles[1][0][k]) || math.Abs(float64(p.Mean[0][k]-(p.Quantiles[0][0][k]+p.Quantiles[1][0][k])/2)) > float64(p.Quantiles[1][0][k]-p.Quantiles[0][0][k]) {
			t.Fatalf("step %d: mean %g outside the band %g..%g", k, p.Mean[0][k], p.Quantiles[0][0][k], p.Quantiles[1][0][k])
		}
	}
}

// TestGuardTrend checks the damped-trend mix: a clean ramp, which the
// network continues nearly flat, is continued; a noisy level without a
// trend keeps the network's forecast; without Trend nothing changes.
func TestGuardTrend(t *testing.T) {
	m := testModel(t)
	ctx := context.Background()
	const h = 10
	ramp := make([]float32, 40)
	for i := range ramp {
		ramp[i] = float32(10 + 2*i)
	}
	r := rand.New(rand.NewPCG(3, 3))
	level := make([]float32, 300)
	for i := range level {
		level[i] = float32(5 + r.NormFloat64())
	}
	inputs := []Input{{Series: [][]float32{ramp}}, {Series: [][]float32{level}}}
	raw, err := m.ForecastBatch(ctx, inputs, h)
	if err != nil {
		t.Fatal(err)
	}
	got, choices, err := Guard{Predictor: m, Trend: true}.Forecast(ctx, inputs, h)
	if err != nil {
		t.Fatal(err)
	}
	if c := choices[0][0]; c.TrendWeight < 0.9 || math.Abs(c.Slope-2) > 1e-6 {
		t.Errorf("ramp: choice %+v, want nearly all the weight on slope 2", c)
	}
	for k := range h {
		want := dampedTrend(float64(ramp[len(ramp)-1]), 2, k)
		if math.Abs(float64(got[0][0][k])-want) > 0.1*float64(k+1) {
			t.Errorf("ramp step %d: %g, want about %g", k, got[0][0][k], want)
		}
	}
	if c := choices[1][0]; c.TrendWeight != 0 || got[1][0][h-1] != raw[1][0][h-1] {
		t.Errorf("noisy level: choice %+v, forecast %g, want the network's %g", c, got[1][0][h-1], raw[1][0][h-1])
	}
	plain, _, err := Guard{Predictor: m}.Forecast(ctx, inputs, h)
	if err != nil {
		t.Fatal(err)
	}
	if plain[0][0][h-1] != raw[0][0][h-1] {
		t.Errorf("without Trend the ramp's forecast changed: %g, network %g", plain[0][0][h-1], raw[0][0][h-1])
	}
	if d := dampedTrend(100, 1, 0); math.Abs(d-100.98) > 1e-9 {
		t.Errorf("one damped step: %g, want 100.98", d)
	}
}

// TestGuardShortAndGappyInputs runs the default guard over very short
// histories, constant ones and ones with missing values, with and without
// quantiles: every forecast is finite, every band ordered, nothing panics.
func TestGuardShortAndGappyInputs(t *testing.T) {
	m := testModel(t)
	nan := float32(math.NaN())
	var inputs []Input
	for n := 1; n <= 40; n += 3 {
		x := make([]float32, n)
		flat := make([]float32, n)
		for i := range x {
			x[i] = float32(i % 5)
			flat[i] = 3
			if i%4 == 1 {
				x[i] = nan
			}
		}
		x[n-1] = 1
		inputs = append(inputs, Input{Series: [][]float32{x, flat}})
	}
	g := Guard{Predictor: m, Seasonal: true, Trend: true}
	out, _, err := g.Forecast(context.Background(), inputs, 30)
	if err != nil {
		t.Fatal(err)
	}
	preds, err := Quantiles(context.Background(), g, inputs, 30, []float64{0.1, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range preds {
		for c := range p.Quantiles[0] {
			for k := range p.Quantiles[0][c] {
				if lo, hi := p.Quantiles[0][c][k], p.Quantiles[1][c][k]; !(lo <= hi) {
					t.Fatalf("input %d channel %d step %d: band %v..%v", i, c, k, lo, hi)
				}
			}
		}
	}
	for i := range out {
		for c := range out[i] {
			for k, v := range out[i][c] {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("input %d (%d steps) channel %d step %d: %v", i, len(inputs[i].Series[0]), c, k, v)
				}
			}
		}
	}
}

// TestSeasonDiscount checks the backtests' weights in the mix: the latest
// origin counts fully, one a season earlier SeasonDiscount as much, and
// inputs without a season weigh every origin alike.
func TestSeasonDiscount(t *testing.T) {
	weekly := seasonPlan{season: 52, steps: 26}
	for j, want := range []float64{1, math.Sqrt(SeasonDiscount), SeasonDiscount, SeasonDiscount * math.Sqrt(SeasonDiscount)} {
		if got := weekly.discount(j); math.Abs(got-want) > 1e-12 {
			t.Errorf("origin %d of a weekly input: weight %g, want %g", j, got, want)
		}
	}
	plain := seasonPlan{steps: 64}
	for j := range BacktestOrigins {
		if got := plain.discount(j); got != 1 {
			t.Errorf("origin %d without a season: weight %g, want 1", j, got)
		}
	}
}

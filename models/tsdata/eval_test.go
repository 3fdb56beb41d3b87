package tsdata

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSplits(t *testing.T) {
	s := RatioSplit(7588)
	if s.Train != 5311 || s.Test != 1517 || s.Val != 760 || s.TestEnd() != 7588 {
		t.Errorf("exchange-rate split %+v", s)
	}
	s = RatioSplit(966)
	if s.Train != 676 || s.Test != 193 || s.TestStart() != 773 {
		t.Errorf("illness split %+v", s)
	}
	e, err := ETTSplit(17420, 1)
	if err != nil || e.Train != 8640 || e.Val != 2880 || e.Test != 2880 || e.TestEnd() != 14400 {
		t.Errorf("ETTh split %+v %v", e, err)
	}
	if _, err := ETTSplit(1000, 4); err == nil {
		t.Errorf("ETTm split of 1000 rows accepted")
	}
	// The validation view scores rows 5311..6070 of the exchange-rate
	// table with the same train rows.
	v := RatioSplit(7588).Validation()
	if v.Train != 5311 || v.Val != 0 || v.TestStart() != 5311 || v.TestEnd() != 6071 {
		t.Errorf("validation view %+v", v)
	}
}

// seasonalCSV is a pure daily cycle of hourly data in two columns.
func seasonalCSV(n int) string {
	var b strings.Builder
	b.WriteString("date,a,b\n")
	t0 := time.Date(2016, 7, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		a := 10 + 3*math.Sin(2*math.Pi*float64(i)/24)
		c := float64((i % 24) * (i % 24))
		fmt.Fprintf(&b, "%s,%g,%g\n", t0.Add(time.Duration(i)*time.Hour).Format("2006-01-02 15:04:05"), a, c)
	}
	return b.String()
}

// seasonalForecaster repeats the last 24 steps, like seasonal naive.
type seasonalForecaster struct{ calls, windows int }

func (s *seasonalForecaster) Forecast(ctx context.Context, ws []Window, h int) ([][][]float32, error) {
	s.calls++
	s.windows += len(ws)
	out := make([][][]float32, len(ws))
	for i, w := range ws {
		out[i] = make([][]float32, len(w.Series))
		for c, x := range w.Series {
			f := make([]float32, h)
			for k := range f {
				f[k] = x[len(x)-24+k%24]
			}
			out[i][c] = f
		}
	}
	return out, nil
}

func TestEvaluateKnownAnswers(t *testing.T) {
	f, err := ReadCSV(strings.NewReader(seasonalCSV(1000)))
	if err != nil {
		t.Fatal(err)
	}
	fc := &seasonalForecaster{}
	res, err := Evaluate(context.Background(), f, fc, EvalConfig{
		Horizons: []int{48, 24, 96}, Context: 200, Stride: 1, Split: RatioSplit(f.Len()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Season != 24 || !strings.Contains(res.SeasonFrom, "1h0m0s") {
		t.Errorf("season %d (%s), want 24 from the hourly step", res.Season, res.SeasonFrom)
	}
	test := RatioSplit(1000).Test
	for i, h := range []int{24, 48, 96} {
		r := res.Horizons[i]
		if r.Horizon != h || r.Windows != test-h+1 {
			t.Errorf("horizon %d: %d windows, want %d (stride 1 over the test split)", r.Horizon, r.Windows, test-h+1)
		}
		if r.SeasonalNaive.MSE > 1e-9 || r.Model.MSE > 1e-9 {
			t.Errorf("horizon %d: seasonal naive MSE %g, model MSE %g; both exact on a pure cycle", h, r.SeasonalNaive.MSE, r.Model.MSE)
		}
		if r.Naive.MSE < 0.1 {
			t.Errorf("horizon %d: naive MSE %g, want it clearly wrong on a cycle", h, r.Naive.MSE)
		}
	}
	if fc.windows != test-24+1 {
		t.Errorf("forecaster saw %d windows, want %d (one rollout per window for all horizons)", fc.windows, test-24+1)
	}
}

func TestEvaluateNaiveOnALine(t *testing.T) {
	// y = i: train-normalized slope s = 1/std(train); the naive error k+1
	// steps ahead is (k+1)·s, so MSE = s²·mean((k+1)²) over k < h.
	var b strings.Builder
	n := 500
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	f, err := ReadCSV(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	sp := RatioSplit(n)
	_, sd, _ := meanStd(f.Columns[0][:sp.Train])
	res, err := Evaluate(context.Background(), f, &seasonalForecaster{}, EvalConfig{Horizons: []int{10}, Context: 50, Split: sp, Season: 1, Stride: 7})
	if err != nil {
		t.Fatal(err)
	}
	var want, wantAbs float64
	for k := 1; k <= 10; k++ {
		want += float64(k*k) / (sd * sd)
		wantAbs += float64(k) / sd
	}
	want /= 10
	wantAbs /= 10
	r := res.Horizons[0]
	if math.Abs(r.Naive.MSE-want) > 1e-6*want || math.Abs(r.Naive.MAE-wantAbs) > 1e-6*wantAbs {
		t.Errorf("naive on a line: MSE %g MAE %g, want %g %g", r.Naive.MSE, r.Naive.MAE, want, wantAbs)
	}
	if r.SeasonalNaive != r.Naive {
		t.Errorf("season 1: seasonal naive %+v differs from naive %+v", r.SeasonalNaive, r.Naive)
	}
	if want := (sp.Test-10)/7 + 1; r.Windows != want {
		t.Errorf("stride 7: %d windows, want %d", r.Windows, want)
	}
}

func TestEvaluateErrors(t *testing.T) {
	f, _ := ReadCSV(strings.NewReader(seasonalCSV(300)))
	sp := RatioSplit(300)
	for _, c := range []EvalConfig{
		{Horizons: nil, Context: 10, Split: sp},
		{Horizons: []int{0}, Context: 10, Split: sp},
		{Horizons: []int{sp.Test + 1}, Context: 10, Split: sp},
		{Horizons: []int{5}, Context: 0, Split: sp},
		{Horizons: []int{5}, Context: 10, Split: Split{Train: 200, Val: 50, Test: 100}},
	} {
		if _, err := Evaluate(context.Background(), f, &seasonalForecaster{}, c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func TestSeasonDetection(t *testing.T) {
	day := 24 * time.Hour
	for step, want := range map[time.Duration]int{10 * time.Minute: 144, 15 * time.Minute: 96, time.Hour: 24, day: 7, 7 * day: 52, 30 * day: 12, 91 * day: 4, 3 * day: 0} {
		if got := SeasonFromStep(step); got != want {
			t.Errorf("step %s: season %d, want %d", step, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float64, 3000)
	for i := range x {
		x[i] = math.Sin(2*math.Pi*float64(i)/37) + 0.3*rng.NormFloat64() + 0.01*float64(i)
	}
	if s, _ := SeasonByACF([][]float64{x}, 500); s != 37 {
		t.Errorf("noisy cycle of 37 with a trend: season %d", s)
	}
	walk := make([]float64, 3000)
	for i := 1; i < len(walk); i++ {
		walk[i] = walk[i-1] + rng.NormFloat64()
	}
	if s, _ := SeasonByACF([][]float64{walk}, 500); s != 1 {
		t.Errorf("random walk: season %d, want none (1)", s)
	}
}

func TestSynthesize(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	calendars := 0
	for i := 0; i < 300; i++ {
		ch := 1 + i%5
		n := 50 + i*7
		s := Synthesize(rng, n, ch)
		if len(s.Series) != ch {
			t.Fatalf("%d channels, want %d", len(s.Series), ch)
		}
		for _, x := range s.Series {
			if len(x) != n {
				t.Fatalf("length %d, want %d", len(x), n)
			}
			for _, v := range x {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("non-finite value in a synthetic series")
				}
			}
		}
		if s.Times != nil {
			calendars++
			if len(s.Times) != n {
				t.Fatalf("%d times for %d steps", len(s.Times), n)
			}
			for j := 1; j < n; j++ {
				if !s.Times[j].After(s.Times[j-1]) {
					t.Fatalf("times not increasing")
				}
			}
		}
	}
	if calendars < 100 || calendars > 260 {
		t.Errorf("%d of 300 series have timestamps, want about 60%%", calendars)
	}
}

func TestSeasonScore(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	n := 600
	season := make([]float64, n)
	noise := make([]float64, n)
	for i := range season {
		noise[i] = r.NormFloat64()
		season[i] = 2*math.Sin(2*math.Pi*float64(i)/12) + noise[i] + 0.01*float64(i)
	}
	limit := 4 / math.Sqrt(float64(n))
	if s := SeasonScore(season, 12); s < 0.5 {
		t.Errorf("period-12 series: score %.3f at lag 12, want a clear peak", s)
	}
	if s := SeasonScore(season, 7); s >= limit {
		t.Errorf("period-12 series: score %.3f at lag 7, want under %.3f", s, limit)
	}
	if s := SeasonScore(noise, 12); math.Abs(s) >= limit {
		t.Errorf("white noise: score %.3f at lag 12, want within ±%.3f", s, limit)
	}
	if s := SeasonScore(season[:30], 12); s != 0 {
		t.Errorf("30 steps: score %.3f at lag 12, want 0 (too short)", s)
	}
}

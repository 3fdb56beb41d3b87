package gtt

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// testModel is a small model with random weights (forecast mechanics do not
// depend on training).
func testModel(t testing.TB) *Model {
	t.Helper()
	m, err := New(Config{Dim: 32, Layers: 2, Heads: 4, MLPDim: 64, PatchLen: 64, Context: 512}, 11)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sineSeries(n int, period, phase, level, amp float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(level + amp*math.Sin(2*math.Pi*float64(i)/period+phase))
	}
	return s
}

func TestForecastLengthsAndPrefix(t *testing.T) {
	m := testModel(t)
	series := [][]float32{sineSeries(300, 24, 0, 10, 2), sineSeries(300, 7, 1, -3, 0.5)}
	long, err := m.Forecast(series, 200)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []int{1, 63, 64, 65, 128, 200} {
		got, err := m.Forecast(series, h)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || len(got[0]) != h || len(got[1]) != h {
			t.Fatalf("horizon %d: got %d channels of %d steps", h, len(got), len(got[0]))
		}
		// Autoregressive rollout: a shorter horizon is a prefix of a longer one.
		for c := range got {
			for k := range got[c] {
				if got[c][k] != long[c][k] {
					t.Fatalf("horizon %d, channel %d, step %d: %g, but %g in the 200-step forecast", h, c, k, got[c][k], long[c][k])
				}
			}
		}
	}
}

func TestForecastIsEquivariantToScaleAndShift(t *testing.T) {
	m := testModel(t)
	x := sineSeries(200, 17, 0.3, 0, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x {
		x[i] += float32(rng.NormFloat64() * 0.2)
	}
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = 1000 + 50*v
	}
	fx, err := m.Forecast([][]float32{x}, 130)
	if err != nil {
		t.Fatal(err)
	}
	fy, err := m.Forecast([][]float32{y}, 130)
	if err != nil {
		t.Fatal(err)
	}
	for k := range fx[0] {
		want := 1000 + 50*float64(fx[0][k])
		if math.Abs(float64(fy[0][k])-want) > 1e-3*50 {
			t.Fatalf("step %d: forecast of 1000+50x is %g, want %g (RevIN round trip)", k, fy[0][k], want)
		}
	}
	// A flat series forecasts its level.
	flat := make([]float32, 100)
	for i := range flat {
		flat[i] = 42
	}
	ff, err := m.Forecast([][]float32{flat}, 70)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ff[0] {
		if math.Abs(float64(v)-42) > 1e-2 {
			t.Fatalf("flat series: step %d forecast %g, want 42", k, v)
		}
	}
}

func TestMaskedPaddingEqualsShorterHistory(t *testing.T) {
	m := testModel(t)
	x := sineSeries(100, 12, 0, 5, 1)
	padded := make([]float32, 64+len(x))
	for i := 0; i < 64; i++ {
		padded[i] = float32(math.NaN())
	}
	copy(padded[64:], x)
	a, err := m.Forecast([][]float32{x}, 64)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Forecast([][]float32{padded}, 64)
	if err != nil {
		t.Fatal(err)
	}
	for k := range a[0] {
		if a[0][k] != b[0][k] {
			t.Fatalf("step %d: %g with a missing leading patch, %g without", k, b[0][k], a[0][k])
		}
	}
}

func TestForecastBatchMatchesSingleForecasts(t *testing.T) {
	m := testModel(t)
	inputs := []Input{
		{Series: [][]float32{sineSeries(700, 24, 0, 1, 1)}},
		{Series: [][]float32{sineSeries(90, 10, 1, 0, 3), sineSeries(90, 5, 2, 0, 1), sineSeries(90, 30, 0, 2, 1)}},
		{Series: [][]float32{sineSeries(5, 3, 0, 1, 1)}},
	}
	for _, threads := range []int{1, 3} {
		batched, err := m.WithThreads(threads).ForecastBatch(context.Background(), inputs, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range inputs {
			single, err := m.Forecast(in.Series, 100)
			if err != nil {
				t.Fatal(err)
			}
			for c := range single {
				for k := range single[c] {
					if d := math.Abs(float64(single[c][k] - batched[i][c][k])); d > 1e-4*(1+math.Abs(float64(single[c][k]))) {
						t.Fatalf("threads %d, input %d channel %d step %d: batched %g, alone %g", threads, i, c, k, batched[i][c][k], single[c][k])
					}
				}
			}
		}
	}
}

func TestForecastRejectsBadInput(t *testing.T) {
	m := testModel(t)
	nan := float32(math.NaN())
	ok := sineSeries(50, 7, 0, 0, 1)
	cases := []struct {
		name    string
		in      Input
		horizon int
	}{
		{"no channels", Input{}, 10},
		{"empty channel", Input{Series: [][]float32{{}}}, 10},
		{"ragged", Input{Series: [][]float32{ok, ok[:40]}}, 10},
		{"all missing", Input{Series: [][]float32{ok[:2], {nan, nan}}}, 10},
		{"only missing", Input{Series: [][]float32{{nan, nan, nan}}}, 10},
		{"zero horizon", Input{Series: [][]float32{ok}}, 0},
		{"huge horizon", Input{Series: [][]float32{ok}}, MaxHorizon + 1},
		{"timestamps count", Input{Series: [][]float32{ok}, Timestamps: make([]time.Time, 3)}, 10},
	}
	for _, c := range cases {
		_, err := m.ForecastBatch(context.Background(), []Input{c.in}, c.horizon)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", c.name, err)
		}
	}
	if _, err := m.ForecastBatch(context.Background(), nil, 5); !errors.Is(err, ErrInvalid) {
		t.Errorf("no inputs: error %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.ForecastBatch(ctx, []Input{{Series: [][]float32{ok}}}, 5); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
}

func TestForecastWithTimestampsAddsCalendarChannels(t *testing.T) {
	m := testModel(t)
	n := 300
	ts := make([]time.Time, n)
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * time.Hour)
	}
	x := sineSeries(n, 24, 0, 10, 3)
	with, err := m.ForecastBatch(context.Background(), []Input{{Series: [][]float32{x}, Timestamps: ts}}, 80)
	if err != nil {
		t.Fatal(err)
	}
	without, err := m.Forecast([][]float32{x}, 80)
	if err != nil {
		t.Fatal(err)
	}
	if len(with[0]) != 1 || len(with[0][0]) != 80 {
		t.Fatalf("got %d channels, want the one value channel only", len(with[0]))
	}
	same := true
	for k := range without[0] {
		if with[0][0][k] != without[0][k] {
			same = false
		}
	}
	if same {
		t.Fatalf("timestamps did not change the forecast: the calendar channels were not read")
	}
}

func TestCalendarFeatures(t *testing.T) {
	mk := func(step time.Duration, monthly bool, n int) []time.Time {
		ts := make([]time.Time, n)
		t0 := time.Date(2021, 1, 31, 0, 0, 0, 0, time.UTC)
		for i := range ts {
			if monthly {
				ts[i] = time.Date(2021, time.Month(1+i), 1, 0, 0, 0, 0, time.UTC)
			} else {
				ts[i] = t0.Add(time.Duration(i) * step)
			}
		}
		return ts
	}
	cases := []struct {
		name     string
		ts       []time.Time
		channels int
	}{
		{"10 minutes: day and week", mk(10*time.Minute, false, 50), 4},
		{"hourly: day and week", mk(time.Hour, false, 50), 4},
		{"daily: week and year", mk(24*time.Hour, false, 50), 4},
		{"weekly: year", mk(7*24*time.Hour, false, 50), 2},
		{"monthly: year", mk(0, true, 50), 2},
	}
	for _, c := range cases {
		cal, err := NewCalendar(c.ts, 1024)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if cal.Channels() != c.channels {
			t.Errorf("%s: %d channels, want %d", c.name, cal.Channels(), c.channels)
		}
		feats := make([][]float32, cal.Channels())
		for i := range feats {
			feats[i] = make([]float32, len(c.ts))
		}
		cal.Fill(feats, c.ts)
		for _, f := range feats {
			for _, v := range f {
				if v < -1 || v > 1 {
					t.Fatalf("%s: feature value %g outside [-1, 1]", c.name, v)
				}
			}
		}
	}
	monthly, _ := NewCalendar(mk(0, true, 5), 1024)
	if got := monthly.After(time.Date(2021, 1, 31, 0, 0, 0, 0, time.UTC), 1); !monthly.Monthly || got.Month() != time.March {
		t.Errorf("monthly calendar: one step after Jan 31 is %s", got)
	}
	// Hourly data: the day features complete a cycle every 24 steps.
	hourly := mk(time.Hour, false, 49)
	cal, _ := NewCalendar(hourly, 1024)
	f := [][]float32{make([]float32, 49), make([]float32, 49), make([]float32, 49), make([]float32, 49)}
	cal.Fill(f, hourly)
	if math.Abs(float64(f[0][0]-f[0][24])) > 1e-6 || math.Abs(float64(f[0][0]-f[0][12])) < 1e-3 && math.Abs(float64(f[1][0]-f[1][12])) < 1e-3 {
		t.Errorf("time-of-day features are not 24-periodic: %v", f[0][:25])
	}
	if _, err := NewCalendar([]time.Time{hourly[1], hourly[0]}, 1024); err == nil {
		t.Errorf("decreasing timestamps accepted")
	}
}

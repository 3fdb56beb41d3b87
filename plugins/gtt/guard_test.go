package main

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/sdktest"
)

// randomWalk returns n steps of a Gaussian random walk from 100.
func randomWalk(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	s := make([]float32, n)
	v := 100.0
	for i := range s {
		v += r.NormFloat64()
		s[i] = float32(v)
	}
	return s
}

// TestForecastGuard sends the three guard values (and none) through the
// plugin over gRPC and checks each against the model forecasting in this
// process.
func TestForecastGuard(t *testing.T) {
	impl, err := newForecasters(1)
	if err != nil {
		t.Fatal(err)
	}
	fc := sdktest.ServeForecaster(t, impl)
	m, _, err := gtt.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const horizon = 96

	// A random walk: auto (and its synonyms) and walk answer the last
	// value, off the network's own forecast.
	walk := randomWalk(1024, 7)
	last := walk[len(walk)-1]
	for _, guard := range []string{"", sdk.GuardAuto, sdk.GuardSeasonal, sdk.GuardWalk} {
		out, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: BuiltinModel, Horizon: horizon, Guard: guard,
			Items: []sdk.ForecastItem{{Series: [][]float32{walk}}}})
		if err != nil {
			t.Fatalf("guard %q: %v", guard, err)
		}
		for k, v := range out.Items[0].Values[0] {
			if v != last {
				t.Fatalf("guard %q, random walk, step %d: %v, want the last value %v", guard, k, v, last)
			}
		}
	}
	off, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: BuiltinModel, Horizon: horizon, Guard: sdk.GuardOff,
		Items: []sdk.ForecastItem{{Series: [][]float32{walk}}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.ForecastBatch(ctx, []gtt.Input{{Series: [][]float32{walk}}}, horizon)
	if err != nil {
		t.Fatal(err)
	}
	naive := 0
	for k, v := range off.Items[0].Values[0] {
		if math.Abs(float64(v-raw[0][0][k])) > 1e-3 {
			t.Fatalf("guard off, step %d: %v, the model alone %v", k, v, raw[0][0][k])
		}
		if v == last {
			naive++
		}
	}
	if naive == horizon {
		t.Fatal("guard off answered the naive forecast")
	}

	// A noisy daily season in hourly data: auto mixes in the seasonal
	// naive, as gtt.Guard with Seasonal does; walk keeps the network's.
	r := rand.New(rand.NewPCG(3, 1))
	season := make([]float32, 1024)
	ts := make([]time.Time, len(season))
	for i := range season {
		season[i] = float32(10 + 3*math.Sin(2*math.Pi*float64(i)/24) + 0.5*r.NormFloat64())
		ts[i] = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
	}
	in := []gtt.Input{{Series: [][]float32{season}, Timestamps: ts}}
	forecast := func(guard string) []float32 {
		t.Helper()
		out, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: BuiltinModel, Horizon: horizon, Guard: guard,
			Items: []sdk.ForecastItem{{Series: in[0].Series, Timestamps: ts}}})
		if err != nil {
			t.Fatalf("guard %q: %v", guard, err)
		}
		return out.Items[0].Values[0]
	}
	walkOnly, auto := forecast(sdk.GuardWalk), forecast(sdk.GuardAuto)
	wantWalk, err := m.ForecastBatch(ctx, in, horizon)
	if err != nil {
		t.Fatal(err)
	}
	wantAuto, choices, err := gtt.Guard{Predictor: m, Seasonal: true, Trend: true}.Forecast(ctx, in, horizon)
	if err != nil {
		t.Fatal(err)
	}
	if w := choices[0][0].SeasonalWeight; !(w > 0) {
		t.Fatalf("the seasonal naive got weight %v; the test needs a series it is mixed into", w)
	}
	differ := false
	for k := range auto {
		if math.Abs(float64(walkOnly[k]-wantWalk[0][0][k])) > 1e-3 {
			t.Fatalf("guard walk, seasonal series, step %d: %v, the model alone %v", k, walkOnly[k], wantWalk[0][0][k])
		}
		if math.Abs(float64(auto[k]-wantAuto[0][0][k])) > 1e-3 {
			t.Fatalf("guard auto, step %d: %v, gtt.Guard %v", k, auto[k], wantAuto[0][0][k])
		}
		differ = differ || math.Abs(float64(auto[k]-walkOnly[k])) > 1e-3
	}
	if !differ {
		t.Error("guard auto answered the same forecast as walk")
	}

	// An unknown guard is invalid input.
	_, err = fc.Forecast(ctx, sdk.ForecastRequest{Model: BuiltinModel, Horizon: 4, Guard: "always",
		Items: []sdk.ForecastItem{{Series: [][]float32{walk}}}})
	if !errors.Is(err, sdk.ErrInvalid) {
		t.Errorf("unknown guard: %v, want an error wrapping ErrInvalid", err)
	}
}

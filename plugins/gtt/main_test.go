package main

import (
	"context"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
	"github.com/carryon/carryon/sdk/sdktest"
)

func sine(n int, period, phase float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(10 + 3*math.Sin(2*math.Pi*float64(i)/period+phase))
	}
	return s
}

// runForecaster runs f against the plugin served in-process and as a
// subprocess built from this package, as the core starts it.
func runForecaster(t *testing.T, f func(t *testing.T, fc sdk.Forecaster)) {
	t.Run("in-process", func(t *testing.T) {
		impl, err := newForecasters(1)
		if err != nil {
			t.Fatal(err)
		}
		f(t, sdktest.ServeForecaster(t, impl))
	})
	t.Run("subprocess", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the plugin")
		}
		f(t, sdktest.StartForecaster(t, sdktest.Build(t, ".")))
	})
}

func TestForecastThroughThePlugin(t *testing.T) {
	runForecaster(t, func(t *testing.T, fc sdk.Forecaster) {
		ctx := context.Background()
		info, err := fc.Info(ctx)
		if err != nil || len(info.Models) != 1 || info.Models[0] != BuiltinModel || info.Types[0] != "gtt" {
			t.Fatalf("Info %+v %v", info, err)
		}
		// Two items, quantiles, one with timestamps and a known covariate.
		ts := make([]time.Time, 300)
		for i := range ts {
			ts[i] = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		}
		known := sine(300+80, 24, 1)
		req := sdk.ForecastRequest{Model: BuiltinModel, Horizon: 80, Quantiles: []float64{0.1, 0.5, 0.9}, Items: []sdk.ForecastItem{
			{Series: [][]float32{sine(500, 24, 0), sine(500, 48, 0.5)}},
			{Series: [][]float32{sine(300, 24, 0)}, Timestamps: ts, Known: [][]float32{known}},
		}}
		out, err := fc.Forecast(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Items) != 2 || len(out.Items[0].Values) != 2 || len(out.Items[1].Values) != 1 {
			t.Fatalf("shape: %+v", out.Items)
		}
		// The same forecast as the model in this process, behind the
		// default guard.
		m, _, _ := gtt.Default()
		want, err := gtt.Guard{Predictor: m, Seasonal: true, Trend: true}.ForecastBatch(ctx, []gtt.Input{{Series: req.Items[0].Series}}, 80)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want[0][1] {
			if math.Abs(float64(v-out.Items[0].Values[1][k])) > 1e-3 {
				t.Fatalf("step %d: plugin %v, model %v", k, out.Items[0].Values[1][k], v)
			}
		}
		// A sine is forecast closely, inside an ordered band.
		q := out.Items[0].Quantiles
		truth := sine(580, 24, 0)[500:]
		for k := range truth {
			if math.Abs(float64(out.Items[0].Values[0][k]-truth[k])) > 1 {
				t.Fatalf("step %d: forecast %v, truth %v", k, out.Items[0].Values[0][k], truth[k])
			}
			if !(q[0][0][k] <= q[1][0][k] && q[1][0][k] <= q[2][0][k]) {
				t.Fatalf("step %d: quantiles cross", k)
			}
		}

		// Unknown model, bad input.
		if _, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: "nope", Series: [][]float32{{1, 2}}, Horizon: 3}); !errors.Is(err, sdk.ErrUnknownHead) {
			t.Errorf("unknown model: %v", err)
		}
		nan := float32(math.NaN())
		if _, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: BuiltinModel, Series: [][]float32{{nan, nan}}, Horizon: 3}); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("all missing: %v", err)
		}
		if err := fc.Unload(ctx, BuiltinModel); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("unload built-in: %v", err)
		}
	})
}

func TestLoadTunedModel(t *testing.T) {
	base, _, err := gtt.Default()
	if err != nil {
		t.Fatal(err)
	}
	series := []gtt.Input{{Series: [][]float32{sine(400, 24, 0)}}}
	tu, err := gtt.FineTune(context.Background(), base, BuiltinModel, series, gtt.TuneConfig{Steps: 3, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tu.Save(dir); err != nil {
		t.Fatal(err)
	}
	runForecaster(t, func(t *testing.T, fc sdk.Forecaster) {
		ctx := context.Background()
		info, err := fc.Load(ctx, "alice", dir)
		if err != nil || info.Channels != 1 || info.Type != "gtt" || len(info.Version) < 10 {
			t.Fatalf("Load %+v %v", info, err)
		}
		// The tuned network itself, without the guard's seasonal mix.
		out, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: "alice", Series: [][]float32{sine(300, 24, 0)}, Horizon: 10, Guard: sdk.GuardOff})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tu.ForecastBatch(ctx, []gtt.Input{{Series: [][]float32{sine(300, 24, 0)}}}, 10)
		for k := range want[0][0] {
			if math.Abs(float64(want[0][0][k]-out.Values[0][k])) > 1e-3 {
				t.Fatalf("tuned forecast step %d: %v, want %v", k, out.Values[0][k], want[0][0][k])
			}
		}
		if _, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: "alice", Series: [][]float32{{1, 2}, {3, 4}}, Horizon: 10}); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("wrong channel count: %v", err)
		}
		if _, err := fc.Load(ctx, "bob", t.TempDir()); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("empty dir: %v", err)
		}
		if err := fc.Unload(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := fc.Forecast(ctx, sdk.ForecastRequest{Model: "alice", Series: [][]float32{{1, 2}}, Horizon: 1}); !errors.Is(err, sdk.ErrUnknownHead) {
			t.Errorf("after unload: %v", err)
		}
	})
}

// TestCrashIsReported: a killed plugin fails calls at once.
func TestCrashIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	fc := sdktest.StartForecaster(t, sdktest.Build(t, "."))
	p := fc.Plugin()
	if err := killPid(p.Pid()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin did not exit")
	}
	if _, err := fc.Forecast(context.Background(), sdk.ForecastRequest{Model: BuiltinModel, Series: [][]float32{{1, 2}}, Horizon: 1}); !errors.Is(err, host.ErrExited) {
		t.Errorf("after a crash: %v", err)
	}
}

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

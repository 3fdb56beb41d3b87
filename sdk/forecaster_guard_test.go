package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/sdktest"
)

// guardForecaster answers, at every step of every channel, the index of the
// request's guard in guardCodes, and refuses a guard it does not know.
type guardForecaster struct{ meanForecaster }

var guardCodes = []string{"", sdk.GuardAuto, sdk.GuardSeasonal, sdk.GuardWalk, sdk.GuardOff}

func (guardForecaster) Forecast(_ context.Context, req sdk.ForecastRequest) (sdk.Forecast, error) {
	code := -1
	for i, g := range guardCodes {
		if g == req.Guard {
			code = i
		}
	}
	if code < 0 {
		return sdk.Forecast{}, fmt.Errorf("forecast with %s: %w: guard %q", req.Model, sdk.ErrInvalid, req.Guard)
	}
	var out sdk.Forecast
	for _, it := range req.AllItems() {
		var f sdk.ItemForecast
		for range it.Series {
			v := make([]float32, req.Horizon)
			for i := range v {
				v[i] = float32(code)
			}
			f.Values = append(f.Values, v)
		}
		out.Items = append(out.Items, f)
	}
	return out, nil
}

func TestForecastGuardOverGRPC(t *testing.T) {
	f := sdktest.ServeForecaster(t, guardForecaster{})
	ctx := context.Background()
	for code, guard := range guardCodes {
		want := fmt.Sprint([][]float32{{float32(code), float32(code)}})
		fc, err := f.Forecast(ctx, sdk.ForecastRequest{Model: "m", Horizon: 2, Guard: guard,
			Items: []sdk.ForecastItem{{Series: [][]float32{{1, 2, 3}}}}})
		if err != nil {
			t.Fatalf("guard %q, items: %v", guard, err)
		}
		if got := fmt.Sprint(fc.Items[0].Values); got != want {
			t.Errorf("guard %q, items: the plugin saw %s, want %s", guard, got, want)
		}
		fc, err = f.Forecast(ctx, sdk.ForecastRequest{Model: "m", Horizon: 2, Guard: guard, Series: [][]float32{{1, 2, 3}}})
		if err != nil {
			t.Fatalf("guard %q, series: %v", guard, err)
		}
		if got := fmt.Sprint(fc.Values); got != want {
			t.Errorf("guard %q, series: the plugin saw %s, want %s", guard, got, want)
		}
	}
	_, err := f.Forecast(ctx, sdk.ForecastRequest{Model: "m", Horizon: 2, Guard: "bogus", Series: [][]float32{{1, 2, 3}}})
	if !errors.Is(err, sdk.ErrInvalid) {
		t.Errorf("unknown guard: %v, want an error wrapping ErrInvalid", err)
	}
}

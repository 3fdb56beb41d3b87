package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/sdktest"
)

// lastForecaster repeats each channel's last value (plus the sum of the
// item's known covariates at the first future step), and puts quantile l
// at that value plus l's level.
type lastForecaster struct{ meanForecaster }

func (lastForecaster) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "last", Types: []string{"last"}, Models: []string{"builtin"}}, nil
}

func (lastForecaster) Forecast(_ context.Context, req sdk.ForecastRequest) (sdk.Forecast, error) {
	var out sdk.Forecast
	for _, it := range req.AllItems() {
		steps := len(it.Series[0])
		var extra float32
		for _, k := range it.Known {
			extra += k[steps]
		}
		if it.Timestamps != nil {
			extra += float32(it.Timestamps[steps-1].Unix())
		}
		var f sdk.ItemForecast
		for _, s := range it.Series {
			v := make([]float32, req.Horizon)
			for i := range v {
				v[i] = s[steps-1] + extra
			}
			f.Values = append(f.Values, v)
		}
		for _, q := range req.Quantiles {
			var lv [][]float32
			for _, v := range f.Values {
				w := make([]float32, len(v))
				for i := range w {
					w[i] = v[i] + float32(q)
				}
				lv = append(lv, w)
			}
			f.Quantiles = append(f.Quantiles, lv)
		}
		out.Items = append(out.Items, f)
	}
	return out, nil
}

func TestForecasterItemsOverGRPC(t *testing.T) {
	f := sdktest.ServeForecaster(t, lastForecaster{})
	ctx := context.Background()
	info, err := f.Info(ctx)
	if err != nil || fmt.Sprint(info.Models) != "[builtin]" {
		t.Fatalf("Info %+v %v", info, err)
	}
	req := sdk.ForecastRequest{Model: "m", Horizon: 2, Quantiles: []float64{0.25, 0.75}, Items: []sdk.ForecastItem{
		{Series: [][]float32{{1, 2}, {3, 4}}},
		{Series: [][]float32{{5, 6, 7}}, Known: [][]float32{{0, 0, 0, 10, 20}},
			Timestamps: []time.Time{time.Unix(0, 0), time.Unix(1, 0), time.Unix(2, 0)}},
	}}
	fc, err := f.Forecast(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(fc.Items[0].Values, fc.Items[1].Values); got != "[[2 2] [4 4]] [[19 19]]" {
		t.Errorf("values %s", got)
	}
	if got := fmt.Sprint(fc.Items[1].Quantiles); got != "[[[19.25 19.25]] [[19.75 19.75]]]" {
		t.Errorf("quantiles %s", got)
	}
	// Single-series requests still answer in Values.
	fc, err = f.Forecast(ctx, sdk.ForecastRequest{Model: "m", Series: [][]float32{{1, 3}}, Horizon: 1})
	if err != nil || fmt.Sprint(fc.Values) != "[[3]]" {
		t.Errorf("series request: %v %v", fc.Values, err)
	}
	bad := []sdk.ForecastRequest{
		{Model: "m", Horizon: 2, Quantiles: []float64{0.5, 0.4}, Items: req.Items},
		{Model: "m", Horizon: 2, Quantiles: []float64{1}, Items: req.Items},
		{Model: "m", Horizon: 2, Items: []sdk.ForecastItem{{Series: [][]float32{{1}}, Known: [][]float32{{1, 2}}}}},
		{Model: "m", Horizon: 2, Items: []sdk.ForecastItem{{Series: [][]float32{{1, 2}, {1}}}}},
		{Model: "m", Horizon: 2, Items: []sdk.ForecastItem{{}}},
	}
	for i, r := range bad {
		if _, err := f.Forecast(ctx, r); !errors.Is(err, sdk.ErrInvalid) {
			t.Errorf("bad request %d: %v", i, err)
		}
	}
}

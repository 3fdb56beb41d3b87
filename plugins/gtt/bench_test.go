package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/sdktest"
)

// BenchmarkForecast forecasts 96 steps of n univariate series of 1024 steps
// in one call through the plugin protocol (gRPC on a local socket, the
// plugin in this process, one thread), without and with the 0.1/0.5/0.9
// quantiles. It reports series/s.
func BenchmarkForecast(b *testing.B) {
	impl, err := newForecasters(1)
	if err != nil {
		b.Fatal(err)
	}
	fc := sdktest.ServeForecaster(b, impl)
	for _, quantiles := range [][]float64{nil, {0.1, 0.5, 0.9}} {
		for _, n := range []int{1, 32, 512} {
			items := make([]sdk.ForecastItem, n)
			for i := range items {
				items[i].Series = [][]float32{sine(1024, float64(12+i%40), float64(i))}
			}
			req := sdk.ForecastRequest{Model: BuiltinModel, Horizon: 96, Items: items, Quantiles: quantiles}
			b.Run(fmt.Sprintf("series=%d/quantiles=%d", n, len(quantiles)), func(b *testing.B) {
				for b.Loop() {
					if _, err := fc.Forecast(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "series/s")
			})
		}
	}
}

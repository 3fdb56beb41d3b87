package gtt

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkForecast measures the latency of one forecast call and the
// series forecast per second for 1, 32 and 512 univariate series of 1024
// steps, batched into one call, at a horizon of 96 (two passes), with the
// embedded model's shape on one thread.
func BenchmarkForecast(b *testing.B) {
	m, err := New(SmallCPUConfig, 1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 32, 512} {
		inputs := make([]Input, n)
		for i := range inputs {
			x := sineSeries(1024, 10+40*rng.Float64(), rng.Float64()*6, 0, 1)
			for k := range x {
				x[k] += float32(rng.NormFloat64() * 0.1)
			}
			inputs[i] = Input{Series: [][]float32{x}}
		}
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.ForecastBatch(context.Background(), inputs, 96); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "series/s")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/forecast")
		})
	}
}

// BenchmarkGuard measures what the guard adds to a forecast of 32 series
// of 1024 steps (horizon 96): half random walks, half noisy seasons with
// timestamps, through the network alone, the random-walk guard (walk) and
// the default guard with its seasonal mix (auto).
func BenchmarkGuard(b *testing.B) {
	m, err := New(SmallCPUConfig, 1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := make([]time.Time, 1024)
	for i := range ts {
		ts[i] = t0.Add(time.Duration(i) * time.Hour)
	}
	inputs := make([]Input, 32)
	for i := range inputs {
		if i%2 == 0 {
			inputs[i] = Input{Series: [][]float32{randomWalkSeries(1024, uint64(i))}}
			continue
		}
		x := sineSeries(1024, 24, rng.Float64()*6, 0, 1)
		for k := range x {
			x[k] += float32(rng.NormFloat64() * 0.2)
		}
		inputs[i] = Input{Series: [][]float32{x}, Timestamps: ts}
	}
	for _, c := range []struct {
		name string
		p    Predictor
	}{{"network", m}, {"walk", Guard{Predictor: m}}, {"auto", Guard{Predictor: m, Seasonal: true, Trend: true}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.p.ForecastBatch(context.Background(), inputs, 96); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/forecast")
		})
	}
}

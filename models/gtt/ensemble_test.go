package gtt

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// TestContextEnsembleAveragesHistoryLengths checks that the ensemble is
// the mean of forecasts from the last n steps for each length, that a
// length beyond the history reads all of it, and that timestamps and known
// covariates are cut with the series.
func TestContextEnsembleAveragesHistoryLengths(t *testing.T) {
	m := testModel(t)
	ctx := context.Background()
	const n, h = 400, 100
	a := sineSeries(n, 24, 0, 3, 1)
	b := sineSeries(n, 50, 1, -2, 0.5)
	known := sineSeries(n+h, 12, 0, 0, 1)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = t0.Add(time.Duration(i) * time.Hour)
	}
	in := Input{Series: [][]float32{a, b}, Timestamps: ts, Known: [][]float32{known}}

	got, err := ContextEnsemble{Predictor: m, Lengths: []int{1000, 128}}.ForecastBatch(ctx, []Input{in}, h)
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.ForecastBatch(ctx, []Input{in}, h)
	if err != nil {
		t.Fatal(err)
	}
	short := Input{Series: [][]float32{a[n-128:], b[n-128:]}, Timestamps: ts[n-128:], Known: [][]float32{known[n-128:]}}
	part, err := m.ForecastBatch(ctx, []Input{short}, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("shape %d inputs, want 1 with 2 channels", len(got))
	}
	for c := range got[0] {
		for k := 0; k < h; k++ {
			want := (full[0][c][k] + part[0][c][k]) / 2
			if math.Abs(float64(got[0][c][k]-want)) > 1e-5*(1+math.Abs(float64(want))) {
				t.Fatalf("channel %d step %d: %g, want the mean %g", c, k, got[0][c][k], want)
			}
		}
	}
	if full[0][0][5] == part[0][0][5] {
		t.Error("forecasts from 400 and 128 steps agree exactly; the test would not see a wrong cut")
	}

	// No lengths: the predictor's own forecast.
	plain, err := ContextEnsemble{Predictor: m}.ForecastBatch(ctx, []Input{in}, h)
	if err != nil {
		t.Fatal(err)
	}
	if plain[0][1][h-1] != full[0][1][h-1] {
		t.Error("an ensemble without lengths differs from the plain forecast")
	}
}

func TestContextEnsembleRejectsBadInput(t *testing.T) {
	m := testModel(t)
	ctx := context.Background()
	good := Input{Series: [][]float32{sineSeries(200, 24, 0, 0, 1)}}
	if _, err := (ContextEnsemble{Predictor: m, Lengths: []int{512, 0}}).ForecastBatch(ctx, []Input{good}, 10); !errors.Is(err, ErrInvalid) {
		t.Errorf("length 0: %v, want ErrInvalid", err)
	}
	ragged := Input{Series: [][]float32{make([]float32, 200), make([]float32, 150)}}
	if _, err := (ContextEnsemble{Predictor: m, Lengths: []int{100}}).ForecastBatch(ctx, []Input{ragged}, 10); !errors.Is(err, ErrInvalid) {
		t.Errorf("ragged channels: %v, want ErrInvalid", err)
	}
}

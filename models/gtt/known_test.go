package gtt

import (
	"context"
	"errors"
	"math"
	"testing"
)

// TestKnownCovariates: a covariate known into the future changes the
// rollout passes after the first (the first pass reads only history), is
// not forecast, and must cover the horizon.
func TestKnownCovariates(t *testing.T) {
	m, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	n, horizon := 400, 128
	y := noisySeasonal(n, 3)
	// Two covariates with the same history: one goes on as a sine, the
	// other jumps to 5 from the 33rd future step.
	smooth := make([]float32, n+horizon)
	jump := make([]float32, n+horizon)
	for i := range smooth {
		smooth[i] = float32(math.Sin(float64(i) / 7))
		jump[i] = smooth[i]
		if i >= n+32 {
			jump[i] = 5
		}
	}
	ctx := context.Background()
	a, err := m.ForecastBatch(ctx, []Input{{Series: [][]float32{y}, Known: [][]float32{smooth}}}, horizon)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.ForecastBatch(ctx, []Input{{Series: [][]float32{y}, Known: [][]float32{jump}}}, horizon)
	if err != nil {
		t.Fatal(err)
	}
	if len(a[0]) != 1 || len(a[0][0]) != horizon {
		t.Fatalf("forecast shape %d×%d", len(a[0]), len(a[0][0]))
	}
	for k := 0; k < 64; k++ {
		if a[0][0][k] != b[0][0][k] {
			t.Fatalf("step %d of the first pass differs: %v %v", k, a[0][0][k], b[0][0][k])
		}
	}
	same := true
	for k := 64; k < horizon; k++ {
		same = same && a[0][0][k] == b[0][0][k]
	}
	if same {
		t.Error("the known future did not change the second pass")
	}
	if _, err := m.ForecastBatch(ctx, []Input{{Series: [][]float32{y}, Known: [][]float32{jump[:n]}}}, horizon); !errors.Is(err, ErrInvalid) {
		t.Errorf("short covariate: %v", err)
	}
}

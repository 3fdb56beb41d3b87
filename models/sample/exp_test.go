package sample

import (
	"math"
	"testing"
)

func TestExpMatchesMathExp(t *testing.T) {
	worst := 0.0
	for x := float32(-86.9); x <= 0; x += 0.000917 {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 3e-7 {
		t.Errorf("worst relative error of expf on [-86.9, 0] = %g, want <= 3e-7", worst)
	}
	for _, x := range []float32{0, -1, -0.5, float32(-math.Ln2), -10} {
		want := math.Exp(float64(x))
		if got := float64(expf(x)); math.Abs(got-want) > 3e-7*want {
			t.Errorf("expf(%v) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float32{-87.5, -1000, float32(math.Inf(-1)), float32(math.NaN())} {
		if got := expf(x); got != 0 {
			t.Errorf("expf(%v) = %v, want 0", x, got)
		}
	}
}

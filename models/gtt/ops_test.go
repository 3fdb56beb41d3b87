package gtt

import (
	"math"
	"testing"
)

func TestExpAndTanhAccuracy(t *testing.T) {
	for x := -20.0; x <= 20; x += 0.01 {
		got := float64(exp32(float32(x)))
		want := math.Exp(float64(float32(x)))
		if math.Abs(got-want) > 5e-7*want { // float32 rounding of x·log2 e
			t.Fatalf("exp32(%g) = %g, want %g", x, got, want)
		}
		if d := math.Abs(float64(tanh32(float32(x))) - math.Tanh(x)); d > 1e-6 {
			t.Fatalf("tanh32(%g) off by %g", x, d)
		}
	}
}

func TestGeluMatchesReference(t *testing.T) {
	n := 1000
	u := make([]float32, n)
	dg := make([]float32, n)
	for i := range u {
		u[i] = float32(i-n/2) / 40
		dg[i] = float32(i%7) - 3
	}
	g, th, du := make([]float32, n), make([]float32, n), make([]float32, n)
	gelu(g, th, u)
	geluBackward(du, dg, u, th)
	for i, x := range u {
		xf := float64(x)
		tr := math.Tanh(geluC * (xf + geluA*xf*xf*xf))
		want := 0.5 * xf * (1 + tr)
		if math.Abs(float64(g[i])-want) > 2e-6*(1+math.Abs(xf)) {
			t.Fatalf("gelu(%g) = %g, want %g", x, g[i], want)
		}
		d := 0.5*(1+tr) + 0.5*xf*(1-tr*tr)*geluC*(1+3*geluA*xf*xf)
		if math.Abs(float64(du[i])-float64(dg[i])*d) > 1e-5*(1+math.Abs(float64(dg[i])*d))+2e-5*math.Abs(float64(dg[i])*xf) {
			t.Fatalf("gelu'(%g)·%g = %g, want %g", x, dg[i], du[i], float64(dg[i])*d)
		}
	}
}

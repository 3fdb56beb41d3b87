package optim

import (
	"math"
	"testing"
)

// TestAdamWMinimizesQuadratic checks that AdamW drives a quadratic to its
// minimum and that weight decay pulls a decayed tensor toward zero.
func TestAdamWMinimizesQuadratic(t *testing.T) {
	x := []float32{3, -2, 5}
	g := make([]float32, 3)
	target := []float32{1, 1, 1}
	a := NewAdamW([]int{3}, 0)
	for range 2000 {
		for i := range x {
			g[i] = 2 * (x[i] - target[i])
		}
		if err := a.Step([]Tensor{{Value: x, Grad: g}}, 0.01); err != nil {
			t.Fatal(err)
		}
	}
	for i := range x {
		if math.Abs(float64(x[i]-target[i])) > 1e-2 {
			t.Fatalf("x = %v, want %v", x, target)
		}
	}
	// Pure decay: zero gradients shrink a decayed tensor by 1-lr·wd a step.
	y := []float32{1}
	d := NewAdamW([]int{1}, 0.5)
	if err := d.Step([]Tensor{{Value: y, Grad: []float32{0}, Decay: true}}, 0.1); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(y[0])-0.95) > 1e-6 {
		t.Fatalf("decayed value %v, want 0.95", y[0])
	}
}

func TestAdamWStateRoundTrip(t *testing.T) {
	run := func(split bool) []float32 {
		x := []float32{1, 2}
		a := NewAdamW([]int{2}, 0.1)
		for s := range 10 {
			if split && s == 5 {
				st := a.State()
				a = NewAdamW([]int{2}, 0.1)
				if err := a.SetState(st); err != nil {
					t.Fatal(err)
				}
			}
			g := []float32{x[0] - 3, x[1] + float32(s)}
			if err := a.Step([]Tensor{{Value: x, Grad: g, Decay: true}}, 0.05); err != nil {
				t.Fatal(err)
			}
		}
		return x
	}
	a, b := run(false), run(true)
	if a[0] != b[0] || a[1] != b[1] {
		t.Fatalf("restored run %v differs from uninterrupted %v", b, a)
	}
	if err := NewAdamW([]int{2}, 0).SetState(AdamWState{M: [][]float32{{1}}, V: [][]float32{{1}}}); err == nil {
		t.Fatal("SetState accepted a state of the wrong size")
	}
	if err := NewAdamW([]int{2}, 0).Step([]Tensor{{Value: []float32{1}, Grad: []float32{1}}}, 1); err == nil {
		t.Fatal("Step accepted a tensor of the wrong size")
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{Peak: 1, Min: 0.1, Warmup: 10, Total: 110}
	if got := s.At(0); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("At(0) = %v, want 0.1", got)
	}
	if got := s.At(9); got != 1 {
		t.Errorf("At(9) = %v, want 1", got)
	}
	if got := s.At(60); math.Abs(got-0.55) > 1e-12 {
		t.Errorf("At(60) = %v, want 0.55 (half way down the cosine)", got)
	}
	if got := s.At(500); got != 0.1 {
		t.Errorf("At(500) = %v, want 0.1", got)
	}
	for i := 10; i < 110; i++ {
		if s.At(i+1) > s.At(i) {
			t.Fatalf("schedule rises after warmup at %d", i)
		}
	}
}

func TestClipGlobalNorm(t *testing.T) {
	ts := []Tensor{{Grad: []float32{3}}, {Grad: []float32{4}}}
	if n := ClipGlobalNorm(ts, 10); n != 5 || ts[0].Grad[0] != 3 {
		t.Fatalf("norm %v, grads %v %v: want 5 and unchanged", n, ts[0].Grad, ts[1].Grad)
	}
	if n := ClipGlobalNorm(ts, 1); n != 5 {
		t.Fatalf("norm %v, want 5", n)
	}
	if math.Abs(float64(ts[0].Grad[0])-0.6) > 1e-6 || math.Abs(float64(ts[1].Grad[0])-0.8) > 1e-6 {
		t.Fatalf("clipped grads %v %v, want 0.6 0.8", ts[0].Grad, ts[1].Grad)
	}
}

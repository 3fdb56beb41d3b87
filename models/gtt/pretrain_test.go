package gtt

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRollInContinuesTheModelsForecast checks that the rollout steps of a
// training sample are exactly what a forecast from the steps before them
// predicts, pass by pass, and that input-only channels keep their values.
func TestRollInContinuesTheModelsForecast(t *testing.T) {
	cfg := Config{Dim: 16, Layers: 2, Heads: 2, MLPDim: 32, PatchLen: 8, Context: 64}
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	series := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(math.Sin(float64(i)/3) + 0.3*rng.NormFloat64() + 5)
		}
		return x
	}
	target := func() []float32 { return make([]float32, cfg.PatchLen) }
	// Two predicted channels with three patches of rollout; two channels
	// with one predicted and one input-only, one patch; one without.
	a := Sample{Series: [][]float32{series(90), series(90)}, Target: [][]float32{target(), target()}, Rollout: 24}
	b := Sample{Series: [][]float32{series(40), series(40)}, Target: [][]float32{target()}, Rollout: 8}
	c := Sample{Series: [][]float32{series(50)}, Target: [][]float32{target()}}
	keepB1 := append([]float32(nil), b.Series[1]...)
	keepC := append([]float32(nil), c.Series[0]...)

	wantA, err := m.Forecast([][]float32{a.Series[0][:66], a.Series[1][:66]}, 24)
	if err != nil {
		t.Fatal(err)
	}
	wantB, err := m.Forecast([][]float32{b.Series[0][:32], b.Series[1][:32]}, 8)
	if err != nil {
		t.Fatal(err)
	}
	m.rollIn([]Sample{a, b, c}, &rollInScratch{b: newBatch(cfg)})

	near := func(name string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s step %d: %g, want %g", name, i, got[i], want[i])
			}
		}
	}
	near("a channel 0", a.Series[0][66:], wantA[0])
	near("a channel 1", a.Series[1][66:], wantA[1])
	near("b channel 0", b.Series[0][32:], wantB[0])
	near("b input-only channel", b.Series[1], keepB1)
	near("c without rollout", c.Series[0], keepC)
}

// TestCorpusRolloutShare checks that the corpus marks about its Rollout
// share of samples, with whole patches and real history before them.
func TestCorpusRolloutShare(t *testing.T) {
	c := NewCorpus(SmallCPUConfig, 1)
	c.Rollout, c.RolloutPatches = 0.5, 2 // NewCorpus leaves Rollout at 0
	rng := rand.New(rand.NewPCG(4, 4))
	marked := 0
	const n = 400
	for i := 0; i < n; i++ {
		s := c.Sample(rng)
		if s.Rollout == 0 {
			continue
		}
		marked++
		if s.Rollout%64 != 0 || s.Rollout > 128 || len(s.Series[0])-s.Rollout < 64 {
			t.Fatalf("sample %d: rollout %d over a window of %d", i, s.Rollout, len(s.Series[0]))
		}
	}
	if marked < n/3 || marked > 2*n/3 {
		t.Errorf("%d of %d samples have a rollout, want about half", marked, n)
	}
	c.Rollout = 0
	for i := 0; i < 50; i++ {
		if s := c.Sample(rng); s.Rollout != 0 {
			t.Fatalf("rollout %d with a zero share", s.Rollout)
		}
	}
}

func TestBudgetSteps(t *testing.T) {
	pc := PretrainConfig{Start: 100, Budget: 100 * time.Second}
	cases := []struct {
		step    int
		elapsed time.Duration
		want    int
	}{
		{110, 10 * time.Second, 5000},        // under 20 steps: the guess
		{150, time.Second, 5000},             // under 2% of the budget: the guess
		{150, 10 * time.Second, 600},         // 5 steps/s for 90 s more
		{400, 99900 * time.Millisecond, 401}, // nearly out: at least one more step
		{400, 100 * time.Second, 400},        // out: stop here
		{400, 120 * time.Second, 400},
	}
	for _, c := range cases {
		if got := budgetSteps(pc, c.step, c.elapsed, 5000); got != c.want {
			t.Errorf("step %d after %s: last step %d, want %d", c.step, c.elapsed, got, c.want)
		}
	}
}

// TestPretrainDataParallel runs a few steps of Pretrain on synthetic series
// with one and with three threads (drawing and training in parallel; run it
// with -race), and checks that both stop at the schedule's end with finite
// losses, at least the asked tokens a step and a scored validation set.
func TestPretrainDataParallel(t *testing.T) {
	cfg := Config{Dim: 16, Layers: 1, Heads: 2, MLPDim: 32, PatchLen: 16, Context: 64}
	for _, threads := range []int{1, 3} {
		m, err := New(cfg, 2)
		if err != nil {
			t.Fatal(err)
		}
		m = m.WithThreads(threads)
		corpus := NewCorpus(cfg, 1)
		rng := rand.New(rand.NewPCG(1, 2))
		val := []Sample{corpus.Sample(rng), corpus.Sample(rng)}
		var last PretrainStats
		steps := 0
		err = Pretrain(context.Background(), m, corpus, val, PretrainConfig{
			Train: DefaultTrainConfig(6), TokensPerBatch: 48, Seed: 3, ValEvery: 3,
		}, func(st PretrainStats) error {
			steps++
			if math.IsNaN(st.Loss) || math.IsInf(st.Loss, 0) {
				t.Errorf("%d threads, step %d: loss %v", threads, st.Step, st.Loss)
			}
			if st.Tokens < st.Step*48 {
				t.Errorf("%d threads, step %d: %d tokens, want at least 48 a step", threads, st.Step, st.Tokens)
			}
			last = st
			return nil
		})
		if err != nil {
			t.Fatalf("%d threads: %v", threads, err)
		}
		if steps != 6 || last.Step != 6 || math.IsNaN(last.ValLoss) {
			t.Errorf("%d threads: %d steps, last %+v", threads, steps, last)
		}
	}
}

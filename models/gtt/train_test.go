package gtt

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func BenchmarkTrainStep(b *testing.B) {
	for _, th := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("threads=%d", th), func(b *testing.B) { benchTrainStep(b, th) })
	}
}

func benchTrainStep(b *testing.B, threads int) {
	m, err := New(SmallCPUConfig, 1)
	if err != nil {
		b.Fatal(err)
	}
	m = m.WithThreads(threads)
	c := NewCorpus(m.Config(), 1)
	c.FullContext = 1
	rng := rand.New(rand.NewPCG(1, 1))
	var batch []Sample
	tokens := 0
	for tokens < 2048 {
		s := c.Sample(rng)
		batch = append(batch, s)
		tokens += m.tokensOf(s)
	}
	tr, err := NewTrainer(m, DefaultTrainConfig(1000), 0)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := tr.TrainStep(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkCorpusSample(b *testing.B) {
	c := NewCorpus(SmallCPUConfig, 1)
	c.FullContext = 1
	rng := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		c.Sample(rng)
	}
}

func TestTrainingReducesLoss(t *testing.T) {
	cfg := Config{Dim: 32, Layers: 2, Heads: 4, MLPDim: 64, PatchLen: 16, Context: 128}
	m, err := New(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	// Sines of random period and phase: next-patch prediction is learnable.
	draw := func(n int) []Sample {
		out := make([]Sample, n)
		for i := range out {
			p := 6 + 20*rng.Float64()
			ph := rng.Float64() * 6
			x := sineSeries(cfg.Context+cfg.PatchLen, p, ph, 0, 1)
			out[i] = Sample{Series: [][]float32{x[:cfg.Context]}, Target: [][]float32{x[cfg.Context:]}}
		}
		return out
	}
	val := draw(64)
	tc := DefaultTrainConfig(150)
	tc.LR = 3e-3
	tr, err := NewTrainer(m, tc, 0)
	if err != nil {
		t.Fatal(err)
	}
	before, err := tr.Loss(val)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < tc.Steps; i++ {
		if _, _, err := tr.TrainStep(draw(16)); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := tr.Loss(val)
	naive := NaiveLoss(cfg, val, tc.TargetClip)
	if after > 0.25*before || after > 0.5*naive {
		t.Fatalf("loss %.4f before, %.4f after 150 steps (naive %.4f): want a quarter of the start and half of naive", before, after, naive)
	}
	if tr.Step() != tc.Steps {
		t.Fatalf("step %d, want %d", tr.Step(), tc.Steps)
	}
}

func TestDataParallelMatchesOneThread(t *testing.T) {
	cfg := Config{Dim: 32, Layers: 2, Heads: 4, MLPDim: 64, PatchLen: 16, Context: 128}
	c := NewCorpus(cfg, 1)
	rng := rand.New(rand.NewPCG(7, 7))
	batch := make([]Sample, 11)
	for i := range batch {
		batch[i] = c.Sample(rng)
	}
	grads := func(threads int) (float64, []float32) {
		m, err := New(cfg, 9)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m.WithThreads(threads), DefaultTrainConfig(10), 0)
		if err != nil {
			t.Fatal(err)
		}
		loss, _, err := tr.lossAndGrad(batch, true)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(tr.split(batch)); n != min(threads, len(batch)/2) {
			t.Fatalf("%d threads: %d shards", threads, n)
		}
		return loss, append([]float32(nil), tr.grads...)
	}
	l1, g1 := grads(1)
	for _, th := range []int{2, 4} {
		l, g := grads(th)
		if math.Abs(l-l1) > 1e-9*math.Abs(l1) {
			t.Fatalf("%d threads: loss %v, one thread %v", th, l, l1)
		}
		var diff, norm float64
		for i := range g {
			diff += float64(g[i]-g1[i]) * float64(g[i]-g1[i])
			norm += float64(g1[i]) * float64(g1[i])
		}
		if norm == 0 || math.Sqrt(diff/norm) > 1e-5 {
			t.Fatalf("%d threads: gradient differs from one thread's by %.2g (relative)", th, math.Sqrt(diff/norm))
		}
	}
}

func TestLearningRateSchedule(t *testing.T) {
	m := testModel(t)
	tc := DefaultTrainConfig(1000)
	tc.WarmupSteps = 100
	tr, _ := NewTrainer(m, tc, 0)
	if lr := tr.lrAt(0); math.Abs(lr-tc.LR/100) > 1e-12 {
		t.Errorf("first step lr %g, want %g", lr, tc.LR/100)
	}
	if lr := tr.lrAt(99); math.Abs(lr-tc.LR) > 1e-12 {
		t.Errorf("end of warmup lr %g, want %g", lr, tc.LR)
	}
	if lr := tr.lrAt(550); math.Abs(lr-(tc.LR*tc.MinLRFrac+tc.LR*(1-tc.MinLRFrac)/2)) > 1e-9 {
		t.Errorf("mid-decay lr %g", lr)
	}
	if lr := tr.lrAt(1000); math.Abs(lr-tc.LR*tc.MinLRFrac) > 1e-12 {
		t.Errorf("final lr %g, want %g", lr, tc.LR*tc.MinLRFrac)
	}
}

func TestTrainStepRejectsBadSamples(t *testing.T) {
	m := testModel(t)
	tr, _ := NewTrainer(m, DefaultTrainConfig(10), 0)
	x := sineSeries(100, 7, 0, 0, 1)
	nan := float32(math.NaN())
	tgt := make([]float32, 64)
	for i := range tgt {
		tgt[i] = nan
	}
	if _, _, err := tr.TrainStep([]Sample{{Series: [][]float32{x}, Target: [][]float32{tgt}}}); !errors.Is(err, ErrNoTargets) {
		t.Errorf("all-missing targets: %v", err)
	}
	if _, _, err := tr.TrainStep([]Sample{{Series: [][]float32{x}, Target: [][]float32{tgt[:10]}}}); err == nil {
		t.Errorf("short target accepted")
	}
	if _, _, err := tr.TrainStep([]Sample{{Series: [][]float32{x, x[:50]}}}); err == nil {
		t.Errorf("ragged window accepted")
	}
}

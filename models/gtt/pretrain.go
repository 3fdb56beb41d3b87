package gtt

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// PretrainConfig sets up Pretrain.
type PretrainConfig struct {
	// Train is the optimizer and schedule; Train.Steps is the run length.
	Train TrainConfig
	// Start is the step to start from (when resuming).
	Start int
	// TokensPerBatch is the number of tokens (channels × patches) per
	// step; samples are drawn until the batch holds at least this many.
	TokensPerBatch int
	// Seed seeds the sample stream.
	Seed uint64
	// ValEvery is how often (in steps) Val is scored; 0 never.
	ValEvery int
	// Budget, when positive, sets the run's length by time: once a few
	// steps show the speed, the schedule's last step is moved to where the
	// budget runs out, so that the learning rate still decays fully.
	// Train.Steps is then only the first guess.
	Budget time.Duration
}

// PretrainStats reports progress after a step.
type PretrainStats struct {
	Step, Steps int
	// Loss is the batch loss and AvgLoss its exponential moving average.
	Loss, AvgLoss float64
	LR, GradNorm  float64
	// ValLoss is the loss on the validation samples, NaN when not scored
	// at this step.
	ValLoss float64
	Samples int
	Tokens  int
	Elapsed time.Duration
}

// Pretrain trains m on samples drawn from corpus until the schedule's last
// step, calling onStep after every step (it may save checkpoints; an error
// from it stops training). val, when not empty, is scored every ValEvery
// steps.
func Pretrain(ctx context.Context, m *Model, corpus *Corpus, val []Sample, pc PretrainConfig, onStep func(PretrainStats) error) error {
	tr, err := NewTrainer(m, pc.Train, pc.Start)
	if err != nil {
		return err
	}
	steps := pc.Train.Steps
	draw := newSampleDrawer(m, corpus, pc)
	began := time.Now()
	avg := math.NaN()
	tokens := 0
	ri := &rollInScratch{b: newBatch(m.cfg)}
	for tr.Step() < steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pretrain at step %d: %w", tr.Step(), err)
		}
		if pc.Budget > 0 {
			steps = budgetSteps(pc, tr.Step(), time.Since(began), steps)
			if tr.Step() >= steps {
				break
			}
			tr.SetSteps(steps)
		}
		batch, bt := draw()
		m.rollIn(batch, ri)
		loss, gn, err := tr.TrainStep(batch)
		if err != nil {
			return fmt.Errorf("pretrain: %w", err)
		}
		tokens += bt
		if math.IsNaN(avg) {
			avg = loss
		} else {
			avg = 0.98*avg + 0.02*loss
		}
		st := PretrainStats{
			Step: tr.Step(), Steps: steps, Loss: loss, AvgLoss: avg,
			LR: tr.lrAt(tr.Step() - 1), GradNorm: gn, ValLoss: math.NaN(),
			Samples: len(batch), Tokens: tokens, Elapsed: time.Since(began),
		}
		if len(val) > 0 && pc.ValEvery > 0 && (tr.Step()%pc.ValEvery == 0 || tr.Step() == steps) {
			if st.ValLoss, err = tr.evalLoss(val); err != nil {
				return fmt.Errorf("pretrain: validation: %w", err)
			}
		}
		if onStep != nil {
			if err := onStep(st); err != nil {
				return err
			}
		}
	}
	return nil
}

// budgetSteps returns the schedule's last step for a run with a time
// budget that has reached step after elapsed: the first guess until 20
// steps and 2% of the budget have passed, then the step the measured speed
// reaches when the budget ends (step itself once it has ended).
func budgetSteps(pc PretrainConfig, step int, elapsed time.Duration, guess int) int {
	done := step - pc.Start
	if done < 20 || elapsed < pc.Budget/50 {
		return guess
	}
	rate := float64(done) / elapsed.Seconds()
	left := (pc.Budget - elapsed).Seconds()
	if left <= 0 {
		return step
	}
	return step + max(1, int(rate*left))
}

// newSampleDrawer returns a function that draws one step's samples (at
// least pc.TokensPerBatch tokens) and their token count. A model with one
// thread draws them in order from one stream; with more, each thread draws
// its share from a stream of its own at the same time, so the samples then
// depend on the thread count.
func newSampleDrawer(m *Model, corpus *Corpus, pc PretrainConfig) func() ([]Sample, int) {
	n := m.threads
	rngs := make([]*rand.Rand, n)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(pc.Seed+uint64(i)*0x9e3779b97f4a7c15, uint64(pc.Start)))
	}
	drawN := func(rng *rand.Rand, want int) ([]Sample, int) {
		var out []Sample
		bt := 0
		for bt < want {
			s := corpus.Sample(rng)
			out = append(out, s)
			bt += m.tokensOf(s)
		}
		return out, bt
	}
	if n == 1 {
		return func() ([]Sample, int) { return drawN(rngs[0], pc.TokensPerBatch) }
	}
	parts := make([][]Sample, n)
	counts := make([]int, n)
	share := (pc.TokensPerBatch + n - 1) / n
	return func() ([]Sample, int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				parts[i], counts[i] = drawN(rngs[i], share)
			}()
		}
		wg.Wait()
		var batch []Sample
		bt := 0
		for i := range n {
			batch = append(batch, parts[i]...)
			bt += counts[i]
		}
		return batch, bt
	}
}

// evalLoss scores samples in chunks, without training.
func (t *Trainer) evalLoss(samples []Sample) (float64, error) {
	var sum float64
	var n int
	for lo := 0; lo < len(samples); lo += 32 {
		hi := min(lo+32, len(samples))
		l, err := t.Loss(samples[lo:hi])
		if err != nil {
			return 0, err
		}
		sum += l * float64(hi-lo)
		n += hi - lo
	}
	return sum / float64(n), nil
}

// tokensOf returns the number of tokens a sample occupies.
func (m *Model) tokensOf(s Sample) int {
	t := min(len(s.Series[0]), m.cfg.Context)
	return len(s.Series) * ((t + m.cfg.PatchLen - 1) / m.cfg.PatchLen)
}

// rollInScratch is the reusable memory of rollIn.
type rollInScratch struct {
	b    *batch
	ws   workspace
	todo []int
}

// rollIn overwrites the last Rollout steps of the predicted channels of
// each sample that has them with the model's forecast from the steps
// before, one pass (PatchLen steps) at a time, as ForecastBatch rolls out:
// each pass reads the window up to the pass's first step, its earlier
// passes' predictions included, normalized afresh. Input-only channels
// keep their values.
func (m *Model) rollIn(samples []Sample, sc *rollInScratch) {
	pl := m.cfg.PatchLen
	for pass := 0; ; pass++ {
		sc.todo = sc.todo[:0]
		sc.b.reset()
		for i, s := range samples {
			if s.Rollout <= pass*pl || len(s.Series[0])-s.Rollout < 1 {
				continue
			}
			cut := len(s.Series[0]) - s.Rollout + pass*pl
			view := make([][]float32, len(s.Series))
			for c, ch := range s.Series {
				view[c] = ch[:cut]
			}
			sc.b.addGroup(view)
			sc.todo = append(sc.todo, i)
		}
		if len(sc.todo) == 0 {
			return
		}
		m.forward(sc.b, &sc.ws)
		row := 0
		for _, i := range sc.todo {
			s := samples[i]
			cut := len(s.Series[0]) - s.Rollout + pass*pl
			for c := range s.Target {
				out := sc.ws.out[(row+c)*pl : (row+c+1)*pl]
				mean, sd := sc.b.mean[row+c], sc.b.scale[row+c]
				dst := s.Series[c][cut : cut+pl]
				for k := range dst {
					dst[k] = float32(float64(out[k])*sd + mean)
				}
			}
			row += len(s.Series)
		}
	}
}

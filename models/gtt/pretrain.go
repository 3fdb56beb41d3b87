package gtt

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
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
	rng := rand.New(rand.NewPCG(pc.Seed, uint64(pc.Start)))
	began := time.Now()
	avg := math.NaN()
	tokens := 0
	ri := &rollInScratch{b: newBatch(m.cfg)}
	for tr.Step() < pc.Train.Steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pretrain at step %d: %w", tr.Step(), err)
		}
		var batch []Sample
		bt := 0
		for bt < pc.TokensPerBatch {
			s := corpus.Sample(rng)
			batch = append(batch, s)
			bt += m.tokensOf(s)
		}
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
			Step: tr.Step(), Steps: pc.Train.Steps, Loss: loss, AvgLoss: avg,
			LR: tr.lrAt(tr.Step() - 1), GradNorm: gn, ValLoss: math.NaN(),
			Samples: len(batch), Tokens: tokens, Elapsed: time.Since(began),
		}
		if len(val) > 0 && pc.ValEvery > 0 && (tr.Step()%pc.ValEvery == 0 || tr.Step() == pc.Train.Steps) {
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

package gtt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxHorizon bounds the steps one forecast may ask for.
const MaxHorizon = 100_000

// MaxChannels bounds the channels of one input (time features included).
const MaxChannels = 4096

// ErrInvalid is wrapped by every error about bad forecasting input.
var ErrInvalid = errors.New("invalid forecast input")

// Input is one multivariate history to forecast.
type Input struct {
	// Series holds the channels, all of the same length (at least one
	// step); NaN or ±Inf marks a missing value. Each channel needs at least
	// one observed value among the last Context steps.
	Series [][]float32
	// Timestamps, when not nil, gives the time of every step (as many as
	// each channel has). The model then reads calendar features as extra
	// channels, and their future values continue the inferred step.
	Timestamps []time.Time
	// Known holds covariates whose future values are known, one slice per
	// channel of len(Series[0]) + horizon steps (NaN marks a missing
	// value). They are input channels after Series: the model reads their
	// history, each rollout pass appends their known next steps (as it
	// does for time features), and they are never predicted.
	Known [][]float32
}

// Forecast predicts the next horizon steps of every channel of series,
// which are read as one multivariate input (channels attend to each other):
// all of the same length, NaN marking missing values. It returns horizon
// values per channel, in order.
func (m *Model) Forecast(series [][]float32, horizon int) ([][]float32, error) {
	out, err := m.ForecastBatch(context.Background(), []Input{{Series: series}}, horizon)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ForecastBatch predicts the next horizon steps of every channel of every
// input, running the inputs together through each forward pass. Inputs are
// independent of each other; within an input the channels attend to each
// other. Horizons beyond PatchLen roll out autoregressively: each pass's
// prediction is appended to the history, and the window (the last Context
// steps) is normalized afresh. The result holds, per input, horizon values
// per channel. It stops between passes when ctx is done.
func (m *Model) ForecastBatch(ctx context.Context, inputs []Input, horizon int) ([][][]float32, error) {
	cfg := m.cfg
	if horizon < 1 || horizon > MaxHorizon {
		return nil, fmt.Errorf("forecast: horizon %d is outside [1, %d]: %w", horizon, MaxHorizon, ErrInvalid)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("forecast: no inputs: %w", ErrInvalid)
	}
	roll := make([]*rollout, len(inputs))
	for i, in := range inputs {
		r, err := newRollout(cfg, in, horizon)
		if err != nil {
			return nil, fmt.Errorf("forecast: input %d: %w", i, err)
		}
		roll[i] = r
	}
	b := newBatch(cfg)
	ws := &workspace{}
	for done := 0; done < horizon; done += cfg.PatchLen {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("forecast: %w", err)
		}
		b.reset()
		for _, r := range roll {
			b.addGroup(r.window())
		}
		m.forward(b, ws)
		row := 0
		for _, r := range roll {
			if err := r.advance(ws.out[row*cfg.PatchLen:], b.mean[row:], b.scale[row:]); err != nil {
				return nil, fmt.Errorf("forecast: %w", err)
			}
			row += len(r.window())
		}
	}
	out := make([][][]float32, len(roll))
	for i, r := range roll {
		out[i] = r.result()
	}
	return out, nil
}

// rollout is the growing history of one input during a forecast.
type rollout struct {
	cfg      Config
	targets  int         // value channels; time-feature channels follow
	hist     [][]float32 // per channel: the history read, then predictions
	start    int         // hist index where predictions begin
	horizon  int
	cal      Calendar
	lastTime time.Time
	view     [][]float32
}

func newRollout(cfg Config, in Input, horizon int) (*rollout, error) {
	if len(in.Series) == 0 {
		return nil, fmt.Errorf("no channels: %w", ErrInvalid)
	}
	t := len(in.Series[0])
	if t == 0 {
		return nil, fmt.Errorf("channel 0 is empty: %w", ErrInvalid)
	}
	for c, s := range in.Series {
		if len(s) != t {
			return nil, fmt.Errorf("channel %d has %d steps, channel 0 has %d: %w", c, len(s), t, ErrInvalid)
		}
		seen := false
		for _, v := range s[max(0, t-cfg.Context):] {
			if usable(v) {
				seen = true
				break
			}
		}
		if !seen {
			return nil, fmt.Errorf("channel %d has no observed value in its last %d steps: %w", c, cfg.Context, ErrInvalid)
		}
	}
	keep := min(t, cfg.Context)
	r := &rollout{cfg: cfg, targets: len(in.Series), horizon: horizon, start: keep}
	var cal Calendar
	if in.Timestamps != nil {
		if len(in.Timestamps) != t {
			return nil, fmt.Errorf("%d timestamps for %d steps: %w", len(in.Timestamps), t, ErrInvalid)
		}
		var err error
		if cal, err = NewCalendar(in.Timestamps, cfg.Context); err != nil {
			return nil, fmt.Errorf("%w: %w", err, ErrInvalid)
		}
	}
	if len(in.Series)+len(in.Known)+cal.Channels() > MaxChannels {
		return nil, fmt.Errorf("%d channels exceed the limit of %d: %w", len(in.Series)+len(in.Known)+cal.Channels(), MaxChannels, ErrInvalid)
	}
	total := keep + (horizon+cfg.PatchLen-1)/cfg.PatchLen*cfg.PatchLen
	for _, s := range in.Series {
		h := make([]float32, keep, total)
		copy(h, s[t-keep:])
		r.hist = append(r.hist, h)
	}
	for c, s := range in.Known {
		if len(s) != t+horizon {
			return nil, fmt.Errorf("known covariate %d has %d steps, want %d (history and horizon): %w", c, len(s), t+horizon, ErrInvalid)
		}
		h := make([]float32, total)
		n := copy(h, s[t-keep:])
		for k := n; k < total; k++ {
			h[k] = float32(math.NaN())
		}
		r.hist = append(r.hist, h[:keep])
	}
	if cal.Channels() > 0 {
		r.cal = cal
		r.lastTime = in.Timestamps[t-1]
		ts := make([]time.Time, total)
		copy(ts, in.Timestamps[t-keep:])
		for k := keep; k < total; k++ {
			ts[k] = cal.After(r.lastTime, k-keep+1)
		}
		feats := make([][]float32, cal.Channels())
		for i := range feats {
			feats[i] = make([]float32, total)
		}
		cal.Fill(feats, ts)
		for _, f := range feats {
			r.hist = append(r.hist, f[:keep])
		}
	}
	r.view = make([][]float32, len(r.hist))
	return r, nil
}

// window returns the channels of the current context window (the last
// Context steps of the history).
func (r *rollout) window() [][]float32 {
	for c, h := range r.hist {
		r.view[c] = h[max(0, len(h)-r.cfg.Context):]
	}
	return r.view
}

// advance appends one pass's predictions (normalized, PatchLen per channel,
// with each channel's RevIN mean and scale) to the value channels, and the
// next known steps to the time-feature channels.
func (r *rollout) advance(out []float32, mean, scale []float64) error {
	pl := r.cfg.PatchLen
	for c := range r.hist {
		if c >= r.targets {
			h := r.hist[c]
			r.hist[c] = h[:len(h)+pl]
			continue
		}
		for k := 0; k < pl; k++ {
			v := float64(out[c*pl+k])*scale[c] + mean[c]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("channel %d: the prediction is not finite", c)
			}
			r.hist[c] = append(r.hist[c], float32(v))
		}
	}
	return nil
}

// result returns the first horizon predicted steps of each value channel.
func (r *rollout) result() [][]float32 {
	out := make([][]float32, r.targets)
	for c := range out {
		out[c] = append([]float32(nil), r.hist[c][r.start:r.start+r.horizon]...)
	}
	return out
}

package gtt

import (
	"context"
	"fmt"
)

// ContextEnsemble forecasts each input several times, from the last n steps
// of its history for each n in Lengths, and averages the forecasts. Models
// trained on windows of every length forecast a little differently from
// short and long histories; the mean is steadier than any one of them,
// especially over long rollouts. It costs one forecast per length.
type ContextEnsemble struct {
	// Predictor makes each member forecast (a Model or a Tuned model).
	Predictor Predictor
	// Lengths are the history lengths, each at least 1; a length at or
	// beyond an input's history reads all of it.
	Lengths []int
}

var _ Predictor = ContextEnsemble{}

// Config returns the shape of the underlying model.
func (e ContextEnsemble) Config() Config { return e.Predictor.Config() }

// ForecastBatch predicts the next horizon steps of every value channel of
// every input, as Model.ForecastBatch does, as the mean of the forecasts
// from the last Lengths steps of each history. Without lengths it is the
// predictor's own forecast.
func (e ContextEnsemble) ForecastBatch(ctx context.Context, inputs []Input, horizon int) ([][][]float32, error) {
	if len(e.Lengths) == 0 {
		return e.Predictor.ForecastBatch(ctx, inputs, horizon)
	}
	for _, n := range e.Lengths {
		if n < 1 {
			return nil, fmt.Errorf("context ensemble: history length %d is not positive: %w", n, ErrInvalid)
		}
	}
	var sum [][][]float32
	for _, n := range e.Lengths {
		cut := make([]Input, len(inputs))
		for i, in := range inputs {
			cut[i] = lastSteps(in, n, horizon)
		}
		out, err := e.Predictor.ForecastBatch(ctx, cut, horizon)
		if err != nil {
			return nil, fmt.Errorf("context ensemble: history length %d: %w", n, err)
		}
		if sum == nil {
			sum = out
			continue
		}
		for i := range out {
			for c := range out[i] {
				for k, v := range out[i][c] {
					sum[i][c][k] += v
				}
			}
		}
	}
	inv := 1 / float32(len(e.Lengths))
	for i := range sum {
		for c := range sum[i] {
			for k := range sum[i][c] {
				sum[i][c][k] *= inv
			}
		}
	}
	return sum, nil
}

// lastSteps returns in cut to its last n steps (all of it when shorter):
// its series, timestamps and the history part of its known covariates.
// Malformed inputs are passed on as they are, for the predictor to reject.
func lastSteps(in Input, n, horizon int) Input {
	if len(in.Series) == 0 {
		return in
	}
	t := len(in.Series[0])
	if t <= n {
		return in
	}
	out := in
	out.Series = make([][]float32, len(in.Series))
	for c, s := range in.Series {
		if len(s) != t {
			return in
		}
		out.Series[c] = s[t-n:]
	}
	if in.Timestamps != nil {
		if len(in.Timestamps) != t {
			return in
		}
		out.Timestamps = in.Timestamps[t-n:]
	}
	if in.Known != nil {
		out.Known = make([][]float32, len(in.Known))
		for c, k := range in.Known {
			if len(k) != t+horizon {
				return in
			}
			out.Known[c] = k[t-n:]
		}
	}
	return out
}

package gtt

import (
	"fmt"
	"math"
)

// Model is a GTT forecaster: a shape and its weights. Forecasting only reads
// the weights, so one Model serves concurrent Forecast calls; training
// (Trainer) changes them and must not overlap with forecasting.
type Model struct {
	cfg     Config
	specs   []tensorSpec
	params  []float32
	w       paramViews
	pos     []float32 // MaxPatches × Dim sinusoidal position table
	threads int
}

// New returns a model of shape cfg with freshly initialized weights drawn
// from seed.
func New(cfg Config, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new gtt model: %w", err)
	}
	m := newEmpty(cfg)
	initParams(m.specs, m.params, seed)
	return m, nil
}

// newEmpty returns a model of a valid shape with zero weights.
func newEmpty(cfg Config) *Model {
	specs, total := layout(cfg)
	m := &Model{cfg: cfg, specs: specs, params: make([]float32, total), threads: 1}
	m.w = bind(cfg, specs, m.params)
	m.pos = positionTable(cfg.MaxPatches(), cfg.Dim)
	return m
}

// Config returns the model's shape.
func (m *Model) Config() Config { return m.cfg }

// NumParams returns the number of weights.
func (m *Model) NumParams() int { return len(m.params) }

// WithThreads returns a model that shares m's weights and splits its work
// over n goroutines (n ≤ 0 means 1).
func (m *Model) WithThreads(n int) *Model {
	c := *m
	c.threads = max(n, 1)
	return &c
}

// Threads returns the number of goroutines a forward pass uses.
func (m *Model) Threads() int { return m.threads }

// positionTable returns the sinusoidal encodings of positions 0..n-1 in d
// dimensions: sin and cos pairs at geometrically spaced frequencies.
func positionTable(n, d int) []float32 {
	t := make([]float32, n*d)
	for p := 0; p < n; p++ {
		for i := 0; i < d; i += 2 {
			freq := math.Pow(10000, -float64(i)/float64(d))
			t[p*d+i] = float32(math.Sin(float64(p) * freq))
			if i+1 < d {
				t[p*d+i+1] = float32(math.Cos(float64(p) * freq))
			}
		}
	}
	return t
}

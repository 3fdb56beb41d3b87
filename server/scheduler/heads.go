package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/carryon/carryon/sdk"
)

// HeadPlugin is the part of a head plugin the scheduler calls. Its methods
// must be safe for concurrent use.
type HeadPlugin interface {
	// Forward returns one delta (the head's α·g⊙Δx, Dim floats) per row,
	// in row order.
	Forward(ctx context.Context, rows []sdk.Row) ([][]float32, error)
	// Release drops the plugin's state of finished sequences.
	Release(ctx context.Context, seqs []sdk.SeqID) error
	// NewSeq returns a sequence id not used before in this plugin.
	NewSeq() sdk.SeqID
}

// Head is the carry-on head a request runs through: every token of the
// request is fed to it, and the logits of the request's rows are the base
// model's LM head applied to x + delta.
type Head struct {
	// ID is the id the head is loaded under in its plugin.
	ID string
	// Plugin runs the head. Rows of every head of one plugin go to it in
	// one Forward call per step.
	Plugin HeadPlugin
	// Taps lists the base layers the head reads, as sdk.HeadInfo.Taps:
	// sdk.FinalLayer for the final-norm state, n ≥ 0 for the residual
	// stream after layer n. Empty means {sdk.FinalLayer}.
	Taps []int
}

// headRelease bounds the time a Release call of finished sequences may take.
const headRelease = 10 * time.Second

// headRow is a batch row whose hidden state goes to a head.
type headRow struct {
	row    int
	r      *request
	c      *choice
	logits bool // the row's logits are sampled
}

// checkHead validates a request's head.
func checkHead(h *Head) error {
	if h == nil {
		return nil
	}
	if h.ID == "" || h.Plugin == nil {
		return errors.New("head: an id and a plugin are required")
	}
	for _, t := range h.Taps {
		if t < sdk.FinalLayer {
			return fmt.Errorf("head %s: tap %d is not a layer", h.ID, t)
		}
	}
	return nil
}

// prepareTaps sets the batch's taps to the layers the step's heads read.
// It fails the requests whose heads read layers the model does not have.
func (s *Scheduler) prepareTaps() {
	s.batch.Taps = s.batch.Taps[:0]
	layers := s.model.Config().Layers
	for _, hr := range s.headRows {
		for _, t := range hr.r.head.Taps {
			if t >= 0 && t < layers && !slices.Contains(s.batch.Taps, t) {
				s.batch.Taps = append(s.batch.Taps, t)
			}
		}
	}
}

// headInput returns the Hidden of a head row: the states of its taps,
// concatenated.
func (s *Scheduler) headInput(hr headRow) ([]float32, error) {
	taps := hr.r.head.Taps
	if len(taps) == 0 || len(taps) == 1 && taps[0] == sdk.FinalLayer {
		return s.out.RowHidden(hr.row), nil
	}
	d := s.model.Config().Dim
	in := make([]float32, 0, len(taps)*d)
	for _, t := range taps {
		var x []float32
		if t == sdk.FinalLayer {
			x = s.out.RowHidden(hr.row)
		} else if i := slices.Index(s.batch.Taps, t); i >= 0 {
			x = s.out.RowTap(i, hr.row)
		}
		if x == nil {
			return nil, fmt.Errorf("head %s reads layer %d, which the model does not have", hr.r.head.ID, t)
		}
		in = append(in, x...)
	}
	return in, nil
}

// runHeads sends the step's head rows to their plugins, one Forward call
// per plugin (in parallel across plugins), and computes the logits of the
// rows that sample: the LM head over x + delta. A plugin that fails fails
// only the requests whose rows it had.
func (s *Scheduler) runHeads() {
	if len(s.headRows) == 0 {
		return
	}
	t0 := time.Now()
	defer func() {
		s.headSteps++
		s.headTime += time.Since(t0)
	}()
	type call struct {
		plugin HeadPlugin
		idx    []int // into s.headRows
		rows   []sdk.Row
		deltas [][]float32
		err    error
	}
	var calls []*call
	for i, hr := range s.headRows {
		if hr.r.ended {
			continue
		}
		in, err := s.headInput(hr)
		if err != nil {
			s.fail(hr.r, err)
			continue
		}
		p := hr.r.head.Plugin
		var cl *call
		for _, x := range calls {
			if x.plugin == p {
				cl = x
				break
			}
		}
		if cl == nil {
			cl = &call{plugin: p}
			calls = append(calls, cl)
		}
		cl.idx = append(cl.idx, i)
		cl.rows = append(cl.rows, sdk.Row{Head: hr.r.head.ID, Seq: hr.c.hseq, Pos: s.batch.Rows[hr.row].Pos, Hidden: in})
	}
	var wg sync.WaitGroup
	for _, cl := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.deltas, cl.err = cl.plugin.Forward(s.stopCtx, cl.rows)
			if cl.err == nil && len(cl.deltas) != len(cl.rows) {
				cl.err = fmt.Errorf("plugin returned %d deltas for %d rows", len(cl.deltas), len(cl.rows))
			}
		}()
	}
	wg.Wait()
	d, vocab := s.model.Config().Dim, s.vocab
	s.headHidden = s.headHidden[:0]
	n := 0
	for _, cl := range calls {
		if cl.err != nil {
			s.log.Warn("head plugin call failed", "rows", len(cl.rows), "error", cl.err)
			for _, i := range cl.idx {
				hr := s.headRows[i]
				s.fail(hr.r, fmt.Errorf("head %s: %w", hr.r.head.ID, cl.err))
			}
			continue
		}
		for k, i := range cl.idx {
			hr := s.headRows[i]
			if !hr.logits || hr.r.ended {
				continue
			}
			delta := cl.deltas[k]
			if len(delta) != d {
				s.fail(hr.r, fmt.Errorf("head %s returned a delta of %d floats for a model of width %d", hr.r.head.ID, len(delta), d))
				continue
			}
			x := s.out.RowHidden(hr.row)
			off := len(s.headHidden)
			s.headHidden = append(s.headHidden, x...)
			merged := s.headHidden[off : off+d]
			for j, v := range delta {
				merged[j] += v
			}
			s.logitAt[hr.row] = n
			n++
		}
	}
	if n == 0 {
		return
	}
	if cap(s.headLogits) < n*vocab {
		s.headLogits = make([]float32, n*vocab)
	}
	s.headLogits = s.headLogits[:n*vocab]
	if err := s.model.Logits(s.headLogits, s.headHidden); err != nil {
		for _, hr := range s.headRows {
			if hr.logits {
				s.fail(hr.r, fmt.Errorf("head %s: %w", hr.r.head.ID, err))
			}
		}
	}
}

// rowLogits returns the logits of a batch row: the head's for rows of
// requests with a head, the base model's otherwise.
func (s *Scheduler) rowLogits(row int) []float32 {
	if row < len(s.logitAt) {
		if i := s.logitAt[row]; i >= 0 {
			return s.headLogits[i*s.vocab : (i+1)*s.vocab]
		}
	}
	return s.out.RowLogits(row)
}

// dropHeadSeq queues the release of a choice's head sequence.
func (s *Scheduler) dropHeadSeq(r *request, c *choice) {
	if c.hseq == 0 || r.head == nil {
		return
	}
	if s.headDrops == nil {
		s.headDrops = map[HeadPlugin][]sdk.SeqID{}
	}
	s.headDrops[r.head.Plugin] = append(s.headDrops[r.head.Plugin], c.hseq)
	c.hseq = 0
}

// flushHeadDrops sends the queued releases, one call per plugin, without
// waiting for them: sequence ids are never reused, so a late release
// cannot touch a live sequence.
func (s *Scheduler) flushHeadDrops() {
	for p, seqs := range s.headDrops {
		delete(s.headDrops, p)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), headRelease)
			defer cancel()
			if err := p.Release(ctx, seqs); err != nil {
				s.log.Debug("release head sequences", "sequences", len(seqs), "error", err)
			}
		}()
	}
}

package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/carryon/carryon/models/llm"
)

// Pooling selects how Embed turns the hidden states of an input's tokens
// into one vector.
type Pooling int

const (
	// PoolMean averages the final-norm hidden states of all tokens.
	PoolMean Pooling = iota
	// PoolLast takes the final-norm hidden state of the last token.
	PoolLast
)

// String returns the pooling's name.
func (p Pooling) String() string {
	switch p {
	case PoolMean:
		return "mean"
	case PoolLast:
		return "last"
	}
	return fmt.Sprintf("Pooling(%d)", int(p))
}

// embedJob is an Embed call: its inputs run on temporary sequences, as
// many at once as there are free sequence slots, chunked like prompts.
type embedJob struct {
	inputs [][]int32
	pool   Pooling
	dim    int
	vecs   [][]float32
	todo   []int // inputs not started, in order
	active []*embedInput
	left   int // inputs not finished
	err    error
	done   chan struct{}
}

// embedInput is one input being read.
type embedInput struct {
	idx      int
	seq      llm.SeqID
	fed      int
	feeding  int
	firstRow int // batch row of the first token fed in this step
	sum      []float64
}

// Embed runs the token inputs through the model, batched with the running
// requests, and returns one vector per input: the final-norm hidden states
// (the input of the LM head) pooled by p and L2-normalized. Each input must
// be non-empty and fit in one sequence's context (else the error wraps
// ErrContextLength). It blocks until the vectors are ready, ctx is done or
// the scheduler closes; it fails at once with ErrQueueFull when the queue
// is full and ErrClosed after Close.
func (s *Scheduler) Embed(ctx context.Context, inputs [][]int32, p Pooling) ([][]float32, Usage, error) {
	var usage Usage
	if ctx == nil {
		return nil, usage, errors.New("embed: nil context")
	}
	if len(inputs) == 0 {
		return nil, usage, errors.New("embed: no inputs")
	}
	if p != PoolMean && p != PoolLast {
		return nil, usage, fmt.Errorf("embed: unknown pooling %v", p)
	}
	job := &embedJob{
		inputs: make([][]int32, len(inputs)),
		pool:   p,
		dim:    s.model.Config().Dim,
		vecs:   make([][]float32, len(inputs)),
		todo:   make([]int, len(inputs)),
		left:   len(inputs),
		done:   make(chan struct{}),
	}
	for i, in := range inputs {
		if len(in) == 0 {
			return nil, usage, fmt.Errorf("embed: input %d is empty", i)
		}
		if len(in) > s.seqCtx {
			return nil, usage, fmt.Errorf("embed: input %d has %d tokens, more than the context of %d: %w", i, len(in), s.seqCtx, ErrContextLength)
		}
		if err := s.checkTokens(in); err != nil {
			return nil, usage, fmt.Errorf("embed: input %d: %w", i, err)
		}
		job.inputs[i] = append([]int32(nil), in...)
		job.todo[i] = i
		usage.PromptTokens += len(in)
	}
	if err := ctx.Err(); err != nil {
		return nil, usage, fmt.Errorf("embed: %w", err)
	}
	r := &request{ctx: ctx, emb: job}
	r.stopAfter = context.AfterFunc(ctx, s.poke)
	if err := s.enqueue(r); err != nil {
		r.stopAfter()
		return nil, usage, fmt.Errorf("embed: %w", err)
	}
	s.poke()
	<-job.done
	if job.err != nil {
		return nil, usage, fmt.Errorf("embed: %w", job.err)
	}
	return job.vecs, usage, nil
}

// startInputs gives sequences to a running job's waiting inputs while
// there are free slots and KV room.
func (s *Scheduler) startInputs(r *request) {
	job := r.emb
	for len(job.todo) > 0 {
		alone := len(s.running) == 1 && len(job.active) == 0
		if (s.hold || s.slotsUsed() >= s.opts.MaxSequences) && !alone {
			return
		}
		idx := job.todo[0]
		if !s.makeRoom(len(job.inputs[idx])) && !alone {
			return
		}
		seq, err := s.cache.NewSeq()
		if err != nil {
			if len(job.active) > 0 {
				return // wait for one of its own inputs to finish
			}
			s.fail(r, fmt.Errorf("start input %d: %w", idx, err))
			return
		}
		job.todo = job.todo[1:]
		job.active = append(job.active, &embedInput{idx: idx, seq: seq, sum: make([]float64, job.dim)})
		r.touched = true
	}
}

// embedRows adds the next chunks of a job's active inputs to the batch and
// returns the budget left.
func (s *Scheduler) embedRows(r *request, budget int) int {
	job := r.emb
	for _, in := range job.active {
		in.feeding = 0
		toks := job.inputs[in.idx]
		if budget == 0 {
			continue
		}
		n := min(len(toks)-in.fed, s.opts.PrefillChunk, budget)
		in.firstRow = len(s.batch.Rows)
		for i := range n {
			p := in.fed + i
			hidden := job.pool == PoolMean || p == len(toks)-1
			s.batch.Add(toks[p], in.seq, p, false, hidden)
		}
		in.feeding = n
		budget -= n
		r.touched = true
	}
	return budget
}

// embedOutputs pools the hidden states a step produced for a job and
// finishes the inputs (and the job) that are complete.
func (s *Scheduler) embedOutputs(r *request) {
	if r.ended {
		return
	}
	job := r.emb
	kept := job.active[:0]
	for _, in := range job.active {
		for i := range in.feeding {
			if h := s.out.RowHidden(in.firstRow + i); h != nil {
				for j, v := range h {
					in.sum[j] += float64(v)
				}
			}
		}
		in.fed += in.feeding
		in.feeding = 0
		toks := job.inputs[in.idx]
		if in.fed < len(toks) {
			kept = append(kept, in)
			continue
		}
		scale := 1.0
		if job.pool == PoolMean {
			scale = 1 / float64(len(toks))
		}
		var norm float64
		for j := range in.sum {
			in.sum[j] *= scale
			norm += in.sum[j] * in.sum[j]
		}
		if norm > 0 {
			norm = 1 / math.Sqrt(norm)
		}
		vec := make([]float32, job.dim)
		for j, v := range in.sum {
			vec[j] = float32(v * norm)
		}
		job.vecs[in.idx] = vec
		_ = s.cache.Release(in.seq)
		job.left--
	}
	clear(job.active[len(kept):])
	job.active = kept
	if job.left == 0 {
		job.finish(nil)
		s.end(r)
	}
}

// preempt releases the job's sequences and puts its active inputs back in
// front of the waiting ones.
func (j *embedJob) preempt(c *llm.Cache) {
	if len(j.active) == 0 {
		return
	}
	todo := make([]int, 0, len(j.active)+len(j.todo))
	for _, in := range j.active {
		_ = c.Release(in.seq)
		todo = append(todo, in.idx)
	}
	j.todo = append(todo, j.todo...)
	clear(j.active)
	j.active = j.active[:0]
}

// finish reports the job's result to Embed.
func (j *embedJob) finish(err error) {
	j.err = err
	if err != nil {
		j.vecs = nil
	}
	close(j.done)
}

package scheduler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/carryon/carryon/models/llm"
)

// dropCancelled ends the requests whose context is done, running or
// waiting, and releases their KV.
func (s *Scheduler) dropCancelled() {
	for _, r := range s.running {
		if err := r.ctx.Err(); err != nil {
			s.fail(r, fmt.Errorf("request cancelled: %w", err))
		}
	}
	s.compact()
	var gone []*request
	s.mu.Lock()
	kept := s.waiting[:0]
	for _, r := range s.waiting {
		if r.ctx.Err() != nil {
			gone = append(gone, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(s.waiting[len(kept):])
	s.waiting = kept
	s.mu.Unlock()
	for _, r := range gone {
		s.fail(r, fmt.Errorf("request cancelled: %w", r.ctx.Err()))
	}
}

// admit starts embedding inputs of running jobs, then admits waiting
// requests in order while they fit.
func (s *Scheduler) admit() {
	for _, r := range s.running {
		if r.emb != nil {
			s.startInputs(r)
		}
	}
	for {
		if s.hold && len(s.running) > 0 {
			return
		}
		s.mu.Lock()
		if len(s.waiting) == 0 {
			s.mu.Unlock()
			return
		}
		r := s.waiting[0]
		s.mu.Unlock()
		if !s.fits(r) {
			return
		}
		s.mu.Lock()
		s.waiting[0] = nil
		s.waiting = s.waiting[1:]
		s.mu.Unlock()
		s.start(r)
	}
}

// slotsUsed returns the sequence slots the running requests hold or will
// hold.
func (s *Scheduler) slotsUsed() int {
	n := 0
	for _, r := range s.running {
		if r.emb != nil {
			n += len(r.emb.active)
		} else {
			n += r.live
		}
	}
	return n
}

// free returns the KV positions not reserved by any sequence.
func (s *Scheduler) free() int { return s.opts.KVTokens - s.cache.Reserved() }

// makeRoom evicts prefix-cache entries until need positions are free, and
// reports whether they are.
func (s *Scheduler) makeRoom(need int) bool {
	for s.free() < need && s.prefix.evict(s.cache) {
	}
	return s.free() >= need
}

// fits reports whether request r can start now, evicting prefix-cache
// entries to make KV room for it. With nothing running, anything fits: it
// has the whole cache to itself.
func (s *Scheduler) fits(r *request) bool {
	if r.emb != nil {
		return len(s.running) == 0 || s.slotsUsed() < s.opts.MaxSequences
	}
	if s.slotsUsed()+r.live > s.opts.MaxSequences {
		return false
	}
	head := decodeHeadroom
	if r.maxTokens > 0 {
		head = min(head, r.maxTokens)
	}
	if !r.generating && !s.opts.NoPrefixCache {
		s.prefix.touch(r.prompt[:len(r.prompt)-1])
	}
	need := 0
	if r.generating {
		for _, c := range r.choices {
			if !c.done {
				need += len(c.toks) + head
			}
		}
	} else {
		need = r.live * (len(r.prompt) + head)
	}
	return s.makeRoom(need) || len(s.running) == 0
}

// start admits request r: it gets its sequences (forks of prefix-cache
// entries where they match) and joins the running list.
func (s *Scheduler) start(r *request) {
	s.stamp++
	r.stamp = s.stamp
	r.touched = true
	s.running = append(s.running, r)
	if r.emb != nil {
		s.startInputs(r)
		return
	}
	for _, c := range r.choices {
		if c.done || (!r.generating && c.index > 0 && r.head == nil) {
			continue // extra choices fork once the prompt is read
		}
		if r.head != nil && c.hseq == 0 {
			c.hseq = r.head.Plugin.NewSeq()
		}
		seq, n, ok := llm.SeqID(-1), 0, false
		if !s.opts.NoPrefixCache && r.head == nil {
			seq, n, ok = s.prefix.take(s.cache, c.toks[:len(c.toks)-1])
		}
		if !ok {
			var err error
			if seq, err = s.cache.NewSeq(); err != nil {
				s.fail(r, fmt.Errorf("start request: %w", err))
				return
			}
		}
		c.seq, c.kv = seq, n
		if c.index == 0 && !r.cachedSeen {
			r.usage.CachedTokens = n
		}
	}
	r.cachedSeen = true
	s.log.Trace("admitted", "request", r.stamp, "prompt", len(r.prompt), "choices", len(r.choices), "cached", r.usage.CachedTokens)
}

// step runs one forward pass over the running sequences and handles its
// outputs.
func (s *Scheduler) step() {
	s.batch.Clear()
	s.headRows = s.headRows[:0]
	budget := s.opts.MaxBatchTokens
	// One decode row for every choice that has a token to feed.
	for _, r := range s.running {
		if r.emb != nil {
			continue
		}
		for _, c := range r.choices {
			c.row, c.feeding = -1, 0
			if c.done || c.seq < 0 || c.feed() != 1 {
				continue
			}
			c.row, c.feeding = len(s.batch.Rows), 1
			if r.head != nil {
				s.headRows = append(s.headRows, headRow{row: c.row, r: r, c: c, logits: true})
				s.batch.Add(c.toks[c.kv], c.seq, c.kv, false, true)
			} else {
				s.batch.Add(c.toks[c.kv], c.seq, c.kv, true, false)
			}
			budget--
			r.touched = true
		}
	}
	// Prompt chunks, oldest request first, in what is left.
	for _, r := range s.running {
		if r.emb != nil {
			budget = s.embedRows(r, budget)
			continue
		}
		for _, c := range r.choices {
			f := c.feed()
			if c.done || c.seq < 0 || f <= 1 || budget == 0 {
				continue
			}
			n := min(f, s.opts.PrefillChunk, budget)
			for i := range n {
				p := c.kv + i
				last := p == len(c.toks)-1
				if last {
					c.row = len(s.batch.Rows)
				}
				if r.head != nil {
					s.headRows = append(s.headRows, headRow{row: len(s.batch.Rows), r: r, c: c, logits: last})
					s.batch.Add(c.toks[p], c.seq, p, false, true)
				} else {
					s.batch.Add(c.toks[p], c.seq, p, last, false)
				}
			}
			c.feeding = n
			budget -= n
			r.touched = true
		}
	}
	if len(s.batch.Rows) == 0 {
		return
	}
	s.prepareTaps()
	if err := s.forward(s.stopCtx, s.cache, &s.batch, &s.out); err != nil {
		s.stepFailed(err)
		return
	}
	s.logitAt = slices.Grow(s.logitAt[:0], len(s.batch.Rows))[:len(s.batch.Rows)]
	for i := range s.logitAt {
		s.logitAt[i] = -1
	}
	s.runHeads()
	for _, r := range s.running {
		if r.emb != nil {
			s.embedOutputs(r)
			continue
		}
		for _, c := range r.choices {
			c.kv += c.feeding
			c.feeding = 0
		}
		s.generate(r)
	}
	s.compact()
	if err := s.roomErr; err != nil {
		s.roomErr = nil
		s.relieve(err)
	}
}

// stepFailed handles a forward pass that failed: a full cache makes room,
// any other error fails the requests of the step.
func (s *Scheduler) stepFailed(err error) {
	switch {
	case s.stopCtx.Err() != nil:
		// Close gave up waiting; the loop shuts down.
	case errors.Is(err, llm.ErrCacheFull):
		s.relieve(err)
	default:
		s.log.Error("step failed", "error", err, "rows", len(s.batch.Rows))
		s.failTouched(fmt.Errorf("decode step: %w", err))
	}
}

// relieve frees KV after a step found the cache full: a prefix-cache entry
// if there is one, else the youngest running request, which goes back to
// the queue; a request that runs alone and still does not fit fails.
func (s *Scheduler) relieve(err error) {
	if s.prefix.evict(s.cache) {
		return
	}
	var victim *request
	for _, r := range s.running {
		if victim == nil || r.stamp > victim.stamp {
			victim = r
		}
	}
	if victim == nil {
		return
	}
	if len(s.running) == 1 {
		s.fail(victim, fmt.Errorf("the KV budget of %d tokens cannot hold the request: %w", s.opts.KVTokens, err))
		s.compact()
		return
	}
	s.requeue(victim)
}

// requeue preempts a running request: it releases its sequences and puts
// it at the front of the queue, keeping everything it generated.
func (s *Scheduler) requeue(r *request) {
	if r.emb != nil {
		r.emb.preempt(s.cache)
	} else {
		for _, c := range r.choices {
			s.release(r, c)
			c.kv = 0
		}
		r.prefilled = r.generating
	}
	r.preemptions++
	s.preempted++
	r.ended = true // leaves the running list
	s.compact()
	r.ended = false
	s.hold = true
	s.mu.Lock()
	s.waiting = append(s.waiting, nil)
	copy(s.waiting[1:], s.waiting)
	s.waiting[0] = r
	s.mu.Unlock()
	s.log.Info("preempted a request for KV room", "request", r.stamp, "preemptions", r.preemptions,
		"kv_used", s.cache.Reserved(), "kv_total", s.opts.KVTokens)
}

// release frees a choice's sequence without caching it.
func (s *Scheduler) release(r *request, c *choice) {
	s.dropHeadSeq(r, c)
	if c.seq >= 0 {
		_ = s.cache.Release(c.seq)
		c.seq = -1
	}
}

// retire hands a finished choice's sequence to the prefix cache, or
// releases it.
func (s *Scheduler) retire(r *request, c *choice) {
	s.dropHeadSeq(r, c)
	if c.seq < 0 {
		return
	}
	if s.opts.NoPrefixCache {
		s.release(r, c)
		return
	}
	s.prefix.insert(s.cache, c.seq, c.toks[:c.kv:c.kv])
	c.seq = -1
}

// fail ends request r with err and releases its KV. The request must be
// removed from the running list (compact) afterwards.
func (s *Scheduler) fail(r *request, err error) {
	if r.ended {
		return
	}
	if r.emb != nil {
		r.emb.preempt(s.cache)
		r.emb.finish(err)
	} else {
		for _, c := range r.choices {
			s.release(r, c)
		}
		r.stream.push(Event{Err: err})
		r.stream.end(r.usage)
	}
	s.end(r)
}

// end marks request r as over.
func (s *Scheduler) end(r *request) {
	r.ended = true
	if r.stopAfter != nil {
		r.stopAfter()
	}
	if r.onEnd != nil {
		r.onEnd()
		r.onEnd = nil
	}
	s.hold = false
}

// failTouched fails every request the current step worked on.
func (s *Scheduler) failTouched(err error) {
	for _, r := range s.running {
		if r.touched {
			s.fail(r, err)
		}
	}
	s.compact()
}

// compact removes ended requests from the running list.
func (s *Scheduler) compact() {
	kept := s.running[:0]
	for _, r := range s.running {
		if !r.ended {
			kept = append(kept, r)
		}
	}
	clear(s.running[len(kept):])
	s.running = kept
	if len(s.running) == 0 {
		s.hold = false
	}
}

// forkSeq forks seq, evicting prefix-cache entries when the cache is full.
func (s *Scheduler) forkSeq(seq llm.SeqID) (llm.SeqID, error) {
	for {
		id, err := s.cache.Fork(seq)
		if err == nil || !errors.Is(err, llm.ErrCacheFull) || !s.prefix.evict(s.cache) {
			return id, err
		}
	}
}

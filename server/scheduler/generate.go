package scheduler

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/carryon/carryon/models/llm"
)

// generate samples the next token of every choice of r whose logits the
// step produced. When the step read the last prompt token, the extra
// choices fork the prompt's sequence first and all choices sample from the
// same logits.
func (s *Scheduler) generate(r *request) {
	if r.ended {
		return
	}
	shared := false
	if !r.prefilled && r.head == nil {
		c0 := r.choices[0]
		if c0.row < 0 {
			return // still reading the prompt
		}
		for _, c := range r.choices[1:] {
			if c.done || c.seq >= 0 {
				continue
			}
			seq, err := s.forkSeq(c0.seq)
			if err != nil {
				s.forkFailed(r, err)
				return
			}
			c.seq, c.kv = seq, c0.kv
		}
		r.prefilled = true
		for _, c := range r.choices[1:] {
			c.row = c0.row
			shared = true
		}
	}
	for _, c := range r.choices {
		if c.done || c.row < 0 {
			continue
		}
		logits := s.rowLogits(c.row)
		if shared {
			// Bias and penalties change the row in place.
			s.scratch = append(s.scratch[:0], logits...)
			logits = s.scratch
		}
		tok, err := c.sampler.Sample(logits, c.toks)
		if err != nil {
			s.fail(r, fmt.Errorf("sample choice %d: %w", c.index, err))
			return
		}
		s.accept(r, c, tok)
	}
	if r.live == 0 {
		r.stream.end(r.usage)
		s.end(r)
	}
}

// forkFailed handles a prompt that could not be forked for every choice.
// With other requests running, the forks are undone and the prompt's last
// token is taken back, so that a later step reads it again and retries,
// and the step asks for KV room; alone, the request fails.
func (s *Scheduler) forkFailed(r *request, err error) {
	for _, c := range r.choices[1:] {
		s.release(r, c)
		c.kv = 0
	}
	if !errors.Is(err, llm.ErrCacheFull) || len(s.running) == 1 {
		s.fail(r, fmt.Errorf("fork the prompt for %d choices: %w", len(r.choices), err))
		return
	}
	c0 := r.choices[0]
	c0.kv--
	if terr := s.cache.Truncate(c0.seq, c0.kv); terr != nil {
		s.fail(r, fmt.Errorf("fork the prompt: %w", terr))
		return
	}
	s.roomErr = err
}

// accept appends a sampled token to a choice, decodes its text and decides
// what to emit and whether the choice ends.
func (s *Scheduler) accept(r *request, c *choice, tok int32) {
	r.generating = true
	c.toks = append(c.toks, tok)
	c.gen++
	r.usage.CompletionTokens++
	if s.tok.IsEOG(tok) {
		s.finish(r, c, "stop", c.rest(), len(c.toks)-1)
		return
	}
	if r.logprobs {
		if chosen, top, ok := c.sampler.Logprobs(); ok {
			c.lps = append(c.lps, TokenLogprob{ID: tok, Text: s.tok.DecodeToken(tok, false), Logprob: chosen.Logprob, Top: slices.Clone(top)})
		}
	}
	text := c.dec.Add(tok)
	stops := len(r.stops) > 0
	if stops || c.gen == r.maxTokens || len(c.toks) >= s.seqCtx {
		c.held = append(c.held, text...)
	}
	if stops {
		if i := firstStop(c.held, r.stops); i >= 0 {
			s.finish(r, c, "stop", string(c.held[:i]), len(c.toks))
			return
		}
	}
	if c.gen == r.maxTokens || len(c.toks) >= s.seqCtx {
		s.finish(r, c, "length", c.rest(), len(c.toks))
		return
	}
	if !stops {
		if text != "" {
			s.emit(r, c, text, len(c.toks), "")
		}
		return
	}
	if n := len(c.held) - stopPrefix(c.held, r.stops); n > 0 {
		s.emit(r, c, string(c.held[:n]), len(c.toks), "")
		c.held = c.held[:copy(c.held, c.held[n:])]
	}
}

// rest returns the text a choice still holds back, for its last event.
func (c *choice) rest() string {
	tail := c.dec.Flush()
	if len(c.held) == 0 {
		return strings.ToValidUTF8(tail, "\uFFFD")
	}
	return string(c.held) + strings.ToValidUTF8(tail, "\uFFFD")
}

// emit sends the event that decides the choice's tokens up to toks[upto].
func (s *Scheduler) emit(r *request, c *choice, text string, upto int, finish string) {
	ev := Event{Choice: c.index, Text: text, Tokens: c.toks[c.sent:upto:upto], Finish: finish}
	if r.logprobs {
		ev.Logprobs = c.lps
		c.lps = nil
	}
	c.sent = upto
	r.stream.push(ev)
}

// finish ends a choice with its last event and retires its sequence.
func (s *Scheduler) finish(r *request, c *choice, reason, text string, upto int) {
	s.emit(r, c, text, upto, reason)
	c.done = true
	c.held = nil
	r.live--
	s.retire(r, c)
}

// firstStop returns the index in text where the earliest stop string
// starts, or -1.
func firstStop(text []byte, stops []string) int {
	at := -1
	for _, stop := range stops {
		if i := bytes.Index(text, []byte(stop)); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	return at
}

// stopPrefix returns the length of the longest end of text that a stop
// string starts with: text that has to wait for the next tokens.
func stopPrefix(text []byte, stops []string) int {
	best := 0
	for _, stop := range stops {
		for k := min(len(stop)-1, len(text)); k > best; k-- {
			if string(text[len(text)-k:]) == stop[:k] {
				best = k
				break
			}
		}
	}
	return best
}

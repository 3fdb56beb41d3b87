package scheduler

import (
	"context"
	"errors"
	"fmt"

	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/sample"
	"github.com/carryon/carryon/models/tokenizer"
	"github.com/carryon/carryon/sdk"
)

// Request is one generation request.
type Request struct {
	// Prompt is the templated, tokenized prompt (with BOS where the
	// tokenizer wants it). It must not be empty, and it must leave room
	// for one generated token in the sequence context.
	Prompt []int32
	// MaxTokens bounds the generated tokens of each choice; 0 generates
	// until the context is full.
	MaxTokens int
	// N is the number of choices (0 means 1), at most Options.MaxSequences.
	// The choices share the prompt's KV: it is read once and forked.
	N int
	// Params are the sampling settings (start from sample.DefaultParams;
	// the zero value is not valid). When Params.Seed is not negative,
	// choice i samples with Seed+i. Params.Logprobs and TopLogprobs are
	// taken from the fields below when those ask for more.
	Params sample.Params
	// Stop lists strings that end a choice; they must not be empty. The
	// text before the first match is emitted, the stop string never.
	Stop []string
	// Logprobs asks for the log-probability of every generated token,
	// and TopLogprobs for that many alternatives at each position.
	Logprobs    bool
	TopLogprobs int
	// Head, when not nil, runs every token of the request through a
	// carry-on head: the sampled logits are the LM head over x + delta. A
	// request with a head reads its whole prompt itself (no prefix-cache
	// reuse) and each of its choices reads the prompt on its own sequence
	// instead of forking, because the head keeps state per sequence and
	// has no fork. A failed head call fails the request.
	Head *Head
	// OnEnd, when not nil, is called once when the request has ended in
	// the scheduler (finished, failed or cancelled), after its last head
	// call. It is called only when Submit returned no error.
	OnEnd func()
}

// request is a Submit or Embed call inside the scheduler.
type request struct {
	ctx       context.Context
	stopAfter func() bool // unregisters the wake-up on ctx
	stamp     uint64      // admission order; the youngest is the largest
	touched   bool        // the current step works on it
	ended     bool        // finished or failed; leaves the running list
	prefilled bool        // the prompt has been read (choices forked)

	// Generation.
	prompt      []int32
	maxTokens   int
	stops       []string
	logprobs    bool
	choices     []*choice
	live        int // choices not finished
	stream      *Stream
	usage       Usage
	cachedSeen  bool // CachedTokens was set at the first admission
	generating  bool // at least one token was generated
	preemptions int

	head  *Head
	onEnd func()

	// Embedding (nil for generation).
	emb *embedJob
}

// choice is one sequence of a generation request.
type choice struct {
	index   int
	seq     llm.SeqID // -1 while it holds no sequence
	hseq    sdk.SeqID // the head's sequence, 0 while it has none
	kv      int       // leading tokens of toks held in the cache
	feeding int       // tokens of toks fed in the current step
	row     int       // batch row of this step's logits, or -1
	toks    []int32   // prompt, then generated tokens
	sent    int       // tokens of toks already given to events
	gen     int
	sampler *sample.Sampler
	dec     *tokenizer.StreamDecoder
	held    []byte // decoded text not yet emitted
	lps     []TokenLogprob
	done    bool
}

// Submit validates a request and queues it. It returns at once: with
// ErrQueueFull when the queue is full, with an error wrapping
// ErrContextLength when the prompt leaves no room to generate, with
// ErrClosed after Close, and with a plain error for other bad input. The
// request runs until all its choices finish or ctx is done.
func (s *Scheduler) Submit(ctx context.Context, r *Request) (*Stream, error) {
	req, err := s.newRequest(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	req.stopAfter = context.AfterFunc(ctx, s.poke)
	if err := s.enqueue(req); err != nil {
		req.stopAfter()
		return nil, fmt.Errorf("submit: %w", err)
	}
	go req.stream.run()
	s.poke()
	return req.stream, nil
}

// newRequest checks a request and prepares its choices.
func (s *Scheduler) newRequest(ctx context.Context, r *Request) (*request, error) {
	if r == nil {
		return nil, errors.New("nil request")
	}
	if ctx == nil {
		return nil, errors.New("nil context")
	}
	if len(r.Prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if err := s.checkTokens(r.Prompt); err != nil {
		return nil, fmt.Errorf("prompt: %w", err)
	}
	if len(r.Prompt)+1 > s.seqCtx {
		return nil, fmt.Errorf("prompt of %d tokens plus one generated token exceeds the context of %d tokens: %w",
			len(r.Prompt), s.seqCtx, ErrContextLength)
	}
	if r.MaxTokens < 0 {
		return nil, fmt.Errorf("max tokens %d is negative", r.MaxTokens)
	}
	n := r.N
	if n == 0 {
		n = 1
	}
	if n < 0 || n > s.opts.MaxSequences {
		return nil, fmt.Errorf("n %d is outside [1, %d]", r.N, s.opts.MaxSequences)
	}
	for i, stop := range r.Stop {
		if stop == "" {
			return nil, fmt.Errorf("stop string %d is empty", i)
		}
	}
	if err := checkHead(r.Head); err != nil {
		return nil, err
	}
	p := r.Params
	p.Logprobs = p.Logprobs || r.Logprobs
	p.TopLogprobs = max(p.TopLogprobs, r.TopLogprobs)
	if r.TopLogprobs < 0 {
		return nil, fmt.Errorf("top logprobs %d is negative", r.TopLogprobs)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("sampling parameters: %w", err)
	}
	for id := range p.LogitBias {
		if int(id) >= s.vocab {
			return nil, fmt.Errorf("logit bias names token %d outside the vocabulary of %d", id, s.vocab)
		}
	}
	req := &request{
		ctx:       ctx,
		prompt:    append([]int32(nil), r.Prompt...),
		maxTokens: r.MaxTokens,
		stops:     append([]string(nil), r.Stop...),
		logprobs:  p.Logprobs,
		choices:   make([]*choice, n),
		live:      n,
		stream:    newStream(ctx),
		usage:     Usage{PromptTokens: len(r.Prompt)},
		head:      r.Head,
		onEnd:     r.OnEnd,
	}
	// Room for the prompt and the tokens likely to follow, within reason.
	room := len(r.Prompt) + min(s.seqCtx-len(r.Prompt), 1024)
	if r.MaxTokens > 0 {
		room = len(r.Prompt) + min(r.MaxTokens, s.seqCtx-len(r.Prompt))
	}
	for i := range req.choices {
		cp := p
		if cp.Seed >= 0 {
			cp.Seed += int64(i)
		}
		smp, err := sample.New(cp)
		if err != nil {
			return nil, fmt.Errorf("sampling parameters: %w", err)
		}
		toks := make([]int32, len(r.Prompt), room+1)
		copy(toks, r.Prompt)
		req.choices[i] = &choice{
			index:   i,
			seq:     -1,
			row:     -1,
			toks:    toks,
			sent:    len(r.Prompt),
			sampler: smp,
			dec:     s.tok.NewStreamDecoder(false),
		}
	}
	return req, nil
}

// checkTokens reports the first token outside the vocabulary.
func (s *Scheduler) checkTokens(toks []int32) error {
	for i, t := range toks {
		if t < 0 || int(t) >= s.vocab {
			return fmt.Errorf("token %d at position %d is outside the vocabulary of %d", t, i, s.vocab)
		}
	}
	return nil
}

// feed returns the number of tokens of c that are not in the cache yet.
func (c *choice) feed() int { return len(c.toks) - c.kv }

package scheduler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/tokenizer"
	"github.com/carryon/carryon/sdk"
)

var (
	// ErrQueueFull is returned by Submit and Embed when Options.MaxQueue
	// requests are already waiting.
	ErrQueueFull = errors.New("scheduler queue is full")
	// ErrContextLength is wrapped by the errors for inputs that do not
	// fit in one sequence's context; the message gives the numbers.
	ErrContextLength = errors.New("context length exceeded")
	// ErrClosed is returned for work submitted after Close, and is the
	// error of the requests that Close cancels.
	ErrClosed = errors.New("scheduler closed")
)

// Defaults of the Options fields left zero.
const (
	DefaultMaxSequences   = 16
	DefaultMaxBatchTokens = 512
	DefaultPrefillChunk   = 256
	DefaultMaxQueue       = 256
	// DefaultKVBytes caps the default KV budget: MaxSequences full
	// contexts, but no more positions than this many bytes of keys and
	// values hold (and never less than one full context).
	DefaultKVBytes = 4 << 30
)

// decodeHeadroom is the number of positions beyond its prompt that
// admission wants free for each choice, so that a request admitted into a
// nearly full cache can generate a little before it needs more room.
const decodeHeadroom = 32

// Options configure a Scheduler. The zero value of every field selects its
// default.
type Options struct {
	// MaxSequences bounds the sequences that run at once (a request with
	// N choices uses N); default 16.
	MaxSequences int
	// MaxBatchTokens bounds the rows of one forward step, decode rows and
	// prefill chunks together; default max(512, MaxSequences). It may not
	// be less than MaxSequences.
	MaxBatchTokens int
	// PrefillChunk bounds the prompt tokens one sequence reads in one
	// step; default 256.
	PrefillChunk int
	// MaxQueue bounds the requests waiting for admission; Submit and
	// Embed fail with ErrQueueFull beyond it. Default 256.
	MaxQueue int
	// KVTokens is the KV budget: the positions held over all sequences,
	// the prefix cache included. The default is MaxSequences times the
	// model's context, capped at DefaultKVBytes of keys and values but
	// at least one context. One sequence holds at most
	// min(model context, KVTokens) positions.
	KVTokens int
	// KVF32 keeps keys and values in F32 instead of the default F16.
	KVF32 bool
	// NoPrefixCache turns off the reuse of earlier requests' KV for
	// common prompt prefixes (on by default).
	NoPrefixCache bool
	// Logger receives the scheduler's log lines; nil discards them.
	Logger hclog.Logger
}

// Stats is a snapshot of the scheduler's load.
type Stats struct {
	// Queued counts the requests waiting for admission (Submit and Embed
	// calls, preempted requests included).
	Queued int
	// Running counts the admitted requests that have not ended.
	Running int
	// KVUsedTokens is the KV storage held, in positions, by running
	// sequences and the prefix cache together (llm.Cache.Reserved: storage
	// grows in chunks, so it can exceed the tokens stored).
	KVUsedTokens int
	// KVTotalTokens is the KV budget, Options.KVTokens.
	KVTotalTokens int
	// PrefixCacheTokens is the number of tokens whose KV the prefix cache
	// holds.
	PrefixCacheTokens int
	// Preemptions counts the requests sent back to the queue for KV room
	// since New.
	Preemptions int
	// HeadSteps counts the steps that called head plugins since New, and
	// HeadTime is the wall time those calls took (the plugin calls of one
	// step run in parallel and count once), the merge and LM head over
	// the head rows included.
	HeadSteps int
	HeadTime  time.Duration
}

// Scheduler batches the requests of one model. Its methods are safe for
// concurrent use.
type Scheduler struct {
	model  *llm.Model
	tok    *tokenizer.Tokenizer
	opts   Options
	log    hclog.Logger
	vocab  int
	seqCtx int // positions one sequence may hold

	// forward runs a batch; it is the model's Forward except in tests
	// that inject failures.
	forward func(context.Context, *llm.Cache, *llm.Batch, *llm.Output) error

	mu      sync.Mutex
	waiting []*request // admission queue, oldest first
	closing bool
	stats   Stats // published by the loop after every step

	wake    chan struct{} // capacity 1: something changed for the loop
	stopCtx context.Context
	stop    context.CancelFunc // hard stop: cancel everything
	done    chan struct{}      // closed when the loop has returned

	// Owned by the loop goroutine.
	cache     *llm.Cache
	running   []*request // admitted, in admission order
	prefix    prefixCache
	stamp     uint64 // admission counter
	hold      bool   // no admission until a running request ends (after a preemption)
	preempted int
	roomErr   error // a step's outputs found the cache full: relieve after it
	batch     llm.Batch
	out       llm.Output
	scratch   []float32 // a copy of a logits row for the choices that share it

	// Carry-on heads of the current step.
	headRows   []headRow
	headHidden []float32 // x + delta of the head rows that sample
	headLogits []float32 // their logits
	logitAt    []int     // by batch row: index into headLogits, or -1
	headDrops  map[HeadPlugin][]sdk.SeqID
	headSteps  int
	headTime   time.Duration
}

// New returns a Scheduler for a loaded model and its tokenizer, and starts
// its loop goroutine. The model must outlive the Scheduler.
func New(m *llm.Model, tok *tokenizer.Tokenizer, o Options) (*Scheduler, error) {
	s, err := newScheduler(m, tok, o)
	if err != nil {
		return nil, err
	}
	go s.loop()
	return s, nil
}

// newScheduler builds a Scheduler without starting its loop.
func newScheduler(m *llm.Model, tok *tokenizer.Tokenizer, o Options) (*Scheduler, error) {
	if m == nil || tok == nil {
		return nil, errors.New("new scheduler: a model and a tokenizer are required")
	}
	cfg := m.Config()
	if tok.VocabSize() > cfg.Vocab {
		return nil, fmt.Errorf("new scheduler: the tokenizer has %d tokens but the model only %d", tok.VocabSize(), cfg.Vocab)
	}
	if o.MaxSequences < 0 || o.MaxBatchTokens < 0 || o.PrefillChunk < 0 || o.MaxQueue < 0 || o.KVTokens < 0 {
		return nil, fmt.Errorf("new scheduler: negative limit in options %+v", o)
	}
	if o.MaxSequences == 0 {
		o.MaxSequences = DefaultMaxSequences
	}
	if o.MaxBatchTokens == 0 {
		o.MaxBatchTokens = max(DefaultMaxBatchTokens, o.MaxSequences)
	}
	if o.MaxBatchTokens < o.MaxSequences {
		return nil, fmt.Errorf("new scheduler: MaxBatchTokens %d is less than MaxSequences %d, leaving no room for one decode row per sequence", o.MaxBatchTokens, o.MaxSequences)
	}
	if o.PrefillChunk == 0 {
		o.PrefillChunk = DefaultPrefillChunk
	}
	if o.MaxQueue == 0 {
		o.MaxQueue = DefaultMaxQueue
	}
	kvType := ggml.TypeF16
	if o.KVF32 {
		kvType = ggml.TypeF32
	}
	if o.KVTokens == 0 {
		perToken := cfg.Layers * cfg.KVHeads * (cfg.HeadDim + cfg.ValueDim) * kvType.TypeSize()
		o.KVTokens = o.MaxSequences * cfg.Context
		if perToken > 0 {
			o.KVTokens = min(o.KVTokens, max(DefaultKVBytes/perToken, cfg.Context))
		}
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	s := &Scheduler{
		model:  m,
		tok:    tok,
		opts:   o,
		log:    o.Logger,
		vocab:  cfg.Vocab,
		seqCtx: min(cfg.Context, o.KVTokens),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	s.forward = m.Forward
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	// Running sequences and prefix-cache entries each get MaxSequences
	// slots; the KV budget is what really bounds them.
	cache, err := m.NewCache(llm.CacheOptions{
		Type:         kvType,
		MaxSequences: 2 * o.MaxSequences,
		MaxTokens:    o.KVTokens,
		SeqContext:   s.seqCtx,
	})
	if err != nil {
		return nil, fmt.Errorf("new scheduler: %w", err)
	}
	s.cache = cache
	s.prefix.max = o.MaxSequences
	s.stats.KVTotalTokens = o.KVTokens
	return s, nil
}

// Options returns the scheduler's settings with the defaults filled in.
func (s *Scheduler) Options() Options { return s.opts }

// SeqContext returns the most positions one sequence may hold: the longest
// prompt is one token less.
func (s *Scheduler) SeqContext() int { return s.seqCtx }

// Stats returns a snapshot of the scheduler's load. The running and KV
// figures are those after the latest step.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.waiting)
	return st
}

// Close stops accepting work (Submit and Embed then fail with ErrClosed)
// and lets the queued and running requests finish. When ctx is done first,
// the remaining requests fail with ErrClosed and Close returns ctx's error
// once the loop has stopped. The KV cache is released in both cases. Close
// may be called more than once.
func (s *Scheduler) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.poke()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stop()
		<-s.done
		return fmt.Errorf("close scheduler: %w", ctx.Err())
	}
}

// poke wakes the loop.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// enqueue appends a request to the admission queue.
func (s *Scheduler) enqueue(r *request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrClosed
	}
	if len(s.waiting) >= s.opts.MaxQueue {
		return fmt.Errorf("%d requests are waiting: %w", len(s.waiting), ErrQueueFull)
	}
	s.waiting = append(s.waiting, r)
	return nil
}

// loop runs steps until Close.
func (s *Scheduler) loop() {
	defer close(s.done)
	for {
		if s.stopCtx.Err() != nil {
			s.shutdown(ErrClosed)
			return
		}
		s.iterate()
		s.publish()
		if len(s.running) > 0 {
			continue
		}
		s.mu.Lock()
		idle, closing := len(s.waiting) == 0, s.closing
		s.mu.Unlock()
		if idle && closing {
			s.shutdown(ErrClosed)
			return
		}
		if idle {
			select {
			case <-s.wake:
			case <-s.stopCtx.Done():
			}
		}
	}
}

// iterate runs one step of the loop: drop cancelled requests, admit
// waiting ones, run a batch and handle its outputs. A panic fails the
// requests the step touched.
func (s *Scheduler) iterate() {
	for _, r := range s.running {
		r.touched = false
	}
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("scheduler step panicked: %v", p)
			s.log.Error("step panicked", "panic", p, "stack", string(debug.Stack()))
			s.failTouched(err)
		}
	}()
	defer s.flushHeadDrops()
	s.dropCancelled()
	s.admit()
	s.step()
}

// publish records the figures that Stats reports.
func (s *Scheduler) publish() {
	s.mu.Lock()
	s.stats.Running = len(s.running)
	s.stats.KVUsedTokens = s.cache.Reserved()
	s.stats.PrefixCacheTokens = s.prefix.tokens()
	s.stats.Preemptions = s.preempted
	s.stats.HeadSteps, s.stats.HeadTime = s.headSteps, s.headTime
	s.mu.Unlock()
}

// shutdown fails every request with err, releases the cache and publishes
// the final figures.
func (s *Scheduler) shutdown(err error) {
	for _, r := range s.running {
		s.fail(r, err)
	}
	s.running = s.running[:0]
	s.mu.Lock()
	waiting := s.waiting
	s.waiting = nil
	s.closing = true
	s.mu.Unlock()
	for _, r := range waiting {
		s.fail(r, err)
	}
	s.prefix.clear(s.cache)
	s.publish()
	s.stop()
}

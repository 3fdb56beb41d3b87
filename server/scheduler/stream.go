package scheduler

import (
	"context"
	"sync"

	"github.com/carryon/carryon/models/sample"
)

// TokenLogprob is the log-probability of one generated token and of the
// most likely alternatives at its position (see package sample for the
// distribution they come from).
type TokenLogprob struct {
	ID int32
	// Text is the token's own text (tokenizer.DecodeToken), which may be
	// part of a UTF-8 character.
	Text    string
	Logprob float32
	// Top lists Request.TopLogprobs tokens, most likely first.
	Top []sample.TokenLogprob
}

// Event is a piece of one choice's output, or the failure of the request.
type Event struct {
	Choice int
	// Text is new text: whole UTF-8 characters, with stop strings held
	// back and cut.
	Text string
	// Tokens are the generated tokens whose text this event decides (see
	// the package documentation); the slice must not be modified.
	Tokens []int32
	// Logprobs has one entry per token of Tokens when Request.Logprobs is
	// set.
	Logprobs []TokenLogprob
	// Finish is "" while the choice runs, and "stop" (an end-of-generation
	// token or a stop string) or "length" (MaxTokens or the context) on
	// its last event.
	Finish string
	// Err is set on the one event that reports the failure of the whole
	// request; the stream closes after it.
	Err error
}

// Usage counts a request's tokens.
type Usage struct {
	// PromptTokens is the length of the prompt (for Embed, of all inputs).
	PromptTokens int
	// CompletionTokens counts the generated tokens of all choices,
	// end-of-generation tokens included.
	CompletionTokens int
	// CachedTokens counts the prompt tokens whose KV came from the prefix
	// cache.
	CachedTokens int
}

// Stream delivers the events of one submitted request.
type Stream struct {
	ctx    context.Context
	events chan Event
	notify chan struct{} // capacity 1: the queue or ended changed

	mu    sync.Mutex
	queue []Event
	ended bool
	usage Usage
}

func newStream(ctx context.Context) *Stream {
	return &Stream{ctx: ctx, events: make(chan Event, 1), notify: make(chan struct{}, 1)}
}

// Events returns the channel of the request's events. It is closed after
// every choice has finished, or after an event with Err. Read it until it
// closes, or cancel the context given to Submit: the request then leaves
// the batch within a step or two, its KV is released, and the channel is
// closed after an event whose Err wraps the context's error, if the
// channel has room for it; text generated after the cancellation is
// dropped.
func (st *Stream) Events() <-chan Event { return st.events }

// Usage returns the request's token counts. It is final once Events is
// closed.
func (st *Stream) Usage() Usage {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.usage
}

// push queues an event for delivery. It never blocks.
func (st *Stream) push(ev Event) {
	st.mu.Lock()
	st.queue = append(st.queue, ev)
	st.mu.Unlock()
	st.signal()
}

// end records the final usage; no event follows.
func (st *Stream) end(u Usage) {
	st.mu.Lock()
	st.usage = u
	st.ended = true
	st.mu.Unlock()
	st.signal()
}

func (st *Stream) signal() {
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// run moves queued events to the channel until the request has ended and
// everything is delivered, or until the reader's context is done, and then
// closes the channel. The scheduler's loop therefore never waits for a slow
// reader.
func (st *Stream) run() {
	defer close(st.events)
	var spare []Event
	gone := false // the reader's context is done
	for {
		st.mu.Lock()
		batch, ended := st.queue, st.ended
		st.queue = spare[:0]
		st.mu.Unlock()
		for i, ev := range batch {
			if !gone {
				select {
				case st.events <- ev:
				case <-st.ctx.Done():
					gone = true
				}
			}
			if gone && ev.Err != nil {
				// Only the error is still worth delivering, and only
				// into the channel's buffer: nobody may be reading.
				select {
				case st.events <- ev:
				default:
				}
			}
			batch[i] = Event{}
		}
		spare = batch
		if ended && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			<-st.notify
		}
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/sdk/host"
	"github.com/carryon/carryon/server/openai"
	"github.com/carryon/carryon/server/scheduler"
)

// errorType returns the OpenAI error type of a status.
func errorType(status int) string {
	switch {
	case status == http.StatusServiceUnavailable:
		return openai.TypeUnavailable
	case status >= 500:
		return openai.TypeServer
	}
	return openai.TypeInvalidRequest
}

// generation is a running generation request: the streams of its prompts
// (a text completion may have several, each with N choices) merged into one
// channel of events whose Choice is the index over all prompts.
type generation struct {
	model   *Model
	ctx     context.Context
	cancel  context.CancelFunc
	streams []*scheduler.Stream
	events  <-chan scheduler.Event
	n       int // choices per prompt
	start   time.Time
	metrics *metrics

	first     time.Time   // first token of any choice
	lastToken []time.Time // last token of each choice

	// headVersion is the head version serving the request ("" for a base).
	headVersion string
	// store, when not nil, is the sample to log once the generation ends.
	store *pendingSample
}

// startGeneration submits one request per prompt, all with the settings
// of req. On an error the requests already submitted are cancelled.
func (s *Server) startGeneration(m *Model, prompts [][]int32, req scheduler.Request, start time.Time) (*generation, error) {
	var onEnd func()
	var headVersion string
	if m.head != "" {
		base, head, done, err := s.heads.acquire(m.head, len(prompts))
		if err != nil {
			return nil, err
		}
		hm := *base
		hm.Name, hm.head, hm.headOf = m.head, m.head, base.Name
		m = &hm
		req.Head, onEnd = head, done
		_, headVersion, _ = strings.Cut(head.ID, "@")
	}
	ctx, cancel := context.WithCancel(s.ctx)
	n := max(req.N, 1)
	g := &generation{model: m, ctx: ctx, cancel: cancel, n: n, start: start, metrics: s.metrics,
		lastToken: make([]time.Time, n*len(prompts)), headVersion: headVersion}
	for _, p := range prompts {
		r := req
		r.Prompt = p
		r.OnEnd = onEnd
		st, err := m.sched.Submit(ctx, &r)
		if err != nil {
			cancel()
			for range len(prompts) - len(g.streams) {
				if onEnd != nil {
					onEnd()
				}
			}
			return nil, err
		}
		g.streams = append(g.streams, st)
	}
	if len(g.streams) == 1 {
		g.events = g.streams[0].Events()
		return g, nil
	}
	merged := make(chan scheduler.Event, len(g.streams))
	var wg sync.WaitGroup
	for i, st := range g.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range st.Events() {
				ev.Choice += i * n
				select {
				case merged <- ev:
				case <-ctx.Done():
					// The reader is gone; the stream closes on its own.
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(merged)
	}()
	g.events = merged
	return g, nil
}

// choices returns the number of choices over all prompts.
func (g *generation) choices() int { return len(g.lastToken) }

// observe records the timing of an event for the latency histograms.
func (g *generation) observe(ev scheduler.Event) {
	if len(ev.Tokens) == 0 || ev.Choice < 0 || ev.Choice >= len(g.lastToken) {
		return
	}
	now := time.Now()
	name := g.model.Name
	if g.first.IsZero() {
		g.first = now
		g.metrics.ttft.WithLabelValues(name).Observe(now.Sub(g.start).Seconds())
	}
	if last := g.lastToken[ev.Choice]; !last.IsZero() {
		per := now.Sub(last).Seconds() / float64(len(ev.Tokens))
		h := g.metrics.interToken.WithLabelValues(name)
		for range ev.Tokens {
			h.Observe(per)
		}
	}
	g.lastToken[ev.Choice] = now
}

// usage sums the token counts of the prompts' streams; it is final once
// the events channel has closed.
func (g *generation) usage() scheduler.Usage {
	var u scheduler.Usage
	for _, st := range g.streams {
		su := st.Usage()
		u.PromptTokens += su.PromptTokens
		u.CompletionTokens += su.CompletionTokens
		u.CachedTokens += su.CachedTokens
	}
	return u
}

// finish counts the request's tokens and releases its context.
func (g *generation) finish() {
	u := g.usage()
	name := g.model.Name
	g.metrics.promptTokens.WithLabelValues(name).Add(float64(u.PromptTokens))
	g.metrics.outputTokens.WithLabelValues(name).Add(float64(u.CompletionTokens))
	g.metrics.cachedTokens.WithLabelValues(name).Add(float64(u.CachedTokens))
	g.cancel()
}

// choiceResult accumulates one choice of a non-streaming request.
type choiceResult struct {
	text     strings.Builder
	logprobs []scheduler.TokenLogprob
	tokens   []int32
	finish   string
}

// collect reads every event of a non-streaming request. It returns the
// request's error event, if any.
func (g *generation) collect() ([]choiceResult, error) {
	res := make([]choiceResult, g.choices())
	for ev := range g.events {
		if ev.Err != nil {
			return res, ev.Err
		}
		g.observe(ev)
		if ev.Choice < 0 || ev.Choice >= len(res) {
			continue
		}
		r := &res[ev.Choice]
		r.text.WriteString(ev.Text)
		r.tokens = append(r.tokens, ev.Tokens...)
		// As in streams, log-probabilities come with text: the tokens of a
		// stop string, whose text is cut, are not reported.
		if ev.Text != "" {
			r.logprobs = append(r.logprobs, ev.Logprobs...)
		}
		if ev.Finish != "" {
			r.finish = ev.Finish
		}
	}
	return res, nil
}

// watchPeer cancels the generation when the client of a non-streaming
// request closes its connection. It checks a few times a second and stops
// when the returned function is called.
func (g *generation) watchPeer(c *fasthttp.RequestCtx) (stop func()) {
	conn := c.Conn()
	if conn == nil {
		return func() {}
	}
	if _, ok := peerGone(conn); !ok {
		return func() {}
	}
	// The read deadline fasthttp set for reading the request would make
	// the peeks fail once it passes; the handler owns the connection now.
	_ = c.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-g.ctx.Done():
				return
			case <-t.C:
				if gone, ok := peerGone(conn); ok && gone {
					g.cancel()
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// generationError turns an error from Submit or a stream into an API
// error. param names the request field that holds the prompt.
func generationError(m *Model, err error, param string) *openai.Error {
	var he *headError
	switch {
	case errors.As(err, &he):
		return openai.NewError(he.status, errorType(he.status), he.code, "", he.Error()+".")
	case errors.Is(err, host.ErrExited), errors.Is(err, errPluginDown), errors.Is(err, host.ErrUnavailable):
		return openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
			fmt.Sprintf("The head plugin failed: %v.", err))
	case errors.Is(err, scheduler.ErrQueueFull):
		return openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, openai.CodeQueueFull, "",
			fmt.Sprintf("The server is busy: the queue of model %s is full. Retry shortly.", m.Name))
	case errors.Is(err, scheduler.ErrClosed):
		return openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
			"The server is shutting down.")
	case errors.Is(err, scheduler.ErrContextLength):
		return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeContextLengthExceeded, param,
			fmt.Sprintf("This model's maximum context length is %d tokens: %v.", m.seqContext, err))
	case errors.Is(err, llm.ErrCacheFull):
		return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeContextLengthExceeded, param,
			fmt.Sprintf("The request needs more KV cache than the server has for model %s (%v); ask for fewer choices or tokens.", m.Name, err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return openai.NewError(499, openai.TypeInvalidRequest, "request_cancelled", "", "The request was cancelled.")
	}
	return openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeGenerationFailed, "",
		fmt.Sprintf("Generation failed: %v.", err))
}

// submitError turns an error of Submit into an API error: besides the
// errors of generationError, Submit reports bad requests as plain errors.
func submitError(m *Model, err error, param string) *openai.Error {
	var he *headError
	if errors.As(err, &he) || errors.Is(err, scheduler.ErrQueueFull) || errors.Is(err, scheduler.ErrClosed) ||
		errors.Is(err, scheduler.ErrContextLength) || errors.Is(err, llm.ErrCacheFull) {
		return generationError(m, err, param)
	}
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeInvalidValue, "",
		fmt.Sprintf("Invalid request: %v.", err))
}

// checkContext fails a prompt that leaves no room to generate in the
// model's context, with OpenAI's message.
func checkContext(m *Model, promptLen int, param, what string) *openai.Error {
	if promptLen+1 <= m.seqContext {
		return nil
	}
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeContextLengthExceeded, param,
		fmt.Sprintf("This model's maximum context length is %d tokens. However, your %s resulted in %d tokens, which leaves no room for a completion. Please reduce the length of the %s.",
			m.seqContext, what, promptLen, what))
}

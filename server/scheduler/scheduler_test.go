package scheduler

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/sample"
	"github.com/carryon/carryon/models/tokenizer"
)

// TestBatchedEqualsUnbatched submits greedy requests of different prompt
// lengths together and one at a time, and compares both with decoding on
// the model directly.
func TestBatchedEqualsUnbatched(t *testing.T) {
	checkGoroutines(t)
	m, tok := tinyModel(t, tinySpec())
	ps := prompts(3, 9, 17, 40, 70, 5)
	const maxTokens = 24
	want := make([][]int32, len(ps))
	for i, p := range ps {
		want[i] = stripEOG(tok, reference(t, m, tok, p, maxTokens))
	}

	alone := start(t, m, tok, Options{NoPrefixCache: true})
	for i, p := range ps {
		res := run(t, alone, &Request{Prompt: p, MaxTokens: maxTokens, Params: greedy()})
		if res.err != nil {
			t.Fatal(res.err)
		}
		if !slices.Equal(res.tokens[0], want[i]) {
			t.Errorf("prompt %d alone: got %v, want %v", i, res.tokens[0], want[i])
		}
	}

	together := start(t, m, tok, Options{NoPrefixCache: true, MaxSequences: 4})
	streams := make([]*Stream, len(ps))
	for i, p := range ps {
		st, err := together.Submit(context.Background(), &Request{Prompt: p, MaxTokens: maxTokens, Params: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = st
	}
	for i, st := range streams {
		res := collect(t, st, 1)
		if res.err != nil {
			t.Fatal(res.err)
		}
		if !slices.Equal(res.tokens[0], want[i]) {
			t.Errorf("prompt %d batched: got %v, want %v", i, res.tokens[0], want[i])
		}
		if res.usage.PromptTokens != len(ps[i]) || res.usage.CompletionTokens < len(want[i]) {
			t.Errorf("prompt %d: usage %+v", i, res.usage)
		}
		if want := streamText(tok, res.tokens[0]); res.text[0] != want {
			t.Errorf("prompt %d: streamed text %q, want %q", i, res.text[0], want)
		}
	}
}

// TestChunkedPrefill checks that reading prompts a few tokens per step,
// with a small step budget shared by several requests, gives the output
// of one-shot prefill.
func TestChunkedPrefill(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	ps := prompts(50, 33, 8)
	oneShot := start(t, m, tok, Options{NoPrefixCache: true})
	chunked := start(t, m, tok, Options{NoPrefixCache: true, MaxSequences: 3, MaxBatchTokens: 8, PrefillChunk: 5})
	var wg sync.WaitGroup
	got := make([]result, len(ps))
	for i, p := range ps {
		wg.Add(1)
		st, err := chunked.Submit(context.Background(), &Request{Prompt: p, MaxTokens: 16, Params: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer wg.Done()
			got[i] = collect(t, st, 1)
		}()
	}
	wg.Wait()
	for i, p := range ps {
		want := run(t, oneShot, &Request{Prompt: p, MaxTokens: 16, Params: greedy()})
		if got[i].err != nil || want.err != nil {
			t.Fatal(got[i].err, want.err)
		}
		if !slices.Equal(got[i].tokens[0], want.tokens[0]) || got[i].text[0] != want.text[0] {
			t.Errorf("prompt %d: chunked %v, one-shot %v", i, got[i].tokens[0], want.tokens[0])
		}
	}
}

// TestChoices checks n=2: seeded runs repeat, the choices differ at
// temperature 1, and choice i samples as a single request with Seed+i.
func TestChoices(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	s := start(t, m, tok, Options{})
	p := greedy()
	p.Temperature, p.TopK, p.TopP, p.MinP, p.Seed = 1, 0, 1, 0, 42
	req := &Request{Prompt: prompts(12)[0], MaxTokens: 20, N: 2, Params: p}
	a, b := run(t, s, req), run(t, s, req)
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	for i := range 2 {
		if len(a.tokens[i]) == 0 || !slices.Equal(a.tokens[i], b.tokens[i]) {
			t.Errorf("choice %d not reproducible: %v vs %v", i, a.tokens[i], b.tokens[i])
		}
	}
	if slices.Equal(a.tokens[0], a.tokens[1]) {
		t.Errorf("both choices gave %v", a.tokens[0])
	}
	for i := range 2 {
		single := p
		single.Seed += int64(i)
		one := run(t, s, &Request{Prompt: req.Prompt, MaxTokens: 20, Params: single})
		if !slices.Equal(one.tokens[0], a.tokens[i]) {
			t.Errorf("choice %d: %v, single request with seed %d: %v", i, a.tokens[i], single.Seed, one.tokens[0])
		}
	}
	if a.usage.PromptTokens != len(req.Prompt) || a.usage.CompletionTokens != len(a.tokens[0])+len(a.tokens[1]) {
		t.Errorf("usage %+v for %d+%d tokens", a.usage, len(a.tokens[0]), len(a.tokens[1]))
	}
}

// TestStopStringSynthetic takes a piece of greedy output that spans token
// boundaries and uses it as a stop string: the text before it comes out,
// the stop string does not.
func TestStopStringSynthetic(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	s := start(t, m, tok, Options{})
	prompt := prompts(10)[0]
	ban := greedy()
	ban.LogitBias = map[int32]float32{tok.EOS(): float32(negInf())}
	full := run(t, s, &Request{Prompt: prompt, MaxTokens: 30, Params: ban})
	if full.err != nil || full.finish[0] != "length" {
		t.Fatalf("full run: %v %q", full.err, full.finish[0])
	}
	text := full.text[0]
	// A stop string from the middle of the text that is not a single
	// token's text.
	var pieces []string
	for _, id := range full.tokens[0] {
		pieces = append(pieces, tok.DecodeToken(id, false))
	}
	start, n := 0, 0
	for i := 0; i+2 < len(pieces); i++ {
		if i >= 5 && len(pieces[i]) > 0 && len(pieces[i+1]) > 0 {
			start, n = len(strings.Join(pieces[:i], ""))-1, len(pieces[i])+2
			break
		}
	}
	if n == 0 || start+n > len(text) {
		t.Fatalf("no stop string found in %q", text)
	}
	stop := text[start : start+n]
	res := run(t, s, &Request{Prompt: prompt, MaxTokens: 30, Params: ban, Stop: []string{"never there", stop}})
	if res.err != nil {
		t.Fatal(res.err)
	}
	want := text[:strings.Index(text, stop)]
	if res.text[0] != want || res.finish[0] != "stop" {
		t.Errorf("stop %q: got %q (%s), want %q", stop, res.text[0], res.finish[0], want)
	}
	if strings.Contains(res.text[0], stop) {
		t.Errorf("the stop string was emitted")
	}
	if !slices.Equal(res.tokens[0], full.tokens[0][:len(res.tokens[0])]) || len(res.tokens[0]) != res.usage.CompletionTokens {
		t.Errorf("tokens %v, usage %+v", res.tokens[0], res.usage)
	}
	// A stop string that never matches holds text back only for a while.
	res = run(t, s, &Request{Prompt: prompt, MaxTokens: 30, Params: ban, Stop: []string{text[len(text)-2:] + "\x00"}})
	if res.text[0] != text || res.finish[0] != "length" {
		t.Errorf("unmatched stop: got %q %s, want %q", res.text[0], res.finish[0], text)
	}
}

// TestStopStringStories checks stop strings on real text.
func TestStopStringStories(t *testing.T) {
	m, tok := stories(t)
	s := start(t, m, tok, Options{})
	prompt := tok.Encode("Once upon a time", true, false)
	const story = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."
	full := run(t, s, &Request{Prompt: prompt, MaxTokens: 40, Params: greedy()})
	if full.text[0] != story {
		t.Fatalf("greedy text %q, want %q", full.text[0], story)
	}
	for _, tc := range []struct {
		stops []string
		want  string
	}{
		{[]string{"named Lily"}, ", there was a little girl "},
		{[]string{"ily. Sh"}, ", there was a little girl named L"},
		{[]string{"park", "little"}, ", there was a "},
		{[]string{"e"}, ", th"},
		{[]string{", there"}, ""},
	} {
		res := run(t, s, &Request{Prompt: prompt, MaxTokens: 40, Params: greedy(), Stop: tc.stops})
		if res.err != nil || res.text[0] != tc.want || res.finish[0] != "stop" {
			t.Errorf("stop %q: got %q (%s, %v), want %q", tc.stops, res.text[0], res.finish[0], res.err, tc.want)
		}
		if got := tok.Decode(res.tokens[0]); !strings.HasPrefix(got, strings.TrimPrefix(tc.want, " ")) {
			t.Errorf("stop %q: tokens decode to %q", tc.stops, got)
		}
	}
}

// TestLength checks the "length" finish at MaxTokens and at the end of the
// context.
func TestLength(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	s := start(t, m, tok, Options{})
	p := greedy()
	p.LogitBias = map[int32]float32{tok.EOS(): float32(negInf())}
	res := run(t, s, &Request{Prompt: prompts(6)[0], MaxTokens: 5, Params: p})
	if res.err != nil || res.finish[0] != "length" || len(res.tokens[0]) != 5 || res.usage.CompletionTokens != 5 {
		t.Errorf("max tokens 5: %v %q %v %+v", res.err, res.finish[0], res.tokens[0], res.usage)
	}
	ctx := s.SeqContext()
	res = run(t, s, &Request{Prompt: prompts(ctx - 3)[0], Params: p})
	if res.err != nil || res.finish[0] != "length" || len(res.tokens[0]) != 3 {
		t.Errorf("context end: %v %q %d tokens", res.err, res.finish[0], len(res.tokens[0]))
	}
	res = run(t, s, &Request{Prompt: prompts(ctx - 1)[0], Params: p})
	if res.err != nil || res.finish[0] != "length" || len(res.tokens[0]) != 1 {
		t.Errorf("longest prompt: %v %q %d tokens", res.err, res.finish[0], len(res.tokens[0]))
	}
}

// TestAdmissionErrors checks the errors Submit returns at once.
func TestAdmissionErrors(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	s, err := newScheduler(m, tok, Options{MaxQueue: 2, MaxSequences: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := &Request{Prompt: prompts(4)[0], MaxTokens: 2, Params: greedy()}
	var streams []*Stream
	for range 2 {
		st, err := s.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	if _, err := s.Submit(ctx, req); !errors.Is(err, ErrQueueFull) {
		t.Errorf("third request: %v, want ErrQueueFull", err)
	}
	if _, _, err := s.Embed(ctx, [][]int32{{1, 2}}, PoolMean); !errors.Is(err, ErrQueueFull) {
		t.Errorf("embed with a full queue: %v, want ErrQueueFull", err)
	}
	if st := s.Stats(); st.Queued != 2 || st.Running != 0 {
		t.Errorf("stats %+v", st)
	}
	_, err = s.Submit(ctx, &Request{Prompt: prompts(256)[0], Params: greedy()})
	if !errors.Is(err, ErrContextLength) || !strings.Contains(err.Error(), "256") {
		t.Errorf("long prompt: %v, want ErrContextLength with the numbers", err)
	}
	if _, _, err := s.Embed(ctx, [][]int32{prompts(257)[0]}, PoolMean); !errors.Is(err, ErrContextLength) {
		t.Errorf("long embedding input: %v", err)
	}
	bad := greedy()
	bad.TopP = 0
	for name, r := range map[string]*Request{
		"nil":        nil,
		"empty":      {Params: greedy()},
		"token":      {Prompt: []int32{1, 400}, Params: greedy()},
		"negative":   {Prompt: []int32{1, -1}, Params: greedy()},
		"n":          {Prompt: []int32{1}, N: 3, Params: greedy()},
		"max tokens": {Prompt: []int32{1}, MaxTokens: -1, Params: greedy()},
		"params":     {Prompt: []int32{1}, Params: bad},
		"stop":       {Prompt: []int32{1}, Params: greedy(), Stop: []string{""}},
		"bias":       {Prompt: []int32{1}, Params: withBias(greedy(), 400)},
		"top":        {Prompt: []int32{1}, Params: greedy(), TopLogprobs: 2},
	} {
		if _, err := s.Submit(ctx, r); err == nil || errors.Is(err, ErrQueueFull) || errors.Is(err, ErrContextLength) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
	for name, in := range map[string][][]int32{"none": nil, "empty": {{}}, "token": {{1, 999}}} {
		if _, _, err := s.Embed(ctx, in, PoolMean); err == nil {
			t.Errorf("embed %s: no error", name)
		}
	}
	if _, _, err := s.Embed(ctx, [][]int32{{1}}, Pooling(7)); err == nil {
		t.Errorf("embed with an unknown pooling: no error")
	}
	go s.loop()
	for _, st := range streams {
		if res := collect(t, st, 1); res.err != nil || res.finish[0] == "" {
			t.Errorf("queued request: %v %q", res.err, res.finish[0])
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(ctx, req); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	if _, _, err := s.Embed(ctx, [][]int32{{1}}, PoolMean); !errors.Is(err, ErrClosed) {
		t.Errorf("embed after close: %v", err)
	}
}

// TestCancelFreesKV cancels running and waiting requests and checks that
// their KV is released and the scheduler keeps serving.
func TestCancelFreesKV(t *testing.T) {
	checkGoroutines(t)
	// The cancelled request must still be running when it is cancelled,
	// however fast the model is: a long context and a banned end token
	// keep it going for thousands of steps.
	spec := tinySpec()
	spec.Context = 4096
	m, tok := tinyModel(t, spec)
	endless := greedy()
	endless.LogitBias = map[int32]float32{tok.EOS(): float32(math.Inf(-1))}
	for _, noPrefix := range []bool{true, false} {
		s := start(t, m, tok, Options{NoPrefixCache: noPrefix, MaxSequences: 1, KVTokens: 8192})
		// Warm the prefix cache so that the baseline holds an entry.
		if res := run(t, s, &Request{Prompt: prompts(20)[0], MaxTokens: 4, Params: greedy()}); res.err != nil {
			t.Fatal(res.err)
		}
		waitFor(t, "the first request to end", func() bool { return s.Stats().Running == 0 })
		base := s.Stats()
		if !noPrefix && base.PrefixCacheTokens == 0 {
			t.Errorf("no prefix cache entry after a finished request: %+v", base)
		}
		ctx, cancel := context.WithCancel(context.Background())
		st, err := s.Submit(ctx, &Request{Prompt: prompts(30)[0], Params: endless})
		if err != nil {
			t.Fatal(err)
		}
		queued, err := s.Submit(ctx, &Request{Prompt: prompts(30)[0], Params: endless})
		if err != nil {
			t.Fatal(err)
		}
		<-st.Events() // it runs
		waitFor(t, "the running request's KV", func() bool {
			st := s.Stats()
			return st.Running == 1 && st.KVUsedTokens > base.KVUsedTokens
		})
		cancel()
		res, res2 := collect(t, st, 1), collect(t, queued, 1)
		if !errors.Is(res.err, context.Canceled) || !errors.Is(res2.err, context.Canceled) {
			t.Errorf("cancelled requests ended with %v and %v", res.err, res2.err)
		}
		waitFor(t, "the KV to be released", func() bool {
			st := s.Stats()
			return st.Running == 0 && st.Queued == 0 && st.KVUsedTokens == base.KVUsedTokens
		})
		if got := s.Stats(); got.PrefixCacheTokens != base.PrefixCacheTokens {
			t.Errorf("cancelled request changed the prefix cache: %+v, before %+v", got, base)
		}
		if res := run(t, s, &Request{Prompt: prompts(8)[0], MaxTokens: 3, Params: greedy()}); res.err != nil || res.finish[0] == "" {
			t.Errorf("after cancellation: %v", res.err)
		}
	}
}

// TestPrefixCache checks that a prompt sharing a prefix with an earlier
// request reuses its KV and produces the output it would without the
// cache.
func TestPrefixCache(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	cached := start(t, m, tok, Options{})
	plain := start(t, m, tok, Options{NoPrefixCache: true})
	base := prompts(40)[0]
	first := run(t, cached, &Request{Prompt: base, MaxTokens: 10, Params: greedy()})
	if first.err != nil || first.usage.CachedTokens != 0 {
		t.Fatalf("first request: %v, usage %+v", first.err, first.usage)
	}
	// The same prompt, a continuation of the first conversation, and a
	// prompt that shares only its first half.
	cont := append(append(slices.Clone(base), first.tokens[0]...), 300, 301, 302)
	half := append(slices.Clone(base[:20]), 333, 334, 335, 336)
	for _, tc := range []struct {
		name   string
		prompt []int32
		cached int
	}{
		{"same", base, len(base) - 1},
		// The "same" run cached the first one's tokens and more.
		{"continuation", cont, len(base) + len(first.tokens[0])},
		{"half", half, 20},
	} {
		got := run(t, cached, &Request{Prompt: tc.prompt, MaxTokens: 12, Params: greedy()})
		want := run(t, plain, &Request{Prompt: tc.prompt, MaxTokens: 12, Params: greedy()})
		if got.err != nil || want.err != nil {
			t.Fatal(got.err, want.err)
		}
		if !slices.Equal(got.tokens[0], want.tokens[0]) {
			t.Errorf("%s: with the prefix cache %v, without %v", tc.name, got.tokens[0], want.tokens[0])
		}
		if got.usage.CachedTokens != tc.cached || want.usage.CachedTokens != 0 {
			t.Errorf("%s: cached tokens %d (want %d), without the cache %d", tc.name, got.usage.CachedTokens, tc.cached, want.usage.CachedTokens)
		}
	}
	waitFor(t, "the prefix cache to hold the last request", func() bool {
		st := cached.Stats()
		return st.Running == 0 && st.PrefixCacheTokens > 0 && st.KVUsedTokens > 0
	})
}

// TestLogprobs checks that log-probabilities come with every token and are
// consistent.
func TestLogprobs(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	s := start(t, m, tok, Options{})
	for _, temp := range []float32{0, 1} {
		p := greedy()
		p.Temperature, p.Seed = temp, 3
		res := run(t, s, &Request{Prompt: prompts(9)[0], MaxTokens: 12, N: 2, Params: p, Logprobs: true, TopLogprobs: 4,
			Stop: []string{"zz"}})
		if res.err != nil {
			t.Fatal(res.err)
		}
		for c := range 2 {
			if len(res.logprobs[c]) != len(res.tokens[c]) || len(res.tokens[c]) == 0 {
				t.Fatalf("choice %d: %d logprobs for %d tokens", c, len(res.logprobs[c]), len(res.tokens[c]))
			}
			for i, lp := range res.logprobs[c] {
				if lp.ID != res.tokens[c][i] || lp.Logprob > 0 || len(lp.Top) != 4 || lp.Text != tok.DecodeToken(lp.ID, false) {
					t.Fatalf("choice %d token %d: %+v", c, i, lp)
				}
				for k := 1; k < len(lp.Top); k++ {
					if lp.Top[k].Logprob > lp.Top[k-1].Logprob {
						t.Errorf("top logprobs not sorted: %+v", lp.Top)
					}
				}
				if lp.Top[0].Logprob < lp.Logprob {
					t.Errorf("chosen %g above the most likely %g", lp.Logprob, lp.Top[0].Logprob)
				}
				if temp == 0 && (lp.Top[0].ID != lp.ID || lp.Top[0].Logprob != lp.Logprob) {
					t.Errorf("greedy choice %+v is not the most likely %+v", lp, lp.Top[0])
				}
			}
		}
	}
}

// TestCloseDrains checks that Close lets running and queued requests
// finish.
func TestCloseDrains(t *testing.T) {
	checkGoroutines(t)
	m, tok := tinyModel(t, tinySpec())
	s, err := New(m, tok, Options{MaxSequences: 2})
	if err != nil {
		t.Fatal(err)
	}
	var streams []*Stream
	for _, p := range prompts(5, 9, 13, 30, 4) {
		st, err := s.Submit(context.Background(), &Request{Prompt: p, MaxTokens: 20, Params: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	var wg sync.WaitGroup
	results := make([]result, len(streams))
	for i, st := range streams {
		wg.Go(func() { results[i] = collect(t, st, 1) })
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, res := range results {
		if res.err != nil || res.finish[0] == "" || res.usage.CompletionTokens == 0 {
			t.Errorf("request %d: %v %q %+v", i, res.err, res.finish[0], res.usage)
		}
	}
	if st := s.Stats(); st.KVUsedTokens != 0 || st.Running != 0 || st.Queued != 0 {
		t.Errorf("after close: %+v", st)
	}
}

// TestCloseDeadline checks that Close cancels what is left when its
// context ends first.
func TestCloseDeadline(t *testing.T) {
	checkGoroutines(t)
	m, tok := tinyModel(t, tinySpec())
	s, err := newScheduler(m, tok, Options{MaxSequences: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.forward = func(ctx context.Context, c *llm.Cache, b *llm.Batch, out *llm.Output) error {
		time.Sleep(time.Millisecond) // a slow model: the requests outlast Close's deadline
		return m.Forward(ctx, c, b, out)
	}
	go s.loop()
	var streams []*Stream
	for _, p := range prompts(5, 9) {
		st, err := s.Submit(context.Background(), &Request{Prompt: p, Params: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	<-streams[0].Events()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close: %v", err)
	}
	for i, st := range streams {
		if res := collect(t, st, 1); !errors.Is(res.err, ErrClosed) {
			t.Errorf("request %d: %v, want ErrClosed", i, res.err)
		}
	}
	if st := s.Stats(); st.KVUsedTokens != 0 {
		t.Errorf("after close: %+v", st)
	}
}

// TestStepFailures injects a panic and an error into the forward pass: the
// requests of that step fail, the scheduler keeps serving.
func TestStepFailures(t *testing.T) {
	checkGoroutines(t)
	m, tok := tinyModel(t, tinySpec())
	s, err := newScheduler(m, tok, Options{NoPrefixCache: true})
	if err != nil {
		t.Fatal(err)
	}
	const poison, fault = 377, 378
	s.forward = func(ctx context.Context, c *llm.Cache, b *llm.Batch, out *llm.Output) error {
		for _, r := range b.Rows {
			switch r.Token {
			case poison:
				panic("poisoned token")
			case fault:
				return errors.New("device lost")
			}
		}
		return m.Forward(ctx, c, b, out)
	}
	go s.loop()
	defer s.Close(context.Background())
	for _, bad := range []int32{poison, fault} {
		res := run(t, s, &Request{Prompt: []int32{1, 300, bad, 301}, MaxTokens: 3, Params: greedy()})
		if res.err == nil {
			t.Errorf("token %d: no error", bad)
		}
		waitFor(t, "KV release", func() bool { return s.Stats().KVUsedTokens == 0 })
		good := run(t, s, &Request{Prompt: prompts(7)[0], MaxTokens: 3, Params: greedy()})
		if good.err != nil || len(good.tokens[0]) == 0 {
			t.Errorf("after token %d: %v", bad, good.err)
		}
	}
	if _, _, err := s.Embed(context.Background(), [][]int32{{1, poison}}, PoolMean); err == nil {
		t.Errorf("embedding a poisoned input: no error")
	}
}

// TestPreemption runs more work than the KV budget holds: the youngest
// request is requeued and still produces the output it would alone.
func TestPreemption(t *testing.T) {
	checkGoroutines(t)
	m, tok := tinyModel(t, tinySpec())
	p := greedy()
	p.LogitBias = map[int32]float32{tok.EOS(): float32(negInf())}
	ps := prompts(10, 12, 14)
	want := make([][]int32, len(ps))
	plain := start(t, m, tok, Options{NoPrefixCache: true})
	for i, pr := range ps {
		want[i] = run(t, plain, &Request{Prompt: pr, MaxTokens: 150, Params: p}).tokens[0]
	}
	s := start(t, m, tok, Options{KVTokens: 300, MaxSequences: 3})
	var wg sync.WaitGroup
	for i, pr := range ps {
		st, err := s.Submit(context.Background(), &Request{Prompt: pr, MaxTokens: 150, Params: p})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			res := collect(t, st, 1)
			if res.err != nil || !slices.Equal(res.tokens[0], want[i]) {
				t.Errorf("request %d: %v\n got %v\nwant %v", i, res.err, res.tokens[0], want[i])
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Preemptions == 0 {
		t.Errorf("no preemption: %+v", st)
	}
	// A request that cannot fit even alone fails instead of waiting
	// forever.
	res := run(t, s, &Request{Prompt: prompts(100)[0], N: 3, MaxTokens: 150, Params: p})
	if !errors.Is(res.err, llm.ErrCacheFull) {
		t.Errorf("oversized request: %v", res.err)
	}
	if res := run(t, s, &Request{Prompt: ps[0], MaxTokens: 5, Params: p}); res.err != nil {
		t.Errorf("after the oversized request: %v", res.err)
	}
}

func withBias(p sample.Params, id int32) sample.Params {
	p.LogitBias = map[int32]float32{id: 1}
	return p
}

func negInf() float64 { return math.Inf(-1) }

// streamText decodes tokens as a stream, the way the scheduler does.
func streamText(tok *tokenizer.Tokenizer, toks []int32) string {
	d := tok.NewStreamDecoder(false)
	var b strings.Builder
	for _, id := range toks {
		b.WriteString(d.Add(id))
	}
	b.WriteString(strings.ToValidUTF8(d.Flush(), "\uFFFD"))
	return b.String()
}

// TestForkWhenFull fills the cache just as a two-choice request finishes
// reading its prompt, so that the prompt cannot be forked: the request goes
// back to the queue, runs when there is room, and gives the output it gives
// alone.
func TestForkWhenFull(t *testing.T) {
	checkGoroutines(t)
	m, tok := tinyModel(t, tinySpec())
	s, err := newScheduler(m, tok, Options{NoPrefixCache: true, KVTokens: 600, PrefillChunk: 5})
	if err != nil {
		t.Fatal(err)
	}
	const last = 399 // the last token of b's prompt, banned from a's output
	bPrompt := append(prompts(39)[0], last)
	isLast := func(b *llm.Batch) bool {
		for _, r := range b.Rows {
			if r.Token == last && r.Pos == len(bPrompt)-1 {
				return true
			}
		}
		return false
	}
	phase := 0
	var dummies []llm.SeqID
	s.forward = func(ctx context.Context, c *llm.Cache, b *llm.Batch, out *llm.Output) error {
		if phase == 1 && isLast(b) {
			for _, d := range dummies {
				c.Release(d)
			}
			phase = 2
		}
		if err := m.Forward(ctx, c, b, out); err != nil {
			return err
		}
		if phase == 0 && isLast(b) {
			// Take every free position.
			for free := c.Options().MaxTokens - c.Reserved(); free > 0; free = c.Options().MaxTokens - c.Reserved() {
				d, err := c.NewSeq()
				if err != nil {
					t.Fatal(err)
				}
				dummies = append(dummies, d)
				var fill llm.Batch
				var o llm.Output
				fill.AddSequence(d, 0, make([]int32, min(free, c.Options().SeqContext)), false)
				if err := m.Forward(ctx, c, &fill, &o); err != nil {
					t.Fatal(err)
				}
			}
			phase = 1
		}
		return nil
	}
	go s.loop()
	defer s.Close(context.Background())

	pa := greedy()
	pa.LogitBias = map[int32]float32{tok.EOS(): float32(negInf()), last: float32(negInf())}
	pb := greedy()
	pb.Temperature, pb.Seed = 1, 5
	reqA := &Request{Prompt: prompts(10)[0], MaxTokens: 150, Params: pa}
	reqB := &Request{Prompt: bPrompt, MaxTokens: 20, N: 2, Params: pb}
	plain := start(t, m, tok, Options{NoPrefixCache: true})
	wantA, wantB := run(t, plain, reqA), run(t, plain, reqB)

	stA, err := s.Submit(context.Background(), reqA)
	if err != nil {
		t.Fatal(err)
	}
	stB, err := s.Submit(context.Background(), reqB)
	if err != nil {
		t.Fatal(err)
	}
	gotA, gotB := collect(t, stA, 1), collect(t, stB, 2)
	if gotA.err != nil || gotB.err != nil {
		t.Fatal(gotA.err, gotB.err)
	}
	if !slices.Equal(gotA.tokens[0], wantA.tokens[0]) {
		t.Errorf("a: %v, alone %v", gotA.tokens[0], wantA.tokens[0])
	}
	for i := range 2 {
		if !slices.Equal(gotB.tokens[i], wantB.tokens[i]) {
			t.Errorf("b choice %d: %v, alone %v", i, gotB.tokens[i], wantB.tokens[i])
		}
	}
	if phase != 2 {
		t.Errorf("the cache was never filled (phase %d)", phase)
	}
	waitFor(t, "KV release", func() bool { return s.Stats().KVUsedTokens == 0 })
	if st := s.Stats(); st.Preemptions != 1 {
		t.Errorf("stats %+v, want one preemption", st)
	}
}

package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
)

// TestStepAllocations drives the loop by hand through steady-state decode
// steps of four greedy requests and counts allocations per step: what
// remains is the text of each token's event.
func TestStepAllocations(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	s, err := newScheduler(m, tok, Options{NoPrefixCache: true})
	if err != nil {
		t.Fatal(err)
	}
	const choices = 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	p := greedy()
	p.LogitBias = map[int32]float32{tok.EOS(): float32(negInf())}
	for _, pr := range prompts(5, 6, 7, 8) {
		st, err := s.Submit(ctx, &Request{Prompt: pr, Params: p})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range st.Events() {
			}
		})
	}
	for range 10 {
		s.iterate()
	}
	if len(s.running) != choices {
		t.Fatalf("%d requests running", len(s.running))
	}
	n := testing.AllocsPerRun(100, s.iterate)
	t.Logf("%.2f allocations per step of %d decode rows", n, choices)
	if n > 2*choices {
		t.Errorf("%.2f allocations per step of %d decode rows, want at most %d", n, choices, 2*choices)
	}
	cancel()
	s.iterate()
	go s.loop()
	s.Close(context.Background())
	wg.Wait()
}

// BenchmarkSchedulerDecode runs 16 concurrent greedy requests of 64 tokens
// each through the scheduler on a tiny model and reports generated tokens
// per second.
func BenchmarkSchedulerDecode(b *testing.B) {
	m, tok := tinyModel(b, tinySpec())
	s, err := New(m, tok, Options{NoPrefixCache: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	const requests, maxTokens = 16, 64
	p := greedy()
	p.LogitBias = map[int32]float32{tok.EOS(): float32(negInf())}
	ps := prompts(8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23)
	b.ReportAllocs()
	tokens := 0
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		for i := range requests {
			st, err := s.Submit(context.Background(), &Request{Prompt: ps[i], MaxTokens: maxTokens, Params: p})
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				for ev := range st.Events() {
					if ev.Err != nil {
						b.Error(ev.Err)
					}
				}
			})
		}
		wg.Wait()
		tokens += requests * maxTokens
	}
	b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkModelDecode is the baseline of BenchmarkSchedulerDecode: the
// same 16 prompts and 64 greedy tokens each, batched by hand on the model
// alone, without sampling, text or events.
func BenchmarkModelDecode(b *testing.B) {
	m, _ := tinyModel(b, tinySpec())
	const requests, maxTokens = 16, 64
	ps := prompts(8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23)
	c, err := m.NewCache(llm.CacheOptions{Type: ggml.TypeF16, MaxSequences: requests})
	if err != nil {
		b.Fatal(err)
	}
	var batch llm.Batch
	var out llm.Output
	next := make([]int32, requests)
	tokens := 0
	start := time.Now()
	for b.Loop() {
		batch.Clear()
		for _, p := range ps {
			seq, err := c.NewSeq()
			if err != nil {
				b.Fatal(err)
			}
			batch.AddSequence(seq, 0, p, false)
		}
		for range maxTokens {
			if err := m.Forward(context.Background(), c, &batch, &out); err != nil {
				b.Fatal(err)
			}
			for i, r := range out.LogitRows {
				logits := out.RowLogits(r)
				best := 0
				for j, v := range logits {
					if v > logits[best] {
						best = j
					}
				}
				next[i] = int32(best)
			}
			batch.Clear()
			for i := range requests {
				seq := llm.SeqID(i)
				batch.Add(next[i], seq, c.Len(seq), true, false)
			}
		}
		for i := range requests {
			c.Release(llm.SeqID(i))
		}
		tokens += requests * maxTokens
	}
	b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tokens/s")
}

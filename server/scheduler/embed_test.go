package scheduler

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
)

// embedReference pools and normalizes the hidden states of one input run
// alone on the model.
func embedReference(t *testing.T, m *llm.Model, in []int32, p Pooling) []float32 {
	t.Helper()
	c, err := m.NewCache(llm.CacheOptions{Type: ggml.TypeF16})
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := c.NewSeq()
	var b llm.Batch
	for i, tk := range in {
		b.Add(tk, seq, i, false, true)
	}
	var out llm.Output
	if err := m.Forward(context.Background(), c, &b, &out); err != nil {
		t.Fatal(err)
	}
	d := m.Config().Dim
	sum := make([]float64, d)
	for r := range in {
		if p == PoolLast && r != len(in)-1 {
			continue
		}
		for j, v := range out.RowHidden(r) {
			sum[j] += float64(v)
		}
	}
	var n float64
	for _, v := range sum {
		n += v * v
	}
	vec := make([]float32, d)
	for j, v := range sum {
		vec[j] = float32(v / math.Sqrt(n))
	}
	return vec
}

// TestEmbed checks pooled, normalized embeddings against the model run
// directly, with inputs batched together, chunked, and mixed with
// generation.
func TestEmbed(t *testing.T) {
	checkGoroutines(t)
	m, tok := tinyModel(t, tinySpec())
	inputs := prompts(3, 40, 1, 17, 90)
	s := start(t, m, tok, Options{MaxSequences: 3, MaxBatchTokens: 32, PrefillChunk: 16})
	var wg sync.WaitGroup
	gen := make([]result, 2)
	for i := range gen {
		st, err := s.Submit(context.Background(), &Request{Prompt: prompts(20 + i)[0], MaxTokens: 30, Params: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { gen[i] = collect(t, st, 1) })
	}
	for _, p := range []Pooling{PoolMean, PoolLast} {
		vecs, usage, err := s.Embed(context.Background(), inputs, p)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i, in := range inputs {
			total += len(in)
			want := embedReference(t, m, in, p)
			if math.Abs(norm(vecs[i])-1) > 1e-5 {
				t.Errorf("%v input %d: norm %g", p, i, norm(vecs[i]))
			}
			for j := range want {
				if d := math.Abs(float64(vecs[i][j] - want[j])); d > 1e-5 {
					t.Fatalf("%v input %d element %d: %g, want %g", p, i, j, vecs[i][j], want[j])
				}
			}
		}
		if usage.PromptTokens != total {
			t.Errorf("usage %+v, want %d prompt tokens", usage, total)
		}
	}
	wg.Wait()
	for i, res := range gen {
		if res.err != nil || len(res.tokens[0]) == 0 {
			t.Errorf("generation %d beside embeddings: %v", i, res.err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Embed(ctx, inputs, PoolMean); err == nil {
		t.Errorf("embed with a cancelled context: no error")
	}
	waitFor(t, "KV release", func() bool { return s.Stats().Running == 0 })
}

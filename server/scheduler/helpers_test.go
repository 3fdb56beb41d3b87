package scheduler

import (
	"context"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/sample"
	"github.com/carryon/carryon/models/synth"
	"github.com/carryon/carryon/models/testenv"
	"github.com/carryon/carryon/models/tokenizer"
)

// tinySpec is the random model most tests run: small enough that a step
// takes microseconds.
func tinySpec() synth.Spec {
	return synth.Spec{Arch: "llama", Vocab: 400, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Context: 256,
		WeightType: ggml.TypeQ8_0, Seed: 7}
}

// loadModel loads a model file and its tokenizer.
func loadModel(t testing.TB, path string) (*llm.Model, *tokenizer.Tokenizer) {
	t.Helper()
	m, err := llm.Load(path, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := tokenizer.FromGGUF(m.Meta())
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// tinyModel writes a synthetic model into the test's directory and loads it.
func tinyModel(t testing.TB, spec synth.Spec) (*llm.Model, *tokenizer.Tokenizer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := synth.Write(path, spec); err != nil {
		t.Fatal(err)
	}
	return loadModel(t, path)
}

// stories loads the shared stories260K model, or skips.
func stories(t testing.TB) (*llm.Model, *tokenizer.Tokenizer) {
	t.Helper()
	return loadModel(t, testenv.Path(t, "stories260K.gguf"))
}

// start returns a running scheduler that the test closes at its end.
func start(t testing.TB, m *llm.Model, tok *tokenizer.Tokenizer, o Options) *Scheduler {
	t.Helper()
	s, err := New(m, tok, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// greedy returns sampling parameters for greedy decoding.
func greedy() sample.Params {
	p := sample.DefaultParams()
	p.Temperature = 0
	return p
}

// result is everything one stream delivered.
type result struct {
	tokens   [][]int32 // per choice
	text     []string
	finish   []string
	logprobs [][]TokenLogprob
	events   int
	err      error
	usage    Usage
}

// collect reads a stream to its end.
func collect(t testing.TB, st *Stream, n int) result {
	t.Helper()
	res := result{tokens: make([][]int32, n), text: make([]string, n), finish: make([]string, n), logprobs: make([][]TokenLogprob, n)}
	var b []strings.Builder = make([]strings.Builder, n)
	for ev := range st.Events() {
		res.events++
		if ev.Err != nil {
			if res.err != nil {
				t.Errorf("a second error event: %v", ev.Err)
			}
			res.err = ev.Err
			continue
		}
		if ev.Choice < 0 || ev.Choice >= n {
			t.Fatalf("event for choice %d of %d", ev.Choice, n)
		}
		if res.finish[ev.Choice] != "" {
			t.Errorf("choice %d: event after its finish %q", ev.Choice, res.finish[ev.Choice])
		}
		res.tokens[ev.Choice] = append(res.tokens[ev.Choice], ev.Tokens...)
		res.logprobs[ev.Choice] = append(res.logprobs[ev.Choice], ev.Logprobs...)
		b[ev.Choice].WriteString(ev.Text)
		res.finish[ev.Choice] = ev.Finish
	}
	for i := range b {
		res.text[i] = b[i].String()
	}
	res.usage = st.Usage()
	return res
}

// run submits a request and collects its stream.
func run(t testing.TB, s *Scheduler, r *Request) result {
	t.Helper()
	st, err := s.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, st, max(r.N, 1))
}

// reference decodes greedily with the model alone: one sequence, the whole
// prompt in one batch, then one token at a time. It stops after max tokens
// or at an end-of-generation token (which it returns).
func reference(t testing.TB, m *llm.Model, tok *tokenizer.Tokenizer, prompt []int32, maxTokens int) []int32 {
	t.Helper()
	c, err := m.NewCache(llm.CacheOptions{Type: ggml.TypeF16})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := c.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	var b llm.Batch
	var out llm.Output
	b.AddSequence(seq, 0, prompt, false)
	var gen []int32
	for len(gen) < maxTokens {
		if err := m.Forward(context.Background(), c, &b, &out); err != nil {
			t.Fatal(err)
		}
		logits := out.RowLogits(len(b.Rows) - 1)
		next := int32(0)
		for i, v := range logits {
			if v > logits[next] {
				next = int32(i)
			}
		}
		gen = append(gen, next)
		if tok.IsEOG(next) {
			break
		}
		b.Clear()
		b.Add(next, seq, c.Len(seq), true, false)
	}
	return gen
}

// prompts returns n prompts of different lengths made of text tokens.
func prompts(lengths ...int) [][]int32 {
	var ps [][]int32
	for k, n := range lengths {
		p := []int32{1}
		for i := 1; i < n; i++ {
			p = append(p, int32(260+(i*7+k*13)%130))
		}
		ps = append(ps, p)
	}
	return ps
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkGoroutines fails the test when goroutines started during it are
// still running at its end.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines at the end, %d at the start:\n%s", runtime.NumGoroutine(), before, buf)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

func stripEOG(tok *tokenizer.Tokenizer, toks []int32) []int32 {
	if n := len(toks); n > 0 && tok.IsEOG(toks[n-1]) {
		return toks[:n-1]
	}
	return toks
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

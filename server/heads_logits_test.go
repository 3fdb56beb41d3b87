package server

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
)

// TestHeadLogitsMatchInProcess checks a random head served through the
// plugin and the scheduler against the same computation in this process:
// the base model's hidden states, the head's delta from models/carryon, and
// the LM head over x + delta. The server runs greedily; every generated
// token must be the in-process argmax, with the same log-probability.
func TestHeadLogitsMatchInProcess(t *testing.T) {
	s := headServer(t, nil)
	dir := writeHead(t, 4, 41)
	registerHead(t, s, "eve", dir)
	prompt := []int32{1, 17, 93, 250, 4, 61}
	const n = 10
	r := s.post(t, "/v1/completions", fmt.Sprintf(`{"model":"eve","prompt":%v,"max_tokens":%d,"temperature":0,"logprobs":1}`, fmtInts(prompt), n))
	var out struct {
		Choices []struct {
			Logprobs struct {
				Tokens        []string  `json:"tokens"`
				TokenLogprobs []float64 `json:"token_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r.json(t, &out)
	got := out.Choices[0].Logprobs

	m, err := llm.Load(filepath.Join(modelDir, "tiny.gguf"), llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := s.byName["tiny"].tok
	head, err := carryonhead.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := m.NewCache(llm.CacheOptions{Type: ggml.TypeF16, MaxSequences: 1, MaxTokens: 256, SeqContext: 256})
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := cache.NewSeq()
	d, vocab := m.Config().Dim, m.Config().Vocab
	toks := append([]int32(nil), prompt...)
	fed := 0
	var b llm.Batch
	var o llm.Output
	logits := make([]float32, vocab)
	for i := range got.Tokens {
		b.Clear()
		for p := fed; p < len(toks); p++ {
			b.Add(toks[p], seq, p, false, true)
		}
		if err := m.Forward(context.Background(), cache, &b, &o); err != nil {
			t.Fatal(err)
		}
		rows := make([]carryonhead.Row, len(b.Rows))
		for j := range b.Rows {
			rows[j] = carryonhead.Row{Seq: 1, Pos: fed + j, Input: o.RowHidden(j)}
		}
		deltas, err := head.Forward(context.Background(), rows)
		if err != nil {
			t.Fatal(err)
		}
		last := len(b.Rows) - 1
		x := append([]float32(nil), o.RowHidden(last)...)
		for j := range d {
			x[j] += deltas[last][j]
		}
		if err := m.Logits(logits, x); err != nil {
			t.Fatal(err)
		}
		fed = len(toks)
		best := 0
		for j, v := range logits {
			if v > logits[best] {
				best = j
			}
		}
		var sum float64
		for _, v := range logits {
			sum += math.Exp(float64(v - logits[best]))
		}
		lp := -math.Log(sum)
		if want := strings.ToValidUTF8(tok.DecodeToken(int32(best), false), "\uFFFD"); want != got.Tokens[i] || math.Abs(lp-got.TokenLogprobs[i]) > 2e-3 {
			t.Fatalf("token %d: server %q %.5f, in process %q %.5f", i, got.Tokens[i], got.TokenLogprobs[i], want, lp)
		}
		toks = append(toks, int32(best))
	}
	if len(got.Tokens) == 0 {
		t.Fatal("no tokens")
	}
}

func fmtInts(v []int32) string {
	s := "["
	for i, x := range v {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(x)
	}
	return s + "]"
}

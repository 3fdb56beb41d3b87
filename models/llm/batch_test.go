package llm

import (
	"context"
	"errors"
	"testing"

	"github.com/carryon/carryon/models/ggml"
)

// TestStoriesPrefillEqualsSequential checks on the real model that one
// prefill batch equals token-by-token decoding.
func TestStoriesPrefillEqualsSequential(t *testing.T) {
	m := loadStories(t, 2)
	prompt := []int32{1, 403, 407, 261, 378, 432, 383, 286, 261, 376}
	for _, typ := range []ggml.Type{ggml.TypeF32, ggml.TypeF16} {
		a := prefill(t, m, typ, prompt, []int{2, 4})
		b := sequential(t, m, typ, prompt, []int{2, 4})
		if d := max(maxDiffRows(a.logits, b.logits), maxDiffRows(a.hidden, b.hidden), maxDiffRows(a.taps[0], b.taps[0])); d > 1e-6 {
			t.Errorf("%s cache: prefill and sequential differ by %g", typ, d)
		}
	}
}

// TestSequencesInOneBatch interleaves the prompts of two sequences in one
// batch, then decodes both together, and compares each with running it
// alone.
func TestSequencesInOneBatch(t *testing.T) {
	check := func(name string, m *Model, p0, p1 []int32) {
		t.Helper()
		alone := [2]result{prefill(t, m, ggml.TypeF32, p0, []int{0}), prefill(t, m, ggml.TypeF32, p1, []int{0})}
		c := newCache(t, m, CacheOptions{MaxSequences: 3})
		_ = newSeq(t, c) // an idle sequence that the batch does not touch
		s0, s1 := newSeq(t, c), newSeq(t, c)
		// Prefill all but the last tokens, interleaved, then the last
		// tokens of both as one decode step.
		b := Batch{Taps: []int{0}}
		for i := 0; i < max(len(p0), len(p1))-1; i++ {
			if i < len(p1)-1 {
				b.Add(p1[i], s1, i, true, true)
			}
			if i < len(p0)-1 {
				b.Add(p0[i], s0, i, true, true)
			}
		}
		var out Output
		if err := m.Forward(context.Background(), c, &b, &out); err != nil {
			t.Fatal(err)
		}
		var got [2]result
		for r, row := range b.Rows {
			k := 0
			if row.Seq == s1 {
				k = 1
			}
			got[k].add(&out, r)
		}
		b.Clear()
		b.Taps = append(b.Taps, 0)
		b.Add(p0[len(p0)-1], s0, c.Len(s0), true, true)
		b.Add(p1[len(p1)-1], s1, c.Len(s1), true, true)
		if err := m.Forward(context.Background(), c, &b, &out); err != nil {
			t.Fatal(err)
		}
		got[0].add(&out, 0)
		got[1].add(&out, 1)
		for k := range got {
			if d := max(maxDiffRows(got[k].logits, alone[k].logits), maxDiffRows(got[k].hidden, alone[k].hidden),
				maxDiffRows(got[k].taps[0], alone[k].taps[0])); d > 1e-6 {
				t.Errorf("%s: sequence %d in a shared batch differs from running alone by %g", name, k, d)
			}
		}
		if c.Len(s0) != len(p0) || c.Len(s1) != len(p1) || c.Len(0) != 0 {
			t.Errorf("%s: lengths %d %d %d", name, c.Len(s0), c.Len(s1), c.Len(0))
		}
	}
	check("stories260K", loadStories(t, 2), []int32{1, 403, 407, 261, 378}, []int32{1, 300, 301, 302, 303, 304, 305, 306})
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		check(arch, loadSynth(t, tinySpec(arch, ggml.TypeF16)), testPrompt, []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	}
}

// TestTapsAndHidden checks that the last layer's residual stream, put
// through the final norm, is the hidden state, that the LM head applied to
// the hidden state gives the logits, and that rows asking for logits only
// or hidden states only get just those.
func TestTapsAndHidden(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		m := loadSynth(t, tinySpec(arch, ggml.TypeQ8_0))
		cfg := m.Config()
		c := newCache(t, m, CacheOptions{})
		seq := newSeq(t, c)
		b := Batch{Taps: []int{cfg.Layers - 1, 0}}
		for i, tok := range testPrompt {
			b.Add(tok, seq, i, i%2 == 0, i%3 == 0)
		}
		var out Output
		if err := m.Forward(context.Background(), c, &b, &out); err != nil {
			t.Fatal(err)
		}
		d := cfg.Dim
		normed := make([]float32, d)
		logits := make([]float32, cfg.Vocab)
		for r := range b.Rows {
			if (out.RowLogits(r) != nil) != b.Rows[r].Logits || (out.RowHidden(r) != nil) != b.Rows[r].Hidden {
				t.Fatalf("%s: row %d outputs do not match its request", arch, r)
			}
			if !b.Rows[r].Hidden {
				continue
			}
			m.backend.RMSNorm(normed, out.RowTap(0, r), m.outputNorm, cfg.Eps)
			if diff := maxAbsDiff(normed, out.RowHidden(r)); diff != 0 {
				t.Errorf("%s: row %d: normed last tap differs from hidden by %g", arch, r, diff)
			}
			if maxAbsDiff(out.RowTap(0, r), out.RowTap(1, r)) == 0 {
				t.Errorf("%s: taps of layers 0 and %d are equal", arch, cfg.Layers-1)
			}
			if b.Rows[r].Logits {
				if err := m.Logits(logits, out.RowHidden(r)); err != nil {
					t.Fatal(err)
				}
				if diff := maxAbsDiff(logits, out.RowLogits(r)); diff != 0 {
					t.Errorf("%s: row %d: Logits(hidden) differs from the forward logits by %g", arch, r, diff)
				}
			}
		}
		if len(out.LogitRows) != 6 || len(out.HiddenRows) != 4 || len(out.Logits) != 6*cfg.Vocab || len(out.Taps[1]) != 4*d {
			t.Errorf("%s: output sizes %d %d %d %d", arch, len(out.LogitRows), len(out.HiddenRows), len(out.Logits), len(out.Taps[1]))
		}
	}
}

// TestForkAndTruncate checks that a forked sequence continues like the
// original, and that a truncated sequence continues like a fresh one.
func TestForkAndTruncate(t *testing.T) {
	m := loadSynth(t, tinySpec("qwen2", ggml.TypeF16))
	for _, typ := range []ggml.Type{ggml.TypeF32, ggml.TypeF16} {
		c := newCache(t, m, CacheOptions{Type: typ, MaxSequences: 2})
		seq := newSeq(t, c)
		var b Batch
		b.AddSequence(seq, 0, testPrompt[:8], false)
		var out Output
		ctx := context.Background()
		if err := m.Forward(ctx, c, &b, &out); err != nil {
			t.Fatal(err)
		}
		fork, err := c.Fork(seq)
		if err != nil {
			t.Fatal(err)
		}
		// Continue the fork with the rest of the prompt: like a fresh run.
		b.Clear()
		b.AddSequence(fork, 8, testPrompt[8:], false)
		if err := m.Forward(ctx, c, &b, &out); err != nil {
			t.Fatal(err)
		}
		want := prefill(t, m, typ, testPrompt, nil)
		if d := maxAbsDiff(out.RowLogits(len(b.Rows)-1), want.logits[len(testPrompt)-1]); d > 1e-6 {
			t.Errorf("%s: forked sequence differs by %g", typ, d)
		}
		// Truncate the original to 5 positions and continue differently.
		if err := c.Truncate(seq, 5); err != nil {
			t.Fatal(err)
		}
		other := []int32{1, 17, 200, 33, 5, 77, 78, 79}
		b.Clear()
		b.AddSequence(seq, 5, other[5:], false)
		if err := m.Forward(ctx, c, &b, &out); err != nil {
			t.Fatal(err)
		}
		want = prefill(t, m, typ, other, nil)
		if d := maxAbsDiff(out.RowLogits(len(b.Rows)-1), want.logits[len(other)-1]); d > 1e-6 {
			t.Errorf("%s: truncated sequence differs by %g", typ, d)
		}
		if c.Len(seq) != len(other) || c.Len(fork) != len(testPrompt) {
			t.Errorf("%s: lengths %d %d", typ, c.Len(seq), c.Len(fork))
		}
	}
}

func TestCacheLimits(t *testing.T) {
	m := loadSynth(t, tinySpec("llama", ggml.TypeF32))
	ctx := context.Background()
	var out Output

	// Sequence slots.
	c := newCache(t, m, CacheOptions{MaxSequences: 2, MaxTokens: 200})
	a, b2 := newSeq(t, c), newSeq(t, c)
	if _, err := c.NewSeq(); !errors.Is(err, ErrCacheFull) {
		t.Errorf("third sequence: %v", err)
	}
	if err := c.Release(a); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(a); err == nil {
		t.Error("double release accepted")
	}
	a = newSeq(t, c)

	run := func(seq SeqID, n int) error {
		var b Batch
		b.AddSequence(seq, c.Len(seq), make([]int32, n), false)
		return m.Forward(ctx, c, &b, &out)
	}
	// A token budget of 200 positions over both sequences: a reserves
	// its whole context (128), b2 gets the remaining 72.
	if err := run(a, 100); err != nil {
		t.Fatal(err)
	}
	if err := run(b2, 60); err != nil {
		t.Fatal(err)
	}
	if err := run(b2, 13); !errors.Is(err, ErrCacheFull) {
		t.Errorf("beyond the token budget: %v", err)
	}
	if c.Reserved() != 200 || c.Len(b2) != 60 {
		t.Errorf("reserved %d, length %d", c.Reserved(), c.Len(b2))
	}
	if err := run(b2, 12); err != nil {
		t.Fatalf("within the budget: %v", err)
	}
	// The context length bounds a sequence.
	if err := run(a, 28); err != nil {
		t.Fatalf("up to the context length: %v", err)
	}
	if err := run(a, 1); !errors.Is(err, ErrCacheFull) {
		t.Errorf("past the context: %v", err)
	}
	if _, err := c.Fork(a); !errors.Is(err, ErrCacheFull) {
		t.Errorf("fork with no slot: %v", err)
	}
	c.Release(b2)
	if _, err := c.Fork(a); !errors.Is(err, ErrCacheFull) {
		t.Errorf("fork beyond the token budget: %v", err)
	}
	if c.Sequences() != 1 || c.Len(a) != 128 || c.Reserved() != 128 {
		t.Errorf("sequences %d, length %d, reserved %d", c.Sequences(), c.Len(a), c.Reserved())
	}

	if _, err := m.NewCache(CacheOptions{SeqContext: 129}); err == nil {
		t.Error("sequence context beyond the model's accepted")
	}
	if _, err := m.NewCache(CacheOptions{Type: ggml.TypeQ8_0}); err == nil {
		t.Error("Q8_0 cache accepted")
	}
}

func TestBadBatches(t *testing.T) {
	m := loadSynth(t, tinySpec("llama", ggml.TypeF32))
	other := loadSynth(t, tinySpec("qwen2", ggml.TypeF32))
	c := newCache(t, m, CacheOptions{MaxSequences: 2})
	s := newSeq(t, c)
	var out Output
	ctx := context.Background()
	var ok Batch
	ok.AddSequence(s, 0, []int32{1, 2, 3}, true)
	if err := m.Forward(ctx, c, &ok, &out); err != nil {
		t.Fatal(err)
	}
	bad := map[string]Batch{
		"empty":    {},
		"token":    {Rows: []BatchRow{{Token: 300, Seq: s, Pos: 3}}},
		"negative": {Rows: []BatchRow{{Token: -1, Seq: s, Pos: 3}}},
		"sequence": {Rows: []BatchRow{{Token: 1, Seq: 1, Pos: 0}}},
		"gap":      {Rows: []BatchRow{{Token: 1, Seq: s, Pos: 4}}},
		"rewrite":  {Rows: []BatchRow{{Token: 1, Seq: s, Pos: 2}}},
		"order":    {Rows: []BatchRow{{Token: 1, Seq: s, Pos: 4}, {Token: 1, Seq: s, Pos: 3}}},
		"repeat":   {Rows: []BatchRow{{Token: 1, Seq: s, Pos: 3}, {Token: 1, Seq: s, Pos: 3}}},
		"tap":      {Rows: []BatchRow{{Token: 1, Seq: s, Pos: 3}}, Taps: []int{2}},
	}
	for name, b := range bad {
		if err := m.Forward(ctx, c, &b, &out); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	oc := newCache(t, other, CacheOptions{})
	newSeq(t, oc)
	if err := m.Forward(ctx, oc, &ok, &out); err == nil {
		t.Error("another model's cache accepted")
	}
	if c.Len(s) != 3 {
		t.Errorf("failed batches changed the sequence: length %d", c.Len(s))
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	var next Batch
	next.Add(4, s, 3, true, false)
	if err := m.Forward(cancelled, c, &next, &out); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if c.Len(s) != 3 {
		t.Errorf("a cancelled forward changed the sequence: length %d", c.Len(s))
	}
	if err := m.Logits(make([]float32, 10), make([]float32, 63)); err == nil {
		t.Error("Logits with a partial row accepted")
	}
	if err := m.Embed(make([]float32, 64), []int32{300}); err == nil {
		t.Error("Embed of an unknown token accepted")
	}
}

// TestDecodeAllocations checks that a decode step reuses its buffers.
func TestDecodeAllocations(t *testing.T) {
	m := loadSynth(t, tinySpec("qwen2", ggml.TypeQ8_0))
	c := newCache(t, m, CacheOptions{MaxSequences: 2})
	s0, s1 := newSeq(t, c), newSeq(t, c)
	var b Batch
	var out Output
	step := func() {
		if c.Len(s0) >= 100 {
			c.Truncate(s0, 1)
			c.Truncate(s1, 1)
		}
		b.Clear()
		b.Taps = append(b.Taps, 1)
		b.Add(5, s0, c.Len(s0), true, true)
		b.Add(6, s1, c.Len(s1), true, true)
		if err := m.Forward(context.Background(), c, &b, &out); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if n := testing.AllocsPerRun(50, step); n != 0 {
		t.Errorf("%v allocations per decode step", n)
	}
}

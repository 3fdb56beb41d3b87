package scheduler

import (
	"context"
	"slices"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
)

// TestPrefixEntries checks the prefix cache's bookkeeping: the longest
// match wins, entries that a longer one covers are released, the least
// recently used entry goes first, and the best match for a prompt is
// evicted last.
func TestPrefixEntries(t *testing.T) {
	m, _ := tinyModel(t, tinySpec())
	c, err := m.NewCache(llm.CacheOptions{Type: ggml.TypeF16, MaxSequences: 8})
	if err != nil {
		t.Fatal(err)
	}
	fill := func(toks []int32) llm.SeqID {
		seq, err := c.NewSeq()
		if err != nil {
			t.Fatal(err)
		}
		var b llm.Batch
		var out llm.Output
		b.AddSequence(seq, 0, toks, false)
		if err := m.Forward(context.Background(), c, &b, &out); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	p := prefixCache{max: 3}
	a := []int32{1, 10, 11, 12, 13, 14}
	b := []int32{1, 20, 21, 22, 23}
	p.insert(c, fill(a), a)
	p.insert(c, fill(b), b)
	p.insert(c, fill([]int32{1, 2}), []int32{1, 2}) // too short to keep
	if len(p.entries) != 2 || c.Sequences() != 2 {
		t.Fatalf("%d entries, %d sequences", len(p.entries), c.Sequences())
	}
	// A longer sequence covers a, which is released; a prefix of b is
	// covered by b and released at once.
	a2 := append(slices.Clone(a), 15, 16)
	p.insert(c, fill(a2), a2)
	p.insert(c, fill(b[:4]), b[:4])
	if len(p.entries) != 2 || c.Sequences() != 2 || p.tokens() != len(a2)+len(b) {
		t.Fatalf("after covering inserts: %d entries, %d sequences, %d tokens", len(p.entries), c.Sequences(), p.tokens())
	}
	// Take the longest match, truncated to the common prefix.
	prompt := []int32{1, 10, 11, 12, 13, 99}
	seq, n, ok := p.take(c, prompt)
	if !ok || n != 5 || c.Len(seq) != 5 {
		t.Fatalf("take: ok %v, %d tokens, length %d", ok, n, c.Len(seq))
	}
	c.Release(seq)
	if _, _, ok := p.take(c, []int32{1, 10, 11, 40}); ok {
		t.Errorf("a 3-token match was used")
	}
	// b was used least recently, unless a prompt touches it.
	p.touch([]int32{1, 20, 21, 22, 50})
	if !p.evict(c) || len(p.entries) != 1 || !slices.Equal(p.entries[0].toks, b) {
		t.Errorf("eviction kept %v", p.entries)
	}
	p.clear(c)
	if c.Sequences() != 0 || c.Reserved() != 0 {
		t.Errorf("after clear: %d sequences, %d reserved", c.Sequences(), c.Reserved())
	}
}

// TestPrefixCacheUnderPressure runs distinct prompts one after another in
// a budget that holds two sequences: cached entries make way for new
// requests, which give the output they give without the cache.
func TestPrefixCacheUnderPressure(t *testing.T) {
	m, tok := tinyModel(t, tinySpec())
	s := start(t, m, tok, Options{KVTokens: 512, MaxSequences: 2})
	plain := start(t, m, tok, Options{NoPrefixCache: true})
	for i, p := range prompts(30, 31, 32, 33, 34) {
		p[1] = int32(300 + i) // no common prefix
		got := run(t, s, &Request{Prompt: p, MaxTokens: 8, Params: greedy()})
		want := run(t, plain, &Request{Prompt: p, MaxTokens: 8, Params: greedy()})
		if got.err != nil || !slices.Equal(got.tokens[0], want.tokens[0]) {
			t.Errorf("prompt %d: %v %v, want %v", i, got.err, got.tokens[0], want.tokens[0])
		}
		if st := s.Stats(); st.KVUsedTokens > st.KVTotalTokens || st.Preemptions != 0 {
			t.Errorf("prompt %d: stats %+v", i, st)
		}
	}
	waitFor(t, "the last entry", func() bool { return s.Stats().PrefixCacheTokens > 0 })
}

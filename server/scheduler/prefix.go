package scheduler

import (
	"slices"

	"github.com/carryon/carryon/models/llm"
)

// minPrefixMatch is the fewest leading tokens a prompt must share with a
// cached sequence for the scheduler to fork it: shorter matches (a BOS and
// little else) are not worth copying a whole cached sequence for.
const minPrefixMatch = 4

// prefixCache keeps the KV of finished sequences for later prompts that
// start the same way. It is owned by the scheduler's loop.
type prefixCache struct {
	entries []prefixEntry
	max     int    // entries kept at most
	clock   uint64 // use counter for LRU order
}

// prefixEntry is a cached sequence and the tokens its KV holds.
type prefixEntry struct {
	seq  llm.SeqID
	toks []int32 // read-only: events may alias the same array
	used uint64
}

// tokens returns the number of positions the entries hold.
func (p *prefixCache) tokens() int {
	n := 0
	for _, e := range p.entries {
		n += len(e.toks)
	}
	return n
}

// insert caches sequence seq holding toks, or releases it when it is too
// short or an entry already holds toks as its prefix. Entries whose tokens
// are a prefix of toks are released: the new entry serves whatever they
// served.
func (p *prefixCache) insert(c *llm.Cache, seq llm.SeqID, toks []int32) {
	if len(toks) < minPrefixMatch || p.max == 0 {
		_ = c.Release(seq)
		return
	}
	p.clock++
	kept := p.entries[:0]
	var covered bool
	for _, e := range p.entries {
		switch {
		case covered:
			kept = append(kept, e)
		case len(e.toks) >= len(toks) && commonPrefix(e.toks, toks) == len(toks):
			covered = true
			e.used = p.clock
			kept = append(kept, e)
		case commonPrefix(e.toks, toks) == len(e.toks):
			_ = c.Release(e.seq)
		default:
			kept = append(kept, e)
		}
	}
	clear(p.entries[len(kept):])
	p.entries = kept
	if covered {
		_ = c.Release(seq)
		return
	}
	for len(p.entries) >= p.max {
		p.evict(c)
	}
	p.entries = append(p.entries, prefixEntry{seq: seq, toks: toks, used: p.clock})
}

// take looks for the entry sharing the longest prefix with prompt (at least
// minPrefixMatch tokens) and returns a fork of it truncated to that prefix,
// with the prefix length. ok is false when no entry matches or the fork
// does not fit.
func (p *prefixCache) take(c *llm.Cache, prompt []int32) (seq llm.SeqID, n int, ok bool) {
	best, bestN := p.best(prompt)
	if best < 0 {
		return -1, 0, false
	}
	e := &p.entries[best]
	fork, err := c.Fork(e.seq)
	if err != nil {
		return -1, 0, false
	}
	if err := c.Truncate(fork, bestN); err != nil {
		_ = c.Release(fork)
		return -1, 0, false
	}
	p.clock++
	e.used = p.clock
	return fork, bestN, true
}

// best returns the index of the entry sharing the longest prefix with
// prompt, at least minPrefixMatch tokens (the most recently used among
// equals), and the prefix length; the index is -1 when none does.
func (p *prefixCache) best(prompt []int32) (int, int) {
	best, bestN := -1, minPrefixMatch-1
	for i, e := range p.entries {
		k := commonPrefix(e.toks, prompt)
		if k > bestN || (k == bestN && best >= 0 && e.used > p.entries[best].used) {
			best, bestN = i, k
		}
	}
	return best, bestN
}

// touch marks the entry that best matches prompt as the most recently
// used, so that making room for the prompt evicts it last.
func (p *prefixCache) touch(prompt []int32) {
	if i, _ := p.best(prompt); i >= 0 {
		p.clock++
		p.entries[i].used = p.clock
	}
}

// evict releases the least recently used entry; it reports whether there
// was one.
func (p *prefixCache) evict(c *llm.Cache) bool {
	if len(p.entries) == 0 {
		return false
	}
	lru := 0
	for i, e := range p.entries {
		if e.used < p.entries[lru].used {
			lru = i
		}
	}
	_ = c.Release(p.entries[lru].seq)
	p.entries = slices.Delete(p.entries, lru, lru+1)
	return true
}

// clear releases every entry.
func (p *prefixCache) clear(c *llm.Cache) {
	for p.evict(c) {
	}
}

// commonPrefix returns the number of leading tokens a and b share.
func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

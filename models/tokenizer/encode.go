package tokenizer

import (
	"math"
	"strings"
)

// spmSpace is the SentencePiece stand-in for a space, U+2581.
const spmSpace = "\u2581"

// Encode converts text to token ids the way llama.cpp's llama_tokenize does.
//
// With addSpecial, BOS is prepended and EOS appended where the vocabulary's
// add_bos_token / add_eos_token rules ask for them. With parseSpecial,
// control tokens written in the text (such as "<|im_start|>") become their
// single ids; without it they are tokenized as plain text. User-defined
// tokens are matched in either case, as llama.cpp does.
//
// For SentencePiece vocabularies every text fragment that starts the input
// or follows a special token gets a leading space when add_space_prefix is
// set (it is by default).
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	frags := t.partition(text, parseSpecial)
	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && t.addBOS && t.bos != noToken {
		out = append(out, t.bos)
	}
	switch t.kind {
	case kindSPM:
		prevSpecial := true
		var enc spmEncoder
		for _, f := range frags {
			if f.token != noToken {
				out = append(out, f.token)
				prevSpecial = true
				continue
			}
			s := f.text
			if t.addSpacePrefix && prevSpecial {
				s = " " + s
			}
			out = enc.encode(t, strings.ReplaceAll(s, " ", spmSpace), out)
			prevSpecial = false
		}
	case kindBPE:
		var enc bpeEncoder
		for _, f := range frags {
			if f.token != noToken {
				out = append(out, f.token)
				continue
			}
			for _, w := range t.preTok.split(f.text) {
				out = enc.encode(t, w, out)
			}
		}
	}
	if addSpecial && t.addEOS && t.eos != noToken {
		out = append(out, t.eos)
	}
	return out
}

// ---------------------------------------------------------------------------
// SentencePiece (SPM) encoding: start from single characters and repeatedly
// merge the adjacent pair whose concatenation is the vocabulary token with
// the highest score (leftmost on ties); characters left without a token are
// written as byte tokens.

type spmSymbol struct {
	start, n   int // byte span in the text; n == 0 once merged away
	prev, next int
}

// spmKey orders the SPM merge queue: higher score first, then leftmost.
func spmKey(score float32, left int) uint64 {
	if score == 0 {
		score = 0 // -0 and +0 tie, as they compare equal
	}
	b := math.Float32bits(score)
	if b&0x80000000 != 0 {
		b = ^b
	} else {
		b |= 0x80000000
	}
	// b now grows with the score; invert it so that higher scores come first.
	return uint64(^b)<<32 | uint64(uint32(left))
}

type spmEncoder struct {
	syms  []spmSymbol
	queue mergeQueue
}

func (e *spmEncoder) encode(t *Tokenizer, text string, out []int32) []int32 {
	e.syms = e.syms[:0]
	e.queue.reset()
	for off := 0; off < len(text); {
		n := min(utf8SeqLen(text[off]), len(text)-off)
		e.syms = append(e.syms, spmSymbol{start: off, n: n, prev: len(e.syms) - 1, next: len(e.syms) + 1})
		off += n
	}
	if len(e.syms) == 0 {
		return out
	}
	e.syms[len(e.syms)-1].next = -1
	for i := 1; i < len(e.syms); i++ {
		e.tryPair(t, text, i-1, i)
	}
	for e.queue.len() > 0 {
		left, right, size := e.queue.pop()
		l, r := &e.syms[left], &e.syms[right]
		if l.n == 0 || r.n == 0 || l.n+r.n != size {
			continue // one side already merged elsewhere
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			e.syms[r.next].prev = left
		}
		e.tryPair(t, text, l.prev, left)
		e.tryPair(t, text, left, l.next)
	}
	for i := 0; i != -1; i = e.syms[i].next {
		s := e.syms[i]
		piece := text[s.start : s.start+s.n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		// Merged symbols are always tokens, so this is a single character
		// that the vocabulary lacks: spell it with byte tokens. (Without
		// byte tokens, where llama.cpp fails, the character becomes the
		// unknown token.)
		spelled := true
		for k := 0; k < len(piece); k++ {
			spelled = spelled && t.byteTokens[piece[k]] != noToken
		}
		switch {
		case spelled:
			for k := 0; k < len(piece); k++ {
				out = append(out, t.byteTokens[piece[k]])
			}
		case t.unk != noToken:
			out = append(out, t.unk)
		}
	}
	return out
}

func (e *spmEncoder) tryPair(t *Tokenizer, text string, left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := e.syms[left], e.syms[right]
	id, ok := t.ids[text[l.start:r.start+r.n]]
	if !ok {
		return
	}
	e.queue.push(spmKey(t.scores[id], left), right, l.n+r.n)
}

// lookupByteToken finds the SPM byte-fallback token of b: "<0xXX>", or else
// the one-byte piece itself.
func (t *Tokenizer) lookupByteToken(b byte) int32 {
	const hexDigits = "0123456789ABCDEF"
	if id, ok := t.ids[string([]byte{'<', '0', 'x', hexDigits[b>>4], hexDigits[b&15], '>'})]; ok {
		return id
	}
	if id, ok := t.ids[string([]byte{b})]; ok {
		return id
	}
	return noToken
}

// ---------------------------------------------------------------------------
// Byte-level BPE encoding of one pre-tokenized word: the word's bytes are
// written in the GPT-2 byte alphabet, then the adjacent pair with the lowest
// merge rank (leftmost on ties) is merged until no ranked pair is left.

type bpeSymbol struct {
	start, n   int // byte span in the encoded word; n == 0 once merged away
	prev, next int
}

// bpeKey orders the BPE merge queue: lower rank first, then leftmost.
func bpeKey(rank int32, left int) uint64 {
	return uint64(uint32(rank))<<32 | uint64(uint32(left))
}

type bpeEncoder struct {
	buf   []byte
	syms  []bpeSymbol
	queue mergeQueue
}

func (e *bpeEncoder) encode(t *Tokenizer, word string, out []int32) []int32 {
	e.buf = e.buf[:0]
	for i := 0; i < len(word); i++ {
		e.buf = append(e.buf, byteToText[word[i]]...)
	}
	w := string(e.buf)
	if t.ignoreMerges {
		if id, ok := t.ids[w]; ok {
			return append(out, id)
		}
	}
	e.syms = e.syms[:0]
	e.queue.reset()
	for off := 0; off < len(w); {
		n := min(utf8SeqLen(w[off]), len(w)-off)
		e.syms = append(e.syms, bpeSymbol{start: off, n: n, prev: len(e.syms) - 1, next: len(e.syms) + 1})
		off += n
	}
	if len(e.syms) == 0 {
		return out
	}
	e.syms[len(e.syms)-1].next = -1
	for i := 1; i < len(e.syms); i++ {
		e.tryPair(t, w, i-1, i)
	}
	for e.queue.len() > 0 {
		left, right, size := e.queue.pop()
		l, r := &e.syms[left], &e.syms[right]
		if l.n == 0 || r.n == 0 || l.n+r.n != size {
			continue // outdated: one side changed since it was queued
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			e.syms[r.next].prev = left
		}
		e.tryPair(t, w, l.prev, left)
		e.tryPair(t, w, left, l.next)
	}
	for i := 0; i != -1; i = e.syms[i].next {
		s := e.syms[i]
		piece := w[s.start : s.start+s.n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		// No token for this piece: llama.cpp looks up each of its bytes as
		// a one-byte token and silently drops those that have none.
		for k := 0; k < len(piece); k++ {
			if id, ok := t.ids[piece[k:k+1]]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func (e *bpeEncoder) tryPair(t *Tokenizer, w string, left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := e.syms[left], e.syms[right]
	rank, ok := t.ranks[mergePair{w[l.start : l.start+l.n], w[r.start : r.start+r.n]}]
	if !ok {
		return
	}
	e.queue.push(bpeKey(rank, left), right, l.n+r.n)
}

// ---------------------------------------------------------------------------

// mergeQueue is a binary min-heap of candidate merges keyed by priority
// (the key's low 32 bits hold the left symbol index).
type mergeQueue struct{ items []mergeCand }

type mergeCand struct {
	key         uint64
	right, size int32
}

func (q *mergeQueue) reset()   { q.items = q.items[:0] }
func (q *mergeQueue) len() int { return len(q.items) }

func (q *mergeQueue) push(key uint64, right, size int) {
	q.items = append(q.items, mergeCand{key, int32(right), int32(size)})
	h := q.items
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= h[i].key {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

// pop removes the first candidate and returns its symbols and byte size.
func (q *mergeQueue) pop() (left, right, size int) {
	h := q.items
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	q.items = h
	for i := 0; ; {
		m, l, r := i, 2*i+1, 2*i+2
		if l < last && h[l].key < h[m].key {
			m = l
		}
		if r < last && h[r].key < h[m].key {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return int(uint32(top.key)), int(top.right), int(top.size)
}

package tokenizer

import (
	"sort"
	"strings"
)

// Token texts that llama.cpp recognises as special when the metadata does
// not name them. A recognised token is also forced to be a control token.
// Where a vocabulary holds several candidates, the first one listed wins.
var (
	eotTexts = []string{
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
		"<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
	}
	eomTexts    = []string{"<|eom_id|>"}
	fimPreTexts = []string{
		"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
		"<|code_prefix|>", "<|prefix|>",
	}
	fimSufTexts = []string{
		"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
		"<|code_suffix|>", "<|suffix|>",
	}
	fimMidTexts = []string{
		"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
		"<|code_middle|>", "<|middle|>",
	}
	fimPadTexts = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}
	fimRepTexts = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}
	fimSepTexts = []string{"<|file_sep|>"}

	// eogTexts end generation wherever they appear in a vocabulary.
	eogTexts = []string{
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
		"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
		"<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
		"<｜end▁of▁sentence｜>", "[e~[",
	}
)

// detectSpecialTokens completes the special ids from token texts and builds
// the end-of-generation set, following llama.cpp's vocabulary loader.
func (t *Tokenizer) detectSpecialTokens() {
	detect := func(id *int32, texts []string) {
		if *id != noToken {
			return
		}
		for _, s := range texts {
			if v, ok := t.ids[s]; ok {
				*id = v
				t.attrs[v] |= attrControl
				return
			}
		}
	}
	detect(&t.eot, eotTexts)
	detect(&t.eom, eomTexts)
	for i, texts := range [][]string{fimPreTexts, fimSufTexts, fimMidTexts, fimPadTexts, fimRepTexts, fimSepTexts} {
		detect(&t.fim[i], texts)
	}

	t.eog = map[int32]bool{}
	for _, id := range t.fim[3:] { // pad, repository, file separator
		if id != noToken {
			t.eog[id] = true
		}
	}
	for _, s := range eogTexts {
		if v, ok := t.ids[s]; ok {
			t.eog[v] = true
			t.attrs[v] |= attrControl
		}
	}
	// gpt-oss markup tokens are always rendered.
	for _, s := range []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"} {
		if v, ok := t.ids[s]; ok {
			t.attrs[v] = attrUserDefined
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id != noToken {
			t.eog[id] = true
		}
	}
	has := func(s string) (int32, bool) {
		v, ok := t.ids[s]
		return v, ok && t.eog[v]
	}
	// Where "<|return|>" and "<|call|>" (or "<|calls|>" and "<|flush|>")
	// end turns, "<|end|>" only ends a message and is not an EOG token.
	_, ret := has("<|return|>")
	_, call := has("<|call|>")
	_, calls := has("<|calls|>")
	_, flush := has("<|flush|>")
	if end, ok := has("<|end|>"); ok && ((ret && (call || calls)) || ((call || calls) && flush)) {
		delete(t.eog, end)
		t.attrs[end] = attrUserDefined
	}
	// With "<|tool_response>", "</s>" is ordinary text.
	if _, ok := has("<|tool_response>"); ok {
		if s, ok := has("</s>"); ok {
			delete(t.eog, s)
			t.attrs[s] = attrNormal
		}
	}
}

// fragment is a stretch of input text, or a special token found in it.
type fragment struct {
	text  string
	token int32 // noToken for text
}

// partition splits text around the special tokens it contains, longest
// token first, as llama.cpp's tokenizer_st_partition does. User-defined
// tokens are always matched; control and unknown tokens only with
// parseSpecial.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{text: text, token: noToken}}
	for _, id := range t.specialIndex.occurring(t, text) {
		if !parseSpecial && t.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		piece := t.pieces[id]
		var next []fragment
		changed := false
		for i, f := range frags {
			if f.token != noToken || !strings.Contains(f.text, piece) {
				if changed {
					next = append(next, f)
				}
				continue
			}
			if !changed {
				changed = true
				next = append(make([]fragment, 0, len(frags)+4), frags[:i]...)
			}
			rest := f.text
			for {
				k := strings.Index(rest, piece)
				if k < 0 {
					break
				}
				if k > 0 {
					next = append(next, fragment{text: rest[:k], token: noToken})
				}
				next = append(next, fragment{token: id})
				rest = rest[k+len(piece):]
			}
			if rest != "" {
				next = append(next, fragment{text: rest, token: noToken})
			}
		}
		if changed {
			frags = next
		}
	}
	return frags
}

// specialIndex finds quickly which special tokens occur in a text, so that
// partition only searches for those. Tokens are bucketed by their first two
// bytes (one-byte tokens by their only byte).
type specialIndex struct {
	order  map[int32]int      // token -> position in Tokenizer.special
	single [256][]int32       // one-byte tokens by byte
	pairs  []uint64           // bit set over the 65536 two-byte prefixes
	byPair map[uint16][]int32 // tokens by two-byte prefix
}

func newSpecialIndex(pieces []string, special []int32) *specialIndex {
	x := &specialIndex{order: make(map[int32]int, len(special)), pairs: make([]uint64, 1<<16/64), byPair: map[uint16][]int32{}}
	for i, id := range special {
		x.order[id] = i
		p := pieces[id]
		if len(p) == 1 {
			x.single[p[0]] = append(x.single[p[0]], id)
			continue
		}
		k := uint16(p[0])<<8 | uint16(p[1])
		x.pairs[k/64] |= 1 << (k % 64)
		x.byPair[k] = append(x.byPair[k], id)
	}
	return x
}

// occurring returns the special tokens that occur somewhere in text, in
// the order of Tokenizer.special.
func (x *specialIndex) occurring(t *Tokenizer, text string) []int32 {
	var found []int32
	seen := map[int32]bool{}
	mark := func(id int32) {
		if !seen[id] {
			seen[id] = true
			found = append(found, id)
		}
	}
	for i := 0; i < len(text); i++ {
		for _, id := range x.single[text[i]] {
			mark(id)
		}
		if i+1 == len(text) {
			break
		}
		k := uint16(text[i])<<8 | uint16(text[i+1])
		if x.pairs[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		for _, id := range x.byPair[k] {
			if !seen[id] && strings.HasPrefix(text[i:], t.pieces[id]) {
				mark(id)
			}
		}
	}
	if len(found) > 1 {
		sortByOrder(found, x.order)
	}
	return found
}

func sortByOrder(ids []int32, order map[int32]int) {
	sort.Slice(ids, func(i, j int) bool { return order[ids[i]] < order[ids[j]] })
}

package synth

import (
	"fmt"

	"github.com/carryon/carryon/models/gguf"
)

// builtinMinVocab is the size of the built-in vocabulary's fixed part:
// <unk>, <s>, </s> and the 256 byte tokens.
const builtinMinVocab = 3 + 256

// Token types of tokenizer.ggml.token_type.
const (
	tokenNormal  = 1
	tokenUnknown = 2
	tokenControl = 3
	tokenUnused  = 5
	tokenByte    = 6
)

// builtinVocab writes a SentencePiece-style ("llama") vocabulary of n
// tokens: <unk>, <s>, </s>, the byte tokens <0x00>…<0xFF>, then pieces
// for the word-start marker, letters, digits and common English letter
// pairs, and unused filler tokens up to n. Text outside the pieces falls
// back to bytes, so every string can be encoded.
func builtinVocab(m *gguf.Metadata, n int) {
	toks := []string{"<unk>", "<s>", "</s>"}
	types := []int32{tokenUnknown, tokenControl, tokenControl}
	for b := 0; b < 256; b++ {
		toks = append(toks, fmt.Sprintf("<0x%02X>", b))
		types = append(types, tokenByte)
	}
	var pieces []string
	pieces = append(pieces, "▁")
	for c := 'a'; c <= 'z'; c++ {
		pieces = append(pieces, string(c))
	}
	for c := 'a'; c <= 'z'; c++ {
		pieces = append(pieces, "▁"+string(c))
	}
	pieces = append(pieces, "th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te", "of", "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha", "as", "ou", "io", "le", "ve", "co", "me", "de", "hi", "ri", "ro", "ic", "ne", "ea")
	pieces = append(pieces, "▁th", "▁the", "▁an", "▁and", "▁to", "▁of", "▁in", "▁is", "▁it", "▁was", "▁he", "▁she", "▁a", ".", ",", "!", "?", "'")
	for c := '0'; c <= '9'; c++ {
		pieces = append(pieces, string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		pieces = append(pieces, string(c), "▁"+string(c))
	}
	seen := map[string]bool{}
	scores := make([]float32, len(toks), n)
	for _, p := range pieces {
		if len(toks) == n {
			break
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		toks = append(toks, p)
		types = append(types, tokenNormal)
		scores = append(scores, -float32(len(scores)))
	}
	for len(toks) < n {
		toks = append(toks, fmt.Sprintf("<unused%d>", len(toks)))
		types = append(types, tokenUnused)
		scores = append(scores, -1e9)
	}
	m.Set("tokenizer.ggml.model", "llama")
	m.Set("tokenizer.ggml.tokens", toks)
	m.Set("tokenizer.ggml.scores", scores)
	m.Set("tokenizer.ggml.token_type", types)
	m.Set("tokenizer.ggml.bos_token_id", uint32(1))
	m.Set("tokenizer.ggml.eos_token_id", uint32(2))
	m.Set("tokenizer.ggml.unknown_token_id", uint32(0))
	m.Set("tokenizer.ggml.add_bos_token", true)
	m.Set("tokenizer.ggml.add_eos_token", false)
}

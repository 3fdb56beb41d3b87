package tokenizer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/carryon/carryon/models/gguf"
)

// Token attributes, as llama.cpp derives them from tokenizer.ggml.token_type.
const (
	attrUnknown     uint16 = 1 << 0
	attrUnused      uint16 = 1 << 1
	attrNormal      uint16 = 1 << 2
	attrControl     uint16 = 1 << 3
	attrUserDefined uint16 = 1 << 4
	attrByte        uint16 = 1 << 5
)

// noToken marks an absent special token.
const noToken int32 = -1

// kind is the tokenization algorithm.
type kind uint8

const (
	kindSPM kind = iota // SentencePiece BPE over scores ("llama")
	kindBPE             // byte-level BPE over merge ranks ("gpt2")
)

// Tokenizer converts between text and token ids for one GGUF vocabulary. It
// is immutable after FromGGUF and safe for concurrent use.
type Tokenizer struct {
	kind  kind
	model string // tokenizer.ggml.model
	pre   string // tokenizer.ggml.pre

	pieces []string // id -> vocabulary text
	scores []float32
	attrs  []uint16
	ids    map[string]int32

	ranks        map[mergePair]int32 // BPE merge ranks
	preTok       preTokenizer        // BPE pre-tokenizer
	ignoreMerges bool                // BPE: a word that is a token is not merged

	bos, eos, eot, eom, unk, pad, sep int32
	// fim holds the fill-in-the-middle ids: prefix, suffix, middle, pad,
	// repository, file separator.
	fim [6]int32
	eog map[int32]bool

	addBOS, addEOS, addSpacePrefix bool
	cleanSpaces                    bool

	// special lists the control, user-defined and unknown tokens, longest
	// text first, for matching them inside raw text.
	special      []int32
	specialIndex *specialIndex
	// byteTokens maps a byte to its SPM byte-fallback token (noToken when
	// the vocabulary has none).
	byteTokens [256]int32
}

type mergePair struct{ left, right string }

// Metadata keys read by FromGGUF.
const (
	keyModel     = "tokenizer.ggml.model"
	keyPre       = "tokenizer.ggml.pre"
	keyTokens    = "tokenizer.ggml.tokens"
	keyScores    = "tokenizer.ggml.scores"
	keyTokenType = "tokenizer.ggml.token_type"
	keyMerges    = "tokenizer.ggml.merges"
	keyAddBOS    = "tokenizer.ggml.add_bos_token"
	keyAddEOS    = "tokenizer.ggml.add_eos_token"
	keyAddPrefix = "tokenizer.ggml.add_space_prefix"
	keyBOS       = "tokenizer.ggml.bos_token_id"
	keyEOS       = "tokenizer.ggml.eos_token_id"
	keyEOT       = "tokenizer.ggml.eot_token_id"
	keyEOM       = "tokenizer.ggml.eom_token_id"
	keyUNK       = "tokenizer.ggml.unknown_token_id"
	keySEP       = "tokenizer.ggml.seperator_token_id" // sic, as written by llama.cpp
	keyPAD       = "tokenizer.ggml.padding_token_id"
	keyFIMPad    = "tokenizer.ggml.fim_pad_token_id"
	keyFIMRep    = "tokenizer.ggml.fim_rep_token_id"
	keyFIMSep    = "tokenizer.ggml.fim_sep_token_id"
	keyFIMPre    = "tokenizer.ggml.fim_pre_token_id"
	keyFIMSuf    = "tokenizer.ggml.fim_suf_token_id"
	keyFIMMid    = "tokenizer.ggml.fim_mid_token_id"
	keyFIMPreOld = "tokenizer.ggml.prefix_token_id"
	keyFIMSufOld = "tokenizer.ggml.suffix_token_id"
	keyFIMMidOld = "tokenizer.ggml.middle_token_id"
)

// preTokenizerConfig is what a tokenizer.ggml.pre name selects.
type preTokenizerConfig struct {
	split        preTokenizer
	cleanSpaces  bool // undo the spaces the tokenizer put before punctuation on decode
	ignoreMerges bool
	addBOS       bool // default for add_bos_token
	noBOS        bool // the default BOS id is dropped
}

// preTokenizers maps the tokenizer.ggml.pre names this package supports to
// their configuration. The empty name means "default".
var preTokenizers = func() map[string]preTokenizerConfig {
	m := map[string]preTokenizerConfig{}
	add := func(cfg preTokenizerConfig, names ...string) {
		for _, n := range names {
			m[n] = cfg
		}
	}
	add(preTokenizerConfig{split: preDefault, cleanSpaces: true}, "", "default")
	add(preTokenizerConfig{split: preLlama3, cleanSpaces: true, ignoreMerges: true, addBOS: true},
		"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano")
	add(preTokenizerConfig{split: preLlama3, cleanSpaces: true}, "dbrx", "smaug-bpe")
	add(preTokenizerConfig{split: preLlama3, cleanSpaces: true, noBOS: true}, "chatglm-bpe", "glm4")
	add(preTokenizerConfig{split: preDeepseekLLM}, "deepseek-llm")
	add(preTokenizerConfig{split: preDeepseekCoder}, "deepseek-coder")
	add(preTokenizerConfig{split: preFalcon, cleanSpaces: true}, "falcon")
	add(preTokenizerConfig{split: preGPT2, cleanSpaces: true},
		"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
		"mellum", "modern-bert", "exaone4", "mpt", "olmo")
	add(preTokenizerConfig{split: preStarCoder, cleanSpaces: true},
		"starcoder", "refact", "codeshell", "exaone", "minerva-7b")
	add(preTokenizerConfig{split: preStarCoder}, "command-r", "smollm")
	add(preTokenizerConfig{split: preQwen2}, "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2")
	add(preTokenizerConfig{split: preQwen2, cleanSpaces: true}, "megrez", "stablelm2")
	return m
}()

// FromGGUF builds the tokenizer described by a GGUF file's tokenizer.ggml.*
// metadata, applying the same defaults and overrides as llama.cpp. It
// supports the "llama" (SentencePiece) and "gpt2" (byte-level BPE) models
// and the pre-tokenizers listed in preTokenizers.
func FromGGUF(md *gguf.Metadata) (*Tokenizer, error) {
	if md == nil {
		return nil, fmt.Errorf("tokenizer: no metadata")
	}
	t := &Tokenizer{bos: noToken, eos: noToken, eot: noToken, eom: noToken, unk: noToken, pad: noToken, sep: noToken}
	t.model, _ = md.String(keyModel)
	t.pre, _ = md.String(keyPre)

	switch t.model {
	case "llama":
		t.kind = kindSPM
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addBOS, t.addSpacePrefix = true, true
	case "gpt2":
		t.kind = kindBPE
		t.bos, t.eos = 11, 11
		cfg, ok := preTokenizers[t.pre]
		if !ok {
			return nil, fmt.Errorf("tokenizer: unsupported pre-tokenizer %q", t.pre)
		}
		t.preTok = cfg.split
		t.cleanSpaces = cfg.cleanSpaces
		t.ignoreMerges = cfg.ignoreMerges
		t.addBOS = cfg.addBOS
		if cfg.noBOS {
			t.bos = noToken
		}
	case "":
		return nil, fmt.Errorf("tokenizer: metadata has no %s", keyModel)
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q", t.model)
	}
	if v, ok := md.Bool(keyAddPrefix); ok {
		t.addSpacePrefix = v
	}

	if err := t.loadVocabulary(md); err != nil {
		return nil, err
	}
	if t.kind == kindBPE {
		if err := t.loadMerges(md); err != nil {
			return nil, err
		}
	}
	if err := t.loadSpecialIDs(md); err != nil {
		return nil, err
	}
	t.detectSpecialTokens()

	for id := range t.pieces {
		if t.attrs[id]&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.special = append(t.special, int32(id))
		}
	}
	sort.SliceStable(t.special, func(i, j int) bool {
		return len(t.pieces[t.special[i]]) > len(t.pieces[t.special[j]])
	})

	t.specialIndex = newSpecialIndex(t.pieces, t.special)
	for b := range t.byteTokens {
		t.byteTokens[b] = t.lookupByteToken(byte(b))
	}
	return t, nil
}

func (t *Tokenizer) loadVocabulary(md *gguf.Metadata) error {
	pieces, ok := md.Strings(keyTokens)
	if !ok {
		return fmt.Errorf("tokenizer: metadata has no string array %s", keyTokens)
	}
	n := len(pieces)
	if n == 0 {
		return fmt.Errorf("tokenizer: %s is empty", keyTokens)
	}
	if int64(n) > 1<<31-1 {
		return fmt.Errorf("tokenizer: %s has %d entries, too many", keyTokens, n)
	}
	t.scores = make([]float32, n)
	if _, present := md.Value(keyScores); present {
		if f, ok := md.Float32s(keyScores); ok {
			if len(f) < n {
				return fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyScores, len(f), n)
			}
			copy(t.scores, f)
		} else if iv, ok := md.Int32s(keyScores); ok {
			if len(iv) < n {
				return fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyScores, len(iv), n)
			}
			for i := range t.scores {
				t.scores[i] = float32(iv[i])
			}
		} else {
			return fmt.Errorf("tokenizer: %s is not a numeric array", keyScores)
		}
	}
	t.attrs = make([]uint16, n)
	for i := range t.attrs {
		t.attrs[i] = attrNormal
	}
	if _, present := md.Value(keyTokenType); present {
		types, ok := md.Int32s(keyTokenType)
		if !ok {
			return fmt.Errorf("tokenizer: %s is not an integer array", keyTokenType)
		}
		if len(types) < n {
			return fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyTokenType, len(types), n)
		}
		for i := range t.attrs {
			t.attrs[i] = attrFromType(types[i])
		}
	}
	t.pieces = make([]string, n)
	t.ids = make(map[string]int32, n)
	for i, p := range pieces {
		if p == "" {
			p = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		if prev, dup := t.ids[p]; dup {
			return fmt.Errorf("tokenizer: duplicate token %q has ids %d and %d", p, prev, i)
		}
		t.ids[p] = int32(i)
		t.pieces[i] = p
	}
	return nil
}

// attrFromType maps a llama.cpp token type (1 normal, 2 unknown, 3 control,
// 4 user-defined, 5 unused, 6 byte) to attribute bits; other values are
// undefined (no bits).
func attrFromType(tt int32) uint16 {
	switch tt {
	case 1:
		return attrNormal
	case 2:
		return attrUnknown
	case 3:
		return attrControl
	case 4:
		return attrUserDefined
	case 5:
		return attrUnused
	case 6:
		return attrByte
	}
	return 0
}

func (t *Tokenizer) loadMerges(md *gguf.Metadata) error {
	merges, ok := md.Strings(keyMerges)
	if !ok {
		return fmt.Errorf("tokenizer: metadata has no string array %s", keyMerges)
	}
	t.ranks = make(map[mergePair]int32, len(merges))
	for i, m := range merges {
		// The separator is the first space after the first byte, so that a
		// merge whose left side is a space still parses.
		var p mergePair
		if len(m) > 1 {
			if k := strings.IndexByte(m[1:], ' '); k >= 0 {
				p = mergePair{m[:k+1], m[k+2:]}
			}
		}
		if _, dup := t.ranks[p]; !dup {
			t.ranks[p] = int32(i)
		}
	}
	return nil
}

func (t *Tokenizer) loadSpecialIDs(md *gguf.Metadata) error {
	n := uint64(len(t.pieces))
	var fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep = noToken, noToken, noToken, noToken, noToken, noToken
	fields := []struct {
		key string
		id  *int32
	}{
		{keyBOS, &t.bos}, {keyEOS, &t.eos}, {keyEOT, &t.eot}, {keyEOM, &t.eom},
		{keyUNK, &t.unk}, {keySEP, &t.sep}, {keyPAD, &t.pad},
		{keyFIMPre, &fimPre}, {keyFIMSuf, &fimSuf}, {keyFIMMid, &fimMid},
		{keyFIMPad, &fimPad}, {keyFIMRep, &fimRep}, {keyFIMSep, &fimSep},
		{keyFIMPreOld, &fimPre}, {keyFIMSufOld, &fimSuf}, {keyFIMMidOld, &fimMid},
	}
	for _, f := range fields {
		if *f.id >= 0 && uint64(*f.id) >= n {
			*f.id = noToken // a default outside this vocabulary
		}
		v, ok := md.Uint(f.key)
		if !ok || v >= n {
			continue // missing, or out of range: keep the default
		}
		*f.id = int32(v)
	}
	if v, ok := md.Bool(keyAddBOS); ok {
		t.addBOS = v
	}
	if v, ok := md.Bool(keyAddEOS); ok {
		t.addEOS = v
	}
	if t.addBOS && t.bos == noToken {
		return fmt.Errorf("tokenizer: %s is true, but %s is not set", keyAddBOS, keyBOS)
	}
	if t.addEOS && t.eos == noToken {
		return fmt.Errorf("tokenizer: %s is true, but %s is not set", keyAddEOS, keyEOS)
	}
	t.fim = [6]int32{fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep}
	return nil
}

package tokenizer

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/gguf"
)

// Token types as GGUF stores them.
const (
	ttNormal      = 1
	ttUnknown     = 2
	ttControl     = 3
	ttUserDefined = 4
	ttByte        = 6
)

type handToken struct {
	text  string
	score float32
	typ   int32
}

// spmVocab is a small SentencePiece vocabulary: the three specials, all 256
// byte tokens, a few pieces, a control and a user-defined token.
func spmVocab() []handToken {
	v := []handToken{{"<unk>", 0, ttUnknown}, {"<s>", 0, ttControl}, {"</s>", 0, ttControl}}
	for b := 0; b < 256; b++ {
		v = append(v, handToken{fmt.Sprintf("<0x%02X>", b), 0, ttByte})
	}
	for _, p := range []handToken{
		{"▁", -1, ttNormal}, {"a", -2, ttNormal}, {"b", -2, ttNormal}, {"c", -2, ttNormal},
		{"▁a", -3, ttNormal}, {"ab", -4, ttNormal}, {"▁ab", -5, ttNormal}, {"aa", -6, ttNormal},
		{"bc", -3, ttNormal}, {"abc", -7, ttNormal}, {"▁abc", -1, ttNormal},
		{"<|im_start|>", 0, ttControl}, {"<tag>", 0, ttUserDefined},
	} {
		v = append(v, p)
	}
	return v
}

func spmMetadata(v []handToken) *gguf.Metadata {
	md := &gguf.Metadata{}
	md.Set("tokenizer.ggml.model", "llama")
	md.Set("tokenizer.ggml.pre", "default")
	var texts []string
	var scores []float32
	var types []int32
	for _, tok := range v {
		texts = append(texts, tok.text)
		scores = append(scores, tok.score)
		types = append(types, tok.typ)
	}
	md.Set("tokenizer.ggml.tokens", texts)
	md.Set("tokenizer.ggml.scores", scores)
	md.Set("tokenizer.ggml.token_type", types)
	md.Set("tokenizer.ggml.bos_token_id", uint32(1))
	md.Set("tokenizer.ggml.eos_token_id", uint32(2))
	md.Set("tokenizer.ggml.unknown_token_id", uint32(0))
	return md
}

func mustTokenizer(t testing.TB, md *gguf.Metadata) *Tokenizer {
	t.Helper()
	tok, err := FromGGUF(md)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ids(t testing.TB, tok *Tokenizer, pieces ...string) []int32 {
	t.Helper()
	out := make([]int32, len(pieces))
	for i, p := range pieces {
		id, ok := tok.TokenID(p)
		if !ok {
			t.Fatalf("no token %q", p)
		}
		out[i] = id
	}
	return out
}

func TestSPMEncode(t *testing.T) {
	tok := mustTokenizer(t, spmMetadata(spmVocab()))
	if tok.Model() != "llama" || tok.VocabSize() != 3+256+13 || tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() || tok.AddEOS() {
		t.Fatalf("model %q size %d bos %d eos %d addBOS %v addEOS %v", tok.Model(), tok.VocabSize(), tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS())
	}
	tests := []struct {
		name                     string
		text                     string
		addSpecial, parseSpecial bool
		want                     []string
	}{
		// "▁ab": ▁a (-3) merges before ab (-4), then ▁a+b is ▁ab.
		{"merge by score", "ab", false, false, []string{"▁ab"}},
		// bc (-3) beats ab (-4), then a+bc is abc, ▁+abc is ▁abc.
		{"best pair first", "abc", false, false, []string{"▁abc"}},
		{"empty", "", false, false, nil},
		{"empty with BOS", "", true, false, []string{"<s>"}},
		{"BOS", "ab", true, false, []string{"<s>", "▁ab"}},
		{"spaces", " a", false, false, []string{"▁", "▁a"}},
		// Equal scores: the leftmost pair merges first.
		{"tie leftmost", "caaa", false, false, []string{"▁", "c", "aa", "a"}},
		{"byte fallback", "é", false, false, []string{"▁", "<0xC3>", "<0xA9>"}},
		{"newline bytes", "a\nb", false, false, []string{"▁a", "<0x0A>", "b"}},
		{"control as text", "<|im_start|>", false, false, []string{"▁", "<0x3C>", "<0x7C>", "<0x69>", "<0x6D>", "<0x5F>", "<0x73>", "<0x74>", "a", "<0x72>", "<0x74>", "<0x7C>", "<0x3E>"}},
		// A fragment after a special token gets its own space prefix.
		{"control parsed", "<|im_start|>ab", false, true, []string{"<|im_start|>", "▁ab"}},
		{"control parsed with BOS", "<|im_start|>", true, true, []string{"<s>", "<|im_start|>"}},
		// User-defined tokens are matched even without parseSpecial.
		{"user-defined", "ab<tag>c", false, false, []string{"▁ab", "<tag>", "▁", "c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Encode(tc.text, tc.addSpecial, tc.parseSpecial)
			if want := ids(t, tok, tc.want...); !equalIDs(got, want) {
				t.Errorf("Encode(%q, %v, %v) = %v, want %v (%q)", tc.text, tc.addSpecial, tc.parseSpecial, got, want, tc.want)
			}
		})
	}
}

func TestSPMNoSpacePrefixAndEOS(t *testing.T) {
	md := spmMetadata(spmVocab())
	md.Set("tokenizer.ggml.add_space_prefix", false)
	md.Set("tokenizer.ggml.add_eos_token", true)
	md.Set("tokenizer.ggml.add_bos_token", false)
	tok := mustTokenizer(t, md)
	if got, want := tok.Encode("ab", true, false), ids(t, tok, "ab", "</s>"); !equalIDs(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := tok.Decode(ids(t, tok, "▁ab")); got != " ab" {
		t.Errorf("Decode without space prefix = %q, want %q", got, " ab")
	}
}

func TestSPMDecode(t *testing.T) {
	tok := mustTokenizer(t, spmMetadata(spmVocab()))
	tests := []struct {
		pieces  []string
		want    string
		special string
	}{
		{[]string{"▁ab"}, "ab", "ab"},
		// BOS consumes the first-token space removal, as in llama.cpp.
		{[]string{"<s>", "▁ab"}, " ab", "<s> ab"},
		{[]string{"▁", "▁a", "</s>"}, " a", " a</s>"},
		{[]string{"▁", "<0xC3>", "<0xA9>"}, "é", "é"},
		{[]string{"▁ab", "<tag>", "<unk>"}, "ab<tag>", "ab<tag><unk>"},
	}
	for _, tc := range tests {
		ids := ids(t, tok, tc.pieces...)
		if got := tok.Decode(ids); got != tc.want {
			t.Errorf("Decode(%q) = %q, want %q", tc.pieces, got, tc.want)
		}
		if got := tok.DecodeSpecial(ids); got != tc.special {
			t.Errorf("DecodeSpecial(%q) = %q, want %q", tc.pieces, got, tc.special)
		}
	}
	if got := tok.Decode([]int32{-5, 99999}); got != "" {
		t.Errorf("Decode of unknown ids = %q, want empty", got)
	}
	if got := tok.DecodeToken(ids(t, tok, "▁a")[0], false); got != " a" {
		t.Errorf("DecodeToken(▁a) = %q", got)
	}
}

// bpeVocab is a small byte-level vocabulary: every byte, a few merged
// pieces with their merges, and special tokens.
func bpeMetadata(pre string, extra ...string) *gguf.Metadata {
	var texts []string
	for b := 0; b < 256; b++ {
		texts = append(texts, byteToText[b])
	}
	merges := []string{"h e", "l l", "ll o", "he llo", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ġ ,"}
	for _, m := range merges {
		texts = append(texts, strings.Replace(m, " ", "", 1))
	}
	texts = append(texts, extra...)
	types := make([]int32, len(texts))
	for i := range types {
		types[i] = ttNormal
	}
	texts = append(texts, "<|endoftext|>", "<|eot_id|>", "<tool>")
	types = append(types, ttControl, ttNormal, ttUserDefined)
	md := &gguf.Metadata{}
	md.Set("tokenizer.ggml.model", "gpt2")
	md.Set("tokenizer.ggml.pre", pre)
	md.Set("tokenizer.ggml.tokens", texts)
	md.Set("tokenizer.ggml.token_type", types)
	md.Set("tokenizer.ggml.merges", merges)
	md.Set("tokenizer.ggml.bos_token_id", uint32(len(texts)-3))
	md.Set("tokenizer.ggml.eos_token_id", uint32(len(texts)-3))
	return md
}

func TestBPEEncode(t *testing.T) {
	tok := mustTokenizer(t, bpeMetadata("gpt-2"))
	if tok.Model() != "gpt2" || tok.Pre() != "gpt-2" || tok.AddBOS() {
		t.Fatalf("model %q pre %q addBOS %v", tok.Model(), tok.Pre(), tok.AddBOS())
	}
	tests := []struct {
		name                     string
		text                     string
		addSpecial, parseSpecial bool
		want                     []string
	}{
		{"merges", "hello world", false, false, []string{"hello", "Ġworld"}},
		// Without "wo" or "Ġwo", "Ġw" + "or" is the route to "Ġworld".
		{"rank order", " worl", false, false, []string{"Ġwor", "l"}},
		{"bytes", "hé\n", false, false, []string{"h", "Ã", "©", "Ċ"}},
		{"no BOS by default", "he", true, false, []string{"he"}},
		{"control as text", "<|endoftext|>", false, false, []string{"<|", "endoftext", "|>"}},
		{"control parsed", "hello<|endoftext|>", false, true, []string{"hello", "<|endoftext|>"}},
		{"user-defined", "he<tool>he", false, false, []string{"he", "<tool>", "he"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Encode(tc.text, tc.addSpecial, tc.parseSpecial)
			var want []int32
			for _, p := range tc.want {
				if id, ok := tok.TokenID(p); ok {
					want = append(want, id)
					continue
				}
				// A multi-character piece without a token is spelled out.
				for _, r := range p {
					want = append(want, ids(t, tok, string(r))...)
				}
			}
			if !equalIDs(got, want) {
				t.Errorf("Encode(%q) = %v, want %v (%q)", tc.text, got, want, tc.want)
			}
		})
	}
}

// A word without a token, under a vocabulary that lacks some of its bytes,
// loses those bytes: llama.cpp looks up each byte of the encoded piece as a
// one-byte token.
func TestBPEMissingBytesDropped(t *testing.T) {
	md := &gguf.Metadata{}
	md.Set("tokenizer.ggml.model", "gpt2")
	md.Set("tokenizer.ggml.pre", "gpt-2")
	md.Set("tokenizer.ggml.tokens", []string{"a", "b"})
	md.Set("tokenizer.ggml.merges", []string{})
	tok := mustTokenizer(t, md)
	if got := tok.Encode("aéb", false, false); !equalIDs(got, []int32{0, 1}) {
		t.Errorf("Encode = %v, want [0 1]", got)
	}
}

func TestBPEIgnoreMergesAndBOS(t *testing.T) {
	// llama-bpe takes a word that is itself a token without merging, and
	// adds BOS by default.
	llama := mustTokenizer(t, bpeMetadata("llama-bpe", "Ġwo"))
	gpt2 := mustTokenizer(t, bpeMetadata("gpt-2", "Ġwo"))
	if got, want := llama.Encode(" wo", true, false), ids(t, llama, "<|endoftext|>", "Ġwo"); !equalIDs(got, want) {
		t.Errorf("llama-bpe Encode = %v, want %v", got, want)
	}
	if got, want := gpt2.Encode(" wo", true, false), ids(t, gpt2, "Ġw", "o"); !equalIDs(got, want) {
		t.Errorf("gpt-2 Encode = %v, want %v", got, want)
	}
}

func TestBPEDecode(t *testing.T) {
	gpt2 := mustTokenizer(t, bpeMetadata("gpt-2"))
	coder := mustTokenizer(t, bpeMetadata("deepseek-coder"))
	in := []string{"hello", "Ġ,", "Ġworld", "!", "<|endoftext|>"}
	// GPT-2 cleans " ," up; DeepSeek Coder does not.
	if got := gpt2.Decode(ids(t, gpt2, in...)); got != "hello, world!" {
		t.Errorf("gpt-2 Decode = %q", got)
	}
	if got := coder.Decode(ids(t, coder, in...)); got != "hello , world!" {
		t.Errorf("deepseek-coder Decode = %q", got)
	}
	if got := coder.DecodeSpecial(ids(t, coder, in...)); got != "hello , world!<|endoftext|>" {
		t.Errorf("deepseek-coder DecodeSpecial = %q", got)
	}
	if got := gpt2.Decode(ids(t, gpt2, "h", "Ã", "©", "Ċ")); got != "hé\n" {
		t.Errorf("byte-level Decode = %q", got)
	}
}

func TestCleanUpSpaces(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a , b . c ! d ?", "a, b. c! d?"},
		{"it ' s", "it's"},
		{"a ' ' b", "a'' b"},
		{"I 'm you 're we 've he 's", "I'm you're we've he's"},
		{"don 't I 'd we 'll", "don 't I 'd we 'll"},
		{"", ""},
		{" ,", ","},
	}
	for _, tc := range tests {
		if got := string(cleanUpSpaces([]byte(tc.in))); got != tc.want {
			t.Errorf("cleanUpSpaces(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSpecialTokenDetection(t *testing.T) {
	tok := mustTokenizer(t, bpeMetadata("llama-bpe"))
	eot, _ := tok.TokenID("<|eot_id|>")
	eos := tok.EOS()
	if tok.EOT() != eot || !tok.IsEOG(eot) || !tok.IsEOG(eos) || !tok.IsControl(eot) {
		t.Errorf("EOT %d (want %d), IsEOG(eot) %v, IsEOG(eos) %v, IsControl(eot) %v", tok.EOT(), eot, tok.IsEOG(eot), tok.IsEOG(eos), tok.IsControl(eot))
	}
	if he, _ := tok.TokenID("he"); tok.IsEOG(he) || tok.IsControl(he) {
		t.Errorf("ordinary token is EOG or control")
	}
	// "<|eot_id|>" was stored as a normal token but is now control: with
	// parseSpecial it is one id, and Decode leaves it out.
	if got := tok.Encode("he<|eot_id|>", false, true); !equalIDs(got, ids(t, tok, "he", "<|eot_id|>")) {
		t.Errorf("Encode with parseSpecial = %v", got)
	}
	if got := tok.Decode(ids(t, tok, "he", "<|eot_id|>")); got != "he" {
		t.Errorf("Decode = %q", got)
	}
}

func TestLongestSpecialFirst(t *testing.T) {
	md := bpeMetadata("gpt-2", "<a>", "<a><b>")
	types, _ := md.Int32s("tokenizer.ggml.token_type")
	texts, _ := md.Strings("tokenizer.ggml.tokens")
	for i, s := range texts {
		if s == "<a>" || s == "<a><b>" {
			types[i] = ttControl
		}
	}
	md.Set("tokenizer.ggml.token_type", types)
	tok := mustTokenizer(t, md)
	if got := tok.Encode("<a><b><a>", false, true); !equalIDs(got, ids(t, tok, "<a><b>", "<a>")) {
		t.Errorf("Encode = %v", got)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(md *gguf.Metadata)
		want string
	}{
		{"no model", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.model", "") }, "no tokenizer.ggml.model"},
		{"unsupported model", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.model", "bert") }, "unsupported tokenizer model"},
		{"unsupported pre", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.pre", "tekken") }, "unsupported pre-tokenizer"},
		{"no tokens", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.tokens", []int32{1}) }, "no string array tokenizer.ggml.tokens"},
		{"empty tokens", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.tokens", []string{}) }, "is empty"},
		{"duplicate", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.tokens", []string{"a", "b", "a"}) }, "duplicate token"},
		{"short types", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.token_type", []int32{1}) }, "token_type has 1 entries"},
		{"bad types", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.token_type", "x") }, "not an integer array"},
		{"no merges", func(md *gguf.Metadata) { md.Set("tokenizer.ggml.merges", 3) }, "no string array tokenizer.ggml.merges"},
		{"BOS required", func(md *gguf.Metadata) {
			md.Set("tokenizer.ggml.pre", "glm4")
			md.Set("tokenizer.ggml.bos_token_id", uint32(1<<30))
			md.Set("tokenizer.ggml.add_bos_token", true)
		}, "add_bos_token is true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := bpeMetadata("gpt-2")
			tc.edit(md)
			_, err := FromGGUF(md)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := FromGGUF(nil); err == nil {
		t.Error("FromGGUF(nil) succeeded")
	}
	md := spmMetadata(spmVocab())
	md.Set("tokenizer.ggml.scores", []float32{1})
	if _, err := FromGGUF(md); err == nil || !strings.Contains(err.Error(), "scores has 1 entries") {
		t.Errorf("short scores: %v", err)
	}
}

// An out-of-range special id in the metadata keeps the default, as in
// llama.cpp; defaults outside a small vocabulary are dropped.
func TestSpecialIDRange(t *testing.T) {
	md := bpeMetadata("gpt-2")
	md.Set("tokenizer.ggml.eos_token_id", uint32(1<<20))
	tok := mustTokenizer(t, md)
	if tok.EOS() != 11 {
		t.Errorf("EOS = %d, want the BPE default 11", tok.EOS())
	}
	md = &gguf.Metadata{}
	md.Set("tokenizer.ggml.model", "llama")
	md.Set("tokenizer.ggml.tokens", []string{"<unk>", "a"})
	md.Set("tokenizer.ggml.token_type", []int32{ttUnknown, ttNormal})
	md.Set("tokenizer.ggml.add_bos_token", false)
	tok = mustTokenizer(t, md)
	if tok.BOS() != 1 || tok.EOS() != -1 {
		t.Errorf("BOS %d EOS %d, want the default 1 and none (-1)", tok.BOS(), tok.EOS())
	}
	// "▁aé" with neither "▁" nor byte tokens: characters without a token
	// become the unknown token.
	if got := tok.Encode("aé", true, true); !reflect.DeepEqual(got, []int32{0, 1, 0}) {
		t.Errorf("Encode = %v, want [0 1 0]", got)
	}
}

// TestWriterRoundTrip builds a vocabulary through a GGUF file in memory.
func TestWriterRoundTrip(t *testing.T) {
	w := gguf.NewWriter()
	src := spmMetadata(spmVocab())
	for _, k := range src.Keys() {
		v, _ := src.Value(k)
		w.Meta().Set(k, v)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tok := mustTokenizer(t, &f.Meta)
	if got := tok.Decode(tok.Encode("abc aab", true, false)); got != " abc aab" {
		t.Errorf("round trip = %q", got)
	}
}

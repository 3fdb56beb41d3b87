package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode checks that encoding never panics or yields ids outside the
// vocabulary, and that decoding gives the text back where llama.cpp's
// tokenizers guarantee it, for valid UTF-8: SPM (except for "▁" itself and
// for text after a matched special token, which gains a space) and
// byte-level BPE (up to GPT-2 style space clean-up).
func FuzzEncode(f *testing.F) {
	spm := mustTokenizer(f, spmMetadata(spmVocab()))
	bpes := []*Tokenizer{
		mustTokenizer(f, bpeMetadata("gpt-2")),
		mustTokenizer(f, bpeMetadata("llama-bpe")),
		mustTokenizer(f, bpeMetadata("qwen2")),
		mustTokenizer(f, bpeMetadata("deepseek-llm")),
		mustTokenizer(f, bpeMetadata("deepseek-coder")),
		mustTokenizer(f, bpeMetadata("default")),
	}
	for _, s := range []string{
		"", " ", "hello world", "ab abc\n\n  c", "I'm 'RE 12345 !!", "é中😀\u3000\u00a0x", "\xff\xc3(", "<|im_start|>ab<tag>",
		"<|endoftext|>he<tool>", "\t\r\n ", "▁a", "Über ĳ 2024年",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(tok *Tokenizer, ids []int32) {
			for _, id := range ids {
				if id < 0 || int(id) >= tok.VocabSize() {
					t.Fatalf("%s/%s: id %d out of range for %q", tok.Model(), tok.Pre(), id, s)
				}
			}
		}
		for _, parse := range []bool{false, true} {
			check(spm, spm.Encode(s, true, parse))
			for _, tok := range bpes {
				check(tok, tok.Encode(s, true, parse))
			}
		}
		// Invalid UTF-8 can swallow the bytes of a following "▁" into one
		// byte-spelled symbol (as in llama.cpp), so SPM round-trips only
		// valid text.
		if utf8.ValidString(s) && !strings.Contains(s, spmSpace) && !strings.Contains(s, "<tag>") {
			if got := spm.Decode(spm.Encode(s, false, false)); got != s {
				t.Errorf("SPM: Decode(Encode(%q)) = %q", s, got)
			}
		}
		if utf8.ValidString(s) {
			for _, tok := range bpes {
				want := s
				if tok.cleanSpaces {
					want = string(cleanUpSpaces([]byte(s)))
				}
				if got := tok.Decode(tok.Encode(s, false, false)); got != want {
					t.Errorf("BPE %s: Decode(Encode(%q)) = %q, want %q", tok.Pre(), s, got, want)
				}
			}
		}
		d := spm.NewStreamDecoder(true)
		var streamed strings.Builder
		ids := spm.Encode(s, true, true)
		for _, id := range ids {
			streamed.WriteString(d.Add(id))
		}
		streamed.WriteString(d.Flush())
		var whole []byte
		for _, id := range ids {
			whole = spm.appendPiece(whole, id, 0, true)
		}
		if streamed.String() != string(whole) {
			t.Errorf("stream %q != pieces %q", streamed.String(), whole)
		}
	})
}

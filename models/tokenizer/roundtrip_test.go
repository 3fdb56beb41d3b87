package tokenizer

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/carryon/carryon/models/testenv"
)

// TestVocabRoundTrip decodes the encoding of every test vector input.
// SentencePiece and the BPE vocabularies without space clean-up give the
// text back exactly (SPM removes the space it added in front); GPT-2 gives
// it back up to its clean-up of spaces before punctuation.
func TestVocabRoundTrip(t *testing.T) {
	for _, name := range []string{"llama-spm", "deepseek-llm", "deepseek-coder", "gpt-2"} {
		t.Run(name, func(t *testing.T) {
			path := testenv.Path(t, "vocab/ggml-vocab-"+name+".gguf")
			tok := loadVocab(t, path)
			for _, c := range readVocabCases(t, path+".inp") {
				want := c.text
				if tok.cleanSpaces {
					want = string(cleanUpSpaces([]byte(want)))
				}
				if got := tok.Decode(tok.Encode(c.text, false, false)); got != want {
					t.Errorf("Decode(Encode(%q)) = %q, want %q", c.text, got, want)
				}
				// With BOS, Decode keeps the space SPM put in front.
				withBOS := tok.Decode(tok.Encode(c.text, true, false))
				if tok.addSpacePrefix && c.text != "" {
					want = " " + want
				}
				if withBOS != want {
					t.Errorf("Decode(Encode(%q) with BOS) = %q, want %q", c.text, withBOS, want)
				}
			}
		})
	}
}

// TestVocabSpecialTokens checks BOS/EOS rules and special-token parsing on
// the real vocabularies.
func TestVocabSpecialTokens(t *testing.T) {
	spm := loadVocab(t, testenv.Path(t, "vocab/ggml-vocab-llama-spm.gguf"))
	if got := spm.Encode("Hello", true, false); !equalIDs(got, []int32{1, 15043}) {
		t.Errorf("llama-spm Encode with BOS = %v, want [1 15043]", got)
	}
	// "</s>" is a control token: one id with parseSpecial, text without.
	if got := spm.Encode("Hello</s>", false, true); !equalIDs(got, []int32{15043, 2}) {
		t.Errorf("llama-spm parseSpecial = %v, want [15043 2]", got)
	}
	if got := spm.Encode("</s>", false, false); len(got) < 2 {
		t.Errorf("llama-spm without parseSpecial = %v, want several tokens", got)
	}
	if !spm.IsEOG(2) || spm.IsEOG(1) || spm.Decode([]int32{15043, 2}) != "Hello" || spm.DecodeSpecial([]int32{15043, 2}) != "Hello</s>" {
		t.Errorf("llama-spm EOG/decode of </s> wrong")
	}

	coder := loadVocab(t, testenv.Path(t, "vocab/ggml-vocab-deepseek-coder.gguf"))
	if !coder.AddBOS() || coder.BOS() != 32013 || coder.EOS() != 32014 || !coder.IsEOG(32014) {
		t.Errorf("deepseek-coder: addBOS %v bos %d eos %d", coder.AddBOS(), coder.BOS(), coder.EOS())
	}
	got := coder.Encode("x", true, false)
	if len(got) != 2 || got[0] != 32013 {
		t.Errorf("deepseek-coder Encode with BOS = %v", got)
	}
	// "<|EOT|>" is user-defined: matched as one token even without
	// parseSpecial, and rendered by Decode.
	eot, _ := coder.TokenID("<|EOT|>")
	if got := coder.Encode("a<|EOT|>", false, false); len(got) != 2 || got[1] != eot {
		t.Errorf("deepseek-coder user-defined token: %v", got)
	}
	if got := coder.Decode([]int32{eot}); got != "<|EOT|>" {
		t.Errorf("deepseek-coder Decode(<|EOT|>) = %q", got)
	}

	gpt2 := loadVocab(t, testenv.Path(t, "vocab/ggml-vocab-gpt-2.gguf"))
	if gpt2.AddBOS() || gpt2.EOT() != 50256 || !gpt2.IsEOG(50256) {
		t.Errorf("gpt-2: addBOS %v eot %d", gpt2.AddBOS(), gpt2.EOT())
	}
	if got := gpt2.Encode("Hello<|endoftext|>", true, true); !equalIDs(got, []int32{15496, 50256}) {
		t.Errorf("gpt-2 parseSpecial = %v", got)
	}
}

// streamAll feeds ids, whose text is valid UTF-8, to a stream decoder and
// checks that every chunk is valid UTF-8, that is, no chunk splits a
// character.
func streamAll(t *testing.T, d *StreamDecoder, ids []int32) string {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		s := d.Add(id)
		if !utf8.ValidString(s) {
			t.Errorf("chunk %q after id %d splits a character", s, id)
		}
		b.WriteString(s)
	}
	b.WriteString(d.Flush())
	return b.String()
}

func TestStreamDecoderVocabs(t *testing.T) {
	text := "Ünïcödé ✅ 🚀🦙 中文テスト 한국어 ∑x² — done"
	for _, name := range []string{"llama-spm", "deepseek-llm", "gpt-2"} {
		t.Run(name, func(t *testing.T) {
			tok := loadVocab(t, testenv.Path(t, filepath.Join("vocab", "ggml-vocab-"+name+".gguf")))
			ids := tok.Encode(text, false, false)
			var pieces strings.Builder
			for _, id := range ids {
				pieces.WriteString(tok.DecodeToken(id, false))
			}
			got := streamAll(t, tok.NewStreamDecoder(false), ids)
			if got != pieces.String() {
				t.Errorf("stream = %q, pieces = %q", got, pieces.String())
			}
			if want := strings.TrimPrefix(pieces.String(), " "); tok.Decode(ids) != want {
				t.Errorf("Decode = %q, want %q", tok.Decode(ids), want)
			}
		})
	}
}

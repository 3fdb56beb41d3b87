package tokenizer

import (
	"strings"
	"testing"

	"github.com/carryon/carryon/models/testenv"
)

// benchText is about 10 KB of mixed prose, code, numbers and non-ASCII.
var benchText = strings.Repeat("The quick brown fox jumps over the lazy dog. It's 2024, and we've "+
	"counted 1234567 llamas 🦙 in Ünïcödé land — 中文テスト 한국어!\n\tfunc main() { x := y[3] + 42 }\n", 100)[:10240]

func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"llama-spm", "gpt-2", "deepseek-llm", "deepseek-coder"} {
		b.Run(name, func(b *testing.B) {
			tok := loadVocab(b, testenv.Path(b, "vocab/ggml-vocab-"+name+".gguf"))
			b.SetBytes(int64(len(benchText)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tok.Encode(benchText, true, true)
			}
		})
	}
	for _, pre := range []string{"llama-bpe", "qwen2"} {
		b.Run("handmade-"+pre, func(b *testing.B) {
			tok := mustTokenizer(b, bpeMetadata(pre))
			b.SetBytes(int64(len(benchText)))
			for i := 0; i < b.N; i++ {
				tok.Encode(benchText, true, true)
			}
		})
	}
}

// BenchmarkEncodeLongWord encodes 10 KB without a single word break, the
// worst case for the merge loops.
func BenchmarkEncodeLongWord(b *testing.B) {
	text := strings.Repeat("abcdefghij", 1024)
	for _, name := range []string{"llama-spm", "gpt-2"} {
		b.Run(name, func(b *testing.B) {
			tok := loadVocab(b, testenv.Path(b, "vocab/ggml-vocab-"+name+".gguf"))
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tok.Encode(text, false, false)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := loadVocab(b, testenv.Path(b, "vocab/ggml-vocab-llama-spm.gguf"))
	ids := tok.Encode(benchText, true, false)
	b.SetBytes(int64(len(benchText)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok.Decode(ids)
	}
}

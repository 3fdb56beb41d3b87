package tokenizer

import (
	"reflect"
	"testing"
)

// Expected words are derived by hand from the expressions' semantics.
func TestPreTokenizerWords(t *testing.T) {
	tests := []struct {
		name string
		pre  preTokenizer
		in   string
		want []string
	}{
		// GPT-2: contractions are lower-case only, digits run without limit,
		// a space joins the word after it, the last of several spaces too.
		{"gpt2 contractions", preGPT2, "I'm can't we'RE they'll", []string{"I", "'m", " can", "'t", " we", "'", "RE", " they", "'ll"}},
		{"gpt2 digits", preGPT2, "a 12345 b", []string{"a", " 12345", " b"}},
		{"gpt2 spaces", preGPT2, "a   b  ", []string{"a", "  ", " b", "  "}},
		{"gpt2 newlines", preGPT2, "a\n\n b", []string{"a", "\n\n", " b"}},
		{"gpt2 punctuation", preGPT2, "x!!?  (y)", []string{"x", "!!?", " ", " (", "y", ")"}},
		{"gpt2 cjk emoji", preGPT2, "我想 😁🚀 ok", []string{"我想", " 😁🚀", " ok"}},

		// LLaMA 3: case-insensitive contractions, one optional non-letter
		// before a word, numbers in runs of at most three, newlines kept
		// with the whitespace before them.
		{"llama3 contractions", preLlama3, "I'M we'Re 'x", []string{"I", "'M", " we", "'Re", " '", "x"}},
		{"llama3 digits", preLlama3, "1 12 123 1234 1234567", []string{"1", " ", "12", " ", "123", " ", "123", "4", " ", "123", "456", "7"}},
		{"llama3 prefix", preLlama3, "(abc)_def\tghi", []string{"(abc", ")_", "def", "\tghi"}},
		{"llama3 newlines", preLlama3, "a  \n\n  b\r\n", []string{"a", "  \n\n", " ", " b", "\r\n"}},
		{"llama3 spaces", preLlama3, "a   b   ", []string{"a", "  ", " b", "   "}},
		{"llama3 punct newline", preLlama3, "x:\n\ny", []string{"x", ":\n\n", "y"}},
		{"llama3 cjk emoji", preLlama3, "Hello 😁 ?我想在apple工作1314151天～", []string{"Hello", " 😁", " ?", "我想在apple工作", "131", "415", "1", "天", "～"}},

		// Qwen2: as LLaMA 3 but every digit on its own.
		{"qwen2 digits", preQwen2, "x 2024!", []string{"x", " ", "2", "0", "2", "4", "!"}},
		{"qwen2 contractions", preQwen2, "DON'T you'll", []string{"DON", "'T", " you", "'ll"}},
		{"qwen2 newlines", preQwen2, "a\n\n\n  b", []string{"a", "\n\n\n", " ", " b"}},
		{"qwen2 cjk", preQwen2, "中文，テスト。", []string{"中文", "，テスト", "。"}},
		{"qwen2 emoji", preQwen2, "hi 👋🏽!", []string{"hi", " 👋🏽!"}},

		// DeepSeek LLM: newlines alone, optional space before letter runs and
		// before ASCII punctuation runs, trailing spaces, CJK runs, digit runs.
		{"deepseek-llm", preDeepseekLLM, "Hello, world!\n 2024年 ", []string{"Hello", ",", " world", "!", "\n", " ", "2024", "年", " "}},
		// The ASCII punctuation class [!-/:-~] also holds the lower-case
		// letters, and each expression re-cuts the pieces of the previous
		// one, so "Über" ends up as "Ü" and "ber".
		{"deepseek-llm cased", preDeepseekLLM, "Über ĳ", []string{"Ü", "ber", " ĳ"}},

		// DeepSeek Coder: letters and punctuation as above, one digit each.
		{"deepseek-coder", preDeepseekCoder, "if (x>=10) {\n\treturn;\n}", []string{"if", " (", "x", ">=", "1", "0", ")", " {", "\n", "\treturn", ";", "\n", "}"}},

		// The default (no pre-tokenizer name): punctuation runs, then GPT-2,
		// then digit runs, then groups of three digits.
		{"default", preDefault, "x+y=12345.", []string{"x", "+", "y", "=", "123", "45", "."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.pre.split(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("split(%q)\n got  %q\n want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestPreTokenizerUnicodeClasses checks code points whose classes decide
// where words end: non-ASCII whitespace, numbers beyond ASCII digits,
// marks, and unassigned code points.
func TestPreTokenizerUnicodeClasses(t *testing.T) {
	tests := []struct {
		name string
		pre  preTokenizer
		in   string
		want []string
	}{
		{"nbsp is whitespace", preGPT2, "a\u00a0\u00a0b", []string{"a", "\u00a0", "\u00a0", "b"}},
		{"ideographic space", preLlama3, "a\u3000b", []string{"a", "\u3000b"}},
		{"superscript is a number", preGPT2, "x²³", []string{"x", "²³"}},
		{"combining mark is not a letter", preGPT2, "e\u0301t", []string{"e", "\u0301", "t"}},
		{"unassigned is other", preGPT2, "a\u0378b", []string{"a", "\u0378", "b"}},
		{"invalid utf8 becomes U+FFFD", preGPT2, "a\xffb", []string{"a", "\uFFFD", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.pre.split(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("split(%q)\n got  %q\n want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCodepointFlags(t *testing.T) {
	tests := []struct {
		cp   rune
		want uint16
	}{
		{'a', cpLetter}, {'0', cpNumber}, {' ', cpSeparator | cpWhitespace}, {'\n', cpControl | cpWhitespace},
		{'!', cpPunct}, {'$', cpSymbol}, {'~', cpSymbol}, {0xA0, cpSeparator | cpWhitespace},
		{0x85, cpControl | cpWhitespace}, {0x3000, cpSeparator | cpWhitespace}, {0x1C, cpControl},
		{0x300, cpMark}, {0x378, cpUndefined}, {0xD800, cpControl}, {0xE000, cpControl},
		{0x4E00, cpLetter}, {0x1F600, cpSymbol}, {0x2EBF0, cpLetter}, {0x31EF, cpSymbol},
		{0x10FFFF, cpUndefined}, {0x110000, cpUndefined}, {0x1FFFFF, cpUndefined},
	}
	for _, tc := range tests {
		if got := codepointFlags(tc.cp); got != tc.want {
			t.Errorf("codepointFlags(%U) = %#x, want %#x", tc.cp, got, tc.want)
		}
	}
}

func TestDecodeCodepoints(t *testing.T) {
	tests := []struct {
		in   string
		want []rune
	}{
		{"aé中😀", []rune{'a', 0xE9, 0x4E2D, 0x1F600}},
		{"\xC0\x80", []rune{0}},                // overlong, accepted
		{"\xED\xA0\x80", []rune{0xD800}},       // surrogate, accepted
		{"\xF7\xBF\xBF\xBF", []rune{0x1FFFFF}}, // beyond U+10FFFF
		{"\x80a", []rune{0xFFFD, 'a'}},         // stray continuation
		{"\xE4\xB8", []rune{0xFFFD, 0xFFFD}},   // truncated
		{"\xF8\x80", []rune{0xFFFD, 0xFFFD}},   // no such lead
		{"\xC3(", []rune{0xFFFD, '('}},         // lead without continuation
	}
	for _, tc := range tests {
		got := decodeCodepoints(tc.in, nil)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decodeCodepoints(%q) = %U, want %U", tc.in, got, tc.want)
		}
		// Everything decoded re-encodes to the same bytes, except what
		// became U+FFFD, lies beyond U+10FFFF or was overlong.
		if tc.want[0] != 0xFFFD && tc.want[0] <= 0x10FFFF && tc.in[0] != 0xC0 {
			var b []byte
			for _, cp := range got {
				b = appendCodepoint(b, cp)
			}
			if string(b) != tc.in {
				t.Errorf("re-encoding %q gave %q", tc.in, b)
			}
		}
	}
}

func TestByteAlphabet(t *testing.T) {
	if byteToText[' '] != "Ġ" || byteToText['\n'] != "Ċ" || byteToText['a'] != "a" || byteToText[0xAD] != "Ń" {
		t.Errorf("byte alphabet: space %q newline %q a %q 0xAD %q", byteToText[' '], byteToText['\n'], byteToText['a'], byteToText[0xAD])
	}
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteToRune[b]
		if seen[r] || runeToByte[r] != byte(b) {
			t.Fatalf("byte %#x maps to %U, not a bijection", b, r)
		}
		seen[r] = true
	}
}

func TestDeepseekLetterRangesSorted(t *testing.T) {
	for i, r := range deepseekLetterRanges {
		if r[0] > r[1] || (i > 0 && r[0] <= deepseekLetterRanges[i-1][1]) {
			t.Fatalf("range %d %U-%U out of order", i, r[0], r[1])
		}
		for _, cp := range []rune{r[0], r[1]} {
			if !isDeepseekLetter(cp) || codepointFlags(cp)&cpLetter == 0 {
				t.Errorf("%U: isDeepseekLetter %v, letter flag %v", cp, isDeepseekLetter(cp), codepointFlags(cp)&cpLetter != 0)
			}
		}
	}
	if isDeepseekLetter('0') || isDeepseekLetter(0x4E00) || isDeepseekLetter(0xD7) {
		t.Error("non-letters accepted")
	}
}

package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/testenv"
)

// vocabCase is one input of llama.cpp's tokenizer test vectors.
type vocabCase struct {
	text string
	ids  []int32
}

// readVocabCases parses a .inp/.out pair the way llama.cpp's
// test-tokenizer-0 does: inputs are separated by "\n__ggml_vocab_test__\n"
// and kept untrimmed; each output line is trimmed and split on spaces.
func readVocabCases(t *testing.T, inpPath string) []vocabCase {
	t.Helper()
	raw, err := os.ReadFile(inpPath)
	if err != nil {
		t.Fatal(err)
	}
	outRaw, err := os.ReadFile(strings.TrimSuffix(inpPath, ".inp") + ".out")
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var inputs []string
	for s := string(raw); s != ""; {
		k := strings.Index(s, sep)
		if k < 0 {
			inputs = append(inputs, s)
			break
		}
		inputs = append(inputs, s[:k])
		s = s[k+len(sep):]
	}
	lines := strings.Split(string(outRaw), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1] // getline yields no line after the final newline
	}
	if len(lines) != len(inputs) {
		t.Fatalf("%s: %d inputs but %d output lines", inpPath, len(inputs), len(lines))
	}
	cases := make([]vocabCase, len(inputs))
	for i, in := range inputs {
		cases[i].text = in
		for _, f := range strings.Fields(lines[i]) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s line %d: %v", inpPath, i+1, err)
			}
			cases[i].ids = append(cases[i].ids, int32(v))
		}
	}
	return cases
}

func loadVocab(t testing.TB, path string) *Tokenizer {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(&f.Meta)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tok
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestVocabVectors runs every llama.cpp test vector file in the shared
// vocab directory against its GGUF vocabulary, encoding as test-tokenizer-0
// does (no BOS/EOS, special tokens not parsed).
func TestVocabVectors(t *testing.T) {
	dir := testenv.Path(t, "vocab")
	inps, err := filepath.Glob(filepath.Join(dir, "*.inp"))
	if err != nil || len(inps) == 0 {
		t.Fatalf("no .inp files in %s (%v)", dir, err)
	}
	for _, inp := range inps {
		name := strings.TrimSuffix(filepath.Base(inp), ".gguf.inp")
		t.Run(name, func(t *testing.T) {
			vocabPath := strings.TrimSuffix(inp, ".inp")
			if _, err := os.Stat(vocabPath); err != nil {
				t.Skipf("%s is not in the shared test data (too large to ship); only its pre-tokenizer is tested", filepath.Base(vocabPath))
			}
			tok := loadVocab(t, vocabPath)
			cases := readVocabCases(t, inp)
			pass := 0
			for i, c := range cases {
				got := tok.Encode(c.text, false, false)
				if equalIDs(got, c.ids) {
					pass++
					continue
				}
				t.Errorf("input %d %q:\n got  %v\n want %v", i, c.text, got, c.ids)
			}
			t.Logf("%s: %d/%d inputs match llama.cpp", filepath.Base(vocabPath), pass, len(cases))
		})
	}
}

package tokenizer

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/dlclark/regexp2"
)

// The tests in this file check the hand-written pattern matchers against a
// backtracking regular-expression engine running the expressions llama.cpp
// runs, on the same per-code-point views llama.cpp builds.

// Expressions as llama.cpp rewrites them for the collapsed view: \p{L} is
// [\xD2A-Za-z], \p{N} is [\xD10-9], \p{P} is [\xD3 + llama.cpp's ASCII list].
const (
	reCollL = `\u00D2A-Za-z`
	reCollN = `\u00D10-9`
	reCollP = `\u00D3!-#%-*,-/:-;?-@\[-\]_\{\}`

	reQwen2 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n` + reCollL + reCollN + `]?[` + reCollL + `]+|[` + reCollN +
		`]| ?[^\s` + reCollL + reCollN + `]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reLlama3 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n` + reCollL + reCollN + `]?[` + reCollL + `]+|[` + reCollN +
		`]{1,3}| ?[^\s` + reCollL + reCollN + `]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?[` + reCollL + `]+| ?[` + reCollN + `]+| ?[^\s` + reCollL + reCollN + `]+|\s+(?!\S)|\s+`
)

// oracleStep is one expression over one view.
type oracleStep struct {
	re *regexp2.Regexp
	v  view
}

func mustOracle(t testing.TB, expr string, v view) oracleStep {
	t.Helper()
	re, err := regexp2.Compile(expr, regexp2.ECMAScript)
	if err != nil {
		t.Fatalf("compile %q: %v", expr, err)
	}
	return oracleStep{re, v}
}

// oracleSplit applies steps as llama.cpp's unicode_regex_split does:
// each expression cuts every current piece into matches and gaps.
func oracleSplit(t testing.TB, s string, steps []oracleStep) []int {
	st := newSplitText(s)
	pieces := []int{len(st.cps)}
	for _, step := range steps {
		var next []int
		start := 0
		for _, n := range pieces {
			units := make([]rune, n)
			for i := range units {
				units[i] = st.unit(step.v, start+i)
			}
			prev := 0
			m, err := step.re.FindRunesMatch(units)
			for ; m != nil && err == nil; m, err = step.re.FindNextMatch(m) {
				if m.Index > prev {
					next = append(next, m.Index-prev)
				}
				next = append(next, m.Length)
				prev = m.Index + m.Length
			}
			if err != nil {
				t.Fatal(err)
			}
			if prev < n {
				next = append(next, n-prev)
			}
			start += n
		}
		pieces = next
	}
	return pieces
}

func splitLengths(p preTokenizer, s string) []int {
	st := newSplitText(s)
	pieces := []int{len(st.cps)}
	for _, step := range p {
		pieces = step.split(st, pieces)
	}
	return pieces
}

// oracleAlphabet mixes the code point classes that matter: ASCII letters
// (including the contraction letters), digits, spaces and newlines,
// apostrophes, punctuation and symbols, and non-ASCII letters, numbers,
// marks, symbols, whitespace, controls and unassigned code points.
var oracleAlphabet = []string{
	"a", "s", "t", "S", "T", "r", "e", "E", "v", "l", "L", "d", "m", "M", "x", "Z",
	"0", "1", "7", " ", " ", " ", "\t", "\n", "\r", "\v", "\f", "'", "'", ".", ",", "!", "?", "-", "(", "$", "~", "`", "_", "@",
	"é", "ß", "Б", "ж", "中", "文", "한", "ー", "ก", "²", "٣", "Ⅻ", "\u0301", "\u00a0", "\u3000", "\u2009", "\u0085",
	"€", "✅", "😀", "🦙", "！", "～", "‘", "。", "\x00", "\x1f", "\u200d", "\u0378", "\U0001F9AA",
}

func randomText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(oracleAlphabet[rng.Intn(len(oracleAlphabet))])
	}
	return b.String()
}

func checkAgainstOracle(t *testing.T, name string, p preTokenizer, steps []oracleStep) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	fails := 0
	for i := 0; i < 3000 && fails < 5; i++ {
		s := randomText(rng, 1+rng.Intn(24))
		got, want := splitLengths(p, s), oracleSplit(t, s, steps)
		if !equalInts(got, want) {
			fails++
			t.Errorf("%s: %q:\n got  %v\n want %v", name, s, got, want)
		}
	}
}

func equalInts(a, b []int) bool {
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

func TestQwen2MatchesRegex(t *testing.T) {
	checkAgainstOracle(t, "qwen2", preQwen2, []oracleStep{mustOracle(t, reQwen2, viewCollapsed)})
}

func TestLlama3MatchesRegex(t *testing.T) {
	checkAgainstOracle(t, "llama3", preLlama3, []oracleStep{mustOracle(t, reLlama3, viewCollapsed)})
}

func TestGPT2MatchesRegex(t *testing.T) {
	checkAgainstOracle(t, "gpt2", preGPT2, []oracleStep{mustOracle(t, reGPT2, viewCollapsed)})
}

func TestDeepseekCoderMatchesRegex(t *testing.T) {
	checkAgainstOracle(t, "deepseek-coder", preDeepseekCoder, []oracleStep{
		mustOracle(t, `[\r\n]`, viewWide),
		mustOracle(t, `\s?[`+reCollL+`]+`, viewCollapsed),
		mustOracle(t, `\s?[`+reCollP+`]+`, viewCollapsed),
		mustOracle(t, `[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+`, viewWide),
		mustOracle(t, `[`+reCollN+`]`, viewCollapsed),
	})
}

func TestDeepseekLLMMatchesRegex(t *testing.T) {
	var letters strings.Builder
	for _, r := range deepseekLetterRanges {
		letters.WriteString(regexp2.Escape(string(r[0])) + "-" + regexp2.Escape(string(r[1])))
	}
	checkAgainstOracle(t, "deepseek-llm", preDeepseekLLM, []oracleStep{
		mustOracle(t, `[\r\n]`, viewWide),
		mustOracle(t, `\s?[`+letters.String()+`]+`, viewWide),
		mustOracle(t, `\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+`, viewWide),
		mustOracle(t, `\s+(?![\s\S])`, viewWide),
		mustOracle(t, `[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+`, viewWide),
		mustOracle(t, `[`+reCollN+`]+`, viewCollapsed),
	})
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWorkedSolutionGolden pins the worked format of each operation.
func TestWorkedSolutionGolden(t *testing.T) {
	for _, tc := range []struct {
		p    arithmeticProblem
		want string
	}{
		{arithmeticProblem{a: 398, b: 385, op: '+', digits: 3},
			"398+385 c0 3000\n039+038 c1 8300\n003+003 c1 7830\n000+000 c0 0783\nanswer: 783"},
		{arithmeticProblem{a: 719, b: 990, op: '+', digits: 3},
			"719+990 c0 9000\n071+099 c0 0900\n007+009 c1 7090\n000+000 c1 1709\nanswer: 1709"},
		{arithmeticProblem{a: 453, b: 161, op: '-', digits: 3},
			"453-161 b0 2000\n045-016 b0 9200\n004-001 b1 2920\n000-000 b0 0292\nanswer: 292"},
		{arithmeticProblem{a: 100, b: 100, op: '-', digits: 3},
			"100-100 b0 0000\n010-010 b0 0000\n001-001 b0 0000\n000-000 b0 0000\nanswer: 0"},
		{arithmeticProblem{a: 912, b: 7, op: '*', digits: 3},
			"912*7 c0 4000\n091*7 c1 8400\n009*7 c0 3840\n000*7 c6 6384\nanswer: 6384"},
	} {
		if got := tc.p.workedSolution(); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.p.question(), got, tc.want)
		}
	}
}

// TestWorkedSolutionsAreRight checks, for many drawn problems of every
// operation and width, that the lines have one length, the last line's
// digits are the result, and the answer line parses to the result.
func TestWorkedSolutionsAreRight(t *testing.T) {
	ops, err := parseArithmeticOps("add,sub,mul")
	if err != nil {
		t.Fatal(err)
	}
	for digits := 1; digits <= 5; digits++ {
		train, _, err := arithmeticSets(ops, digits, 60, 0, uint64(digits))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range train {
			lines := strings.Split(p.workedSolution(), "\n")
			if len(lines) != digits+2 {
				t.Fatalf("%s: %d lines, want %d", p.question(), len(lines), digits+2)
			}
			for _, l := range lines[1 : digits+1] {
				if len(l) != len(lines[0]) {
					t.Fatalf("%s: lines of different lengths: %q", p.question(), lines)
				}
			}
			if !strings.HasPrefix(lines[0], p.question()+" ") {
				t.Fatalf("%s: first line %q does not restate the question", p.question(), lines[0])
			}
			final := lines[digits]
			acc, err := strconv.Atoi(final[len(final)-digits-1:])
			if err != nil || acc != p.result() {
				t.Fatalf("%s: last line %q, want the result %d", p.question(), final, p.result())
			}
			got, ok := parseAnswer(lines[digits+1])
			if !ok || got != int64(p.result()) {
				t.Fatalf("%s: answer line %q, want %d", p.question(), lines[digits+1], p.result())
			}
			if p.op == '-' && p.result() < 0 {
				t.Fatalf("%s: negative difference", p.question())
			}
		}
	}
}

func TestArithmeticSetsRefuse(t *testing.T) {
	ops := []byte{'+'}
	for _, tc := range []struct {
		digits, n, nTest int
	}{{0, 10, 0}, {7, 10, 0}, {1, 200, 0}, {2, -1, 0}} {
		if _, _, err := arithmeticSets(ops, tc.digits, tc.n, tc.nTest, 1); err == nil {
			t.Errorf("digits %d, n %d, test %d: no error", tc.digits, tc.n, tc.nTest)
		}
	}
	if _, err := parseArithmeticOps("add,div"); err == nil {
		t.Error("ops add,div: no error")
	}
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int64
		ok   bool
	}{
		{"answer: 936", 936, true},
		{"answer: 936\n", 936, true},
		{"answer:936 and more", 936, true},
		{"answer:   0042", 42, true},
		{"answer: -17\n", -17, true},
		{"347+589 c0 6000\nanswer: 12\nanswer: 13", 13, true},
		{"answer: 12\nanswer: none", 0, false},
		{"the answer is 12", 0, false},
		{"answer: ", 0, false},
		{"answer: -", 0, false},
		{"answer: 1234567890123456789012", 0, false},
		{"", 0, false},
	} {
		got, ok := parseAnswer(tc.text)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseAnswer(%q) = %d, %v; want %d, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}

// TestGenDataArithmetic checks the files gen-data writes: chat JSONL of a
// user question and a worked answer, the same bytes for the same seed,
// other problems for another seed, and held-out problems that are not in
// the training file.
func TestGenDataArithmetic(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string, seed int) (train, test []byte) {
		tr, te := filepath.Join(dir, name+".jsonl"), filepath.Join(dir, name+"_test.jsonl")
		if _, err := carryon(t, "train", "gen-data", "--task", "arithmetic", "--n", "300", "--out", tr,
			"--test-out", te, "--test-n", "50", "--digits", "2", "--ops", "add,sub,mul", "--seed", strconv.Itoa(seed)); err != nil {
			t.Fatal(err)
		}
		a, err := os.ReadFile(tr)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(te)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	a1, t1 := gen("a", 1)
	a2, t2 := gen("b", 1)
	a3, _ := gen("c", 2)
	if !bytes.Equal(a1, a2) || !bytes.Equal(t1, t2) {
		t.Error("the same seed wrote different files")
	}
	if bytes.Equal(a1, a3) {
		t.Error("another seed wrote the same file")
	}
	questions := func(data []byte) []string {
		chats, err := readChats("x.jsonl", data)
		if err != nil {
			t.Fatal(err)
		}
		var qs []string
		for _, c := range chats {
			if len(c.Messages) != 2 || c.Messages[0].Role != "user" || c.Messages[1].Role != "assistant" {
				t.Fatalf("chat %+v: want a user and an assistant message", c)
			}
			if _, ok := parseAnswer(c.Messages[1].Content); !ok {
				t.Fatalf("assistant message %q has no answer", c.Messages[1].Content)
			}
			qs = append(qs, c.Messages[0].Content)
		}
		return qs
	}
	train, test := questions(a1), questions(t1)
	if len(train) != 300 || len(test) != 50 {
		t.Fatalf("%d training and %d held-out problems, want 300 and 50", len(train), len(test))
	}
	seen := map[string]bool{}
	for _, q := range train {
		if seen[q] {
			t.Errorf("problem %s twice in the training set", q)
		}
		seen[q] = true
	}
	for _, q := range test {
		if seen[q] {
			t.Errorf("held-out problem %s is in the training set", q)
		}
	}
	var line struct {
		Messages []map[string]string `json:"messages"`
	}
	if err := json.Unmarshal(a1[:bytes.IndexByte(a1, '\n')], &line); err != nil || len(line.Messages) != 2 {
		t.Fatalf("first line is not a chat: %v", err)
	}
	if _, err := carryon(t, "train", "gen-data", "--task", "arithmetic", "--format", "text", "--out", filepath.Join(dir, "x")); err == nil {
		t.Error("--task arithmetic --format text: no error")
	}
	if _, err := carryon(t, "train", "gen-data", "--task", "poems", "--out", filepath.Join(dir, "x")); err == nil {
		t.Error("--task poems: no error")
	}
}

// TestWorkedColumnsGolden pins the columns format of each operation, and
// checks for many drawn problems that its lines have one length and the
// answer line parses to the result.
func TestWorkedColumnsGolden(t *testing.T) {
	for _, tc := range []struct {
		p    arithmeticProblem
		want string
	}{
		{arithmeticProblem{a: 347, b: 589, op: '+', digits: 3, columns: true},
			"347+589 7+9+0 16 6000\n034+058 4+8+1 13 3600\n003+005 3+5+1 09 9360\n000+000 0+0+0 00 0936\nanswer: 936"},
		{arithmeticProblem{a: 45, b: 16, op: '-', digits: 2, columns: true},
			"45-16 5-6-0 19 900\n04-01 4-1-1 02 290\n00-00 0-0-0 00 029\nanswer: 29"},
		{arithmeticProblem{a: 912, b: 7, op: '*', digits: 3, columns: true},
			"912*7 2*7+0 14 4000\n091*7 1*7+1 08 8400\n009*7 9*7+0 63 3840\n000*7 0*7+6 06 6384\nanswer: 6384"},
		{arithmeticProblem{a: 347, b: 589, op: '+', digits: 3, columns: true, letters: true},
			"347+589:h+j+a 16 6000\n034+058:e+i+b 13 3600\n003+005:d+f+b 09 9360\n000+000:a+a+a 00 0936\nanswer: 936"},
		{arithmeticProblem{a: 912, b: 7, op: '*', digits: 3, columns: true, letters: true},
			"912*7:c*h+a 14 4000\n091*7:b*h+b 08 8400\n009*7:j*h+a 63 3840\n000*7:a*h+g 06 6384\nanswer: 6384"},
	} {
		if got := tc.p.worked(); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.p.question(), got, tc.want)
		}
	}
	ops, err := parseArithmeticOps("add,sub,mul")
	if err != nil {
		t.Fatal(err)
	}
	for digits := 1; digits <= 4; digits++ {
		train, _, err := arithmeticSets(ops, digits, 60, 0, uint64(digits))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range train {
			p.columns, p.letters = true, digits%2 == 0
			lines := strings.Split(p.worked(), "\n")
			for _, l := range lines[1 : digits+1] {
				if len(l) != len(lines[0]) {
					t.Fatalf("%s: lines of different lengths: %q", p.question(), lines)
				}
			}
			if got, ok := parseAnswer(p.worked()); !ok || got != int64(p.result()) {
				t.Fatalf("%s: answer %d (%v), want %d", p.question(), got, ok, p.result())
			}
		}
	}
}

package chat

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata from the current output")

// loadConversation reads testdata/conversation.json, the conversation every
// family renders in TestRenderGolden.
func loadConversation(t *testing.T) []Message {
	t.Helper()
	data, err := os.ReadFile("testdata/conversation.json")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []struct{ Role, Content string }
	if err := json.Unmarshal(data, &msgs); err != nil {
		t.Fatalf("testdata/conversation.json: %v", err)
	}
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = Message{Role: m.Role, Content: m.Content}
	}
	return out
}

// TestRenderGolden renders testdata/conversation.json in every family and
// compares the prompt with testdata/render/<family>.golden.
func TestRenderGolden(t *testing.T) {
	msgs := loadConversation(t)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			tmpl, _ := Lookup(name)
			got, err := tmpl.Render(msgs, true)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "render", name+".golden")
			if *rewrite {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -rewrite to create it)", err)
			}
			if got != string(want) {
				t.Errorf("render %s:\n got: %q\nwant: %q", name, got, want)
			}
		})
	}
}

// detectCase is one case of testdata/detect.txt.
type detectCase struct {
	line   int
	label  string
	source string
	want   string
}

// readDetectCases parses testdata/detect.txt: each case is a line
// "detect LABEL", the template source, a line "----" and the expected family
// ("" for none), followed by a blank line.
func readDetectCases(t *testing.T) []detectCase {
	t.Helper()
	f, err := os.Open("testdata/detect.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []detectCase
	var cur *detectCase
	var src []string
	inSource := false
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "detect "):
			cur = &detectCase{line: n, label: strings.TrimPrefix(line, "detect ")}
			src = src[:0]
			inSource = true
		case cur != nil && inSource && line == "----":
			cur.source = strings.Join(src, "\n")
			inSource = false
		case cur != nil && inSource:
			src = append(src, line)
		case cur != nil:
			cur.want = strings.TrimSpace(line)
			cases = append(cases, *cur)
			cur = nil
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		default:
			t.Fatalf("testdata/detect.txt:%d: unexpected line %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("testdata/detect.txt:%d: case %q has no expected family", cur.line, cur.label)
	}
	return cases
}

func TestDetect(t *testing.T) {
	cases := readDetectCases(t)
	seen := map[string]bool{}
	for _, c := range cases {
		got, ok := Detect(c.source)
		name := got.Name()
		if !ok {
			name = ""
		}
		if name != c.want {
			t.Errorf("detect.txt:%d %s: got %q, want %q", c.line, c.label, name, c.want)
		}
		seen[c.want] = true
		if !ok && got.Name() != "plain" {
			t.Errorf("detect.txt:%d %s: unrecognised source gave %q, want the plain fallback", c.line, c.label, got.Name())
		}
	}
	// Every family but the ones only selectable by name is detected from
	// at least one template source.
	for _, name := range Names() {
		switch name {
		case "plain", "mistral-v7-tekken":
			continue
		}
		if !seen[name] {
			t.Errorf("no case in testdata/detect.txt detects %s", name)
		}
	}
}

func TestDetectByName(t *testing.T) {
	for _, name := range Names() {
		got, ok := Detect(name)
		if !ok || got.Name() != name {
			t.Errorf("Detect(%q) = %q, %v", name, got.Name(), ok)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	tmpl, _ := Lookup("chatml")
	if _, err := tmpl.Render(nil, true); err == nil {
		t.Error("an empty conversation rendered")
	}
	if _, err := tmpl.Render([]Message{{Role: "narrator", Content: "x"}}, true); err == nil || !strings.Contains(err.Error(), "narrator") {
		t.Errorf("unknown role: err = %v", err)
	}
}

func TestRenderRoles(t *testing.T) {
	tmpl, _ := Lookup("chatml")
	got, err := tmpl.Render([]Message{{Role: "developer", Content: "d"}, {Role: "User", Content: "u"}, {Role: "function", Content: "f"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nd<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>tool\nf<|im_end|>\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPlainStops(t *testing.T) {
	if len(Plain().Stops()) == 0 {
		t.Error("the plain format has no stop strings: a model would write the user's next line")
	}
	for _, name := range Names() {
		tmpl, _ := Lookup(name)
		if name != "plain" && len(tmpl.Stops()) != 0 {
			t.Errorf("%s has stop strings %q; its end of turn is a vocabulary token", name, tmpl.Stops())
		}
	}
}

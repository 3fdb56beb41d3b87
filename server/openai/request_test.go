package openai

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs in testdata from the current decoders")

// decoders maps the commands of testdata/requests.txt to the decoders.
var decoders = map[string]func([]byte) (any, *Error){
	"chat": func(b []byte) (any, *Error) { return ParseChatCompletionRequest(b) },
	"completion": func(b []byte) (any, *Error) {
		return ParseCompletionRequest(b)
	},
	"embedding":  func(b []byte) (any, *Error) { return ParseEmbeddingRequest(b) },
	"tokenize":   func(b []byte) (any, *Error) { return ParseTokenizeRequest(b) },
	"detokenize": func(b []byte) (any, *Error) { return ParseDetokenizeRequest(b) },
}

// describe renders a decoder's result as the test file records it: the
// decoded request as JSON, or "error STATUS CODE param=PARAM: MESSAGE".
func describe(v any, e *Error) string {
	if e != nil {
		param := "null"
		if e.Param != nil {
			param = *e.Param
		}
		return fmt.Sprintf("error %d %s param=%s: %s", e.Status, e.Code, param, e.Message)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "marshal: " + err.Error()
	}
	return string(b)
}

// TestRequests runs the cases of testdata/requests.txt: a command line
// naming the decoder, the request body, "----", the expected result, and a
// blank line. With -rewrite the expected results are replaced.
func TestRequests(t *testing.T) {
	const path = "testdata/requests.txt"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	n := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		n++
		return sc.Text(), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		start := n
		dec, known := decoders[line]
		if !known {
			t.Fatalf("%s:%d: unknown command %q", path, n, line)
		}
		var body []string
		for {
			l, ok := next()
			if !ok {
				t.Fatalf("%s:%d: case has no ----", path, start)
			}
			if l == "----" {
				break
			}
			body = append(body, l)
		}
		want, _ := next()
		got := describe(dec([]byte(strings.Join(body, "\n"))))
		if got != want && !*rewrite {
			t.Errorf("%s:%d: %s %s\n got: %s\nwant: %s", path, start, line, strings.Join(body, "\n"), got, want)
		}
		fmt.Fprintf(&out, "%s\n%s\n----\n%s\n", line, strings.Join(body, "\n"), got)
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestErrorEnvelope(t *testing.T) {
	e := Invalid("temperature", CodeInvalidType, "bad")
	got := string(e.Envelope())
	want := `{"error":{"message":"bad","type":"invalid_request_error","param":"temperature","code":"invalid_type"}}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	e = NewError(http.StatusTooManyRequests, TypeRateLimit, CodeQueueFull, "", "busy")
	want = `{"error":{"message":"busy","type":"rate_limit_error","param":null,"code":"queue_full"}}`
	if got := string(e.Envelope()); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestStreamUsage(t *testing.T) {
	type chunk struct {
		ID    string      `json:"id"`
		Usage StreamUsage `json:"usage,omitzero"`
	}
	for _, c := range []struct {
		in   chunk
		want string
	}{
		{chunk{ID: "a"}, `{"id":"a"}`},
		{chunk{ID: "a", Usage: StreamUsage{Present: true}}, `{"id":"a","usage":null}`},
		{chunk{ID: "a", Usage: StreamUsage{Present: true, Usage: &Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}}}, `{"id":"a","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`},
	} {
		b, err := json.Marshal(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("got %s, want %s", b, c.want)
		}
	}
}

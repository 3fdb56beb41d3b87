package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawExchange sends one HTTP/1.1 request over a fresh connection and
// returns the response exactly as it came: the status line and headers,
// and the body with its chunked framing checked and removed.
func rawExchange(t *testing.T, addr, method, path, body string) (head string, payload []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: carryon.test\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, path, len(body), body)
	br := bufio.NewReader(conn)
	var h strings.Builder
	chunked := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read headers: %v", err)
		}
		if !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("header line %q does not end with CRLF", line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "" {
			break
		}
		if strings.EqualFold(line, "Transfer-Encoding: chunked") {
			chunked = true
		}
		h.WriteString(line + "\n")
	}
	if !chunked {
		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatal(err)
		}
		if m := contentLength.FindStringSubmatch(h.String()); m == nil || m[1] != strconv.Itoa(len(rest)) {
			t.Fatalf("Content-Length %v for a body of %d bytes", m, len(rest))
		}
		return h.String(), rest
	}
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read chunk size: %v (body so far %q)", err, out.String())
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(line, "\r\n"), 16, 64)
		if err != nil {
			t.Fatalf("chunk size %q: %v", line, err)
		}
		if n == 0 {
			if end, _ := br.ReadString('\n'); end != "\r\n" {
				t.Fatalf("no CRLF after the last chunk: %q", end)
			}
			return h.String(), out.Bytes()
		}
		if _, err := io.CopyN(&out, br, n); err != nil {
			t.Fatal(err)
		}
		if crlf, _ := br.ReadString('\n'); crlf != "\r\n" {
			t.Fatalf("chunk not followed by CRLF: %q", crlf)
		}
	}
}

var contentLength = regexp.MustCompile(`(?m)^Content-Length: (\d+)$`)

// Values that change from run to run, and what transcripts hold instead.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?m)^Date: .*\n`), ""},
	// Checked against the body by rawExchange; it varies with the rest.
	{regexp.MustCompile(`(?m)^Content-Length: \d+$`), "Content-Length: N"},
	{regexp.MustCompile(`(chatcmpl|cmpl)-[0-9a-f]{24}`), "$1-ID"},
	{regexp.MustCompile(`"created":\d+`), `"created":0`},
	{regexp.MustCompile(`"created_at":"[^"]+"`), `"created_at":"T"`},
	{regexp.MustCompile(`"(total|prompt_eval|eval|load)_duration":\d+`), `"${1}_duration":1`},
	// Log-probabilities vary in their last digits with the kernels a CPU
	// gets (and under the race detector); their values are checked by the
	// route tests.
	{regexp.MustCompile(`([:\[,])-?\d+\.\d+([eE][-+]?\d+)?`), "${1}F"},
}

func normalize(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// TestTranscripts replays the exchanges of testdata/transcripts against
// stories260K and compares the exact bytes of the responses (headers and
// the de-chunked body), after replacing ids, timestamps and durations.
// Each file holds the request line, the body, a line "----", then the
// response. Run with -rewrite to record new responses.
func TestTranscripts(t *testing.T) {
	cfg := testConfig(t, storiesModel(t))
	// Without the prefix cache, cached_tokens does not depend on which
	// transcripts ran before.
	cfg.PrefixCache = false
	s := startServer(t, cfg)
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, want, ok := strings.Cut(string(data), "\n----\n")
			if !ok {
				t.Fatalf("%s: no ---- line", f)
			}
			reqLine, body, _ := strings.Cut(req, "\n")
			method, path, _ := strings.Cut(reqLine, " ")
			head, payload := rawExchange(t, s.addr, method, path, body)
			got := normalize(head + "\n" + string(payload))
			if *rewrite {
				if err := os.WriteFile(f, []byte(req+"\n----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: response differs\n--- got ---\n%s\n--- want ---\n%s", f, got, want)
			}
		})
	}
}

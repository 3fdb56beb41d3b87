package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carryon/carryon/server/openai"
)

func TestHealthReadyMetrics(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	if r := s.get(t, "/health"); r.status != 200 || string(r.body) != `{"status":"ok"}` {
		t.Errorf("health: %d %s", r.status, r.body)
	}
	if r := s.get(t, "/ready"); r.status != 200 || !strings.Contains(string(r.body), `"models":["tiny"]`) {
		t.Errorf("ready: %d %s", r.status, r.body)
	}
	s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"Hello"}],"max_tokens":6,"temperature":0,"logit_bias":{"2":-100}}`)
	s.post(t, "/v1/chat/completions", `{"model":"missing","messages":[{"role":"user","content":"Hello"}]}`)
	r := s.get(t, "/metrics")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	m := string(r.body)
	for _, want := range []string{
		`carryon_http_requests_total{model="tiny",route="/v1/chat/completions",status="200"} 1`,
		`carryon_http_requests_total{model="unknown",route="/v1/chat/completions",status="404"} 1`,
		`carryon_time_to_first_token_seconds_count{model="tiny"} 1`,
		`carryon_inter_token_latency_seconds_count{model="tiny"} 5`,
		`carryon_generated_tokens_total{model="tiny"} 6`,
		`carryon_queue_depth{model="tiny"} 0`,
		`carryon_running_requests{model="tiny"} 0`,
		`carryon_kv_cache_total_tokens{model="tiny"}`,
		`carryon_kv_cache_used_tokens{model="tiny"}`,
		`carryon_prompt_tokens_total{model="tiny"}`,
		`carryon_http_request_duration_seconds_count{route="/v1/chat/completions"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// streamConn sends a request over a raw connection and returns a reader
// positioned at the start of the body, so a test can read part of a
// stream and then hang up.
func streamConn(t *testing.T, addr, path, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn := sendRequest(t, addr, path, body)
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read headers: %v", err)
		}
		if line == "\r\n" {
			return conn, br
		}
	}
}

// sendRequest sends a request over a new connection and returns it
// without reading anything.
func sendRequest(t *testing.T, addr, path, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	return conn
}

// readUntil reads until the text read so far contains want.
func readUntil(t *testing.T, br *bufio.Reader, want string) string {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), want) {
		n, err := br.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read until %q: %v; got %q", want, err, got.String())
		}
	}
	return got.String()
}

// longStream asks the slow model for thousands of tokens, which takes
// seconds; the end-of-sequence token is banned so it cannot end early.
const longStream = `{"model":"slow","prompt":"hello","max_tokens":3000,"temperature":0,"logit_bias":{"2":-100},"stream":true}`

func TestClientDisconnectCancelsStream(t *testing.T) {
	cfg := testConfig(t, slowModel())
	cfg.PrefixCache = false
	s := startServer(t, cfg)
	m, _ := s.lookup("slow")
	conn, br := streamConn(t, s.addr, "/v1/completions", longStream)
	readUntil(t, br, `"text"`)
	if st := m.sched.Stats(); st.Running != 1 {
		t.Fatalf("stats while streaming: %+v", st)
	}
	start := time.Now()
	conn.Close()
	waitFor(t, 2*time.Second, "the request to leave the batch", func() bool {
		st := m.sched.Stats()
		return st.Running == 0 && st.KVUsedTokens == 0
	})
	t.Logf("cancelled %v after the client hung up", time.Since(start))
}

func TestClientDisconnectCancelsNonStreaming(t *testing.T) {
	cfg := testConfig(t, slowModel())
	cfg.PrefixCache = false
	s := startServer(t, cfg)
	m, _ := s.lookup("slow")
	conn := sendRequest(t, s.addr, "/v1/completions", strings.Replace(longStream, `"stream":true`, `"stream":false`, 1))
	waitFor(t, 2*time.Second, "the request to run", func() bool { return m.sched.Stats().Running == 1 })
	conn.Close()
	waitFor(t, 2*time.Second, "the request to leave the batch", func() bool {
		st := m.sched.Stats()
		return st.Running == 0 && st.KVUsedTokens == 0
	})
}

func TestHeartbeatWhileQueued(t *testing.T) {
	cfg := testConfig(t, slowModel())
	cfg.MaxSequences = 1
	s := startServer(t, cfg)
	m, _ := s.lookup("slow")
	// The first request holds the only sequence until its client leaves,
	// however fast the model runs.
	first, _ := streamConn(t, s.addr, "/v1/completions", longStream)
	waitFor(t, 2*time.Second, "the first request to run", func() bool { return m.sched.Stats().Running == 1 })
	// The second waits in the queue; its stream stays alive with pings,
	// then runs to the end once the first has gone.
	_, br := streamConn(t, s.addr, "/v1/chat/completions", `{"model":"slow","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}`)
	readUntil(t, br, ": ping")
	first.Close()
	readUntil(t, br, "data: [DONE]")
	// Ollama streams keep alive with empty lines of their own type.
	lines := ndjsonLines(t, s.post(t, "/api/generate", `{"model":"slow","prompt":"hi","raw":true,"options":{"num_predict":2}}`).body)
	if len(lines) < 2 {
		t.Fatalf("lines %q", lines)
	}
}

func TestQueueFull(t *testing.T) {
	cfg := testConfig(t, slowModel())
	cfg.MaxSequences = 1
	cfg.MaxQueue = 1
	s := startServer(t, cfg)
	m, _ := s.lookup("slow")
	a, _ := streamConn(t, s.addr, "/v1/completions", longStream)
	waitFor(t, 2*time.Second, "the first request to run", func() bool { return m.sched.Stats().Running == 1 })
	b, _ := streamConn(t, s.addr, "/v1/completions", longStream)
	waitFor(t, 2*time.Second, "the second request to queue", func() bool { return m.sched.Stats().Queued == 1 })
	r := s.post(t, "/v1/completions", `{"model":"slow","prompt":"x","max_tokens":1}`)
	wantError(t, r, http.StatusTooManyRequests, openai.CodeQueueFull, "")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	o := s.post(t, "/api/generate", `{"model":"slow","prompt":"x","stream":false}`)
	if o.status != http.StatusTooManyRequests || o.header.Get("Retry-After") == "" {
		t.Errorf("Ollama route: %d %s", o.status, o.body)
	}
	a.Close()
	b.Close()
	waitFor(t, 2*time.Second, "the requests to end", func() bool {
		st := m.sched.Stats()
		return st.Running == 0 && st.Queued == 0
	})
}

// shutdownServer starts a server whose shutdown the test performs.
func shutdownServer(t *testing.T, models ...string) (*Server, string, chan error) {
	t.Helper()
	c := testConfig(t, models...)
	srv, err := New(c, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, ln.Addr().String(), served
}

func TestShutdownLetsRunningRequestsFinish(t *testing.T) {
	srv, addr, served := shutdownServer(t, slowModel())
	_, br := streamConn(t, addr, "/v1/completions", strings.Replace(longStream, "3000", "120", 1))
	readUntil(t, br, `"text"`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	// New connections are refused once shutdown has begun.
	waitFor(t, 2*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	rest := readUntil(t, br, "data: [DONE]")
	if strings.Contains(rest, `"error"`) {
		t.Errorf("the running request failed: %s", rest)
	}
	if n := strings.Count(rest, `"text":"`) + 1; n < 100 {
		t.Errorf("only %d chunks arrived", n)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestShutdownCancelsAtDeadline(t *testing.T) {
	srv, addr, served := shutdownServer(t, slowModel())
	_, br := streamConn(t, addr, "/v1/chat/completions", `{"model":"slow","messages":[{"role":"user","content":"hi"}],"max_tokens":3000,"logit_bias":{"2":-100},"stream":true}`)
	readUntil(t, br, `"content"`)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	if err == nil {
		t.Error("shutdown reported no cancelled work")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %v with a 200ms deadline", took)
	}
	// The stream ends with one error event and without [DONE].
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	tail := string(rest)
	if i := strings.LastIndex(tail, "data: "); i >= 0 {
		tail = tail[i:]
	}
	if !strings.HasPrefix(tail, `data: {"error":{`) || !strings.Contains(tail, `"code":"server_unavailable"`) || !strings.HasSuffix(tail, "}\n\n\r\n0\r\n\r\n") {
		t.Errorf("the stream does not end with one error event and the last chunk: %q", tail)
	}
	if strings.Contains(string(rest), "[DONE]") {
		t.Errorf("a cancelled stream sent [DONE]")
	}
	<-served
	// Readiness turns off when shutdown begins.
	if r := srv.closing.Load(); !r {
		t.Error("not marked as closing")
	}
}

func TestReadyDuringShutdown(t *testing.T) {
	srv, addr, _ := shutdownServer(t, slowModel())
	_, br := streamConn(t, addr, "/v1/completions", strings.Replace(longStream, "3000", "400", 1))
	readUntil(t, br, `"text"`)
	// Keep one connection open to ask /ready while the stream drains.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go srv.Shutdown(context.Background())
	waitFor(t, 2*time.Second, "shutdown to begin", srv.closing.Load)
	fmt.Fprintf(conn, "GET /ready HTTP/1.1\r\nHost: t\r\n\r\n")
	status, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(status, "503") {
		t.Errorf("/ready during shutdown: %q", status)
	}
}

// TestConcurrentStreams runs many streaming and non-streaming requests of
// both API families at once.
func TestConcurrentStreams(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r response
			switch i % 3 {
			case 0:
				r = s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"n`+strconv.Itoa(i)+`"}],"max_tokens":16,"stream":true,"seed":`+strconv.Itoa(i)+`}`)
				if !strings.HasSuffix(string(r.body), "data: [DONE]\n\n") {
					errs <- "chat stream did not finish: " + string(r.body)
				}
			case 1:
				r = s.post(t, "/v1/completions", `{"model":"tiny","prompt":"p`+strconv.Itoa(i)+`","max_tokens":16,"n":2}`)
			case 2:
				r = s.post(t, "/api/generate", `{"model":"tiny","prompt":"g`+strconv.Itoa(i)+`","options":{"num_predict":16}}`)
				if !regexp.MustCompile(`"done":true`).Match(r.body) {
					errs <- "generate did not finish: " + string(r.body)
				}
			}
			if r.status != 200 {
				errs <- fmt.Sprintf("status %d: %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

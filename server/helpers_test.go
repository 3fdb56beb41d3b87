package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/synth"
	"github.com/carryon/carryon/models/testenv"
	"github.com/carryon/carryon/server/config"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata from the current output")

// modelDir holds the synthetic models the tests share; TestMain writes
// them once.
var modelDir string

// chatmlTemplate is the chat template of the "tiny" test model.
const chatmlTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "carryon-server-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	modelDir = dir
	err = writeTestModels(dir)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "write test models:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeTestModels writes "tiny" (a small llama with a ChatML template)
// and "slow" (a model with a long context, for requests that run long
// enough to be interrupted).
func writeTestModels(dir string) error {
	tiny := synth.Spec{Name: "tiny", Arch: "llama", Vocab: 400, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96,
		Context: 256, WeightType: ggml.TypeQ8_0, Seed: 11}
	w, err := synth.NewWriter(tiny)
	if err != nil {
		return err
	}
	w.Meta().Set("tokenizer.chat_template", chatmlTemplate)
	if err := w.WriteFile(filepath.Join(dir, "tiny.gguf")); err != nil {
		return err
	}
	slow := synth.Spec{Name: "slow", Arch: "llama", Vocab: 400, Dim: 128, Layers: 4, Heads: 4, KVHeads: 2, FFN: 256,
		Context: 4096, WeightType: ggml.TypeQ8_0, Seed: 12}
	return synth.Write(filepath.Join(dir, "slow.gguf"), slow)
}

// tinyModel and slowModel are "NAME=PATH" entries of the test models.
func tinyModel() string { return "tiny=" + filepath.Join(modelDir, "tiny.gguf") }
func slowModel() string { return "slow=" + filepath.Join(modelDir, "slow.gguf") }

// storiesModel is the shared stories260K model (the test is skipped
// without it, except under CI=true).
func storiesModel(t testing.TB) string {
	return "stories260k=" + testenv.Path(t, "stories260K.gguf")
}

// testConfig returns a configuration serving models on a free port, with
// an empty data directory and a short heartbeat.
func testConfig(t testing.TB, models ...string) config.Config {
	c := config.Default()
	c.Addr = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.OllamaDir = ""
	c.Models = models
	c.Threads = 1
	c.Heartbeat = config.Duration(100 * time.Millisecond)
	c.ShutdownTimeout = config.Duration(5 * time.Second)
	return c
}

// testServer is a Server listening on a random local port.
type testServer struct {
	*Server
	url  string
	addr string
}

// startServer starts a server for cfg and shuts it down when the test
// ends.
func startServer(t testing.TB, cfg config.Config) *testServer {
	t.Helper()
	s, err := New(cfg, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	addr := ln.Addr().String()
	return &testServer{Server: s, url: "http://" + addr, addr: addr}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v.
func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not the expected JSON: %v\n%s", err, r.body)
	}
}

// do sends a request with a raw body and reads the whole response.
func (s *testServer) do(t testing.TB, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (s *testServer) post(t testing.TB, path, body string) response {
	t.Helper()
	return s.do(t, http.MethodPost, path, body)
}

func (s *testServer) get(t testing.TB, path string) response {
	t.Helper()
	return s.do(t, http.MethodGet, path, "")
}

// sseEvents splits a server-sent event stream into its data payloads;
// comments are returned as they are (": ping").
func sseEvents(t testing.TB, body []byte) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(string(body), "\n\n") {
		if ev == "" {
			continue
		}
		switch {
		case strings.HasPrefix(ev, "data: "):
			out = append(out, strings.TrimPrefix(ev, "data: "))
		case strings.HasPrefix(ev, ":"):
			out = append(out, ev)
		default:
			t.Fatalf("malformed event %q in stream:\n%s", ev, body)
		}
	}
	return out
}

// ndjsonLines splits an NDJSON body into lines.
func ndjsonLines(t testing.TB, body []byte) []string {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("\n")) {
		t.Fatalf("NDJSON body does not end with a newline: %q", body)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// errorEnvelope is the OpenAI error body.
type errorEnvelope struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// wantError checks an OpenAI error response.
func wantError(t testing.TB, r response, status int, code, param string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var env errorEnvelope
	r.json(t, &env)
	if env.Error == nil || env.Error.Message == "" || env.Error.Type == "" || env.Error.Code == nil {
		t.Fatalf("not an error envelope with message, type and code: %s", r.body)
	}
	if *env.Error.Code != code {
		t.Errorf("code %q, want %q (%s)", *env.Error.Code, code, r.body)
	}
	got := ""
	if env.Error.Param != nil {
		got = *env.Error.Param
	}
	if got != param {
		t.Errorf("param %q, want %q (%s)", got, param, r.body)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

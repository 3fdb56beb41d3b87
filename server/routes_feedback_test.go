package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/carryon/carryon/server/config"
	"github.com/carryon/carryon/server/trafficlog"
)

// chatReply is the part of a chat completion the traffic tests read.
type chatReply struct {
	ID      string `json:"id"`
	Choices []struct {
		Message struct{ Content string }
	}
}

// postHeaders sends a JSON POST with extra headers.
func (s *testServer) postHeaders(t testing.TB, path, body string, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
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

// storedSample reads a sample from the server's traffic log.
func storedSample(t testing.TB, s *testServer, id string) trafficlog.Sample {
	t.Helper()
	lg, err := s.trafficLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	smp, _, err := lg.Sample(context.Background(), id)
	if err != nil {
		t.Fatalf("sample %s: %v", id, err)
	}
	return smp
}

func TestStoreTrueLogsChatCompletions(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))

	// Without store nothing is logged and the log is not even opened.
	r := s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":0}`)
	if r.status != http.StatusOK || r.header.Get(headerStored) != "" {
		t.Fatalf("plain request: %d, %s=%q", r.status, headerStored, r.header.Get(headerStored))
	}
	if s.traffic.log != nil {
		t.Fatal("the traffic log was opened for a request that did not ask to store")
	}

	body := `{"model":"tiny","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello there"}],"max_tokens":6,"temperature":0,"store":true,"user":"u-1"}`
	r = s.postHeaders(t, "/v1/chat/completions", body, map[string]string{"OpenAI-Organization": "org-7"})
	if r.status != http.StatusOK || r.header.Get(headerStored) != "true" {
		t.Fatalf("store:true: %d, %s=%q %s", r.status, headerStored, r.header.Get(headerStored), r.body)
	}
	var reply chatReply
	r.json(t, &reply)
	smp := storedSample(t, s, reply.ID)
	if smp.Kind != trafficlog.KindChat || smp.Model != "tiny" || smp.Base != "tiny" || smp.Head != "" || smp.Tenant != "org-7" ||
		smp.Completion != reply.Choices[0].Message.Content || len(smp.Messages) != 2 || smp.Messages[1].Content != "hello there" || smp.Time.IsZero() {
		t.Fatalf("stored %+v for reply %+v", smp, reply)
	}

	// The tenant header wins over the organization, the organization over
	// the user field.
	r = s.postHeaders(t, "/v1/chat/completions", body, map[string]string{"X-Carryon-Tenant": "team-a", "OpenAI-Organization": "org-7"})
	r.json(t, &reply)
	if got := storedSample(t, s, reply.ID).Tenant; got != "team-a" {
		t.Errorf("tenant %q, want team-a", got)
	}
	r = s.post(t, "/v1/chat/completions", body)
	r.json(t, &reply)
	if got := storedSample(t, s, reply.ID).Tenant; got != "u-1" {
		t.Errorf("tenant %q, want the user field u-1", got)
	}

	// A stream is stored at its end, with the text its chunks carried.
	r = s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"stream"}],"max_tokens":8,"temperature":0,"store":true,"stream":true,"stream_options":{"include_usage":true}}`)
	evs := sseEvents(t, r.body)
	if evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", evs)
	}
	var id, text string
	for _, ev := range evs[:len(evs)-1] {
		var chunk struct {
			ID      string `json:"id"`
			Choices []struct {
				Delta struct{ Content string }
			}
		}
		if err := json.Unmarshal([]byte(ev), &chunk); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		id = chunk.ID
		for _, c := range chunk.Choices {
			text += c.Delta.Content
		}
	}
	if smp := storedSample(t, s, id); smp.Completion != text || text == "" {
		t.Fatalf("streamed %q, stored %q", text, smp.Completion)
	}

	// Text completions too.
	r = s.post(t, "/v1/completions", `{"model":"tiny","prompt":"Once upon","max_tokens":5,"temperature":0,"store":true}`)
	var cr struct {
		ID      string `json:"id"`
		Choices []struct{ Text string }
	}
	r.json(t, &cr)
	if smp := storedSample(t, s, cr.ID); smp.Kind != trafficlog.KindCompletion || smp.Prompt != "Once upon" || smp.Completion != cr.Choices[0].Text {
		t.Fatalf("completion stored as %+v", smp)
	}

	// "store" must be a boolean.
	wantError(t, s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"x"}],"store":"yes"}`),
		http.StatusBadRequest, "invalid_type", "store")
	wantError(t, s.post(t, "/v1/completions", `{"model":"tiny","prompt":"x","store":1}`), http.StatusBadRequest, "invalid_type", "store")
}

func TestStoreFailureStillAnswers(t *testing.T) {
	// Nothing listens there: the log cannot be opened.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := testConfig(t, tinyModel())
	cfg.NATS = "nats://" + addr
	s := startServer(t, cfg)
	r := s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"store":true}`)
	if r.status != http.StatusOK || r.header.Get(headerStored) != "false" || r.header.Get(headerStoreError) == "" {
		t.Fatalf("%d, %s=%q, %s=%q", r.status, headerStored, r.header.Get(headerStored), headerStoreError, r.header.Get(headerStoreError))
	}
	r = s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"store":true,"stream":true}`)
	evs := sseEvents(t, r.body)
	if r.status != http.StatusOK || evs[len(evs)-1] != "[DONE]" || !strings.HasPrefix(evs[len(evs)-2], ": carryon-store-error ") {
		t.Fatalf("stream: %d %q", r.status, evs)
	}
	wantError(t, s.post(t, "/v1/feedback", `{"id":"chatcmpl-1","rating":1}`), http.StatusServiceUnavailable, "server_unavailable", "")
}

func TestFeedbackRoute(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	var ids []string
	for i := range 3 {
		r := s.post(t, "/v1/chat/completions", fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":"q%d"}],"max_tokens":4,"temperature":0,"store":true}`, i))
		var reply chatReply
		r.json(t, &reply)
		ids = append(ids, reply.ID)
	}
	r := s.post(t, "/v1/feedback", fmt.Sprintf(`{"id":%q,"rating":-1,"correction":"the right answer"}`, ids[0]))
	if r.status != http.StatusOK {
		t.Fatalf("feedback: %d %s", r.status, r.body)
	}
	var fb FeedbackRecord
	r.json(t, &fb)
	if !strings.HasPrefix(fb.ID, "feedback-") || fb.Object != "feedback" || fb.CompletionID != ids[0] || fb.Model != "tiny" ||
		fb.Correction == nil || *fb.Correction != "the right answer" || fb.Rating == nil || *fb.Rating != -1 {
		t.Fatalf("feedback record %+v", fb)
	}
	if r := s.post(t, "/v1/feedback", fmt.Sprintf(`{"id":%q,"rating":-0.5}`, ids[1])); r.status != http.StatusOK {
		t.Fatalf("rating only: %d %s", r.status, r.body)
	}

	// The log joins them: a correction replaces the completion, a
	// negative rating alone excludes the sample.
	lg, _ := s.trafficLog(context.Background())
	b, err := lg.Read(context.Background(), "tiny", trafficlog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Examples) != 2 || b.Excluded != 1 || b.Examples[0].ID != ids[0] || b.Examples[0].Target != "the right answer" || b.Examples[1].ID != ids[2] {
		t.Fatalf("joined batch %+v", b)
	}

	wantError(t, s.post(t, "/v1/feedback", `{"id":"chatcmpl-000","rating":1}`), http.StatusNotFound, "not_found", "id")
	for _, c := range []struct{ body, code, param string }{
		{`[1]`, "invalid_json", ""},
		{`not json`, "invalid_json", ""},
		{`{"rating":1}`, "missing_required_parameter", "id"},
		{`{"id":7,"rating":1}`, "invalid_type", "id"},
		{`{"id":"a.b","rating":1}`, "invalid_value", "id"},
		{`{"id":"x","rating":1.5}`, "invalid_value", "rating"},
		{`{"id":"x","rating":"good"}`, "invalid_value", "rating"},
		{`{"id":"x","correction":""}`, "invalid_value", "correction"},
		{`{"id":"x","correction":5}`, "invalid_value", "correction"},
		{`{"id":"x"}`, "missing_required_parameter", "rating"},
		{`{"id":"x","rating":null,"correction":null}`, "missing_required_parameter", "rating"},
		{`{"id":"x","rating":1,"user":3}`, "invalid_type", "user"},
	} {
		wantError(t, s.post(t, "/v1/feedback", c.body), http.StatusBadRequest, c.code, c.param)
	}
	if r := s.get(t, "/v1/feedback"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/feedback: %d", r.status)
	}
}

func TestHeadPolicy(t *testing.T) {
	dataDir := t.TempDir()
	edit := func(c *config.Config) { c.DataDir = dataDir }
	s := headServer(t, edit)
	registerHead(t, s, "alice", writeHead(t, 0.5, 1))
	var st HeadStatus
	s.get(t, "/v1/heads/alice").json(t, &st)
	if st.Policy != policyServe || st.Learning != nil {
		t.Fatalf("a new head: policy %q, learning %+v", st.Policy, st.Learning)
	}

	// A head that serves logs only what asks to be stored.
	r := s.post(t, "/v1/chat/completions", `{"model":"alice","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`)
	if r.status != http.StatusOK || r.header.Get(headerStored) != "" {
		t.Fatalf("serve policy: %d %q", r.status, r.header.Get(headerStored))
	}

	r = s.post(t, "/v1/heads/alice", `{"policy":"learn","min_samples":1000,"holdout":0.2}`)
	if r.status != http.StatusOK {
		t.Fatalf("set policy: %d %s", r.status, r.body)
	}
	r.json(t, &st)
	if st.Policy != policyLearn || st.Learning == nil || st.Learning.MinSamples != 1000 || st.Learning.Holdout != 0.2 || st.Learning.MaxSamples != 5000 {
		t.Fatalf("after setting: %+v %+v", st, st.Learning)
	}

	// A learning head logs every completion, streamed or not.
	r = s.post(t, "/v1/chat/completions", `{"model":"alice","messages":[{"role":"user","content":"learn this"}],"max_tokens":4,"temperature":0}`)
	if r.status != http.StatusOK || r.header.Get(headerStored) != "true" {
		t.Fatalf("learn policy: %d %q %s", r.status, r.header.Get(headerStored), r.body)
	}
	var reply chatReply
	r.json(t, &reply)
	smp := storedSample(t, s, reply.ID)
	if smp.Model != "alice" || smp.Head != "alice" || smp.Version != st.Version || smp.Base != "tiny" || smp.Completion != reply.Choices[0].Message.Content {
		t.Fatalf("stored %+v (head version %s)", smp, st.Version)
	}
	r = s.post(t, "/v1/chat/completions", `{"model":"alice","messages":[{"role":"user","content":"s"}],"max_tokens":4,"stream":true}`)
	lg, _ := s.trafficLog(context.Background())
	if n, err := lg.Pending(context.Background(), "alice", 0); err != nil || n != 2 {
		t.Fatalf("alice has %d samples (%v), want 2", n, err)
	}

	for _, c := range []struct{ body, code, param string }{
		{`{"policy":"train"}`, "invalid_value", "policy"},
		{`{"min_samples":-1}`, "invalid_value", "min_samples"},
		{`{"min_samples":"ten"}`, "invalid_value", "min_samples"},
		{`{"holdout":0.9}`, "invalid_value", "holdout"},
		{`{"max_samples":-1}`, "invalid_value", "max_samples"},
		{`{"max_samples":10}`, "invalid_value", ""}, // below min_samples
		{`{"holdut":0.1}`, "unknown_parameter", "holdut"},
		{`"learn"`, "invalid_json", ""},
	} {
		r := s.post(t, "/v1/heads/alice", c.body)
		wantError(t, r, http.StatusBadRequest, c.code, c.param)
	}
	wantError(t, s.post(t, "/v1/heads/nobody", `{"policy":"learn"}`), http.StatusNotFound, "model_not_found", "")

	// The policy survives a restart, and a new version.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := headServer(t, edit)
	s2.get(t, "/v1/heads/alice").json(t, &st)
	if st.Policy != policyLearn || st.Learning == nil || st.Learning.MinSamples != 1000 || st.Learning.Holdout != 0.2 {
		t.Fatalf("after a restart: %+v %+v", st, st.Learning)
	}
	if r := s2.do(t, http.MethodPut, "/v1/heads/alice", fmt.Sprintf(`{"path":%q}`, writeHead(t, 0.5, 2))); r.status != http.StatusOK {
		t.Fatalf("new version: %d %s", r.status, r.body)
	}
	s2.get(t, "/v1/heads/alice").json(t, &st)
	if st.Policy != policyLearn {
		t.Fatalf("a new version lost the policy: %+v", st)
	}
	if r := s2.post(t, "/v1/heads/alice", `{"policy":"serve"}`); r.status != http.StatusOK {
		t.Fatalf("back to serve: %d %s", r.status, r.body)
	}
	r = s2.post(t, "/v1/chat/completions", `{"model":"alice","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`)
	if r.header.Get(headerStored) != "" {
		t.Fatalf("a serving head still logs: %q", r.header.Get(headerStored))
	}
}

// storeKillEnv names the data directory when the test binary runs as
// the server of TestKilledServerLosesNoStoredCompletion.
const storeKillEnv = "CARRYON_SERVER_STORE_KILL_DIR"

// TestStoreKillHelper is not a test: run by
// TestKilledServerLosesNoStoredCompletion in a child process, it serves
// the tiny model over its data directory until it is killed.
func TestStoreKillHelper(t *testing.T) {
	dir := os.Getenv(storeKillEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	cfg := testConfig(t, tinyModel())
	cfg.DataDir = dir
	s, err := New(cfg, Options{Version: "test"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("models", modelDir)
	fmt.Println("listening", ln.Addr())
	_ = s.Serve(ln)
}

// TestKilledServerLosesNoStoredCompletion runs a server in a child
// process, sends store:true chat completions from several clients, kills
// the server with SIGKILL as soon as a number of them were answered, and
// finds every answered completion in its traffic log.
func TestKilledServerLosesNoStoredCompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), storeKillEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var killed atomic.Bool
	defer func() {
		if !killed.Load() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if d, ok := strings.CutPrefix(line, "models "); ok && strings.Contains(d, "carryon-server-test") {
				t.Cleanup(func() { os.RemoveAll(d) }) // the child's TestMain cannot remove it
			}
			if a, ok := strings.CutPrefix(line, "listening "); ok {
				addr <- a
			}
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + "/v1/chat/completions"
	case <-time.After(60 * time.Second):
		t.Fatal("the server process did not start listening")
	}

	const clients, target = 4, 40
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		once  sync.Once
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":"client %d request %d"}],"max_tokens":3,"store":true}`, c, i)
				res, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var reply chatReply
				if res.StatusCode != http.StatusOK || res.Header.Get(headerStored) != "true" || json.Unmarshal(b, &reply) != nil {
					continue
				}
				mu.Lock()
				acked = append(acked, reply.ID)
				n := len(acked)
				mu.Unlock()
				if n >= target {
					once.Do(func() {
						_ = cmd.Process.Signal(syscall.SIGKILL)
						killed.Store(true)
						close(stop)
					})
				}
			}
		}()
	}
	wg.Wait()
	_ = cmd.Wait()
	if !killed.Load() {
		t.Fatalf("the server died before %d completions were answered (%d were)", target, len(acked))
	}
	lg, err := trafficlog.Open(context.Background(), trafficlog.Options{Dir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	b, err := lg.Read(context.Background(), "tiny", trafficlog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, ex := range b.Examples {
		stored[ex.ID] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range acked {
		if !stored[id] {
			t.Errorf("completion %s was answered as stored but is not in the log after SIGKILL", id)
		}
	}
	t.Logf("%d completions answered before SIGKILL, %d in the log after it", len(acked), len(stored))
}

// BenchmarkChatCompletionStore measures what storing adds to a short
// chat completion (one generated token on the tiny model), end to end
// over HTTP.
func BenchmarkChatCompletionStore(b *testing.B) {
	s := startServer(b, testConfig(b, tinyModel()))
	for _, store := range []bool{false, true} {
		b.Run(fmt.Sprintf("store=%v", store), func(b *testing.B) {
			body := fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":"benchmark"}],"max_tokens":1,"temperature":0,"store":%v}`, store)
			s.post(b, "/v1/chat/completions", body) // opens the log
			b.ResetTimer()
			for range b.N {
				if r := s.post(b, "/v1/chat/completions", body); r.status != http.StatusOK {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
		})
	}
}

// TestStoreToExternalNATS logs to a NATS server given by --nats and starts
// no embedded one.
func TestStoreToExternalNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	cfg := testConfig(t, tinyModel())
	cfg.NATS = ns.ClientURL()
	s := startServer(t, cfg)
	r := s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"store":true}`)
	if r.status != http.StatusOK || r.header.Get(headerStored) != "true" {
		t.Fatalf("%d %s=%q %s", r.status, headerStored, r.header.Get(headerStored), r.header.Get(headerStoreError))
	}
	var reply chatReply
	r.json(t, &reply)
	lg, err := trafficlog.Open(context.Background(), trafficlog.Options{URL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	if smp, _, err := lg.Sample(context.Background(), reply.ID); err != nil || smp.Model != "tiny" {
		t.Fatalf("the sample on the external server: %+v, %v", smp, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "nats")); !os.IsNotExist(err) {
		t.Errorf("an embedded server's directory exists: %v", err)
	}
}

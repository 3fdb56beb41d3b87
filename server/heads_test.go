package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/server/config"
)

var (
	pluginOnce sync.Once
	pluginDir  string
	pluginErr  error
)

// testPlugins builds the built-in carry-on head plugin once into a
// directory of the package's temporary folder and returns it.
func testPlugins(t testing.TB) string {
	t.Helper()
	pluginOnce.Do(func() {
		pluginDir = filepath.Join(modelDir, "plugins")
		cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "carryon"), "github.com/carryon/carryon/plugins/carryon")
		out, err := cmd.CombinedOutput()
		if err != nil {
			pluginErr = fmt.Errorf("build the carryon plugin: %v\n%s", err, out)
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginDir
}

// writeHead writes a small random carry-on head for the tiny model.
func writeHead(t testing.TB, alpha float32, seed uint64, taps ...int) string {
	t.Helper()
	f, err := gguf.Open(filepath.Join(modelDir, "tiny.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := carryonhead.BaseFromGGUF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := carryonhead.DefaultConfig(base)
	c.Width, c.Heads, c.FFN, c.Blocks, c.Alpha, c.Seed, c.DType = 16, 2, 32, 1, alpha, seed, carryonhead.DTypeF32
	if len(taps) > 0 {
		c.Taps = taps
	}
	h, err := carryonhead.New(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("head-%d", seed))
	if err := h.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// headServer starts a server of the tiny model with the built plugin.
func headServer(t testing.TB, edit func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig(t, tinyModel())
	cfg.PluginsDir = testPlugins(t)
	if edit != nil {
		edit(&cfg)
	}
	return startServer(t, cfg)
}

func registerHead(t testing.TB, s *testServer, id, dir string) {
	t.Helper()
	r := s.post(t, "/v1/heads", fmt.Sprintf(`{"id":%q,"path":%q}`, id, dir))
	if r.status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", id, r.status, r.body)
	}
}

// completion is the part of a greedy completion the tests compare.
type completion struct {
	Model   string
	Text    string
	Tokens  []string
	Logprob []float64
}

func complete(t testing.TB, s *testServer, model, prompt string, n int) (completion, response) {
	t.Helper()
	r := s.post(t, "/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":%d,"temperature":0,"logprobs":1}`, model, prompt, n))
	var out struct {
		Model   string `json:"model"`
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Tokens        []string  `json:"tokens"`
				TokenLogprobs []float64 `json:"token_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if r.status != http.StatusOK {
		return completion{}, r
	}
	r.json(t, &out)
	c := out.Choices[0]
	return completion{Model: out.Model, Text: c.Text, Tokens: c.Logprobs.Tokens, Logprob: c.Logprobs.TokenLogprobs}, r
}

// TestHeadsServe registers heads and checks the per-request choice: α = 0
// gives exactly the base, a random head changes the output, responses echo
// the head, /v1/models lists it with its parent, unknown heads are 404 and
// a corrupt directory is refused while the old version keeps serving.
func TestHeadsServe(t *testing.T) {
	s := headServer(t, nil)
	zero, random := writeHead(t, 0, 1), writeHead(t, 4, 2)
	registerHead(t, s, "zero", zero)
	registerHead(t, s, "alice", random)

	base, _ := complete(t, s, "tiny", "hello world", 12)
	z, r := complete(t, s, "zero", "hello world", 12)
	if r.status != 200 || z.Model != "zero" {
		t.Fatalf("zero head: %d %s", r.status, r.body)
	}
	if z.Text != base.Text || fmt.Sprint(z.Tokens) != fmt.Sprint(base.Tokens) || fmt.Sprint(z.Logprob) != fmt.Sprint(base.Logprob) {
		t.Errorf("alpha 0 head differs from the base:\n%+v\n%+v", z, base)
	}
	a, _ := complete(t, s, "alice", "hello world", 12)
	if a.Model != "alice" || fmt.Sprint(a.Logprob) == fmt.Sprint(base.Logprob) {
		t.Errorf("random head: %+v, base %+v", a, base)
	}
	// Ollama route, streaming.
	or := s.post(t, "/api/generate", `{"model":"alice","prompt":"hello world","options":{"temperature":0,"num_predict":12},"stream":true}`)
	if or.status != 200 || !strings.Contains(string(or.body), `"model":"alice"`) {
		t.Errorf("ollama head stream: %d %s", or.status, or.body)
	}
	var models struct {
		Data []struct{ ID, Parent string }
	}
	s.get(t, "/v1/models").json(t, &models)
	if got := fmt.Sprint(models.Data); !strings.Contains(got, "{alice tiny}") || !strings.Contains(got, "{zero tiny}") {
		t.Errorf("/v1/models: %s", got)
	}
	wantError(t, s.post(t, "/v1/completions", `{"model":"bob","prompt":"x"}`), 404, "model_not_found", "model")

	// A corrupt version is refused; the old version keeps serving.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(`{"type":"carryon","base":`), 0o644)
	os.WriteFile(filepath.Join(bad, "weights.safetensors"), []byte("junk"), 0o644)
	pr := s.do(t, http.MethodPut, "/v1/heads/alice", fmt.Sprintf(`{"path":%q}`, bad))
	if pr.status != 400 || !strings.Contains(string(pr.body), "config.json") {
		t.Errorf("corrupt head: %d %s", pr.status, pr.body)
	}
	cfgOnly := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(random, "config.json"))
	os.WriteFile(filepath.Join(cfgOnly, "config.json"), b, 0o644)
	os.WriteFile(filepath.Join(cfgOnly, "weights.safetensors"), []byte("junk"), 0o644)
	if pr := s.do(t, http.MethodPut, "/v1/heads/alice", fmt.Sprintf(`{"path":%q}`, cfgOnly)); pr.status != 400 {
		t.Errorf("corrupt weights: %d %s", pr.status, pr.body)
	}
	again, _ := complete(t, s, "alice", "hello world", 12)
	if fmt.Sprint(again) != fmt.Sprint(a) {
		t.Errorf("after a refused version: %+v, want %+v", again, a)
	}
	// Pin, delete.
	if r := s.post(t, "/v1/heads/alice/pin", ""); r.status != 200 {
		t.Errorf("pin: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodPut, "/v1/heads/alice", fmt.Sprintf(`{"path":%q}`, zero)); r.status != 409 {
		t.Errorf("put on a pinned head: %d %s", r.status, r.body)
	}
	s.post(t, "/v1/heads/alice/unpin", "")
	if r := s.do(t, http.MethodDelete, "/v1/heads/zero", ""); r.status != 200 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	wantError(t, s.post(t, "/v1/completions", `{"model":"zero","prompt":"x"}`), 404, "model_not_found", "model")
}

// TestHeadsPersistAndAdminKey checks that the registry survives a restart
// and that the admin key guards the head routes.
func TestHeadsPersistAndAdminKey(t *testing.T) {
	data := t.TempDir()
	dir := writeHead(t, 4, 3)
	s := headServer(t, func(c *config.Config) { c.DataDir, c.AdminKey = data, "sesame" })
	body := fmt.Sprintf(`{"id":"carol","path":%q}`, dir)
	if r := s.post(t, "/v1/heads", body); r.status != 401 {
		t.Fatalf("no key: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/heads", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sesame")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("with the key: %v %v", err, res.StatusCode)
	}
	res.Body.Close()
	first, _ := complete(t, s, "carol", "abc", 8)
	s.Shutdown(t.Context())
	s2 := headServer(t, func(c *config.Config) { c.DataDir, c.AdminKey = data, "sesame" })
	again, r := complete(t, s2, "carol", "abc", 8)
	if r.status != 200 && r.status != 0 || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("after restart: %+v (%d %s), want %+v", again, r.status, r.body, first)
	}
}

// TestHeadsMixedBatch runs three heads and plain base requests at once and
// checks each against the same request alone.
func TestHeadsMixedBatch(t *testing.T) {
	s := headServer(t, nil)
	models := []string{"tiny", "h1", "h2", "h3", "tiny"}
	registerHead(t, s, "h1", writeHead(t, 3, 11))
	registerHead(t, s, "h2", writeHead(t, 3, 12, carryonhead.FinalLayer, 0))
	registerHead(t, s, "h3", writeHead(t, 1, 13))
	prompts := []string{"one two", "three four five", "six", "seven eight", "nine"}
	alone := make([]completion, len(models))
	for i, m := range models {
		alone[i], _ = complete(t, s, m, prompts[i], 16)
	}
	for round := range 2 {
		got := make([]completion, len(models))
		var wg sync.WaitGroup
		for i, m := range models {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], _ = complete(t, s, m, prompts[i], 16)
			}()
		}
		wg.Wait()
		for i := range models {
			if got[i].Text != alone[i].Text || !closeLogprobs(got[i].Logprob, alone[i].Logprob) {
				t.Errorf("round %d, %s: batched %+v, alone %+v", round, models[i], got[i], alone[i])
			}
		}
	}
}

func closeLogprobs(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-3 {
			return false
		}
	}
	return true
}

// streamText runs a greedy streaming completion and returns its text, or
// the error event.
func streamText(s *testServer, model, prompt string, n int) (string, error) {
	body := fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":%d,"temperature":0,"stream":true}`, model, prompt, n)
	res, err := http.Post(s.url+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return "", fmt.Errorf("status %d", res.StatusCode)
	}
	var text strings.Builder
	dec := json.NewDecoder(strings.NewReader(""))
	_ = dec
	buf := new(strings.Builder)
	b := make([]byte, 4096)
	for {
		n, rerr := res.Body.Read(b)
		buf.Write(b[:n])
		if rerr != nil {
			break
		}
	}
	for _, ev := range strings.Split(buf.String(), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var chunk struct {
			Error   *struct{ Message string }
			Choices []struct{ Text string }
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return "", err
		}
		if chunk.Error != nil {
			return text.String(), fmt.Errorf("error event: %s", chunk.Error.Message)
		}
		for _, c := range chunk.Choices {
			text.WriteString(c.Text)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(buf.String()), "[DONE]") {
		return text.String(), fmt.Errorf("no [DONE]")
	}
	return text.String(), nil
}

// TestHeadsSwapUnderLoad swaps a head's version 20 times while 16 clients
// stream through it: no request fails and each output is that of exactly
// one version.
func TestHeadsSwapUnderLoad(t *testing.T) {
	s := headServer(t, nil)
	dirs := []string{writeHead(t, 4, 21), writeHead(t, 4, 22)}
	registerHead(t, s, "swap", dirs[0])
	const prompt, n = "the swap test", 24
	want := make([]string, 2)
	for i, d := range dirs {
		if r := s.do(t, http.MethodPut, "/v1/heads/swap", fmt.Sprintf(`{"path":%q}`, d)); r.status != 200 {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
		var err error
		if want[i], err = streamText(s, "swap", prompt, n); err != nil {
			t.Fatal(err)
		}
	}
	if want[0] == want[1] {
		t.Fatalf("the two versions give the same text %q", want[0])
	}
	stop := make(chan struct{})
	var mu sync.Mutex
	var failed, done int
	var bad []string
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				text, err := streamText(s, "swap", prompt, n)
				mu.Lock()
				done++
				if err != nil {
					failed++
					bad = append(bad, err.Error())
				} else if text != want[0] && text != want[1] {
					bad = append(bad, text)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 20 {
		time.Sleep(20 * time.Millisecond)
		if r := s.do(t, http.MethodPut, "/v1/heads/swap", fmt.Sprintf(`{"path":%q}`, dirs[(i+1)%2])); r.status != 200 {
			t.Errorf("swap %d: %d %s", i, r.status, r.body)
		}
	}
	close(stop)
	wg.Wait()
	if failed > 0 || len(bad) > 0 {
		t.Errorf("%d of %d requests failed or mixed versions: %q", failed, done, bad)
	}
	t.Logf("%d requests during 20 swaps", done)
	// Old versions are unloaded once unused.
	waitFor(t, 5*time.Second, "old versions unloaded", func() bool {
		st, _ := s.heads.get("swap")
		loaded := 0
		for _, v := range st.Versions {
			if v.Loaded {
				loaded++
			}
		}
		return loaded == 1
	})
}

// TestHeadsPluginCrash kills the plugin during streaming: the head's
// streams end with an error event, base requests are unaffected, the
// plugin comes back and the head serves again.
func TestHeadsPluginCrash(t *testing.T) {
	s := headServer(t, nil)
	registerHead(t, s, "dave", writeHead(t, 4, 31))
	want, err := streamText(s, "dave", "crash", 16)
	if err != nil {
		t.Fatal(err)
	}
	baseWant, _ := streamText(s, "tiny", "base", 200)
	st, _ := s.heads.get("dave")
	pid := st.PluginPID
	type result struct {
		text string
		err  error
	}
	heads, bases := make(chan result, 4), make(chan result, 2)
	for range 4 {
		go func() {
			text, err := streamText(s, "dave", "crash", 100000)
			heads <- result{text, err}
		}()
	}
	for range 2 {
		go func() {
			text, err := streamText(s, "tiny", "base", 200)
			bases <- result{text, err}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		r := <-heads
		if r.err == nil || !strings.Contains(r.err.Error(), "error event") {
			t.Errorf("head stream after the crash: %v", r.err)
		}
	}
	for range 2 {
		if r := <-bases; r.err != nil || r.text != baseWant {
			t.Errorf("base stream during the crash: %v", r.err)
		}
	}
	waitFor(t, 20*time.Second, "the plugin to come back", func() bool {
		st, _ := s.heads.get("dave")
		return st.Status == "ready" && st.PluginPID != pid && st.PluginPID != 0
	})
	if got, err := streamText(s, "dave", "crash", 16); err != nil || got != want {
		t.Errorf("after the restart: %q %v, want %q", got, err, want)
	}
}

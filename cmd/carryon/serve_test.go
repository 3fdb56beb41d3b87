package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carryon/carryon/server/config"
)

// TestServeCommand runs `carryon serve` with flags, an environment variable
// and a config file, finds the address in its JSON log, asks for the model
// list, then cancels the command's context (as SIGINT does) and expects a
// clean exit.
func TestServeCommand(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	cfgFile := filepath.Join(t.TempDir(), "carryon.yaml")
	if err := os.WriteFile(cfgFile, []byte("log_level: debug\nmax_queue: 8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CARRYON_THREADS", "1")
	t.Setenv("CARRYON_OLLAMA_DIR", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logR, logW := io.Pipe()
	cmd := newRootCommand()
	cmd.SetErr(logW)
	cmd.SetOut(io.Discard)
	cmd.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--model", "tale=" + model, "--data-dir", t.TempDir(),
		"--config", cfgFile, "--log-format", "json"})
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(ctx)
		logW.Close()
	}()

	records := make(chan map[string]any, 100)
	go func() {
		defer close(records)
		lines := bufio.NewScanner(logR)
		for lines.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
				rec = map[string]any{"not-json": lines.Text()}
			}
			records <- rec
		}
	}()
	next := func(match func(map[string]any) bool) map[string]any {
		for rec := range records {
			if line, bad := rec["not-json"]; bad {
				t.Errorf("log line is not JSON: %q", line)
			}
			if match(rec) {
				return rec
			}
		}
		t.Fatalf("the log ended; serve returned %v", <-done)
		return nil
	}
	addr, _ := next(func(r map[string]any) bool { return r["@message"] == "listening" })["addr"].(string)
	res, err := http.Get("http://" + addr + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"id":"tale"`) {
		t.Errorf("models: %s", body)
	}
	// log_level debug came from the config file: requests are logged.
	next(func(r map[string]any) bool { return r["@level"] == "debug" && r["route"] == "/v1/models" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v", err)
		}
		for range records {
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after its context was cancelled")
	}
}

func TestServeWithoutModels(t *testing.T) {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.OllamaDir = ""
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	var log strings.Builder
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, cfg, &log, ready) }()
	addr := <-ready
	res, err := http.Get("http://" + addr + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"hint"`) || !strings.Contains(log.String(), "no models loaded") || !strings.Contains(log.String(), "--model") {
		t.Errorf("no hint on how to add a model:\n%s\n%s", body, log.String())
	}
}

func TestServeRejectsBadSettings(t *testing.T) {
	t.Setenv("CARRYON_OLLAMA_DIR", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--log-format", "xml"}, "log_format"},
		{[]string{"serve", "--threads", "many"}, "threads"},
		{[]string{"serve", "--config", "/nonexistent/carryon.json"}, "config file"},
		{[]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--model", "/nonexistent/model.gguf"}, "neither a file nor"},
	} {
		_, err := carryon(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestServeHelpListsSettings(t *testing.T) {
	out, err := carryon(t, "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		if !strings.Contains(out, s.Env()) || !strings.Contains(out, "--"+s.Flag()) {
			t.Errorf("help lacks %s / --%s", s.Env(), s.Flag())
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/carryon/carryon/server/config"
)

// TestBenchServe runs two small levels against an in-process server with
// stories260K and checks the reported counts.
func TestBenchServe(t *testing.T) {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.OllamaDir = ""
	cfg.Threads = 1
	cfg.Models = []string{"stories260k=" + testdataPath(t, "stories260K.gguf")}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, cfg, io.Discard, ready) }()
	addr := <-ready
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	var out bytes.Buffer
	err := runBenchServe(context.Background(), &out, benchServeOptions{
		url: "http://" + addr, clients: []int{1, 3}, requests: 6, maxTokens: 8, prompt: "Once upon a time", json: true, timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q", out.String())
	}
	for i, l := range lines {
		var lvl benchLevel
		if err := json.Unmarshal([]byte(l), &lvl); err != nil {
			t.Fatal(err)
		}
		if lvl.Clients != []int{1, 3}[i] || lvl.Requests != 6 || lvl.Failed != 0 || lvl.GeneratedTokens != 48 {
			t.Errorf("level %+v", lvl)
		}
		if lvl.TTFTp50ms <= 0 || lvl.TTFTp99ms < lvl.TTFTp50ms || lvl.TokensPerSec <= 0 || lvl.RequestsPerSec <= 0 {
			t.Errorf("figures %+v", lvl)
		}
	}
	// The table form names the model.
	out.Reset()
	if err := runBenchServe(context.Background(), &out, benchServeOptions{url: "http://" + addr, clients: []int{2}, requests: 2, maxTokens: 4, prompt: "x", timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "model stories260k") || !strings.Contains(out.String(), "TTFT p50") {
		t.Errorf("table %q", out.String())
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(v, 0.5); p != 5 {
		t.Errorf("p50 %v", p)
	}
	if p := percentile(v, 0.99); p != 10 {
		t.Errorf("p99 %v", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("empty %v", p)
	}
}

package e2e

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/synth"
	"github.com/carryon/carryon/models/testenv"
	"github.com/carryon/carryon/server"
	"github.com/carryon/carryon/server/config"
)

// startServer serves stories260K (as "stories260k") on a random port
// until the test ends, and returns its base URL.
func startServer(t *testing.T) string {
	t.Helper()
	return serveStories(t, "")
}

// serveStories serves stories260K (as "stories260k") with the plugins of
// pluginsDir ("" for none) on a random port until the test ends, and
// returns its base URL.
func serveStories(t *testing.T, pluginsDir string) string {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.OllamaDir = ""
	cfg.Threads = 1
	cfg.PluginsDir = pluginsDir
	cfg.Models = []string{"stories260k=" + testenv.Path(t, "stories260K.gguf")}
	s, err := server.New(cfg, server.Options{Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// storiesGreedy is stories260K's greedy continuation of "Once upon a time".
const storiesGreedy = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."

// startSlowServer serves a random-weight model with a 4096-token context
// (as "slow"), for requests that run long enough to be interrupted. The
// test shuts it down with the returned function.
func startSlowServer(t *testing.T) (url string, shutdown func(context.Context)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slow.gguf")
	spec := synth.Spec{Name: "slow", Arch: "llama", Vocab: 400, Dim: 128, Layers: 4, Heads: 4, KVHeads: 2, FFN: 256,
		Context: 4096, WeightType: ggml.TypeQ8_0, Seed: 12}
	if err := synth.Write(path, spec); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.OllamaDir = ""
	cfg.Threads = 1
	cfg.Models = []string{"slow=" + path}
	s, err := server.New(cfg, server.Options{Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String(), func(ctx context.Context) { s.Shutdown(ctx) }
}

package sdktest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
)

// StartTimeout bounds starting a plugin in these helpers.
const StartTimeout = 2 * time.Minute

// Build compiles the main package pkg (a directory such as "." or
// "./plugins/x", relative to the test's working directory, or an import
// path) with `go build` into a temporary directory and returns the binary's
// path. It fails the test when the build fails.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), binaryName(pkg))
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return out
}

// binaryName names the binary after the package's directory, which is also
// the name the plugin's log lines carry.
func binaryName(pkg string) string {
	if abs, err := filepath.Abs(pkg); err == nil && (pkg == "." || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../")) {
		pkg = abs
	}
	return filepath.Base(filepath.Clean(pkg))
}

// Start starts the plugin binary at path as the core does (checksum pinned,
// mutual TLS, logs to t.Log) and closes it when the test ends.
func Start(t testing.TB, path string) *host.Plugin {
	t.Helper()
	sum, err := host.FileChecksum(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	p, err := host.Start(ctx, host.Config{Path: path, Checksum: sum, Logger: Logger(t), StartTimeout: StartTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// StartHead starts the head plugin binary at path (see Start) and returns
// its client.
func StartHead(t testing.TB, path string) *host.HeadClient {
	t.Helper()
	p := Start(t, path)
	c, err := p.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// StartForecaster starts the forecaster plugin binary at path (see Start)
// and returns its client.
func StartForecaster(t testing.TB, path string) *host.ForecasterClient {
	t.Helper()
	p := Start(t, path)
	c, err := p.Forecaster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServeHead serves impl from the test process over gRPC, as a plugin
// process would, and returns a client connected to it. Serving stops when
// the test ends.
func ServeHead(t testing.TB, impl sdk.Head) *host.HeadClient {
	t.Helper()
	log := Logger(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := sdk.ServeHeadInProcess(ctx, impl, sdk.WithLogger(log.Named("plugin")))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := attach(t, a, log, cancel)
	c, err := p.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServeForecaster serves impl from the test process over gRPC and returns a
// client connected to it. Serving stops when the test ends.
func ServeForecaster(t testing.TB, impl sdk.Forecaster) *host.ForecasterClient {
	t.Helper()
	log := Logger(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := sdk.ServeForecasterInProcess(ctx, impl, sdk.WithLogger(log.Named("plugin")))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := attach(t, a, log, cancel)
	c, err := p.Forecaster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func attach(t testing.TB, a sdk.Attachment, log hclog.Logger, cancel context.CancelFunc) *host.Plugin {
	t.Helper()
	t.Cleanup(func() {
		cancel()
		<-a.Done
	})
	ctx, stop := context.WithTimeout(context.Background(), StartTimeout)
	defer stop()
	p, err := host.Attach(ctx, a, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// RunHead runs f as two subtests: "in-process", against impl served from
// the test process over gRPC, and "subprocess", against the plugin built
// from the main package pkg (see Build) and started as the core starts it.
// impl should be a fresh value that the subtest may change.
func RunHead(t *testing.T, impl sdk.Head, pkg string, f func(t *testing.T, h sdk.Head)) {
	t.Helper()
	t.Run("in-process", func(t *testing.T) { f(t, ServeHead(t, impl)) })
	t.Run("subprocess", func(t *testing.T) { f(t, StartHead(t, Build(t, pkg))) })
}

// Logger returns a logger that writes to t.Log until the test ends (lines
// that arrive later are dropped).
func Logger(t testing.TB) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return hclog.New(&hclog.LoggerOptions{
		Name:   t.Name(),
		Level:  hclog.Debug,
		Output: w,
	})
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

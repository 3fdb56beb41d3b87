package host_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
	"github.com/carryon/carryon/sdk/sdktest"
)

// The plugins of testdata are built once per test binary.
var (
	echoOnce, v99Once sync.Once
	echoPath, v99Path string
)

func echoHead(t *testing.T) string {
	echoOnce.Do(func() { echoPath = sdktest.Build(&onceTB{t}, "./testdata/echohead") })
	if echoPath == "" {
		t.Fatal("building testdata/echohead failed")
	}
	return echoPath
}

func v99(t *testing.T) string {
	v99Once.Do(func() { v99Path = sdktest.Build(&onceTB{t}, "./testdata/v99") })
	if v99Path == "" {
		t.Fatal("building testdata/v99 failed")
	}
	return v99Path
}

// buildDir holds the plugins built for the whole test binary run (the
// first test's TempDir would vanish when that test ends).
var buildDir string

func TestMain(m *testing.M) {
	if os.Getenv("CARRYON_HOST_TEST_PLUGIN") != "" {
		os.Exit(m.Run()) // the core process of TestPluginExitsWithItsCore
	}
	dir, err := os.MkdirTemp("", "carryon-host-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// onceTB builds into buildDir.
type onceTB struct{ *testing.T }

func (o *onceTB) TempDir() string {
	dir, err := os.MkdirTemp(buildDir, "plugin")
	if err != nil {
		o.Fatal(err)
	}
	return dir
}

func TestStartAndCall(t *testing.T) {
	h := sdktest.StartHead(t, echoHead(t))
	ctx := context.Background()
	info, err := h.Info(ctx)
	if err != nil || info.Name != "echohead" {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if p := h.Plugin(); p.ProtocolVersion() != sdk.ProtocolVersion || p.Pid() <= 0 || p.Pid() == os.Getpid() {
		t.Fatalf("protocol %d, pid %d", p.ProtocolVersion(), p.Pid())
	}
	if err := h.Plugin().Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Load(ctx, "a", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	d, err := h.Forward(ctx, []sdk.Row{{Head: "a", Seq: 1, Hidden: []float32{1, 2, 3, 4}}})
	if err != nil || fmt.Sprint(d) != "[[2 4 6 8]]" {
		t.Fatalf("Forward = %v, %v", d, err)
	}
	_, err = h.Forward(ctx, []sdk.Row{{Head: "nope", Seq: 1, Hidden: []float32{1, 2, 3, 4}}})
	if !errors.Is(err, sdk.ErrUnknownHead) {
		t.Fatalf("unknown head: %v", err)
	}
	_, err = h.Load(ctx, "b", "/does/not/exist")
	if !errors.Is(err, sdk.ErrInvalid) {
		t.Fatalf("bad dir: %v", err)
	}
	if _, err := h.Plugin().Forecaster(ctx); !errors.Is(err, host.ErrKind) {
		t.Fatalf("Forecaster of a head plugin: %v", err)
	}
	run, err := h.Train(ctx, sdk.TrainJob{Head: "a"})
	if err == nil {
		_, err = run.Recv()
	}
	if !errors.Is(err, sdk.ErrUnsupported) {
		t.Fatalf("Train: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPluginLogsReachTheHost(t *testing.T) {
	path := echoHead(t)
	sum, _ := host.FileChecksum(path)
	var buf syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Info, Output: &buf})
	p, err := host.Start(context.Background(), host.Config{Path: path, Checksum: sum, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h, err := p.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Load(context.Background(), "logged-head", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "id=logged-head") {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's log line did not arrive; host log:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), "[INFO]  core.echohead") {
		t.Errorf("plugin lines are not under the binary's name:\n%s", buf.String())
	}
}

func TestClosedPluginFailsFast(t *testing.T) {
	h := sdktest.StartHead(t, echoHead(t))
	p := h.Plugin()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after Close")
	}
	if _, err := h.Info(context.Background()); !errors.Is(err, host.ErrExited) {
		t.Fatalf("Info after Close: %v", err)
	}
}

func TestKilledPluginIsReported(t *testing.T) {
	h := sdktest.StartHead(t, echoHead(t))
	p := h.Plugin()
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := h.Load(ctx, "a", t.TempDir())
	if !errors.Is(err, host.ErrExited) {
		t.Fatalf("Load after kill -9: %v", err)
	}
	if err := p.Ping(ctx); !errors.Is(err, host.ErrExited) {
		t.Fatalf("Ping after kill -9: %v", err)
	}
}

func TestVersionMismatchIsRefused(t *testing.T) {
	path := v99(t)
	sum, err := host.FileChecksum(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = host.Start(context.Background(), host.Config{Path: path, Checksum: sum, Logger: sdktest.Logger(t)})
	if !errors.Is(err, host.ErrIncompatible) {
		t.Fatalf("Start of a version-99 plugin: %v", err)
	}
	if !strings.Contains(err.Error(), "99") {
		t.Errorf("error does not name the plugin's version: %v", err)
	}
	// A host that offers version 99 as well is accepted.
	p, err := host.Start(context.Background(), host.Config{Path: path, Checksum: sum, Versions: []int{1, 99}})
	if err != nil {
		t.Fatalf("host offering 99: %v", err)
	}
	if p.ProtocolVersion() != 99 {
		t.Errorf("negotiated %d", p.ProtocolVersion())
	}
	p.Close()
	// And the real plugins refuse a host from the future.
	path = echoHead(t)
	sum, _ = host.FileChecksum(path)
	_, err = host.Start(context.Background(), host.Config{Path: path, Checksum: sum, Versions: []int{2}})
	if !errors.Is(err, host.ErrIncompatible) {
		t.Fatalf("Start with a version-2 host: %v", err)
	}
}

func TestChecksum(t *testing.T) {
	path := echoHead(t)
	_, err := host.Start(context.Background(), host.Config{Path: path})
	if err == nil {
		t.Fatal("Start without a checksum succeeded")
	}
	sum, _ := host.FileChecksum(path)
	sum[0] ^= 1
	_, err = host.Start(context.Background(), host.Config{Path: path, Checksum: sum})
	if !errors.Is(err, host.ErrChecksum) {
		t.Fatalf("Start with a wrong checksum: %v", err)
	}
}

func TestStartCancelled(t *testing.T) {
	path := echoHead(t)
	sum, _ := host.FileChecksum(path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := host.Start(ctx, host.Config{Path: path, Checksum: sum}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context: %v", err)
	}
}

// TestPluginExitsWithItsCore starts a core (this test binary, re-executed)
// that starts a plugin, kills the core with SIGKILL, and waits for the
// plugin to go away.
func TestPluginExitsWithItsCore(t *testing.T) {
	core := exec.Command(os.Args[0], "-test.run=^TestCoreProcess$")
	core.Env = append(os.Environ(), "CARRYON_HOST_TEST_PLUGIN="+echoHead(t))
	out, err := core.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	core.Stderr = os.Stderr
	if err := core.Start(); err != nil {
		t.Fatal(err)
	}
	defer core.Process.Kill()
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "plugin pid "); ok {
			pid, _ = strconv.Atoi(s)
			break
		}
	}
	if pid <= 0 {
		t.Fatal("the core did not report its plugin's pid")
	}
	if !alive(pid) {
		t.Fatal("plugin not running")
	}
	_ = core.Process.Kill()
	_ = core.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("plugin still running 10s after its core died")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCoreProcess is the core of TestPluginExitsWithItsCore; it does
// nothing in a normal test run.
func TestCoreProcess(t *testing.T) {
	path := os.Getenv("CARRYON_HOST_TEST_PLUGIN")
	if path == "" {
		t.Skip("helper process")
	}
	sum, _ := host.FileChecksum(path)
	p, err := host.Start(context.Background(), host.Config{Path: path, Checksum: sum})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("plugin pid %d\n", p.Pid())
	time.Sleep(time.Minute)
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

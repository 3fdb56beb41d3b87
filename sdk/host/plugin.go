package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/internal/wire"
)

// Errors about a plugin process, wrapped by the errors this package returns.
var (
	// ErrExited says that the plugin process has exited (or crashed).
	ErrExited = errors.New("plugin process exited")
	// ErrUnavailable says that the plugin could not be reached although its
	// process is still running.
	ErrUnavailable = errors.New("plugin unavailable")
	// ErrChecksum says that the plugin binary does not match its checksum.
	ErrChecksum = errors.New("plugin checksum mismatch")
	// ErrIncompatible says that the plugin serves no protocol version this
	// host speaks.
	ErrIncompatible = errors.New("incompatible plugin protocol version")
	// ErrKind says that the plugin does not serve the kind asked for (a
	// head client of a forecaster plugin, for instance).
	ErrKind = errors.New("plugin does not serve this kind")
)

// Config says how to start a plugin.
type Config struct {
	// Path is the plugin binary.
	Path string
	// Args are the binary's command-line arguments.
	Args []string
	// Checksum is the SHA-256 digest the binary must have (see
	// FileChecksum); it is checked just before the process starts.
	// Required: the caller decides where trust in a binary comes from.
	Checksum []byte
	// Logger receives the plugin's log lines, under a sub-logger named
	// after the binary, and this package's messages about the process; its
	// level is passed to the plugin. Nil discards both.
	Logger hclog.Logger
	// StartTimeout bounds the time from starting the process to a
	// completed handshake; 0 means one minute.
	StartTimeout time.Duration
	// Env lists extra "KEY=value" environment variables for the plugin,
	// which otherwise inherits the core's environment.
	Env []string
	// Versions lists the protocol versions the host offers; empty means
	// sdk.ProtocolVersion. The highest version both sides speak is used.
	Versions []int
}

// Plugin is a running plugin process (or, from Attach, a plugin served in
// this process) and its gRPC connection. Its methods are safe for concurrent
// use.
type Plugin struct {
	name   string
	client *plugin.Client
	rpc    *plugin.GRPCClient
	pid    int
	done   chan struct{}
	closed sync.Once

	attached bool

	mu         sync.Mutex
	head       *HeadClient
	forecaster *ForecasterClient
}

// FileChecksum returns the SHA-256 digest of the file at path, the value
// Config.Checksum pins.
func FileChecksum(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checksum plugin binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("checksum plugin binary %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// pluginSets returns the client-side plugin sets for the given versions.
func pluginSets(versions []int) map[int]plugin.PluginSet {
	if len(versions) == 0 {
		versions = []int{sdk.ProtocolVersion}
	}
	sets := make(map[int]plugin.PluginSet, len(versions))
	for _, v := range versions {
		sets[v] = plugin.PluginSet{
			wire.HeadPlugin:       &headPlugin{},
			wire.ForecasterPlugin: &forecasterPlugin{},
		}
	}
	return sets
}

func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(wire.MaxMessageBytes)),
		grpc.WithInitialWindowSize(wire.WindowBytes),
		grpc.WithInitialConnWindowSize(wire.WindowBytes),
	}
}

// Start starts the plugin binary cfg.Path, checks its checksum, completes
// the handshake and connects to it. ctx bounds the start only (its deadline
// shortens StartTimeout; a cancellation takes effect when the handshake ends
// or times out); the process lives until Close, a crash, or the end of the
// core's process (on Linux the kernel kills plugins whose core dies;
// elsewhere plugins notice it within a second and exit).
func Start(ctx context.Context, cfg Config) (*Plugin, error) {
	name := filepath.Base(cfg.Path)
	if cfg.Path == "" {
		return nil, errors.New("start plugin: no binary path")
	}
	if len(cfg.Checksum) != sha256.Size {
		return nil, fmt.Errorf("start plugin %s: need a %d-byte SHA-256 checksum (see FileChecksum), got %d bytes", name, sha256.Size, len(cfg.Checksum))
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	if level := logger.GetLevel(); level != hclog.NoLevel && level != hclog.Off {
		cmd.Env = append(cmd.Env, wire.EnvLogLevel+"="+level.String())
	}
	killWithParent(cmd)
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake(),
		VersionedPlugins: pluginSets(cfg.Versions),
		Cmd:              cmd,
		SkipHostEnv:      true,
		SecureConfig:     &plugin.SecureConfig{Checksum: bytes.Clone(cfg.Checksum), Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger,
		StartTimeout:     timeout,
		GRPCDialOptions:  dialOptions(),
	})

	type result struct {
		cp  plugin.ClientProtocol
		err error
	}
	ch := make(chan result, 1)
	go func() {
		cp, err := client.Client()
		ch <- result{cp, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		client.Kill()
		<-ch
		return nil, fmt.Errorf("start plugin %s: %w", name, ctx.Err())
	}
	if r.err != nil {
		client.Kill()
		return nil, fmt.Errorf("start plugin %s: %w", name, classifyStartError(r.err))
	}
	rpc, ok := r.cp.(*plugin.GRPCClient)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("start plugin %s: not a gRPC plugin", name)
	}
	p := &Plugin{
		name:   name,
		client: client,
		rpc:    rpc,
		done:   make(chan struct{}),
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	go p.watchExit()
	return p, nil
}

// classifyStartError wraps go-plugin's start errors with this package's
// sentinels where one applies.
func classifyStartError(err error) error {
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("%w: %v", ErrChecksum, err)
	case strings.Contains(err.Error(), "incompatible API version"):
		return fmt.Errorf("%w: %v", ErrIncompatible, err)
	case strings.Contains(err.Error(), "exited before we could connect"):
		return fmt.Errorf("%w: %v", ErrExited, err)
	}
	return err
}

// watchExit closes p.done once the process has exited.
func (p *Plugin) watchExit() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if p.client.Exited() {
			close(p.done)
			return
		}
	}
}

// Attach connects to a plugin served in this process by
// sdk.ServeHeadInProcess or sdk.ServeForecasterInProcess. The connection
// has no TLS and no checksum (there is no binary). Close stops the served
// plugin; Done is closed when it stops.
func Attach(ctx context.Context, a sdk.Attachment, logger hclog.Logger) (*Plugin, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	var addr net.Addr
	var err error
	switch a.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", a.Address)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", a.Address)
	default:
		err = fmt.Errorf("unknown network %q", a.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("attach plugin at %s: %w", a.Address, err)
	}
	sets := pluginSets(nil)
	set, ok := sets[a.ProtocolVersion]
	if !ok {
		return nil, fmt.Errorf("attach plugin at %s: %w: it serves version %d, this host speaks %d", a.Address, ErrIncompatible, a.ProtocolVersion, sdk.ProtocolVersion)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: wire.Handshake(),
		Plugins:         set,
		Reattach: &plugin.ReattachConfig{
			Protocol:        plugin.ProtocolGRPC,
			ProtocolVersion: a.ProtocolVersion,
			Addr:            addr,
			Pid:             os.Getpid(),
			Test:            true,
		},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		GRPCDialOptions:  dialOptions(),
	})
	cp, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("attach plugin at %s: %w", a.Address, err)
	}
	rpc, ok := cp.(*plugin.GRPCClient)
	if !ok {
		return nil, fmt.Errorf("attach plugin at %s: not a gRPC plugin", a.Address)
	}
	p := &Plugin{
		name:     "in-process",
		client:   client,
		rpc:      rpc,
		pid:      os.Getpid(),
		done:     make(chan struct{}),
		attached: true,
	}
	go func() {
		<-a.Done
		close(p.done)
	}()
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Name returns the plugin's name: its binary's base name.
func (p *Plugin) Name() string { return p.name }

// Pid returns the plugin's process id (this process's, for an attached
// plugin).
func (p *Plugin) Pid() int { return p.pid }

// ProtocolVersion returns the negotiated protocol version.
func (p *Plugin) ProtocolVersion() int { return p.client.NegotiatedVersion() }

// Done returns a channel that is closed when the plugin process has exited,
// for whatever reason.
func (p *Plugin) Done() <-chan struct{} { return p.done }

// Exited reports whether the plugin process has exited.
func (p *Plugin) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Ping checks that the plugin answers (the gRPC health service go-plugin
// registers), within ctx.
func (p *Plugin) Ping(ctx context.Context) error {
	if p.Exited() {
		return fmt.Errorf("ping plugin %s: %w", p.name, ErrExited)
	}
	_, err := grpc_health_v1.NewHealthClient(p.rpc.Conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return p.callError("ping", err)
	}
	return nil
}

// Close stops the plugin: it asks the process to shut down, waits up to two
// seconds, then kills it, and waits for it to exit. Calls in flight fail.
// Close may be called more than once.
func (p *Plugin) Close() error {
	p.closed.Do(func() {
		if p.attached {
			_ = p.rpc.Close() // asks the served plugin to stop
			p.waitExit(5 * time.Second)
			return
		}
		killed := make(chan struct{})
		go func() {
			p.client.Kill()
			close(killed)
		}()
		select {
		case <-killed:
		case <-time.After(5 * time.Second):
			// A frozen process does not answer the shutdown request.
			if proc, err := os.FindProcess(p.pid); err == nil && p.pid > 0 {
				_ = proc.Kill()
			}
			<-killed
		}
	})
	return nil
}

// Head returns the client of the plugin's heads, after checking with an
// Info call that the plugin serves heads (ErrKind otherwise).
func (p *Plugin) Head(ctx context.Context) (*HeadClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head != nil {
		return p.head, nil
	}
	raw, err := p.rpc.Dispense(wire.HeadPlugin)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", p.name, err)
	}
	c := &HeadClient{p: p, rpc: raw.(headRPC)}
	if _, err := c.Info(ctx); err != nil {
		if errors.Is(err, sdk.ErrUnsupported) {
			return nil, fmt.Errorf("plugin %s: %w: heads", p.name, ErrKind)
		}
		return nil, err
	}
	p.head = c
	return c, nil
}

// Forecaster returns the client of the plugin's forecasters, after checking
// with an Info call that the plugin serves them (ErrKind otherwise).
func (p *Plugin) Forecaster(ctx context.Context) (*ForecasterClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.forecaster != nil {
		return p.forecaster, nil
	}
	raw, err := p.rpc.Dispense(wire.ForecasterPlugin)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", p.name, err)
	}
	c := &ForecasterClient{p: p, rpc: raw.(forecasterRPC)}
	if _, err := c.Info(ctx); err != nil {
		if errors.Is(err, sdk.ErrUnsupported) {
			return nil, fmt.Errorf("plugin %s: %w: forecasters", p.name, ErrKind)
		}
		return nil, err
	}
	p.forecaster = c
	return c, nil
}

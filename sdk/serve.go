package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/carryon/carryon/sdk/internal/wire"
)

// ProtocolVersion is the version of the carryon plugin protocol (the
// carryon.v1 services and their semantics) that this package serves. Hosts
// and plugins list the versions they speak and the highest common one is
// used; the core refuses to start a plugin with no version in common, with
// an error that names both sides' versions.
const ProtocolVersion = 1

// ServeOption changes how ServeHead, ServeForecaster and their in-process
// variants serve a plugin.
type ServeOption func(*serveOptions)

type serveOptions struct {
	logger hclog.Logger
}

// WithLogger makes the plugin machinery log through l instead of the logger
// NewLogger("plugin") returns.
func WithLogger(l hclog.Logger) ServeOption {
	return func(o *serveOptions) { o.logger = l }
}

func newServeOptions(opts []ServeOption) serveOptions {
	var o serveOptions
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = NewLogger("plugin")
	}
	return o
}

// NewLogger returns a logger that writes JSON lines to standard error, which
// is where the core reads a plugin's logs (standard output is reserved for
// the handshake). Its level is the one the core asked for when it started
// the plugin, Info otherwise. It may be created before or while serving.
func NewLogger(name string) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(wire.EnvLogLevel))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:  name,
		Level: level,
		// File descriptor 2 itself: while a plugin serves, os.Stderr is
		// redirected into a stream the core does not log.
		Output:     os.NewFile(2, "stderr"),
		JSONFormat: true,
	})
}

// ServeHead serves impl as a carryon head plugin on the connection the core
// set up when it started this process, and returns when the core closes the
// plugin (after calling impl's Close method, if it has one). It exits the
// process with status 1 when the process was not started by a carryon core,
// and with status 2 when the core's process goes away.
func ServeHead(impl Head, opts ...ServeOption) {
	serve(plugin.PluginSet{wire.HeadPlugin: &headPlugin{impl: impl}}, impl, newServeOptions(opts))
}

// ServeForecaster serves impl as a carryon forecaster plugin, as ServeHead
// does for heads.
func ServeForecaster(impl Forecaster, opts ...ServeOption) {
	serve(plugin.PluginSet{wire.ForecasterPlugin: &forecasterPlugin{impl: impl}}, impl, newServeOptions(opts))
}

func serve(set plugin.PluginSet, impl any, o serveOptions) {
	go watchParent(o.logger, os.Getppid(), time.Second)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  wire.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer:       newGRPCServer,
		Logger:           o.logger,
	})
	closeImpl(impl, o.logger)
}

func closeImpl(impl any, log hclog.Logger) {
	if c, ok := impl.(io.Closer); ok {
		if err := c.Close(); err != nil {
			log.Error("closing the plugin", "error", err)
		}
	}
}

// watchParent exits the process once its parent, the core, is gone: the
// process is then adopted by another one and its parent id changes. (On
// Linux the core also asks the kernel to kill its plugins when it dies;
// this covers the other systems and a core that was killed before it could.)
func watchParent(log hclog.Logger, ppid int, every time.Duration) {
	if ppid <= 1 {
		return // already adopted or started by init: nothing to watch
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != ppid {
			log.Warn("the core process is gone, exiting", "parent", ppid)
			os.Exit(2)
		}
	}
}

func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts,
		grpc.MaxRecvMsgSize(wire.MaxMessageBytes),
		grpc.MaxSendMsgSize(wire.MaxMessageBytes),
		grpc.InitialWindowSize(wire.WindowBytes),
		grpc.InitialConnWindowSize(wire.WindowBytes))
	return grpc.NewServer(opts...)
}

// Attachment tells a host how to reach a plugin served inside its own
// process by ServeHeadInProcess or ServeForecasterInProcess; host.Attach
// connects to it.
type Attachment struct {
	// Network and Address are the local socket the plugin listens on.
	Network, Address string
	// ProtocolVersion is the protocol version served.
	ProtocolVersion int
	// Done is closed when serving has stopped.
	Done <-chan struct{}
}

// ServeHeadInProcess serves impl from the current process, over gRPC on a
// local socket, until ctx is done; it is for tests (see package sdktest) and
// for embedding a plugin in the core. The handshake cookie is not checked
// and the connection has no TLS. impl's Close method, if it has one, is
// called when serving stops.
func ServeHeadInProcess(ctx context.Context, impl Head, opts ...ServeOption) (Attachment, error) {
	return serveInProcess(ctx, plugin.PluginSet{wire.HeadPlugin: &headPlugin{impl: impl}}, impl, newServeOptions(opts))
}

// ServeForecasterInProcess serves impl from the current process until ctx
// is done, as ServeHeadInProcess does for heads.
func ServeForecasterInProcess(ctx context.Context, impl Forecaster, opts ...ServeOption) (Attachment, error) {
	return serveInProcess(ctx, plugin.PluginSet{wire.ForecasterPlugin: &forecasterPlugin{impl: impl}}, impl, newServeOptions(opts))
}

func serveInProcess(ctx context.Context, set plugin.PluginSet, impl any, o serveOptions) (Attachment, error) {
	reattach := make(chan *plugin.ReattachConfig, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  wire.Handshake(),
			VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
			GRPCServer:       newGRPCServer,
			Logger:           o.logger,
			Test: &plugin.ServeTestConfig{
				Context:          ctx,
				ReattachConfigCh: reattach,
			},
		})
		closeImpl(impl, o.logger)
	}()
	select {
	case rc := <-reattach:
		return Attachment{
			Network:         rc.Addr.Network(),
			Address:         rc.Addr.String(),
			ProtocolVersion: rc.ProtocolVersion,
			Done:            done,
		}, nil
	case <-done:
		return Attachment{}, errors.New("serve plugin in process: serving stopped before it started")
	case <-ctx.Done():
		<-done
		return Attachment{}, fmt.Errorf("serve plugin in process: %w", ctx.Err())
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/carryon/carryon/server"
	"github.com/carryon/carryon/server/config"
)

func newServeCommand() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "serve [--model NAME=PATH|OLLAMA-NAME ...] [--addr HOST:PORT] [--data-dir DIR] [--threads N] [--config FILE] [--log-format json|pretty]",
		Short: "Serve models over the OpenAI- and Ollama-compatible HTTP API",
		Long:  serveLong(),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := map[string][]string{}
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if f.Name == "config" {
					return
				}
				if sv, ok := f.Value.(pflag.SliceValue); ok {
					flags[f.Name] = sv.GetSlice()
				} else {
					flags[f.Name] = []string{f.Value.String()}
				}
			})
			cfg, err := config.Load(config.Sources{File: configFile, Flags: flags})
			if err != nil {
				return err
			}
			return runServe(cmd.Context(), cfg, cmd.ErrOrStderr(), nil)
		},
	}
	f := cmd.Flags()
	def := config.Default()
	for _, s := range config.Settings() {
		usage := fmt.Sprintf("%s (env %s)", s.Usage, s.Env())
		switch {
		case s.IsList():
			f.StringArray(s.Flag(), nil, usage)
		case s.IsBool():
			f.Bool(s.Flag(), s.Value(&def) == "true", usage)
		default:
			f.String(s.Flag(), s.Value(&def), usage)
		}
	}
	f.StringVar(&configFile, "config", "", "config file, JSON (*.json) or YAML, with the settings' keys (env "+config.FileEnv+")")
	return cmd
}

// serveLong is the help text: how settings combine, and the keys of the
// config file with their variables.
func serveLong() string {
	var b strings.Builder
	b.WriteString(`Serve GGUF models over HTTP: the OpenAI API (/v1/chat/completions,
/v1/completions, /v1/embeddings, /v1/models), the Ollama API (/api/chat,
/api/generate, /api/embed, /api/tags, ...), /tokenize, /detokenize, /health,
/ready and /metrics.

Completions sent with "store": true, and every completion of a head whose
policy is learn, are kept in a traffic log (NATS JetStream: an embedded
server in DATA_DIR/nats, or the one --nats names); POST /v1/feedback rates or
corrects them, and learning heads are retrained from them (learn_* settings).

Models come from --model (NAME=PATH, a GGUF path, or an Ollama model name),
from the GGUF files in DATA_DIR/models/, served under their file names, and
from the config file. With none, the server still starts and says how to add
one.

Every setting comes from a flag, else an environment variable, else the config
file (--config or CARRYON_CONFIG; JSON for *.json names, YAML otherwise),
else its default. Config file keys and variables:
`)
	for _, s := range config.Settings() {
		fmt.Fprintf(&b, "  %-18s %s\n", s.Key, s.Env())
	}
	b.WriteString(`
SIGINT or SIGTERM shuts down gracefully: no new connections, running requests
get shutdown_timeout to finish and are then cancelled. A second signal cancels
them at once.`)
	return b.String()
}

// newLogger builds the server's logger from the configuration.
func newLogger(cfg config.Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "carryon",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogFormat == "json",
		Output:     w,
		TimeFormat: "2006-01-02T15:04:05.000Z0700",
	})
}

// runServe runs the server until ctx is done, then shuts it down. When
// ready is not nil it receives the listening address once requests are
// accepted.
func runServe(ctx context.Context, cfg config.Config, logOut io.Writer, ready chan<- string) error {
	log := newLogger(cfg, logOut)
	srv, err := server.New(cfg, server.Options{Logger: log, Version: version})
	if err != nil {
		log.Error("cannot start", "error", err)
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		err = fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		log.Error("cannot start", "error", err)
		_ = srv.Shutdown(context.Background())
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}

	var serveErr error
	select {
	case serveErr = <-served:
		log.Error("the listener failed", "error", serveErr)
	case <-ctx.Done():
		log.Info("shutdown requested", "grace", cfg.ShutdownTimeout.String())
	}

	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	// A second signal cancels the running requests without waiting.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	finished := make(chan struct{})
	go func() {
		select {
		case <-sig:
			log.Warn("second signal: cancelling running requests now")
			cancel()
		case <-sctx.Done():
		case <-finished:
		}
	}()
	shutErr := srv.Shutdown(sctx)
	close(finished)
	if serveErr == nil {
		serveErr = <-served
	}
	if f, ok := logOut.(*os.File); ok {
		_ = f.Sync()
	}
	if errors.Is(shutErr, context.DeadlineExceeded) || errors.Is(shutErr, context.Canceled) {
		// Requests that outlived the grace period were cancelled; that is
		// what shutting down means, not a failure of the command.
		shutErr = nil
	}
	return errors.Join(serveErr, shutErr)
}

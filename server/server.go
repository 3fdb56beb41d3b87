package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/server/config"
	"github.com/carryon/carryon/server/openai"
)

// Options are the parts of a Server that do not come from the
// configuration.
type Options struct {
	// Logger receives the server's log lines; nil discards them.
	Logger hclog.Logger
	// Version is reported by /api/version's carryon field and the logs.
	Version string
}

// Server is carryon's HTTP server: the OpenAI- and Ollama-compatible API
// over the models it loaded. Create it with New, run it with Serve, stop it
// with Shutdown.
type Server struct {
	cfg     config.Config
	log     hclog.Logger
	version string
	started time.Time

	models []*Model // fixed after New
	byName map[string]*Model

	plugins *supervisor
	heads   *headRegistry
	tuning  *tuning
	traffic trafficStore  // the traffic log, opened on first use
	learner *orchestrator // retrains heads whose policy is learn

	forecasts *forecastRegistry

	metrics *metrics
	http    *fasthttp.Server

	// ctx is the parent of every request's context. It is cancelled only
	// after Shutdown, so that shutting down lets running requests finish.
	ctx    context.Context
	cancel context.CancelFunc

	closing  atomic.Bool
	shutOnce sync.Once
	shutErr  error

	// listeners are the ones Serve was given; Shutdown closes them too, as
	// fasthttp's Shutdown misses a Serve that had not yet registered its
	// listener (it then accepted forever).
	lnMu      sync.Mutex
	listeners []net.Listener
}

// New loads the configured models (and the GGUF files of the data
// directory's models/ folder) and prepares the server. A configured model
// that cannot be loaded is an error; a data-directory file that cannot be
// loaded is logged and skipped. With no models at all the server still
// serves, and says how to add one.
func New(cfg config.Config, o Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server configuration: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		version: o.Version,
		started: time.Now(),
		byName:  map[string]*Model{},
	}
	if s.version == "" {
		s.version = "dev"
	}
	sources, err := findModels(&cfg, log)
	if err != nil {
		return nil, err
	}
	for _, src := range sources {
		t0 := time.Now()
		m, err := loadModel(src, &cfg, log)
		if err != nil {
			if src.explicit {
				s.closeModels(context.Background())
				return nil, err
			}
			log.Warn("skipping a data-dir model that failed to load", "path", src.path, "error", err)
			continue
		}
		s.models = append(s.models, m)
		s.byName[m.Name] = m
		log.Info("model loaded", "model", m.Name, "path", m.Path, "arch", m.Details.Family,
			"params", m.Details.ParameterSize, "weights", m.Details.QuantizationLevel,
			"context", m.seqContext, "chat_template", m.Template.Name(), "took", time.Since(t0).Round(time.Millisecond))
	}
	if len(s.models) == 0 {
		log.Warn("no models loaded: " + noModelsHint(&cfg))
	}
	if s.plugins, err = startSupervisor(cfg.PluginsDir, log); err != nil {
		s.closeModels(context.Background())
		return nil, err
	}
	if s.heads, err = newHeadRegistry(cfg.DataDir, s.plugins, s.models, log); err != nil {
		s.plugins.close()
		s.closeModels(context.Background())
		return nil, err
	}
	if s.tuning, err = newTuning(cfg.DataDir, log); err != nil {
		s.plugins.close()
		s.closeModels(context.Background())
		return nil, err
	}
	s.forecasts = newForecastRegistry(cfg.DataDir, s.plugins, forecastThreads(cfg.Threads), log)
	s.metrics = newMetrics(func() []*Model { return s.models })
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tuning.start(s)
	s.heads.learnDefaults = learnThresholds{MinSamples: cfg.LearnMinSamples,
		Holdout: float64(cfg.LearnHoldoutPercent) / 100, MaxSamples: cfg.LearnMaxSamples}
	s.learner = newOrchestrator(s)
	s.learner.start()
	s.http = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.transportError,
		Name:               "carryon",
		MaxRequestBodySize: cfg.MaxBodyBytes,
		ReadTimeout:        60 * time.Second,
		IdleTimeout:        120 * time.Second,
		CloseOnShutdown:    true,
		// A client that announces an oversized body with Expect:
		// 100-continue is refused before it sends it.
		ExpectHandler: func(c *fasthttp.RequestCtx) int {
			if n := c.Request.Header.ContentLength(); n > cfg.MaxBodyBytes {
				return fasthttp.StatusRequestEntityTooLarge
			}
			return fasthttp.StatusContinue
		},
		Logger: fasthttpLogger{log.Named("http")},
	}
	return s, nil
}

// noModelsHint tells how to add a model.
func noModelsHint(cfg *config.Config) string {
	return fmt.Sprintf("start carryon serve with --model NAME=PATH.gguf (or an Ollama model name), "+
		"set CARRYON_MODELS, list models in a config file, or put GGUF files in %s",
		strings.TrimSuffix(cfg.DataDir, "/")+"/models/")
}

// Models returns the loaded models, in load order.
func (s *Server) Models() []*Model { return append([]*Model(nil), s.models...) }

// Serve answers requests on ln until Shutdown. It returns nil after
// Shutdown, and the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	if s.closing.Load() {
		s.lnMu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.lnMu.Unlock()
	s.log.Info("listening", "addr", ln.Addr().String(), "models", len(s.models), "version", s.version)
	if err := s.http.Serve(ln); err != nil && !s.closing.Load() {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops the server gracefully: it stops accepting connections
// and requests, lets running requests finish until ctx is done, then
// cancels the rest (their streams end with an error event) and releases
// the models. It may be called more than once; later calls return the
// first one's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown(ctx) })
	return s.shutErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.lnMu.Lock()
	s.closing.Store(true)
	listeners := s.listeners
	s.lnMu.Unlock()
	s.log.Info("shutting down: finishing running requests")
	// The HTTP server stops listening at once and waits for its
	// connections to go idle; it gets a little longer than the schedulers
	// so that requests cancelled at the deadline can still write their
	// final event.
	httpDone := make(chan error, 1)
	go func() {
		hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		go func() {
			select {
			case <-ctx.Done():
				t := time.NewTimer(5 * time.Second)
				defer t.Stop()
				select {
				case <-t.C:
					cancel()
				case <-hctx.Done():
				}
			case <-hctx.Done():
			}
		}()
		httpDone <- s.http.ShutdownWithContext(hctx)
	}()
	s.learner.close()
	s.tuning.close()
	errs := []error{s.closeModels(ctx)}
	s.plugins.close()
	if err := <-httpDone; err != nil {
		errs = append(errs, fmt.Errorf("close connections: %w", err))
	}
	for _, ln := range listeners {
		_ = ln.Close() // already closed unless Serve had not reached fasthttp
	}
	s.closeTraffic()
	s.cancel()
	err := errors.Join(errs...)
	if err != nil {
		s.log.Warn("shutdown cut running requests short", "error", err)
	} else {
		s.log.Info("shutdown complete")
	}
	return err
}

// closeModels closes every scheduler (in parallel, sharing ctx's
// deadline), then every model.
func (s *Server) closeModels(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(s.models))
	for i, m := range s.models {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.sched.Close(ctx); err != nil {
				errs[i] = fmt.Errorf("model %s: %w", m.Name, err)
			}
		}()
	}
	wg.Wait()
	for i, m := range s.models {
		if err := m.close(); err != nil && errs[i] == nil {
			errs[i] = fmt.Errorf("close model %s: %w", m.Name, err)
		}
	}
	return errors.Join(errs...)
}

// lookup finds a model by the name a client gave. Names without a tag
// also match "NAME:latest", and "NAME:latest" matches NAME, as Ollama
// clients expect.
func (s *Server) lookup(name string) (*Model, bool) {
	if m, ok := s.byName[name]; ok {
		return m, true
	}
	if base, ok := strings.CutSuffix(name, ":latest"); ok {
		if m, ok := s.byName[base]; ok {
			return m, true
		}
	}
	if !strings.Contains(name, ":") {
		if m, ok := s.byName[name+":latest"]; ok {
			return m, true
		}
	}
	return nil, false
}

// route is one entry of the routing table.
type route struct {
	method  string
	handler func(*Server, *fasthttp.RequestCtx, *requestInfo)
}

// routes maps paths to handlers; /v1/models/{id} is matched by prefix in
// handle.
var routes = map[string]route{
	"/v1/chat/completions": {fasthttp.MethodPost, (*Server).handleChatCompletions},
	"/v1/completions":      {fasthttp.MethodPost, (*Server).handleCompletions},
	"/v1/embeddings":       {fasthttp.MethodPost, (*Server).handleEmbeddings},
	"/v1/feedback":         {fasthttp.MethodPost, (*Server).handleFeedback},
	"/v1/models":           {fasthttp.MethodGet, (*Server).handleListModels},
	"/v1/forecast":         {fasthttp.MethodPost, (*Server).handleForecast},
	"/tokenize":            {fasthttp.MethodPost, (*Server).handleTokenize},
	"/detokenize":          {fasthttp.MethodPost, (*Server).handleDetokenize},
	"/api/chat":            {fasthttp.MethodPost, (*Server).handleOllamaChat},
	"/api/generate":        {fasthttp.MethodPost, (*Server).handleOllamaGenerate},
	"/api/embed":           {fasthttp.MethodPost, (*Server).handleOllamaEmbed},
	"/api/tags":            {fasthttp.MethodGet, (*Server).handleOllamaTags},
	"/api/ps":              {fasthttp.MethodGet, (*Server).handleOllamaPS},
	"/api/show":            {fasthttp.MethodPost, (*Server).handleOllamaShow},
	"/api/version":         {fasthttp.MethodGet, (*Server).handleOllamaVersion},
	"/health":              {fasthttp.MethodGet, (*Server).handleHealth},
	"/ready":               {fasthttp.MethodGet, (*Server).handleReady},
	"/metrics":             {fasthttp.MethodGet, (*Server).handleMetrics},
}

// requestInfo follows one request for its log line and metrics.
type requestInfo struct {
	route string
	model string
	start time.Time
	// streamed is set when the handler handed the response to a body
	// stream writer, which then records the request itself.
	streamed bool
}

// handle routes a request and records it.
func (s *Server) handle(c *fasthttp.RequestCtx) {
	info := &requestInfo{start: time.Now()}
	path := string(c.Path())
	rt, ok := routes[path]
	switch {
	case ok:
		info.route = path
	case path == "/v1/heads" || strings.HasPrefix(path, "/v1/heads/"):
		info.route = "/v1/heads"
		rt = route{string(c.Method()), (*Server).handleHeads}
		ok = true
	case path == "/v1/files" || strings.HasPrefix(path, "/v1/files/"):
		info.route = "/v1/files"
		rt = route{string(c.Method()), (*Server).handleFiles}
		ok = true
	case strings.HasPrefix(path, "/v1/fine_tuning/"):
		info.route = "/v1/fine_tuning"
		rt = route{string(c.Method()), (*Server).handleFineTuning}
		ok = true
	case path == "/v1/forecasters" || strings.HasPrefix(path, "/v1/forecasters/"):
		info.route = "/v1/forecasters"
		rt = route{string(c.Method()), (*Server).handleForecasters}
		ok = true
	case strings.HasPrefix(path, "/v1/models/"):
		info.route = "/v1/models/{id}"
		rt = route{fasthttp.MethodGet, (*Server).handleGetModel}
		ok = true
	default:
		info.route = "unknown"
	}
	switch {
	case !ok:
		s.writeError(c, info, openai.NewError(fasthttp.StatusNotFound, openai.TypeInvalidRequest, openai.CodeNotFound, "",
			fmt.Sprintf("Unknown request URL: %s %s.", c.Method(), path)))
	case string(c.Method()) != rt.method && !(rt.method == fasthttp.MethodGet && c.IsHead()):
		c.Response.Header.Set("Allow", rt.method)
		s.writeError(c, info, openai.NewError(fasthttp.StatusMethodNotAllowed, openai.TypeInvalidRequest, openai.CodeMethodNotAllowed, "",
			fmt.Sprintf("Method %s is not allowed for %s; use %s.", c.Method(), path, rt.method)))
	default:
		rt.handler(s, c, info)
	}
	if !info.streamed {
		s.record(info, c.Response.StatusCode())
	}
}

// record logs a finished request and counts it.
func (s *Server) record(info *requestInfo, status int) {
	model := info.model
	if model == "" {
		model = "none"
	}
	s.metrics.requests.WithLabelValues(info.route, model, strconv.Itoa(status)).Inc()
	took := time.Since(info.start)
	s.metrics.duration.WithLabelValues(info.route).Observe(took.Seconds())
	if s.log.IsDebug() || status >= 500 {
		s.log.Log(levelFor(status), "request", "route", info.route, "model", info.model, "status", status, "took", took.Round(time.Microsecond))
	}
}

func levelFor(status int) hclog.Level {
	if status >= 500 {
		return hclog.Warn
	}
	return hclog.Debug
}

// isOllamaRoute reports whether errors on a route use Ollama's format.
func isOllamaRoute(route string) bool { return strings.HasPrefix(route, "/api/") }

// writeError writes an error in the format of the request's API family.
func (s *Server) writeError(c *fasthttp.RequestCtx, info *requestInfo, e *openai.Error) {
	if e.Status == fasthttp.StatusTooManyRequests || e.Status == fasthttp.StatusServiceUnavailable {
		c.Response.Header.Set("Retry-After", "1")
	}
	c.SetStatusCode(e.Status)
	c.SetContentType("application/json")
	if isOllamaRoute(info.route) {
		c.SetBody(ollamaErrorBody(e.Message))
		return
	}
	c.SetBody(e.Envelope())
}

// transportError answers requests fasthttp could not read: bodies over
// the size limit (413), timeouts, malformed HTTP.
func (s *Server) transportError(c *fasthttp.RequestCtx, err error) {
	info := &requestInfo{route: "unknown", start: time.Now()}
	var e *openai.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = openai.NewError(fasthttp.StatusRequestEntityTooLarge, openai.TypeInvalidRequest, openai.CodeRequestTooLarge, "",
			fmt.Sprintf("The request body is larger than this server accepts (%d bytes).", s.cfg.MaxBodyBytes))
	case isTimeout(err):
		e = openai.NewError(fasthttp.StatusRequestTimeout, openai.TypeInvalidRequest, "request_timeout", "", "The request was not received in time.")
	default:
		e = openai.NewError(fasthttp.StatusBadRequest, openai.TypeInvalidRequest, "malformed_request", "", "The HTTP request could not be parsed: "+err.Error())
	}
	s.writeError(c, info, e)
	s.record(info, e.Status)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fasthttpLogger passes fasthttp's own messages to the server log.
type fasthttpLogger struct{ log hclog.Logger }

// Printf logs one fasthttp message.
func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

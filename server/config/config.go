package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/carryon/carryon/models/ollama"
)

// Config holds every setting of carryon serve. Load fills it from flags,
// the environment, a config file and defaults; Validate checks it.
type Config struct {
	// Addr is the host:port the HTTP server listens on.
	Addr string `json:"addr" yaml:"addr"`
	// DataDir is carryon's data directory; GGUF files in its models/
	// folder are served under their file names.
	DataDir string `json:"data_dir" yaml:"data_dir"`
	// Models lists the models to serve: "NAME=PATH", a GGUF path (served
	// under its file name), or the name of a model in the Ollama store.
	Models []string `json:"models" yaml:"models"`
	// OllamaDir is the Ollama model store that model names are looked up
	// in.
	OllamaDir string `json:"ollama_dir" yaml:"ollama_dir"`
	// Threads is the number of compute threads per model; 0 uses every
	// core.
	Threads int `json:"threads" yaml:"threads"`
	// LogFormat is "pretty" (human-readable lines) or "json".
	LogFormat string `json:"log_format" yaml:"log_format"`
	// LogLevel is trace, debug, info, warn or error.
	LogLevel string `json:"log_level" yaml:"log_level"`

	// MaxSequences bounds the sequences decoded together per model.
	MaxSequences int `json:"max_sequences" yaml:"max_sequences"`
	// MaxBatchTokens bounds the tokens of one forward step.
	MaxBatchTokens int `json:"max_batch_tokens" yaml:"max_batch_tokens"`
	// PrefillChunk bounds the prompt tokens one request reads per step.
	PrefillChunk int `json:"prefill_chunk" yaml:"prefill_chunk"`
	// MaxQueue bounds the requests waiting per model before new ones are
	// refused with 429.
	MaxQueue int `json:"max_queue" yaml:"max_queue"`
	// KVTokens is the KV cache budget in token positions per model; 0
	// lets the scheduler choose.
	KVTokens int `json:"kv_tokens" yaml:"kv_tokens"`
	// KVType is the KV cache element type: f16 or f32.
	KVType string `json:"kv_type" yaml:"kv_type"`
	// PrefixCache keeps the KV of finished requests for reuse by later
	// requests that share a prefix.
	PrefixCache bool `json:"prefix_cache" yaml:"prefix_cache"`

	// MaxBodyBytes bounds request bodies; larger ones get 413.
	MaxBodyBytes int `json:"max_body_bytes" yaml:"max_body_bytes"`
	// ShutdownTimeout is how long running requests may take to finish on
	// SIGINT/SIGTERM before they are cancelled.
	ShutdownTimeout Duration `json:"shutdown_timeout" yaml:"shutdown_timeout"`
	// Heartbeat is the interval of keep-alive comments on streams that
	// have nothing else to send (during a long prefill); a failed write
	// cancels the request.
	Heartbeat Duration `json:"heartbeat" yaml:"heartbeat"`

	// PluginsDir holds the plugin binaries the server starts (a missing
	// directory means no plugins).
	PluginsDir string `json:"plugins_dir" yaml:"plugins_dir"`
	// AdminKey, when set, is the bearer token the head administration
	// routes (/v1/heads...) require.
	AdminKey string `json:"admin_key" yaml:"admin_key"`

	// NATS is the URL of an external NATS server (or cluster) that holds
	// the traffic log; empty runs an embedded server with its files in
	// <data-dir>/nats.
	NATS string `json:"nats" yaml:"nats"`
	// LearnMinSamples is the default number of new logged samples that
	// starts the retraining of a head whose policy is learn.
	LearnMinSamples int `json:"learn_min_samples" yaml:"learn_min_samples"`
	// LearnHoldoutPercent is the default share of a retraining's samples
	// held out for validation, in percent.
	LearnHoldoutPercent int `json:"learn_holdout_percent" yaml:"learn_holdout_percent"`
	// LearnMaxSamples is the default bound on the samples of one
	// retraining; 0 means none.
	LearnMaxSamples int `json:"learn_max_samples" yaml:"learn_max_samples"`
	// LearnInterval is how often learning heads are checked for new
	// samples (logged samples also wake the check).
	LearnInterval Duration `json:"learn_interval" yaml:"learn_interval"`
	// LearnFeedbackWait is how old a logged sample must be before a
	// retraining uses it, so that its feedback can arrive first.
	LearnFeedbackWait Duration `json:"learn_feedback_wait" yaml:"learn_feedback_wait"`
}

// Duration is a time.Duration written as a Go duration string in config
// files and the environment ("30s").
type Duration time.Duration

// String formats the duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"30s\": %w", err)
	}
	return d.set(s)
}

// UnmarshalYAML accepts a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"30s\": %w", err)
	}
	return d.set(s)
}

func (d *Duration) set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Default returns the settings used when nothing else sets them.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DataDir:         defaultDataDir(),
		OllamaDir:       ollama.DefaultDir(),
		LogFormat:       "pretty",
		LogLevel:        "info",
		MaxSequences:    16,
		MaxBatchTokens:  512,
		PrefillChunk:    256,
		MaxQueue:        256,
		KVType:          "f16",
		PrefixCache:     true,
		MaxBodyBytes:    16 << 20,
		ShutdownTimeout: Duration(30 * time.Second),
		Heartbeat:       Duration(2 * time.Second),
		PluginsDir:      filepath.Join("bin", "plugins"),

		LearnMinSamples:     100,
		LearnHoldoutPercent: 10,
		LearnMaxSamples:     5000,
		LearnInterval:       Duration(time.Minute),
		LearnFeedbackWait:   Duration(time.Minute),
	}
}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ".carryon"
	}
	return filepath.Join(home, ".carryon")
}

// Setting describes one setting: its config-file key, flag, environment
// variable and help text.
type Setting struct {
	// Key is the config-file key ("max_sequences").
	Key string
	// Usage is the help text.
	Usage string
	flag  string
	field func(*Config) any
}

// Flag returns the command-line flag name ("max-sequences").
func (s Setting) Flag() string {
	if s.flag != "" {
		return s.flag
	}
	return strings.ReplaceAll(s.Key, "_", "-")
}

// Env returns the environment variable ("CARRYON_MAX_SEQUENCES").
func (s Setting) Env() string { return "CARRYON_" + strings.ToUpper(s.Key) }

// IsList reports whether the setting is a list (its flag repeats; its
// environment variable separates values with commas).
func (s Setting) IsList() bool {
	_, ok := s.field(&Config{}).(*[]string)
	return ok
}

// IsBool reports whether the setting is a boolean.
func (s Setting) IsBool() bool {
	_, ok := s.field(&Config{}).(*bool)
	return ok
}

// Value formats the setting's value in c.
func (s Setting) Value(c *Config) string {
	switch p := s.field(c).(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	case *Duration:
		return p.String()
	case *[]string:
		return strings.Join(*p, ",")
	}
	return ""
}

// Set parses v into the setting's field of c. A list setting gets the
// comma-separated items of v.
func (s Setting) Set(c *Config, v string) error {
	if s.IsList() {
		var items []string
		for _, it := range strings.Split(v, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		return s.SetList(c, items)
	}
	switch p := s.field(c).(type) {
	case *string:
		*p = strings.TrimSpace(v)
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", s.Key, v)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %q is not a boolean (true or false)", s.Key, v)
		}
		*p = b
	case *Duration:
		if err := p.set(v); err != nil {
			return fmt.Errorf("%s: %w", s.Key, err)
		}
	}
	return nil
}

// SetList replaces a list setting's items.
func (s Setting) SetList(c *Config, items []string) error {
	p, ok := s.field(c).(*[]string)
	if !ok {
		return fmt.Errorf("%s is not a list setting", s.Key)
	}
	*p = append([]string(nil), items...)
	return nil
}

// Settings returns every setting, in the order help text lists them.
func Settings() []Setting {
	return []Setting{
		{Key: "addr", Usage: "host:port to listen on", field: func(c *Config) any { return &c.Addr }},
		{Key: "models", flag: "model", Usage: "a model to serve: NAME=PATH, a GGUF path, or an Ollama model name (repeatable)", field: func(c *Config) any { return &c.Models }},
		{Key: "data_dir", Usage: "data directory; GGUF files in its models/ folder are served too", field: func(c *Config) any { return &c.DataDir }},
		{Key: "ollama_dir", Usage: "Ollama model store to look model names up in", field: func(c *Config) any { return &c.OllamaDir }},
		{Key: "threads", Usage: "compute threads per model (0: every core)", field: func(c *Config) any { return &c.Threads }},
		{Key: "log_format", Usage: "log format: pretty or json", field: func(c *Config) any { return &c.LogFormat }},
		{Key: "log_level", Usage: "log level: trace, debug, info, warn or error", field: func(c *Config) any { return &c.LogLevel }},
		{Key: "max_sequences", Usage: "sequences decoded together per model", field: func(c *Config) any { return &c.MaxSequences }},
		{Key: "max_batch_tokens", Usage: "tokens per forward step (decode rows and prefill chunks)", field: func(c *Config) any { return &c.MaxBatchTokens }},
		{Key: "prefill_chunk", Usage: "prompt tokens one request reads per step", field: func(c *Config) any { return &c.PrefillChunk }},
		{Key: "max_queue", Usage: "requests waiting per model before 429", field: func(c *Config) any { return &c.MaxQueue }},
		{Key: "kv_tokens", Usage: "KV cache budget in token positions per model (0: automatic)", field: func(c *Config) any { return &c.KVTokens }},
		{Key: "kv_type", Usage: "KV cache type: f16 or f32", field: func(c *Config) any { return &c.KVType }},
		{Key: "prefix_cache", Usage: "reuse the KV of earlier requests' shared prompt prefixes", field: func(c *Config) any { return &c.PrefixCache }},
		{Key: "max_body_bytes", Usage: "largest accepted request body (larger: 413)", field: func(c *Config) any { return &c.MaxBodyBytes }},
		{Key: "shutdown_timeout", Usage: "time running requests get to finish on shutdown", field: func(c *Config) any { return &c.ShutdownTimeout }},
		{Key: "heartbeat", Usage: "interval of keep-alive comments on idle streams", field: func(c *Config) any { return &c.Heartbeat }},
		{Key: "plugins_dir", Usage: "directory of the plugin binaries to start", field: func(c *Config) any { return &c.PluginsDir }},
		{Key: "admin_key", Usage: "bearer token the head administration routes require (empty: none)", field: func(c *Config) any { return &c.AdminKey }},
		{Key: "nats", Usage: "URL of an external NATS server for the traffic log (empty: an embedded one in DATA_DIR/nats)", field: func(c *Config) any { return &c.NATS }},
		{Key: "learn_min_samples", Usage: "new logged samples that retrain a learning head (its default)", field: func(c *Config) any { return &c.LearnMinSamples }},
		{Key: "learn_holdout_percent", Usage: "percent of a retraining's samples held out for validation (its default)", field: func(c *Config) any { return &c.LearnHoldoutPercent }},
		{Key: "learn_max_samples", Usage: "most samples of one retraining (its default; 0: no bound)", field: func(c *Config) any { return &c.LearnMaxSamples }},
		{Key: "learn_interval", Usage: "how often learning heads are checked for new samples", field: func(c *Config) any { return &c.LearnInterval }},
		{Key: "learn_feedback_wait", Usage: "how old a logged sample must be before retraining uses it (time for its feedback)", field: func(c *Config) any { return &c.LearnFeedbackWait }},
	}
}

// Lookup returns the setting with the given config-file key or flag name.
func Lookup(name string) (Setting, bool) {
	for _, s := range Settings() {
		if s.Key == name || s.Flag() == name {
			return s, true
		}
	}
	return Setting{}, false
}

// FileEnv is the environment variable naming a config file.
const FileEnv = "CARRYON_CONFIG"

// Sources are the places Load reads settings from.
type Sources struct {
	// File is the config file from the --config flag; when empty,
	// $CARRYON_CONFIG names it, and without either there is none.
	File string
	// Env returns an environment variable; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Flags holds the flags that were given on the command line, by flag
	// name, each with its values (several for a repeated list flag).
	Flags map[string][]string
}

// Load builds the configuration: defaults, then the config file, then the
// environment, then flags, each overriding the one before; then it
// validates the result.
func Load(src Sources) (Config, error) {
	c := Default()
	env := src.Env
	if env == nil {
		env = os.LookupEnv
	}
	file := src.File
	if file == "" {
		file, _ = env(FileEnv)
	}
	if file != "" {
		if err := c.mergeFile(file); err != nil {
			return Config{}, err
		}
	}
	for _, s := range Settings() {
		v, ok := env(s.Env())
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		if err := s.Set(&c, v); err != nil {
			return Config{}, fmt.Errorf("environment variable %s: %w", s.Env(), err)
		}
	}
	for name, vals := range src.Flags {
		s, ok := Lookup(name)
		if !ok {
			return Config{}, fmt.Errorf("unknown flag --%s", name)
		}
		var err error
		switch {
		case s.IsList():
			err = s.SetList(&c, vals)
		case len(vals) > 0:
			err = s.Set(&c, vals[len(vals)-1])
		}
		if err != nil {
			return Config{}, fmt.Errorf("flag --%s: %w", s.Flag(), err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// mergeFile reads a config file over c: keys it sets replace c's values.
func (c *Config) mergeFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(c); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty document (io.EOF) leaves every setting as it was.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Validate checks every setting and the model list.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port: %v", c.Addr, err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("addr", "port %q of %q is not a number from 0 to 65535", port, c.Addr)
	}
	switch c.LogFormat {
	case "pretty", "json":
	default:
		bad("log_format", "%q: want pretty or json", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: want trace, debug, info, warn or error", c.LogLevel)
	}
	if c.Threads < 0 {
		bad("threads", "%d is negative", c.Threads)
	}
	if c.MaxSequences < 1 {
		bad("max_sequences", "%d: want at least 1", c.MaxSequences)
	}
	if c.MaxBatchTokens < c.MaxSequences {
		bad("max_batch_tokens", "%d is less than max_sequences (%d): every running sequence needs a row", c.MaxBatchTokens, c.MaxSequences)
	}
	if c.PrefillChunk < 1 {
		bad("prefill_chunk", "%d: want at least 1", c.PrefillChunk)
	}
	if c.MaxQueue < 1 {
		bad("max_queue", "%d: want at least 1", c.MaxQueue)
	}
	if c.KVTokens < 0 {
		bad("kv_tokens", "%d is negative", c.KVTokens)
	}
	switch c.KVType {
	case "f16", "f32":
	default:
		bad("kv_type", "%q: want f16 or f32", c.KVType)
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", "%d: want at least 1024", c.MaxBodyBytes)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout", "%v is negative", c.ShutdownTimeout)
	}
	if c.Heartbeat <= 0 {
		bad("heartbeat", "%v: want a positive interval", c.Heartbeat)
	}
	if c.LearnMinSamples < 1 {
		bad("learn_min_samples", "%d: want at least 1", c.LearnMinSamples)
	}
	if c.LearnHoldoutPercent < 1 || c.LearnHoldoutPercent > 50 {
		bad("learn_holdout_percent", "%d: want 1 to 50", c.LearnHoldoutPercent)
	}
	if c.LearnMaxSamples < 0 || (c.LearnMaxSamples > 0 && c.LearnMaxSamples < c.LearnMinSamples) {
		bad("learn_max_samples", "%d: want 0 (no bound) or at least learn_min_samples (%d)", c.LearnMaxSamples, c.LearnMinSamples)
	}
	if c.LearnInterval <= 0 {
		bad("learn_interval", "%v: want a positive interval", c.LearnInterval)
	}
	if c.LearnFeedbackWait < 0 {
		bad("learn_feedback_wait", "%v is negative", c.LearnFeedbackWait)
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		spec, err := ParseModel(m)
		if err != nil {
			bad("models", "%v", err)
			continue
		}
		if spec.Name != "" {
			if seen[spec.Name] {
				bad("models", "the name %q is given twice", spec.Name)
			}
			seen[spec.Name] = true
		}
	}
	return errors.Join(errs...)
}

// ModelSpec is a parsed entry of Config.Models.
type ModelSpec struct {
	// Name is the name the model is served under; empty when the entry
	// did not give one (the file or Ollama name then decides).
	Name string
	// Source is a GGUF path or an Ollama model name.
	Source string
}

// ParseModel parses "NAME=SOURCE" or "SOURCE". A left part that is not a
// valid model name is taken as part of the source, so paths that contain
// '=' still work.
func ParseModel(s string) (ModelSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ModelSpec{}, errors.New("empty model entry")
	}
	if name, src, ok := strings.Cut(s, "="); ok && ValidName(name) {
		if src == "" {
			return ModelSpec{}, fmt.Errorf("model %q has no path or Ollama name after '='", s)
		}
		return ModelSpec{Name: name, Source: src}, nil
	}
	return ModelSpec{Source: s}, nil
}

// ValidName reports whether s can name a model: letters, digits and
// . _ - : / , starting with a letter or digit, at most 128 bytes.
func ValidName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && strings.ContainsRune("._-:/", r):
		default:
			return false
		}
	}
	return true
}

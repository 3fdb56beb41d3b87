package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load(Sources{Env: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Addr != "127.0.0.1:8080" || c.LogFormat != "pretty" || c.MaxSequences != 16 || !c.PrefixCache || c.ShutdownTimeout != Duration(30*time.Second) {
		t.Errorf("defaults: %+v", c)
	}
	if c.DataDir != d.DataDir || c.DataDir == "" {
		t.Errorf("data dir %q, want %q", c.DataDir, d.DataDir)
	}
}

// TestPrecedence sets one setting at every level and others at fewer
// levels: flags beat the environment, which beats the file, which beats
// the defaults.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "carryon.yaml", `
addr: 0.0.0.0:1111
threads: 3
max_queue: 7
log_format: json
models: [a=/file/a.gguf]
shutdown_timeout: 5s
`)
	env := envOf(map[string]string{
		"CARRYON_ADDR":      "0.0.0.0:2222",
		"CARRYON_THREADS":   "4",
		"CARRYON_MODELS":    "b=/env/b.gguf, c=/env/c.gguf",
		"CARRYON_KV_TYPE":   "f32",
		"CARRYON_LOG_LEVEL": "",
	})
	c, err := Load(Sources{File: file, Env: env, Flags: map[string][]string{
		"addr":  {"127.0.0.1:3333"},
		"model": {"d=/flag/d.gguf", "e=/flag/e.gguf"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:3333" {
		t.Errorf("addr %q: the flag should win", c.Addr)
	}
	if c.Threads != 4 {
		t.Errorf("threads %d: the environment should beat the file", c.Threads)
	}
	if c.MaxQueue != 7 || c.LogFormat != "json" || c.ShutdownTimeout != Duration(5*time.Second) {
		t.Errorf("file settings lost: %+v", c)
	}
	if c.KVType != "f32" {
		t.Errorf("kv_type %q: the environment should beat the default", c.KVType)
	}
	if c.LogLevel != "info" {
		t.Errorf("an empty environment variable changed log_level to %q", c.LogLevel)
	}
	if want := []string{"d=/flag/d.gguf", "e=/flag/e.gguf"}; !slices.Equal(c.Models, want) {
		t.Errorf("models %q, want the flags' %q", c.Models, want)
	}

	// Without the flag the environment's list replaces the file's.
	c, err = Load(Sources{File: file, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b=/env/b.gguf", "c=/env/c.gguf"}; !slices.Equal(c.Models, want) {
		t.Errorf("models %q, want %q", c.Models, want)
	}
}

func TestConfigFileFromEnvironment(t *testing.T) {
	file := writeFile(t, "c.json", `{"addr": "127.0.0.1:9999", "prefix_cache": false, "heartbeat": "500ms"}`)
	c, err := Load(Sources{Env: envOf(map[string]string{FileEnv: file})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" || c.PrefixCache || c.Heartbeat != Duration(500*time.Millisecond) {
		t.Errorf("JSON file not applied: %+v", c)
	}
}

func TestFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"typo.yaml", "adr: 1.2.3.4:5\n", "adr"},
		{"typo.json", `{"adr": "x"}`, "adr"},
		{"type.yaml", "threads: many\n", "line 1"},
		{"dur.json", `{"shutdown_timeout": 30}`, "duration"},
		{"dur.yaml", "heartbeat: soon\n", "soon"},
	} {
		_, err := Load(Sources{File: writeFile(t, tc.name, tc.content), Env: envOf(nil)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := Load(Sources{File: "/nonexistent/carryon.yaml", Env: envOf(nil)}); err == nil {
		t.Error("a missing config file was accepted")
	}
	if _, err := Load(Sources{File: writeFile(t, "empty.yaml", ""), Env: envOf(nil)}); err != nil {
		t.Errorf("an empty YAML file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CARRYON_ADDR": "localhost"}, "addr"},
		{map[string]string{"CARRYON_ADDR": "localhost:http"}, "addr"},
		{map[string]string{"CARRYON_LOG_FORMAT": "xml"}, "log_format"},
		{map[string]string{"CARRYON_LOG_LEVEL": "loud"}, "log_level"},
		{map[string]string{"CARRYON_THREADS": "-1"}, "threads"},
		{map[string]string{"CARRYON_THREADS": "two"}, "CARRYON_THREADS"},
		{map[string]string{"CARRYON_MAX_SEQUENCES": "0"}, "max_sequences"},
		{map[string]string{"CARRYON_MAX_SEQUENCES": "64", "CARRYON_MAX_BATCH_TOKENS": "32"}, "max_batch_tokens"},
		{map[string]string{"CARRYON_KV_TYPE": "q8"}, "kv_type"},
		{map[string]string{"CARRYON_PREFIX_CACHE": "maybe"}, "CARRYON_PREFIX_CACHE"},
		{map[string]string{"CARRYON_MAX_BODY_BYTES": "10"}, "max_body_bytes"},
		{map[string]string{"CARRYON_HEARTBEAT": "0s"}, "heartbeat"},
		{map[string]string{"CARRYON_MODELS": "a=/x.gguf,a=/y.gguf"}, "twice"},
		{map[string]string{"CARRYON_MODELS": "a="}, "after '='"},
	} {
		_, err := Load(Sources{Env: envOf(tc.env)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one mentioning %q", tc.env, err, tc.want)
		}
	}
	if _, err := Load(Sources{Env: envOf(nil), Flags: map[string][]string{"no-such-flag": {"1"}}}); err == nil {
		t.Error("an unknown flag was accepted")
	}
}

func TestParseModel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ModelSpec
	}{
		{"stories=/data/stories260K.gguf", ModelSpec{Name: "stories", Source: "/data/stories260K.gguf"}},
		{"/data/stories260K.gguf", ModelSpec{Source: "/data/stories260K.gguf"}},
		{"llama3.2:1b", ModelSpec{Source: "llama3.2:1b"}},
		{"my-model:v1=llama3.2", ModelSpec{Name: "my-model:v1", Source: "llama3.2"}},
		{"/odd/dir=x/model.gguf", ModelSpec{Source: "/odd/dir=x/model.gguf"}},
		{" qwen = /q.gguf", ModelSpec{Source: "qwen = /q.gguf"}},
	} {
		got, err := ParseModel(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseModel(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseModel(" "); err == nil {
		t.Error("an empty entry parsed")
	}
}

func TestSettingsAreDistinct(t *testing.T) {
	keys, flags, envs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range Settings() {
		if keys[s.Key] || flags[s.Flag()] || envs[s.Env()] {
			t.Errorf("setting %s repeats a key, flag or variable", s.Key)
		}
		keys[s.Key], flags[s.Flag()], envs[s.Env()] = true, true, true
		if s.Usage == "" {
			t.Errorf("setting %s has no usage text", s.Key)
		}
		// Every setting round-trips through its string form.
		c := Default()
		if err := s.Set(&c, s.Value(&c)); err != nil {
			t.Errorf("setting %s does not accept its own default %q: %v", s.Key, s.Value(&c), err)
		}
	}
	if flags["config"] {
		t.Error("a setting takes the --config flag")
	}
}

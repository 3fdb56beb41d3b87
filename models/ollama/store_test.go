package ollama

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeStore builds an Ollama store in a temporary directory.
type fakeStore struct {
	t    *testing.T
	root string
}

func newStore(t *testing.T) *fakeStore {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"manifests", "blobs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeStore{t: t, root: root}
}

// blob stores content and returns its layer entry.
func (s *fakeStore) blob(mediaType, content string) layer {
	s.t.Helper()
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(s.root, "blobs", "sha256-"+h), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return layer{MediaType: mediaType, Digest: "sha256:" + h, Size: int64(len(content))}
}

// manifest writes a manifest at manifests/<path> and returns its bytes.
func (s *fakeStore) manifest(path string, config layer, layers ...layer) []byte {
	s.t.Helper()
	b, err := json.Marshal(manifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.docker.distribution.manifest.v2+json",
		Config:        config,
		Layers:        layers,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.raw(path, string(b))
	return b
}

// raw writes text as the manifest at manifests/<path>.
func (s *fakeStore) raw(path, text string) {
	s.t.Helper()
	p := filepath.Join(s.root, "manifests", filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *fakeStore) config(family, size, quant string) layer {
	return s.blob("application/vnd.docker.container.image.v1+json",
		fmt.Sprintf(`{"model_format":"gguf","model_family":%q,"model_families":[%q],"model_type":%q,"file_type":%q,"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`,
			family, family, size, quant))
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestResolveAcceptsEveryNameForm(t *testing.T) {
	s := newStore(t)
	gguf := s.blob(mediaTypeModel, "GGUF llama 3.2 3B weights")
	tmpl := s.blob(mediaTypeTemplate, "{{ .System }}{{ .Prompt }}")
	sys := s.blob(mediaTypeSystem, "You are helpful.")
	params := s.blob(mediaTypeParams, `{"stop":["<|eot_id|>"],"temperature":0.6}`)
	lic := s.blob(mediaTypeLicense, "LLAMA 3.2 COMMUNITY LICENSE")
	cfg := s.config("llama", "3.2B", "Q4_K_M")
	latest := s.manifest("registry.ollama.ai/library/llama3.2/latest", cfg, gguf, tmpl, sys, params, lic)

	small := s.blob(mediaTypeModel, "GGUF llama 3.2 1B weights")
	s.manifest("registry.ollama.ai/library/llama3.2/1b", cfg, small, tmpl)
	user := s.blob(mediaTypeModel, "GGUF alice's tiny model")
	s.manifest("registry.ollama.ai/alice/tiny/q4", layer{}, user)
	private := s.blob(mediaTypeModel, "GGUF from a private registry")
	s.manifest("example.com:5000/team/m/v1", layer{}, private)

	blob := func(l layer) string {
		return filepath.Join(s.root, "blobs", "sha256-"+strings.TrimPrefix(l.Digest, "sha256:"))
	}
	cases := []struct {
		name, wantName, wantFull string
		wantBlob                 layer
	}{
		{"llama3.2", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", gguf},
		{"llama3.2:latest", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", gguf},
		{"library/llama3.2:latest", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", gguf},
		{"registry.ollama.ai/library/llama3.2:latest", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", gguf},
		{"registry.ollama.ai/library/llama3.2", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", gguf},
		{"  llama3.2:latest\n", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest", gguf},
		{"llama3.2:1b", "llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b", small},
		{"LLaMA3.2:1B", "llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b", small},
		{"alice/tiny:q4", "alice/tiny:q4", "registry.ollama.ai/alice/tiny:q4", user},
		{"example.com:5000/team/m:v1", "example.com:5000/team/m:v1", "example.com:5000/team/m:v1", private},
	}
	for _, tc := range cases {
		m, err := Resolve(s.root, tc.name)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.name, err)
			continue
		}
		if m.Name != tc.wantName || m.FullName != tc.wantFull || m.ModelPath != blob(tc.wantBlob) || m.ModelDigest != tc.wantBlob.Digest {
			t.Errorf("Resolve(%q) = name %q full %q path %s digest %s; want %q %q %s %s",
				tc.name, m.Name, m.FullName, m.ModelPath, m.ModelDigest, tc.wantName, tc.wantFull, blob(tc.wantBlob), tc.wantBlob.Digest)
		}
	}

	m, err := Resolve(s.root, "llama3.2")
	if err != nil {
		t.Fatal(err)
	}
	if m.Template != "{{ .System }}{{ .Prompt }}" || m.System != "You are helpful." {
		t.Errorf("template %q, system %q", m.Template, m.System)
	}
	if string(m.Params) != `{"stop":["<|eot_id|>"],"temperature":0.6}` {
		t.Errorf("params %s", m.Params)
	}
	if !slices.Equal(m.Licenses, []string{"LLAMA 3.2 COMMUNITY LICENSE"}) {
		t.Errorf("licenses %q", m.Licenses)
	}
	if want := (Details{Format: "gguf", Family: "llama", Families: []string{"llama"}, ParameterSize: "3.2B", QuantizationLevel: "Q4_K_M"}); !detailsEqual(m.Details, want) {
		t.Errorf("details %+v, want %+v", m.Details, want)
	}
	if m.Digest != digestOf(latest) {
		t.Errorf("digest %s, want the manifest's sha256 %s", m.Digest, digestOf(latest))
	}
	if want := cfg.Size + gguf.Size + tmpl.Size + sys.Size + params.Size + lic.Size; m.Size != want {
		t.Errorf("size %d, want %d", m.Size, want)
	}
	if m.ModifiedAt.IsZero() {
		t.Error("ModifiedAt is zero")
	}

	m, err = Resolve(s.root, "alice/tiny:q4")
	if err != nil {
		t.Fatal(err)
	}
	if m.Template != "" || m.System != "" || m.Params != nil || m.Licenses != nil || !detailsEqual(m.Details, Details{}) {
		t.Errorf("a model with only weights has %+v", m)
	}
}

func detailsEqual(a, b Details) bool {
	return a.Format == b.Format && a.Family == b.Family && slices.Equal(a.Families, b.Families) &&
		a.ParameterSize == b.ParameterSize && a.QuantizationLevel == b.QuantizationLevel
}

func TestResolveRelativeStoreGivesAbsolutePaths(t *testing.T) {
	s := newStore(t)
	s.manifest("registry.ollama.ai/library/m/latest", layer{}, s.blob(mediaTypeModel, "GGUF"),
		s.blob(mediaTypeProjector, "projector"), s.blob(mediaTypeAdapter, "adapter"))
	t.Chdir(filepath.Dir(s.root))
	m, err := Resolve(filepath.Base(s.root), "m")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]string{m.ModelPath}, append(m.ProjectorPaths, m.AdapterPaths...)...) {
		if !filepath.IsAbs(p) || !strings.HasPrefix(p, s.root) {
			t.Errorf("path %s is not absolute inside %s", p, s.root)
		}
	}
	if len(m.ProjectorPaths) != 1 || len(m.AdapterPaths) != 1 {
		t.Errorf("projectors %v, adapters %v; want one each", m.ProjectorPaths, m.AdapterPaths)
	}
}

func TestResolveUnknownModel(t *testing.T) {
	s := newStore(t)
	s.manifest("registry.ollama.ai/library/llama3.2/latest", layer{}, s.blob(mediaTypeModel, "GGUF"))
	for _, name := range []string{"llama3.2:1b", "mistral", "alice/llama3.2", "other.host/library/llama3.2:latest"} {
		_, err := Resolve(s.root, name)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrNotFound", name, err)
			continue
		}
		if errors.Is(err, ErrInvalidName) {
			t.Errorf("Resolve(%q) error also matches ErrInvalidName", name)
		}
		if want := "not found in " + s.root; !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(%q) = %q, want it to say %q", name, err, want)
		}
	}
	_, err := Resolve(s.root, "llama3.2:1b")
	if want := fmt.Sprintf("model llama3.2:1b not found in %s: ", s.root); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to begin %q", err, want)
	}
	if _, err := Resolve(filepath.Join(s.root, "nowhere"), "llama3.2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve in a missing store = %v, want ErrNotFound", err)
	}
	if _, err := Resolve("", "llama3.2"); err == nil {
		t.Error("Resolve with no store directory succeeded")
	}
}

func TestResolveRejectsInvalidNames(t *testing.T) {
	s := newStore(t)
	s.manifest("registry.ollama.ai/library/llama3.2/latest", layer{}, s.blob(mediaTypeModel, "GGUF"))
	for _, name := range []string{
		"", "   ", ":", "/", "llama3.2:", ":latest", "a//b",
		"../llama3.2", "../../etc/passwd", "library/../llama3.2", "llama3.2:../../x", "..:latest",
		"a/b/c/d/e", "bad name", "-leading-dash", "llama3.2@sha256:abcd", "ns.dot/model",
		"/abs/path/model", `back\slash`, "model:tag:extra", "\x00",
		strings.Repeat("m", 81),
	} {
		m, err := Resolve(s.root, name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("Resolve(%q) = %v, %v; want ErrInvalidName", name, m, err)
		}
	}
}

func TestResolveRejectsBrokenStores(t *testing.T) {
	cases := []struct {
		name  string
		build func(s *fakeStore)
		want  string // substring of the error
	}{
		{"manifest not JSON", func(s *fakeStore) { s.raw("registry.ollama.ai/library/m/latest", "{not json") }, "parse manifest"},
		{"schema version 1", func(s *fakeStore) {
			s.raw("registry.ollama.ai/library/m/latest", `{"schemaVersion":1,"layers":[]}`)
		}, "schemaVersion 1"},
		{"no model layer", func(s *fakeStore) {
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, s.blob(mediaTypeTemplate, "t"))
		}, "no layer of type " + mediaTypeModel},
		{"two model layers", func(s *fakeStore) {
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, s.blob(mediaTypeModel, "a"), s.blob(mediaTypeModel, "b"))
		}, "2 layers"},
		{"cloud model", func(s *fakeStore) {
			cfg := s.blob("application/vnd.docker.container.image.v1+json", `{"remote_host":"https://ollama.com:443","remote_model":"gpt-oss:120b"}`)
			s.manifest("registry.ollama.ai/library/m/latest", cfg)
		}, "cloud model served by https://ollama.com:443"},
		{"missing model blob", func(s *fakeStore) {
			l := s.blob(mediaTypeModel, "GGUF")
			os.Remove(filepath.Join(s.root, "blobs", "sha256-"+strings.TrimPrefix(l.Digest, "sha256:")))
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, l)
		}, "model blob"},
		{"truncated model blob", func(s *fakeStore) {
			l := s.blob(mediaTypeModel, "GGUF")
			l.Size = 1 << 30
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, l)
		}, "the manifest says 1073741824"},
		{"missing template blob", func(s *fakeStore) {
			t := s.blob(mediaTypeTemplate, "x")
			os.Remove(filepath.Join(s.root, "blobs", "sha256-"+strings.TrimPrefix(t.Digest, "sha256:")))
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, s.blob(mediaTypeModel, "GGUF"), t)
		}, "template blob"},
		{"params not JSON", func(s *fakeStore) {
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, s.blob(mediaTypeModel, "GGUF"), s.blob(mediaTypeParams, "temperature 0.5"))
		}, "not valid JSON"},
		{"config not JSON", func(s *fakeStore) {
			s.manifest("registry.ollama.ai/library/m/latest", s.blob("application/vnd.docker.container.image.v1+json", "nope"), s.blob(mediaTypeModel, "GGUF"))
		}, "parse config blob"},
		{"negative layer size", func(s *fakeStore) {
			l := s.blob(mediaTypeModel, "GGUF")
			l.Size = -1
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, l)
		}, "negative size"},
		{"blob is a directory", func(s *fakeStore) {
			h := strings.Repeat("ab", 32)
			os.Mkdir(filepath.Join(s.root, "blobs", "sha256-"+h), 0o755)
			s.manifest("registry.ollama.ai/library/m/latest", layer{}, layer{MediaType: mediaTypeModel, Digest: "sha256:" + h})
		}, "not a regular file"},
		{"manifest is a directory", func(s *fakeStore) {
			os.MkdirAll(filepath.Join(s.root, "manifests", "registry.ollama.ai", "library", "m", "latest"), 0o755)
		}, "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.build(s)
			m, err := Resolve(s.root, "m")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve = %+v, %v; want an error containing %q", m, err, tc.want)
			}
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidName) {
				t.Errorf("a broken store reads as a missing model or a bad name: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "resolve model m:latest in "+s.root+": ") {
				t.Errorf("error %q does not name the model and the store", err)
			}
		})
	}
}

// TestResolveKeepsBlobsInsideTheStore plants files outside the store that a
// crafted digest would reach if it were used as a path.
func TestResolveKeepsBlobsInsideTheStore(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	rel, err := filepath.Rel(filepath.Join(s.root, "blobs"), secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, digest := range []string{
		"sha256:" + rel,
		"sha256-" + rel,
		"sha256:../../" + strings.Repeat("a", 58),
		"sha256:" + strings.Repeat("a", 63) + "/",
		"sha256:" + strings.Repeat("g", 64),
		"md5:" + strings.Repeat("a", 32),
		rel,
		secret,
		"",
	} {
		s.manifest("registry.ollama.ai/library/m/latest", layer{}, layer{MediaType: mediaTypeModel, Digest: digest, Size: 6})
		m, err := Resolve(s.root, "m")
		if err == nil {
			t.Errorf("digest %q resolved to %s", digest, m.ModelPath)
			continue
		}
		if !strings.Contains(err.Error(), "invalid blob digest") {
			t.Errorf("digest %q: error %q does not name the digest as invalid", digest, err)
		}
	}
}

func TestList(t *testing.T) {
	s := newStore(t)
	cfg := s.config("qwen2", "494M", "Q8_0")
	s.manifest("registry.ollama.ai/library/qwen2.5/0.5b", cfg, s.blob(mediaTypeModel, "qwen"))
	s.manifest("registry.ollama.ai/library/llama3.2/latest", layer{}, s.blob(mediaTypeModel, "llama"))
	s.manifest("registry.ollama.ai/alice/tiny/q4", layer{}, s.blob(mediaTypeModel, "tiny"))
	s.manifest("example.com:5000/team/m/v1", layer{}, s.blob(mediaTypeModel, "private"))
	s.raw("registry.ollama.ai/library/broken/latest", "{")
	s.raw("registry.ollama.ai/library/.hidden/latest", "{")
	s.raw("registry.ollama.ai/library/bad name/latest", "{}")
	s.raw("registry.ollama.ai/library/stray", "not a manifest, three levels deep")

	models, err := List(s.root)
	var names []string
	for _, m := range models {
		names = append(names, m.Name)
	}
	want := []string{"alice/tiny:q4", "example.com:5000/team/m:v1", "llama3.2:latest", "qwen2.5:0.5b"}
	if !slices.Equal(names, want) {
		t.Errorf("List names = %q, want %q", names, want)
	}
	if err == nil || !strings.Contains(err.Error(), "broken:latest") || !strings.Contains(err.Error(), "bad name") {
		t.Errorf("List error = %v, want it to describe the broken manifest and the bad name", err)
	}
	if strings.Contains(fmt.Sprint(err), ".hidden") || strings.Contains(fmt.Sprint(err), "stray") {
		t.Errorf("List error = %v; hidden entries and stray files are skipped", err)
	}
	for _, m := range models {
		if m.Name == "qwen2.5:0.5b" && m.Details.Family != "qwen2" {
			t.Errorf("qwen2.5 details %+v", m.Details)
		}
	}

	if models, err := List(filepath.Join(s.root, "absent")); err != nil || len(models) != 0 {
		t.Errorf("List of a missing store = %v, %v; want nothing and no error", models, err)
	}
	if _, err := List(""); err == nil {
		t.Error("List with no store directory succeeded")
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("OLLAMA_MODELS", ` "/srv/ollama/models" `)
	if got := DefaultDir(); got != "/srv/ollama/models" {
		t.Errorf("DefaultDir with OLLAMA_MODELS set = %q", got)
	}
	home := t.TempDir()
	t.Setenv("OLLAMA_MODELS", "")
	t.Setenv("HOME", home)
	if got, want := DefaultDir(), filepath.Join(home, ".ollama", "models"); got != want {
		t.Errorf("DefaultDir = %q, want %q", got, want)
	}
}

func FuzzResolve(f *testing.F) {
	for _, seed := range []string{"llama3.2", "llama3.2:1b", "a/b/c:d", "../x", "h:1/n/m:t", "x@sha256:00", ""} {
		f.Add(seed)
	}
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, name string) {
		m, err := Resolve(root, name)
		if err == nil {
			t.Fatalf("Resolve(%q) in an empty store = %+v", name, m)
		}
	})
}

// TestResolveFollowsTheStoresOwnLinks covers a store whose blobs live on
// another disk behind a symbolic link, a common setup.
func TestResolveFollowsTheStoresOwnLinks(t *testing.T) {
	s := newStore(t)
	l := s.blob(mediaTypeModel, "GGUF on another disk")
	elsewhere := filepath.Join(t.TempDir(), "blobs")
	if err := os.Rename(filepath.Join(s.root, "blobs"), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(s.root, "blobs")); err != nil {
		t.Skipf("symbolic links unavailable: %v", err)
	}
	s.manifest("registry.ollama.ai/library/m/latest", layer{}, l)
	m, err := Resolve(s.root, "m")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(m.ModelPath); err != nil || string(b) != "GGUF on another disk" {
		t.Errorf("ModelPath %s reads %q, %v", m.ModelPath, b, err)
	}
}

package ollama

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/types/model"
)

// ErrNotFound is matched (with errors.Is) by the error [Resolve] returns
// when the store has no manifest for the name.
var ErrNotFound = errors.New("model not found")

// ErrInvalidName is matched by the error [Resolve] returns for a name that
// is not a valid Ollama model name.
var ErrInvalidName = errors.New("invalid model name")

// Model is a model found in an Ollama store. Paths are absolute.
type Model struct {
	// Name is the name as `ollama list` shows it: the registry and the
	// namespace are left out when they are the defaults, the tag never is
	// ("llama3.2:1b", "alice/tiny:q4", "example.com:5000/team/m:v1").
	Name string

	// FullName is the fully qualified name,
	// "registry.ollama.ai/library/llama3.2:1b".
	FullName string

	// ModelPath is the GGUF blob.
	ModelPath string

	// ModelDigest is the digest of the GGUF layer as the manifest gives it,
	// "sha256:<hex>".
	ModelDigest string

	// Template is the Go text/template chat template of the template layer;
	// empty when the model has none.
	Template string

	// System is the default system prompt; empty when the model has none.
	System string

	// Params is the JSON object of default options (temperature, stop, ...);
	// nil when the model has none.
	Params []byte

	// Licenses are the texts of the license layers.
	Licenses []string

	// ProjectorPaths are the blobs of multimodal projector layers.
	ProjectorPaths []string

	// AdapterPaths are the blobs of adapter (LoRA) layers.
	AdapterPaths []string

	// Details are read from the manifest's config blob; they are empty when
	// the manifest has no config.
	Details Details

	// Digest is the hex sha256 of the manifest file, the digest Ollama's
	// /api/tags reports.
	Digest string

	// Size is the total size in bytes of the config and all layers, as
	// Ollama's /api/tags reports it.
	Size int64

	// ModifiedAt is the modification time of the manifest file.
	ModifiedAt time.Time
}

// Details describe a model as Ollama's config blob records it.
type Details struct {
	Format            string   // "gguf"
	Family            string   // "llama", "qwen2", ...
	Families          []string // all families, for models with several
	ParameterSize     string   // "3.2B"
	QuantizationLevel string   // "Q4_K_M"
}

// DefaultDir returns the store Ollama itself uses: $OLLAMA_MODELS when set
// (surrounding spaces and quotes removed, as Ollama does), else
// ~/.ollama/models. It returns "" when neither is known. A system-wide
// Linux install keeps its store under the ollama user's home instead, often
// /usr/share/ollama/.ollama/models.
func DefaultDir() string {
	if d := strings.Trim(strings.TrimSpace(os.Getenv("OLLAMA_MODELS")), `"'`); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".ollama", "models")
}

// Resolve finds the model called name in the store at storeDir and checks
// that its manifest is well formed and its blobs are present with the sizes
// the manifest gives. name is anything `ollama run` accepts; see the
// package documentation. A name that differs from the stored one only in
// case resolves to the stored one, as it does on case-insensitive file
// systems.
//
// The error matches [ErrInvalidName] for a malformed name and
// [ErrNotFound] when the store has no such model; other errors describe a
// store that cannot be read or a manifest or blob that is broken.
func Resolve(storeDir, name string) (*Model, error) {
	root, err := storeRoot(storeDir)
	if err != nil {
		return nil, err
	}
	n := model.ParseName(strings.TrimSpace(name))
	if !n.IsValid() {
		return nil, fmt.Errorf("%w %q: want [registry/][namespace/]model[:tag], e.g. llama3.2:1b", ErrInvalidName, name)
	}
	manifests := filepath.Join(root, "manifests")
	path := filepath.Join(manifests, n.Host, n.Namespace, n.Model, n.Tag)
	if !within(manifests, path) {
		return nil, fmt.Errorf("%w %q: it names a path outside the store", ErrInvalidName, name)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		folded, ok := findFolded(manifests, []string{n.Host, n.Namespace, n.Model, n.Tag})
		if !ok {
			return nil, &notFoundError{name: n.DisplayShortest(), dir: root, err: err}
		}
		n = model.Name{Host: folded[0], Namespace: folded[1], Model: folded[2], Tag: folded[3]}
		path = filepath.Join(append([]string{manifests}, folded...)...)
	}
	m, err := load(root, n, path)
	if err != nil {
		return nil, fmt.Errorf("resolve model %s in %s: %w", n.DisplayShortest(), root, err)
	}
	return m, nil
}

// List returns every model in the store at storeDir, sorted by Name. A
// store without a manifests directory holds no models and is not an error.
// Manifests that cannot be used are left out of the list and described in
// the returned error, which joins one error per manifest; the models that
// were read are returned either way.
func List(storeDir string) ([]Model, error) {
	root, err := storeRoot(storeDir)
	if err != nil {
		return nil, err
	}
	manifests := filepath.Join(root, "manifests")
	if _, err := os.Stat(manifests); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var (
		models []Model
		errs   []error
	)
	visit := func(parts []string) {
		rel := filepath.Join(parts...)
		n := model.Name{Host: parts[0], Namespace: parts[1], Model: parts[2], Tag: parts[3]}
		if !n.IsValid() {
			errs = append(errs, fmt.Errorf("list models in %s: manifest %s: not a valid model name", root, rel))
			return
		}
		m, err := load(root, n, filepath.Join(manifests, rel))
		if err != nil {
			errs = append(errs, fmt.Errorf("list models in %s: model %s: %w", root, n.DisplayShortest(), err))
			return
		}
		models = append(models, *m)
	}
	fail := func(err error) { errs = append(errs, fmt.Errorf("list models in %s: %w", root, err)) }
	walkManifests(manifests, nil, visit, fail)
	slices.SortFunc(models, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
	return models, errors.Join(errs...)
}

// notFoundError is the error of a name with no manifest in the store.
type notFoundError struct {
	name, dir string
	err       error
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("model %s not found in %s: %v", e.name, e.dir, e.err)
}

func (e *notFoundError) Unwrap() error { return e.err }

func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

// storeRoot returns storeDir as an absolute, clean path.
func storeRoot(storeDir string) (string, error) {
	if storeDir == "" {
		return "", errors.New("no Ollama model store directory given (set OLLAMA_MODELS)")
	}
	root, err := filepath.Abs(storeDir)
	if err != nil {
		return "", fmt.Errorf("Ollama model store %s: %w", storeDir, err)
	}
	return root, nil
}

// within reports whether path, once cleaned, lies inside dir.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// findFolded looks for the manifest whose path parts under dir equal parts
// up to case, and returns the stored parts.
func findFolded(dir string, parts []string) ([]string, bool) {
	found := make([]string, 0, len(parts))
	for _, want := range parts {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, false
		}
		i := slices.IndexFunc(entries, func(e fs.DirEntry) bool { return strings.EqualFold(e.Name(), want) })
		if i < 0 {
			return nil, false
		}
		found = append(found, entries[i].Name())
		dir = filepath.Join(dir, entries[i].Name())
	}
	if fi, err := os.Stat(dir); err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	return found, true
}

// walkManifests calls visit with the four path parts (registry, namespace,
// model, tag) of every regular file four levels below dir, following
// symbolic links and skipping names that begin with a dot. It reports each
// directory or entry it cannot read to fail and goes on with the rest.
func walkManifests(dir string, parts []string, visit func(parts []string), fail func(error)) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		fail(err)
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil {
			fail(err)
			continue
		}
		next := append(slices.Clip(parts), e.Name())
		switch {
		case len(next) < 4 && fi.IsDir():
			walkManifests(path, next, visit, fail)
		case len(next) == 4 && fi.Mode().IsRegular():
			visit(next)
		}
	}
}

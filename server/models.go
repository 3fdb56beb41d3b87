package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ollama/ollama/api"

	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/ollama"
	"github.com/carryon/carryon/models/tokenizer"
	"github.com/carryon/carryon/server/chat"
	"github.com/carryon/carryon/server/config"
	"github.com/carryon/carryon/server/scheduler"
)

// Model is a base model the server serves: the loaded weights, the
// tokenizer, the chat template and the scheduler that batches its
// requests. It is immutable once loaded.
type Model struct {
	// Name is the name clients use in the "model" field.
	Name string
	// Path is the GGUF file.
	Path string
	// Origin says where the model came from: "config", "data-dir" or
	// "ollama".
	Origin string
	// Size is the file size in bytes; ModTime its modification time.
	Size    int64
	ModTime time.Time
	// Digest identifies the file: the Ollama layer digest for Ollama
	// models, otherwise a sha256 over the path, size and modification time
	// (not over the contents, which may be gigabytes).
	Digest string
	// Details describe the model as Ollama's API does.
	Details api.ModelDetails
	// Loaded is when the server loaded the model.
	Loaded time.Time

	// Template renders chat conversations; TemplateSource is the GGUF's
	// tokenizer.chat_template ("" when it has none).
	Template       *chat.Template
	TemplateSource string

	model   *llm.Model
	tok     *tokenizer.Tokenizer
	sched   *scheduler.Scheduler
	pooling scheduler.Pooling
	// seqContext is the most positions one sequence may hold.
	seqContext int
	// eog lists the end-of-generation tokens of the vocabulary.
	eog []int32
	// meta is the metadata /api/show reports (large arrays left out).
	meta map[string]any
	// head is the carry-on head id when this value stands for a head
	// (Name is then the head id; the rest is its base model's).
	head string
	// headOf is the base model's name for a head's value.
	headOf string
}

// headBase returns the base model's name of a head.
func (m *Model) headBase() (string, bool) { return m.headOf, m.headOf != "" }

// ContextLength returns the most tokens one sequence (prompt and
// generated tokens) may hold.
func (m *Model) ContextLength() int { return m.seqContext }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// detokenize turns a prompt's ids back into its text. Leading control
// tokens (BOS) are dropped first, so that a tokenized text comes back
// unchanged: after BOS, the space the tokenizer put before the first word
// would otherwise survive.
func (m *Model) detokenize(ids []int32) string {
	for len(ids) > 0 && m.tok.IsControl(ids[0]) {
		ids = ids[1:]
	}
	return m.tok.Decode(ids)
}

// modelSource is a model to load: where from and under which name.
type modelSource struct {
	name     string
	path     string
	origin   string
	explicit bool // named in the configuration: failing to load it is fatal
	ollama   *ollama.Model
}

// findModels lists the models the configuration asks for, then the GGUF
// files of the data directory's models/ folder whose names are still free.
func findModels(cfg *config.Config, log hclog.Logger) ([]modelSource, error) {
	var out []modelSource
	taken := map[string]bool{}
	for _, entry := range cfg.Models {
		spec, err := config.ParseModel(entry)
		if err != nil {
			return nil, err
		}
		src, err := resolveModel(spec, cfg.OllamaDir)
		if err != nil {
			return nil, err
		}
		if taken[src.name] {
			return nil, fmt.Errorf("model %q: the name %q is already taken by another model; give it another with NAME=%s", entry, src.name, spec.Source)
		}
		taken[src.name] = true
		out = append(out, src)
	}
	if cfg.DataDir != "" {
		dir := filepath.Join(cfg.DataDir, "models")
		files, err := filepath.Glob(filepath.Join(dir, "*.gguf"))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		sort.Strings(files)
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			if !config.ValidName(name) {
				log.Warn("skipping a model file whose name cannot be a model name", "path", f)
				continue
			}
			if taken[name] {
				log.Warn("skipping a data-dir model whose name is already taken", "name", name, "path", f)
				continue
			}
			taken[name] = true
			out = append(out, modelSource{name: name, path: f, origin: "data-dir"})
		}
	}
	return out, nil
}

// resolveModel turns a configured entry into a file: an existing path, or
// a model of the Ollama store.
func resolveModel(spec config.ModelSpec, ollamaDir string) (modelSource, error) {
	if st, err := os.Stat(spec.Source); err == nil {
		if st.IsDir() {
			return modelSource{}, fmt.Errorf("model %s is a directory, not a GGUF file", spec.Source)
		}
		name := spec.Name
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(spec.Source), filepath.Ext(spec.Source))
			if !config.ValidName(name) {
				return modelSource{}, fmt.Errorf("model %s: its file name is not a valid model name; give one with NAME=%s", spec.Source, spec.Source)
			}
		}
		return modelSource{name: name, path: spec.Source, origin: "config", explicit: true}, nil
	}
	if ollamaDir == "" {
		return modelSource{}, fmt.Errorf("model %q is not a file, and there is no Ollama store to look it up in", spec.Source)
	}
	om, err := ollama.Resolve(ollamaDir, spec.Source)
	if err != nil {
		if errors.Is(err, ollama.ErrNotFound) || errors.Is(err, ollama.ErrInvalidName) {
			return modelSource{}, fmt.Errorf("model %q is neither a file nor a model in the Ollama store %s: %w", spec.Source, ollamaDir, err)
		}
		return modelSource{}, fmt.Errorf("model %q: %w", spec.Source, err)
	}
	name := spec.Name
	if name == "" {
		name = om.Name
	}
	return modelSource{name: name, path: om.ModelPath, origin: "ollama", explicit: true, ollama: om}, nil
}

// loadModel loads a model file and starts its scheduler.
func loadModel(src modelSource, cfg *config.Config, log hclog.Logger) (*Model, error) {
	st, err := os.Stat(src.path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", src.name, err)
	}
	details, err := describeFile(src.path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", src.name, err)
	}
	lm, err := llm.Load(src.path, llm.Options{Threads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", src.name, err)
	}
	tok, err := tokenizer.FromGGUF(lm.Meta())
	if err != nil {
		lm.Close()
		return nil, fmt.Errorf("load model %s: tokenizer: %w", src.name, err)
	}
	sched, err := scheduler.New(lm, tok, scheduler.Options{
		MaxSequences:   cfg.MaxSequences,
		MaxBatchTokens: cfg.MaxBatchTokens,
		PrefillChunk:   cfg.PrefillChunk,
		MaxQueue:       cfg.MaxQueue,
		KVTokens:       cfg.KVTokens,
		KVF32:          cfg.KVType == "f32",
		NoPrefixCache:  !cfg.PrefixCache,
		Logger:         log.Named(src.name),
	})
	if err != nil {
		lm.Close()
		return nil, fmt.Errorf("load model %s: scheduler: %w", src.name, err)
	}
	m := &Model{
		Name:       src.name,
		Path:       src.path,
		Origin:     src.origin,
		Size:       st.Size(),
		ModTime:    st.ModTime(),
		Details:    details,
		Loaded:     time.Now(),
		model:      lm,
		tok:        tok,
		sched:      sched,
		seqContext: sched.SeqContext(),
		meta:       showMetadata(lm.Meta()),
	}
	m.Details.Family = lm.Config().Arch
	m.Details.Families = []string{m.Details.Family}
	if src.ollama != nil {
		m.Digest = strings.TrimPrefix(src.ollama.ModelDigest, "sha256:")
	} else {
		h := sha256.Sum256([]byte(src.path + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + st.ModTime().UTC().Format(time.RFC3339Nano)))
		m.Digest = hex.EncodeToString(h[:])
	}
	for id := range int32(tok.VocabSize()) {
		if tok.IsEOG(id) {
			m.eog = append(m.eog, id)
		}
	}
	m.TemplateSource, _ = lm.Meta().String("tokenizer.chat_template")
	var known bool
	m.Template, known = chat.Detect(m.TemplateSource)
	if m.TemplateSource != "" && !known {
		log.Warn("the model's chat template is not one of the known families; chat requests use the plain format", "model", m.Name)
	}
	m.pooling = scheduler.PoolMean
	if p, ok := lm.Meta().Int(lm.Config().Arch + ".pooling_type"); ok && p == 3 {
		m.pooling = scheduler.PoolLast
	}
	return m, nil
}

// close stops the scheduler (it must be closed already) and unmaps the
// model.
func (m *Model) close() error {
	return m.model.Close()
}

// describeFile reads the parameter count and dominant weight type of a
// GGUF file for Ollama's model details.
func describeFile(path string) (api.ModelDetails, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return api.ModelDetails{}, err
	}
	defer f.Close()
	var params int64
	bytesByType := map[string]int64{}
	for _, t := range f.Tensors {
		params += t.Elements()
		if len(t.Shape) >= 2 {
			bytesByType[t.Type.String()] += t.Size
		}
	}
	quant, most := "", int64(-1)
	for name, b := range bytesByType {
		if b > most || b == most && name < quant {
			quant, most = name, b
		}
	}
	return api.ModelDetails{
		Format:            "gguf",
		ParameterSize:     sizeLabel(params),
		QuantizationLevel: quant,
	}, nil
}

// sizeLabel writes a parameter count as Ollama does: "260K", "360M", "1.2B".
func sizeLabel(n int64) string {
	f := float64(n)
	switch {
	case f >= 1e9:
		return trimFloat(f/1e9) + "B"
	case f >= 1e6:
		return trimFloat(f/1e6) + "M"
	case f >= 1e3:
		return trimFloat(f/1e3) + "K"
	}
	return strconv.FormatInt(n, 10)
}

func trimFloat(f float64) string {
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// showMetadata copies the metadata /api/show reports. Arrays longer than
// 16 elements (the vocabulary, scores, merges) are left out, as Ollama
// leaves them out unless asked to be verbose.
func showMetadata(md *gguf.Metadata) map[string]any {
	out := make(map[string]any, md.Len())
	for _, k := range md.Keys() {
		v, _ := md.Value(k)
		if k == "tokenizer.chat_template" {
			continue
		}
		if n, ok := arrayLen(v); ok && n > 16 {
			out[k] = nil
			continue
		}
		out[k] = v
	}
	return out
}

func arrayLen(v any) (int, bool) {
	switch a := v.(type) {
	case []any:
		return len(a), true
	case []string:
		return len(a), true
	case []int32:
		return len(a), true
	case []float32:
		return len(a), true
	case []uint32:
		return len(a), true
	case []int64:
		return len(a), true
	case []uint8:
		return len(a), true
	case []int8:
		return len(a), true
	case []uint16:
		return len(a), true
	case []int16:
		return len(a), true
	case []uint64:
		return len(a), true
	case []float64:
		return len(a), true
	case []bool:
		return len(a), true
	}
	return 0, false
}

package gtt

import (
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/carryon/carryon/models/safetensors"
)

// Checkpoint metadata keys.
const (
	metaFormat = "format"
	metaConfig = "gtt_config"
	formatName = "carryon-gtt-1"
)

// WeightsFile is the file name Load looks for inside a model directory.
const WeightsFile = "weights.safetensors"

// Save writes the model to path as safetensors, with its shape and the
// given notes (free-form strings, such as how it was trained) in the
// header's metadata. dtype is F32, F16 or BF16.
func (m *Model) Save(path string, dtype safetensors.DType, notes map[string]string) error {
	w, err := m.writer(dtype, notes)
	if err != nil {
		return fmt.Errorf("save gtt model %s: %w", path, err)
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("save gtt model %s: %w", path, err)
	}
	return nil
}

func (m *Model) writer(dtype safetensors.DType, notes map[string]string) (*safetensors.Writer, error) {
	w := safetensors.NewWriter()
	w.Metadata = maps.Clone(notes)
	if w.Metadata == nil {
		w.Metadata = map[string]string{}
	}
	w.Metadata[metaFormat] = formatName
	cfg, err := json.Marshal(m.cfg)
	if err != nil {
		return nil, err
	}
	w.Metadata[metaConfig] = string(cfg)
	for _, s := range m.specs {
		if err := w.AddFloat32(s.name, dtype, s.shape, m.params[s.off:s.off+s.size()]); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", s.name, err)
		}
	}
	return w, nil
}

// Load reads a model saved by Save: path is the safetensors file, or a
// directory holding WeightsFile.
func Load(path string) (*Model, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, WeightsFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load gtt model: %w", err)
	}
	m, _, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load gtt model %s: %w", path, err)
	}
	return m, nil
}

// Parse decodes a model from the bytes of a safetensors file and returns it
// with the file's metadata. Every tensor of the model's shape must be
// present with its exact shape, and no other tensor may be.
func Parse(data []byte) (*Model, map[string]string, error) {
	f, err := safetensors.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	if f.Metadata[metaFormat] != formatName {
		return nil, nil, fmt.Errorf("not a gtt checkpoint (metadata %q = %q, want %q)", metaFormat, f.Metadata[metaFormat], formatName)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(f.Metadata[metaConfig]), &cfg); err != nil {
		return nil, nil, fmt.Errorf("gtt config in metadata: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	m := newEmpty(cfg)
	if len(f.Tensors) != len(m.specs) {
		return nil, nil, fmt.Errorf("checkpoint holds %d tensors, a model of shape %s has %d", len(f.Tensors), cfg, len(m.specs))
	}
	for _, s := range m.specs {
		t, ok := f.Tensor(s.name)
		if !ok {
			return nil, nil, fmt.Errorf("tensor %s is missing", s.name)
		}
		if !slices.Equal(t.Shape, s.shape) {
			return nil, nil, fmt.Errorf("tensor %s has shape %v, want %v", s.name, t.Shape, s.shape)
		}
		v, err := t.Float32s()
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %s: %w", s.name, err)
		}
		copy(m.params[s.off:s.off+s.size()], v)
	}
	return m, f.Metadata, nil
}

//go:embed checkpoint/*.safetensors
var checkpoints embed.FS

// DefaultCheckpoint is the name of the embedded default model.
const DefaultCheckpoint = "gtt-small-cpu.safetensors"

// Default returns the embedded pretrained model (see docs/forecasting.md
// for how it was trained) and its metadata.
func Default() (*Model, map[string]string, error) {
	data, err := checkpoints.ReadFile("checkpoint/" + DefaultCheckpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("load embedded gtt checkpoint: %w", err)
	}
	m, meta, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("load embedded gtt checkpoint %s: %w", DefaultCheckpoint, err)
	}
	return m, meta, nil
}

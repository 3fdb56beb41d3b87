package llm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/carryon/carryon/models/compute"
	_ "github.com/carryon/carryon/models/compute/cpu" // the default backend
	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
)

// Options configures Load.
type Options struct {
	// Threads is the number of compute threads; 0 uses every CPU.
	Threads int
	// Backend names the compute backend; "" means "cpu".
	Backend string
}

// Model is a loaded base model. Its methods may be called from several
// goroutines, but Forward and Logits run one at a time.
type Model struct {
	cfg     Config
	arch    Architecture
	file    *gguf.File
	backend compute.Backend

	embd       compute.Weight
	output     compute.Weight
	outputNorm []float32
	layers     []layer

	mu sync.Mutex // serializes the use of backend and scratch
	s  scratch
}

// layer holds the weights of one transformer block.
type layer struct {
	attnNorm       []float32
	wq, wk, wv, wo compute.Weight
	bq, bk, bv, bo []float32
	qNorm, kNorm   []float32
	ffnNorm        []float32
	gate, up, down compute.Weight
}

// Load maps the GGUF file at path and prepares its model for inference.
// Weights stay in their stored types and are read from the mapping. It
// fails with a clear error for an unknown architecture, missing metadata or
// tensors, and tensors of the wrong shape or an unsupported type.
func Load(path string, opts Options) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := newModel(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// FromFile prepares the model held in an opened GGUF file. The Model takes
// ownership of f and closes it in Close.
func FromFile(f *gguf.File, opts Options) (*Model, error) {
	m, err := newModel(f, opts)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return m, nil
}

func newModel(f *gguf.File, opts Options) (*Model, error) {
	name := f.Arch()
	if name == "" {
		return nil, errors.New("general.architecture is missing")
	}
	arch, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported (supported: %v)", name, Architectures())
	}
	cfg, err := parseConfig(name, &f.Meta)
	if err != nil {
		return nil, err
	}
	cfg.RoPE.NeoX = arch.NeoX
	bname := opts.Backend
	if bname == "" {
		bname = "cpu"
	}
	be, err := compute.New(bname, compute.Options{Threads: opts.Threads})
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, arch: arch, file: f, backend: be}
	if err := m.loadTensors(); err != nil {
		be.Close()
		return nil, err
	}
	return m, nil
}

func (m *Model) loadTensors() error {
	f, c := m.file, &m.cfg
	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		return err
	}
	if len(emb.Shape) != 2 || emb.Shape[0] != c.Dim {
		return fmt.Errorf("tensor token_embd.weight has shape %v, want [%d vocab]", emb.Shape, c.Dim)
	}
	c.Vocab = emb.Shape[1]
	if toks, ok := f.Meta.Strings("tokenizer.ggml.tokens"); ok && len(toks) != c.Vocab {
		return fmt.Errorf("the vocabulary has %d tokens but token_embd.weight has %d rows", len(toks), c.Vocab)
	}
	if m.embd, err = m.matrix("token_embd.weight", c.Dim, c.Vocab); err != nil {
		return err
	}
	if f.HasTensor("output.weight") {
		if m.output, err = m.matrix("output.weight", c.Dim, c.Vocab); err != nil {
			return err
		}
	} else {
		m.output = m.embd // tied embeddings
	}
	if m.outputNorm, err = m.vector("output_norm.weight", c.Dim, Required); err != nil {
		return err
	}
	if f.HasTensor("rope_freqs.weight") {
		if c.RoPE.FreqFactors, err = m.vector("rope_freqs.weight", c.RoPE.Dims/2, Required); err != nil {
			return err
		}
	}
	qDim, kvDim, vDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.KVHeads*c.ValueDim
	if c.Layers > len(f.Tensors) {
		return fmt.Errorf("block count %d exceeds the file's %d tensors", c.Layers, len(f.Tensors))
	}
	m.layers = make([]layer, c.Layers)
	for i := range m.layers {
		L := &m.layers[i]
		n := func(s string) string { return fmt.Sprintf("blk.%d.%s", i, s) }
		steps := []func() error{
			func() (err error) { L.attnNorm, err = m.vector(n("attn_norm.weight"), c.Dim, Required); return },
			func() (err error) { L.wq, err = m.matrix(n("attn_q.weight"), c.Dim, qDim); return },
			func() (err error) { L.wk, err = m.matrix(n("attn_k.weight"), c.Dim, kvDim); return },
			func() (err error) { L.wv, err = m.matrix(n("attn_v.weight"), c.Dim, vDim); return },
			func() (err error) { L.wo, err = m.matrix(n("attn_output.weight"), c.Heads*c.ValueDim, c.Dim); return },
			func() (err error) { L.bq, err = m.vector(n("attn_q.bias"), qDim, m.arch.QKVBias); return },
			func() (err error) { L.bk, err = m.vector(n("attn_k.bias"), kvDim, m.arch.QKVBias); return },
			func() (err error) { L.bv, err = m.vector(n("attn_v.bias"), vDim, m.arch.QKVBias); return },
			func() (err error) { L.bo, err = m.vector(n("attn_output.bias"), c.Dim, m.arch.OutputBias); return },
			func() (err error) { L.ffnNorm, err = m.vector(n("ffn_norm.weight"), c.Dim, Required); return },
			func() (err error) { L.gate, err = m.matrix(n("ffn_gate.weight"), c.Dim, c.FFN); return },
			func() (err error) { L.up, err = m.matrix(n("ffn_up.weight"), c.Dim, c.FFN); return },
			func() (err error) { L.down, err = m.matrix(n("ffn_down.weight"), c.FFN, c.Dim); return },
		}
		if m.arch.QKNorm {
			steps = append(steps,
				func() (err error) { L.qNorm, err = m.vector(n("attn_q_norm.weight"), c.HeadDim, Required); return },
				func() (err error) { L.kNorm, err = m.vector(n("attn_k_norm.weight"), c.HeadDim, Required); return },
			)
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
	}
	return nil
}

// matrix loads the weight name, which must have shape [cols, rows].
func (m *Model) matrix(name string, cols, rows int) (compute.Weight, error) {
	t, err := m.file.Tensor(name)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) != 2 || t.Shape[0] != cols || t.Shape[1] != rows {
		return nil, fmt.Errorf("tensor %s has shape %v, want [%d %d]", name, t.Shape, cols, rows)
	}
	return m.backend.LoadWeight(t)
}

// vector loads the one-dimensional tensor name of n elements as float32s.
// An absent tensor gives nil when it is not required.
func (m *Model) vector(name string, n int, need Need) ([]float32, error) {
	if need == Absent || (need == Optional && !m.file.HasTensor(name)) {
		return nil, nil
	}
	t, err := m.file.Tensor(name)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) != 1 || t.Shape[0] != n {
		return nil, fmt.Errorf("tensor %s has shape %v, want [%d]", name, t.Shape, n)
	}
	v := make([]float32, n)
	if err := ggml.Dequantize(t.Type, t.Data, v); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return v, nil
}

// Config returns the model's hyperparameters.
func (m *Model) Config() Config { return m.cfg }

// Meta returns the file's metadata (for the tokenizer, for instance). It
// is valid until Close.
func (m *Model) Meta() *gguf.Metadata { return &m.file.Meta }

// BackendName returns the name of the compute backend in use.
func (m *Model) BackendName() string { return m.backend.Name() }

// Close releases the backend and unmaps the file. The model must not be
// used afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.backend.Close()
	if e := m.file.Close(); err == nil {
		err = e
	}
	return err
}

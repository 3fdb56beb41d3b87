package llm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/kernels"
)

// LMHead is the LM head of a base model, W of shape [vocab, dim], and
// nothing else of it: what training a head on cached base states needs
// for its loss. The matrix is read in place from the mapped GGUF file: it
// is neither copied nor repacked, so it costs the pages of output.weight
// (or token_embd.weight when the embeddings are tied) that products touch,
// and no heap. Its methods may be called from several goroutines;
// CrossEntropy calls run one at a time.
type LMHead struct {
	file       *gguf.File
	dim, vocab int
	typ        ggml.Type
	data       []byte
	rowBytes   int
	// mat is the kernels' view of the matrix, nil for the types the
	// kernels do not multiply; those are converted a row at a time.
	mat  *kernels.Matrix
	pool *kernels.Pool

	mu      sync.Mutex // serializes the use of pool, act and scratch
	act     kernels.Activations
	scratch []float32
}

// LoadLMHead maps the GGUF file at path and prepares its LM head for
// CrossEntropy: output.weight, or token_embd.weight when the file has no
// output.weight. It checks the architecture and the model width as Load
// does, and that the matrix has shape [dim, vocab] and a type that can be
// converted to float32. opts.Threads sets the threads of the logit
// products (0 uses every CPU); opts.Backend is ignored, as the head is
// always computed on the CPU.
func LoadLMHead(path string, opts Options) (*LMHead, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load lm head: %w", err)
	}
	h, err := newLMHead(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load lm head %s: %w", path, err)
	}
	return h, nil
}

func newLMHead(f *gguf.File, opts Options) (*LMHead, error) {
	if opts.Threads < 0 {
		return nil, fmt.Errorf("%d threads", opts.Threads)
	}
	name := f.Arch()
	if name == "" {
		return nil, errors.New("general.architecture is missing")
	}
	if _, ok := Lookup(name); !ok {
		return nil, fmt.Errorf("architecture %q is not supported (supported: %v)", name, Architectures())
	}
	cfg, err := parseConfig(name, &f.Meta)
	if err != nil {
		return nil, err
	}
	tensor := "output.weight"
	if !f.HasTensor(tensor) {
		tensor = "token_embd.weight" // tied embeddings
	}
	t, err := f.Tensor(tensor)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) != 2 || t.Shape[0] != cfg.Dim || t.Shape[1] <= 0 {
		return nil, fmt.Errorf("tensor %s has shape %v, want [%d vocab]", tensor, t.Shape, cfg.Dim)
	}
	vocab := t.Shape[1]
	if toks, ok := f.Meta.Strings("tokenizer.ggml.tokens"); ok && len(toks) != vocab {
		return nil, fmt.Errorf("the vocabulary has %d tokens but %s has %d rows", len(toks), tensor, vocab)
	}
	if !ggml.CanDequantize(t.Type) {
		return nil, fmt.Errorf("tensor %s: type %s cannot be converted to float32", tensor, t.Type)
	}
	rb, err := t.Type.RowSize(cfg.Dim)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", tensor, err)
	}
	if len(t.Data) != rb*vocab {
		return nil, fmt.Errorf("tensor %s: %d bytes of data, %s %v needs %d", tensor, len(t.Data), t.Type, t.Shape, rb*vocab)
	}
	h := &LMHead{file: f, dim: cfg.Dim, vocab: vocab, typ: t.Type, data: t.Data, rowBytes: rb}
	if kernels.Supports(t.Type) {
		if h.mat, err = kernels.NewMatrix(t.Type, vocab, cfg.Dim, t.Data); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", tensor, err)
		}
	}
	threads := opts.Threads
	if threads == 0 {
		threads = kernels.DefaultThreads()
	}
	h.pool = kernels.NewPool(threads)
	return h, nil
}

// Dim returns the width of the hidden rows the head reads.
func (h *LMHead) Dim() int { return h.dim }

// Vocab returns the number of rows of the head, one per token.
func (h *LMHead) Vocab() int { return h.vocab }

// Type returns the storage type of the head's matrix.
func (h *LMHead) Type() ggml.Type { return h.typ }

// File returns the mapped GGUF file, for its metadata (the tokenizer, the
// base's identity). It is valid until Close.
func (h *LMHead) File() *gguf.File { return h.file }

// Meta returns the file's metadata. It is valid until Close.
func (h *LMHead) Meta() *gguf.Metadata { return &h.file.Meta }

// Close stops the threads and unmaps the file. The head must not be used
// afterwards.
func (h *LMHead) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pool.Close()
	return h.file.Close()
}

// CrossEntropy scores hidden rows of Dim floats against their next tokens
// through the LM head, with the contract of Model.CrossEntropy (the same
// code computes both): it returns the sum of the losses of the rows whose
// target is ≥ 0 and their number, and when grad is not nil writes scale
// times each row's gradient with respect to its hidden row. Results equal
// Model.CrossEntropy's on the same file up to the order of float32
// additions (the model's CPU backend may multiply a repacked copy).
func (h *LMHead) CrossEntropy(grad, hidden []float32, targets []int32, scale float32) (sum float64, n int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return crossEntropy(h, h.dim, h.vocab, grad, hidden, targets, scale)
}

// logits computes dst = hidden · Wᵀ for rows hidden rows; the caller holds
// h.mu.
func (h *LMHead) logits(dst, hidden []float32, rows int) {
	if h.mat != nil {
		// The shapes were checked when the head was loaded and by
		// crossEntropy: these cannot fail.
		if err := h.pool.Prepare(&h.act, h.typ, hidden, rows, h.dim); err != nil {
			panic(fmt.Sprintf("lm head: %v", err))
		}
		if err := h.pool.MatMul(dst, h.mat, &h.act); err != nil {
			panic(fmt.Sprintf("lm head: %v", err))
		}
		return
	}
	if len(h.scratch) < h.dim {
		h.scratch = make([]float32, h.dim)
	}
	for o := range h.vocab {
		w := h.scratch[:h.dim]
		h.row(w, o)
		for r := range rows {
			dst[r*h.vocab+o] = kernels.DotF32(w, hidden[r*h.dim:(r+1)*h.dim])
		}
	}
}

// row converts row i of W to float32s in dst[:Dim].
func (h *LMHead) row(dst []float32, i int) {
	if err := ggml.Dequantize(h.typ, h.data[i*h.rowBytes:(i+1)*h.rowBytes], dst[:h.dim]); err != nil {
		panic(fmt.Sprintf("lm head: row %d: %v", i, err))
	}
}

var _ vocabProjection = (*LMHead)(nil)

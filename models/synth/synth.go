package synth

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
)

// Spec describes a synthetic model.
type Spec struct {
	// Name is written as general.name; "" gives a name built from the
	// shape.
	Name string
	// Arch is the architecture: "llama", "qwen2" or "qwen3".
	Arch string
	// Vocab is the number of tokens. With TokenizerFrom it may be 0 (the
	// tokenizer's size); otherwise it must equal the tokenizer's size.
	Vocab   int
	Dim     int // embedding width
	Layers  int
	Heads   int
	KVHeads int // 0 means Heads
	FFN     int // feed-forward width
	// HeadDim is the size of one attention head; 0 means Dim/Heads.
	HeadDim int
	Context int
	// RopeBase is the rotary frequency base; 0 means 10000.
	RopeBase float64
	// Eps is the RMSNorm epsilon; 0 means 1e-5.
	Eps float64
	// WeightType stores the two-dimensional tensors: F32, F16, BF16 or a
	// quantized type whose block size divides the rows (Q8_0, Q4_K, Q6_K,
	// ...). The zero value is F32.
	WeightType ggml.Type
	// Seed selects the random weights.
	Seed uint64
	// TokenizerFrom, when not nil, supplies the vocabulary: every
	// tokenizer.* key is copied from it. Otherwise a small built-in
	// SentencePiece-style vocabulary with byte fallback is written (at
	// least 259 tokens).
	TokenizerFrom *gguf.Metadata
}

// Write generates the model described by spec and writes it to path as a
// GGUF file.
func Write(path string, spec Spec) error {
	w, err := NewWriter(spec)
	if err != nil {
		return fmt.Errorf("synth %s: %w", path, err)
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// NewWriter returns a GGUF writer set up with the model described by spec;
// its tensors are generated while it writes.
func NewWriter(spec Spec) (*gguf.Writer, error) {
	s, err := spec.normalize()
	if err != nil {
		return nil, err
	}
	w := gguf.NewWriter()
	m := w.Meta()
	a := s.Arch
	m.Set("general.architecture", a)
	m.Set("general.name", s.Name)
	m.Set(a+".context_length", uint32(s.Context))
	m.Set(a+".embedding_length", uint32(s.Dim))
	m.Set(a+".block_count", uint32(s.Layers))
	m.Set(a+".feed_forward_length", uint32(s.FFN))
	m.Set(a+".attention.head_count", uint32(s.Heads))
	m.Set(a+".attention.head_count_kv", uint32(s.KVHeads))
	if s.HeadDim != s.Dim/s.Heads {
		m.Set(a+".attention.key_length", uint32(s.HeadDim))
		m.Set(a+".attention.value_length", uint32(s.HeadDim))
	}
	m.Set(a+".rope.dimension_count", uint32(s.HeadDim))
	m.Set(a+".rope.freq_base", float32(s.RopeBase))
	m.Set(a+".attention.layer_norm_rms_epsilon", float32(s.Eps))
	if err := s.setVocab(m); err != nil {
		return nil, err
	}

	qDim, kvDim := s.Heads*s.HeadDim, s.KVHeads*s.HeadDim
	g := generator{seed: s.Seed, typ: s.WeightType}
	errs := []error{g.matrix(w, "token_embd.weight", s.Dim, s.Vocab)}
	for l := 0; l < s.Layers; l++ {
		n := func(x string) string { return fmt.Sprintf("blk.%d.%s", l, x) }
		errs = append(errs,
			g.norm(w, n("attn_norm.weight"), s.Dim),
			g.matrix(w, n("attn_q.weight"), s.Dim, qDim),
			g.matrix(w, n("attn_k.weight"), s.Dim, kvDim),
			g.matrix(w, n("attn_v.weight"), s.Dim, kvDim),
			g.matrix(w, n("attn_output.weight"), qDim, s.Dim),
		)
		if s.Arch == "qwen2" {
			errs = append(errs,
				g.bias(w, n("attn_q.bias"), qDim),
				g.bias(w, n("attn_k.bias"), kvDim),
				g.bias(w, n("attn_v.bias"), kvDim),
			)
		}
		if s.Arch == "qwen3" {
			errs = append(errs,
				g.norm(w, n("attn_q_norm.weight"), s.HeadDim),
				g.norm(w, n("attn_k_norm.weight"), s.HeadDim),
			)
		}
		errs = append(errs,
			g.norm(w, n("ffn_norm.weight"), s.Dim),
			g.matrix(w, n("ffn_gate.weight"), s.Dim, s.FFN),
			g.matrix(w, n("ffn_up.weight"), s.Dim, s.FFN),
			g.matrix(w, n("ffn_down.weight"), s.FFN, s.Dim),
		)
	}
	errs = append(errs,
		g.norm(w, "output_norm.weight", s.Dim),
		g.matrix(w, "output.weight", s.Dim, s.Vocab),
	)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return w, nil
}

// normalize fills defaults and checks the spec.
func (s Spec) normalize() (Spec, error) {
	switch s.Arch {
	case "llama", "qwen2", "qwen3":
	default:
		return s, fmt.Errorf("architecture %q is not one of llama, qwen2, qwen3", s.Arch)
	}
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	if s.Dim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.FFN <= 0 || s.Context <= 0 || s.KVHeads < 0 || s.HeadDim < 0 {
		return s, fmt.Errorf("shape d=%d layers=%d heads=%d/%d ffn=%d head=%d context=%d has a non-positive size",
			s.Dim, s.Layers, s.Heads, s.KVHeads, s.FFN, s.HeadDim, s.Context)
	}
	if s.HeadDim == 0 {
		if s.Dim%s.Heads != 0 {
			return s, fmt.Errorf("width %d is not a multiple of the head count %d", s.Dim, s.Heads)
		}
		s.HeadDim = s.Dim / s.Heads
	}
	if s.HeadDim%2 != 0 {
		return s, fmt.Errorf("head size %d is odd", s.HeadDim)
	}
	if s.Heads%s.KVHeads != 0 {
		return s, fmt.Errorf("head count %d is not a multiple of the key/value head count %d", s.Heads, s.KVHeads)
	}
	if s.RopeBase == 0 {
		s.RopeBase = 10000
	}
	if s.Eps == 0 {
		s.Eps = 1e-5
	}
	if !ggml.CanQuantize(s.WeightType) {
		return s, fmt.Errorf("weight type %s cannot be written", s.WeightType)
	}
	bs := s.WeightType.BlockSize()
	for _, n := range []int{s.Dim, s.Heads * s.HeadDim, s.FFN} {
		if n%bs != 0 {
			return s, fmt.Errorf("row length %d is not a multiple of the %s block size %d", n, s.WeightType, bs)
		}
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("synth-%s-d%d-l%d-%s", s.Arch, s.Dim, s.Layers, strings.ToLower(s.WeightType.String()))
	}
	return s, nil
}

// setVocab writes the tokenizer keys and settles s.Vocab.
func (s *Spec) setVocab(m *gguf.Metadata) error {
	if s.TokenizerFrom == nil {
		if s.Vocab < builtinMinVocab {
			return fmt.Errorf("the built-in vocabulary needs at least %d tokens, not %d", builtinMinVocab, s.Vocab)
		}
		builtinVocab(m, s.Vocab)
		return nil
	}
	toks, ok := s.TokenizerFrom.Strings("tokenizer.ggml.tokens")
	if !ok {
		return errors.New("TokenizerFrom has no tokenizer.ggml.tokens")
	}
	if s.Vocab == 0 {
		s.Vocab = len(toks)
	}
	if s.Vocab != len(toks) {
		return fmt.Errorf("vocabulary size %d differs from the tokenizer's %d tokens", s.Vocab, len(toks))
	}
	for _, k := range s.TokenizerFrom.Keys() {
		if strings.HasPrefix(k, "tokenizer.") {
			v, _ := s.TokenizerFrom.Value(k)
			m.Set(k, v)
		}
	}
	return nil
}

// generator adds tensors whose data is generated as the file is written.
type generator struct {
	seed uint64
	typ  ggml.Type
}

// rng returns the random source of one tensor.
func (g generator) rng(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

// matrix adds a [cols, rows] tensor of N(0, 0.02²) values in the weight
// type.
func (g generator) matrix(w *gguf.Writer, name string, cols, rows int) error {
	return w.AddTensorFunc(name, g.typ, []int{cols, rows}, func(out io.Writer) error {
		return writeRows(out, g.typ, cols, rows, g.rng(name), 0, 0.02)
	})
}

// norm adds a one-dimensional F32 tensor of 1 + N(0, 0.01²) values.
func (g generator) norm(w *gguf.Writer, name string, n int) error {
	return w.AddTensorFunc(name, ggml.TypeF32, []int{n}, func(out io.Writer) error {
		return writeRows(out, ggml.TypeF32, n, 1, g.rng(name), 1, 0.01)
	})
}

// bias adds a one-dimensional F32 tensor of N(0, 0.02²) values.
func (g generator) bias(w *gguf.Writer, name string, n int) error {
	return w.AddTensorFunc(name, ggml.TypeF32, []int{n}, func(out io.Writer) error {
		return writeRows(out, ggml.TypeF32, n, 1, g.rng(name), 0, 0.02)
	})
}

// writeRows generates rows of cols values mean + std·N(0,1), encodes them
// as typ and writes them, a block of rows at a time.
func writeRows(out io.Writer, typ ggml.Type, cols, rows int, rng *rand.Rand, mean, std float64) error {
	per := max(1, (1<<20)/cols)
	vals := make([]float32, min(per, rows)*cols)
	rowBytes, err := typ.RowSize(cols)
	if err != nil {
		return err
	}
	enc := make([]byte, min(per, rows)*rowBytes)
	for r := 0; r < rows; r += per {
		n := min(per, rows-r)
		v := vals[:n*cols]
		for i := range v {
			v[i] = float32(mean + std*rng.NormFloat64())
		}
		e := enc[:n*rowBytes]
		for i := 0; i < n; i++ {
			if err := ggml.QuantizeInto(typ, v[i*cols:(i+1)*cols], e[i*rowBytes:(i+1)*rowBytes]); err != nil {
				return err
			}
		}
		if _, err := out.Write(e); err != nil {
			return err
		}
	}
	return nil
}

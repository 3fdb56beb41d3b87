package llm

import (
	"fmt"
	"math"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/gguf"
)

// Config holds a model's hyperparameters, read from its GGUF metadata.
type Config struct {
	Arch     string // general.architecture
	Vocab    int    // tokens (rows of token_embd)
	Dim      int    // embedding width, {arch}.embedding_length
	Layers   int    // {arch}.block_count
	FFN      int    // feed-forward width, {arch}.feed_forward_length
	Heads    int    // query heads, {arch}.attention.head_count
	KVHeads  int    // key/value heads, {arch}.attention.head_count_kv
	HeadDim  int    // elements of a query/key head, {arch}.attention.key_length
	ValueDim int    // elements of a value head, {arch}.attention.value_length
	Context  int    // training context length, {arch}.context_length
	Eps      float32
	// RopeScaling is the context-scaling method: "none", "linear" or
	// "yarn".
	RopeScaling string
	// RoPE is the rotary embedding as the forward pass applies it. Its
	// FreqFactors come from the rope_freqs tensor when the file has one.
	RoPE compute.RoPE
}

// parseConfig reads the hyperparameters of architecture arch from meta.
// Vocab is left for the caller, which knows the embedding tensor.
func parseConfig(arch string, meta *gguf.Metadata) (Config, error) {
	c := Config{Arch: arch}
	p := func(k string) string { return arch + "." + k }
	var err error
	need := func(dst *int, key string) {
		if err != nil {
			return
		}
		v, ok := meta.Uint(key)
		if !ok {
			if _, present := meta.Value(key); present {
				err = fmt.Errorf("metadata %s is not a single non-negative integer", key)
			} else {
				err = fmt.Errorf("metadata %s is missing", key)
			}
			return
		}
		if v == 0 || v > 1<<30 {
			err = fmt.Errorf("metadata %s = %d is out of range", key, v)
			return
		}
		*dst = int(v)
	}
	opt := func(dst *int, key string, def int) {
		if _, present := meta.Value(key); !present {
			*dst = def
			return
		}
		need(dst, key)
	}
	need(&c.Dim, p("embedding_length"))
	need(&c.Layers, p("block_count"))
	need(&c.FFN, p("feed_forward_length"))
	need(&c.Heads, p("attention.head_count"))
	need(&c.Context, p("context_length"))
	if err != nil {
		return c, err
	}
	opt(&c.KVHeads, p("attention.head_count_kv"), c.Heads)
	opt(&c.HeadDim, p("attention.key_length"), c.Dim/c.Heads)
	opt(&c.ValueDim, p("attention.value_length"), c.Dim/c.Heads)
	if err != nil {
		return c, err
	}
	if n, ok := meta.Uint(p("expert_count")); ok && n > 0 {
		return c, fmt.Errorf("mixture-of-experts models (%s = %d) are not supported", p("expert_count"), n)
	}
	if c.HeadDim == 0 || c.ValueDim == 0 {
		return c, fmt.Errorf("embedding length %d is smaller than the head count %d", c.Dim, c.Heads)
	}
	if c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("head count %d is not a multiple of the key/value head count %d", c.Heads, c.KVHeads)
	}
	eps, ok := meta.Float(p("attention.layer_norm_rms_epsilon"))
	if !ok {
		return c, fmt.Errorf("metadata %s is missing", p("attention.layer_norm_rms_epsilon"))
	}
	if !(eps >= 0 && eps < 1) {
		return c, fmt.Errorf("metadata %s = %v is out of range", p("attention.layer_norm_rms_epsilon"), eps)
	}
	c.Eps = float32(eps)

	r := &c.RoPE
	r.NeoX = false // set by the architecture
	opt(&r.Dims, p("rope.dimension_count"), c.HeadDim)
	if err != nil {
		return c, err
	}
	if r.Dims > c.HeadDim || r.Dims%2 != 0 {
		return c, fmt.Errorf("rope dimension count %d must be even and at most the head size %d", r.Dims, c.HeadDim)
	}
	r.Base = 10000
	if v, ok := meta.Float(p("rope.freq_base")); ok {
		if !(v > 1) || math.IsInf(v, 0) {
			return c, fmt.Errorf("metadata %s = %v is out of range", p("rope.freq_base"), v)
		}
		r.Base = float32(v)
	}
	// As llama.cpp: a scaling factor alone means linear scaling.
	c.RopeScaling = "linear"
	if s, ok := meta.String(p("rope.scaling.type")); ok {
		c.RopeScaling = s
	}
	factor, ok := meta.Float(p("rope.scaling.factor"))
	if !ok {
		factor, _ = meta.Float(p("rope.scale_linear"))
	}
	if factor < 0 || math.IsNaN(factor) || math.IsInf(factor, 0) {
		return c, fmt.Errorf("rope scaling factor %v is out of range", factor)
	}
	r.FreqScale = 1
	if factor != 0 {
		r.FreqScale = float32(1 / factor)
	}
	switch c.RopeScaling {
	case "none":
		r.FreqScale = 1
	case "linear":
	case "yarn":
		r.ExtFactor = 1
	default:
		return c, fmt.Errorf("rope scaling type %q is not supported (none, linear and yarn are)", c.RopeScaling)
	}
	if r.FreqScale == 1 && c.RopeScaling == "linear" {
		c.RopeScaling = "none"
	}
	r.AttnFactor = 1
	if v, ok := meta.Float(p("rope.scaling.attn_factor")); ok && v > 0 {
		r.AttnFactor = float32(v)
	}
	r.BetaFast, r.BetaSlow = 32, 1
	opt(&r.OrigContext, p("rope.scaling.original_context_length"), c.Context)
	if err != nil {
		return c, err
	}
	return c, nil
}

package llm

import (
	"fmt"
	"sort"
	"sync"
)

// Need says whether a model file must, may or must not hold a tensor kind.
type Need int

const (
	// Absent tensors are not used (and not looked for).
	Absent Need = iota
	// Optional tensors are used when the file holds them.
	Optional
	// Required tensors must be in the file.
	Required
)

// Architecture describes how one family of decoder models differs from the
// common pattern every registered family shares: token embedding, then per
// layer pre-norm attention and pre-norm SwiGLU feed-forward blocks with
// residual connections, then a final RMSNorm and the LM head.
type Architecture struct {
	// NeoX selects the GPT-NeoX rotary layout, which rotates pairs (i,
	// i+d/2); otherwise pairs (2i, 2i+1) rotate, as in LLaMA (whose GGUF
	// Q and K weights are permuted for that layout by the converter).
	NeoX bool
	// QKVBias says whether attn_q, attn_k and attn_v carry biases.
	QKVBias Need
	// OutputBias says whether attn_output carries a bias.
	OutputBias Need
	// QKNorm applies an RMSNorm to each query and key head before the
	// rotation (attn_q_norm, attn_k_norm), as Qwen3 does.
	QKNorm bool
}

var (
	archMu sync.RWMutex
	archs  = map[string]Architecture{}
)

// Register makes an architecture available under the name files give in
// general.architecture. It is meant for init functions; a second
// registration of a name panics.
func Register(name string, a Architecture) {
	archMu.Lock()
	defer archMu.Unlock()
	if _, dup := archs[name]; dup {
		panic(fmt.Sprintf("llm: architecture %q registered twice", name))
	}
	archs[name] = a
}

// Lookup returns the architecture registered under name.
func Lookup(name string) (Architecture, bool) {
	archMu.RLock()
	defer archMu.RUnlock()
	a, ok := archs[name]
	return a, ok
}

// Architectures returns the registered architecture names, sorted.
func Architectures() []string {
	archMu.RLock()
	defer archMu.RUnlock()
	names := make([]string, 0, len(archs))
	for n := range archs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func init() {
	// LLaMA 1-3 and files converted from Mistral-style checkpoints.
	Register("llama", Architecture{QKVBias: Optional, OutputBias: Optional})
	// Qwen2 and Qwen2.5: biases on the query, key and value projections.
	Register("qwen2", Architecture{NeoX: true, QKVBias: Required})
	// Qwen3 (dense): per-head query/key RMSNorm, no biases.
	Register("qwen3", Architecture{NeoX: true, QKNorm: true})
}

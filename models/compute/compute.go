package compute

import (
	"fmt"
	"sort"
	"sync"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
)

// Weight is a two-dimensional weight matrix held by a Backend. Row i holds
// the Cols weights that produce output feature i; that is ggml's layout,
// where a GGUF tensor of Shape [Cols, Rows] is Rows rows of Cols elements.
type Weight interface {
	// Type returns the element type the weight is stored in.
	Type() ggml.Type
	// Rows returns the number of rows (output features).
	Rows() int
	// Cols returns the length of one row (input features).
	Cols() int
}

// Product is one weight and the output of its product with an input, for
// Backend.MatMuls.
type Product struct {
	Dst []float32
	W   Weight
}

// RoPE describes a rotary position embedding as ggml's rope_ext applies it,
// including linear and YaRN context scaling.
type RoPE struct {
	// Dims is the number of leading elements of each head that rotate
	// (n_rot); the others pass through unchanged. It is even.
	Dims int
	// NeoX selects the rotated pairs: (i, i+Dims/2) when true (GPT-NeoX,
	// Qwen), (2i, 2i+1) when false (LLaMA).
	NeoX bool
	// Base is the frequency base θ (10000 for LLaMA 2).
	Base float32
	// FreqScale multiplies positions: 1/factor for linear or YaRN scaling,
	// 1 otherwise.
	FreqScale float32
	// ExtFactor is YaRN's extrapolation mix (1 with YaRN, 0 without).
	ExtFactor float32
	// AttnFactor scales the rotated values (1 unless the model says
	// otherwise).
	AttnFactor float32
	// BetaFast and BetaSlow bound YaRN's correction range (32 and 1).
	BetaFast, BetaSlow float32
	// OrigContext is the context length the model was trained with, for
	// YaRN's correction dimensions.
	OrigContext int
	// FreqFactors, when not nil, holds Dims/2 divisors of the per-pair
	// frequencies (LLaMA 3's rope_freqs tensor).
	FreqFactors []float32
}

// KV is one layer's cached keys and values of one sequence, position-major:
// position p's keys are K[p*KVHeads*HeadDim:][:KVHeads*HeadDim] and its
// values V[p*KVHeads*ValueDim:][:KVHeads*ValueDim]. Exactly one of the
// F32 pair and the F16 pair (binary16 bit patterns) is set.
type KV struct {
	K32, V32 []float32
	K16, V16 []uint16
}

// AttentionRow says what one query row attends to: the first Len positions
// of KV.
type AttentionRow struct {
	KV  KV
	Len int
}

// AttentionShape gives the head layout of an attention operation.
type AttentionShape struct {
	Heads    int // query heads
	KVHeads  int // key/value heads; Heads is a multiple of it (grouped-query attention)
	HeadDim  int // elements of one query or key head
	ValueDim int // elements of one value head
	// Scale multiplies the query·key products before the softmax
	// (usually 1/sqrt(HeadDim)).
	Scale float32
}

// Backend performs the heavy operations of a forward pass. Its methods are
// not safe for concurrent use: one caller (a model) drives a Backend at a
// time. Slices passed in must have the sizes stated; the caller validates
// shapes when it loads a model, so a mismatch is a programming error.
type Backend interface {
	// Name returns the name the backend is registered under.
	Name() string

	// LoadWeight makes a two-dimensional tensor available to MatMul and
	// Row, keeping its storage type. The tensor's data must stay valid
	// while the weight is used (it may be a view into a mapped file, which
	// a CPU backend reads in place). It fails for types the backend cannot
	// compute with.
	LoadWeight(t gguf.Tensor) (Weight, error)

	// MatMul computes dst = x · wᵀ for rows activation rows: x holds rows
	// rows of w.Cols() elements and dst receives rows rows of w.Rows()
	// elements.
	MatMul(dst []float32, w Weight, x []float32, rows int)
	// MatMuls computes, for each product p in ps, p.Dst = x · p.Wᵀ over
	// rows activation rows (MatMul for several weights that read the same
	// input). Every p.W has the same Cols; the p.Dst must not overlap x or
	// each other. Giving the products of one input together lets a backend
	// prepare the input once and compute them in one parallel pass.
	MatMuls(x []float32, rows int, ps []Product)

	// Row writes row i of w, converted to float32, into dst (w.Cols()
	// elements); this is the embedding lookup.
	Row(dst []float32, w Weight, i int)

	// RMSNorm normalizes each consecutive group of len(weight) elements of
	// x to unit root mean square (with eps added to the mean square) and
	// multiplies it elementwise by weight, writing dst. len(x) is a
	// multiple of len(weight); dst may be x.
	RMSNorm(dst, x, weight []float32, eps float32)

	// RoPE rotates, in place, the heads of len(pos) rows of x, each row
	// holding heads heads of headDim elements; row r is at position pos[r].
	RoPE(x []float32, heads, headDim int, pos []int32, p *RoPE)

	// SwiGLU computes dst[i] = silu(gate[i]) * up[i]; dst may be gate or up.
	SwiGLU(dst, gate, up []float32)

	// Attention computes causal attention for len(rows) query rows: q holds
	// one row of s.Heads*s.HeadDim elements per entry of rows, and dst
	// receives for each a row of s.Heads*s.ValueDim elements, the softmax
	// of the scaled query·key products over the first rows[r].Len cached
	// positions applied to their values. Query head h reads key/value head
	// h/(s.Heads/s.KVHeads).
	Attention(dst, q []float32, rows []AttentionRow, s AttentionShape)

	// Close releases what the backend holds. Weights must not be used
	// after it.
	Close() error
}

// Options configures a Backend when it is opened.
type Options struct {
	// Threads is the number of threads the backend may compute with; 0
	// lets it choose (usually the number of CPUs).
	Threads int
}

// Factory opens a Backend.
type Factory func(Options) (Backend, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a backend available under name. It is meant to be called
// from init functions; registering a name twice panics, as that is a
// programming error.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("compute: backend %q registered twice", name))
	}
	registry[name] = f
}

// New opens the backend registered under name.
func New(name string, opts Options) (Backend, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("compute backend %q is not available (have %v)", name, Names())
	}
	b, err := f(opts)
	if err != nil {
		return nil, fmt.Errorf("open compute backend %q: %w", name, err)
	}
	return b, nil
}

// Names returns the registered backend names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

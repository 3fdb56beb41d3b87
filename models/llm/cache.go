package llm

import (
	"errors"
	"fmt"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/ggml"
)

// SeqID names a sequence in a Cache.
type SeqID int32

// ErrCacheFull is wrapped by the errors returned when a cache has no room
// left for a sequence's tokens or for another sequence.
var ErrCacheFull = errors.New("kv cache full")

// CacheOptions configures a Cache.
type CacheOptions struct {
	// Type is the element type of the cached keys and values:
	// ggml.TypeF32 (the zero value) or ggml.TypeF16.
	Type ggml.Type
	// MaxSequences bounds the sequences alive at once; 0 means 1.
	MaxSequences int
	// MaxTokens bounds the positions held over all sequences; 0 means
	// MaxSequences × SeqContext.
	MaxTokens int
	// SeqContext bounds the positions of one sequence; 0 means the
	// model's context length, which it may not exceed.
	SeqContext int
}

// cacheChunk is the number of positions a sequence's storage grows by.
const cacheChunk = 256

// Cache holds the keys and values of a model's sequences. Each sequence's
// storage grows in chunks as it lengthens, within the token budget. A
// Cache belongs to the model that made it; it is not safe for concurrent
// use, and must not be changed while a Forward call that uses it runs.
type Cache struct {
	model          *Model
	opts           CacheOptions
	kDim, vDim     int // floats per position and layer
	seqs           []*seqKV
	reserved, live int

	// Per-call bookkeeping of Forward, indexed by SeqID.
	next  []int
	stamp []uint64
	epoch uint64
}

// seqKV is one sequence's storage: per layer, cap positions of keys and of
// values, the first n of them filled.
type seqKV struct {
	n, cap   int
	k32, v32 [][]float32
	k16, v16 [][]uint16
}

// NewCache returns an empty cache for the model.
func (m *Model) NewCache(o CacheOptions) (*Cache, error) {
	if o.Type != ggml.TypeF32 && o.Type != ggml.TypeF16 {
		return nil, fmt.Errorf("new kv cache: type %s is not supported (F32 or F16)", o.Type)
	}
	if o.MaxSequences < 0 || o.MaxTokens < 0 || o.SeqContext < 0 {
		return nil, fmt.Errorf("new kv cache: negative limit in %+v", o)
	}
	if o.MaxSequences == 0 {
		o.MaxSequences = 1
	}
	if o.SeqContext == 0 {
		o.SeqContext = m.cfg.Context
	}
	if o.SeqContext > m.cfg.Context {
		return nil, fmt.Errorf("new kv cache: sequence context %d exceeds the model's context length %d", o.SeqContext, m.cfg.Context)
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = o.MaxSequences * o.SeqContext
	}
	return &Cache{
		model: m,
		opts:  o,
		kDim:  m.cfg.KVHeads * m.cfg.HeadDim,
		vDim:  m.cfg.KVHeads * m.cfg.ValueDim,
		seqs:  make([]*seqKV, o.MaxSequences),
		next:  make([]int, o.MaxSequences),
		stamp: make([]uint64, o.MaxSequences),
	}, nil
}

// Options returns the cache's settings, with defaults filled in.
func (c *Cache) Options() CacheOptions { return c.opts }

// NewSeq starts an empty sequence.
func (c *Cache) NewSeq() (SeqID, error) {
	for i, s := range c.seqs {
		if s == nil {
			c.seqs[i] = &seqKV{}
			c.live++
			return SeqID(i), nil
		}
	}
	return -1, fmt.Errorf("new sequence: all %d sequences are in use: %w", len(c.seqs), ErrCacheFull)
}

func (c *Cache) seq(id SeqID) (*seqKV, error) {
	if id < 0 || int(id) >= len(c.seqs) || c.seqs[id] == nil {
		return nil, fmt.Errorf("sequence %d does not exist", id)
	}
	return c.seqs[id], nil
}

// Release ends a sequence and frees its storage.
func (c *Cache) Release(id SeqID) error {
	s, err := c.seq(id)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	c.reserved -= s.cap
	c.live--
	c.seqs[id] = nil
	return nil
}

// Fork starts a new sequence holding a copy of id's keys and values.
func (c *Cache) Fork(id SeqID) (SeqID, error) {
	s, err := c.seq(id)
	if err != nil {
		return -1, fmt.Errorf("fork: %w", err)
	}
	nid, err := c.NewSeq()
	if err != nil {
		return -1, fmt.Errorf("fork sequence %d: %w", id, err)
	}
	if err := c.reserve(nid, s.n); err != nil {
		c.Release(nid)
		return -1, fmt.Errorf("fork sequence %d: %w", id, err)
	}
	d := c.seqs[nid]
	for l := range s.k32 {
		copy(d.k32[l], s.k32[l][:s.n*c.kDim])
		copy(d.v32[l], s.v32[l][:s.n*c.vDim])
	}
	for l := range s.k16 {
		copy(d.k16[l], s.k16[l][:s.n*c.kDim])
		copy(d.v16[l], s.v16[l][:s.n*c.vDim])
	}
	d.n = s.n
	return nid, nil
}

// Truncate removes the positions p and later of a sequence; p larger than
// its length changes nothing.
func (c *Cache) Truncate(id SeqID, p int) error {
	s, err := c.seq(id)
	if err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if p < 0 {
		return fmt.Errorf("truncate sequence %d at negative position %d", id, p)
	}
	s.n = min(s.n, p)
	return nil
}

// Len returns the number of positions held for a sequence (0 for one that
// does not exist). The next token of the sequence goes at position Len.
func (c *Cache) Len(id SeqID) int {
	s, err := c.seq(id)
	if err != nil {
		return 0
	}
	return s.n
}

// Sequences returns the number of live sequences.
func (c *Cache) Sequences() int { return c.live }

// Reserved returns the positions of storage allocated over all sequences;
// it never exceeds MaxTokens.
func (c *Cache) Reserved() int { return c.reserved }

// reserve makes room for n positions in sequence id, growing its storage
// by whole chunks where the budget allows and exactly otherwise.
func (c *Cache) reserve(id SeqID, n int) error {
	s := c.seqs[id]
	if n <= s.cap {
		return nil
	}
	if n > c.opts.SeqContext {
		return fmt.Errorf("sequence %d needs %d positions, more than its context length %d: %w", id, n, c.opts.SeqContext, ErrCacheFull)
	}
	free := c.opts.MaxTokens - c.reserved
	if n-s.cap > free {
		return fmt.Errorf("sequence %d needs %d more positions but %d of the %d-token budget are in use: %w",
			id, n-s.cap, c.reserved, c.opts.MaxTokens, ErrCacheFull)
	}
	newCap := min((n+cacheChunk-1)/cacheChunk*cacheChunk, c.opts.SeqContext, s.cap+free)
	layers := c.model.cfg.Layers
	if c.opts.Type == ggml.TypeF16 {
		s.k16 = growLayers(s.k16, layers, s.n*c.kDim, newCap*c.kDim)
		s.v16 = growLayers(s.v16, layers, s.n*c.vDim, newCap*c.vDim)
	} else {
		s.k32 = growLayers(s.k32, layers, s.n*c.kDim, newCap*c.kDim)
		s.v32 = growLayers(s.v32, layers, s.n*c.vDim, newCap*c.vDim)
	}
	c.reserved += newCap - s.cap
	s.cap = newCap
	return nil
}

// growLayers gives each layer's buffer size elements, keeping the first
// keep.
func growLayers[T float32 | uint16](bufs [][]T, layers, keep, size int) [][]T {
	if bufs == nil {
		bufs = make([][]T, layers)
	}
	for l := range bufs {
		nb := make([]T, size)
		copy(nb, bufs[l][:min(keep, len(bufs[l]))])
		bufs[l] = nb
	}
	return bufs
}

// view returns layer l of sequence s for the attention operation.
func (s *seqKV) view(l int) compute.KV {
	if s.k16 != nil {
		return compute.KV{K16: s.k16[l], V16: s.v16[l]}
	}
	return compute.KV{K32: s.k32[l], V32: s.v32[l]}
}

// store writes the key and value rows of one position of layer l.
func (s *seqKV) store(l, pos int, k, v []float32) {
	kd, vd := len(k), len(v)
	if s.k16 != nil {
		toF16(s.k16[l][pos*kd:(pos+1)*kd], k)
		toF16(s.v16[l][pos*vd:(pos+1)*vd], v)
		return
	}
	copy(s.k32[l][pos*kd:(pos+1)*kd], k)
	copy(s.v32[l][pos*vd:(pos+1)*vd], v)
}

func toF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = ggml.F32ToF16(f)
	}
}

package llm

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/carryon/carryon/models/compute"
)

// scratch holds the activations of a forward pass, reused between calls.
type scratch struct {
	x, xn, q, k, v, att, gate, up []float32
	h, lh                         []float32
	pos                           []int32
	attRows                       []compute.AttentionRow
	seqs                          []*seqKV
	outRows, logitRows            []int
	prods                         [3]compute.Product
}

func (s *scratch) size(c *Config, n int) {
	s.x = resize(s.x, n*c.Dim)
	s.xn = resize(s.xn, n*max(c.Dim, c.Heads*c.ValueDim))
	s.q = resize(s.q, n*c.Heads*c.HeadDim)
	s.k = resize(s.k, n*c.KVHeads*c.HeadDim)
	s.v = resize(s.v, n*c.KVHeads*c.ValueDim)
	s.att = resize(s.att, n*c.Heads*c.ValueDim)
	s.gate = resize(s.gate, n*c.FFN)
	s.up = resize(s.up, n*c.FFN)
	s.pos = resize(s.pos, n)
	s.attRows = resize(s.attRows, n)
	s.seqs = resize(s.seqs, n)
}

// Forward runs the batch through the model, appending its rows' keys and
// values to their sequences in the cache, and fills out with the outputs
// the rows asked for. The batch is checked first: tokens must be in the
// vocabulary, sequences must exist, positions must continue each sequence
// (see Batch), and the cache must have room; a failed check changes
// nothing. ctx is checked between layers; when it is done, Forward returns
// its error and the sequences keep their earlier lengths.
func (m *Model) Forward(ctx context.Context, c *Cache, b *Batch, out *Output) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(c, b); err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	cfg := &m.cfg
	n, d := len(b.Rows), cfg.Dim
	s := &m.s
	s.size(cfg, n)
	out.prepare(b, cfg.Vocab, d)
	for r, row := range b.Rows {
		m.backend.Row(s.x[r*d:(r+1)*d], m.embd, int(row.Token))
		s.pos[r] = int32(row.Pos)
		s.seqs[r] = c.seqs[row.Seq]
	}
	for l := range m.layers {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("forward: %w", err)
		}
		m.layer(l, n)
		for t, tl := range b.Taps {
			if tl == l {
				for i, r := range out.HiddenRows {
					copy(out.Taps[t][i*d:(i+1)*d], s.x[r*d:(r+1)*d])
				}
			}
		}
	}
	m.outputs(b, out)
	s.prods = [3]compute.Product{}
	for r, row := range b.Rows {
		s.seqs[r].n = max(s.seqs[r].n, row.Pos+1)
	}
	clear(s.seqs)
	clear(s.attRows)
	return nil
}

// check validates a batch against the cache and reserves the room its
// sequences need.
func (m *Model) check(c *Cache, b *Batch) error {
	if c == nil || c.model != m {
		return errors.New("the cache belongs to another model")
	}
	if b == nil || len(b.Rows) == 0 {
		return errors.New("empty batch")
	}
	for _, t := range b.Taps {
		if t < 0 || t >= m.cfg.Layers {
			return fmt.Errorf("tap layer %d out of range [0, %d)", t, m.cfg.Layers)
		}
	}
	c.epoch++
	for r, row := range b.Rows {
		if row.Token < 0 || int(row.Token) >= m.cfg.Vocab {
			return fmt.Errorf("row %d: token %d out of range [0, %d)", r, row.Token, m.cfg.Vocab)
		}
		s, err := c.seq(row.Seq)
		if err != nil {
			return fmt.Errorf("row %d: %w", r, err)
		}
		if c.stamp[row.Seq] != c.epoch {
			c.stamp[row.Seq] = c.epoch
			c.next[row.Seq] = s.n
		}
		if row.Pos != c.next[row.Seq] {
			return fmt.Errorf("row %d: sequence %d continues at position %d, not %d", r, row.Seq, c.next[row.Seq], row.Pos)
		}
		c.next[row.Seq]++
	}
	for _, row := range b.Rows {
		if c.stamp[row.Seq] == c.epoch {
			c.stamp[row.Seq] = 0 // reserve each sequence once
			if err := c.reserve(row.Seq, c.next[row.Seq]); err != nil {
				return err
			}
		}
	}
	return nil
}

// layer runs transformer block l over the n rows in the scratch space.
func (m *Model) layer(l, n int) {
	cfg, L, s, be := &m.cfg, &m.layers[l], &m.s, m.backend
	d := cfg.Dim
	qDim, kDim, vDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim, cfg.KVHeads*cfg.ValueDim

	// Attention.
	be.RMSNorm(s.xn[:n*d], s.x, L.attnNorm, cfg.Eps)
	s.prods = [3]compute.Product{{Dst: s.q, W: L.wq}, {Dst: s.k, W: L.wk}, {Dst: s.v, W: L.wv}}
	be.MatMuls(s.xn[:n*d], n, s.prods[:3])
	addBias(s.q, L.bq, n)
	addBias(s.k, L.bk, n)
	addBias(s.v, L.bv, n)
	if L.qNorm != nil {
		be.RMSNorm(s.q, s.q, L.qNorm, cfg.Eps)
		be.RMSNorm(s.k, s.k, L.kNorm, cfg.Eps)
	}
	be.RoPE(s.q, cfg.Heads, cfg.HeadDim, s.pos[:n], &cfg.RoPE)
	be.RoPE(s.k, cfg.KVHeads, cfg.HeadDim, s.pos[:n], &cfg.RoPE)
	for r := 0; r < n; r++ {
		p := int(s.pos[r])
		s.seqs[r].store(l, p, s.k[r*kDim:(r+1)*kDim], s.v[r*vDim:(r+1)*vDim])
		s.attRows[r] = compute.AttentionRow{KV: s.seqs[r].view(l), Len: p + 1}
	}
	be.Attention(s.att, s.q, s.attRows[:n], compute.AttentionShape{
		Heads: cfg.Heads, KVHeads: cfg.KVHeads, HeadDim: cfg.HeadDim, ValueDim: cfg.ValueDim,
		Scale: float32(1 / math.Sqrt(float64(cfg.HeadDim))),
	})
	_ = qDim
	be.MatMul(s.xn, L.wo, s.att, n)
	addBias(s.xn, L.bo, n)
	add(s.x, s.xn[:n*d])

	// Feed-forward.
	be.RMSNorm(s.xn[:n*d], s.x, L.ffnNorm, cfg.Eps)
	s.prods = [3]compute.Product{{Dst: s.gate, W: L.gate}, {Dst: s.up, W: L.up}}
	be.MatMuls(s.xn[:n*d], n, s.prods[:2])
	be.SwiGLU(s.gate, s.gate, s.up)
	be.MatMul(s.xn, L.down, s.gate, n)
	add(s.x, s.xn[:n*d])
}

// outputs applies the final norm and the LM head to the rows that asked.
func (m *Model) outputs(b *Batch, out *Output) {
	cfg, s, be := &m.cfg, &m.s, m.backend
	d := cfg.Dim
	s.outRows, s.logitRows = s.outRows[:0], s.logitRows[:0]
	for r, row := range b.Rows {
		if row.Logits || row.Hidden {
			if row.Logits {
				s.logitRows = append(s.logitRows, len(s.outRows))
			}
			s.outRows = append(s.outRows, r)
		}
	}
	if len(s.outRows) == 0 {
		return
	}
	s.h = resize(s.h, len(s.outRows)*d)
	for i, r := range s.outRows {
		copy(s.h[i*d:(i+1)*d], s.x[r*d:(r+1)*d])
	}
	be.RMSNorm(s.h, s.h, m.outputNorm, cfg.Eps)
	for i, r := range s.outRows {
		if j := out.hiddenIndex[r]; j >= 0 {
			copy(out.Hidden[j*d:(j+1)*d], s.h[i*d:(i+1)*d])
		}
	}
	if len(s.logitRows) == 0 {
		return
	}
	h := s.h
	if len(s.logitRows) < len(s.outRows) {
		s.lh = resize(s.lh, len(s.logitRows)*d)
		for j, i := range s.logitRows {
			copy(s.lh[j*d:(j+1)*d], s.h[i*d:(i+1)*d])
		}
		h = s.lh
	}
	be.MatMul(out.Logits, m.output, h, len(s.logitRows))
}

// Logits applies the LM head (output.weight, or the token embeddings of a
// model with tied embeddings) to hidden rows of Dim floats, writing Vocab
// floats per row into dst. The hidden rows are final-norm states, as
// Forward returns them (possibly modified by a head).
func (m *Model) Logits(dst, hidden []float32) error {
	d, v := m.cfg.Dim, m.cfg.Vocab
	if len(hidden) == 0 || len(hidden)%d != 0 {
		return fmt.Errorf("logits: %d hidden floats is not a positive multiple of the model width %d", len(hidden), d)
	}
	rows := len(hidden) / d
	if len(dst) < rows*v {
		return fmt.Errorf("logits: dst holds %d floats, %d rows need %d", len(dst), rows, rows*v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backend.MatMul(dst, m.output, hidden, rows)
	return nil
}

// Embed writes the input embedding of each token (Dim floats) into dst.
func (m *Model) Embed(dst []float32, tokens []int32) error {
	d := m.cfg.Dim
	if len(dst) < len(tokens)*d {
		return fmt.Errorf("embed: dst holds %d floats, %d tokens need %d", len(dst), len(tokens), len(tokens)*d)
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= m.cfg.Vocab {
			return fmt.Errorf("embed: token %d out of range [0, %d)", t, m.cfg.Vocab)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, t := range tokens {
		m.backend.Row(dst[i*d:(i+1)*d], m.embd, int(t))
	}
	return nil
}

// addBias adds bias to each of the n rows of x; a nil bias adds nothing.
func addBias(x, bias []float32, n int) {
	if bias == nil {
		return
	}
	w := len(bias)
	for r := 0; r < n; r++ {
		add(x[r*w:(r+1)*w], bias)
	}
}

// add adds y to x elementwise.
func add(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}

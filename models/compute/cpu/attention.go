package cpu

import (
	"fmt"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/kernels"
)

// attentionTask computes items [lo, hi) of rows × heads.
type attentionTask struct {
	b    *Backend
	dst  []float32
	q    []float32
	rows []compute.AttentionRow
	s    compute.AttentionShape
}

// Attention computes causal attention over the cache for each query row,
// splitting the (row, key/value head) pairs over the threads. The query
// heads that share a key/value head are computed together, so that each
// cached value row is read once for all of them.
//
// With an F16 cache it rounds the query and the softmax weights to F16
// before their products with the cached keys and values, as ggml does when
// it multiplies an F16 cache, so that results match llama.cpp's.
func (b *Backend) Attention(dst, q []float32, rows []compute.AttentionRow, s compute.AttentionShape) {
	if len(rows) == 0 {
		return
	}
	work, longest := 0, 0
	for _, r := range rows {
		work += r.Len
		longest = max(longest, r.Len)
	}
	work *= s.Heads * (s.HeadDim + s.ValueDim)
	// Each worker holds the scores of one group of heads and a copy of
	// its queries.
	group := s.Heads / s.KVHeads
	need := group * (longest + s.HeadDim)
	for w := range b.attnScratch {
		if len(b.attnScratch[w]) < need {
			b.attnScratch[w] = make([]float32, 2*need)
		}
	}
	t := &b.att
	t.dst, t.q, t.rows, t.s = dst, q, rows, s
	b.run(len(rows)*s.KVHeads, work, t)
	t.dst, t.q, t.rows = nil, nil, nil
}

// Run computes the items [lo, hi): row r's query heads on key/value head
// h for item r·KVHeads+h.
func (t *attentionTask) Run(lo, hi, worker int) {
	s := t.s
	group := s.Heads / s.KVHeads
	kStride, vStride := s.KVHeads*s.HeadDim, s.KVHeads*s.ValueDim
	scratch := t.b.attnScratch[worker]
	for item := lo; item < hi; item++ {
		r, kvh := item/s.KVHeads, item%s.KVHeads
		row := t.rows[r]
		h0 := kvh * group // first query head of the group
		out := t.dst[(r*s.Heads+h0)*s.ValueDim:][:group*s.ValueDim]
		q := t.q[(r*s.Heads+h0)*s.HeadDim:][:group*s.HeadDim]
		scores := scratch[:group*row.Len]
		var err error
		if row.KV.K16 != nil {
			qh := scratch[group*row.Len:][:len(q)]
			copy(qh, q) // rounded in place
			err = kernels.AttendHeadsF16(out, qh, group, row.KV.K16[kvh*s.HeadDim:], row.KV.V16[kvh*s.ValueDim:],
				row.Len, kStride, vStride, s.Scale, scores, true)
		} else {
			err = kernels.AttendHeadsF32(out, q, group, row.KV.K32[kvh*s.HeadDim:], row.KV.V32[kvh*s.ValueDim:],
				row.Len, kStride, vStride, s.Scale, scores)
		}
		if err != nil {
			panic(fmt.Sprintf("cpu backend: attention row %d key/value head %d: %v", r, kvh, err))
		}
	}
}

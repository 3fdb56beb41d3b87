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
// splitting the (row, head) pairs over the threads.
//
// With an F16 cache it rounds the query to F16 before its products with
// the cached keys, as ggml does when it multiplies an F16 cache, so that
// results stay close to llama.cpp's.
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
	// Each worker holds the scores of one head and a rounded query head.
	for w := range b.attnScratch {
		if len(b.attnScratch[w]) < longest+s.HeadDim {
			b.attnScratch[w] = make([]float32, 2*(longest+s.HeadDim))
		}
	}
	t := &b.att
	t.dst, t.q, t.rows, t.s = dst, q, rows, s
	b.run(len(rows)*s.Heads, work, t)
	t.dst, t.q, t.rows = nil, nil, nil
}

// Run computes the query heads [lo, hi), numbered row-major.
func (t *attentionTask) Run(lo, hi, worker int) {
	s := t.s
	group := s.Heads / s.KVHeads
	kStride, vStride := s.KVHeads*s.HeadDim, s.KVHeads*s.ValueDim
	scratch := t.b.attnScratch[worker]
	for item := lo; item < hi; item++ {
		r, h := item/s.Heads, item%s.Heads
		row := t.rows[r]
		kvh := h / group
		q := t.q[(r*s.Heads+h)*s.HeadDim:][:s.HeadDim]
		out := t.dst[(r*s.Heads+h)*s.ValueDim:][:s.ValueDim]
		p := scratch[:row.Len]
		if err := t.head(out, q, p, scratch[row.Len:row.Len+s.HeadDim], row.KV, kvh, kStride, vStride); err != nil {
			panic(fmt.Sprintf("cpu backend: attention row %d head %d: %v", r, h, err))
		}
	}
}

// head computes one query head over KV head kvh: p receives the softmax
// of the scaled query·key products and out their weighted sum of values.
// qh is scratch for the query rounded to F16.
//
// With an F16 cache the query and the softmax weights are rounded to F16
// before their products with the cache, as ggml does when it multiplies
// an F16 cache, so that results match llama.cpp's.
func (t *attentionTask) head(out, q, p, qh []float32, kv compute.KV, kvh, kStride, vStride int) error {
	s := t.s
	var err error
	if kv.K16 != nil {
		kernels.RoundF16(qh, q)
		err = kernels.DotRowsF16(p, qh, kv.K16[kvh*s.HeadDim:], kStride)
	} else {
		err = kernels.DotRowsF32(p, q, kv.K32[kvh*s.HeadDim:], kStride)
	}
	if err != nil {
		return err
	}
	kernels.Scale(p, s.Scale)
	kernels.Softmax(p)
	clear(out)
	if kv.V16 != nil {
		kernels.RoundF16(p, p)
		return kernels.AxpyRowsF16(out, p, kv.V16[kvh*s.ValueDim:], vStride)
	}
	return kernels.AxpyRowsF32(out, p, kv.V32[kvh*s.ValueDim:], vStride)
}

package cpu

import (
	"math"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/ggml"
)

// attentionJob computes items [lo, hi) of rows × heads.
type attentionJob struct {
	b    *Backend
	dst  []float32
	q    []float32
	rows []compute.AttentionRow
	s    compute.AttentionShape
}

// Attention computes causal attention over the cache for each query row,
// splitting the (row, head) pairs over the threads.
//
// With an F16 cache it rounds the query and the softmax weights to F16
// before their products with the cached keys and values, as ggml does when
// it multiplies an F16 cache, so that results match llama.cpp's.
func (b *Backend) Attention(dst, q []float32, rows []compute.AttentionRow, s compute.AttentionShape) {
	if len(rows) == 0 {
		return
	}
	work := 0
	for _, r := range rows {
		work += r.Len
	}
	work = work / len(rows) * (s.HeadDim + s.ValueDim)
	b.att.dst, b.att.q, b.att.rows, b.att.s = dst, q, rows, s
	b.pool.run(len(rows)*s.Heads, work, &b.att)
	b.att.dst, b.att.q, b.att.rows = nil, nil, nil
}

func (j *attentionJob) run(lo, hi, worker int) {
	s := j.s
	group := s.Heads / s.KVHeads
	kStride, vStride := s.KVHeads*s.HeadDim, s.KVHeads*s.ValueDim
	for item := lo; item < hi; item++ {
		r, h := item/s.Heads, item%s.Heads
		row := j.rows[r]
		kvh := h / group
		q := j.q[(r*s.Heads+h)*s.HeadDim:][:s.HeadDim]
		out := j.dst[(r*s.Heads+h)*s.ValueDim:][:s.ValueDim]
		scores := j.b.scores(worker, row.Len+s.HeadDim)
		p := scores[:row.Len]
		if row.KV.K16 != nil {
			qh := scores[row.Len : row.Len+s.HeadDim]
			for i, v := range q {
				qh[i] = ggml.F16ToF32(ggml.F32ToF16(v))
			}
			for t := range p {
				p[t] = dotF16(qh, row.KV.K16[t*kStride+kvh*s.HeadDim:][:s.HeadDim]) * s.Scale
			}
		} else {
			for t := range p {
				p[t] = dot(q, row.KV.K32[t*kStride+kvh*s.HeadDim:][:s.HeadDim]) * s.Scale
			}
		}
		softmax(p)
		clear(out)
		if row.KV.V16 != nil {
			for t, w := range p {
				axpyF16(out, ggml.F16ToF32(ggml.F32ToF16(w)), row.KV.V16[t*vStride+kvh*s.ValueDim:][:s.ValueDim])
			}
		} else {
			for t, w := range p {
				axpy(out, w, row.KV.V32[t*vStride+kvh*s.ValueDim:][:s.ValueDim])
			}
		}
	}
}

// scores returns worker w's scratch of at least n floats.
func (b *Backend) scores(w, n int) []float32 {
	if len(b.scoreScratch[w]) < n {
		b.scoreScratch[w] = make([]float32, max(n, 2*len(b.scoreScratch[w])))
	}
	return b.scoreScratch[w]
}

// softmax replaces x by its softmax; the normalizer is summed in float64,
// as ggml does.
func softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// dotF16 returns the inner product of a and the binary16 values b.
func dotF16(a []float32, b []uint16) float32 {
	b = b[:len(a)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += a[i] * ggml.F16ToF32(b[i])
		s1 += a[i+1] * ggml.F16ToF32(b[i+1])
	}
	for ; i < len(a); i++ {
		s0 += a[i] * ggml.F16ToF32(b[i])
	}
	return s0 + s1
}

// axpy adds a·x to y.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

// axpyF16 adds a·x to y for binary16 values x.
func axpyF16(y []float32, a float32, x []uint16) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * ggml.F16ToF32(x[i])
	}
}

package kernels

import (
	"math"

	"github.com/carryon/carryon/models/ggml"
)

// This file holds the portable implementations of every kernel. They
// are the fallback on machines without the vector paths and the
// reference that tests compare the vector paths against.

// kernelSet is one implementation of the hot loops. Row-range kernels
// take weight rows [lo, hi) and write out[r·rows+i].
type kernelSet struct {
	name string
	// dotF32 returns Σ a[i]·b[i] over len(a) values (len(b) ≥ len(a)).
	dotF32 func(a, b []float32) float32
	// dotF16 returns Σ w[i]·x[i] over len(x) values, w holding fp16.
	dotF16 func(w []byte, x []float32) float32
	// dotRowsF32 sets out[j] = dot(q, rows[j·stride:]) for j < len(out).
	dotRowsF32 func(out, q, rows []float32, stride int)
	// dotRowsF16 is dotRowsF32 over fp16 rows (stride in elements).
	dotRowsF16 func(out, q []float32, rows []byte, stride int)
	// axpyRowsF32 adds Σ_j p[j]·rows[j·stride:][:len(out)] to out.
	axpyRowsF32 func(out, p, rows []float32, stride int)
	// axpyRowsF16 is axpyRowsF32 over fp16 rows (stride in elements).
	axpyRowsF16 func(out, p []float32, rows []byte, stride int)
	// axpy sets y[i] += alpha·x[i] over len(y) values.
	axpy func(y []float32, alpha float32, x []float32)
	// scale sets x[i] *= alpha.
	scale func(x []float32, alpha float32)
	// mulScaled sets dst[i] = x[i]·s·w[i] over len(dst) values.
	mulScaled func(dst, x, w []float32, s float32)
	// swiglu sets dst[i] = silu(gate[i])·up[i] over len(dst) values.
	swiglu func(dst, gate, up []float32)
	// roundF16 sets dst[i] to src[i] rounded to half precision (ties to
	// even) over len(dst) values.
	roundF16 func(dst, src []float32)
	// expSub sets x[i] = exp(x[i]−m) and returns their sum.
	expSub func(x []float32, m float32) float32
	// maxF32 returns the largest of x (len(x) > 0).
	maxF32 func(x []float32) float32
	// mul is MatMul without argument checks.
	mul func(dst []float32, w *Matrix, a *Activations, lo, hi int)
	// prepQ8_0 quantizes one row into the actQ8_0 layout (bias factor k).
	prepQ8_0 func(dst []byte, x []float32, k int32)
	// prepQ8_K quantizes one row into the actQ8_K layout.
	prepQ8_K func(dst []byte, x []float32)
	// dotRowsCache is dotRowsF32 or dotRowsF16 by the cache's type.
	dotRowsCache func(out, q []float32, rows cacheRows, stride int)
	// axpyHeads sets out_j = Σ_p w[j·n+p]·row_p[:dv] for heads j < heads.
	axpyHeads func(out, w []float32, heads int, rows cacheRows, stride, n, dv int)
	// pack returns w's weights in a layout of this set's own for its
	// mul, or nil where the set reads the ggml layout (see PackMatrix).
	pack func(w *Matrix) []byte
}

var generic = kernelSet{
	name:        "generic",
	dotF32:      dotF32Generic,
	dotF16:      dotF16Generic,
	dotRowsF32:  dotRowsF32Generic,
	dotRowsF16:  dotRowsF16Generic,
	axpyRowsF32: axpyRowsF32Generic,
	axpyRowsF16: axpyRowsF16Generic,
	axpy:        axpyGeneric,
	scale:       scaleGeneric,
	mulScaled:   mulScaledGeneric,
	swiglu:      swigluGeneric,
	roundF16:    roundF16Generic,
	expSub:      expSubGeneric,
	maxF32:      maxF32Generic,
	mul:         mulGeneric,
	prepQ8_0:    prepareQ8_0Row,
	prepQ8_K:    prepareQ8_KRow,

	dotRowsCache: dotRowsCacheGeneric,
	axpyHeads:    axpyHeadsGeneric,
}

func dotF32Generic(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16Generic(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		s0 += f16ToF32(le16(w[2*i:])) * x[i]
		s1 += f16ToF32(le16(w[2*i+2:])) * x[i+1]
	}
	for ; i < len(x); i++ {
		s0 += f16ToF32(le16(w[2*i:])) * x[i]
	}
	return s0 + s1
}

func dotRowsF32Generic(out, q, rows []float32, stride int) {
	for j := range out {
		out[j] = dotF32Generic(q, rows[j*stride:])
	}
}

func dotRowsF16Generic(out, q []float32, rows []byte, stride int) {
	for j := range out {
		out[j] = dotF16Generic(rows[2*j*stride:], q)
	}
}

func axpyRowsF32Generic(out, p, rows []float32, stride int) {
	for j, pj := range p {
		axpyGeneric(out, pj, rows[j*stride:])
	}
}

func axpyRowsF16Generic(out, p []float32, rows []byte, stride int) {
	for j, pj := range p {
		r := rows[2*j*stride:]
		r = r[:2*len(out)]
		for i := range out {
			out[i] += pj * f16ToF32(le16(r[2*i:]))
		}
	}
}

func axpyGeneric(y []float32, alpha float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += alpha * x[i]
	}
}

func scaleGeneric(x []float32, alpha float32) {
	for i := range x {
		x[i] *= alpha
	}
}

func mulScaledGeneric(dst, x, w []float32, s float32) {
	x, w = x[:len(dst)], w[:len(dst)]
	for i := range dst {
		dst[i] = x[i] * s * w[i]
	}
}

func swigluGeneric(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	for i := range dst {
		g := float64(gate[i])
		dst[i] = float32(g/(1+math.Exp(-g))) * up[i]
	}
}

func roundF16Generic(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = f16ToF32(f32ToF16(v))
	}
}

func expSubGeneric(x []float32, m float32) float32 {
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += e
	}
	return sum
}

func maxF32Generic(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

func mulGeneric(dst []float32, w *Matrix, a *Activations, lo, hi int) {
	rows := w.rows
	for i := lo; i < hi; i++ {
		wr := w.data[i*w.rowBytes : (i+1)*w.rowBytes]
		for r := 0; r < a.m; r++ {
			var v float32
			switch a.kind {
			case actF32:
				x := a.f32[r*a.cols : (r+1)*a.cols]
				if w.typ == ggml.TypeF16 {
					v = dotF16Generic(wr, x)
				} else {
					v = dotF32Bytes(wr, x)
				}
			case actQ8_0:
				v = dotQ8_0Layout(w.typ, wr, a.q[r*a.stride:(r+1)*a.stride], a.cols/qk8_0)
			default:
				v = dotQ8_KLayout(w.typ, wr, a.q[r*a.stride:(r+1)*a.stride], a.cols/qkK)
			}
			dst[r*rows+i] = v
		}
	}
}

// dotQ8_0Layout is the portable product of one Q8_0, Q4_0 or Q5_0 weight
// row with one activation row in the actQ8_0 layout.
func dotQ8_0Layout(t ggml.Type, w, x []byte, nb int) float32 {
	var sum float32
	for b := 0; b < nb; b++ {
		p := x[b/2*q8PairBytes:]
		h := 32 * (b % 2)
		qs, dx := p[h:h+32], le32f(p[128+h:])
		var s int32
		var dw float32
		switch t {
		case ggml.TypeQ8_0:
			wb := w[b*blockQ8_0:]
			s, dw = dotBlockQ8_0(wb[2:], qs), f16ToF32(le16(wb))
		case ggml.TypeQ4_0:
			wb := w[b*blockQ4_0:]
			s, dw = dotBlockQ4_0(wb[2:], qs), f16ToF32(le16(wb))
		default:
			wb := w[b*blockQ5_0:]
			s, dw = dotBlockQ5_0(wb[2:], qs), f16ToF32(le16(wb))
		}
		sum += float32(s) * (dw * dx)
	}
	return sum
}

// dotQ8_KLayout is the portable product of one Q4_K, Q5_K or Q6_K weight
// row with one activation row in the actQ8_K layout.
func dotQ8_KLayout(t ggml.Type, w, x []byte, nb int) float32 {
	var sum float32
	var bsums [16]int16
	for b := 0; b < nb; b++ {
		xb := x[b*q8KBytes : (b+1)*q8KBytes]
		dx := le32f(xb[q8KD:])
		for g := range bsums {
			bsums[g] = int16(le16(xb[q8KBsums+2*g:]))
		}
		switch t {
		case ggml.TypeQ4_K:
			wb := w[b*blockQ4_K:]
			s, m := dotBlockQ4_K(wb, xb, &bsums)
			sum += f16ToF32(le16(wb))*dx*float32(s) - f16ToF32(le16(wb[2:]))*dx*float32(m)
		case ggml.TypeQ5_K:
			wb := w[b*blockQ5_K:]
			s, m := dotBlockQ5_K(wb, xb, &bsums)
			sum += f16ToF32(le16(wb))*dx*float32(s) - f16ToF32(le16(wb[2:]))*dx*float32(m)
		default:
			wb := w[b*blockQ6_K:]
			sum += f16ToF32(le16(wb[208:])) * dx * float32(dotBlockQ6_K(wb, xb))
		}
	}
	return sum
}

// dotF32Bytes returns the dot product of a row of little-endian float32
// weights with x.
func dotF32Bytes(w []byte, x []float32) float32 {
	if f := bytesF32(w); f != nil {
		return dotF32Generic(x, f)
	}
	w = w[:4*len(x)]
	var s float32
	for i := range x {
		s += le32f(w[4*i:]) * x[i]
	}
	return s
}

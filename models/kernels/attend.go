package kernels

import "fmt"

// AttendHeadsF32 computes the attention of heads query heads that share
// one key/value head (grouped-query attention) over n cached positions.
// The query heads lie in q, d = len(q)/heads values each; the outputs go to
// out, dv = len(out)/heads values each. For head j:
// s_jp = scale·dot(q_j, K_p), w_j = softmax(s_j), out_j = Σ_p w_jp·V_p, where
// K_p = keys[p·kstride:][:d] and V_p = values[p·vstride:][:dv]. scores must
// hold heads·n values and receives the weights, head j's at scores[j·n:].
// Each cached row is read once per query head for the products with the
// keys and once for all heads for the sum of values.
func AttendHeadsF32(out, q []float32, heads int, keys, values []float32, n, kstride, vstride int, scale float32, scores []float32) error {
	d, dv, err := checkHeads("attend heads F32", out, q, heads, len(keys), len(values), n, kstride, vstride, scores)
	if err != nil {
		return err
	}
	attendHeads(out, q, heads, d, dv, cacheRows{f32: keys}, cacheRows{f32: values}, n, kstride, vstride, scale, scores, false)
	return nil
}

// AttendHeadsF16 is AttendHeadsF32 over a cache of IEEE half-precision
// values (bit patterns, as compute.KV holds them). With round set, the
// queries (in place, in q) and the softmax weights are rounded to half
// precision before their products with the cache, as ggml does when it
// multiplies an F16 cache.
func AttendHeadsF16(out, q []float32, heads int, keys, values []uint16, n, kstride, vstride int, scale float32, scores []float32, round bool) error {
	d, dv, err := checkHeads("attend heads F16", out, q, heads, len(keys), len(values), n, kstride, vstride, scores)
	if err != nil {
		return err
	}
	attendHeads(out, q, heads, d, dv, cacheRows{half: halfBytes(keys)}, cacheRows{half: halfBytes(values)}, n, kstride, vstride, scale, scores, round)
	return nil
}

func checkHeads(name string, out, q []float32, heads, nk, nv, n, kstride, vstride int, scores []float32) (d, dv int, err error) {
	if heads <= 0 || len(q)%heads != 0 || len(out)%heads != 0 || len(q) == 0 || len(out) == 0 {
		return 0, 0, fmt.Errorf("%s: %d heads with %d query and %d output values", name, heads, len(q), len(out))
	}
	d, dv = len(q)/heads, len(out)/heads
	switch {
	case n <= 0 || len(scores) < heads*n:
		return 0, 0, fmt.Errorf("%s: %d positions of %d heads, scores hold %d", name, n, heads, len(scores))
	case kstride < d || vstride < dv:
		return 0, 0, fmt.Errorf("%s: row strides %d, %d below head sizes %d, %d", name, kstride, vstride, d, dv)
	case nk < (n-1)*kstride+d || nv < (n-1)*vstride+dv:
		return 0, 0, fmt.Errorf("%s: %d positions need %d key and %d value values, have %d and %d",
			name, n, (n-1)*kstride+d, (n-1)*vstride+dv, nk, nv)
	}
	return d, dv, nil
}

// cacheRows is one side of a KV cache: float32 values, or the bytes of
// fp16 values.
type cacheRows struct {
	f32  []float32
	half []byte
}

// attendHeads is AttendHeadsF32/F16 after the checks.
func attendHeads(out, q []float32, heads, d, dv int, keys, values cacheRows, n, kstride, vstride int, scale float32, scores []float32, round bool) {
	for j := range heads {
		qj, s := q[j*d:(j+1)*d], scores[j*n:(j+1)*n]
		if round {
			active.roundF16(qj, qj)
		}
		active.dotRowsCache(s, qj, keys, kstride)
		active.scale(s, scale)
		Softmax(s)
		if round {
			active.roundF16(s, s)
		}
	}
	active.axpyHeads(out, scores[:heads*n], heads, values, vstride, n, dv)
}

// dotRowsCacheGeneric is dotRowsF32 or dotRowsF16 by the cache type.
func dotRowsCacheGeneric(out, q []float32, rows cacheRows, stride int) {
	if rows.half != nil {
		dotRowsF16Generic(out, q, rows.half, stride)
		return
	}
	dotRowsF32Generic(out, q, rows.f32, stride)
}

// axpyHeadsGeneric sets out_j = Σ_p w_jp·V_p for each head, one head at a
// time.
func axpyHeadsGeneric(out, w []float32, heads int, rows cacheRows, stride, n, dv int) {
	for j := range heads {
		o := out[j*dv : (j+1)*dv]
		clear(o)
		if rows.half != nil {
			axpyRowsF16Generic(o, w[j*n:(j+1)*n], rows.half, stride)
		} else {
			axpyRowsF32Generic(o, w[j*n:(j+1)*n], rows.f32, stride)
		}
	}
}

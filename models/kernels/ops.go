package kernels

import (
	"fmt"
	"math"
)

// DotF32 returns Σ a[i]·b[i] over the first min(len(a), len(b)) values.
func DotF32(a, b []float32) float32 {
	n := min(len(a), len(b))
	return active.dotF32(a[:n], b[:n])
}

// DotF16F32 returns Σ w[i]·x[i] where w holds little-endian fp16 values,
// over the first min(len(w)/2, len(x)) values.
func DotF16F32(w []byte, x []float32) float32 {
	n := min(len(w)/2, len(x))
	return active.dotF16(w[:2*n], x[:n])
}

// Axpy sets y[i] += alpha·x[i] for the first min(len(x), len(y)) values.
func Axpy(y []float32, alpha float32, x []float32) {
	n := min(len(x), len(y))
	active.axpy(y[:n], alpha, x[:n])
}

// Scale sets x[i] *= alpha for every value of x.
func Scale(x []float32, alpha float32) {
	active.scale(x, alpha)
}

// RMSNorm sets dst[i] = x[i]/sqrt(mean(x²)+eps)·w[i] over the first
// n = min(len(dst), len(x), len(w)) values, the mean taken over those n.
// dst may be x.
func RMSNorm(dst, x, w []float32, eps float32) {
	n := min(len(dst), len(x), len(w))
	if n == 0 {
		return
	}
	x = x[:n]
	ss := active.dotF32(x, x)
	s := float32(1 / math.Sqrt(float64(ss/float32(n)+eps)))
	active.mulScaled(dst[:n], x, w[:n], s)
}

// RoundF16 sets dst[i] to src[i] rounded to the nearest IEEE
// half-precision value (ties to even), over the first min(len(dst),
// len(src)) values; dst may be src. It is what storing to and loading from
// an F16 cache does to a value.
func RoundF16(dst, src []float32) {
	n := min(len(dst), len(src))
	active.roundF16(dst[:n], src[:n])
}

// Softmax replaces x by softmax(x) = exp(x[i]−max)/Σ exp(x[j]−max). An
// empty x is left alone.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := active.maxF32(x)
	sum := active.expSub(x, m)
	active.scale(x, 1/sum)
}

// SwiGLU sets dst[i] = silu(gate[i])·up[i], silu(g) = g/(1+exp(−g)), over
// the first min(len(dst), len(gate), len(up)) values. dst may alias gate
// or up.
func SwiGLU(dst, gate, up []float32) {
	n := min(len(dst), len(gate), len(up))
	active.swiglu(dst[:n], gate[:n], up[:n])
}

func checkAttend(name string, out, q []float32, kv, n, stride int, scores []float32) error {
	d := len(q)
	switch {
	case d == 0 || len(out) < d:
		return fmt.Errorf("%s: head size %d, output holds %d", name, d, len(out))
	case n <= 0 || len(scores) < n:
		return fmt.Errorf("%s: %d positions, scores hold %d", name, n, len(scores))
	case stride < d:
		return fmt.Errorf("%s: row stride %d below head size %d", name, stride, d)
	case kv < (n-1)*stride+d:
		return fmt.Errorf("%s: %d positions of stride %d need %d cache values, have %d", name, n, stride, (n-1)*stride+d, kv)
	}
	return nil
}

// AttendF32 computes one query head's attention over n cached positions:
// s_j = scale·dot(q, K_j), p = softmax(s), out = Σ_j p_j·V_j, where
// K_j = keys[j·stride : j·stride+len(q)] and V_j is the same slice of
// values. scores must hold n values and receives p. out[:len(q)] is
// overwritten.
func AttendF32(out, q, keys, values []float32, n, stride int, scale float32, scores []float32) error {
	if err := checkAttend("attend F32", out, q, min(len(keys), len(values)), n, stride, scores); err != nil {
		return err
	}
	d := len(q)
	s := scores[:n]
	active.dotRowsF32(s, q, keys, stride)
	active.scale(s, scale)
	Softmax(s)
	o := out[:d]
	clear(o)
	active.axpyRowsF32(o, s, values, stride)
	return nil
}

// AttendF16 is AttendF32 over a cache of IEEE half-precision values (bit
// patterns, as compute.KV holds them).
func AttendF16(out, q []float32, keys, values []uint16, n, stride int, scale float32, scores []float32) error {
	if err := checkAttend("attend F16", out, q, min(len(keys), len(values)), n, stride, scores); err != nil {
		return err
	}
	d := len(q)
	s := scores[:n]
	active.dotRowsF16(s, q, halfBytes(keys), stride)
	active.scale(s, scale)
	Softmax(s)
	o := out[:d]
	clear(o)
	active.axpyRowsF16(o, s, halfBytes(values), stride)
	return nil
}

// Implementation names the kernels in use on this machine: "avx512"
// (AVX-512 with VNNI), "avx2" (AVX2, FMA and F16C) or "generic" (portable
// Go, also chosen by the noasm build tag).
func Implementation() string { return active.name }

// checkRows validates a strided walk over n rows of d values.
func checkRows(name string, n, d, stride, have int) error {
	switch {
	case n == 0 || d == 0:
		return nil
	case stride < d:
		return fmt.Errorf("%s: row stride %d below row length %d", name, stride, d)
	case have < (n-1)*stride+d:
		return fmt.Errorf("%s: %d rows of stride %d need %d values, have %d", name, n, stride, (n-1)*stride+d, have)
	}
	return nil
}

// DotRowsF32 sets out[j] = dot(q, rows[j·stride : j·stride+len(q)]) for
// every j < len(out): the query·key products of attention.
func DotRowsF32(out, q, rows []float32, stride int) error {
	if err := checkRows("dot rows F32", len(out), len(q), stride, len(rows)); err != nil {
		return err
	}
	active.dotRowsF32(out, q, rows, stride)
	return nil
}

// DotRowsF16 is DotRowsF32 over rows of IEEE half-precision values (bit
// patterns, as compute.KV holds them).
func DotRowsF16(out, q []float32, rows []uint16, stride int) error {
	if err := checkRows("dot rows F16", len(out), len(q), stride, len(rows)); err != nil {
		return err
	}
	active.dotRowsF16(out, q, halfBytes(rows), stride)
	return nil
}

// AxpyRowsF32 adds Σ_j p[j]·rows[j·stride : j·stride+len(out)] to out over
// every j < len(p): the weighted sum of values of attention.
func AxpyRowsF32(out, p, rows []float32, stride int) error {
	if err := checkRows("axpy rows F32", len(p), len(out), stride, len(rows)); err != nil {
		return err
	}
	active.axpyRowsF32(out, p, rows, stride)
	return nil
}

// AxpyRowsF16 is AxpyRowsF32 over rows of IEEE half-precision values.
func AxpyRowsF16(out, p []float32, rows []uint16, stride int) error {
	if err := checkRows("axpy rows F16", len(p), len(out), stride, len(rows)); err != nil {
		return err
	}
	active.axpyRowsF16(out, p, halfBytes(rows), stride)
	return nil
}

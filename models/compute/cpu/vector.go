package cpu

import "math"

// RMSNorm normalizes each group of len(weight) elements of x and scales it
// by weight. The mean square is summed in float64, as ggml does.
func (b *Backend) RMSNorm(dst, x, weight []float32, eps float32) {
	n := len(weight)
	for off := 0; off+n <= len(x); off += n {
		rmsNorm(dst[off:off+n], x[off:off+n], weight, eps)
	}
}

func rmsNorm(dst, x, weight []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	mean := float32(sum / float64(len(x)))
	scale := float32(1 / math.Sqrt(float64(mean+eps)))
	dst = dst[:len(x)]
	weight = weight[:len(x)]
	for i, v := range x {
		dst[i] = v * scale * weight[i]
	}
}

// swiGLUJob computes dst = silu(gate) * up over elements [lo, hi).
type swiGLUJob struct {
	dst, gate, up []float32
}

// SwiGLU computes dst[i] = silu(gate[i]) * up[i].
func (b *Backend) SwiGLU(dst, gate, up []float32) {
	b.act.dst, b.act.gate, b.act.up = dst, gate, up[:len(gate)]
	b.pool.run(len(gate), 16, &b.act)
	b.act = swiGLUJob{}
}

func (j *swiGLUJob) run(lo, hi, _ int) {
	swiGLU(j.dst[lo:hi], j.gate[lo:hi], j.up[lo:hi])
}

func swiGLU(dst, gate, up []float32) {
	up = up[:len(gate)]
	dst = dst[:len(gate)]
	for i, g := range gate {
		dst[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

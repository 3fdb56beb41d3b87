package cpu

import "github.com/carryon/carryon/models/kernels"

// normTask normalizes groups [lo, hi) of RMSNorm's input.
type normTask struct {
	dst, x, weight []float32
	eps            float32
}

// RMSNorm normalizes each group of len(weight) elements of x and scales it
// by weight, the groups split over the threads when there are many.
func (b *Backend) RMSNorm(dst, x, weight []float32, eps float32) {
	n := len(weight)
	if n == 0 {
		return
	}
	t := &b.norm
	t.dst, t.x, t.weight, t.eps = dst, x, weight, eps
	groups := len(x) / n
	b.run(groups, 4*groups*n, t)
	t.dst, t.x, t.weight = nil, nil, nil
}

func (t *normTask) Run(lo, hi, _ int) {
	n := len(t.weight)
	for g := lo; g < hi; g++ {
		off := g * n
		kernels.RMSNorm(t.dst[off:off+n], t.x[off:off+n], t.weight, t.eps)
	}
}

// swiGLUTask computes dst = silu(gate) · up over blocks [lo, hi) of
// swiGLUBlock elements.
type swiGLUTask struct {
	dst, gate, up []float32
}

// swiGLUBlock is the unit in which SwiGLU's elements are handed to
// threads: whole cache lines, so that two threads never write the same
// one.
const swiGLUBlock = 256

// SwiGLU computes dst[i] = silu(gate[i]) · up[i].
func (b *Backend) SwiGLU(dst, gate, up []float32) {
	n := len(gate)
	t := &b.glu
	t.dst, t.gate, t.up = dst[:n], gate, up[:n]
	b.run((n+swiGLUBlock-1)/swiGLUBlock, 16*n, t)
	t.dst, t.gate, t.up = nil, nil, nil
}

func (t *swiGLUTask) Run(lo, hi, _ int) {
	a, z := lo*swiGLUBlock, min(hi*swiGLUBlock, len(t.gate))
	kernels.SwiGLU(t.dst[a:z], t.gate[a:z], t.up[a:z])
}

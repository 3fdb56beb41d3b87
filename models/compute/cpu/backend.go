package cpu

import (
	"fmt"
	"runtime"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/gguf"
)

func init() {
	compute.Register("cpu", func(o compute.Options) (compute.Backend, error) { return New(o) })
}

// Backend is the pure-Go compute.Backend. Create it with New; it must be
// closed to stop its worker goroutines.
type Backend struct {
	pool *pool

	// Per-worker scratch space, grown on demand and kept between calls.
	rowScratch   [][]float32
	scoreScratch [][]float32

	// The jobs of the parallel operations, reused call after call.
	mm  matMulJob
	att attentionJob
	act swiGLUJob
}

var _ compute.Backend = (*Backend)(nil)

// New returns a backend that computes with o.Threads goroutines
// (runtime.NumCPU() when 0).
func New(o compute.Options) (*Backend, error) {
	n := o.Threads
	if n < 0 {
		return nil, fmt.Errorf("cpu backend: %d threads", n)
	}
	if n == 0 {
		n = runtime.NumCPU()
	}
	b := &Backend{
		pool:         newPool(n),
		rowScratch:   make([][]float32, n),
		scoreScratch: make([][]float32, n),
	}
	b.mm.b, b.att.b = b, b
	return b, nil
}

// Name returns "cpu".
func (b *Backend) Name() string { return "cpu" }

// Threads returns the number of threads the backend computes with.
func (b *Backend) Threads() int { return b.pool.threads }

// Close stops the worker goroutines.
func (b *Backend) Close() error {
	if b.pool != nil {
		b.pool.close()
	}
	return nil
}

// LoadWeight wraps a two-dimensional tensor without copying it. Every type
// the ggml package dequantizes is supported: F32, F16, BF16, Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0 and Q2_K to Q6_K.
func (b *Backend) LoadWeight(t gguf.Tensor) (compute.Weight, error) {
	w, err := loadWeight(t)
	if err != nil {
		return nil, err
	}
	for i := range b.rowScratch {
		if len(b.rowScratch[i]) < w.cols {
			b.rowScratch[i] = make([]float32, w.cols)
		}
	}
	return w, nil
}

func asWeight(w compute.Weight) *weight {
	cw, ok := w.(*weight)
	if !ok {
		panic(fmt.Sprintf("cpu backend: weight of type %T comes from another backend", w))
	}
	return cw
}

// Row writes row i of w as float32s into dst.
func (b *Backend) Row(dst []float32, w compute.Weight, i int) {
	cw := asWeight(w)
	copy(dst[:cw.cols], cw.row(i, b.rowScratch[0]))
}

package cpu

import (
	"fmt"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/kernels"
)

func init() {
	compute.Register("cpu", func(o compute.Options) (compute.Backend, error) { return New(o) })
}

// Backend is the CPU compute.Backend. Create it with New; it must be
// closed to stop its worker goroutines.
type Backend struct {
	pool    *kernels.Pool
	threads int

	// Per-worker scratch space, grown on demand and kept between calls.
	rowScratch  [][]float32 // a dequantized weight row
	attnScratch [][]float32 // attention scores and a rounded query head

	// Inputs prepared for the kernels, one per weight type of a call.
	acts []preparedInput

	// The tasks of the parallel operations, reused call after call so
	// that dispatching one does not allocate.
	mm   mulTask
	att  attentionTask
	norm normTask
	glu  swiGLUTask
	rope ropeTask
}

var _ compute.Backend = (*Backend)(nil)

// New returns a backend that computes with o.Threads threads
// (kernels.DefaultThreads() when 0).
func New(o compute.Options) (*Backend, error) {
	n := o.Threads
	if n < 0 {
		return nil, fmt.Errorf("cpu backend: %d threads", n)
	}
	if n == 0 {
		n = kernels.DefaultThreads()
	}
	b := &Backend{
		pool:        kernels.NewPool(n),
		threads:     n,
		rowScratch:  make([][]float32, n),
		attnScratch: make([][]float32, n),
	}
	b.mm.b, b.att.b = b, b
	return b, nil
}

// Name returns "cpu".
func (b *Backend) Name() string { return "cpu" }

// Threads returns the number of threads the backend computes with.
func (b *Backend) Threads() int { return b.threads }

// Close stops the worker goroutines.
func (b *Backend) Close() error {
	b.pool.Close()
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
	cw.row(i, dst)
}

// parallelWork is the estimated cost, in multiply-adds or comparable
// vector steps, below which an operation runs on the calling goroutine
// alone: handing work to another thread and waiting for it costs a few
// microseconds, as much as this much arithmetic on one core.
const parallelWork = 1 << 16

// run calls t over [0, n) on the calling goroutine when the whole
// operation costs less than parallelWork, and over the pool otherwise.
func (b *Backend) run(n, work int, t kernels.Task) {
	if n <= 0 {
		return
	}
	if b.threads == 1 || work < parallelWork {
		t.Run(0, n, 0)
		return
	}
	b.pool.Run(n, t)
}

package kernels

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carryon/carryon/models/ggml"
)

func TestPoolCoversRange(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		if p.Threads() != threads {
			t.Fatalf("Threads() = %d, want %d", p.Threads(), threads)
		}
		for _, n := range []int{0, 1, 2, 7, 64, 1000, 100003} {
			hits := make([]int32, n)
			p.Run(n, TaskFunc(func(lo, hi, worker int) {
				if lo >= hi || lo < 0 || hi > n || worker < 0 || worker >= threads {
					t.Errorf("bad range [%d,%d) of %d on worker %d", lo, hi, n, worker)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			}))
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads=%d n=%d: index %d run %d times", threads, n, i, h)
				}
			}
		}
		p.Close()
	}
}

func TestPoolUsesWorkers(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	// Two ranges that each wait for the other can only finish if they run
	// at the same time.
	var arrived atomic.Int32
	done := make(chan struct{})
	go func() {
		p.Run(2, TaskFunc(func(lo, hi, _ int) {
			arrived.Add(1)
			for arrived.Load() < 2 {
				time.Sleep(time.Microsecond)
			}
		}))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("two ranges did not run concurrently")
	}
}

func TestPoolAfterIdleAndClose(t *testing.T) {
	p := NewPool(2)
	var sum atomic.Int64
	fn := TaskFunc(func(lo, hi, _ int) { sum.Add(int64(hi - lo)) })
	p.Run(10, fn)
	time.Sleep(5 * spinFor) // let the worker park
	p.Run(10, fn)
	p.Close()
	p.Close()
	p.Run(10, fn) // runs on the caller after Close
	if got := sum.Load(); got != 30 {
		t.Fatalf("ran %d items, want 30", got)
	}
}

func TestPoolMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	p := NewPool(3)
	defer p.Close()
	for _, tp := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_K} {
		rows, cols, m := 37, 512, 3
		var data []byte
		if tp == ggml.TypeF16 {
			data = randF16(r, rows*cols, 1)
		} else {
			rb, _ := tp.RowSize(cols)
			data = randBlocks(r, tp, rows*rb/tp.TypeSize())
		}
		w, err := NewMatrix(tp, rows, cols, data)
		if err != nil {
			t.Fatal(err)
		}
		var a Activations
		if err := a.Prepare(tp, randF32(r, m*cols, 1), m, cols); err != nil {
			t.Fatal(err)
		}
		want, got := make([]float32, m*rows), make([]float32, m*rows)
		if err := MatMul(want, w, &a, 0, rows); err != nil {
			t.Fatal(err)
		}
		if err := p.MatMul(got, w, &a); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: pool out[%d] = %g, single thread %g", tp, i, got[i], want[i])
			}
		}
		if err := p.MatMul(got[:1], w, &a); err == nil {
			t.Errorf("%s: pool MatMul accepted a short output", tp)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	p := NewPool(2)
	defer p.Close()
	rows, cols := 64, 512
	for _, tp := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ6_K} {
		var data []byte
		if tp == ggml.TypeF16 {
			data = randF16(r, rows*cols, 1)
		} else {
			rb, _ := tp.RowSize(cols)
			data = randBlocks(r, tp, rows*rb/tp.TypeSize())
		}
		w, _ := NewMatrix(tp, rows, cols, data)
		x := randF32(r, 5*cols, 1)
		dst := make([]float32, 5*rows)
		v := make([]float32, cols)
		var a Activations
		fn := TaskFunc(func(lo, hi, _ int) {})
		allocs := testing.AllocsPerRun(50, func() {
			for _, m := range []int{1, 5} {
				if err := a.Prepare(tp, x, m, cols); err != nil {
					t.Fatal(err)
				}
				if err := MatMul(dst, w, &a, 0, rows); err != nil {
					t.Fatal(err)
				}
				if err := p.MatMul(dst, w, &a); err != nil {
					t.Fatal(err)
				}
			}
			p.Run(100, fn)
			RMSNorm(v, x[:cols], x[cols:2*cols], 1e-5)
			Softmax(v)
			SwiGLU(v, x[:cols], x[cols:2*cols])
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", tp, allocs)
		}
	}
}

// TestPoolWaitsForSlowChunks: when a chunk runs far longer than the
// caller spins, the caller sleeps and is woken when the chunk is done,
// call after call.
func TestPoolWaitsForSlowChunks(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	for call := range 20 {
		var done atomic.Int32
		p.Run(8, TaskFunc(func(lo, hi, _ int) {
			if lo == 0 && call%2 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
			done.Add(int32(hi - lo))
		}))
		if n := done.Load(); n != 8 {
			t.Fatalf("call %d returned after %d of 8 items", call, n)
		}
	}
}

// TestPoolPrepare: preparing a batch over the pool gives exactly the
// activations of a serial Prepare, for every activation layout.
func TestPoolPrepare(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	r := rand.New(rand.NewPCG(17, 18))
	for _, tp := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ4_K} {
		const m, cols = 70, 1024
		x := randF32(r, m*cols, 1)
		var serial, pooled Activations
		if err := serial.Prepare(tp, x, m, cols); err != nil {
			t.Fatal(err)
		}
		if err := p.Prepare(&pooled, tp, x, m, cols); err != nil {
			t.Fatal(err)
		}
		if pooled.Rows() != m || pooled.Cols() != cols || pooled.WeightType() != tp {
			t.Fatalf("%s: prepared %d rows of %d for %s", tp, pooled.Rows(), pooled.Cols(), pooled.WeightType())
		}
		for row := range m {
			a, b := activationRow(&serial, row), activationRow(&pooled, row)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%s row %d [%d]: %g serial, %g pooled", tp, row, i, a[i], b[i])
				}
			}
		}
	}
	var a Activations
	if err := p.Prepare(&a, ggml.TypeQ8_0, make([]float32, 10), 1, 10); err == nil {
		t.Error("Prepare accepted a row that is not whole blocks")
	}
}

package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool splits data-parallel work over a fixed set of worker goroutines
// plus the calling goroutine. Workers spin briefly after each task, so a
// run of back-to-back calls (the operations of one decode step) costs no
// wake-ups, and park on a channel when idle longer. A call does not
// allocate.
//
// Calls to Run and MatMul are serialized; a task must not call back into
// its own Pool. Close releases the workers.
type Pool struct {
	threads int
	workers []*poolWorker

	mu sync.Mutex // serializes callers

	// state packs the task generation (high 32 bits), the number of
	// chunks (bits 16..31) and the next chunk to claim (bits 0..15).
	state atomic.Uint64
	done  atomic.Int32 // chunks finished in the current generation
	_     [48]byte

	// Task fields, written by the caller before it publishes a generation
	// and read by workers only after they claimed a chunk of it.
	fn    func(lo, hi int)
	n     int
	chunk int

	// MatMul operands and the chunk function that reads them, made once.
	mmDst []float32
	mmW   *Matrix
	mmA   *Activations
	mmFn  func(lo, hi int)

	closed atomic.Bool
	wg     sync.WaitGroup
}

type poolWorker struct {
	sleeping atomic.Int32
	wake     chan struct{}
	_        [48]byte
}

// spinFor is how long an idle worker polls for the next task before it
// parks. One decode step issues its operations microseconds apart, so
// this keeps workers hot through a step while leaving the CPU to others
// between steps.
const spinFor = 100 * time.Microsecond

// chunksPerThread sets the granularity of dynamic load balancing: more
// chunks absorb a slow or preempted thread, fewer cost less coordination.
const chunksPerThread = 4

// NewPool starts a pool that runs tasks on threads goroutines, the caller
// included. threads ≤ 0 means DefaultThreads().
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = DefaultThreads()
	}
	p := &Pool{threads: threads}
	p.mmFn = p.mulChunk
	p.workers = make([]*poolWorker, threads-1)
	for i := range p.workers {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers[i] = w
		p.wg.Add(1)
		go p.work(w)
	}
	return p
}

// DefaultThreads returns the number of threads the process may run Go code
// on at once (GOMAXPROCS, which follows the CPU affinity and quota).
func DefaultThreads() int { return runtime.GOMAXPROCS(0) }

// Threads returns the number of goroutines that run each task.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers. After Close, Run and MatMul still work but run
// on the calling goroutine alone.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	p.state.Add(1 << 32) // a new generation wakes spinning workers
	for _, w := range p.workers {
		if w.sleeping.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
	p.wg.Wait()
}

// Run calls fn over a partition of [0, n) into contiguous ranges, on the
// pool's threads concurrently, and returns when every range is done. fn
// must be safe to call concurrently on disjoint ranges. To avoid an
// allocation per call, pass a func value built once (not a new closure).
func (p *Pool) Run(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	p.run(n, fn)
	p.mu.Unlock()
}

// MatMul computes MatMul(dst, w, a, 0, w.Rows) with the weight rows split
// over the pool's threads.
func (p *Pool) MatMul(dst []float32, w *Matrix, a *Activations) error {
	if err := checkMul(dst, w, a, 0, w.Rows); err != nil {
		return err
	}
	p.mu.Lock()
	p.mmDst, p.mmW, p.mmA = dst, w, a
	p.run(w.Rows, p.mmFn)
	p.mmDst, p.mmW, p.mmA = nil, nil, nil
	p.mu.Unlock()
	return nil
}

func (p *Pool) mulChunk(lo, hi int) { active.mul(p.mmDst, p.mmW, p.mmA, lo, hi) }

// run executes one task; the caller holds p.mu.
func (p *Pool) run(n int, fn func(lo, hi int)) {
	if p.threads == 1 || n == 1 || p.closed.Load() {
		fn(0, n)
		return
	}
	chunks := min(n, p.threads*chunksPerThread, 1<<16-1)
	p.fn, p.n, p.chunk = fn, n, (n+chunks-1)/chunks
	chunks = (n + p.chunk - 1) / p.chunk
	p.done.Store(0)
	gen := p.state.Load()>>32 + 1
	p.state.Store(gen<<32 | uint64(chunks)<<16)
	for _, w := range p.workers {
		if w.sleeping.Load() != 0 && w.sleeping.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
	p.claim(gen)
	for spins := 0; p.done.Load() != int32(chunks); spins++ {
		if spins > 1000 {
			runtime.Gosched()
		} else {
			spinPause()
		}
	}
	p.fn = nil
}

// claim runs chunks of generation gen until none is left.
func (p *Pool) claim(gen uint64) {
	for {
		s := p.state.Load()
		if s>>32 != gen || s&0xffff >= s>>16&0xffff {
			return
		}
		if !p.state.CompareAndSwap(s, s+1) {
			continue
		}
		c := int(s & 0xffff)
		lo := c * p.chunk
		p.fn(lo, min(p.n, lo+p.chunk))
		p.done.Add(1)
	}
}

func (p *Pool) work(w *poolWorker) {
	defer p.wg.Done()
	// Start from generation 0, the pool's initial state, not from what
	// the state holds when this goroutine first runs: a worker scheduled
	// late must still see every later generation, Close's included.
	var seen uint64
	for {
		gen := p.state.Load() >> 32
		if gen == seen {
			start := time.Now()
			for spins := 0; gen == seen; spins++ {
				spinPause()
				if spins&63 == 63 && time.Since(start) > spinFor {
					// Park: announce it, then check once more so that a
					// task published meanwhile is not missed.
					w.sleeping.Store(1)
					if gen = p.state.Load() >> 32; gen != seen {
						if !w.sleeping.CompareAndSwap(1, 0) {
							<-w.wake // the publisher claimed us; take its token
						}
						break
					}
					<-w.wake
					start = time.Now()
				}
				gen = p.state.Load() >> 32
			}
		}
		seen = gen
		if p.closed.Load() {
			return
		}
		p.claim(gen)
	}
}

package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carryon/carryon/models/ggml"
)

// Pool splits data-parallel work over a fixed set of worker goroutines
// plus the calling goroutine. Workers spin briefly after each task, so a
// run of back-to-back calls (the operations of one decode step) costs no
// wake-ups, and park on a channel when idle longer. A call does not
// allocate.
//
// Calls to Run and MatMul are serialized; a task must not call back into
// its own Pool. Close releases the workers.
//
// Each call runs on Threads() workers numbered 0..Threads()-1; the caller
// is worker 0. Tasks can use the number to pick per-thread scratch space.
type Pool struct {
	threads int
	workers []*poolWorker

	mu sync.Mutex // serializes callers

	// state packs the task generation (high 32 bits), the number of
	// chunks (bits 16..31) and the next chunk to claim (bits 0..15).
	state atomic.Uint64
	done  atomic.Int32 // chunks finished in the current generation
	// waiting is 1 while the caller sleeps on finished for the last chunk.
	waiting  atomic.Int32
	finished chan struct{}
	_        [40]byte

	// Task fields, written by the caller before it publishes a generation
	// and read by workers only after they claimed a chunk of it.
	task  Task
	n     int
	chunk int

	mm   mulTask  // MatMul's task, kept here so that MatMul does not allocate
	prep prepTask // Prepare's

	closed atomic.Bool
	wg     sync.WaitGroup
}

type poolWorker struct {
	id       int
	sleeping atomic.Int32
	wake     chan struct{}
	_        [48]byte
}

// Task is work that a Pool splits into ranges of items.
type Task interface {
	// Run handles items [lo, hi) on the given worker. Calls for disjoint
	// ranges run concurrently; one worker runs one range at a time.
	Run(lo, hi, worker int)
}

// TaskFunc adapts a function to Task.
type TaskFunc func(lo, hi, worker int)

// Run calls f(lo, hi, worker).
func (f TaskFunc) Run(lo, hi, worker int) { f(lo, hi, worker) }

// mulTask is the Task of Pool.MatMul.
type mulTask struct {
	dst []float32
	w   *Matrix
	a   *Activations
}

// splitRows is the number of weight rows of an item of Pool.MatMul: whole
// panels of packed matrices (panelRows) and of the blocked product of
// float weights with large batches (gemm_amd64.go).
const splitRows = 32

// Run computes the rows of groups [lo, hi) of splitRows rows.
func (t *mulTask) Run(lo, hi, _ int) {
	active.mul(t.dst, t.w, t.a, lo*splitRows, min(hi*splitRows, t.w.rows))
}

// prepTask is the Task of Pool.Prepare.
type prepTask struct {
	a *Activations
	x []float32
}

func (t *prepTask) Run(lo, hi, _ int) { t.a.fill(t.x, lo, hi) }

// spinFor is how long an idle worker polls for the next task before it
// parks. One decode step issues its operations microseconds apart, so
// this keeps workers hot through a step while leaving the CPU to others
// between steps.
const spinFor = 100 * time.Microsecond

// callerSpins is how many pauses (about 50 ns each) the caller of a
// parallel task spins for the other threads' last chunks before it sleeps
// until they finish: long enough to cover the usual imbalance of a step's
// operations, short enough not to take a core from a descheduled worker on
// a busy machine.
const callerSpins = 1000

// chunksPerThread sets the granularity of dynamic load balancing: more
// chunks absorb a slow or preempted thread, fewer cost less coordination.
const chunksPerThread = 4

// NewPool starts a pool that runs tasks on threads goroutines, the caller
// included. threads ≤ 0 means DefaultThreads().
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = DefaultThreads()
	}
	p := &Pool{threads: threads, finished: make(chan struct{}, 1)}
	p.workers = make([]*poolWorker, threads-1)
	for i := range p.workers {
		w := &poolWorker{id: i + 1, wake: make(chan struct{}, 1)}
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

// Run calls t.Run over a partition of [0, n) into contiguous ranges, on
// the pool's threads concurrently, and returns when every range is done.
// Passing a pointer to a long-lived struct (or a TaskFunc made once) keeps
// the call free of allocations.
func (p *Pool) Run(n int, t Task) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	p.run(n, t)
	p.mu.Unlock()
}

// serialWork is the number of multiply-adds below which a product runs on
// the calling goroutine alone: splitting it would cost more in
// coordination (about a microsecond) than it saves.
const serialWork = 1 << 14

// MatMul computes MatMul(dst, w, a, 0, w.Rows()) with the weight rows split
// over the pool's threads.
func (p *Pool) MatMul(dst []float32, w *Matrix, a *Activations) error {
	if err := checkMul(dst, w, a, 0, w.rows); err != nil {
		return err
	}
	if w.rows*w.cols*a.m < serialWork {
		active.mul(dst, w, a, 0, w.rows)
		return nil
	}
	p.mu.Lock()
	p.mm = mulTask{dst, w, a}
	p.run((w.rows+splitRows-1)/splitRows, &p.mm)
	p.mm = mulTask{}
	p.mu.Unlock()
	return nil
}

// serialPrepare is the number of values below which Prepare quantizes on
// the calling goroutine alone.
const serialPrepare = 1 << 15

// Prepare is a.Prepare(t, x, m, cols) with the rows split over the pool's
// threads, which pays for large batches (a prompt's rows).
func (p *Pool) Prepare(a *Activations, t ggml.Type, x []float32, m, cols int) error {
	if err := a.reset(t, x, m, cols); err != nil {
		return err
	}
	if m == 1 || m*cols < serialPrepare {
		a.fill(x, 0, m)
		return nil
	}
	p.mu.Lock()
	p.prep = prepTask{a, x}
	p.run(m, &p.prep)
	p.prep = prepTask{}
	p.mu.Unlock()
	return nil
}

// run executes one task; the caller holds p.mu.
func (p *Pool) run(n int, t Task) {
	if p.threads == 1 || n == 1 || p.closed.Load() {
		t.Run(0, n, 0)
		return
	}
	chunks := min(n, p.threads*chunksPerThread, 1<<16-1)
	p.task, p.n, p.chunk = t, n, (n+chunks-1)/chunks
	chunks = (n + p.chunk - 1) / p.chunk
	p.done.Store(0)
	gen := p.state.Load()>>32 + 1
	p.state.Store(gen<<32 | uint64(chunks)<<16)
	for _, w := range p.workers {
		if w.sleeping.Load() != 0 && w.sleeping.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
	p.claim(gen, 0)
	for spins := 0; p.done.Load() != int32(chunks); spins++ {
		if spins < callerSpins {
			spinPause()
			continue
		}
		// A worker is late (descheduled, most likely): stop spinning so
		// that the CPU goes to it, and sleep until the last chunk is done.
		p.waiting.Store(1)
		if p.done.Load() == int32(chunks) {
			if !p.waiting.CompareAndSwap(1, 0) {
				<-p.finished // the finisher claimed the wake-up; take it
			}
			break
		}
		<-p.finished
	}
	p.task = nil
}

// claim runs chunks of generation gen on worker until none is left.
func (p *Pool) claim(gen uint64, worker int) {
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
		p.task.Run(lo, min(p.n, lo+p.chunk), worker)
		if p.done.Add(1) == int32(s>>16&0xffff) && p.waiting.Load() != 0 && p.waiting.CompareAndSwap(1, 0) {
			p.finished <- struct{}{}
		}
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
		p.claim(gen, w.id)
	}
}

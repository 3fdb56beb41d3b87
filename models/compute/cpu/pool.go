package cpu

import "sync"

// job is one parallel operation: run handles items [lo, hi) on worker w
// (0 is the calling goroutine). Jobs are stored in the Backend and passed by
// pointer, so dispatching one does not allocate.
type job interface {
	run(lo, hi, w int)
}

type task struct {
	j         job
	lo, hi, w int
}

// pool runs jobs on a fixed set of goroutines plus the caller.
type pool struct {
	threads int
	ch      []chan task
	wg      sync.WaitGroup
}

func newPool(threads int) *pool {
	p := &pool{threads: threads}
	for w := 1; w < threads; w++ {
		c := make(chan task)
		p.ch = append(p.ch, c)
		go func() {
			for t := range c {
				t.j.run(t.lo, t.hi, t.w)
				p.wg.Done()
			}
		}()
	}
	return p
}

// minWork is the number of multiply-adds below which an operation runs on
// the calling goroutine alone: waking another goroutine costs a few
// microseconds, as much as this much arithmetic.
const minWork = 1 << 16

// run splits n items evenly over the threads and waits for them. work is
// an estimate of the multiply-adds per item; small operations run serially.
func (p *pool) run(n, work int, j job) {
	parts := p.threads
	if total := n * work; total < minWork*parts {
		parts = max(1, total/minWork)
	}
	parts = min(parts, n)
	if parts <= 1 {
		if n > 0 {
			j.run(0, n, 0)
		}
		return
	}
	p.wg.Add(parts - 1)
	for w := 1; w < parts; w++ {
		p.ch[w-1] <- task{j, n * w / parts, n * (w + 1) / parts, w}
	}
	j.run(0, n/parts, 0)
	p.wg.Wait()
}

func (p *pool) close() {
	for _, c := range p.ch {
		close(c)
	}
	p.ch = nil
}

package kernels

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time the calling thread has used, and true.
// Benchmarks that lock their goroutine to its thread report throughput per
// CPU-second with it, which holds still on a machine that other work
// keeps busy (wall time then counts the time the thread waited).
func threadCPU() (time.Duration, bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

package main

import (
	"sync"
	"time"
	"unsafe"
)

// measureReadBandwidth returns the machine's memory read bandwidth in bytes
// per second with the given number of threads: each thread sums its share of
// a buffer much larger than the caches, and the best of a few passes counts.
func measureReadBandwidth(threads int, size int) float64 {
	if threads < 1 {
		threads = 1
	}
	words := make([]uint64, size/8)
	for i := range words {
		words[i] = uint64(i)
	}
	chunk := len(words) / threads
	best := 0.0
	var sink uint64
	var mu sync.Mutex
	for pass := 0; pass < 5; pass++ {
		var wg sync.WaitGroup
		start := time.Now()
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func(part []uint64) {
				defer wg.Done()
				s := sumWords(part)
				mu.Lock()
				sink += s
				mu.Unlock()
			}(words[t*chunk : (t+1)*chunk])
		}
		wg.Wait()
		bw := float64(chunk*threads*8) / time.Since(start).Seconds()
		if bw > best {
			best = bw
		}
	}
	_ = sink
	return best
}

// sumWords reads every word with eight independent accumulators so the loop
// is bound by memory, not by the add latency.
func sumWords(w []uint64) uint64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 uint64
	n := len(w) &^ 7
	for i := 0; i < n; i += 8 {
		p := (*[8]uint64)(unsafe.Pointer(&w[i]))
		s0 += p[0]
		s1 += p[1]
		s2 += p[2]
		s3 += p[3]
		s4 += p[4]
		s5 += p[5]
		s6 += p[6]
		s7 += p[7]
	}
	for _, x := range w[n:] {
		s0 += x
	}
	return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
}

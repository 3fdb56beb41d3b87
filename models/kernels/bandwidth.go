package kernels

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// bandwidthPasses is how many times ReadBandwidth reads its buffer; the
// fastest pass counts, as the one least disturbed by other work.
const bandwidthPasses = 5

// ReadBandwidth measures the machine's memory read bandwidth in bytes per
// second: threads goroutines each read their share of a size-byte buffer
// (which should be far larger than the caches) with 32-byte vector loads
// into independent accumulators, the way the matrix products stream
// weights. The best of a few passes is returned. It allocates and fills
// the buffer, so a call takes a few tenths of a second per GiB.
func ReadBandwidth(threads, size int) (float64, error) {
	if threads < 1 {
		return 0, fmt.Errorf("read bandwidth: %d threads", threads)
	}
	part := size / threads / 64 * 64 // bytes per thread, whole cache lines
	if part == 0 {
		return 0, fmt.Errorf("read bandwidth: %d bytes is too small for %d threads", size, threads)
	}
	buf := make([]byte, part*threads)
	for i := 0; i < len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], uint64(i)) // map every page
	}
	sinks := make([]uint64, threads*8) // one cache line per thread
	best := 0.0
	for range bandwidthPasses {
		var wg sync.WaitGroup
		start := time.Now()
		for t := range threads {
			wg.Add(1)
			go func(b []byte) {
				defer wg.Done()
				sinks[8*t] += readLines(b)
			}(buf[t*part : (t+1)*part])
		}
		wg.Wait()
		if el := time.Since(start).Seconds(); el > 0 {
			best = max(best, float64(len(buf))/el)
		}
	}
	return best, nil
}

// readLinesGeneric is readLines in portable Go: eight independent
// accumulators per 64-byte line.
func readLinesGeneric(b []byte) uint64 {
	var s [8]uint64
	for i := 0; i+64 <= len(b); i += 64 {
		l := b[i : i+64 : i+64]
		s[0] ^= binary.LittleEndian.Uint64(l[0:])
		s[1] ^= binary.LittleEndian.Uint64(l[8:])
		s[2] ^= binary.LittleEndian.Uint64(l[16:])
		s[3] ^= binary.LittleEndian.Uint64(l[24:])
		s[4] ^= binary.LittleEndian.Uint64(l[32:])
		s[5] ^= binary.LittleEndian.Uint64(l[40:])
		s[6] ^= binary.LittleEndian.Uint64(l[48:])
		s[7] ^= binary.LittleEndian.Uint64(l[56:])
	}
	return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7]
}

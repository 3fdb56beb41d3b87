package main

import "github.com/carryon/carryon/models/kernels"

// bandwidthBytes is the buffer the machine's read bandwidth is measured
// over: far larger than any cache.
const bandwidthBytes = 1 << 30

// measureReadBandwidth returns the machine's memory read bandwidth in bytes
// per second with the given number of threads, read with the same vector
// loads the matrix products use (kernels.ReadBandwidth).
func measureReadBandwidth(threads int) (float64, error) {
	return kernels.ReadBandwidth(max(threads, 1), bandwidthBytes)
}

//go:build !linux

package kernels

import "time"

// threadCPU reports that the CPU time of a thread is not measured here.
func threadCPU() (time.Duration, bool) { return 0, false }

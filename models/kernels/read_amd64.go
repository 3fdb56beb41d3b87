//go:build amd64 && !noasm

package kernels

import "unsafe"

//go:noescape
func readLines2(p *byte, lines int) uint64

// readLines reads b (a whole number of 64-byte lines) with vector loads
// when the machine has AVX2, and returns a value that depends on every
// byte.
func readLines(b []byte) uint64 {
	if len(b) < 64 {
		return 0
	}
	if !hasAVX2 {
		return readLinesGeneric(b)
	}
	return readLines2((*byte)(unsafe.Pointer(&b[0])), len(b)/64)
}

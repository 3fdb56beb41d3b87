//go:build !amd64 || noasm

package kernels

// readLines reads b (a whole number of 64-byte lines) and returns a value
// that depends on every byte.
func readLines(b []byte) uint64 { return readLinesGeneric(b) }

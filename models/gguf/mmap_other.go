//go:build !unix

package gguf

// mapFile reads the whole file where mmap is not available.
func mapFile(path string) ([]byte, func() error, error) { return readWhole(path) }

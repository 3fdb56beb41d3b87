// Package gguf reads and writes GGUF files, the container of ggml models:
// typed metadata key/value pairs, tensor descriptions and aligned tensor
// data. Files are memory-mapped and tensors are zero-copy views into the
// mapping. Every size and offset in a file is checked before it is used, so
// a damaged or hostile file yields an error, never a panic or a huge
// allocation.
package gguf

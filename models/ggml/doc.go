// Package ggml holds the tensor storage formats that GGUF files use: the
// type table (block sizes and byte sizes), half-precision conversions, and
// the dequantization and quantization formulas of the block-quantized types.
// It matches ggml's reference C code bit for bit.
package ggml

// Package kernels holds the CPU math of base-model inference: products of
// weight matrices stored in ggml formats with batches of activations, the
// activation quantizers those products need, vector helpers, the pieces of
// attention over an F32 or F16 KV cache, a low-overhead worker pool and a
// memory read-bandwidth probe.
//
// # Products
//
// A Matrix is a checked view of a GGUF weight tensor (F32, F16, Q8_0, Q4_0,
// Q5_0, Q4_K, Q5_K or Q6_K), read in place. Activations holds m rows of
// input prepared for one weight type: copied for F32 and F16 weights,
// quantized as ggml does for the others (Q8_0 for the 32-element block
// types, Q8_K for the k-quants), in an internal layout that suits the
// vector kernels. One prepared input serves every weight of its type (the
// query, key and value projections of a layer, say). MatMul multiplies
// weight rows [lo, hi) with every activation row, reading each weight row
// once per group of activation rows, so a batch costs little more memory
// traffic than one row; Pool.MatMul splits the rows over threads and
// Pool.Prepare quantizes a large batch on every thread. A typical step:
//
//	var a kernels.Activations // reused across calls: no allocations
//	pool.Prepare(&a, w.Type(), x, m, w.Cols())
//	pool.MatMul(dst, w, &a) // dst[r*w.Rows()+i] = dot(row i of w, row r of x)
//
// F16 and F32 products of 16 or more activation rows (a prompt) are bound
// by arithmetic rather than memory; the vector kernels then convert each
// block of 32 (AVX2: 16) weight rows to float32 once, transposed so that
// vector lanes are output rows, and multiply it with groups of 12 (6)
// activation rows in a register tile of broadcast FMAs.
//
// PackMatrix is NewMatrix for weights that are multiplied many times: where
// the kernels in use have a layout of their own for the type, it copies the
// weights into it. With AVX-512 VNNI, Q8_0 and Q4_K weights are packed into
// panels of 16 rows whose vector lanes are output rows, so that one
// VPDPBUSD with broadcast activations advances 16 dot products and the
// block scales are applied once per 16 rows; products of one row then run
// four times faster than over the ggml layout, which takes them from
// compute-bound to memory-bound. With packed weights a row's result does
// not depend on the batch it is computed in.
//
// The Dot* functions compute single dot products over ggml's own block
// formats (QuantizeQ8_0 and QuantizeQ8_K produce ggml's reference bytes);
// they are the portable reference, not the fast path.
//
// # Exactness
//
// Quantized products follow ggml: per block, an exact integer sum of the
// weight quants times the activation quants, scaled by the blocks' fp16 or
// float32 scales. The vector kernels reproduce those integer sums exactly
// and differ from the portable code only in the order of float32
// additions. Activation quantization is bit-identical to ggml's reference
// quantizers, and RoundF16 to the hardware's half-precision rounding.
//
// # Implementations
//
// Every kernel has a portable Go implementation, the reference that the
// tests compare the vector versions against. On amd64 the package chooses
// at init, from the CPU's features, AVX-512 with VNNI, else AVX2 with FMA
// and F16C, else the portable code; the build tag noasm forces the
// portable code. Implementation reports the choice.
//
// The package holds no mutable global state beyond that choice, and its
// hot paths do not allocate.
package kernels

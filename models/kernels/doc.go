// Package kernels holds the CPU math of base-model inference: dot products
// and matrix products over weights stored in ggml formats (F32, F16, Q8_0,
// Q4_0, Q5_0, Q4_K, Q5_K, Q6_K), the activation quantizers those products
// need (Q8_0 and Q8_K, bit-exact with ggml's reference code), vector
// helpers (RMSNorm, Softmax, SwiGLU, Axpy, Scale), single-head attention
// over an F32 or F16 KV cache, and a low-overhead worker pool that splits
// products over threads.
//
// Every kernel has a portable Go implementation, which is the reference
// that the tests compare the fast versions against. On amd64 the package
// chooses at run time between AVX-512 (with VNNI), AVX2+FMA+F16C and the
// portable code, from the CPU's features; the build tag noasm forces the
// portable code.
//
// The package is a leaf of pure functions: it holds no mutable global
// state beyond the kernel table chosen at init, and its hot paths do not
// allocate.
package kernels

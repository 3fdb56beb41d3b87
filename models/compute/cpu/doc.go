// Package cpu is the CPU compute backend: every operation of
// compute.Backend on the vector kernels of the kernels package, spread over
// one kernels.Pool of worker goroutines. It registers itself as "cpu".
//
// Weights stay in their storage type and are read in place from the model
// file's mapping. Types the kernels multiply (F32, F16, Q8_0, Q4_0, Q5_0,
// Q4_K, Q5_K, Q6_K) become kernels.Matrix views: a product prepares its
// input once per weight type (quantized to Q8_0 or Q8_K as ggml does) and
// reads each weight row once for every activation row of the batch. Other
// types (BF16, Q4_1, Q5_1, Q2_K, Q3_K) are converted one row at a time into
// per-thread scratch with the ggml package's dequantizers and dotted with
// each activation row.
//
// Operations too small to repay waking another thread (those of a tiny
// model, or a single decoded row's norms) run on the calling goroutine;
// larger ones are split over the pool. Steady-state calls do not allocate:
// tasks and scratch space live in the Backend and grow only when a larger
// batch or a longer sequence first needs them.
package cpu

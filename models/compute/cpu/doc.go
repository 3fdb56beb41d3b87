// Package cpu is the portable compute backend: every operation of
// compute.Backend in plain Go, spread over a fixed set of worker goroutines.
// It registers itself as "cpu".
//
// Weights stay in their storage type and are read in place from the model
// file's mapping. A matrix product walks the weight one row at a time:
// F32 rows are used directly, other types are converted into a per-thread
// scratch row with the ggml package's dequantizers, and each row is then
// dotted with every activation row, so a batch reads the weights once.
//
// Each operation has one inner loop (dot, axpy, the RoPE rotation, the
// softmax), kept in its own small function, so that faster kernels can
// replace them one at a time.
package cpu

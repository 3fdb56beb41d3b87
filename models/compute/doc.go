// Package compute is the seam between the base-model forward pass and the
// hardware that runs its heavy operations. A Backend holds weight matrices
// in their storage type (quantized weights stay quantized) and performs the
// operations a decoder layer needs: matrix products, RMS normalization,
// rotary position embedding, the SwiGLU activation, embedding-row lookup and
// attention over a sequence's key/value cache.
//
// Backends register themselves by name with Register in an init function
// (the pure-Go "cpu" backend lives in the cpu subpackage); New opens one.
// Model code depends only on this package, so a new backend (a GPU one, for
// instance) is added without touching it.
//
// Activations cross the seam as host float32 slices, row-major: a batch of
// n rows of width d is a []float32 of n*d elements. The key/value cache is
// host memory owned by the caller and passed to Attention as a KV view; a
// device backend would keep its own copy of it.
package compute

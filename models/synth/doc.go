// Package synth writes GGUF models with random weights in the tensor
// layout llama.cpp uses, for tests and benchmarks that need a model of a
// given shape and weight type but not a trained one.
//
// Weights follow one recipe: matrices N(0, 0.02²), normalization weights
// 1 + N(0, 0.01²), qwen2 attention biases N(0, 0.02²), an untied
// output.weight, and one-dimensional tensors stored as F32. Each tensor's
// values come from its own generator, seeded by the Spec's Seed and the
// tensor's name, so files of different weight types written from the same
// Spec hold the same weights before quantization. Tensors are generated and
// written a block of rows at a time, so large models are never held in
// memory.
package synth

// Package carryon implements carry-on heads (GPT Carry-On): small causal
// transformers that read a frozen base model's final-layer hidden states and
// return a correction to them.
//
// For each token t a head reads x_t, the base model's final-norm hidden state
// (the input of its LM head), optionally concatenated with the residual
// streams of tapped layers. A bridge σ compresses it (identity, a per-row
// int8 quantize/dequantize round trip, or a linear projection), an input
// projection maps it to the head's width r, 1–4 pre-norm transformer blocks
// (causal attention with rotary positions over the head's own key/value cache
// of the sequence, and a SwiGLU MLP) transform it, and two projections of the
// final-norm result give Δx_t ∈ R^d and a gate g_t = sigmoid(·) ∈ (0,1)^d.
// The head returns α·g_t⊙Δx_t; the caller adds it to x_t and applies the
// base's LM head. With α = 0 the result is exactly zero.
//
// Matrices are kept and multiplied in F16 (the default) or F32; vectors and
// activations are F32. A Forward over many distinct heads is bound by reading
// their weights, so F16 halves its cost.
//
// A head lives in a directory: config.json (Config) and weights.safetensors.
// Its version is the SHA-256 of both files' contents (Version). A Set holds
// many heads and runs rows of different heads and sequences in one Forward
// call, in parallel over sequences, keeping each sequence's key/value cache
// until Release.
package carryon

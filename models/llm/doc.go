// Package llm runs the base language models of carryon: decoder-only
// transformers stored as GGUF files (the llama, qwen2 and qwen3
// architectures, with grouped-query attention, rotary position embeddings
// and SwiGLU feed-forward layers).
//
// Load maps a file and keeps its weights in their stored types behind a
// compute.Backend. A Cache holds the keys and values of many sequences. The
// forward pass is modelled on llama.cpp's llama_batch: a Batch lists rows
// (a token, its sequence and position, and which outputs it wants), so one
// Forward call can prefill whole prompts and advance several sequences by
// one token together. For the rows that ask, Forward returns the logits,
// the final-norm hidden state (the input of the LM head) and the residual
// stream after chosen layers; Model.Logits applies the LM head to hidden
// states modified elsewhere.
//
// Architectures register by name (Register); this package registers the
// ones it knows in arch.go.
package llm

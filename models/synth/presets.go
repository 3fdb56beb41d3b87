package synth

import "github.com/carryon/carryon/models/ggml"

// Bench360M returns the bench-llama-360m shape: llama, vocab 32000 (the
// llama-spm vocabulary; set TokenizerFrom to use it), d=960, 32 layers,
// 15 heads, 5 key/value heads, FFN 2560, context 2048, RMS eps 1e-5, rope
// base 1e4, with weights of type wt (F16 or Q8_0; 960 is not a multiple of
// the k-quant block, see Bench360MQ4K).
func Bench360M(wt ggml.Type) Spec {
	return Spec{Name: "bench-llama-360m", Arch: "llama", Vocab: 32000, Dim: 960, Layers: 32, Heads: 15, KVHeads: 5,
		FFN: 2560, Context: 2048, RopeBase: 1e4, Eps: 1e-5, WeightType: wt, Seed: 360}
}

// Bench500M returns the bench-qwen2-500m shape: qwen2, vocab 50257 (the
// gpt-2 vocabulary; set TokenizerFrom to use it), d=896, 24 layers, 14
// heads, 2 key/value heads, FFN 4864, context 4096, RMS eps 1e-6, rope
// base 1e6, with weights of type wt (F16 or Q8_0; see Bench500MQ4K).
func Bench500M(wt ggml.Type) Spec {
	return Spec{Name: "bench-qwen2-500m", Arch: "qwen2", Vocab: 50257, Dim: 896, Layers: 24, Heads: 14, KVHeads: 2,
		FFN: 4864, Context: 4096, RopeBase: 1e6, Eps: 1e-6, WeightType: wt, Seed: 500}
}

// Bench360MQ4K is Bench360M widened to d=1024 (16 heads of 64, 4
// key/value heads) so that every row is a whole number of Q4_K blocks,
// with Q4_K weights.
func Bench360MQ4K() Spec {
	s := Bench360M(ggml.TypeQ4_K)
	s.Name, s.Dim, s.Heads, s.KVHeads = "bench-llama-360m-d1024", 1024, 16, 4
	return s
}

// Bench500MQ4K is Bench500M widened to d=1024 (16 heads of 64, 2
// key/value heads), with Q4_K weights.
func Bench500MQ4K() Spec {
	s := Bench500M(ggml.TypeQ4_K)
	s.Name, s.Dim, s.Heads = "bench-qwen2-500m-d1024", 1024, 16
	return s
}

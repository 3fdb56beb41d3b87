package llm

import (
	"context"
	"fmt"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/synth"
)

// BenchmarkDecodeStories260K decodes one token per operation on the tiny
// real model (which measures per-step overhead rather than bandwidth).
func BenchmarkDecodeStories260K(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			m := loadStories(b, threads)
			c := newCache(b, m, CacheOptions{})
			seq := newSeq(b, c)
			var batch Batch
			var out Output
			ctx := context.Background()
			prompt := []int32{1, 403, 407, 261, 378}
			batch.AddSequence(seq, 0, prompt, false)
			if err := m.Forward(ctx, c, &batch, &out); err != nil {
				b.Fatal(err)
			}
			tok := argmax(out.RowLogits(len(prompt) - 1))
			for b.Loop() {
				if c.Len(seq) == m.Config().Context {
					c.Truncate(seq, len(prompt))
				}
				batch.Clear()
				batch.Add(tok, seq, c.Len(seq), true, false)
				if err := m.Forward(ctx, c, &batch, &out); err != nil {
					b.Fatal(err)
				}
				tok = argmax(out.RowLogits(0))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// benchSpec is a mid-sized model: 8 layers of d=512, about 33M weights.
func benchSpec(wt ggml.Type) synth.Spec {
	return synth.Spec{Arch: "llama", Vocab: 4096, Dim: 512, Layers: 8, Heads: 8, KVHeads: 4, FFN: 1536,
		Context: 1024, WeightType: wt, Seed: 3}
}

// BenchmarkPrefill runs a 64-token prompt through the model in one batch.
func BenchmarkPrefill(b *testing.B) {
	for _, wt := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0} {
		b.Run(wt.String(), func(b *testing.B) {
			m := loadSynth(b, benchSpec(wt))
			c := newCache(b, m, CacheOptions{})
			seq := newSeq(b, c)
			prompt := make([]int32, 64)
			for i := range prompt {
				prompt[i] = int32(i * 37 % 4096)
			}
			var batch Batch
			var out Output
			for b.Loop() {
				c.Truncate(seq, 0)
				batch.Clear()
				batch.AddSequence(seq, 0, prompt, false)
				if err := m.Forward(context.Background(), c, &batch, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkDecodeBatch advances several sequences by one token per
// operation, showing how batching amortizes the weight reads.
func BenchmarkDecodeBatch(b *testing.B) {
	for _, seqs := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("Q8_0/seqs=%d", seqs), func(b *testing.B) {
			m := loadSynth(b, benchSpec(ggml.TypeQ8_0))
			c := newCache(b, m, CacheOptions{MaxSequences: seqs})
			ids := make([]SeqID, seqs)
			for i := range ids {
				ids[i] = newSeq(b, c)
			}
			var batch Batch
			var out Output
			for b.Loop() {
				batch.Clear()
				for i, id := range ids {
					if c.Len(id) == 256 {
						c.Truncate(id, 0)
					}
					batch.Add(int32(i+1), id, c.Len(id), true, false)
				}
				if err := m.Forward(context.Background(), c, &batch, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*seqs)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

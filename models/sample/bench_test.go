package sample

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSample measures one Sample call on vocabularies of llama-2 (32000)
// and qwen2 (151936) size. None of the settings change the row in place, so
// the same row is reused.
func BenchmarkSample(b *testing.B) {
	settings := []struct {
		name   string
		change func(*Params)
	}{
		// temperature 0.8, top-k 40, top-p 0.95, min-p 0.05
		{"default", func(p *Params) {}},
		{"greedy", func(p *Params) { p.Temperature = 0 }},
		{"top-p-0.95", func(p *Params) { p.TopK, p.MinP = 0, 0 }},
		{"temperature-only", func(p *Params) { p.TopK, p.TopP, p.MinP = 0, 1, 0 }},
		{"default+logprobs-5", func(p *Params) { p.Logprobs, p.TopLogprobs = true, 5 }},
	}
	for _, vocab := range []int{32000, 151936} {
		row := randomRow(rand.New(rand.NewPCG(1, uint64(vocab))), vocab)
		for _, set := range settings {
			b.Run(fmt.Sprintf("vocab=%d/%s", vocab, set.name), func(b *testing.B) {
				p := DefaultParams()
				p.Seed = 1
				set.change(&p)
				s, err := New(p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Sample(row, nil); err != nil { // grow the buffers
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Sample(row, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

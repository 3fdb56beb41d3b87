package llm_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/synth"
)

// Example shows the whole decoding loop: load a model, prefill a prompt,
// then feed back the most likely token. A real program gets the prompt
// from the tokenizer (tokenizer.FromGGUF(m.Meta())) and picks tokens with a
// sampler.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tiny.gguf")
	spec := synth.Spec{Arch: "llama", Vocab: 300, Dim: 64, Layers: 2, Heads: 4, FFN: 128, Context: 64,
		WeightType: ggml.TypeQ8_0, Seed: 1}
	if err := synth.Write(path, spec); err != nil {
		log.Fatal(err)
	}

	m, err := llm.Load(path, llm.Options{Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cache, err := m.NewCache(llm.CacheOptions{Type: ggml.TypeF16, MaxSequences: 4})
	if err != nil {
		log.Fatal(err)
	}
	seq, err := cache.NewSeq()
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Release(seq)

	prompt := []int32{1, 100, 101, 102}
	var batch llm.Batch
	var out llm.Output
	batch.AddSequence(seq, 0, prompt, false) // logits for the last row only
	ctx := context.Background()
	generated := 0
	for generated < 5 {
		if err := m.Forward(ctx, cache, &batch, &out); err != nil {
			log.Fatal(err)
		}
		logits := out.RowLogits(len(batch.Rows) - 1)
		next := int32(0)
		for i, v := range logits {
			if v > logits[next] {
				next = int32(i)
			}
		}
		generated++
		batch.Clear()
		batch.Add(next, seq, cache.Len(seq), true, false)
	}
	fmt.Println("positions in the cache:", cache.Len(seq))
	// Output: positions in the cache: 8
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/synth"
)

// benchPreset is a named synthetic model shape and the vocabulary file it
// borrows its tokenizer from.
type benchPreset struct {
	spec  func(ggml.Type) synth.Spec
	vocab string   // file name under the shared vocab directory
	types []string // weight types the benchmark set generates
}

var benchPresets = map[string]benchPreset{
	"bench-llama-360m":       {synth.Bench360M, "ggml-vocab-llama-spm.gguf", []string{"f16", "q8_0"}},
	"bench-qwen2-500m":       {synth.Bench500M, "ggml-vocab-gpt-2.gguf", []string{"f16", "q8_0"}},
	"bench-llama-360m-d1024": {func(ggml.Type) synth.Spec { return synth.Bench360MQ4K() }, "ggml-vocab-llama-spm.gguf", []string{"q4_k"}},
	"bench-qwen2-500m-d1024": {func(ggml.Type) synth.Spec { return synth.Bench500MQ4K() }, "ggml-vocab-gpt-2.gguf", []string{"q4_k"}},
}

func presetNames() string {
	names := make([]string, 0, len(benchPresets))
	for n := range benchPresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func parseWeightType(s string) (ggml.Type, error) {
	t, ok := ggml.TypeByName(strings.ToUpper(s))
	if !ok {
		return 0, fmt.Errorf("unknown weight type %q (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)", s)
	}
	return t, nil
}

func newGenModelCommand() *cobra.Command {
	var (
		preset, typ, out, vocabDir, dir string
		benchSet                        bool
		custom                          synth.Spec
	)
	cmd := &cobra.Command{
		Use:   "gen-model (--preset NAME --type T --out FILE | --bench-set --dir DIR | --arch A --dim D ... --out FILE)",
		Short: "Write a random-weight GGUF model for tests and benchmarks",
		Long: `Write a GGUF model with random weights (matrices N(0, 0.02²), norms 1 + N(0, 0.01²)).

--preset names a benchmark shape (` + presetNames() + `);
its tokenizer is copied from the matching llama.cpp vocabulary file in --vocab-dir when that
exists, else a built-in vocabulary of the same size is used.
--bench-set writes every preset in the weight types make bench uses into --dir, skipping
files that already exist.
Without --preset, the shape comes from --arch, --dim, --layers, ... flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.ErrOrStderr()
			if benchSet {
				if dir == "" {
					return fmt.Errorf("--bench-set needs --dir")
				}
				return writeBenchSet(w, dir, vocabDir)
			}
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			wt, err := parseWeightType(typ)
			if err != nil {
				return err
			}
			var spec synth.Spec
			vocabFile := ""
			if preset != "" {
				p, ok := benchPresets[preset]
				if !ok {
					return fmt.Errorf("unknown preset %q (known: %s)", preset, presetNames())
				}
				spec, vocabFile = p.spec(wt), p.vocab
				if !cmd.Flags().Changed("type") {
					spec.WeightType = p.spec(ggml.TypeF16).WeightType
				}
			} else {
				spec = custom
				spec.WeightType = wt
			}
			return writeModel(w, out, spec, vocabFile, vocabDir)
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "", "benchmark shape: "+presetNames())
	f.StringVar(&typ, "type", "f16", "weight type of the matrices: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k")
	f.StringVarP(&out, "out", "o", "", "output GGUF file")
	f.StringVar(&vocabDir, "vocab-dir", filepath.Join(defaultTestdata(), "vocab"), "directory of llama.cpp vocabulary files to borrow tokenizers from")
	f.BoolVar(&benchSet, "bench-set", false, "write every benchmark preset into --dir (cached)")
	f.StringVar(&dir, "dir", "", "output directory for --bench-set")
	f.StringVar(&custom.Arch, "arch", "llama", "architecture: llama, qwen2, qwen3")
	f.IntVar(&custom.Vocab, "vocab", 512, "vocabulary size (built-in vocabulary)")
	f.IntVar(&custom.Dim, "dim", 64, "embedding width")
	f.IntVar(&custom.Layers, "layers", 2, "layers")
	f.IntVar(&custom.Heads, "heads", 4, "attention heads")
	f.IntVar(&custom.KVHeads, "kv-heads", 0, "key/value heads (0: same as heads)")
	f.IntVar(&custom.FFN, "ffn", 256, "feed-forward width")
	f.IntVar(&custom.Context, "ctx", 512, "context length")
	f.Uint64Var(&custom.Seed, "seed", 1, "random seed of the weights")
	return cmd
}

// defaultTestdata is the shared test data directory: $CARRYON_TESTDATA or
// ../shared/testdata.
func defaultTestdata() string {
	if d := os.Getenv("CARRYON_TESTDATA"); d != "" {
		return d
	}
	return filepath.Join("..", "shared", "testdata")
}

func writeModel(w io.Writer, out string, spec synth.Spec, vocabFile, vocabDir string) error {
	if vocabFile != "" {
		vf, err := gguf.Open(filepath.Join(vocabDir, vocabFile))
		if err == nil {
			defer vf.Close()
			spec.TokenizerFrom = &vf.Meta
		} else {
			fmt.Fprintf(w, "note: %v; using a built-in vocabulary of %d tokens\n", err, spec.Vocab)
		}
	}
	start := time.Now()
	tmp := out + ".tmp"
	if err := synth.Write(tmp, spec); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	st, _ := os.Stat(out)
	fmt.Fprintf(w, "wrote %s (%s, %s, %.0f MiB) in %v\n", out, spec.Arch, spec.WeightType,
		float64(st.Size())/(1<<20), time.Since(start).Round(time.Millisecond))
	return nil
}

// benchFile is the file name of a preset in a given weight type.
func benchFile(preset, typ string) string { return preset + "-" + typ + ".gguf" }

func writeBenchSet(w io.Writer, dir, vocabDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := strings.Split(presetNames(), ", ")
	for _, name := range names {
		p := benchPresets[name]
		for _, typ := range p.types {
			out := filepath.Join(dir, benchFile(name, typ))
			if _, err := os.Stat(out); err == nil {
				continue
			}
			wt, err := parseWeightType(typ)
			if err != nil {
				return err
			}
			if err := writeModel(w, out, p.spec(wt), p.vocab, vocabDir); err != nil {
				return fmt.Errorf("%s: %w", out, err)
			}
		}
	}
	return nil
}

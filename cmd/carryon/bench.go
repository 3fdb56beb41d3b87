package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/llm"
)

// benchOptions are the flags of `carryon bench`.
type benchOptions struct {
	model   string
	prompt  int
	gen     int
	threads int
	batch   int
	reps    int
	kv      string
	json    bool
	profile string
}

// benchResult is what --json prints; rates are medians over the passes.
type benchResult struct {
	Model        string  `json:"model"`
	Threads      int     `json:"threads"`
	PromptTokens int     `json:"prompt_tokens"`
	GenTokens    int     `json:"gen_tokens"`
	Batch        int     `json:"batch"`
	PPTokS       float64 `json:"pp_tok_s"`
	TGTokS       float64 `json:"tg_tok_s"`
	BatchTGTokS  float64 `json:"batch_tg_tok_s"`
	BytesPerTok  int64   `json:"weight_bytes_per_token"`
	AchievedGBs  float64 `json:"achieved_gb_s"`
	MachineGBs   float64 `json:"machine_gb_s"`
}

func newBenchCommand() *cobra.Command {
	o := benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench -m MODEL [-p 128] [-n 64] [-t THREADS] [-b BATCH] [--json]",
		Short: "Measure prompt processing and generation speed",
		Long: `Measure, like llama-bench, prompt processing (one batch of -p tokens) and
generation (-n tokens one at a time) in tokens per second, and generation of -b
sequences decoding together. The achieved memory bandwidth of generation
(bytes of weights read per token × tokens/s) is printed next to the machine's
read bandwidth with the same threads, measured with vector loads over 1 GiB
before the passes and after generation (the larger figure counts). Each rate is
the median of -r passes; the tokens are random. The machine should be otherwise
idle: other work slows generation and the bandwidth measurement alike.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.model, "model", "m", "", "GGUF file or Ollama model name (required)")
	f.IntVarP(&o.prompt, "n-prompt", "p", 128, "prompt tokens to process in one batch")
	f.IntVarP(&o.gen, "n-gen", "n", 64, "tokens to generate one at a time")
	f.IntVarP(&o.threads, "threads", "t", 0, "compute threads (0: every usable core)")
	f.IntVarP(&o.batch, "batch", "b", 8, "sequences decoding together for batch_tg (0 or 1: skip)")
	f.IntVarP(&o.reps, "repetitions", "r", 3, "passes per figure (the median is reported)")
	f.StringVar(&o.kv, "kv", "f16", "KV cache type: f16 or f32")
	f.BoolVar(&o.json, "json", false, "print one JSON object")
	f.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the timed passes to this file")
	cmd.MarkFlagRequired("model")
	return cmd
}

// weightBytesPerToken sums the bytes of every tensor a decode step reads:
// all but the token embeddings, which are only looked up (unless the model
// ties its output to them).
func weightBytesPerToken(f *gguf.File) int64 {
	var n int64
	tied := !f.HasTensor("output.weight")
	for _, t := range f.Tensors {
		if t.Name == "token_embd.weight" && !tied {
			continue
		}
		n += t.Size
	}
	return n
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func runBench(ctx context.Context, w io.Writer, o benchOptions) error {
	if o.prompt < 1 || o.gen < 1 || o.reps < 1 || o.batch < 0 {
		return fmt.Errorf("-p, -n and -r must be at least 1, -b at least 0")
	}
	kvType := ggml.TypeF16
	if o.kv == "f32" {
		kvType = ggml.TypeF32
	} else if o.kv != "f16" {
		return fmt.Errorf("--kv %q: want f16 or f32", o.kv)
	}
	path, err := resolveModelPath(o.model)
	if err != nil {
		return err
	}
	model, err := llm.Load(path, llm.Options{Threads: o.threads})
	if err != nil {
		return err
	}
	defer model.Close()
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	res := benchResult{Model: path, Threads: o.threads, PromptTokens: o.prompt, GenTokens: o.gen, Batch: o.batch,
		BytesPerTok: weightBytesPerToken(f)}
	f.Close()
	if res.Threads == 0 {
		res.Threads = runtime.GOMAXPROCS(0)
	}
	cfg := model.Config()
	seqs := max(o.batch, 1)
	seqCtx := min(max(o.prompt, o.gen+1), cfg.Context)
	cache, err := model.NewCache(llm.CacheOptions{Type: kvType, MaxSequences: seqs, SeqContext: seqCtx})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	token := func() int32 { return int32(rng.IntN(cfg.Vocab)) }
	var batch llm.Batch
	var out llm.Output

	// run times one pass: nseq fresh sequences, each fed `steps` batches
	// of `per` tokens.
	run := func(nseq, steps, per int) (time.Duration, error) {
		ids := make([]llm.SeqID, nseq)
		for i := range ids {
			if ids[i], err = cache.NewSeq(); err != nil {
				return 0, err
			}
		}
		defer func() {
			for _, id := range ids {
				cache.Release(id)
			}
		}()
		start := time.Now()
		for s := 0; s < steps; s++ {
			batch.Clear()
			for _, id := range ids {
				for k := 0; k < per; k++ {
					batch.Add(token(), id, cache.Len(id)+k, k == per-1, false)
				}
			}
			if err := model.Forward(ctx, cache, &batch, &out); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	measure := func(nseq, steps, per int) (float64, error) {
		if _, err := run(nseq, min(steps, 2), per); err != nil { // warm up
			return 0, err
		}
		var rates []float64
		for r := 0; r < o.reps; r++ {
			d, err := run(nseq, steps, per)
			if err != nil {
				return 0, err
			}
			rates = append(rates, float64(nseq*steps*per)/d.Seconds())
		}
		return median(rates), nil
	}
	if o.prompt > cfg.Context {
		return fmt.Errorf("-p %d exceeds the model's context of %d", o.prompt, cfg.Context)
	}
	// The machine's bandwidth is measured before the passes and right
	// after generation, and the larger figure counts: on a shared machine
	// other work can hold back either measurement.
	bwBefore, err := measureReadBandwidth(res.Threads)
	if err != nil {
		return err
	}
	if o.profile != "" {
		pf, err := os.Create(o.profile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cpu profile %s: %w", o.profile, err)
		}
		defer pprof.StopCPUProfile() // on errors; stopping twice is harmless
	}
	if res.PPTokS, err = measure(1, 1, o.prompt); err != nil {
		return err
	}
	if res.TGTokS, err = measure(1, o.gen, 1); err != nil {
		return err
	}
	bwAfter, err := measureReadBandwidth(res.Threads)
	if err != nil {
		return err
	}
	res.MachineGBs = max(bwBefore, bwAfter) / 1e9
	if o.batch > 1 {
		if res.BatchTGTokS, err = measure(o.batch, o.gen, 1); err != nil {
			return err
		}
	}
	if o.profile != "" {
		pprof.StopCPUProfile()
	}
	res.AchievedGBs = float64(res.BytesPerTok) * res.TGTokS / 1e9

	if o.json {
		return json.NewEncoder(w).Encode(res)
	}
	fmt.Fprintf(w, "model %s (%s, %.0f MiB of weights read per token), %d threads\n",
		path, cfg.Arch, float64(res.BytesPerTok)/(1<<20), res.Threads)
	fmt.Fprintf(w, "pp%-4d %10.1f tok/s\n", o.prompt, res.PPTokS)
	fmt.Fprintf(w, "tg%-4d %10.1f tok/s   %.1f GB/s of %.1f GB/s measured (%.0f%%)\n",
		o.gen, res.TGTokS, res.AchievedGBs, res.MachineGBs, 100*res.AchievedGBs/res.MachineGBs)
	if o.batch > 1 {
		fmt.Fprintf(w, "tg%-4d ×%d %7.1f tok/s in total (%.2f× one sequence)\n", o.gen, o.batch, res.BatchTGTokS, res.BatchTGTokS/res.TGTokS)
	}
	return nil
}

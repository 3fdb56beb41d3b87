package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/sample"
	"github.com/carryon/carryon/models/tokenizer"
)

// runOptions are the flags of `carryon run`.
type runOptions struct {
	model   string
	head    string
	prompt  string
	n       int
	kv      string
	threads int
	json    bool
	stats   bool
	noBOS   bool
	params  sample.Params
}

func newRunCommand() *cobra.Command {
	o := runOptions{params: sample.DefaultParams()}
	cmd := &cobra.Command{
		Use:   "run -m MODEL -p PROMPT [-n N] [--temp T] [--seed S] [--kv f16|f32] [--json]",
		Short: "Generate a continuation of a prompt and stream it to stdout",
		Long: `Generate up to N tokens after PROMPT and stream the text as it is produced.
Generation stops early at the model's end-of-generation tokens.

With --head DIR a carry-on head trained for this base reads the base's
final-norm states, and the base's LM head scores the state plus the head's
delta, as the server does for a request that names the head.

With --json one JSON object is printed instead:
  {"prompt_tokens":[ids], "tokens":[generated ids], "text":"...",
   "hidden":[[final-norm hidden state of each prompt token]],
   "logits":[logits of the last prompt token]}
(with --head, "hidden" is null and "logits" include the head's delta).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGenerate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.model, "model", "m", "", "GGUF file or Ollama model name (required)")
	f.StringVarP(&o.prompt, "prompt", "p", "", "the prompt")
	f.IntVarP(&o.n, "n-predict", "n", 128, "tokens to generate at most")
	f.StringVar(&o.head, "head", "", "carry-on head directory whose delta is added to the base's final-norm state before its LM head")
	f.StringVar(&o.kv, "kv", "f16", "KV cache type: f16 or f32")
	f.IntVarP(&o.threads, "threads", "t", 0, "compute threads (0: every usable core)")
	f.BoolVar(&o.json, "json", false, "print one JSON object with ids, text, hidden states and logits")
	f.BoolVar(&o.stats, "stats", false, "print timings to stderr")
	f.BoolVar(&o.noBOS, "no-bos", false, "do not add the BOS token the model asks for")
	f.Float32Var(&o.params.Temperature, "temp", o.params.Temperature, "temperature (0: greedy)")
	f.IntVar(&o.params.TopK, "top-k", o.params.TopK, "top-k sampling (0: off)")
	f.Float32Var(&o.params.TopP, "top-p", o.params.TopP, "top-p sampling (1: off)")
	f.Float32Var(&o.params.MinP, "min-p", o.params.MinP, "min-p sampling (0: off)")
	f.Float32Var(&o.params.RepeatPenalty, "repeat-penalty", o.params.RepeatPenalty, "repetition penalty (1: off)")
	f.IntVar(&o.params.RepeatLastN, "repeat-last-n", o.params.RepeatLastN, "tokens the repetition penalty looks back over")
	f.Float32Var(&o.params.PresencePenalty, "presence-penalty", 0, "presence penalty")
	f.Float32Var(&o.params.FrequencyPenalty, "frequency-penalty", 0, "frequency penalty")
	f.Int64Var(&o.params.Seed, "seed", o.params.Seed, "random seed (the same seed repeats the same choices)")
	cmd.MarkFlagRequired("model")
	return cmd
}

// runResult is what --json prints.
type runResult struct {
	PromptTokens []int32     `json:"prompt_tokens"`
	Tokens       []int32     `json:"tokens"`
	Text         string      `json:"text"`
	Hidden       [][]float32 `json:"hidden"`
	Logits       []float32   `json:"logits"`
}

func runGenerate(ctx context.Context, stdout, stderr io.Writer, o runOptions) error {
	if o.n < 0 {
		return fmt.Errorf("-n must not be negative")
	}
	var kvType ggml.Type
	switch o.kv {
	case "f16":
		kvType = ggml.TypeF16
	case "f32":
		kvType = ggml.TypeF32
	default:
		return fmt.Errorf("--kv %q: want f16 or f32", o.kv)
	}
	sampler, err := sample.New(o.params)
	if err != nil {
		return err
	}
	path, err := resolveModelPath(o.model)
	if err != nil {
		return err
	}
	if o.head != "" {
		return runGenerateWithHead(ctx, stdout, stderr, o, path, sampler)
	}
	start := time.Now()
	model, err := llm.Load(path, llm.Options{Threads: o.threads})
	if err != nil {
		return err
	}
	defer model.Close()
	tok, err := tokenizer.FromGGUF(model.Meta())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	loaded := time.Since(start)

	prompt := tok.Encode(o.prompt, !o.noBOS, true)
	if len(prompt) == 0 {
		return fmt.Errorf("the prompt is empty and the model adds no BOS token: give -p")
	}
	cfg := model.Config()
	seqCtx := min(len(prompt)+o.n, cfg.Context)
	if len(prompt) > seqCtx {
		return fmt.Errorf("the prompt has %d tokens, more than the model's context of %d", len(prompt), cfg.Context)
	}
	cache, err := model.NewCache(llm.CacheOptions{Type: kvType, SeqContext: seqCtx})
	if err != nil {
		return err
	}
	seq, err := cache.NewSeq()
	if err != nil {
		return err
	}

	// Prefill the whole prompt in one batch.
	var batch llm.Batch
	var out llm.Output
	for i, id := range prompt {
		batch.Add(id, seq, i, i == len(prompt)-1, o.json)
	}
	t0 := time.Now()
	if err := model.Forward(ctx, cache, &batch, &out); err != nil {
		return err
	}
	prefill := time.Since(t0)
	res := runResult{PromptTokens: prompt, Tokens: []int32{}}
	if o.json {
		for i := range prompt {
			res.Hidden = append(res.Hidden, append([]float32(nil), out.RowHidden(i)...))
		}
		res.Logits = append([]float32(nil), out.RowLogits(len(prompt)-1)...)
	}

	step := func(id int32) ([]float32, bool, error) {
		if cache.Len(seq) >= seqCtx {
			return nil, true, nil
		}
		batch.Clear()
		batch.Add(id, seq, cache.Len(seq), true, false)
		if err := model.Forward(ctx, cache, &batch, &out); err != nil {
			return nil, false, err
		}
		return out.RowLogits(0), false, nil
	}
	return decode(stdout, stderr, o, tok, sampler, &res, out.RowLogits(len(prompt)-1), step, loaded, prefill)
}

// runGenerateWithHead is runGenerate for a base model with a carry-on head:
// each step's logits come from the base's final-norm state plus the head's
// delta.
func runGenerateWithHead(ctx context.Context, stdout, stderr io.Writer, o runOptions, path string, sampler *sample.Sampler) error {
	if o.kv != "f16" {
		return fmt.Errorf("--kv %s: with --head the cache is the model's default", o.kv)
	}
	start := time.Now()
	head, err := loadHeadFor(o.head, path)
	if err != nil {
		return err
	}
	model, err := llm.Load(path, llm.Options{Threads: o.threads})
	if err != nil {
		return err
	}
	defer model.Close()
	tok, err := tokenizer.FromGGUF(model.Meta())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	loaded := time.Since(start)
	prompt := tok.Encode(o.prompt, !o.noBOS, true)
	if len(prompt) == 0 {
		return fmt.Errorf("the prompt is empty and the model adds no BOS token: give -p")
	}
	ctxLen := model.Config().Context
	if hc := head.Config(); hc.Context > 0 && hc.Context < ctxLen {
		ctxLen = hc.Context
	}
	seqCtx := min(len(prompt)+o.n, ctxLen)
	if len(prompt) > seqCtx {
		return fmt.Errorf("the prompt has %d tokens, more than the context of %d", len(prompt), ctxLen)
	}
	s, err := newHeadedSequence(model, head, seqCtx)
	if err != nil {
		return err
	}
	defer s.Close()
	t0 := time.Now()
	logits, err := s.Feed(ctx, prompt)
	if err != nil {
		return err
	}
	prefill := time.Since(t0)
	res := runResult{PromptTokens: prompt, Tokens: []int32{}}
	if o.json {
		res.Logits = append([]float32(nil), logits...)
	}
	step := func(id int32) ([]float32, bool, error) {
		if s.Len() >= seqCtx {
			return nil, true, nil
		}
		logits, err := s.Feed(ctx, []int32{id})
		return logits, false, err
	}
	return decode(stdout, stderr, o, tok, sampler, &res, logits, step, loaded, prefill)
}

// decode samples up to o.n tokens after the prompt, starting from the
// prompt's last logits; step feeds a sampled token and returns the next
// logits, or full when the sequence's context has no room for it. It
// prints the text as it comes (or res as JSON at the end with --json) and
// the timings with --stats.
func decode(stdout, stderr io.Writer, o runOptions, tok *tokenizer.Tokenizer, sampler *sample.Sampler, res *runResult,
	logits []float32, step func(id int32) (next []float32, full bool, err error), loaded, prefill time.Duration) error {
	history := append([]int32(nil), res.PromptTokens...)
	dec := tok.NewStreamDecoder(false)
	var text []byte
	emit := func(t string) {
		if o.json {
			text = append(text, t...)
		} else if t != "" {
			io.WriteString(stdout, t)
		}
	}
	t1 := time.Now()
	for len(res.Tokens) < o.n {
		id, err := sampler.Sample(logits, history)
		if err != nil {
			return err
		}
		if tok.IsEOG(id) {
			break
		}
		res.Tokens = append(res.Tokens, id)
		history = append(history, id)
		emit(dec.Add(id))
		if len(res.Tokens) == o.n {
			break
		}
		next, full, err := step(id)
		if err != nil {
			return err
		}
		if full {
			break
		}
		logits = next
	}
	emit(dec.Flush())
	elapsed := time.Since(t1)
	if o.json {
		res.Text = string(text)
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout)
	}
	if o.stats {
		fmt.Fprintf(stderr, "load %v; prompt %d tokens in %v (%.1f tok/s); generated %d tokens in %v (%.1f tok/s)\n",
			loaded.Round(time.Millisecond), len(res.PromptTokens), prefill.Round(time.Microsecond), float64(len(res.PromptTokens))/prefill.Seconds(),
			len(res.Tokens), elapsed.Round(time.Microsecond), float64(len(res.Tokens))/elapsed.Seconds())
	}
	return nil
}

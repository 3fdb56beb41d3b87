package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/tokenizer"
)

type trainOptions struct {
	model, data, out, cacheDir, bridge, dtype string
	layers, dim, heads, seqLen, steps, batch  int
	ffn                                       int
	lr, alpha, evalFrac, weightDecay          float64
	seed                                      uint64
	resume, learnAlpha, jsonOut               bool
	featuresOnly, noTrainLoss                 bool
	checkpointEvery, threads                  int
	taps                                      []int
}

func newTrainCommand() *cobra.Command {
	var o trainOptions
	cmd := &cobra.Command{
		Use:   "train --model BASE --data FILE --out HEAD_DIR",
		Short: "Train a carry-on head for a base model on plain text or chat JSONL",
		Long: `train trains a carry-on head on the frozen base model's final-norm hidden states.

--data is plain text (tokenized and cut into sequences of --seq-len tokens) or,
when it ends in .jsonl, one {"messages":[{"role":...,"content":...},...]} chat
per line, whose assistant turns are the targets. A share (--eval-frac) of the
sequences is held out: the base's loss and the head's loss on them are
reported. The base's states are computed once and cached by content hash
(--cache, default HEAD_DIR.features); checkpoints go to
HEAD_DIR.checkpoint.safetensors and --resume continues from there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrain(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "base model: a GGUF file or an Ollama model name")
	f.StringVar(&o.data, "data", "", "training data: plain text, or chat JSONL (.jsonl)")
	f.StringVar(&o.out, "out", "", "head directory to write")
	f.StringVar(&o.cacheDir, "cache", "", "feature cache directory (default OUT.features)")
	f.IntVar(&o.layers, "layers", 2, "transformer blocks of the head (1-4)")
	f.IntVar(&o.dim, "dim", 128, "width of the head")
	f.IntVar(&o.heads, "heads", 4, "attention heads of the head")
	f.IntVar(&o.ffn, "ffn", 0, "hidden width of the head's MLP (0: 4 × --dim)")
	f.StringVar(&o.bridge, "bridge", carryonhead.BridgeInt8, "bridge: identity, int8 or linear")
	f.StringVar(&o.dtype, "dtype", carryonhead.DTypeF16, "weight type of the written head: f16 or f32")
	f.IntVar(&o.seqLen, "seq-len", 128, "tokens per training sequence")
	f.IntVar(&o.steps, "steps", 500, "optimizer steps")
	f.IntVar(&o.batch, "batch", 8, "sequences per step")
	f.Float64Var(&o.lr, "lr", 1e-3, "peak learning rate")
	f.Float64Var(&o.weightDecay, "weight-decay", 0.01, "AdamW weight decay of the matrices")
	f.Float64Var(&o.alpha, "alpha", 1, "α, the scale of the head's delta")
	f.BoolVar(&o.learnAlpha, "learn-alpha", false, "train α as well")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the initial weights and the batches")
	f.Float64Var(&o.evalFrac, "eval-frac", 0.1, "share of sequences held out for evaluation")
	f.BoolVar(&o.resume, "resume", false, "continue from the checkpoint")
	f.IntVar(&o.checkpointEvery, "checkpoint-every", 100, "steps between checkpoints")
	f.IntVar(&o.threads, "threads", 0, "threads of the base model (0: all CPUs)")
	f.BoolVar(&o.jsonOut, "json", false, "print the final losses as JSON")
	f.BoolVar(&o.featuresOnly, "features-only", false, "compute (or read) the base's features, report them and the peak RSS, and stop")
	f.BoolVar(&o.noTrainLoss, "no-train-loss", false, "skip the final pass over the training set (train_loss is then the mean of the last 20 steps)")
	f.IntSliceVar(&o.taps, "taps", nil, "base layers the head reads besides the final-norm state (0 is the first block)")
	cmd.AddCommand(newTrainDataCommand(), newTrainEvalCommand())
	return cmd
}

// trainResult is what --json prints.
type trainResult struct {
	BaseEvalLoss float64 `json:"base_eval_loss"`
	EvalLoss     float64 `json:"eval_loss"`
	TrainLoss    float64 `json:"train_loss"`
	Params       int64   `json:"params"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	HeadBytes    int64   `json:"head_bytes"`
	Version      string  `json:"version"`
	TrainSeqs    int     `json:"train_sequences"`
	EvalSeqs     int     `json:"eval_sequences"`
}

// featuresResult is what --features-only --json prints.
type featuresResult struct {
	Sequences int     `json:"sequences"`
	Positions int     `json:"positions"`
	Computed  int     `json:"computed"`
	Seconds   float64 `json:"seconds"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

func runTrain(ctx context.Context, stdout, stderr io.Writer, o trainOptions) error {
	if o.model == "" || o.data == "" || o.out == "" {
		return errors.New("train: --model, --data and --out are required")
	}
	if o.evalFrac <= 0 || o.evalFrac >= 1 {
		return fmt.Errorf("train: --eval-frac %v: want a share between 0 and 1", o.evalFrac)
	}
	if o.seqLen < 2 {
		return fmt.Errorf("train: --seq-len %d: want at least 2", o.seqLen)
	}
	path, err := resolveModelPath(o.model)
	if err != nil {
		return err
	}
	// Training needs only the base's LM head (for the loss) and its
	// metadata (tokenizer, identity): the head is mapped in place, and the
	// whole base is loaded only while it computes states the cache lacks.
	lm, err := llm.LoadLMHead(path, llm.Options{Threads: o.threads})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer lm.Close()
	base, err := carryonhead.BaseFromGGUF(lm.File())
	if err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	// Go's default lets garbage grow to as much as the live heap before
	// collecting it, which on a 360M base cost 400 MB of extra peak RSS
	// while the base's prepared weights were live. Training allocates
	// little that lives long, so collect at a quarter of the live heap
	// instead (unless GOGC says otherwise).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(25))
	}
	tok, err := tokenizer.FromGGUF(lm.Meta())
	if err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}

	cfg := carryonhead.DefaultConfig(base)
	cfg.Blocks, cfg.Width, cfg.Heads, cfg.FFN = o.layers, o.dim, o.heads, o.ffn
	if o.ffn == 0 {
		cfg.FFN = 4 * o.dim
	}
	cfg.Bridge = carryonhead.Bridge{Kind: o.bridge}
	cfg.DType = o.dtype
	cfg.Alpha = float32(o.alpha)
	cfg.Seed = o.seed
	if len(o.taps) > 0 {
		cfg.Taps = append([]int{carryonhead.FinalLayer}, o.taps...)
	}
	if cfg.Context == 0 || cfg.Context > o.seqLen {
		cfg.Context = 0
	}
	head, err := carryonhead.New(cfg)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}

	seqs, err := readTrainData(o.data, tok, o.seqLen)
	if err != nil {
		return err
	}
	if len(seqs) < 2 {
		return fmt.Errorf("train: %s gives %d sequences, at least 2 are needed", o.data, len(seqs))
	}
	// A fixed shuffle (by the seed) before the split, so the held-out
	// sequences are spread over the file.
	rand.New(rand.NewPCG(o.seed, 0x5eed)).Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
	nEval := max(1, int(float64(len(seqs))*o.evalFrac))
	cacheDir := o.cacheDir
	if cacheDir == "" {
		cacheDir = filepath.Clean(o.out) + ".features"
	}
	start := time.Now()
	examples, stats, err := carryonhead.Features(ctx, nil, head.Config(), seqs, cacheDir)
	if errors.Is(err, carryonhead.ErrNotCached) {
		examples, stats, err = baseFeatures(ctx, path, o.threads, head.Config(), seqs, cacheDir)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stderr, "features: %d sequences (%d from cache %s, %d computed) in %.1fs\n",
		len(seqs), stats.Hits, cacheDir, stats.Computed, time.Since(start).Seconds())
	evalSet, trainSet := examples[:nEval], examples[nEval:]
	if o.featuresOnly {
		positions := 0
		for _, e := range examples {
			positions += len(e.Targets)
		}
		res := featuresResult{Sequences: len(examples), Positions: positions, Computed: stats.Computed,
			Seconds: time.Since(start).Seconds(), PeakRSSMB: peakRSSMB()}
		if o.jsonOut {
			return json.NewEncoder(stdout).Encode(res)
		}
		fmt.Fprintf(stdout, "features of %d sequences (%d positions); peak RSS %.0f MB\n", res.Sequences, res.Positions, res.PeakRSSMB)
		return nil
	}

	tr, err := carryonhead.NewTrainer(head, lm, carryonhead.TrainOptions{
		Steps: o.steps, Batch: o.batch, LR: o.lr, WeightDecay: o.weightDecay,
		LearnAlpha: o.learnAlpha, Seed: o.seed,
	})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	ckpt := filepath.Clean(o.out) + ".checkpoint.safetensors"
	if o.resume {
		if err := tr.LoadCheckpoint(ckpt); err != nil {
			return fmt.Errorf("train: --resume: %w", err)
		}
		fmt.Fprintf(stderr, "resumed from %s at step %d\n", ckpt, tr.Steps())
	}
	_, baseLoss, _, err := tr.Eval(ctx, evalSet)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stderr, "held out: %d sequences, base loss %.4f\n", len(evalSet), baseLoss)

	t0, s0 := time.Now(), tr.Steps()
	tokens := 0
	var recent []float64
	err = tr.Run(ctx, trainSet, func(r carryonhead.StepReport) error {
		tokens += r.Tokens
		recent = append(recent, r.Loss)
		if len(recent) > 20 {
			recent = recent[1:]
		}
		el := time.Since(t0).Seconds()
		done := r.Step - s0
		eta := time.Duration(el / float64(done) * float64(o.steps-r.Step) * float64(time.Second))
		fmt.Fprintf(stderr, "\rstep %d/%d  loss %.4f  lr %.2e  %.0f tok/s  eta %s   ",
			r.Step, o.steps, mean(recent), r.LR, float64(tokens)/el, eta.Round(time.Second))
		if r.Step%o.checkpointEvery == 0 || r.Step == o.steps {
			if err := tr.SaveCheckpoint(ckpt); err != nil {
				return err
			}
		}
		return nil
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	evalLoss, _, _, err := tr.Eval(ctx, evalSet)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	trainLoss := mean(recent)
	if !o.noTrainLoss || len(recent) == 0 {
		if trainLoss, _, _, err = tr.Eval(ctx, trainSet); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	trained, err := tr.Head()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := trained.Save(o.out); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	res := trainResult{
		BaseEvalLoss: baseLoss, EvalLoss: evalLoss, TrainLoss: trainLoss,
		Params: trained.Parameters(), PeakRSSMB: peakRSSMB(), Version: trained.Version(),
		TrainSeqs: len(trainSet), EvalSeqs: len(evalSet),
	}
	if st, err := os.Stat(filepath.Join(o.out, carryonhead.WeightsFile)); err == nil {
		res.HeadBytes = st.Size()
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "wrote %s (version %s, %d parameters)\nheld-out loss: base %.4f, head %.4f; train loss %.4f; peak RSS %.0f MB\n",
		o.out, res.Version, res.Params, res.BaseEvalLoss, res.EvalLoss, res.TrainLoss, res.PeakRSSMB)
	return nil
}

// baseFeatures loads the whole base model at path, computes (or reads from
// cacheDir) the states of seqs with it, and releases it before returning,
// so that training holds only the LM head: the model is closed, its file
// unmapped, and the heap it used returned to the system.
func baseFeatures(ctx context.Context, path string, threads int, cfg carryonhead.Config, seqs []carryonhead.Sequence, cacheDir string) ([]carryonhead.Example, carryonhead.FeatureStats, error) {
	model, err := llm.Load(path, llm.Options{Threads: threads})
	if err != nil {
		return nil, carryonhead.FeatureStats{}, err
	}
	examples, stats, err := carryonhead.Features(ctx, model, cfg, seqs, cacheDir)
	if cerr := model.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close base model %s: %w", path, cerr)
	}
	model = nil
	debug.FreeOSMemory()
	return examples, stats, err
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// peakRSSMB returns the process's peak resident set (VmHWM) in MB, or 0
// where /proc does not say.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// chatLine is one line of chat JSONL.
type chatLine struct {
	Messages []chatMessage `json:"messages"`
}

// chatMessage is one message of a chat.
type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chatTokens writes messages as training and evaluation see them: BOS when
// the tokenizer asks for one, then "role: content\n" for each message, the
// role prefix and the content encoded separately. assistant[i] reports
// whether token i belongs to an assistant's content (or its newline). When
// prompt is set, "assistant: " follows the messages, the prefix a reply is
// generated after.
func chatTokens(tok *tokenizer.Tokenizer, messages []chatMessage, prompt bool) (tokens []int32, assistant []bool) {
	if tok.AddBOS() {
		tokens = append(tokens, tok.BOS())
		assistant = append(assistant, false)
	}
	for _, m := range messages {
		head := tok.Encode(m.Role+": ", false, false)
		body := tok.Encode(m.Content+"\n", false, false)
		for range head {
			assistant = append(assistant, false)
		}
		for range body {
			assistant = append(assistant, m.Role == "assistant")
		}
		tokens = append(append(tokens, head...), body...)
	}
	if prompt {
		head := tok.Encode("assistant: ", false, false)
		tokens = append(tokens, head...)
		for range head {
			assistant = append(assistant, false)
		}
	}
	return tokens, assistant
}

// readTrainData reads plain text or chat JSONL (by the .jsonl extension)
// into token sequences of at most seqLen+1 tokens.
func readTrainData(path string, tok *tokenizer.Tokenizer, seqLen int) ([]carryonhead.Sequence, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if strings.HasSuffix(path, ".jsonl") {
		return chatSequences(path, data, tok, seqLen)
	}
	ids := tok.Encode(string(data), true, false)
	var seqs []carryonhead.Sequence
	for s := 0; s+1 < len(ids); s += seqLen {
		end := min(s+seqLen+1, len(ids))
		if end-s < 2 {
			break
		}
		seqs = append(seqs, carryonhead.Sequence{Tokens: ids[s:end]})
	}
	return seqs, nil
}

// readChats reads chat JSONL: one {"messages":[...]} object per line, each
// message with a known role, blank lines skipped. Errors name the file and
// line.
func readChats(path string, data []byte) ([]chatLine, error) {
	var chats []chatLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var c chatLine
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if len(c.Messages) == 0 {
			return nil, fmt.Errorf("%s:%d: no messages", path, line)
		}
		assistant := false
		for k, m := range c.Messages {
			switch m.Role {
			case "system", "user", "assistant", "tool":
			default:
				return nil, fmt.Errorf("%s:%d: message %d: unknown role %q", path, line, k, m.Role)
			}
			assistant = assistant || m.Role == "assistant"
		}
		if !assistant {
			return nil, fmt.Errorf("%s:%d: no assistant message", path, line)
		}
		chats = append(chats, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return chats, nil
}

// chatSequences turns chat JSONL into sequences: each message is written
// as "role: content\n"; the tokens of assistant contents (and their
// newline) are the targets. A chat longer than seqLen+1 tokens is cut.
func chatSequences(path string, data []byte, tok *tokenizer.Tokenizer, seqLen int) ([]carryonhead.Sequence, error) {
	chats, err := readChats(path, data)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var seqs []carryonhead.Sequence
	for _, c := range chats {
		var s carryonhead.Sequence
		var mask []bool
		s.Tokens, mask = chatTokens(tok, c.Messages, false)
		// mask holds one mark per token; Trained[i] marks Tokens[i+1].
		s.Trained = mask[1:]
		if len(s.Tokens) > seqLen+1 {
			s.Tokens, s.Trained = s.Tokens[:seqLen+1], s.Trained[:seqLen]
		}
		if len(s.Tokens) < 2 {
			continue
		}
		seqs = append(seqs, s)
	}
	return seqs, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/tokenizer"
)

// answerEvalOptions are the flags of `carryon train eval`.
type answerEvalOptions struct {
	model, head, data string
	show, maxTokens   int
	threads           int
	jsonOut           bool
}

func newTrainEvalCommand() *cobra.Command {
	var o answerEvalOptions
	cmd := &cobra.Command{
		Use:   "eval --model BASE [--head DIR] --data FILE.jsonl",
		Short: "Measure exact-answer accuracy of a base model, alone or with a head, on chat JSONL",
		Long: `eval generates a reply greedily for every chat of --data (chat JSONL as
"carryon train" reads it) and compares the number after "answer:" in the reply
with the one in the chat's last assistant message, which every chat must have.
The prompt is the messages before that last assistant message, written as
training writes them, followed by "assistant: ". Generation stops at the end
of the line after "answer:", at an end-of-generation token, after
--max-tokens tokens, or at the context's end.

With --head the base's final-norm states go through the head and its delta is
added before the base's LM head, as the server serves heads; without it the
base alone answers. The accuracy and the first --show problems are printed,
or with --json one object.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrainEval(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "base model: a GGUF file or an Ollama model name")
	f.StringVar(&o.head, "head", "", "head directory (default: the base alone)")
	f.StringVar(&o.data, "data", "", "chat JSONL whose last assistant messages end with \"answer: N\"")
	f.IntVar(&o.show, "show", 3, "problems to print with their generated replies")
	f.IntVar(&o.maxTokens, "max-tokens", 0, "tokens to generate at most per problem (0: up to the context)")
	f.IntVar(&o.threads, "threads", 0, "threads of the base model (0: all CPUs)")
	f.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON object")
	return cmd
}

// answerProblem is one chat to answer.
type answerProblem struct {
	prompt   []chatMessage
	expected int64
}

// answerExample is one problem and its reply, as printed.
type answerExample struct {
	Question string `json:"question"`
	Reply    string `json:"reply"`
	Expected int64  `json:"expected"`
	Answer   *int64 `json:"answer"` // nil: the reply has no answer
	Correct  bool   `json:"correct"`
}

// answerEvalResult is what eval reports (--json prints it).
type answerEvalResult struct {
	Model     string          `json:"model"`
	Head      string          `json:"head,omitempty"`
	Problems  int             `json:"problems"`
	Correct   int             `json:"correct"`
	Answered  int             `json:"answered"`
	Accuracy  float64         `json:"accuracy"`
	Tokens    int             `json:"generated_tokens"`
	Seconds   float64         `json:"seconds"`
	Examples  []answerExample `json:"examples"`
	PeakRSSMB float64         `json:"peak_rss_mb"`
}

// answerProblems turns chats into problems: the messages before the last
// assistant message are the prompt, that message's "answer: N" the
// expected answer.
func answerProblems(path string, chats []chatLine) ([]answerProblem, error) {
	var out []answerProblem
	for i, c := range chats {
		last := -1
		for k, m := range c.Messages {
			if m.Role == "assistant" {
				last = k
			}
		}
		want, ok := parseAnswer(c.Messages[last].Content)
		if !ok {
			return nil, fmt.Errorf("%s: chat %d: its last assistant message has no \"answer: N\"", path, i+1)
		}
		if last == 0 {
			return nil, fmt.Errorf("%s: chat %d: nothing before the assistant message to ask", path, i+1)
		}
		out = append(out, answerProblem{prompt: c.Messages[:last], expected: want})
	}
	return out, nil
}

func runTrainEval(ctx context.Context, stdout io.Writer, o answerEvalOptions) error {
	if o.model == "" || o.data == "" {
		return errors.New("train eval: --model and --data are required")
	}
	if o.maxTokens < 0 || o.show < 0 {
		return errors.New("train eval: --max-tokens and --show must not be negative")
	}
	data, err := os.ReadFile(o.data)
	if err != nil {
		return fmt.Errorf("train eval: %w", err)
	}
	chats, err := readChats(o.data, data)
	if err != nil {
		return fmt.Errorf("train eval: %w", err)
	}
	problems, err := answerProblems(o.data, chats)
	if err != nil {
		return fmt.Errorf("train eval: %w", err)
	}
	if len(problems) == 0 {
		return fmt.Errorf("train eval: %s holds no chats", o.data)
	}
	path, err := resolveModelPath(o.model)
	if err != nil {
		return err
	}
	var head *carryonhead.Head
	if o.head != "" {
		if head, err = loadHeadFor(o.head, path); err != nil {
			return fmt.Errorf("train eval: %w", err)
		}
	}
	model, err := llm.Load(path, llm.Options{Threads: o.threads})
	if err != nil {
		return err
	}
	defer model.Close()
	tok, err := tokenizer.FromGGUF(model.Meta())
	if err != nil {
		return fmt.Errorf("train eval: %s: %w", path, err)
	}
	ctxLen := model.Config().Context
	if head != nil {
		if hc := head.Config(); hc.Context > 0 && hc.Context < ctxLen {
			ctxLen = hc.Context
		}
	}

	res := answerEvalResult{Model: o.model, Head: o.head, Problems: len(problems), Examples: []answerExample{}}
	start := time.Now()
	for i, p := range problems {
		prompt, _ := chatTokens(tok, p.prompt, true)
		reply, n, err := generateReply(ctx, model, head, tok, prompt, ctxLen, o.maxTokens)
		if err != nil {
			return fmt.Errorf("train eval: problem %d: %w", i+1, err)
		}
		res.Tokens += n
		got, ok := parseAnswer(reply)
		ex := answerExample{Question: p.prompt[len(p.prompt)-1].Content, Reply: reply, Expected: p.expected, Correct: ok && got == p.expected}
		if ok {
			ex.Answer = &got
			res.Answered++
		}
		if ex.Correct {
			res.Correct++
		}
		if i < o.show {
			res.Examples = append(res.Examples, ex)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Accuracy = float64(res.Correct) / float64(res.Problems)
	res.PeakRSSMB = peakRSSMB()
	if o.jsonOut {
		return json.NewEncoder(stdout).Encode(res)
	}
	for _, ex := range res.Examples {
		mark := "wrong"
		if ex.Correct {
			mark = "right"
		}
		fmt.Fprintf(stdout, "--- %s (expected %d, %s)\n%s\n", ex.Question, ex.Expected, mark, strings.TrimRight(ex.Reply, "\n"))
	}
	who := "base alone"
	if o.head != "" {
		who = "base + head " + o.head
	}
	fmt.Fprintf(stdout, "%s: %d/%d correct (%.1f%%), %d with an answer; %d tokens in %.1fs\n",
		who, res.Correct, res.Problems, 100*res.Accuracy, res.Answered, res.Tokens, res.Seconds)
	return nil
}

// generateReply generates greedily after prompt until the line after
// "answer:" ends, an end-of-generation token, maxTokens tokens (0: no
// limit) or ctxLen positions, and returns the text and the number of tokens
// generated.
func generateReply(ctx context.Context, model *llm.Model, head *carryonhead.Head, tok *tokenizer.Tokenizer,
	prompt []int32, ctxLen, maxTokens int) (string, int, error) {
	if len(prompt) >= ctxLen {
		return "", 0, fmt.Errorf("the prompt has %d tokens, the context holds %d", len(prompt), ctxLen)
	}
	s, err := newHeadedSequence(model, head, ctxLen)
	if err != nil {
		return "", 0, err
	}
	defer s.Close()
	logits, err := s.Feed(ctx, prompt)
	if err != nil {
		return "", 0, err
	}
	var ids []int32
	for maxTokens == 0 || len(ids) < maxTokens {
		id := argmax(logits)
		if tok.IsEOG(id) {
			break
		}
		ids = append(ids, id)
		text := tok.Decode(ids)
		if i := strings.LastIndex(text, "answer:"); i >= 0 && strings.Contains(text[i:], "\n") {
			break
		}
		if s.Len() >= ctxLen {
			break
		}
		if logits, err = s.Feed(ctx, []int32{id}); err != nil {
			return "", 0, err
		}
	}
	return tok.Decode(ids), len(ids), nil
}

package e2e

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
)

// ollamaClient returns Ollama's own Go client for a server.
func ollamaClient(t *testing.T, base string) *api.Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return api.NewClient(u, http.DefaultClient)
}

// greedyOptions make Ollama's sampling greedy (its default repeat penalty
// included).
func greedyOptions(n int) map[string]any {
	return map[string]any{"temperature": 0, "repeat_penalty": 1, "num_predict": n}
}

func TestOllamaClientGenerate(t *testing.T) {
	c := ollamaClient(t, startServer(t))
	ctx := context.Background()
	var text strings.Builder
	var last api.GenerateResponse
	parts := 0
	err := c.Generate(ctx, &api.GenerateRequest{Model: "stories260k", Prompt: "Once upon a time", Options: greedyOptions(40)},
		func(r api.GenerateResponse) error {
			parts++
			text.WriteString(r.Response)
			last = r
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if text.String() != storiesGreedy || parts < 10 {
		t.Errorf("streamed %q in %d parts", text.String(), parts)
	}
	if !last.Done || last.DoneReason != "length" || last.EvalCount != 40 || last.PromptEvalCount != 5 || len(last.Context) != 45 {
		t.Errorf("final response %+v", last)
	}
	// Not streamed: one callback with everything.
	stream := false
	calls := 0
	err = c.Generate(ctx, &api.GenerateRequest{Model: "stories260k:latest", Prompt: "Once upon a time", Stream: &stream, Options: greedyOptions(40)},
		func(r api.GenerateResponse) error {
			calls++
			if r.Response != storiesGreedy || !r.Done {
				t.Errorf("non-streamed response %+v", r)
			}
			return nil
		})
	if err != nil || calls != 1 {
		t.Errorf("non-streamed: %v, %d callbacks", err, calls)
	}
}

func TestOllamaClientChat(t *testing.T) {
	c := ollamaClient(t, startServer(t))
	ctx := context.Background()
	req := &api.ChatRequest{Model: "stories260k", Messages: []api.Message{{Role: "user", Content: "Once upon a time"}}, Options: greedyOptions(12)}
	var text strings.Builder
	var last api.ChatResponse
	if err := c.Chat(ctx, req, func(r api.ChatResponse) error {
		text.WriteString(r.Message.Content)
		last = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !last.Done || last.EvalCount == 0 || text.Len() == 0 {
		t.Errorf("chat: %q, final %+v", text.String(), last)
	}
	stream := false
	req.Stream = &stream
	if err := c.Chat(ctx, req, func(r api.ChatResponse) error {
		if r.Message.Content != text.String() || r.Message.Role != "assistant" {
			t.Errorf("non-streamed %q, streamed %q", r.Message.Content, text.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Errors come back as the client's StatusError.
	err := c.Chat(ctx, &api.ChatRequest{Model: "llama3", Messages: req.Messages}, func(api.ChatResponse) error { return nil })
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || !strings.Contains(se.ErrorMessage, "not found") {
		t.Errorf("unknown model: %v", err)
	}
}

func TestOllamaClientEmbedAndModels(t *testing.T) {
	c := ollamaClient(t, startServer(t))
	ctx := context.Background()
	e, err := c.Embed(ctx, &api.EmbedRequest{Model: "stories260k", Input: []string{"Once upon a time", "The cat"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Embeddings) != 2 || len(e.Embeddings[0]) != 64 || e.PromptEvalCount == 0 {
		t.Fatalf("embed %+v", e)
	}
	var ss float64
	for _, x := range e.Embeddings[0] {
		ss += float64(x) * float64(x)
	}
	if math.Abs(math.Sqrt(ss)-1) > 1e-4 {
		t.Errorf("norm %v", math.Sqrt(ss))
	}
	tags, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Models) != 1 || tags.Models[0].Name != "stories260k" || tags.Models[0].Details.Family != "llama" {
		t.Errorf("tags %+v", tags)
	}
	ps, err := c.ListRunning(ctx)
	if err != nil || len(ps.Models) != 1 || ps.Models[0].ContextLength != 128 {
		t.Errorf("ps %+v %v", ps, err)
	}
	show, err := c.Show(ctx, &api.ShowRequest{Model: "stories260k"})
	if err != nil || show.Details.Format != "gguf" || show.ModelInfo["llama.context_length"] == nil {
		t.Errorf("show %+v %v", show, err)
	}
	v, err := c.Version(ctx)
	if err != nil || v == "" {
		t.Errorf("version %q %v", v, err)
	}
}

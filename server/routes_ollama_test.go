package server

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
)

// ollamaErr checks an Ollama error response: the status and a body of
// {"error": "..."} mentioning want.
func ollamaErr(t *testing.T, r response, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e struct {
		Error string `json:"error"`
	}
	r.json(t, &e)
	if e.Error == "" || !strings.Contains(e.Error, want) {
		t.Errorf("error %q, want one mentioning %q", e.Error, want)
	}
}

func TestOllamaGenerate(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	// Streaming is the default: NDJSON lines, the last one done with
	// metrics and the context.
	r := s.post(t, "/api/generate", `{"model":"stories260k","prompt":"Once upon a time","options":{"temperature":0,"repeat_penalty":1,"num_predict":40}}`)
	if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	lines := ndjsonLines(t, r.body)
	var text strings.Builder
	var last api.GenerateResponse
	for i, l := range lines {
		var g api.GenerateResponse
		if err := json.Unmarshal([]byte(l), &g); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if g.Model != "stories260k" || g.CreatedAt.IsZero() {
			t.Errorf("line %q", l)
		}
		if g.Done != (i == len(lines)-1) {
			t.Errorf("line %d done=%v", i, g.Done)
		}
		text.WriteString(g.Response)
		last = g
	}
	if text.String() != storiesGreedy {
		t.Errorf("text %q", text.String())
	}
	if last.DoneReason != "length" || last.PromptEvalCount != 5 || last.EvalCount != 40 || last.TotalDuration <= 0 || last.EvalDuration <= 0 {
		t.Errorf("final line %+v", last)
	}
	if len(last.Context) != 45 || last.Context[0] != 1 {
		t.Errorf("context %v", last.Context)
	}
	// The same without streaming, and continuing from the context.
	var whole api.GenerateResponse
	s.post(t, "/api/generate", `{"model":"stories260k:latest","prompt":"Once upon a time","stream":false,"options":{"temperature":0,"repeat_penalty":1,"num_predict":40}}`).json(t, &whole)
	if whole.Response != storiesGreedy || !whole.Done || whole.DoneReason != "length" {
		t.Errorf("non-streaming %+v", whole)
	}
	ctx, _ := json.Marshal(whole.Context[:10])
	var cont api.GenerateResponse
	s.post(t, "/api/generate", `{"model":"stories260k","raw":true,"prompt":"","context":`+string(ctx)+`,"stream":false,"options":{"temperature":0,"repeat_penalty":1,"num_predict":5}}`).json(t, &cont)
	if !strings.HasPrefix(strings.TrimPrefix(storiesGreedy, ", there was a little"), cont.Response) || cont.Response == "" {
		t.Errorf("continuation from the context: %q", cont.Response)
	}
	// Stop strings and the load call.
	var stopped api.GenerateResponse
	s.post(t, "/api/generate", `{"model":"stories260k","prompt":"Once upon a time","stream":false,"options":{"temperature":0,"repeat_penalty":1,"num_predict":40,"stop":["Lily"]}}`).json(t, &stopped)
	if stopped.Response != ", there was a little girl named " || stopped.DoneReason != "stop" {
		t.Errorf("stop: %+v", stopped)
	}
	var load api.GenerateResponse
	s.post(t, "/api/generate", `{"model":"stories260k"}`).json(t, &load)
	if !load.Done || load.DoneReason != "load" {
		t.Errorf("load: %+v", load)
	}
}

func TestOllamaChat(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	body := `{"model":"tiny","messages":[{"role":"user","content":"Hello"}],"options":{"temperature":0,"repeat_penalty":1,"num_predict":10},"logprobs":true,"top_logprobs":2}`
	lines := ndjsonLines(t, s.post(t, "/api/chat", body).body)
	var text strings.Builder
	var last api.ChatResponse
	nlp := 0
	for _, l := range lines {
		var c api.ChatResponse
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		if c.Message.Role != "assistant" {
			t.Errorf("role %q", c.Message.Role)
		}
		text.WriteString(c.Message.Content)
		for _, lp := range c.Logprobs {
			nlp++
			if lp.Logprob > 0 || len(lp.TopLogprobs) != 2 {
				t.Errorf("logprob %+v", lp)
			}
		}
		last = c
	}
	if !last.Done || (last.DoneReason != "stop" && last.DoneReason != "length") || last.EvalCount == 0 {
		t.Errorf("final line %+v", last)
	}
	if nlp == 0 {
		t.Error("no logprobs")
	}
	var whole api.ChatResponse
	s.post(t, "/api/chat", strings.Replace(body, `"logprobs":true`, `"stream":false,"logprobs":true`, 1)).json(t, &whole)
	if whole.Message.Content != text.String() || !whole.Done {
		t.Errorf("non-streaming %q, streamed %q", whole.Message.Content, text.String())
	}
	if len(whole.Logprobs) != nlp {
		t.Errorf("non-streaming logprobs %d, streamed %d", len(whole.Logprobs), nlp)
	}
	// No messages loads the model.
	var load api.ChatResponse
	s.post(t, "/api/chat", `{"model":"tiny","messages":[]}`).json(t, &load)
	if !load.Done || load.DoneReason != "load" {
		t.Errorf("load: %+v", load)
	}
}

func TestOllamaEmbed(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	var e api.EmbedResponse
	s.post(t, "/api/embed", `{"model":"tiny","input":["hello world","the cat"]}`).json(t, &e)
	if e.Model != "tiny" || len(e.Embeddings) != 2 || len(e.Embeddings[0]) != 64 || e.PromptEvalCount == 0 {
		t.Fatalf("embed %+v", e)
	}
	// The vectors are the OpenAI route's.
	var o struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	s.post(t, "/v1/embeddings", `{"model":"tiny","input":"the cat"}`).json(t, &o)
	if !slices.Equal(o.Data[0].Embedding, e.Embeddings[1]) {
		t.Error("/api/embed and /v1/embeddings differ")
	}
	var d api.EmbedResponse
	s.post(t, "/api/embed", `{"model":"tiny","input":"the cat","dimensions":16}`).json(t, &d)
	if len(d.Embeddings[0]) != 16 || math.Abs(norm(d.Embeddings[0])-1) > 1e-4 {
		t.Errorf("dimensions 16: %v", d.Embeddings)
	}
	// Inputs longer than the context are cut unless truncate is false.
	long := strings.Repeat("the cat sat ", 200)
	var cut api.EmbedResponse
	s.post(t, "/api/embed", `{"model":"tiny","input":"`+long+`"}`).json(t, &cut)
	if cut.PromptEvalCount != 256 {
		t.Errorf("truncated input counted %d tokens, want the context of 256", cut.PromptEvalCount)
	}
	ollamaErr(t, s.post(t, "/api/embed", `{"model":"tiny","input":"`+long+`","truncate":false}`), 400, "context")
	ollamaErr(t, s.post(t, "/api/embed", `{"model":"tiny","input":[1,2]}`), 400, "not a string")
}

func TestOllamaModelRoutes(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel(), storiesModel(t)))
	var tags api.ListResponse
	s.get(t, "/api/tags").json(t, &tags)
	if len(tags.Models) != 2 || tags.Models[0].Name != "stories260k" || tags.Models[1].Name != "tiny" {
		t.Fatalf("tags %+v", tags)
	}
	st := tags.Models[0]
	if st.Size != 1185376 || len(st.Digest) != 64 || st.Details.Format != "gguf" || st.Details.Family != "llama" || st.Details.QuantizationLevel != "F32" || st.ModifiedAt.IsZero() {
		t.Errorf("stories260k tag %+v", st)
	}
	if st.Details.ParameterSize != "293K" {
		t.Errorf("parameter size %q", st.Details.ParameterSize)
	}
	var ps api.ProcessResponse
	s.get(t, "/api/ps").json(t, &ps)
	if len(ps.Models) != 2 || ps.Models[0].ContextLength != 128 {
		t.Errorf("ps %+v", ps)
	}
	var show api.ShowResponse
	s.post(t, "/api/show", `{"model":"tiny"}`).json(t, &show)
	if show.Template != chatmlTemplate || show.ModelInfo["general.architecture"] != "llama" || !strings.Contains(show.Modelfile, "FROM ") {
		t.Errorf("show %+v", show)
	}
	if v, ok := show.ModelInfo["tokenizer.ggml.tokens"]; !ok || v != nil {
		t.Errorf("the vocabulary should be listed as null, got %v", v)
	}
	if len(show.Capabilities) == 0 {
		t.Error("no capabilities")
	}
	var v map[string]string
	s.get(t, "/api/version").json(t, &v)
	if v["version"] != OllamaVersion {
		t.Errorf("version %v", v)
	}
}

func TestOllamaErrors(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	ollamaErr(t, s.post(t, "/api/chat", `{"model":"llama3","messages":[{"role":"user","content":"x"}]}`), 404, "not found")
	ollamaErr(t, s.post(t, "/api/generate", `{"prompt":"x"}`), 400, "model is required")
	ollamaErr(t, s.post(t, "/api/generate", `{"model":"tiny","prompt":"x","options":{"temperature":"hot"}}`), 400, "temperature")
	ollamaErr(t, s.post(t, "/api/generate", `{"model":"tiny","prompt":"x","format":"json"}`), 400, "format")
	ollamaErr(t, s.post(t, "/api/generate", `{"model":"tiny","prompt":"x","images":["aGVsbG8="]}`), 400, "images")
	ollamaErr(t, s.post(t, "/api/generate", `{"model":"tiny","prompt":"x","context":[100000]}`), 400, "vocabulary")
	ollamaErr(t, s.post(t, "/api/generate", `{"model":"tiny","prompt":"`+strings.Repeat("long story ", 200)+`"}`), 400, "context length")
	ollamaErr(t, s.post(t, "/api/chat", `{"model":"tiny","messages":"hi"}`), 400, "invalid request body")
	ollamaErr(t, s.post(t, "/api/chat", `{"model":"tiny","messages":[{"role":"narrator","content":"x"}]}`), 400, "narrator")
	ollamaErr(t, s.post(t, "/api/show", `{"model":"nope"}`), 404, "not found")
	ollamaErr(t, s.post(t, "/api/embed", ``), 400, "missing request body")
	if r := s.get(t, "/api/chat"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/chat: %d", r.status)
	}
}

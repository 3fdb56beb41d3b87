package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/carryon/carryon/server/openai"
)

// storiesGreedy is stories260K's greedy continuation of "Once upon a time"
// (40 tokens), as llama.cpp produces it.
const storiesGreedy = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."

func TestChatCompletion(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	r := s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}],"max_tokens":8,"temperature":0}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	// The exact members OpenAI sends, null ones included.
	var raw map[string]json.RawMessage
	r.json(t, &raw)
	for _, k := range []string{"id", "object", "created", "model", "system_fingerprint", "choices", "usage"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("member %q missing: %s", k, r.body)
		}
	}
	var choices []map[string]json.RawMessage
	if err := json.Unmarshal(raw["choices"], &choices); err != nil || len(choices) != 1 {
		t.Fatalf("choices: %v %s", err, raw["choices"])
	}
	if string(choices[0]["logprobs"]) != "null" {
		t.Errorf("logprobs %s, want null", choices[0]["logprobs"])
	}
	var out openai.ChatCompletion
	r.json(t, &out)
	if !strings.HasPrefix(out.ID, "chatcmpl-") || out.Object != "chat.completion" || out.Model != "tiny" || out.Created == 0 {
		t.Errorf("header fields: %+v", out)
	}
	ch := out.Choices[0]
	if ch.Index != 0 || ch.Message.Role != "assistant" || (ch.FinishReason != "stop" && ch.FinishReason != "length") {
		t.Errorf("choice %+v", ch)
	}
	// The prompt is the ChatML rendering of the messages, with BOS.
	m, _ := s.lookup("tiny")
	prompt := m.tok.Encode("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", true, true)
	u := out.Usage
	if u.PromptTokens != len(prompt) || u.CompletionTokens < 1 || u.CompletionTokens > 8 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %+v, want %d prompt tokens", u, len(prompt))
	}
	if ch.FinishReason == "length" && u.CompletionTokens != 8 {
		t.Errorf("finished for length after %d tokens, max_tokens 8", u.CompletionTokens)
	}
}

// chunk is a decoded stream chunk of either endpoint.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta *struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         *string          `json:"text"`
		Logprobs     *json.RawMessage `json:"logprobs"`
		FinishReason *string          `json:"finish_reason"`
	} `json:"choices"`
	Usage *openai.Usage `json:"usage"`
}

// streamResult is what a stream delivered per choice.
type streamResult struct {
	texts    map[int]string
	finish   map[int]string
	usage    *openai.Usage
	chunks   []chunk
	raw      []string
	sawDone  bool
	sawError string
}

// readStream checks the framing of an OpenAI stream and collects it.
func readStream(t *testing.T, r response, includeUsage bool) streamResult {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	res := streamResult{texts: map[int]string{}, finish: map[int]string{}}
	events := sseEvents(t, r.body)
	for i, ev := range events {
		if strings.HasPrefix(ev, ":") {
			continue
		}
		if ev == "[DONE]" {
			if i != len(events)-1 {
				t.Errorf("[DONE] is not the last event")
			}
			res.sawDone = true
			continue
		}
		res.raw = append(res.raw, ev)
		if strings.HasPrefix(ev, `{"error"`) {
			res.sawError = ev
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(ev), &raw); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		u, has := raw["usage"]
		if has != includeUsage {
			t.Errorf("usage member present=%v, want %v: %s", has, includeUsage, ev)
		}
		var c chunk
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) == 0 {
			if !includeUsage || string(u) == "null" {
				t.Errorf("a chunk without choices that is not the usage chunk: %s", ev)
			}
			res.usage = c.Usage
			continue
		}
		if includeUsage && string(u) != "null" {
			t.Errorf("a chunk with choices has usage %s, want null", u)
		}
		if res.usage != nil {
			t.Errorf("a chunk follows the usage chunk: %s", ev)
		}
		res.chunks = append(res.chunks, c)
		for _, ch := range c.Choices {
			if ch.Delta != nil && ch.Delta.Content != nil {
				res.texts[ch.Index] += *ch.Delta.Content
			}
			if ch.Text != nil {
				res.texts[ch.Index] += *ch.Text
			}
			if ch.FinishReason != nil {
				if _, dup := res.finish[ch.Index]; dup {
					t.Errorf("choice %d finished twice", ch.Index)
				}
				res.finish[ch.Index] = *ch.FinishReason
			} else if _, done := res.finish[ch.Index]; done {
				t.Errorf("choice %d has a chunk after its finish", ch.Index)
			}
		}
	}
	if res.sawError == "" && !res.sawDone {
		t.Errorf("the stream did not end with [DONE]:\n%s", r.body)
	}
	if includeUsage && res.sawError == "" && res.usage == nil {
		t.Errorf("no usage chunk")
	}
	return res
}

func TestChatCompletionStream(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	body := `{"model":"tiny","messages":[{"role":"user","content":"Hello"}],"max_tokens":12,"temperature":0,"n":2,"stream":true,"stream_options":{"include_usage":true}}`
	res := readStream(t, s.post(t, "/v1/chat/completions", body), true)
	// Each choice opens with the role, then content, then one finish.
	for i := range 2 {
		first := -1
		for j, c := range res.chunks {
			if c.Choices[0].Index == i {
				first = j
				break
			}
		}
		d := res.chunks[first].Choices[0].Delta
		if d == nil || d.Role == nil || *d.Role != "assistant" || d.Content == nil || *d.Content != "" {
			t.Errorf("choice %d: first chunk is not the role delta: %s", i, res.raw[first])
		}
		if f := res.finish[i]; f != "stop" && f != "length" {
			t.Errorf("choice %d finish %q", i, f)
		}
	}
	for _, c := range res.chunks {
		if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.ID != res.chunks[0].ID || c.Model != "tiny" {
			t.Errorf("chunk header %+v", c)
		}
		if len(c.Choices) != 1 {
			t.Errorf("chunk with %d choices", len(c.Choices))
		}
	}
	// Greedy choices are equal, and equal to the non-streaming answer.
	if res.texts[0] != res.texts[1] {
		t.Errorf("greedy choices differ: %q vs %q", res.texts[0], res.texts[1])
	}
	var whole openai.ChatCompletion
	s.post(t, "/v1/chat/completions", strings.Replace(strings.Replace(body, `"stream":true,"stream_options":{"include_usage":true}`, `"stream":false`, 1), `"n":2`, `"n":1`, 1)).json(t, &whole)
	if whole.Choices[0].Message.Content != res.texts[0] || whole.Choices[0].FinishReason != res.finish[0] {
		t.Errorf("stream %q/%s, non-stream %q/%s", res.texts[0], res.finish[0], whole.Choices[0].Message.Content, whole.Choices[0].FinishReason)
	}
	if res.usage.PromptTokens != whole.Usage.PromptTokens || res.usage.CompletionTokens != 2*whole.Usage.CompletionTokens {
		t.Errorf("stream usage %+v, non-stream (n=1) %+v", res.usage, whole.Usage)
	}
	// Without include_usage no chunk has a usage member.
	readStream(t, s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"stream":true}`), false)
}

// chatLogprobsBody is the logprobs member of a chat choice.
type chatLogprobsBody struct {
	Content []struct {
		Token       string  `json:"token"`
		Logprob     float64 `json:"logprob"`
		Bytes       []int   `json:"bytes"`
		TopLogprobs []struct {
			Token   string  `json:"token"`
			Logprob float64 `json:"logprob"`
			Bytes   []int   `json:"bytes"`
		} `json:"top_logprobs"`
	} `json:"content"`
}

func checkChatLogprobs(t *testing.T, lp chatLogprobsBody, text string, top int) {
	t.Helper()
	var joined strings.Builder
	for _, c := range lp.Content {
		joined.WriteString(c.Token)
		if c.Logprob > 0 || math.IsNaN(c.Logprob) {
			t.Errorf("logprob %v", c.Logprob)
		}
		if !slices.Equal(c.Bytes, openai.TokenBytes(c.Token)) {
			t.Errorf("bytes %v of %q", c.Bytes, c.Token)
		}
		if len(c.TopLogprobs) != top {
			t.Errorf("%d top logprobs, want %d", len(c.TopLogprobs), top)
		}
		for i := 1; i < len(c.TopLogprobs); i++ {
			if c.TopLogprobs[i].Logprob > c.TopLogprobs[i-1].Logprob {
				t.Errorf("top logprobs out of order: %+v", c.TopLogprobs)
			}
		}
		if len(c.TopLogprobs) > 0 && c.TopLogprobs[0].Logprob < c.Logprob-1e-6 {
			t.Errorf("greedy token %q (%v) is less likely than the top %v", c.Token, c.Logprob, c.TopLogprobs[0])
		}
	}
	if joined.String() != text {
		t.Errorf("tokens join to %q, content is %q", joined.String(), text)
	}
}

func TestChatLogprobs(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	body := `{"model":"stories260k","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":10,"temperature":0,"logprobs":true,"top_logprobs":3}`
	var out struct {
		Choices []struct {
			Message  struct{ Content string } `json:"message"`
			Logprobs chatLogprobsBody         `json:"logprobs"`
		} `json:"choices"`
	}
	s.post(t, "/v1/chat/completions", body).json(t, &out)
	text := out.Choices[0].Message.Content
	if len(out.Choices[0].Logprobs.Content) != 10 {
		t.Errorf("%d logprobs for 10 tokens", len(out.Choices[0].Logprobs.Content))
	}
	checkChatLogprobs(t, out.Choices[0].Logprobs, text, 3)

	// Streamed: each content chunk carries the logprobs of its tokens.
	r := s.post(t, "/v1/chat/completions", strings.Replace(body, `"logprobs":true`, `"logprobs":true,"stream":true`, 1))
	var all chatLogprobsBody
	var streamed strings.Builder
	for _, ev := range sseEvents(t, r.body) {
		if ev == "[DONE]" || strings.HasPrefix(ev, ":") {
			continue
		}
		var c struct {
			Choices []struct {
				Delta    struct{ Content *string } `json:"delta"`
				Logprobs *chatLogprobsBody         `json:"logprobs"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				streamed.WriteString(*ch.Delta.Content)
				if ch.Logprobs == nil {
					t.Errorf("content chunk without logprobs: %s", ev)
					continue
				}
				all.Content = append(all.Content, ch.Logprobs.Content...)
			}
		}
	}
	if streamed.String() != text {
		t.Errorf("streamed %q, whole %q", streamed.String(), text)
	}
	checkChatLogprobs(t, all, text, 3)
}

func TestCompletionsGreedyStories(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	body := `{"model":"stories260k","prompt":"Once upon a time","max_tokens":40,"temperature":0}`
	var out openai.Completion
	r := s.post(t, "/v1/completions", body)
	r.json(t, &out)
	if out.Object != "text_completion" || !strings.HasPrefix(out.ID, "cmpl-") || len(out.Choices) != 1 {
		t.Fatalf("response %s", r.body)
	}
	if got := out.Choices[0].Text; got != storiesGreedy {
		t.Errorf("greedy text %q, want %q", got, storiesGreedy)
	}
	if *out.Choices[0].FinishReason != "length" || out.Usage.PromptTokens != 5 || out.Usage.CompletionTokens != 40 {
		t.Errorf("finish %s usage %+v", *out.Choices[0].FinishReason, out.Usage)
	}
	res := readStream(t, s.post(t, "/v1/completions", strings.Replace(body, "}", `,"stream":true}`, 1)), false)
	if res.texts[0] != storiesGreedy || res.finish[0] != "length" {
		t.Errorf("streamed %q (%s)", res.texts[0], res.finish[0])
	}
	// A bias makes the end-of-sequence token the greedy choice; ignore_eos
	// bans it again, and the choice runs to max_tokens.
	var eos, long openai.Completion
	s.post(t, "/v1/completions", `{"model":"stories260k","prompt":"Once upon a time","max_tokens":20,"temperature":0,"logit_bias":{"2":100}}`).json(t, &eos)
	s.post(t, "/v1/completions", `{"model":"stories260k","prompt":"Once upon a time","max_tokens":20,"temperature":0,"logit_bias":{"2":100},"ignore_eos":true}`).json(t, &long)
	if *eos.Choices[0].FinishReason != "stop" || eos.Choices[0].Text != "" || eos.Usage.CompletionTokens != 1 {
		t.Errorf("end-of-sequence forced: %q %s after %d tokens", eos.Choices[0].Text, *eos.Choices[0].FinishReason, eos.Usage.CompletionTokens)
	}
	if *long.Choices[0].FinishReason != "length" || long.Usage.CompletionTokens != 20 {
		t.Errorf("ignore_eos: %s after %d tokens", *long.Choices[0].FinishReason, long.Usage.CompletionTokens)
	}
	// A prompt given as token ids (with BOS) is the same prompt.
	var byIDs openai.Completion
	s.post(t, "/v1/completions", `{"model":"stories260k","prompt":[1,403,407,261,378],"max_tokens":40,"temperature":0}`).json(t, &byIDs)
	if byIDs.Choices[0].Text != storiesGreedy {
		t.Errorf("token prompt gave %q", byIDs.Choices[0].Text)
	}
}

func TestCompletionsStop(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	for _, stop := range []string{`"Lily"`, `["x-never","Lily","ball"]`} {
		body := `{"model":"stories260k","prompt":"Once upon a time","max_tokens":40,"temperature":0,"stop":` + stop + `}`
		var out openai.Completion
		s.post(t, "/v1/completions", body).json(t, &out)
		want := ", there was a little girl named "
		if out.Choices[0].Text != want || *out.Choices[0].FinishReason != "stop" {
			t.Errorf("stop %s: %q (%s), want %q", stop, out.Choices[0].Text, *out.Choices[0].FinishReason, want)
		}
		r := s.post(t, "/v1/completions", strings.Replace(body, "}", `,"stream":true}`, 1))
		if strings.Contains(string(r.body), "Lily") {
			t.Errorf("the stop string was streamed:\n%s", r.body)
		}
		if res := readStream(t, r, false); res.texts[0] != want || res.finish[0] != "stop" {
			t.Errorf("streamed %q (%s)", res.texts[0], res.finish[0])
		}
	}
}

func TestCompletionsPromptsAndChoices(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	var single [2]openai.Completion
	for i, p := range []string{"Once upon a time", "The cat"} {
		s.post(t, "/v1/completions", `{"model":"stories260k","prompt":"`+p+`","max_tokens":12,"temperature":0}`).json(t, &single[i])
	}
	var out openai.Completion
	s.post(t, "/v1/completions", `{"model":"stories260k","prompt":["Once upon a time","The cat"],"n":2,"max_tokens":12,"temperature":0}`).json(t, &out)
	if len(out.Choices) != 4 {
		t.Fatalf("%d choices, want 4", len(out.Choices))
	}
	for i, ch := range out.Choices {
		if ch.Index != i || ch.Text != single[i/2].Choices[0].Text {
			t.Errorf("choice %d (index %d) %q, want %q", i, ch.Index, ch.Text, single[i/2].Choices[0].Text)
		}
	}
	if out.Usage.PromptTokens != single[0].Usage.PromptTokens+single[1].Usage.PromptTokens {
		t.Errorf("usage %+v", out.Usage)
	}
	res := readStream(t, s.post(t, "/v1/completions", `{"model":"stories260k","prompt":["Once upon a time","The cat"],"n":2,"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`), true)
	for i := range 4 {
		if res.texts[i] != out.Choices[i].Text {
			t.Errorf("streamed choice %d %q, want %q", i, res.texts[i], out.Choices[i].Text)
		}
	}
	if res.usage.CompletionTokens != out.Usage.CompletionTokens {
		t.Errorf("streamed usage %+v, whole %+v", res.usage, out.Usage)
	}

	// echo puts the prompt in front; max_tokens 0 generates nothing.
	var echo openai.Completion
	s.post(t, "/v1/completions", `{"model":"stories260k","prompt":"Once upon a time","max_tokens":12,"temperature":0,"echo":true}`).json(t, &echo)
	if echo.Choices[0].Text != "Once upon a time"+single[0].Choices[0].Text {
		t.Errorf("echo %q", echo.Choices[0].Text)
	}
	var none openai.Completion
	s.post(t, "/v1/completions", `{"model":"stories260k","prompt":"Once upon a time","max_tokens":0,"echo":true}`).json(t, &none)
	if none.Choices[0].Text != "Once upon a time" || *none.Choices[0].FinishReason != "length" || none.Usage.CompletionTokens != 0 || none.Usage.PromptTokens != 5 {
		t.Errorf("max_tokens 0: %+v %+v", none.Choices[0], none.Usage)
	}
	res = readStream(t, s.post(t, "/v1/completions", `{"model":"stories260k","prompt":"Once upon a time","max_tokens":0,"stream":true,"stream_options":{"include_usage":true}}`), true)
	if res.finish[0] != "length" || res.usage.PromptTokens != 5 {
		t.Errorf("max_tokens 0 stream: %+v", res)
	}
}

func TestCompletionsLogprobs(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	var out struct {
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []float64            `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	s.post(t, "/v1/completions", `{"model":"stories260k","prompt":"Once upon a time","max_tokens":8,"temperature":0,"logprobs":2}`).json(t, &out)
	lp := out.Choices[0].Logprobs
	if len(lp.Tokens) != 8 || len(lp.TokenLogprobs) != 8 || len(lp.TopLogprobs) != 8 || len(lp.TextOffset) != 8 {
		t.Fatalf("logprobs arrays: %+v", lp)
	}
	if strings.Join(lp.Tokens, "") != out.Choices[0].Text {
		t.Errorf("tokens %q do not make the text %q", lp.Tokens, out.Choices[0].Text)
	}
	off := 0
	for i, tok := range lp.Tokens {
		if lp.TextOffset[i] != off {
			t.Errorf("text_offset[%d] = %d, want %d", i, lp.TextOffset[i], off)
		}
		off += len([]rune(tok))
		if len(lp.TopLogprobs[i]) == 0 || len(lp.TopLogprobs[i]) > 2 {
			t.Errorf("top_logprobs[%d] = %v", i, lp.TopLogprobs[i])
		}
		// Greedy: the chosen token is the most likely one.
		if best, ok := lp.TopLogprobs[i][tok]; !ok || math.Abs(best-lp.TokenLogprobs[i]) > 1e-6 {
			t.Errorf("token %q (%v) is not the top of %v", tok, lp.TokenLogprobs[i], lp.TopLogprobs[i])
		}
	}
}

func TestSeededSamplingRepeats(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	body := `{"model":"stories260k","prompt":"Once upon a time","max_tokens":20,"temperature":1,"seed":1234,"n":2}`
	var a, b openai.Completion
	s.post(t, "/v1/completions", body).json(t, &a)
	s.post(t, "/v1/completions", body).json(t, &b)
	for i := range 2 {
		if a.Choices[i].Text != b.Choices[i].Text {
			t.Errorf("choice %d: %q then %q with the same seed", i, a.Choices[i].Text, b.Choices[i].Text)
		}
	}
}

// TestBatchedEqualsUnbatched runs greedy requests one at a time and then
// all at once: continuous batching must not change their results.
func TestBatchedEqualsUnbatched(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	prompts := []string{"Once upon a time", "The cat", "Lily and Tom", "One day", "The sun was", "A little bird", "Tim had a", "Mom said"}
	body := func(p string) string {
		return `{"model":"stories260k","prompt":"` + p + `","max_tokens":24,"temperature":0}`
	}
	text := func(r response) string {
		var out openai.Completion
		r.json(t, &out)
		return out.Choices[0].Text
	}
	alone := make([]string, len(prompts))
	for i, p := range prompts {
		alone[i] = text(s.post(t, "/v1/completions", body(p)))
	}
	together := make([]response, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			together[i] = s.post(t, "/v1/completions", body(p))
		}()
	}
	wg.Wait()
	for i := range prompts {
		if got := text(together[i]); got != alone[i] {
			t.Errorf("prompt %q: batched %q, alone %q", prompts[i], got, alone[i])
		}
	}
}

func TestEmbeddings(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	var f struct {
		Object string `json:"object"`
		Model  string `json:"model"`
		Data   []struct {
			Object    string    `json:"object"`
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage openai.EmbeddingsUsage `json:"usage"`
	}
	s.post(t, "/v1/embeddings", `{"model":"tiny","input":["hello world","the cat"]}`).json(t, &f)
	if f.Object != "list" || f.Model != "tiny" || len(f.Data) != 2 || f.Usage.PromptTokens == 0 || f.Usage.TotalTokens != f.Usage.PromptTokens {
		t.Fatalf("response %+v", f)
	}
	for i, d := range f.Data {
		if d.Object != "embedding" || d.Index != i || len(d.Embedding) != 64 {
			t.Errorf("item %d: %s %d, %d floats", i, d.Object, d.Index, len(d.Embedding))
		}
		if n := norm(d.Embedding); math.Abs(n-1) > 1e-4 {
			t.Errorf("item %d has norm %v", i, n)
		}
	}
	// base64 holds the same floats, little-endian.
	var b struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	s.post(t, "/v1/embeddings", `{"model":"tiny","input":"hello world","encoding_format":"base64"}`).json(t, &b)
	raw, err := base64.StdEncoding.DecodeString(b.Data[0].Embedding)
	if err != nil || len(raw) != 4*64 {
		t.Fatalf("base64: %v, %d bytes", err, len(raw))
	}
	for i := range 64 {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); v != f.Data[0].Embedding[i] {
			t.Fatalf("element %d: base64 %v, float %v", i, v, f.Data[0].Embedding[i])
		}
	}
	// dimensions keeps a prefix, re-normalized.
	var d struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	s.post(t, "/v1/embeddings", `{"model":"tiny","input":"hello world","dimensions":8}`).json(t, &d)
	e := d.Data[0].Embedding
	if len(e) != 8 || math.Abs(norm(e)-1) > 1e-4 {
		t.Fatalf("dimensions 8: %v", e)
	}
	scale := float64(e[0]) / float64(f.Data[0].Embedding[0])
	for i := range 8 {
		if math.Abs(float64(e[i])-scale*float64(f.Data[0].Embedding[i])) > 1e-5 {
			t.Fatalf("dimensions 8 is not a scaled prefix: %v vs %v", e, f.Data[0].Embedding[:8])
		}
	}
	wantError(t, s.post(t, "/v1/embeddings", `{"model":"tiny","input":"x","dimensions":65}`), 400, openai.CodeInvalidValue, "dimensions")
	wantError(t, s.post(t, "/v1/embeddings", `{"model":"tiny","input":[[5,100000]]}`), 400, openai.CodeInvalidValue, "input")
}

func norm(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss)
}

func TestModelsRoutes(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel(), storiesModel(t)))
	var list openai.ModelList
	s.get(t, "/v1/models").json(t, &list)
	if list.Object != "list" || len(list.Data) != 2 || list.Hint != "" {
		t.Fatalf("list %+v", list)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy == "" || m.Created == 0 {
			t.Errorf("model %+v", m)
		}
	}
	if !slices.Equal(ids, []string{"tiny", "stories260k"}) {
		t.Errorf("ids %v", ids)
	}
	var one openai.Model
	s.get(t, "/v1/models/stories260k").json(t, &one)
	if one.ID != "stories260k" || one.MaxModelLen != 128 {
		t.Errorf("model %+v", one)
	}
	wantError(t, s.get(t, "/v1/models/nope"), 404, openai.CodeModelNotFound, "model")
}

func TestNoModels(t *testing.T) {
	s := startServer(t, testConfig(t))
	r := s.get(t, "/v1/models")
	if string(r.body) == "" || r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var list openai.ModelList
	r.json(t, &list)
	if list.Data == nil || len(list.Data) != 0 || !strings.Contains(list.Hint, "--model") {
		t.Errorf("no-model listing %s", r.body)
	}
	if !strings.Contains(string(r.body), `"data":[]`) {
		t.Errorf("data is not an empty array: %s", r.body)
	}
	wantError(t, s.post(t, "/v1/chat/completions", `{"model":"any","messages":[{"role":"user","content":"x"}]}`), 404, openai.CodeModelNotFound, "model")
}

// TestDataDirModels serves the GGUF files of DATA_DIR/models/.
func TestDataDirModels(t *testing.T) {
	cfg := testConfig(t)
	dir := cfg.DataDir + "/models"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(strings.TrimPrefix(tinyModel(), "tiny="))
	if err := os.WriteFile(dir+"/pocket.gguf", src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/broken.gguf", []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg)
	var list openai.ModelList
	s.get(t, "/v1/models").json(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != "pocket" {
		t.Errorf("data-dir models %+v (the broken file is skipped)", list.Data)
	}
}

func TestTokenizeRoutes(t *testing.T) {
	s := startServer(t, testConfig(t, storiesModel(t)))
	var tok openai.TokenizeResponse
	s.post(t, "/tokenize", `{"prompt":"Once upon a time","with_pieces":true}`).json(t, &tok)
	if !slices.Equal(tok.Tokens, []int32{1, 403, 407, 261, 378}) || tok.Count != 5 || tok.MaxModelLen != 128 || len(tok.Pieces) != 5 {
		t.Errorf("tokenize %+v", tok)
	}
	s.post(t, "/tokenize", `{"model":"stories260k","content":"Once upon a time","add_special":false}`).json(t, &tok)
	if !slices.Equal(tok.Tokens, []int32{403, 407, 261, 378}) {
		t.Errorf("without BOS %v", tok.Tokens)
	}
	// Messages are rendered with the chat template (plain for this model).
	var chat, plain openai.TokenizeResponse
	s.post(t, "/tokenize", `{"messages":[{"role":"user","content":"Hi"}]}`).json(t, &chat)
	s.post(t, "/tokenize", `{"prompt":"user: Hi\nassistant:"}`).json(t, &plain)
	if !slices.Equal(chat.Tokens, plain.Tokens) {
		t.Errorf("messages %v, rendered %v", chat.Tokens, plain.Tokens)
	}
	var de openai.DetokenizeResponse
	s.post(t, "/detokenize", `{"tokens":[1,403,407,261,378]}`).json(t, &de)
	if de.Prompt != "Once upon a time" {
		t.Errorf("detokenize %q", de.Prompt)
	}
	wantError(t, s.post(t, "/detokenize", `{"tokens":[100000]}`), 400, openai.CodeInvalidValue, "tokens")
}

func TestOpenAIErrors(t *testing.T) {
	cfg := testConfig(t, storiesModel(t))
	cfg.MaxBodyBytes = 4096
	cfg.MaxSequences = 4
	s := startServer(t, cfg)
	msg := `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct {
		path, body  string
		status      int
		code, param string
	}{
		{"/v1/chat/completions", `{"model":"stories260k",` + msg + `,"temperature":"warm"}`, 400, openai.CodeInvalidType, "temperature"},
		{"/v1/chat/completions", `{"model":"stories260k",` + msg + `,"n":true}`, 400, openai.CodeInvalidType, "n"},
		{"/v1/chat/completions", `{"model":"stories260k","messages":[{"role":"user","content":{}}]}`, 400, openai.CodeInvalidType, "messages.[0].content"},
		{"/v1/chat/completions", `{"model":"stories260k",` + msg + `,"n":5}`, 400, openai.CodeInvalidValue, "n"},
		{"/v1/chat/completions", `{"model":"stories260k",` + msg + `,"logit_bias":{"512":1}}`, 400, openai.CodeInvalidValue, "logit_bias"},
		{"/v1/chat/completions", `{"model":"gpt-4",` + msg + `}`, 404, openai.CodeModelNotFound, "model"},
		{"/v1/chat/completions", `{"model":"stories260k","messages":[{"role":"user","content":"` + strings.Repeat("long story ", 100) + `"}]}`, 400, openai.CodeContextLengthExceeded, "messages"},
		{"/v1/completions", `{"model":"stories260k","prompt":"` + strings.Repeat("long story ", 100) + `"}`, 400, openai.CodeContextLengthExceeded, "prompt"},
		{"/v1/completions", `{"model":"stories260k","prompt":[1,2,512]}`, 400, openai.CodeInvalidValue, "prompt"},
		{"/v1/completions", `{"model":"stories260k","prompt":[]}`, 400, openai.CodeInvalidValue, "prompt"},
		{"/v1/completions", `{"model":"stories260k"}`, 400, openai.CodeMissingParameter, "prompt"},
		{"/v1/completions", `not json`, 400, openai.CodeInvalidJSON, ""},
		{"/v1/embeddings", `{"model":"stories260k","input":"` + strings.Repeat("long story ", 100) + `"}`, 400, openai.CodeContextLengthExceeded, "input"},
		{"/v1/chat/completions", `{"model":"stories260k",` + msg + `,"pad":"` + strings.Repeat("x", 5000) + `"}`, 413, openai.CodeRequestTooLarge, ""},
		{"/v1/nothing", `{}`, 404, openai.CodeNotFound, ""},
	} {
		t.Run(fmt.Sprintf("%s %s", tc.path, tc.code), func(t *testing.T) {
			wantError(t, s.post(t, tc.path, tc.body), tc.status, tc.code, tc.param)
		})
	}
	r := s.get(t, "/v1/chat/completions")
	wantError(t, r, 405, openai.CodeMethodNotAllowed, "")
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
	// Unknown fields are ignored.
	if r := s.post(t, "/v1/chat/completions", `{"model":"stories260k",`+msg+`,"max_tokens":2,"future":{"x":[1]},"tools":[]}`); r.status != 200 {
		t.Errorf("unknown fields: %d %s", r.status, r.body)
	}
}

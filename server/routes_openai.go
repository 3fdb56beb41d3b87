package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/models/sample"
	"github.com/carryon/carryon/server/chat"
	"github.com/carryon/carryon/server/openai"
	"github.com/carryon/carryon/server/scheduler"
	"github.com/carryon/carryon/server/trafficlog"
)

// writeJSON writes v as a JSON body with the given status.
func writeJSON(c *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.SetStatusCode(http.StatusInternalServerError)
		c.SetContentType("application/json")
		c.SetBody(openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeInternal, "",
			"encode the response: "+err.Error()).Envelope())
		return
	}
	c.SetStatusCode(status)
	c.SetContentType("application/json")
	c.SetBody(b)
}

// newID returns a response id with the given prefix ("chatcmpl-").
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// fingerprint is the system_fingerprint of responses.
func (s *Server) fingerprint() string { return "carryon-" + s.version }

// model finds the request's model or writes the 404.
func (s *Server) model(c *fasthttp.RequestCtx, info *requestInfo, name string) (*Model, bool) {
	m, ok := s.lookupAny(name)
	if !ok {
		info.model = "unknown"
		s.writeError(c, info, openai.ModelNotFound(name))
		return nil, false
	}
	info.model = m.Name
	return m, true
}

// defaultModel finds the model a tokenizer request names, or the only
// model when it names none.
func (s *Server) defaultModel(c *fasthttp.RequestCtx, info *requestInfo, name string) (*Model, bool) {
	if name == "" {
		if len(s.models) == 1 {
			info.model = s.models[0].Name
			return s.models[0], true
		}
		s.writeError(c, info, openai.Invalid("model", openai.CodeMissingParameter,
			"Missing required parameter: 'model' (the server has %d models).", len(s.models)))
		return nil, false
	}
	return s.model(c, info, name)
}

// openAIParams turns OpenAI's sampling parameters into the sampler's,
// with OpenAI's defaults: temperature 1 and no top-k, top-p or min-p
// truncation; the presence and frequency penalties count over the whole
// sequence.
func openAIParams(s openai.Sampling, m *Model) (sample.Params, *openai.Error) {
	p := sample.DefaultParams()
	p.Temperature, p.TopK, p.TopP, p.MinP = 1, 0, 1, 0
	p.RepeatPenalty, p.RepeatLastN = 1, -1
	p.Seed = -1
	if s.Temperature != nil {
		p.Temperature = float32(*s.Temperature)
	}
	if s.TopP != nil {
		if *s.TopP == 0 {
			p.Temperature = 0 // keep only the most likely token
		} else {
			p.TopP = float32(*s.TopP)
		}
	}
	if s.TopK != nil {
		p.TopK = *s.TopK
	}
	if s.MinP != nil {
		p.MinP = float32(*s.MinP)
	}
	if s.RepeatPenalty != nil {
		p.RepeatPenalty = float32(*s.RepeatPenalty)
	}
	p.PresencePenalty = float32(s.PresencePenalty)
	p.FrequencyPenalty = float32(s.FrequencyPenalty)
	if s.Seed != nil {
		p.Seed = *s.Seed
	}
	if len(s.LogitBias) > 0 {
		p.LogitBias = make(map[int32]float32, len(s.LogitBias))
		for id, b := range s.LogitBias {
			if int(id) >= m.tok.VocabSize() {
				return p, openai.Invalid("logit_bias", openai.CodeInvalidValue,
					"Invalid 'logit_bias': token %d is outside the vocabulary of %d tokens.", id, m.tok.VocabSize())
			}
			p.LogitBias[id] = float32(b)
		}
	}
	if s.IgnoreEOS && len(m.eog) > 0 {
		if p.LogitBias == nil {
			p.LogitBias = make(map[int32]float32, len(m.eog))
		}
		for _, id := range m.eog {
			p.LogitBias[id] = float32(math.Inf(-1))
		}
	}
	if err := p.Validate(); err != nil {
		return p, openai.Invalid("", openai.CodeInvalidValue, "Invalid sampling parameters: %v.", err)
	}
	return p, nil
}

// checkN fails a request for more choices than the scheduler runs at once.
func checkN(m *Model, n int) *openai.Error {
	if most := m.sched.Options().MaxSequences; n > most {
		return openai.Invalid("n", openai.CodeInvalidValue,
			"Invalid 'n': this server runs at most %d sequences of model %s at once, but %d were asked for.", most, m.Name, n)
	}
	return nil
}

// renderChat applies the model's chat template and tokenizes the result.
func renderChat(m *Model, msgs []openai.ChatMessage) ([]int32, *openai.Error) {
	conv := make([]chat.Message, len(msgs))
	for i, msg := range msgs {
		conv[i] = chat.Message{Role: msg.Role, Content: msg.Content}
	}
	text, err := m.Template.Render(conv, true)
	if err != nil {
		return nil, openai.Invalid("messages", openai.CodeInvalidValue, "Invalid 'messages': %v.", err)
	}
	return m.tok.Encode(text, true, true), nil
}

// stops returns the request's stop strings plus the template's.
func stops(m *Model, req []string) []string {
	if len(m.Template.Stops()) == 0 {
		return req
	}
	return append(append([]string(nil), req...), m.Template.Stops()...)
}

func (s *Server) handleChatCompletions(c *fasthttp.RequestCtx, info *requestInfo) {
	req, perr := openai.ParseChatCompletionRequest(c.PostBody())
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	m, ok := s.model(c, info, req.Model)
	if !ok {
		return
	}
	params, perr := openAIParams(req.Sampling, m)
	if perr == nil {
		perr = checkN(m, req.N)
	}
	store := false
	if perr == nil {
		store, perr = s.wantStore(c.PostBody(), m)
	}
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	prompt, perr := renderChat(m, req.Messages)
	if perr == nil {
		perr = checkContext(m, len(prompt), "messages", "messages")
	}
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	g, err := s.startGeneration(m, [][]int32{prompt}, scheduler.Request{
		MaxTokens:   req.MaxTokens,
		N:           req.N,
		Params:      params,
		Stop:        stops(m, req.Stop),
		Logprobs:    req.Logprobs,
		TopLogprobs: req.TopLogprobs,
	}, info.start)
	if err != nil {
		s.writeError(c, info, submitError(m, err, "messages"))
		return
	}
	id, created := newID("chatcmpl-"), time.Now().Unix()
	if store {
		g.store = newPendingSample(c, g, id, trafficlog.KindChat, req.User)
		g.store.sample.Messages = chatSampleMessages(req.Messages)
	}
	if req.Stream {
		s.streamChat(c, info, g, req, id, created)
		return
	}
	stop := g.watchPeer(c)
	res, err := g.collect()
	stop()
	g.finish()
	if err != nil {
		s.writeError(c, info, generationError(m, err, "messages"))
		return
	}
	u := g.usage()
	out := openai.ChatCompletion{
		ID: id, Object: "chat.completion", Created: created, Model: m.Name,
		SystemFingerprint: s.fingerprint(),
		Choices:           make([]openai.ChatChoice, len(res)),
		Usage:             openAIUsage(u),
	}
	for i := range res {
		ch := openai.ChatChoice{
			Index:        i,
			Message:      openai.ChatResponseMessage{Role: "assistant", Content: res[i].text.String()},
			FinishReason: res[i].finish,
		}
		if req.Logprobs {
			ch.Logprobs = chatLogprobs(m, res[i].logprobs)
		}
		out.Choices[i] = ch
	}
	s.storeAndMark(c, g.store, out.Choices[0].Message.Content)
	writeJSON(c, http.StatusOK, out)
}

// streamChat streams a chat completion as server-sent events: for each
// choice a first chunk with the role, then chunks of content, then a chunk
// with the finish reason; with include_usage a last chunk with no choices
// and the totals; then [DONE]. A failure during the stream is one error
// event, without [DONE].
func (s *Server) streamChat(c *fasthttp.RequestCtx, info *requestInfo, g *generation, req *openai.ChatCompletionRequest, id string, created int64) {
	m := g.model
	chunk := func(choices ...openai.ChatChunkChoice) openai.ChatCompletionChunk {
		ch := openai.ChatCompletionChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: m.Name,
			SystemFingerprint: s.fingerprint(), Choices: choices,
		}
		if req.IncludeUsage {
			ch.Usage = openai.StreamUsage{Present: true}
		}
		return ch
	}
	s.startStream(c, info, "text/event-stream", g, func(ew *eventWriter) {
		empty := ""
		for i := range g.choices() {
			ew.sse(chunk(openai.ChatChunkChoice{Index: i, Delta: openai.ChatDelta{Role: "assistant", Content: &empty}}))
		}
		err := s.pump(g, ew, func() { ew.write(ssePing) }, func(ev scheduler.Event) bool {
			g.store.observe(ev)
			if ev.Text != "" {
				text := ev.Text
				cc := openai.ChatChunkChoice{Index: ev.Choice, Delta: openai.ChatDelta{Content: &text}}
				if req.Logprobs {
					cc.Logprobs = chatLogprobs(m, ev.Logprobs)
				}
				ew.sse(chunk(cc))
			}
			if ev.Finish != "" {
				reason := ev.Finish
				ew.sse(chunk(openai.ChatChunkChoice{Index: ev.Choice, Delta: openai.ChatDelta{}, FinishReason: &reason}))
			}
			return true
		})
		if ew.err != nil {
			return
		}
		if err != nil {
			ew.sse(streamError(generationError(m, err, "messages")))
			return
		}
		s.storeStreamed(g, ew)
		if req.IncludeUsage {
			u := openAIUsage(g.usage())
			last := chunk()
			last.Choices = []openai.ChatChunkChoice{}
			last.Usage = openai.StreamUsage{Present: true, Usage: &u}
			ew.sse(last)
		}
		ew.write(sseDone)
	})
}

// streamError is the body of a mid-stream error event.
func streamError(e *openai.Error) any {
	return struct {
		Error *openai.Error `json:"error"`
	}{e}
}

func openAIUsage(u scheduler.Usage) openai.Usage {
	return openai.Usage{
		PromptTokens:        u.PromptTokens,
		CompletionTokens:    u.CompletionTokens,
		TotalTokens:         u.PromptTokens + u.CompletionTokens,
		PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: u.CachedTokens},
	}
}

// chatLogprobs converts the scheduler's log-probabilities to a chat
// choice's "logprobs" object.
func chatLogprobs(m *Model, lps []scheduler.TokenLogprob) *openai.ChatLogprobs {
	content := make([]openai.TokenLogprob, len(lps))
	for i, lp := range lps {
		top := make([]openai.TopLogprob, len(lp.Top))
		for j, t := range lp.Top {
			text := m.tok.DecodeToken(t.ID, false)
			top[j] = openai.TopLogprob{Token: text, Logprob: float64(t.Logprob), Bytes: openai.TokenBytes(text)}
		}
		content[i] = openai.TokenLogprob{Token: lp.Text, Logprob: float64(lp.Logprob), Bytes: openai.TokenBytes(lp.Text), TopLogprobs: top}
	}
	return &openai.ChatLogprobs{Content: content}
}

// completionLogprobs converts log-probabilities to the legacy completions
// format; offset is the length in characters of the choice's text before
// these tokens.
func completionLogprobs(m *Model, lps []scheduler.TokenLogprob, offset int) *openai.CompletionLogprobs {
	out := &openai.CompletionLogprobs{
		Tokens:        make([]string, len(lps)),
		TokenLogprobs: make([]float64, len(lps)),
		TopLogprobs:   make([]map[string]float64, len(lps)),
		TextOffset:    make([]int, len(lps)),
	}
	for i, lp := range lps {
		out.Tokens[i] = lp.Text
		out.TokenLogprobs[i] = float64(lp.Logprob)
		top := make(map[string]float64, len(lp.Top))
		for _, t := range lp.Top {
			text := m.tok.DecodeToken(t.ID, false)
			if _, dup := top[text]; !dup {
				top[text] = float64(t.Logprob)
			}
		}
		out.TopLogprobs[i] = top
		out.TextOffset[i] = offset
		offset += utf8.RuneCountInString(lp.Text)
	}
	return out
}

// completionPrompts tokenizes the prompts of a text completion.
func completionPrompts(m *Model, prompts []openai.Prompt) ([][]int32, []string, *openai.Error) {
	ids := make([][]int32, len(prompts))
	texts := make([]string, len(prompts))
	for i, p := range prompts {
		param := "prompt"
		if len(prompts) > 1 {
			param = fmt.Sprintf("prompt.[%d]", i)
		}
		if p.Tokens != nil {
			if len(p.Tokens) == 0 {
				return nil, nil, openai.Invalid(param, openai.CodeInvalidValue, "Invalid '%s': empty token array.", param)
			}
			for _, id := range p.Tokens {
				if int(id) >= m.tok.VocabSize() {
					return nil, nil, openai.Invalid(param, openai.CodeInvalidValue,
						"Invalid '%s': token %d is outside the vocabulary of %d tokens.", param, id, m.tok.VocabSize())
				}
			}
			ids[i] = p.Tokens
			texts[i] = m.detokenize(p.Tokens)
		} else {
			ids[i] = m.tok.Encode(p.Text, true, true)
			texts[i] = p.Text
			if len(ids[i]) == 0 {
				return nil, nil, openai.Invalid(param, openai.CodeInvalidValue,
					"Invalid '%s': the prompt is empty and the model adds no BOS token.", param)
			}
		}
		if e := checkContext(m, len(ids[i]), param, "prompt"); e != nil {
			return nil, nil, e
		}
	}
	return ids, texts, nil
}

func (s *Server) handleCompletions(c *fasthttp.RequestCtx, info *requestInfo) {
	req, perr := openai.ParseCompletionRequest(c.PostBody())
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	m, ok := s.model(c, info, req.Model)
	if !ok {
		return
	}
	params, perr := openAIParams(req.Sampling, m)
	if perr == nil {
		perr = checkN(m, req.N)
	}
	var prompts [][]int32
	var promptTexts []string
	if perr == nil {
		prompts, promptTexts, perr = completionPrompts(m, req.Prompts)
	}
	store := false
	if perr == nil {
		store, perr = s.wantStore(c.PostBody(), m)
	}
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	id, created := newID("cmpl-"), time.Now().Unix()
	if req.MaxTokens == 0 {
		s.emptyCompletion(c, info, m, req, prompts, promptTexts, id, created)
		return
	}
	g, err := s.startGeneration(m, prompts, scheduler.Request{
		MaxTokens:   req.MaxTokens,
		N:           req.N,
		Params:      params,
		Stop:        req.Stop,
		Logprobs:    req.Logprobs >= 0,
		TopLogprobs: max(req.Logprobs, 0),
	}, info.start)
	if err != nil {
		s.writeError(c, info, submitError(m, err, "prompt"))
		return
	}
	echo := func(choice int) string {
		if req.Echo {
			return promptTexts[choice/req.N]
		}
		return ""
	}
	if store {
		g.store = newPendingSample(c, g, id, trafficlog.KindCompletion, req.User)
		g.store.sample.Prompt = promptTexts[0]
	}
	if req.Stream {
		s.streamCompletion(c, info, g, req, id, created, echo)
		return
	}
	stop := g.watchPeer(c)
	res, err := g.collect()
	stop()
	g.finish()
	if err != nil {
		s.writeError(c, info, generationError(m, err, "prompt"))
		return
	}
	u := openAIUsage(g.usage())
	out := openai.Completion{
		ID: id, Object: "text_completion", Created: created, Model: m.Name,
		SystemFingerprint: s.fingerprint(),
		Choices:           make([]openai.CompletionChoice, len(res)),
		Usage:             &u,
	}
	for i := range res {
		reason := res[i].finish
		ch := openai.CompletionChoice{Text: echo(i) + res[i].text.String(), Index: i, FinishReason: &reason}
		if req.Logprobs >= 0 {
			ch.Logprobs = completionLogprobs(m, res[i].logprobs, 0)
		}
		out.Choices[i] = ch
	}
	if g.store != nil {
		s.storeAndMark(c, g.store, res[0].text.String())
	}
	writeJSON(c, http.StatusOK, out)
}

// emptyCompletion answers max_tokens 0: every choice is the echoed prompt
// or empty, finished for length, and nothing runs.
func (s *Server) emptyCompletion(c *fasthttp.RequestCtx, info *requestInfo, m *Model, req *openai.CompletionRequest, prompts [][]int32, texts []string, id string, created int64) {
	n := 0
	for _, p := range prompts {
		n += len(p)
	}
	u := openai.Usage{PromptTokens: n, TotalTokens: n, PromptTokensDetails: &openai.PromptTokensDetails{}}
	choices := make([]openai.CompletionChoice, len(prompts)*req.N)
	for i := range choices {
		reason := "length"
		choices[i] = openai.CompletionChoice{Index: i, FinishReason: &reason}
		if req.Echo {
			choices[i].Text = texts[i/req.N]
		}
		if req.Logprobs >= 0 {
			choices[i].Logprobs = completionLogprobs(m, nil, 0)
		}
	}
	if !req.Stream {
		writeJSON(c, http.StatusOK, openai.Completion{ID: id, Object: "text_completion", Created: created, Model: m.Name,
			SystemFingerprint: s.fingerprint(), Choices: choices, Usage: &u})
		return
	}
	var b strings.Builder
	for _, ch := range choices {
		chunk := openai.CompletionChunk{ID: id, Object: "text_completion", Created: created, Model: m.Name,
			SystemFingerprint: s.fingerprint(), Choices: []openai.CompletionChoice{ch}}
		if req.IncludeUsage {
			chunk.Usage = openai.StreamUsage{Present: true}
		}
		data, _ := json.Marshal(chunk)
		b.WriteString("data: " + string(data) + "\n\n")
	}
	if req.IncludeUsage {
		last := openai.CompletionChunk{ID: id, Object: "text_completion", Created: created, Model: m.Name,
			SystemFingerprint: s.fingerprint(), Choices: []openai.CompletionChoice{}, Usage: openai.StreamUsage{Present: true, Usage: &u}}
		data, _ := json.Marshal(last)
		b.WriteString("data: " + string(data) + "\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	c.SetStatusCode(http.StatusOK)
	c.SetContentType("text/event-stream")
	c.SetBodyString(b.String())
}

// streamCompletion streams a text completion: chunks of text per choice,
// a chunk with the finish reason, optionally the usage chunk, then [DONE].
func (s *Server) streamCompletion(c *fasthttp.RequestCtx, info *requestInfo, g *generation, req *openai.CompletionRequest, id string, created int64, echo func(int) string) {
	m := g.model
	chunk := func(ch openai.CompletionChoice) openai.CompletionChunk {
		out := openai.CompletionChunk{ID: id, Object: "text_completion", Created: created, Model: m.Name,
			SystemFingerprint: s.fingerprint(), Choices: []openai.CompletionChoice{ch}}
		if req.IncludeUsage {
			out.Usage = openai.StreamUsage{Present: true}
		}
		return out
	}
	s.startStream(c, info, "text/event-stream", g, func(ew *eventWriter) {
		offsets := make([]int, g.choices())
		if req.Echo {
			for i := range offsets {
				ew.sse(chunk(openai.CompletionChoice{Text: echo(i), Index: i}))
			}
		}
		err := s.pump(g, ew, func() { ew.write(ssePing) }, func(ev scheduler.Event) bool {
			g.store.observe(ev)
			if ev.Text != "" {
				ch := openai.CompletionChoice{Text: ev.Text, Index: ev.Choice}
				if req.Logprobs >= 0 {
					ch.Logprobs = completionLogprobs(m, ev.Logprobs, offsets[ev.Choice])
				}
				offsets[ev.Choice] += utf8.RuneCountInString(ev.Text)
				ew.sse(chunk(ch))
			}
			if ev.Finish != "" {
				reason := ev.Finish
				ew.sse(chunk(openai.CompletionChoice{Index: ev.Choice, FinishReason: &reason}))
			}
			return true
		})
		if ew.err != nil {
			return
		}
		if err != nil {
			ew.sse(streamError(generationError(m, err, "prompt")))
			return
		}
		s.storeStreamed(g, ew)
		if req.IncludeUsage {
			u := openAIUsage(g.usage())
			last := chunk(openai.CompletionChoice{})
			last.Choices = []openai.CompletionChoice{}
			last.Usage = openai.StreamUsage{Present: true, Usage: &u}
			ew.sse(last)
		}
		ew.write(sseDone)
	})
}

func (s *Server) handleEmbeddings(c *fasthttp.RequestCtx, info *requestInfo) {
	req, perr := openai.ParseEmbeddingRequest(c.PostBody())
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	m, ok := s.model(c, info, req.Model)
	if !ok {
		return
	}
	inputs := make([][]int32, len(req.Inputs))
	for i, in := range req.Inputs {
		param := "input"
		if len(req.Inputs) > 1 {
			param = fmt.Sprintf("input.[%d]", i)
		}
		if in.Tokens != nil {
			for _, id := range in.Tokens {
				if int(id) >= m.tok.VocabSize() {
					s.writeError(c, info, openai.Invalid(param, openai.CodeInvalidValue,
						"Invalid '%s': token %d is outside the vocabulary of %d tokens.", param, id, m.tok.VocabSize()))
					return
				}
			}
			inputs[i] = in.Tokens
		} else {
			inputs[i] = m.tok.Encode(in.Text, true, true)
		}
		if len(inputs[i]) > m.seqContext {
			s.writeError(c, info, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeContextLengthExceeded, param,
				fmt.Sprintf("This model's maximum context length is %d tokens, however you requested %d tokens in %s. Please reduce your input.", m.seqContext, len(inputs[i]), param)))
			return
		}
	}
	dim := m.model.Config().Dim
	if req.Dimensions > dim {
		s.writeError(c, info, openai.Invalid("dimensions", openai.CodeInvalidValue,
			"Invalid 'dimensions': %d is more than the model's %d.", req.Dimensions, dim))
		return
	}
	vecs, u, err := s.embed(c, m, inputs)
	if err != nil {
		s.writeError(c, info, generationError(m, err, "input"))
		return
	}
	out := openai.EmbeddingList{Object: "list", Model: m.Name, Data: make([]openai.Embedding, len(vecs)),
		Usage: openai.EmbeddingsUsage{PromptTokens: u.PromptTokens, TotalTokens: u.PromptTokens}}
	for i, v := range vecs {
		if req.Dimensions > 0 {
			v = truncateNormalize(v, req.Dimensions)
		}
		var e any = v
		if req.EncodingFormat == "base64" {
			e = base64Floats(v)
		}
		out.Data[i] = openai.Embedding{Object: "embedding", Index: i, Embedding: e}
	}
	writeJSON(c, http.StatusOK, out)
}

// embed runs Embed for a request, cancelling it when the client leaves.
func (s *Server) embed(c *fasthttp.RequestCtx, m *Model, inputs [][]int32) ([][]float32, scheduler.Usage, error) {
	g := &generation{model: m}
	g.ctx, g.cancel = context.WithCancel(s.ctx)
	defer g.cancel()
	stop := g.watchPeer(c)
	defer stop()
	vecs, u, err := m.sched.Embed(g.ctx, inputs, m.pooling)
	if err == nil {
		s.metrics.promptTokens.WithLabelValues(m.Name).Add(float64(u.PromptTokens))
	}
	return vecs, u, err
}

// truncateNormalize keeps the first n elements and rescales them to unit
// length.
func truncateNormalize(v []float32, n int) []float32 {
	out := append([]float32(nil), v[:n]...)
	var ss float64
	for _, x := range out {
		ss += float64(x) * float64(x)
	}
	if ss > 0 {
		inv := float32(1 / math.Sqrt(ss))
		for i := range out {
			out[i] *= inv
		}
	}
	return out
}

// base64Floats encodes a vector as OpenAI's base64 format: little-endian
// float32 bytes.
func base64Floats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func (s *Server) handleListModels(c *fasthttp.RequestCtx, info *requestInfo) {
	out := openai.ModelList{Object: "list", Data: make([]openai.Model, 0, len(s.models))}
	for _, m := range s.models {
		out.Data = append(out.Data, openAIModel(m))
	}
	for _, h := range s.heads.list() {
		if b, ok := s.byName[h.Base]; ok {
			out.Data = append(out.Data, openai.Model{ID: h.ID, Object: "model", Created: b.Loaded.Unix(), OwnedBy: "carryon",
				Parent: b.Name, MaxModelLen: b.seqContext})
		}
	}
	if len(s.models) == 0 {
		out.Hint = "No models are loaded. To add one, " + noModelsHint(&s.cfg) + "."
	}
	writeJSON(c, http.StatusOK, out)
}

func openAIModel(m *Model) openai.Model {
	out := openai.Model{ID: m.Name, Object: "model", Created: m.Loaded.Unix(), OwnedBy: "carryon", MaxModelLen: m.seqContext}
	if m.head != "" {
		out.Parent = m.Path
		if st, ok := m.headBase(); ok {
			out.Parent = st
		}
	}
	return out
}

func (s *Server) handleGetModel(c *fasthttp.RequestCtx, info *requestInfo) {
	name := strings.TrimPrefix(string(c.Path()), "/v1/models/")
	m, ok := s.model(c, info, name)
	if !ok {
		return
	}
	writeJSON(c, http.StatusOK, openAIModel(m))
}

func (s *Server) handleTokenize(c *fasthttp.RequestCtx, info *requestInfo) {
	req, perr := openai.ParseTokenizeRequest(c.PostBody())
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	m, ok := s.defaultModel(c, info, req.Model)
	if !ok {
		return
	}
	var ids []int32
	if req.Messages != nil {
		conv := make([]chat.Message, len(req.Messages))
		for i, msg := range req.Messages {
			conv[i] = chat.Message{Role: msg.Role, Content: msg.Content}
		}
		text, err := m.Template.Render(conv, req.AddGenerationPrompt)
		if err != nil {
			s.writeError(c, info, openai.Invalid("messages", openai.CodeInvalidValue, "Invalid 'messages': %v.", err))
			return
		}
		ids = m.tok.Encode(text, req.AddSpecial, true)
	} else {
		ids = m.tok.Encode(req.Prompt, req.AddSpecial, true)
	}
	out := openai.TokenizeResponse{Tokens: ids, Count: len(ids), MaxModelLen: m.seqContext}
	if out.Tokens == nil {
		out.Tokens = []int32{}
	}
	if req.WithPieces {
		out.Pieces = make([]string, len(ids))
		for i, id := range ids {
			out.Pieces[i] = m.tok.DecodeToken(id, true)
		}
	}
	writeJSON(c, http.StatusOK, out)
}

func (s *Server) handleDetokenize(c *fasthttp.RequestCtx, info *requestInfo) {
	req, perr := openai.ParseDetokenizeRequest(c.PostBody())
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	m, ok := s.defaultModel(c, info, req.Model)
	if !ok {
		return
	}
	for _, id := range req.Tokens {
		if int(id) >= m.tok.VocabSize() {
			s.writeError(c, info, openai.Invalid("tokens", openai.CodeInvalidValue,
				"Invalid 'tokens': token %d is outside the vocabulary of %d tokens.", id, m.tok.VocabSize()))
			return
		}
	}
	writeJSON(c, http.StatusOK, openai.DetokenizeResponse{Prompt: m.detokenize(req.Tokens)})
}

// sortedModels returns the models sorted by name.
func (s *Server) sortedModels() []*Model {
	ms := s.Models()
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}

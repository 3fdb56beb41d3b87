package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/models/sample"
	"github.com/carryon/carryon/server/chat"
	"github.com/carryon/carryon/server/openai"
	"github.com/carryon/carryon/server/scheduler"
)

// OllamaVersion is the Ollama release whose API the /api routes follow;
// /api/version reports it, since Ollama clients check it to decide which
// features they may use.
const OllamaVersion = "0.17.4"

// ollamaErrorBody is Ollama's error body: {"error":"message"}.
func ollamaErrorBody(msg string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	return b
}

func ollamaError(status int, format string, args ...any) *openai.Error {
	return &openai.Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// decodeOllama decodes an Ollama request body into v.
func (s *Server) decodeOllama(c *fasthttp.RequestCtx, info *requestInfo, v any) bool {
	body := bytes.TrimSpace(c.PostBody())
	if len(body) == 0 {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "missing request body"))
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "invalid request body: %v", err))
		return false
	}
	return true
}

// ollamaModel finds a model by an Ollama request's name.
func (s *Server) ollamaModel(c *fasthttp.RequestCtx, info *requestInfo, name string) (*Model, bool) {
	if name == "" {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "model is required"))
		return nil, false
	}
	m, ok := s.lookupAny(name)
	if !ok {
		info.model = "unknown"
		s.writeError(c, info, ollamaError(http.StatusNotFound, "model '%s' not found", name))
		return nil, false
	}
	info.model = m.Name
	return m, true
}

// ollamaParams turns Ollama's options (with Ollama's defaults) into
// sampler settings, a token limit and stop strings.
func ollamaParams(options map[string]any, m *Model) (sample.Params, int, []string, *openai.Error) {
	opts := api.DefaultOptions()
	if err := opts.FromMap(options); err != nil {
		return sample.Params{}, 0, nil, ollamaError(http.StatusBadRequest, "invalid options: %v", err)
	}
	p := sample.DefaultParams()
	p.Temperature = opts.Temperature
	p.TopK = opts.TopK
	p.TopP = opts.TopP
	if p.TopP <= 0 {
		p.TopP, p.Temperature = 1, 0
	}
	if p.TopP > 1 {
		p.TopP = 1
	}
	p.MinP = opts.MinP
	p.RepeatPenalty = opts.RepeatPenalty
	if p.RepeatPenalty <= 0 {
		p.RepeatPenalty = 1
	}
	p.RepeatLastN = opts.RepeatLastN
	if p.RepeatLastN < -1 {
		p.RepeatLastN = -1
	}
	p.PresencePenalty = opts.PresencePenalty
	p.FrequencyPenalty = opts.FrequencyPenalty
	p.Seed = int64(opts.Seed)
	if err := p.Validate(); err != nil {
		return p, 0, nil, ollamaError(http.StatusBadRequest, "invalid options: %v", err)
	}
	maxTokens := max(opts.NumPredict, 0)
	var stop []string
	for _, st := range opts.Stop {
		if st != "" {
			stop = append(stop, st)
		}
	}
	return p, maxTokens, stop, nil
}

// unsupportedFormat refuses structured output, which carryon does not
// enforce.
func unsupportedFormat(f json.RawMessage) *openai.Error {
	f = bytes.TrimSpace(f)
	if len(f) == 0 || string(f) == "null" || string(f) == `""` {
		return nil
	}
	return ollamaError(http.StatusBadRequest, "format %s is not supported: this server does not constrain output", f)
}

// ollamaLogprobs converts log-probabilities to Ollama's format.
func ollamaLogprobs(m *Model, lps []scheduler.TokenLogprob) []api.Logprob {
	if len(lps) == 0 {
		return nil
	}
	out := make([]api.Logprob, len(lps))
	for i, lp := range lps {
		out[i].TokenLogprob = api.TokenLogprob{Token: lp.Text, Logprob: float64(lp.Logprob), Bytes: openai.TokenBytes(lp.Text)}
		for _, t := range lp.Top {
			text := m.tok.DecodeToken(t.ID, false)
			out[i].TopLogprobs = append(out[i].TopLogprobs, api.TokenLogprob{Token: text, Logprob: float64(t.Logprob), Bytes: openai.TokenBytes(text)})
		}
	}
	return out
}

// ollamaMetrics fills Ollama's timing fields from a finished generation.
func ollamaMetrics(g *generation, u scheduler.Usage) api.Metrics {
	end := time.Now()
	first := g.first
	if first.IsZero() {
		first = end
	}
	return api.Metrics{
		TotalDuration:      end.Sub(g.start),
		PromptEvalCount:    u.PromptTokens,
		PromptEvalDuration: first.Sub(g.start),
		EvalCount:          u.CompletionTokens,
		EvalDuration:       end.Sub(first),
	}
}

// ollamaRun is what the chat and generate routes share: a started
// generation and how to shape its lines.
type ollamaRun struct {
	g      *generation
	stream bool
	// line builds a response line from new text (done false) or the final
	// line (done true, with reason and metrics).
	line func(text string, lps []api.Logprob, done bool, reason string, mt api.Metrics, generated []int32) any
}

// respond streams NDJSON lines or writes one JSON object.
func (s *Server) respondOllama(c *fasthttp.RequestCtx, info *requestInfo, run ollamaRun, wantLogprobs bool) {
	g, m := run.g, run.g.model
	if !run.stream {
		stop := g.watchPeer(c)
		res, err := g.collect()
		stop()
		g.finish()
		if err != nil {
			s.writeError(c, info, ollamaError(generationError(m, err, "").Status, "%v", err))
			return
		}
		var lps []api.Logprob
		if wantLogprobs {
			lps = ollamaLogprobs(m, res[0].logprobs)
		}
		writeJSON(c, http.StatusOK, run.line(res[0].text.String(), lps, true, res[0].finish, ollamaMetrics(g, g.usage()), res[0].tokens))
		return
	}
	s.startStream(c, info, "application/x-ndjson", g, func(ew *eventWriter) {
		reason := ""
		var generated []int32
		err := s.pump(g, ew, func() { ew.ndjson(run.line("", nil, false, "", api.Metrics{}, nil)) }, func(ev scheduler.Event) bool {
			generated = append(generated, ev.Tokens...)
			if ev.Text != "" {
				var lps []api.Logprob
				if wantLogprobs {
					lps = ollamaLogprobs(m, ev.Logprobs)
				}
				ew.ndjson(run.line(ev.Text, lps, false, "", api.Metrics{}, nil))
			}
			if ev.Finish != "" {
				reason = ev.Finish
			}
			return true
		})
		if ew.err != nil {
			return
		}
		if err != nil {
			ew.write(ollamaErrorBody(err.Error()), ndjsonLine)
			return
		}
		ew.ndjson(run.line("", nil, true, reason, ollamaMetrics(g, g.usage()), generated))
	})
}

// streamRequested reads Ollama's stream flag, which defaults to true.
func streamRequested(b *bool) bool { return b == nil || *b }

func (s *Server) handleOllamaChat(c *fasthttp.RequestCtx, info *requestInfo) {
	var req api.ChatRequest
	if !s.decodeOllama(c, info, &req) {
		return
	}
	m, ok := s.ollamaModel(c, info, req.Model)
	if !ok {
		return
	}
	if len(req.Messages) == 0 {
		writeJSON(c, http.StatusOK, api.ChatResponse{Model: m.Name, CreatedAt: time.Now().UTC(),
			Message: api.Message{Role: "assistant"}, Done: true, DoneReason: "load"})
		return
	}
	if e := unsupportedFormat(req.Format); e != nil {
		s.writeError(c, info, e)
		return
	}
	conv := make([]chat.Message, len(req.Messages))
	for i, msg := range req.Messages {
		if len(msg.Images) > 0 {
			s.writeError(c, info, ollamaError(http.StatusBadRequest, "model %s does not accept images", m.Name))
			return
		}
		conv[i] = chat.Message{Role: msg.Role, Content: msg.Content}
	}
	text, err := m.Template.Render(conv, true)
	if err != nil {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "%v", err))
		return
	}
	params, maxTokens, stop, perr := ollamaParams(req.Options, m)
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	prompt := m.tok.Encode(text, true, true)
	if e := checkContext(m, len(prompt), "", "messages"); e != nil {
		s.writeError(c, info, ollamaError(e.Status, "%s", e.Message))
		return
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > openai.MaxTopLogprobs {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "top_logprobs must be between 0 and %d", openai.MaxTopLogprobs))
		return
	}
	g, err := s.startGeneration(m, [][]int32{prompt}, scheduler.Request{
		MaxTokens: maxTokens, Params: params, Stop: stops(m, stop),
		Logprobs: req.Logprobs || req.TopLogprobs > 0, TopLogprobs: req.TopLogprobs,
	}, info.start)
	if err != nil {
		e := submitError(m, err, "")
		s.writeError(c, info, ollamaError(e.Status, "%s", e.Message))
		return
	}
	s.respondOllama(c, info, ollamaRun{g: g, stream: streamRequested(req.Stream),
		line: func(text string, lps []api.Logprob, done bool, reason string, mt api.Metrics, _ []int32) any {
			return api.ChatResponse{Model: m.Name, CreatedAt: time.Now().UTC(),
				Message: api.Message{Role: "assistant", Content: text},
				Done:    done, DoneReason: reason, Logprobs: lps, Metrics: mt}
		}}, req.Logprobs || req.TopLogprobs > 0)
}

func (s *Server) handleOllamaGenerate(c *fasthttp.RequestCtx, info *requestInfo) {
	var req api.GenerateRequest
	if !s.decodeOllama(c, info, &req) {
		return
	}
	m, ok := s.ollamaModel(c, info, req.Model)
	if !ok {
		return
	}
	if req.Prompt == "" && len(req.Context) == 0 {
		writeJSON(c, http.StatusOK, api.GenerateResponse{Model: m.Name, CreatedAt: time.Now().UTC(), Done: true, DoneReason: "load"})
		return
	}
	switch {
	case len(req.Images) > 0:
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "model %s does not accept images", m.Name))
		return
	case req.Suffix != "":
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "suffix (fill-in-the-middle) is not supported"))
		return
	case req.Template != "":
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "template overrides are not supported; use raw with a prompt you format yourself"))
		return
	}
	if e := unsupportedFormat(req.Format); e != nil {
		s.writeError(c, info, e)
		return
	}
	params, maxTokens, stop, perr := ollamaParams(req.Options, m)
	if perr != nil {
		s.writeError(c, info, perr)
		return
	}
	text := req.Prompt
	if !req.Raw {
		switch {
		case m.TemplateSource != "":
			var conv []chat.Message
			if req.System != "" {
				conv = append(conv, chat.Message{Role: "system", Content: req.System})
			}
			conv = append(conv, chat.Message{Role: "user", Content: req.Prompt})
			rendered, err := m.Template.Render(conv, true)
			if err != nil {
				s.writeError(c, info, ollamaError(http.StatusBadRequest, "%v", err))
				return
			}
			text = rendered
		case req.System != "":
			// A model without a chat template continues the text itself.
			text = req.System + "\n\n" + req.Prompt
		}
	}
	prompt := make([]int32, 0, len(req.Context)+len(text)/2)
	for _, id := range req.Context {
		if id < 0 || id >= m.tok.VocabSize() {
			s.writeError(c, info, ollamaError(http.StatusBadRequest, "context token %d is outside the vocabulary of %d tokens", id, m.tok.VocabSize()))
			return
		}
		prompt = append(prompt, int32(id))
	}
	prompt = append(prompt, m.tok.Encode(text, len(req.Context) == 0, true)...)
	if len(prompt) == 0 {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "the prompt is empty"))
		return
	}
	if e := checkContext(m, len(prompt), "", "prompt"); e != nil {
		s.writeError(c, info, ollamaError(e.Status, "%s", e.Message))
		return
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > openai.MaxTopLogprobs {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "top_logprobs must be between 0 and %d", openai.MaxTopLogprobs))
		return
	}
	if req.Raw || m.TemplateSource == "" {
		// Raw prompts and base models get no template stops.
	} else {
		stop = stops(m, stop)
	}
	g, err := s.startGeneration(m, [][]int32{prompt}, scheduler.Request{
		MaxTokens: maxTokens, Params: params, Stop: stop,
		Logprobs: req.Logprobs || req.TopLogprobs > 0, TopLogprobs: req.TopLogprobs,
	}, info.start)
	if err != nil {
		e := submitError(m, err, "")
		s.writeError(c, info, ollamaError(e.Status, "%s", e.Message))
		return
	}
	s.respondOllama(c, info, ollamaRun{g: g, stream: streamRequested(req.Stream),
		line: func(text string, lps []api.Logprob, done bool, reason string, mt api.Metrics, generated []int32) any {
			r := api.GenerateResponse{Model: m.Name, CreatedAt: time.Now().UTC(), Response: text,
				Done: done, DoneReason: reason, Logprobs: lps, Metrics: mt}
			if done {
				r.Context = make([]int, 0, len(prompt)+len(generated))
				for _, id := range prompt {
					r.Context = append(r.Context, int(id))
				}
				for _, id := range generated {
					r.Context = append(r.Context, int(id))
				}
			}
			return r
		}}, req.Logprobs || req.TopLogprobs > 0)
}

func (s *Server) handleOllamaEmbed(c *fasthttp.RequestCtx, info *requestInfo) {
	var req api.EmbedRequest
	if !s.decodeOllama(c, info, &req) {
		return
	}
	m, ok := s.ollamaModel(c, info, req.Model)
	if !ok {
		return
	}
	var texts []string
	switch in := req.Input.(type) {
	case nil:
	case string:
		if in != "" {
			texts = []string{in}
		}
	case []any:
		for i, v := range in {
			str, ok := v.(string)
			if !ok {
				s.writeError(c, info, ollamaError(http.StatusBadRequest, "input %d is not a string", i))
				return
			}
			texts = append(texts, str)
		}
	default:
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "input must be a string or a list of strings"))
		return
	}
	start := time.Now()
	if len(texts) == 0 {
		writeJSON(c, http.StatusOK, api.EmbedResponse{Model: m.Name, Embeddings: [][]float32{}})
		return
	}
	truncate := req.Truncate == nil || *req.Truncate
	inputs := make([][]int32, len(texts))
	for i, t := range texts {
		ids := m.tok.Encode(t, true, true)
		if len(ids) == 0 {
			s.writeError(c, info, ollamaError(http.StatusBadRequest, "input %d is empty", i))
			return
		}
		if len(ids) > m.seqContext {
			if !truncate {
				s.writeError(c, info, ollamaError(http.StatusBadRequest, "input %d has %d tokens, more than the context length of %d", i, len(ids), m.seqContext))
				return
			}
			ids = ids[:m.seqContext]
		}
		inputs[i] = ids
	}
	dim := m.model.Config().Dim
	if req.Dimensions < 0 || req.Dimensions > dim {
		s.writeError(c, info, ollamaError(http.StatusBadRequest, "dimensions must be between 0 and %d", dim))
		return
	}
	vecs, u, err := s.embed(c, m, inputs)
	if err != nil {
		e := generationError(m, err, "")
		s.writeError(c, info, ollamaError(e.Status, "%s", e.Message))
		return
	}
	if req.Dimensions > 0 {
		for i := range vecs {
			vecs[i] = truncateNormalize(vecs[i], req.Dimensions)
		}
	}
	writeJSON(c, http.StatusOK, api.EmbedResponse{Model: m.Name, Embeddings: vecs,
		TotalDuration: time.Since(start), PromptEvalCount: u.PromptTokens})
}

func (s *Server) handleOllamaTags(c *fasthttp.RequestCtx, info *requestInfo) {
	out := api.ListResponse{Models: []api.ListModelResponse{}}
	for _, m := range s.sortedModels() {
		out.Models = append(out.Models, api.ListModelResponse{
			Name: m.Name, Model: m.Name, ModifiedAt: m.ModTime, Size: m.Size, Digest: m.Digest, Details: m.Details,
		})
	}
	writeJSON(c, http.StatusOK, out)
}

func (s *Server) handleOllamaPS(c *fasthttp.RequestCtx, info *requestInfo) {
	out := api.ProcessResponse{Models: []api.ProcessModelResponse{}}
	for _, m := range s.sortedModels() {
		out.Models = append(out.Models, api.ProcessModelResponse{
			Name: m.Name, Model: m.Name, Size: m.Size, Digest: m.Digest, Details: m.Details,
			ContextLength: m.seqContext,
		})
	}
	writeJSON(c, http.StatusOK, out)
}

func (s *Server) handleOllamaShow(c *fasthttp.RequestCtx, info *requestInfo) {
	var req api.ShowRequest
	if !s.decodeOllama(c, info, &req) {
		return
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	m, ok := s.ollamaModel(c, info, name)
	if !ok {
		return
	}
	var mf strings.Builder
	fmt.Fprintf(&mf, "# Modelfile of %s as carryon serves it\nFROM %s\n", m.Name, m.Path)
	writeJSON(c, http.StatusOK, api.ShowResponse{
		Modelfile:    mf.String(),
		Template:     m.TemplateSource,
		Details:      m.Details,
		ModelInfo:    m.meta,
		Capabilities: []model.Capability{model.CapabilityCompletion, model.CapabilityEmbedding},
		ModifiedAt:   m.ModTime,
	})
}

func (s *Server) handleOllamaVersion(c *fasthttp.RequestCtx, info *requestInfo) {
	writeJSON(c, http.StatusOK, map[string]string{"version": OllamaVersion, "carryon": s.version})
}

func (s *Server) handleHealth(c *fasthttp.RequestCtx, info *requestInfo) {
	writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers 200 while the server serves its models and 503 once
// it is shutting down. With no models it is ready (there is nothing to
// wait for) and says so.
func (s *Server) handleReady(c *fasthttp.RequestCtx, info *requestInfo) {
	names := make([]string, len(s.models))
	for i, m := range s.models {
		names[i] = m.Name
	}
	if s.closing.Load() {
		c.Response.Header.Set("Retry-After", "1")
		writeJSON(c, http.StatusServiceUnavailable, map[string]any{"status": "shutting down", "models": names})
		return
	}
	body := map[string]any{"status": "ready", "models": names}
	if len(names) == 0 {
		body["hint"] = "No models are loaded. To add one, " + noModelsHint(&s.cfg) + "."
	}
	writeJSON(c, http.StatusOK, body)
}

func (s *Server) handleMetrics(c *fasthttp.RequestCtx, info *requestInfo) {
	body, contentType, err := s.metrics.render()
	if err != nil {
		s.writeError(c, info, openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeInternal, "", err.Error()))
		return
	}
	c.SetStatusCode(http.StatusOK)
	c.SetContentType(contentType)
	c.SetBody(body)
}

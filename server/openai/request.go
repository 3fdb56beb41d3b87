package openai

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Limits of request parameters.
const (
	MaxN           = 128
	MaxTopLogprobs = 20
	MaxTokensLimit = 1 << 24
)

// Sampling holds the sampling parameters shared by chat and text
// completions. Nil pointers are parameters the request left out.
type Sampling struct {
	Temperature      *float64
	TopP             *float64
	PresencePenalty  float64
	FrequencyPenalty float64
	Seed             *int64
	// LogitBias maps token ids to a bias in [-100, 100].
	LogitBias map[int32]float64
	Stop      []string

	// Extensions that llama.cpp and vLLM accept as well.
	TopK          *int
	MinP          *float64
	RepeatPenalty *float64
	// IgnoreEOS bans the end-of-generation tokens, so that a choice runs
	// to max_tokens (for benchmarks).
	IgnoreEOS bool
}

func (r *reader) sampling() Sampling {
	var s Sampling
	if f, ok := r.number("temperature", 0, 2); ok {
		s.Temperature = &f
	}
	if f, ok := r.number("top_p", 0, 1); ok {
		s.TopP = &f
	}
	s.PresencePenalty, _ = r.number("presence_penalty", -2, 2)
	s.FrequencyPenalty, _ = r.number("frequency_penalty", -2, 2)
	if n, ok := r.integer("seed", math.MinInt64, math.MaxInt64); ok {
		s.Seed = &n
	}
	if o, ok := r.object("logit_bias"); ok {
		s.LogitBias = make(map[int32]float64, len(o.raw))
		for _, k := range slices.Sorted(maps.Keys(o.raw)) {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil || id < 0 {
				r.fail(Invalid("logit_bias", CodeInvalidValue, "Invalid 'logit_bias': key %q is not a token id.", k))
				break
			}
			v, present := o.get(k)
			if !present {
				continue
			}
			f, e := decodeFloat("logit_bias", v, -100, 100)
			if e != nil {
				e.Message = fmt.Sprintf("Invalid 'logit_bias' for token %s: %s", k, strings.TrimPrefix(e.Message, "Invalid 'logit_bias': "))
				r.fail(e)
				break
			}
			s.LogitBias[int32(id)] = f
		}
	}
	s.Stop = r.stops("stop")
	if n, ok := r.integer("top_k", 0, math.MaxInt32); ok {
		k := int(n)
		s.TopK = &k
	}
	if f, ok := r.number("min_p", 0, 1); ok {
		s.MinP = &f
	}
	if f, ok := r.number("repeat_penalty", 0, 100); ok {
		if f == 0 {
			r.fail(Invalid("repeat_penalty", CodeInvalidValue, "Invalid 'repeat_penalty': it must be positive."))
		}
		s.RepeatPenalty = &f
	}
	s.IgnoreEOS = r.boolean("ignore_eos", false)
	return s
}

// model reads the required, non-empty "model" field.
func (r *reader) model() string {
	m := r.str("model", true)
	if m == "" && r.err == nil {
		r.missing("model")
	}
	return m
}

// streamOptions reads "stream_options" and returns include_usage.
func (r *reader) streamOptions(stream bool) bool {
	o, ok := r.object("stream_options")
	if !ok {
		return false
	}
	if !stream {
		r.fail(Invalid("stream_options", CodeInvalidValue, "The 'stream_options' parameter is only allowed when 'stream' is enabled."))
		return false
	}
	include := o.boolean("include_usage", false)
	if o.err != nil {
		r.fail(o.err)
	}
	return include
}

// ChatMessage is one message of a chat completion request. Content parts
// of type "text" are joined with newlines.
type ChatMessage struct {
	Role    string
	Content string
}

// ChatCompletionRequest is a decoded POST /v1/chat/completions body.
type ChatCompletionRequest struct {
	Model        string
	Messages     []ChatMessage
	Stream       bool
	IncludeUsage bool
	// MaxTokens is max_completion_tokens, else max_tokens; 0 means no limit
	// but the context.
	MaxTokens   int
	N           int
	Logprobs    bool
	TopLogprobs int
	User        string
	Sampling
}

// ParseChatCompletionRequest decodes and checks a chat completion request.
func ParseChatCompletionRequest(body []byte) (*ChatCompletionRequest, *Error) {
	r, err := newReader(body)
	if err != nil {
		return nil, err
	}
	req := &ChatCompletionRequest{N: 1}
	req.Model = r.model()
	req.Messages = r.messages()
	req.Stream = r.boolean("stream", false)
	req.IncludeUsage = r.streamOptions(req.Stream)
	if n, ok := r.integer("max_tokens", 1, MaxTokensLimit); ok {
		req.MaxTokens = int(n)
	}
	if n, ok := r.integer("max_completion_tokens", 1, MaxTokensLimit); ok {
		req.MaxTokens = int(n)
	}
	if n, ok := r.integer("n", 1, MaxN); ok {
		req.N = int(n)
	}
	req.Logprobs = r.boolean("logprobs", false)
	if n, ok := r.integer("top_logprobs", 0, MaxTopLogprobs); ok {
		req.TopLogprobs = int(n)
		if !req.Logprobs && r.err == nil {
			r.fail(Invalid("top_logprobs", CodeInvalidValue, "Invalid 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is given."))
		}
	}
	req.User = r.str("user", false)
	req.Sampling = r.sampling()
	r.responseFormat()
	if r.err != nil {
		return nil, r.err
	}
	return req, nil
}

// responseFormat accepts {"type":"text"} and refuses the structured
// output formats, which carryon does not enforce.
func (r *reader) responseFormat() {
	o, ok := r.object("response_format")
	if !ok {
		return
	}
	typ := o.str("type", true)
	if o.err != nil {
		r.fail(o.err)
		return
	}
	if typ != "text" {
		r.fail(Invalid("response_format.type", CodeUnsupportedValue, "Unsupported value for 'response_format.type': %q; this server supports only \"text\".", typ))
	}
}

// messages reads the "messages" array.
func (r *reader) messages() []ChatMessage {
	items, ok := r.array("messages")
	if !ok {
		if r.err == nil {
			r.missing("messages")
		}
		return nil
	}
	if len(items) == 0 {
		r.fail(Invalid("messages", CodeInvalidValue, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."))
		return nil
	}
	out := make([]ChatMessage, len(items))
	for i, it := range items {
		p := fmt.Sprintf("messages.[%d]", i)
		m, err := decodeObject(p, it)
		if err != nil {
			r.fail(err)
			return nil
		}
		role := m.str("role", true)
		switch role {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			if m.err == nil {
				m.fail(Invalid(m.param("role"), CodeInvalidValue, "Invalid value: '%s'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.", role))
			}
		}
		out[i] = ChatMessage{Role: role, Content: m.content()}
		if m.err != nil {
			r.fail(m.err)
			return nil
		}
	}
	return out
}

// content reads a message's "content": a string, null, or an array of
// content parts of which only text parts are supported.
func (m *reader) content() string {
	v, ok := m.get("content")
	if !ok {
		return ""
	}
	p := m.param("content")
	switch kindOf(v) {
	case "string":
		s, err := decodeString(p, v)
		if err != nil {
			m.fail(err)
		}
		return s
	case "array":
	default:
		m.fail(typeError(p, "a string or an array of content parts", v))
		return ""
	}
	parts, err := decodeArray(p, v)
	if err != nil {
		m.fail(err)
		return ""
	}
	texts := make([]string, 0, len(parts))
	for j, part := range parts {
		pp := fmt.Sprintf("%s.[%d]", p, j)
		o, err := decodeObject(pp, part)
		if err != nil {
			m.fail(err)
			return ""
		}
		typ := o.str("type", true)
		if o.err == nil && typ != "text" {
			o.fail(Invalid(o.param("type"), CodeUnsupportedValue, "Unsupported content part type %q: this server accepts only text parts.", typ))
		}
		text := o.str("text", true)
		if o.err != nil {
			m.fail(o.err)
			return ""
		}
		texts = append(texts, text)
	}
	return strings.Join(texts, "\n")
}

// CompletionRequest is a decoded POST /v1/completions body.
type CompletionRequest struct {
	Model        string
	Prompts      []Prompt
	Stream       bool
	IncludeUsage bool
	// MaxTokens defaults to 16, as OpenAI's does.
	MaxTokens int
	N         int
	// Logprobs is the number of most likely tokens to report for each
	// position, -1 when logprobs were not asked for.
	Logprobs int
	Echo     bool
	User     string
	Sampling
}

// ParseCompletionRequest decodes and checks a text completion request.
func ParseCompletionRequest(body []byte) (*CompletionRequest, *Error) {
	r, err := newReader(body)
	if err != nil {
		return nil, err
	}
	req := &CompletionRequest{N: 1, MaxTokens: 16, Logprobs: -1}
	req.Model = r.model()
	req.Prompts = r.prompts("prompt", true)
	req.Stream = r.boolean("stream", false)
	req.IncludeUsage = r.streamOptions(req.Stream)
	if n, ok := r.integer("max_tokens", 0, MaxTokensLimit); ok {
		req.MaxTokens = int(n)
	}
	if n, ok := r.integer("n", 1, MaxN); ok {
		req.N = int(n)
	}
	if n, ok := r.integer("best_of", 1, MaxN); ok && int(n) != req.N {
		r.fail(Invalid("best_of", CodeUnsupportedValue, "Unsupported 'best_of': this server returns every choice it generates, so 'best_of' must equal 'n'."))
	}
	if n, ok := r.integer("logprobs", 0, MaxTopLogprobs); ok {
		req.Logprobs = int(n)
	}
	req.Echo = r.boolean("echo", false)
	if req.Echo && req.Logprobs >= 0 && r.err == nil {
		r.fail(Invalid("echo", CodeUnsupportedValue, "Unsupported: 'echo' together with 'logprobs' (prompt log-probabilities are not computed)."))
	}
	if s := r.str("suffix", false); s != "" && r.err == nil {
		r.fail(Invalid("suffix", CodeUnsupportedValue, "Unsupported parameter 'suffix': fill-in-the-middle is not supported."))
	}
	req.User = r.str("user", false)
	req.Sampling = r.sampling()
	if r.err != nil {
		return nil, r.err
	}
	return req, nil
}

// EmbeddingRequest is a decoded POST /v1/embeddings body.
type EmbeddingRequest struct {
	Model  string
	Inputs []Prompt
	// EncodingFormat is "float" or "base64".
	EncodingFormat string
	// Dimensions truncates the embeddings (then re-normalized); 0 keeps
	// them whole.
	Dimensions int
	User       string
}

// ParseEmbeddingRequest decodes and checks an embedding request.
func ParseEmbeddingRequest(body []byte) (*EmbeddingRequest, *Error) {
	r, err := newReader(body)
	if err != nil {
		return nil, err
	}
	req := &EmbeddingRequest{EncodingFormat: "float"}
	req.Model = r.model()
	req.Inputs = r.prompts("input", true)
	for i, in := range req.Inputs {
		if in.Tokens == nil && in.Text == "" || in.Tokens != nil && len(in.Tokens) == 0 {
			p := "input"
			if len(req.Inputs) > 1 {
				p = fmt.Sprintf("input.[%d]", i)
			}
			r.fail(Invalid(p, CodeInvalidValue, "Invalid '%s': empty input.", p))
			break
		}
	}
	if f := r.str("encoding_format", false); f != "" {
		switch f {
		case "float", "base64":
			req.EncodingFormat = f
		default:
			r.fail(Invalid("encoding_format", CodeInvalidValue, "Invalid 'encoding_format': %q; expected \"float\" or \"base64\".", f))
		}
	}
	if n, ok := r.integer("dimensions", 1, math.MaxInt32); ok {
		req.Dimensions = int(n)
	}
	req.User = r.str("user", false)
	if r.err != nil {
		return nil, r.err
	}
	return req, nil
}

// TokenizeRequest is a decoded POST /tokenize body: either a prompt (also
// accepted as "content", llama.cpp's name) or chat messages, which are
// rendered with the model's chat template first.
type TokenizeRequest struct {
	Model    string
	Prompt   string
	Messages []ChatMessage
	// AddSpecial adds BOS/EOS as the vocabulary asks (default true).
	AddSpecial bool
	// AddGenerationPrompt opens the assistant's turn after the messages
	// (default true).
	AddGenerationPrompt bool
	// WithPieces asks for the vocabulary text of each token as well.
	WithPieces bool
}

// ParseTokenizeRequest decodes and checks a tokenize request.
func ParseTokenizeRequest(body []byte) (*TokenizeRequest, *Error) {
	r, err := newReader(body)
	if err != nil {
		return nil, err
	}
	req := &TokenizeRequest{}
	req.Model = r.str("model", false)
	if _, ok := r.get("messages"); ok {
		req.Messages = r.messages()
	} else {
		field := "prompt"
		if _, ok := r.get("prompt"); !ok {
			if _, ok := r.get("content"); ok {
				field = "content"
			}
		}
		req.Prompt = r.str(field, true)
	}
	req.AddSpecial = r.boolean("add_special_tokens", r.boolean("add_special", true))
	req.AddGenerationPrompt = r.boolean("add_generation_prompt", true)
	req.WithPieces = r.boolean("with_pieces", false)
	if r.err != nil {
		return nil, r.err
	}
	return req, nil
}

// DetokenizeRequest is a decoded POST /detokenize body.
type DetokenizeRequest struct {
	Model  string
	Tokens []int32
}

// ParseDetokenizeRequest decodes and checks a detokenize request.
func ParseDetokenizeRequest(body []byte) (*DetokenizeRequest, *Error) {
	r, err := newReader(body)
	if err != nil {
		return nil, err
	}
	req := &DetokenizeRequest{}
	req.Model = r.str("model", false)
	items, ok := r.array("tokens")
	if !ok && r.err == nil {
		r.missing("tokens")
	}
	if ok {
		ids, err := tokenArray("tokens", items)
		if err != nil {
			r.fail(err)
		}
		req.Tokens = ids
	}
	if r.err != nil {
		return nil, r.err
	}
	return req, nil
}

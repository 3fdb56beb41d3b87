package openai

import "encoding/json"

// Usage counts the tokens of a request.
type Usage struct {
	PromptTokens        int                  `json:"prompt_tokens"`
	CompletionTokens    int                  `json:"completion_tokens"`
	TotalTokens         int                  `json:"total_tokens"`
	PromptTokensDetails *PromptTokensDetails `json:"prompt_tokens_details,omitempty"`
}

// PromptTokensDetails says how many prompt tokens came from the prefix
// cache.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// StreamUsage is the "usage" member of a stream chunk: absent without
// include_usage, null on every chunk but the last with it, and the totals
// on the last one. Its zero value is absent.
type StreamUsage struct {
	Present bool
	Usage   *Usage
}

// IsZero reports whether the member is left out (for omitzero).
func (u StreamUsage) IsZero() bool { return !u.Present }

// MarshalJSON writes null or the usage.
func (u StreamUsage) MarshalJSON() ([]byte, error) {
	if u.Usage == nil {
		return []byte("null"), nil
	}
	return json.Marshal(u.Usage)
}

// TopLogprob is one of the most likely tokens at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// TokenLogprob is the log-probability of one generated token in a chat
// completion.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// ChatLogprobs is a chat choice's "logprobs" object.
type ChatLogprobs struct {
	Content []TokenLogprob `json:"content"`
	Refusal []TokenLogprob `json:"refusal"`
}

// TokenBytes returns the bytes of a token's text as OpenAI lists them.
func TokenBytes(s string) []int {
	b := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = int(s[i])
	}
	return b
}

// ChatCompletion is the body of a non-streaming chat completion.
type ChatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"` // "chat.completion"
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []ChatChoice `json:"choices"`
	Usage             Usage        `json:"usage"`
}

// ChatChoice is one choice of a chat completion.
type ChatChoice struct {
	Index        int                 `json:"index"`
	Message      ChatResponseMessage `json:"message"`
	Logprobs     *ChatLogprobs       `json:"logprobs"`
	FinishReason string              `json:"finish_reason"`
}

// ChatResponseMessage is the assistant message of a chat choice.
type ChatResponseMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

// ChatCompletionChunk is one event of a streaming chat completion.
type ChatCompletionChunk struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"` // "chat.completion.chunk"
	Created           int64             `json:"created"`
	Model             string            `json:"model"`
	SystemFingerprint string            `json:"system_fingerprint"`
	Choices           []ChatChunkChoice `json:"choices"`
	Usage             StreamUsage       `json:"usage,omitzero"`
}

// ChatChunkChoice is one choice's part of a chunk.
type ChatChunkChoice struct {
	Index        int           `json:"index"`
	Delta        ChatDelta     `json:"delta"`
	Logprobs     *ChatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

// ChatDelta is the new part of a choice's message: the role on its first
// chunk, then content.
type ChatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// Completion is the body of a non-streaming text completion, and of each
// chunk of a streaming one (with Object "text_completion" in both).
type Completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"` // "text_completion"
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []CompletionChoice `json:"choices"`
	// Usage is set on non-streaming bodies.
	Usage *Usage `json:"usage,omitempty"`
}

// CompletionChunk is one event of a streaming text completion.
type CompletionChunk struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"` // "text_completion"
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []CompletionChoice `json:"choices"`
	Usage             StreamUsage        `json:"usage,omitzero"`
}

// CompletionChoice is one choice of a text completion. FinishReason is
// null in stream chunks before the last of the choice.
type CompletionChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *CompletionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

// CompletionLogprobs is the legacy completions "logprobs" object: parallel
// arrays over the generated tokens.
type CompletionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// Embedding is one vector of an embeddings response; Embedding holds
// []float32 or, for encoding_format "base64", the base64 of the
// little-endian float32 bytes.
type Embedding struct {
	Object    string `json:"object"` // "embedding"
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// EmbeddingList is the body of an embeddings response.
type EmbeddingList struct {
	Object string          `json:"object"` // "list"
	Data   []Embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  EmbeddingsUsage `json:"usage"`
}

// EmbeddingsUsage counts the input tokens of an embeddings request.
type EmbeddingsUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// Model describes a served model in /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Parent names the base model of a head; empty for base models.
	Parent string `json:"parent,omitempty"`
	// MaxModelLen is the model's context length (vLLM's name).
	MaxModelLen int `json:"max_model_len,omitempty"`
}

// ModelList is the body of GET /v1/models. Hint, carryon's addition,
// explains how to add models when there are none.
type ModelList struct {
	Object string  `json:"object"` // "list"
	Data   []Model `json:"data"`
	Hint   string  `json:"hint,omitempty"`
}

// TokenizeResponse is the body of POST /tokenize.
type TokenizeResponse struct {
	Tokens      []int32  `json:"tokens"`
	Count       int      `json:"count"`
	MaxModelLen int      `json:"max_model_len"`
	Pieces      []string `json:"pieces,omitempty"`
}

// DetokenizeResponse is the body of POST /detokenize.
type DetokenizeResponse struct {
	Prompt string `json:"prompt"`
}

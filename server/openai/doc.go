// Package openai holds the wire format of carryon's OpenAI-compatible API:
// request decoders for /v1/chat/completions, /v1/completions,
// /v1/embeddings, /tokenize and /detokenize, the response and stream-chunk
// shapes, and the error envelope.
//
// The decoders read a request field by field so that a value of the wrong
// type or out of range is reported as an *Error naming the parameter
// ("temperature", "messages.[1].content"), as OpenAI does; unknown fields are
// ignored and null means absent. They never panic, whatever the input
// (FuzzChatCompletionRequest and its siblings check this).
//
// Shapes follow OpenAI's exactly, including the parts clients depend on:
// "usage": null on every stream chunk when stream_options.include_usage is
// set, a final chunk with "choices": [] carrying the totals, "logprobs": null
// on choices that did not ask for them, and a string "code" in errors.
package openai

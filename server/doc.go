// Package server is the serving core of carryon: an HTTP server on fasthttp
// that exposes the loaded base models through OpenAI-compatible routes
// (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models,
// /tokenize, /detokenize), Ollama-compatible routes (/api/chat,
// /api/generate, /api/embed, /api/tags, /api/ps, /api/show, /api/version)
// and operational routes (/health, /ready, /metrics).
//
// Each model gets its own scheduler (package server/scheduler), which
// batches every request for that model continuously. A handler decodes the
// request (package server/openai for the OpenAI shapes, the
// github.com/ollama/ollama/api types for Ollama's), renders chat messages
// with the model's template (package server/chat), tokenizes, submits, and
// writes the scheduler's events back: as one JSON body, as server-sent
// events, or as NDJSON lines.
//
// # Lifecycle
//
// New loads the models named by the configuration (package server/config)
// and the GGUF files of the data directory's models/ folder; Serve answers
// requests on a listener; Shutdown stops accepting connections, lets
// running requests finish until its context is done, cancels the rest and
// releases the models.
//
// # Clients that leave
//
// fasthttp reports a closed connection only through a failed write. Streams
// therefore write an SSE comment (": ping") or an empty NDJSON line of the
// route's type whenever they have been idle for the heartbeat interval, as
// during a long prefill, and a failed write cancels the request. For
// non-streaming requests the handler peeks at the socket a few times a
// second (without consuming anything) and cancels the request when the
// client has closed it. A cancelled request leaves the batch within a step
// or two and its KV cache is released.
//
// # Learning from traffic
//
// Completions asked to be stored ("store": true), and every completion of
// a head whose policy is learn, go to the traffic log (package
// server/trafficlog) before their response; POST /v1/feedback rates or
// corrects them. The orchestrator (orchestrator.go) turns a learning
// head's new samples into fine-tuning jobs that promote a better version.
package server

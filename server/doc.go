// Package server is the serving core of carryon: the OpenAI- and
// Ollama-compatible HTTP API, the continuous-batching scheduler, the head and
// forecaster registry, the plugin supervisor, the traffic log and the
// training orchestrator. It owns the base models, because the base forward
// pass is the expensive part that every request shares.
package server

// Package scheduler runs many generation and embedding requests against one
// base model with continuous batching.
//
// A Scheduler owns the model's KV cache and one loop goroutine. Each step of
// the loop gathers the running sequences into a single llm.Batch, one decode
// row for every running choice plus prefill chunks of the requests that are
// still reading their prompts (at most Options.PrefillChunk tokens of one
// sequence and Options.MaxBatchTokens rows in all, so a long prompt never
// stalls the decoders), runs one Forward pass, then samples, decodes text,
// matches stop strings and emits Events. Requests join and leave the batch at
// step boundaries.
//
// # Lifecycle
//
// New starts the loop. Submit queues a generation request and returns its
// Stream; Embed runs embedding inputs and blocks until they are done. Close
// stops accepting work, lets queued and running requests finish until its
// context is done, then fails the rest with ErrClosed and stops the loop.
// The Scheduler does not own the model: close the model after Close returns.
//
// # Options
//
// Every zero field of Options selects its default, so Options{} is a
// working configuration; for that reason the two switches are phrased as
// departures from the defaults: NoPrefixCache turns the prefix cache off and
// KVF32 keeps keys and values in F32 instead of F16.
//
// # Admission
//
// Submit fails at once with ErrQueueFull when Options.MaxQueue requests are
// waiting, with ErrContextLength (its message gives the numbers) when the
// prompt and one generated token do not fit in one sequence's context, and
// with a plain error for other bad input. Waiting requests are admitted in
// order when a request's choices fit in the free sequence slots and the free
// KV budget holds its prompt for every choice plus a little decode headroom;
// entries of the prefix cache are evicted, least recently used first, to make
// that room.
//
// # Running out of KV
//
// When a step cannot reserve room for its sequences, the scheduler first
// evicts a prefix-cache entry; with none left, it preempts the most recently
// admitted request: its sequences are released and it goes back to the front
// of the queue, keeping the tokens generated so far, its samplers and its
// text state. When it is admitted again it re-reads its prompt and generated
// tokens and carries on, so its client sees one uninterrupted stream. The
// same happens when a finished prompt cannot be forked for a request's extra
// choices. No request is admitted after a preemption until a running
// request ends, which keeps the scheduler from thrashing. A request that
// cannot fit even when it runs alone fails with an error wrapping
// llm.ErrCacheFull. Stats.Preemptions counts the preemptions.
//
// # Choices
//
// A request with N > 1 choices reads its prompt once; when the prompt's last
// token has been processed the sequence is forked (llm.Cache.Fork) for each
// extra choice, and every choice samples its first token from the same
// logits with its own sampler. With a seed set, choice i samples with
// Seed+i.
//
// # Prefix cache
//
// Unless Options.NoPrefixCache is set, the KV of sequences that finish
// normally is kept, keyed by the tokens it holds, in a least-recently-used
// cache that lives inside the KV budget and is evicted first when room is
// needed. A new request whose prompt shares at least a few leading tokens with
// an entry forks that entry, truncates the fork to the common prefix and
// reads only the rest of its prompt; Usage.CachedTokens reports how many
// prompt tokens were reused. Cancelled and failed requests release their KV
// instead of caching it.
//
// # Text and stop strings
//
// Each choice decodes its tokens with a tokenizer.StreamDecoder, so events
// carry whole UTF-8 characters. Text that could be the beginning of a stop
// string is held back until it can be decided; at a match the text is cut
// before the stop string, which is never emitted. An end-of-generation token
// (tokenizer.IsEOG) ends a choice with "stop" and is neither emitted nor
// listed in Event.Tokens, though it counts in Usage.CompletionTokens. A
// choice ends with "length" after Request.MaxTokens tokens or when its
// prompt and generated tokens fill the sequence context.
//
// Event.Tokens lists the tokens whose text is decided by the event: text
// held back for a possible stop string keeps its tokens for a later event,
// and the final event of a choice carries the tokens whose text a stop
// string cut. Over a whole choice the events' Tokens are exactly the
// generated tokens, less a final end-of-generation token.
//
// # Failures
//
// A panic or an error in a step fails the requests of that step with
// Event.Err (or Embed's error) and releases their KV; the loop keeps
// serving the others. A request whose context is done leaves the batch at the
// next step boundary and releases its KV.
package scheduler

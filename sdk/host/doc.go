// Package host is the core's side of carryon plugins: it starts a plugin
// binary as a child process (go-plugin over gRPC, mutual TLS, a pinned
// SHA-256 checksum, protocol version negotiation, the plugin's JSON logs
// folded into the core's logger), and hands out typed clients, HeadClient
// and ForecasterClient, that implement the sdk interfaces, so code in the
// core calls a plugin as it would call an in-process implementation.
//
// Lifecycle: Start (or Attach, for a plugin served in this process) → Head
// or Forecaster → calls, Ping → Close. A Plugin never restarts itself: when
// its process exits (a crash, kill -9), Done is closed, calls in flight and
// later calls fail with errors wrapping ErrExited, and the owner starts a
// new Plugin and loads its heads again. Errors the plugin reports map back
// to the sdk sentinels: sdk.ErrUnknownHead, sdk.ErrInvalid,
// sdk.ErrUnsupported, and the context errors.
package host

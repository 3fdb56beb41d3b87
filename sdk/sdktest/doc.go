// Package sdktest runs carryon plugins in tests: in-process over real gRPC
// (ServeHead, ServeForecaster), and as real subprocesses built from their
// main package with `go build` and started the way the core starts them
// (Build, StartHead, StartForecaster). RunHead runs the same test body
// against both, which is how a plugin author checks that an implementation
// behaves the same behind the wire.
package sdktest

// Package sdk is the public API for plugin authors: the Head and Forecaster
// interfaces, the functions that serve an implementation as a carryon
// plugin, and a test harness. A plugin author reads this package and never
// sees gRPC.
//
// A plugin is a program whose main function calls ServeHead (or
// ServeForecaster) with its implementation:
//
//	func main() {
//		sdk.ServeHead(newMyHeads())
//	}
//
// The carryon core starts the program as a child process (it is not meant to
// be run by hand), verifies its checksum, negotiates the protocol version
// (ProtocolVersion) and talks to it over gRPC with mutual TLS on a local
// socket. Standard output is the handshake channel and must not be written
// to; logs go to standard error as JSON lines (use the logger that NewLogger
// returns), which the core folds into its own log. A plugin exits when the
// core closes it and, on its own, when the core's process goes away.
//
// The core side of the connection (starting a plugin binary, typed clients,
// health pings, crash detection) is in package sdk/host; package sdk/sdktest
// runs a plugin in-process and as a subprocess for tests.
package sdk

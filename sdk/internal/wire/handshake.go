package wire

import (
	plugin "github.com/hashicorp/go-plugin"
)

// Handshake returns the go-plugin handshake every carryon plugin uses. The
// magic cookie only keeps a plugin binary from being run by hand by mistake;
// it is not a security measure (AutoMTLS and checksums are).
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		MagicCookieKey:   "CARRYON_PLUGIN_MAGIC_COOKIE",
		MagicCookieValue: "a4c1f0e3-carryon-heads-and-forecasters",
	}
}

// Names under which the plugin kinds are dispensed.
const (
	HeadPlugin       = "head"
	ForecasterPlugin = "forecaster"
)

// MaxMessageBytes bounds one gRPC message in either direction. A Forward call
// of thousands of sequences carries rows of thousands of floats each
// (4096 rows × 4096 floats × 4 bytes = 64 MiB), far above gRPC's default of
// 4 MiB.
const MaxMessageBytes = 1 << 30

// EnvLogLevel names the environment variable through which a host passes
// its log level to the plugins it starts.
const EnvLogLevel = "CARRYON_PLUGIN_LOG_LEVEL"

// WindowBytes is the HTTP/2 flow-control window of plugin connections, per
// stream and per connection. gRPC's default (64 KiB, grown by probing)
// makes a Forward of a few hundred KiB wait for several window updates, each
// a round trip between the processes; a window larger than a typical call
// lets it go in one flight.
const WindowBytes = 16 << 20

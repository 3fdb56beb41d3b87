// Command carryon is the built-in carry-on head plugin: it serves the heads
// of package models/carryon (type "carryon") to the carryon core over the
// plugin protocol, many heads and many sequences per process, and trains new
// head versions from the examples the core streams to it (sdk.Trainer). The
// core starts it; it is not meant to be run by hand.
package main

import (
	"github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	sdk.ServeHead(newHeads(carryon.NewSet()), sdk.WithLogger(sdk.NewLogger("carryon")))
}

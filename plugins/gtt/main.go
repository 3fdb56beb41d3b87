// Command gtt is the built-in GTT forecaster plugin: it serves the
// forecasting models of package models/gtt (type "gtt") to the carryon core
// over the plugin protocol: the embedded pretrained model as "gtt-small",
// with no files needed, and the model directories the core loads (tuned
// models among them). The core starts it; it is not meant to be run by
// hand. CARRYON_GTT_THREADS sets the threads of one forecast (default:
// every core).
package main

import (
	"os"
	"runtime"
	"strconv"

	"github.com/carryon/carryon/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log := sdk.NewLogger("gtt")
	threads := runtime.GOMAXPROCS(0)
	if v := os.Getenv("CARRYON_GTT_THREADS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			threads = n
		} else {
			log.Warn("ignoring CARRYON_GTT_THREADS: not a positive integer", "value", v)
		}
	}
	f, err := newForecasters(threads)
	if err != nil {
		log.Error("cannot load the embedded model", "error", err)
		os.Exit(1)
	}
	sdk.ServeForecaster(f, sdk.WithLogger(log))
}

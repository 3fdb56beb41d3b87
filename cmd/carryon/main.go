// Command carryon is the single command-line entry point of carryon: it
// serves models, runs them from the terminal, tokenizes text and inspects
// GGUF files. Each subcommand lives in its own file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "carryon:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "carryon",
		Short: "carryon serves frozen GGUF language models with per-request carry-on heads",
		Long: `carryon serves frozen base language models (GGUF files: Llama, Qwen2 and kin)
and customizes them per request with small carry-on heads.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(
		newTokenizeCommand(),
		newRunCommand(),
		newInspectCommand(),
		newGenModelCommand(),
		newBenchCommand(),
		newServeCommand(),
		newBenchServeCommand(),
		newGTTCommand(),
		newForecastCommand(),
		newHeadsCommand(),
		newTrainCommand(),
	)
	return root
}

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/carryon/carryon/models/gguf"
)

func newInspectCommand() *cobra.Command {
	var showTensors bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Print a GGUF file's metadata and tensors",
		Long: `Print a GGUF file's metadata and, with --tensors, every tensor's name, type and
shape. MODEL is a path or the name of a model in the local Ollama store.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := resolveModelPath(args[0])
			if err != nil {
				return err
			}
			f, err := gguf.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			printInspect(cmd.OutOrStdout(), f, showTensors)
			return nil
		},
	}
	cmd.Flags().BoolVar(&showTensors, "tensors", false, "list every tensor")
	return cmd
}

func printInspect(w io.Writer, f *gguf.File, showTensors bool) {
	fmt.Fprintf(w, "GGUF v%d, %d metadata pairs, %d tensors, %.1f MiB\n",
		f.Version, f.Meta.Len(), len(f.Tensors), float64(f.Size())/(1<<20))
	for _, k := range f.Meta.Keys() {
		v, _ := f.Meta.Value(k)
		fmt.Fprintf(w, "  %-48s %s\n", k, summarize(v))
	}
	counts := map[string]int{}
	var params int64
	for _, t := range f.Tensors {
		counts[t.Type.String()]++
		params += t.Elements()
	}
	types := make([]string, 0, len(counts))
	for t, n := range counts {
		types = append(types, fmt.Sprintf("%s×%d", t, n))
	}
	sort.Strings(types)
	fmt.Fprintf(w, "tensors: %s; %.1f M parameters\n", strings.Join(types, " "), float64(params)/1e6)
	if showTensors {
		for _, t := range f.Tensors {
			fmt.Fprintf(w, "  %-40s %-6s %v\n", t.Name, t.Type, t.Shape)
		}
	}
}

// summarize prints a metadata value, abbreviating long arrays and strings.
func summarize(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 80 {
			return fmt.Sprintf("%q… (%d bytes)", x[:80], len(x))
		}
		return fmt.Sprintf("%q", x)
	case []string:
		if len(x) > 6 {
			return fmt.Sprintf("%q… (%d strings)", x[:6], len(x))
		}
		return fmt.Sprintf("%q", x)
	}
	s := fmt.Sprint(v)
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

package main

import (
	"fmt"
	"os"

	"github.com/carryon/carryon/models/ollama"
)

// resolveModelPath turns a -m argument into a GGUF path: an existing file is
// used as it is; anything else is looked up by name in the local Ollama
// store.
func resolveModelPath(arg string) (string, error) {
	if st, err := os.Stat(arg); err == nil {
		if st.IsDir() {
			return "", fmt.Errorf("model %s is a directory, not a GGUF file", arg)
		}
		return arg, nil
	}
	m, err := ollama.Resolve(ollama.DefaultDir(), arg)
	if err != nil {
		return "", fmt.Errorf("model %q is neither a file nor a model in the Ollama store: %w", arg, err)
	}
	return m.ModelPath, nil
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainBadDataLineNumbers checks that malformed chat JSONL is refused
// with an error naming the file and line.
func TestTrainBadDataLineNumbers(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}\n{not json\n", "bad.jsonl:2"},
		{"\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n", "bad.jsonl:2: no assistant message"},
		{"{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}\n", "bad.jsonl:1: message 0: unknown role"},
	} {
		path := filepath.Join(dir, "bad.jsonl")
		if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := carryon(t, "train", "--model", model, "--data", path, "--out", filepath.Join(dir, "head"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
}

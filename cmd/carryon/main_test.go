package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/testenv"
)

func testdataPath(t *testing.T, name string) string {
	t.Helper()
	return testenv.Path(t, name)
}

// carryon runs the CLI in-process and returns its stdout.
func carryon(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestRunGreedyStories(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	out, err := carryon(t, "run", "-m", model, "-p", "Once upon a time", "-n", "40", "--temp", "0")
	if err != nil {
		t.Fatal(err)
	}
	want := ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.\n"
	if out != want {
		t.Fatalf("run printed %q, want %q", out, want)
	}
}

func TestRunJSON(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	out, err := carryon(t, "run", "-m", model, "-p", "Once upon a time", "-n", "4", "--temp", "0", "--kv", "f32", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res runResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(res.PromptTokens) != 5 || res.PromptTokens[0] != 1 || len(res.Tokens) != 4 || res.Tokens[0] != 432 {
		t.Fatalf("ids: prompt %v tokens %v", res.PromptTokens, res.Tokens)
	}
	if res.Text != ", there was a" || len(res.Hidden) != 5 || len(res.Hidden[0]) != 64 || len(res.Logits) != 512 {
		t.Fatalf("text %q, hidden %d rows, logits %d", res.Text, len(res.Hidden), len(res.Logits))
	}
}

func TestRunSeedReproducible(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	args := []string{"run", "-m", model, "-p", "Once upon a time", "-n", "24", "--temp", "1", "--seed", "42"}
	a, err := carryon(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := carryon(t, args...)
	if a != b {
		t.Fatalf("same seed, different text:\n%q\n%q", a, b)
	}
}

func TestTokenizeVectors(t *testing.T) {
	model := testdataPath(t, "vocab/ggml-vocab-llama-spm.gguf")
	out, err := carryon(t, "tokenize", "-m", model, "--no-bos", "--", "Hello world")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "15043 3186" {
		t.Fatalf("tokenize printed %q", out)
	}
	out, _ = carryon(t, "tokenize", "-m", model, "--", "Hello world")
	if strings.TrimSpace(out) != "1 15043 3186" {
		t.Fatalf("tokenize with BOS printed %q", out)
	}
}

func TestBadInputs(t *testing.T) {
	if _, err := carryon(t, "run", "-m", "/nonexistent/model.gguf", "-p", "x"); err == nil {
		t.Error("missing model accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.gguf")
	os.WriteFile(junk, []byte("not a gguf file at all"), 0o644)
	if _, err := carryon(t, "inspect", junk); err == nil || !strings.Contains(err.Error(), "not a GGUF") {
		t.Errorf("junk file: %v", err)
	}
	model := testdataPath(t, "stories260K.gguf")
	if _, err := carryon(t, "run", "-m", model, "-p", "x", "--kv", "q9"); err == nil {
		t.Error("bad --kv accepted")
	}
	if _, err := carryon(t, "run", "-m", model, "-p", "x", "--temp", "-1"); err == nil {
		t.Error("negative temperature accepted")
	}
}

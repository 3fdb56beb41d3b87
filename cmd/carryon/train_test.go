package main

import (
	"encoding/json"
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

// TestTrainFromCachedFeatures checks that a run whose base states are all
// cached reads them without the base model (nothing computed), and trains
// to the same losses as a run that computes them with the whole base and
// releases it before training.
func TestTrainFromCachedFeatures(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	dir := t.TempDir()
	data := filepath.Join(dir, "d.txt")
	text := strings.Repeat("Once upon a time there was a little dog who liked to run in the park. ", 12)
	if err := os.WriteFile(data, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"train", "--model", model, "--data", data, "--seq-len", "16", "--threads", "1", "--json",
		"--layers", "1", "--dim", "32", "--heads", "2", "--steps", "3", "--batch", "2", "--no-train-loss", "--eval-frac", "0.2"}
	features := func(cache string) featuresResult {
		t.Helper()
		out, err := carryon(t, append(common, "--features-only", "--out", filepath.Join(dir, "fo"), "--cache", cache)...)
		if err != nil {
			t.Fatal(err)
		}
		var r featuresResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		return r
	}
	cache := filepath.Join(dir, "cache")
	if r := features(cache); r.Computed != r.Sequences || r.Sequences < 4 {
		t.Fatalf("first pass computed %d of %d sequences", r.Computed, r.Sequences)
	}
	if r := features(cache); r.Computed != 0 {
		t.Fatalf("cached pass computed %d of %d sequences", r.Computed, r.Sequences)
	}
	train := func(cache, out string) trainResult {
		t.Helper()
		text, err := carryon(t, append(common, "--out", filepath.Join(dir, out), "--cache", cache)...)
		if err != nil {
			t.Fatal(err)
		}
		var r trainResult
		if err := json.Unmarshal([]byte(text), &r); err != nil {
			t.Fatalf("%v: %q", err, text)
		}
		return r
	}
	cached := train(cache, "h1")
	fresh := train(filepath.Join(dir, "cache2"), "h2")
	if cached.BaseEvalLoss != fresh.BaseEvalLoss || cached.EvalLoss != fresh.EvalLoss || cached.Version != fresh.Version {
		t.Fatalf("cached run %+v, computing run %+v", cached, fresh)
	}
}

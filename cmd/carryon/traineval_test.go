package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/gguf"
)

// TestTrainEvalArithmeticEndToEnd writes an arithmetic set, trains a small
// head for a few steps on stories260K, and evaluates the base alone and the
// base with the head: both report every held-out problem. Accuracy after
// so few steps is not asserted (docs/training.md has the measured numbers).
func TestTrainEvalArithmeticEndToEnd(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	dir := t.TempDir()
	data, test := filepath.Join(dir, "ar.jsonl"), filepath.Join(dir, "ar_test.jsonl")
	headDir := filepath.Join(dir, "head")
	if _, err := carryon(t, "train", "gen-data", "--task", "arithmetic", "--n", "40", "--out", data,
		"--test-out", test, "--test-n", "6", "--digits", "2"); err != nil {
		t.Fatal(err)
	}
	out, err := carryon(t, "train", "--model", model, "--data", data, "--out", headDir,
		"--layers", "1", "--dim", "32", "--heads", "2", "--ffn", "64", "--taps", "0",
		"--steps", "3", "--batch", "4", "--threads", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var tr trainResult
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("train --json printed %q: %v", out, err)
	}
	if tr.Params <= 0 || tr.TrainSeqs+tr.EvalSeqs != 40 {
		t.Fatalf("train result %+v", tr)
	}

	for _, args := range [][]string{nil, {"--head", headDir}} {
		args = append([]string{"train", "eval", "--model", model, "--data", test, "--json", "--show", "2", "--max-tokens", "40", "--threads", "1"}, args...)
		out, err := carryon(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var res answerEvalResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("eval --json printed %q: %v", out, err)
		}
		if res.Problems != 6 || len(res.Examples) != 2 || res.Accuracy < 0 || res.Accuracy > 1 ||
			res.Correct > res.Answered || res.Tokens <= 0 || res.Tokens > 6*40 {
			t.Fatalf("%v: result %+v", args, res)
		}
		for _, ex := range res.Examples {
			if ex.Question == "" || ex.Reply == "" {
				t.Errorf("%v: example %+v", args, ex)
			}
		}
	}

	out, err = carryon(t, "train", "eval", "--model", model, "--head", headDir, "--data", test, "--max-tokens", "10", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "correct") || !strings.Contains(out, "--- ") {
		t.Errorf("eval printed %q", out)
	}

	out, err = carryon(t, "run", "-m", model, "--head", headDir, "-p", "Once upon a time", "-n", "8", "--temp", "0", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rr runResult
	if err := json.Unmarshal([]byte(out), &rr); err != nil {
		t.Fatalf("run --head --json printed %q: %v", out, err)
	}
	if len(rr.Tokens) == 0 || len(rr.Logits) != 512 {
		t.Errorf("run --head: %d tokens, %d logits", len(rr.Tokens), len(rr.Logits))
	}
}

// TestTrainEvalRefuses checks eval's errors for data without answers and
// for a head made for another base model.
func TestTrainEvalRefuses(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"messages":[{"role":"user","content":"1+1"},{"role":"assistant","content":"two"}]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := carryon(t, "train", "eval", "--model", model, "--data", bad)
	if err == nil || !strings.Contains(err.Error(), "chat 1") {
		t.Errorf("error %v, want one naming chat 1", err)
	}
	_, err = carryon(t, "train", "eval", "--model", model, "--data", filepath.Join(dir, "missing.jsonl"))
	if err == nil {
		t.Error("missing data: no error")
	}

	good := filepath.Join(dir, "good.jsonl")
	if err := os.WriteFile(good, []byte(`{"messages":[{"role":"user","content":"1+1"},{"role":"assistant","content":"answer: 2"}]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := carryonhead.New(carryonhead.DefaultConfig(carryonhead.Base{Arch: "llama", Dim: 64, Vocab: 512, Layers: 5, Fingerprint: "sha256:00"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Save(filepath.Join(dir, "other")); err != nil {
		t.Fatal(err)
	}
	_, err = carryon(t, "train", "eval", "--model", model, "--data", good, "--head", filepath.Join(dir, "other"))
	if err == nil || !strings.Contains(err.Error(), "another base model") {
		t.Errorf("head of another base: error %v", err)
	}
}

// TestRunHeadAlphaZeroIsBase checks the merge path of run --head: a head
// with α = 0 adds nothing, so greedy generation is the base's own.
func TestRunHeadAlphaZeroIsBase(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	gf, err := gguf.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	base, err := carryonhead.BaseFromGGUF(gf)
	gf.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg := carryonhead.DefaultConfig(base)
	cfg.Alpha = 0
	cfg.Taps = []int{carryonhead.FinalLayer, 1}
	h, err := carryonhead.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "zero")
	if err := h.Save(dir); err != nil {
		t.Fatal(err)
	}
	out, err := carryon(t, "run", "-m", model, "--head", dir, "-p", "Once upon a time", "-n", "40", "--temp", "0")
	if err != nil {
		t.Fatal(err)
	}
	want := ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.\n"
	if out != want {
		t.Fatalf("run --head (α = 0) printed %q, want %q", out, want)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchJSON runs carryon bench on the tiny stories model and checks
// that every figure of --json is present and plausible.
func TestBenchJSON(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	out, err := carryon(t, "bench", "-m", model, "-p", "16", "-n", "8", "-t", "2", "-b", "3", "-r", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res benchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"pp_tok_s", res.PPTokS}, {"tg_tok_s", res.TGTokS}, {"batch_tg_tok_s", res.BatchTGTokS}, {"achieved_gb_s", res.AchievedGBs}, {"machine_gb_s", res.MachineGBs}} {
		if !(f.v > 0) {
			t.Errorf("%s = %v", f.name, f.v)
		}
	}
	if res.Threads != 2 || res.PromptTokens != 16 || res.GenTokens != 8 || res.Batch != 3 {
		t.Errorf("settings echoed as %+v", res)
	}
	// stories260K ties its output to the token embeddings, so a step
	// reads every tensor: about 260K float32 parameters.
	if res.BytesPerTok < 1_000_000 || res.BytesPerTok > 1_100_000 {
		t.Errorf("weight bytes per token %d, want about 1.04 MB", res.BytesPerTok)
	}
}

func TestBenchText(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	out, err := carryon(t, "bench", "-m", model, "-p", "8", "-n", "4", "-t", "1", "-b", "2", "-r", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pp8", "tg4", "GB/s measured", "×2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := carryon(t, "bench", "-m", model, "-n", "0"); err == nil {
		t.Error("-n 0 accepted")
	}
}

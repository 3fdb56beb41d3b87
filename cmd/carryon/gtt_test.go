package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSeasonalCSV writes an hourly two-column table with a daily cycle.
func writeSeasonalCSV(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("date,load,temp\n")
	t0 := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		x := 2 * math.Pi * float64(i) / 24
		fmt.Fprintf(&b, "%s,%.4f,%.4f\n", t0.Add(time.Duration(i)*time.Hour).Format("2006-01-02 15:04:05"), 50+10*math.Sin(x), 5+2*math.Cos(x))
	}
	path := filepath.Join(t.TempDir(), "hourly.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGTTEvalJSONShape(t *testing.T) {
	path := writeSeasonalCSV(t, 1200)
	out, err := carryon(t, "gtt", "eval", "--csv", path, "--horizons", "24,96", "--context", "512", "--stride", "20", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]map[string]map[string]float64
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if len(doc) != 1 || len(doc["horizons"]) != 2 {
		t.Fatalf("output %s: want exactly {\"horizons\":{\"24\":...,\"96\":...}}", out)
	}
	for _, h := range []string{"24", "96"} {
		e := doc["horizons"][h]
		if len(e) != 3 {
			t.Fatalf("horizon %s has keys %v, want model, naive, seasonal_naive", h, e)
		}
		for _, k := range []string{"model", "naive", "seasonal_naive"} {
			if m := e[k]; len(m) != 2 || m["mse"] < 0 || m["mae"] < 0 {
				t.Fatalf("horizon %s %s: %v, want mse and mae", h, k, m)
			}
		}
		// A clean daily cycle: seasonal naive is exact, and the model must
		// beat the naive forecast by far.
		if e["seasonal_naive"]["mse"] > 1e-6 {
			t.Errorf("horizon %s: seasonal naive MSE %g on a pure cycle", h, e["seasonal_naive"]["mse"])
		}
		if e["model"]["mse"] > 0.2*e["naive"]["mse"] {
			t.Errorf("horizon %s: model MSE %g, naive %g", h, e["model"]["mse"], e["naive"]["mse"])
		}
	}
}

func TestGTTEvalTableAndErrors(t *testing.T) {
	path := writeSeasonalCSV(t, 1200)
	out, err := carryon(t, "gtt", "eval", "--csv", path, "--horizons", "48", "--stride", "50")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"split 70/10/20", "seasonal-naive period 24", "from the 1h0m0s step"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("a,b\n1,2\n3,oops\n"), 0o644)
	if _, err := carryon(t, "gtt", "eval", "--csv", bad); err == nil || !strings.Contains(err.Error(), `"oops" is not a number`) {
		t.Errorf("bad CSV: %v", err)
	}
	if _, err := carryon(t, "gtt", "eval", "--csv", path, "--horizons", "10,x"); err == nil {
		t.Errorf("bad horizon accepted")
	}
	if _, err := carryon(t, "gtt", "eval", "--csv", path, "--context", "5000"); err == nil {
		t.Errorf("context beyond the model's accepted")
	}
	// The validation rows (840..959 of 1200) and an ensemble of two
	// history lengths.
	out, err = carryon(t, "gtt", "eval", "--csv", path, "--horizons", "48", "--stride", "50", "--on", "val", "--ensemble", "512,256")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "validation rows (test rows 840..959)") {
		t.Errorf("--on val table:\n%s", out)
	}
	if _, err := carryon(t, "gtt", "eval", "--csv", path, "--on", "train"); err == nil {
		t.Errorf("--on train accepted")
	}
	if _, err := carryon(t, "gtt", "eval", "--csv", path, "--ensemble", "512,0"); err == nil {
		t.Errorf("--ensemble length 0 accepted")
	}
}

func TestGTTPretrainShortRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.safetensors")
	if _, err := carryon(t, "gtt", "pretrain", "--data", "", "--dim", "32", "--layers", "1", "--heads", "2",
		"--steps", "3", "--tokens", "64", "--out", out, "--val-every", "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := carryon(t, "gtt", "eval", "--model", out, "--csv", writeSeasonalCSV(t, 800), "--horizons", "24", "--stride", "100"); err != nil {
		t.Fatalf("evaluating the pretrained file: %v", err)
	}
	// Resume continues from the saved step.
	if _, err := carryon(t, "gtt", "pretrain", "--data", "", "--resume", out, "--steps", "5", "--tokens", "64", "--out", out, "--val-every", "0"); err != nil {
		t.Fatal(err)
	}
}

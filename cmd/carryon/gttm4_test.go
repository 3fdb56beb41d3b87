package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeM4Pair writes a wide train/test file pair in the M4 layout: a header
// row, then one quoted id and the values per row (ragged rows padded with
// empty cells). Each series is a daily cycle on its own level, scaled
// multiplicatively, with the test part continuing it for horizon steps.
func writeM4Pair(t *testing.T, dir, stem, prefix string, lengths []int, horizon, period int) {
	t.Helper()
	width := 0
	for _, n := range lengths {
		width = max(width, n)
	}
	write := func(name string, rows [][]float64) {
		var b strings.Builder
		cols := 0
		for _, r := range rows {
			cols = max(cols, len(r))
		}
		b.WriteString(`"V1"`)
		for c := 2; c <= cols+1; c++ {
			fmt.Fprintf(&b, `,"V%d"`, c)
		}
		b.WriteByte('\n')
		for i, r := range rows {
			fmt.Fprintf(&b, `"%s%d"`, prefix, i+1)
			for c := 0; c < cols; c++ {
				if c < len(r) {
					fmt.Fprintf(&b, `,"%.3f"`, r[c])
				} else {
					b.WriteString(`,""`)
				}
			}
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var train, test [][]float64
	for i, n := range lengths {
		all := make([]float64, n+horizon)
		level := 100 * float64(i+1)
		for k := range all {
			season := 1.0
			if period > 1 {
				season = 1 + 0.4*math.Sin(2*math.Pi*float64(k)/float64(period))
			}
			all[k] = level * (1 + 0.0002*float64(k)) * season
		}
		train = append(train, all[:n])
		test = append(test, all[n:])
	}
	write(stem+"-train.csv", train)
	write(stem+"-test.csv", test)
}

func TestGTTM4JSONShape(t *testing.T) {
	dir := t.TempDir()
	writeM4Pair(t, dir, "Hourly", "H", []int{700, 300, 520}, 48, 24)
	writeM4Pair(t, dir, "Weekly", "W", []int{200, 90}, 13, 1)
	out, err := carryon(t, "gtt", "m4", "--data", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]map[string]float64
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if len(doc) != 2 {
		t.Fatalf("output %s: want exactly {\"hourly\":...,\"weekly\":...}", out)
	}
	for _, set := range []string{"hourly", "weekly"} {
		e := doc[set]
		if len(e) != 4 {
			t.Fatalf("%s has keys %v, want model, naive, seasonal_naive, naive2", set, e)
		}
		for _, k := range []string{"model", "naive", "seasonal_naive", "naive2"} {
			m := e[k]
			if len(m) != 3 || m["smape"] < 0 || m["smape"] > 200 || m["mase"] < 0 || m["owa"] < 0 {
				t.Fatalf("%s %s: %v, want smape, mase and owa", set, k, m)
			}
		}
		if e["naive2"]["owa"] != 1 {
			t.Errorf("%s: Naive2 OWA %v, want exactly 1", set, e["naive2"]["owa"])
		}
	}
	// A clean multiplicative daily cycle: the seasonal benchmarks are
	// nearly exact, and the model must be far better than naive.
	h := doc["hourly"]
	if h["seasonal_naive"]["smape"] > 1 || h["naive2"]["smape"] > 1 {
		t.Errorf("hourly: seasonal naive %v, Naive2 %v on a clean cycle", h["seasonal_naive"], h["naive2"])
	}
	if h["model"]["smape"] > 0.5*h["naive"]["smape"] {
		t.Errorf("hourly: model %v, naive %v", h["model"], h["naive"])
	}
	// Weekly has period 1: seasonal naive and Naive2 are the naive forecast.
	w := doc["weekly"]
	if w["seasonal_naive"] == nil || w["seasonal_naive"]["smape"] != w["naive"]["smape"] || w["naive2"]["mase"] != w["naive"]["mase"] {
		t.Errorf("weekly: naive %v, seasonal naive %v, Naive2 %v", w["naive"], w["seasonal_naive"], w["naive2"])
	}
}

func TestGTTM4TableAndErrors(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "m4")
	os.Mkdir(dir, 0o755)
	writeM4Pair(t, dir, "Hourly", "H", []int{400, 300}, 48, 24)
	// --data may name the parent of m4/; --raw scores the network alone.
	out, err := carryon(t, "gtt", "m4", "--data", parent, "--set", "hourly", "--raw", "--context", "256")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"M4 hourly: 2 series, horizon 48, period 24", "network alone", "context 256",
		"Naive2 deseasonalized 2 of 2 series", "seasonal naive  |", "Naive2          |"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "weekly") {
		t.Errorf("--set hourly printed weekly:\n%s", out)
	}

	// The weekly files are missing; ids that do not match are named.
	if _, err := carryon(t, "gtt", "m4", "--data", dir, "--set", "weekly"); err == nil || !strings.Contains(err.Error(), "Weekly-train.csv") {
		t.Errorf("missing weekly files: %v", err)
	}
	bad := t.TempDir()
	writeM4Pair(t, bad, "Hourly", "H", []int{400, 300}, 48, 24)
	testFile := filepath.Join(bad, "Hourly-test.csv")
	data, _ := os.ReadFile(testFile)
	os.WriteFile(testFile, []byte(strings.Replace(string(data), `"H2"`, `"H7"`, 1)), 0o644)
	if _, err := carryon(t, "gtt", "m4", "--data", bad, "--set", "hourly"); err == nil || !strings.Contains(err.Error(), `"H2"`) {
		t.Errorf("mismatched ids: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "daily"}, `"daily"`},
		{[]string{"--raw", "--walk"}, "cannot go with --raw"},
		{[]string{"--context", "2000"}, "--context 2000 is outside"},
	} {
		args := append([]string{"gtt", "m4", "--data", dir}, c.args...)
		if _, err := carryon(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want an error with %q, got %v", c.args, c.want, err)
		}
	}
}

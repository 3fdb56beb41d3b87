package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carryon/carryon/models/gtt"
)

// writeForecastCSV writes an hourly table with a daily cycle and a gap.
func writeForecastCSV(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("date,load,temp\n")
	t0 := time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		x := 2 * math.Pi * float64(i) / 24
		load := fmt.Sprintf("%.4f", 50+10*math.Sin(x))
		if i%50 == 7 {
			load = ""
		}
		fmt.Fprintf(&b, "%s,%s,%.4f\n", t0.Add(time.Duration(i)*time.Hour).Format("2006-01-02 15:04:05"), load, 5+2*math.Cos(x))
	}
	path := filepath.Join(t.TempDir(), "hourly.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestForecastJSONAndPlot(t *testing.T) {
	path := writeForecastCSV(t, 600)
	img := filepath.Join(t.TempDir(), "fc.png")
	out, err := carryon(t, "forecast", "--csv", path, "--horizon", "30", "--quantiles", "0.9,0.1", "--json",
		"--plot", img, "--plot-width", "640", "--plot-height", "200", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	var res forecastOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Model != "gtt-small" || res.Horizon != 30 || len(res.Forecasts) != 2 || len(res.Timestamps) != 30 {
		t.Fatalf("%+v", res)
	}
	if res.Timestamps[0] != "2021-06-26T00:00:00Z" {
		t.Errorf("first forecast time %s", res.Timestamps[0])
	}
	load := res.Forecasts[0]
	if load.Name != "load" || len(load.Mean) != 30 || len(load.Quantiles["0.1"]) != 30 || len(load.Quantiles["0.9"]) != 30 {
		t.Fatalf("load: %+v", load)
	}
	for k, v := range load.Mean {
		truth := 50 + 10*math.Sin(2*math.Pi*float64(600+k)/24)
		if math.Abs(float64(v)-truth) > 3 {
			t.Errorf("step %d: %v, truth %v", k, v, truth)
		}
		if !(load.Quantiles["0.1"][k] <= v+1e-3 && v <= load.Quantiles["0.9"][k]+1e-3) {
			t.Errorf("step %d: mean %v outside its 0.1–0.9 band %v..%v", k, v, load.Quantiles["0.1"][k], load.Quantiles["0.9"][k])
		}
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pic, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := pic.Bounds(); b.Dx() != 640 || b.Dy() != 400 {
		t.Errorf("plot is %dx%d, want 640x400 (two columns of 200)", b.Dx(), b.Dy())
	}
}

func TestForecastTableAndColumns(t *testing.T) {
	path := writeForecastCSV(t, 300)
	out, err := carryon(t, "forecast", "--csv", path, "--columns", "temp", "--horizon", "5", "--quantiles", "", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "time") || !strings.Contains(lines[0], "temp") || strings.Contains(lines[0], "load") {
		t.Fatalf("table:\n%s", out)
	}
	if !strings.Contains(lines[1], "2021-06-13T12:00:00Z") {
		t.Errorf("first row %q", lines[1])
	}
	// --independent gives each column its own forecast; by index.
	out, err = carryon(t, "forecast", "--csv", path, "--columns", "0,1", "--independent", "--horizon", "3", "--json", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	var res forecastOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Forecasts) != 2 || res.Forecasts[1].Name != "temp" {
		t.Fatalf("%v %s", err, out)
	}
}

func TestForecastTunedModelByPath(t *testing.T) {
	path := writeForecastCSV(t, 400)
	base, _, err := gtt.Default()
	if err != nil {
		t.Fatal(err)
	}
	series := make([]float32, 400)
	for i := range series {
		series[i] = float32(50 + 10*math.Sin(2*math.Pi*float64(i)/24))
	}
	tu, err := gtt.FineTune(t.Context(), base, "gtt-small", []gtt.Input{{Series: [][]float32{series}}}, gtt.TuneConfig{Steps: 2, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := tu.Save(filepath.Join(data, "forecasters", "shop")); err != nil {
		t.Fatal(err)
	}
	out, err := carryon(t, "forecast", "--csv", path, "--columns", "load", "--model", "shop", "--data-dir", data, "--horizon", "4", "--json", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, filepath.Join(data, "forecasters", "shop")) {
		t.Errorf("model not named: %s", out)
	}
	// Two columns on a one-channel tuned model are refused.
	if _, err := carryon(t, "forecast", "--csv", path, "--model", "shop", "--data-dir", data, "--horizon", "4"); err == nil || !strings.Contains(err.Error(), "channels") {
		t.Errorf("two columns: %v", err)
	}
}

func TestForecastErrors(t *testing.T) {
	path := writeForecastCSV(t, 100)
	for _, args := range [][]string{
		{"forecast", "--csv", path, "--columns", "nope"},
		{"forecast", "--csv", path, "--horizon", "0"},
		{"forecast", "--csv", path, "--quantiles", "0.5,1.2"},
		{"forecast", "--csv", path, "--quantiles", "0.5,0.5"},
		{"forecast", "--csv", path, "--model", "missing"},
		{"forecast", "--csv", filepath.Join(t.TempDir(), "none.csv")},
		{"forecast"},
	} {
		if _, err := carryon(t, args...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

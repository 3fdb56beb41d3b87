package gtt

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/safetensors"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	m := testModel(t)
	dir := t.TempDir()
	series := [][]float32{sineSeries(333, 24, 0.5, 3, 1)}
	want, err := m.Forecast(series, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16} {
		path := filepath.Join(dir, string(dt)+".safetensors")
		if err := m.Save(path, dt, map[string]string{"step": "7"}); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Config() != m.Config() {
			t.Fatalf("%s: config %s, want %s", dt, got.Config(), m.Config())
		}
		for i, v := range m.params {
			tol := 0.0
			if dt == safetensors.F16 {
				tol = 1e-3 * math.Max(1, math.Abs(float64(v)))
			}
			if math.Abs(float64(got.params[i]-v)) > tol {
				t.Fatalf("%s: parameter %d = %g, want %g", dt, i, got.params[i], v)
			}
		}
		f, err := got.Forecast(series, 100)
		if err != nil {
			t.Fatal(err)
		}
		if dt == safetensors.F32 {
			for k := range f[0] {
				if f[0][k] != want[0][k] {
					t.Fatalf("F32 reload: step %d forecast %g, want %g", k, f[0][k], want[0][k])
				}
			}
		}
	}
	// A directory holding WeightsFile loads too, and keeps the metadata.
	sub := filepath.Join(dir, "model")
	os.Mkdir(sub, 0o755)
	if err := m.Save(filepath.Join(sub, WeightsFile), safetensors.F32, map[string]string{"step": "9"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(sub); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(sub, WeightsFile))
	if _, meta, err := Parse(data); err != nil || meta["step"] != "9" {
		t.Fatalf("metadata %v, %v; want step 9", meta, err)
	}
}

func TestParseRejectsWrongFiles(t *testing.T) {
	m := testModel(t)
	w, err := m.writer(safetensors.F32, nil)
	if err != nil {
		t.Fatal(err)
	}
	var good strings.Builder
	w.WriteTo(&good)

	// Not a GTT file.
	other := safetensors.NewWriter()
	other.AddFloat32("x", safetensors.F32, []int{1}, []float32{1})
	var b strings.Builder
	other.WriteTo(&b)
	if _, _, err := Parse([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "not a gtt checkpoint") {
		t.Errorf("foreign file: %v", err)
	}
	// A tensor of the wrong shape.
	bad := safetensors.NewWriter()
	bad.Metadata = map[string]string{metaFormat: formatName, metaConfig: m.Config().String()}
	for _, s := range m.specs {
		shape := s.shape
		if s.name == "head.bias" {
			shape = []int{s.size() - 1}
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		bad.AddFloat32(s.name, safetensors.F32, shape, make([]float32, n))
	}
	b.Reset()
	bad.WriteTo(&b)
	if _, _, err := Parse([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "head.bias") {
		t.Errorf("wrong shape: %v", err)
	}
	// A truncated file.
	if _, _, err := Parse([]byte(good.String())[:good.Len()/2]); err == nil {
		t.Errorf("truncated file accepted")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil {
		t.Errorf("missing file accepted")
	}
}

func TestEmbeddedCheckpointForecasts(t *testing.T) {
	m, meta, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if meta["step"] == "" {
		t.Errorf("embedded checkpoint metadata lacks the training step: %v", meta)
	}
	if m.Config().PatchLen != 64 || m.Config().Context != 1024 {
		t.Errorf("embedded config %s, want patches of 64 and context 1024", m.Config())
	}
	// A clean daily-cycle series: the forecast must follow the cycle far
	// better than the last value does.
	n, h := 1024, 96
	full := sineSeries(n+h, 24, 0.3, 20, 5)
	f, err := m.Forecast([][]float32{full[:n]}, h)
	if err != nil {
		t.Fatal(err)
	}
	var se, naive float64
	for k := 0; k < h; k++ {
		truth := float64(full[n+k])
		se += math.Pow(float64(f[0][k])-truth, 2)
		naive += math.Pow(float64(full[n-1])-truth, 2)
	}
	if se > 0.1*naive {
		t.Errorf("sine forecast MSE %.4f, naive %.4f: want under a tenth of naive", se/float64(h), naive/float64(h))
	}
}

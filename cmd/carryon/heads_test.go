package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	carryonhead "github.com/carryon/carryon/models/carryon"
)

func TestHeadsInit(t *testing.T) {
	model := testdataPath(t, "stories260K.gguf")
	dir := filepath.Join(t.TempDir(), "head")
	out, err := carryon(t, "heads", "init", "--model", model, "--out", dir, "--layers", "1", "--dim", "32", "--bridge", "int8", "--alpha", "0.5", "--seed", "7", "--taps", "final,2", "--dtype", "f32")
	if err != nil {
		t.Fatal(err)
	}
	h, err := carryonhead.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := h.Config()
	if c.Base.Dim != 64 || c.Base.Vocab != 512 || c.Blocks != 1 || c.Width != 32 || c.Heads != 2 || c.FFN != 128 ||
		c.Bridge.Kind != "int8" || c.DType != "f32" || c.Alpha != 0.5 || c.Seed != 7 || len(c.Taps) != 2 || c.Taps[1] != 2 {
		t.Fatalf("config %+v", c)
	}
	if !strings.Contains(out, "version "+h.Version()) {
		t.Fatalf("output does not give the version %s:\n%s", h.Version(), out)
	}

	// The same flags give the same head, hence the same version.
	if _, err := carryon(t, "heads", "init", "-m", model, "-o", dir, "--layers", "1", "--dim", "32", "--bridge", "int8", "--alpha", "0.5", "--seed", "7", "--taps", "final,2"); err == nil {
		t.Fatal("init into a non-empty directory succeeded without --force")
	}
	again := t.TempDir()
	if _, err := carryon(t, "heads", "init", "-m", model, "-o", again, "--layers", "1", "--dim", "32", "--bridge", "int8", "--alpha", "0.5", "--seed", "7", "--taps", "final,2", "--dtype", "f32"); err != nil {
		t.Fatal(err)
	}
	if v, _ := carryonhead.DirVersion(again); v != h.Version() {
		t.Fatalf("same flags, version %s then %s", h.Version(), v)
	}

	for _, bad := range [][]string{
		{"--bridge", "pca"},
		{"--layers", "5"},
		{"--taps", "final,99"},
		{"--bridge-dim", "8"},
		{"--dtype", "q8"},
	} {
		args := append([]string{"heads", "init", "-m", model, "-o", t.TempDir()}, bad...)
		if _, err := carryon(t, args...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, carryonhead.WeightsFile)); err != nil {
		t.Fatal(err)
	}
}

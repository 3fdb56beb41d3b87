// Package testenv finds the shared test data (real models, tokenizer
// vectors) that some tests need.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the shared test data directory: $CARRYON_TESTDATA, or
// ../shared/testdata beside the repository root.
func Dir() string {
	if d := os.Getenv("CARRYON_TESTDATA"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	return filepath.Join(root, "..", "shared", "testdata")
}

// Path returns the path of name inside the shared test data directory. When
// the file is missing the test is skipped, except under CI=true, where a
// missing file fails the test.
func Path(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(), name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("test data %s is missing (CI=true): %v", p, err)
		}
		t.Skipf("test data %s not found; set CARRYON_TESTDATA to the shared test data directory", p)
	}
	return p
}

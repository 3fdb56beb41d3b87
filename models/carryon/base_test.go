package carryon

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/synth"
	"github.com/carryon/carryon/models/testenv"
)

func TestBaseFromGGUF(t *testing.T) {
	f, err := gguf.Open(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := BaseFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	// stories260K: llama, d=64, 5 layers, vocab 512, tied output.
	if b.Arch != "llama" || b.Dim != 64 || b.Layers != 5 || b.Vocab != 512 || b.Context != 128 {
		t.Fatalf("base %+v", b)
	}
	if !strings.HasPrefix(b.Fingerprint, "sha256:") || len(b.Fingerprint) != 7+64 {
		t.Fatalf("fingerprint %q", b.Fingerprint)
	}
}

func TestFingerprintFollowsWeights(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, seed uint64) Base {
		path := filepath.Join(dir, name)
		spec := synth.Spec{Arch: "qwen2", Vocab: 300, Dim: 32, Layers: 2, Heads: 2, FFN: 64, Context: 256, Seed: seed}
		if err := synth.Write(path, spec); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := BaseFromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, a2, other := write("a.gguf", 1), write("a2.gguf", 1), write("b.gguf", 2)
	if a.Arch != "qwen2" || a.Dim != 32 || a.Vocab != 300 || a.Layers != 2 || a.Context != 256 {
		t.Fatalf("base %+v", a)
	}
	if a.Fingerprint != a2.Fingerprint {
		t.Error("the same weights give different fingerprints")
	}
	if a.Fingerprint == other.Fingerprint {
		t.Error("different weights give the same fingerprint")
	}
}

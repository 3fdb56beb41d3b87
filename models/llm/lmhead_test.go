package llm

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
)

// TestLMHeadMatchesModel checks that the LM head loaded alone gives the
// loss and gradient of the whole model's CrossEntropy, for LM heads stored
// as F32, F16 and Q8_0, and that it reports the model's shape.
func TestLMHeadMatchesModel(t *testing.T) {
	for _, wt := range []ggml.Type{ggml.TypeF32, ggml.TypeF16, ggml.TypeQ8_0} {
		path := writeSynth(t, tinySpec("llama", wt))
		m := loadPath(t, path)
		h, err := LoadLMHead(path, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if h.Dim() != m.cfg.Dim || h.Vocab() != m.cfg.Vocab || h.Type() != wt {
			t.Fatalf("%v: head %d×%d %v, model %d×%d", wt, h.Vocab(), h.Dim(), h.Type(), m.cfg.Vocab, m.cfg.Dim)
		}
		if got, ok := h.Meta().Strings("tokenizer.ggml.tokens"); !ok || len(got) != h.Vocab() {
			t.Fatalf("%v: metadata has %d tokens (%v)", wt, len(got), ok)
		}
		d := h.Dim()
		rng := rand.New(rand.NewPCG(3, 4))
		const rows = 5
		hidden := make([]float32, rows*d)
		for i := range hidden {
			hidden[i] = float32(rng.NormFloat64() * 2)
		}
		targets := []int32{5, -1, 77, 0, int32(h.Vocab() - 1)}
		want := make([]float32, len(hidden))
		wantSum, wantN, err := m.CrossEntropy(want, hidden, targets, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(hidden))
		for i := range got {
			got[i] = 9 // CrossEntropy overwrites the gradient
		}
		sum, n, err := h.CrossEntropy(got, hidden, targets, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if n != wantN || n != 4 {
			t.Fatalf("%v: %d scored rows, model %d", wt, n, wantN)
		}
		if math.Abs(sum-wantSum) > 1e-5*math.Abs(wantSum) {
			t.Fatalf("%v: loss %v, model %v", wt, sum, wantSum)
		}
		var maxDiff, maxAbs float64
		for i := range got {
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-want[i])))
			maxAbs = math.Max(maxAbs, math.Abs(float64(want[i])))
		}
		if maxAbs == 0 || maxDiff > 1e-5*maxAbs {
			t.Fatalf("%v: gradients differ by %g (largest %g)", wt, maxDiff, maxAbs)
		}
		noGrad, _, err := h.CrossEntropy(nil, hidden, targets, 1)
		if err != nil || noGrad != sum {
			t.Fatalf("%v: loss without gradient %v (%v), with %v", wt, noGrad, err, sum)
		}
	}
}

// TestLMHeadBadInput checks that malformed calls are errors.
func TestLMHeadBadInput(t *testing.T) {
	h, err := LoadLMHead(writeSynth(t, tinySpec("llama", ggml.TypeF32)), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d := h.Dim()
	for _, c := range []struct {
		name    string
		grad    []float32
		hidden  []float32
		targets []int32
		want    string
	}{
		{"ragged hidden", nil, make([]float32, d+1), []int32{1}, "multiple"},
		{"target count", nil, make([]float32, 2*d), []int32{1}, "targets"},
		{"target range", nil, make([]float32, d), []int32{int32(h.Vocab())}, "out of range"},
		{"gradient size", make([]float32, 1), make([]float32, d), []int32{1}, "gradient"},
	} {
		if _, _, err := h.CrossEntropy(c.grad, c.hidden, c.targets, 1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	if _, err := LoadLMHead(t.TempDir()+"/missing.gguf", Options{}); err == nil {
		t.Error("loading a missing file succeeded")
	}
}

// TestLMHeadTied checks that a file without output.weight gives the token
// embeddings as the LM head, as Load does.
func TestLMHeadTied(t *testing.T) {
	src, err := gguf.Open(writeSynth(t, tinySpec("llama", ggml.TypeQ8_0)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := gguf.NewWriter()
	for _, k := range src.Meta.Keys() {
		v, _ := src.Meta.Value(k)
		w.Meta().Set(k, v)
	}
	for _, ti := range src.Tensors {
		if ti.Name == "output.weight" {
			continue
		}
		tn, err := src.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Shape, tn.Data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "tied.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	m := loadPath(t, path)
	h, err := LoadLMHead(path, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d := h.Dim()
	hidden := make([]float32, 2*d)
	for i := range hidden {
		hidden[i] = float32(i%7) - 3
	}
	targets := []int32{3, 200}
	want, _, err := m.CrossEntropy(nil, hidden, targets, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := h.CrossEntropy(nil, hidden, targets, 1)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-5*math.Abs(want) {
		t.Fatalf("tied head loss %v, model %v", got, want)
	}
}

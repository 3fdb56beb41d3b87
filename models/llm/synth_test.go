package llm

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/synth"
)

// tinySpec is the small model the tests run: d=64, 2 layers, vocab 300
// (d=256 for k-quant weights, whose blocks hold 256 values).
func tinySpec(arch string, wt ggml.Type) synth.Spec {
	s := synth.Spec{Arch: arch, Vocab: 300, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Context: 128,
		RopeBase: 1e4, Eps: 1e-5, WeightType: wt, Seed: 11}
	if wt.BlockSize() == ggml.QK_K {
		s.Dim, s.FFN, s.Heads, s.KVHeads = 256, 256, 8, 2
	}
	return s
}

func writeSynth(t testing.TB, s synth.Spec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := synth.Write(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadSynth(t testing.TB, s synth.Spec) *Model {
	t.Helper()
	return loadPath(t, writeSynth(t, s))
}

func loadPath(t testing.TB, path string) *Model {
	t.Helper()
	m, err := Load(path, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

var testPrompt = []int32{1, 17, 200, 33, 5, 250, 99, 42, 7, 123, 64, 3}

// result is what one sequence produced: per row logits and hidden state,
// and per tap layer the residual rows.
type result struct {
	logits, hidden [][]float32
	taps           [][][]float32
}

func (r *result) add(out *Output, row int) {
	r.logits = append(r.logits, append([]float32(nil), out.RowLogits(row)...))
	r.hidden = append(r.hidden, append([]float32(nil), out.RowHidden(row)...))
	for i := range out.Taps {
		if len(r.taps) <= i {
			r.taps = append(r.taps, nil)
		}
		r.taps[i] = append(r.taps[i], append([]float32(nil), out.RowTap(i, row)...))
	}
}

func newCache(t testing.TB, m *Model, o CacheOptions) *Cache {
	t.Helper()
	c, err := m.NewCache(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newSeq(t testing.TB, c *Cache) SeqID {
	t.Helper()
	id, err := c.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// prefill runs tokens through a new sequence in one batch.
func prefill(t testing.TB, m *Model, typ ggml.Type, tokens []int32, taps []int) result {
	t.Helper()
	c := newCache(t, m, CacheOptions{Type: typ})
	seq := newSeq(t, c)
	b := Batch{Taps: taps}
	for i, tok := range tokens {
		b.Add(tok, seq, i, true, true)
	}
	var out Output
	if err := m.Forward(context.Background(), c, &b, &out); err != nil {
		t.Fatal(err)
	}
	var r result
	for i := range tokens {
		r.add(&out, i)
	}
	return r
}

// sequential runs tokens one Forward call at a time.
func sequential(t testing.TB, m *Model, typ ggml.Type, tokens []int32, taps []int) result {
	t.Helper()
	c := newCache(t, m, CacheOptions{Type: typ})
	seq := newSeq(t, c)
	var r result
	var out Output
	for i, tok := range tokens {
		b := Batch{Taps: taps}
		b.Add(tok, seq, i, true, true)
		if err := m.Forward(context.Background(), c, &b, &out); err != nil {
			t.Fatal(err)
		}
		r.add(&out, 0)
	}
	return r
}

func maxDiffRows(a, b [][]float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, maxAbsDiff(a[i], b[i]))
	}
	return d
}

// relErr returns ‖a−b‖/‖b‖ over all rows.
func relErr(a, b [][]float32) float64 {
	var num, den float64
	for i := range a {
		for j := range a[i] {
			e := float64(a[i][j]) - float64(b[i][j])
			num += e * e
			den += float64(b[i][j]) * float64(b[i][j])
		}
	}
	return math.Sqrt(num / den)
}

func TestPrefillEqualsSequential(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		for _, typ := range []ggml.Type{ggml.TypeF32, ggml.TypeF16} {
			m := loadSynth(t, tinySpec(arch, ggml.TypeQ8_0))
			a := prefill(t, m, typ, testPrompt, []int{0, 1})
			b := sequential(t, m, typ, testPrompt, []int{0, 1})
			if d := max(maxDiffRows(a.logits, b.logits), maxDiffRows(a.hidden, b.hidden),
				maxDiffRows(a.taps[0], b.taps[0]), maxDiffRows(a.taps[1], b.taps[1])); d > 1e-6 {
				t.Errorf("%s, %s cache: prefill and sequential differ by %g", arch, typ, d)
			}
		}
	}
}

// TestWeightTypes compares models whose weights are the same floats
// stored as F16, Q8_0 and Q4_K with the F32 model. The expected error is
// set by the weights' own quantization error: the relative error of the
// outputs stays within three times the relative RMS error of the matrices
// (about twice is typical for two layers and the LM head).
func TestWeightTypes(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		for _, typ := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_K} {
			spec := tinySpec(arch, typ)
			qPath := writeSynth(t, spec)
			spec.WeightType = ggml.TypeF32
			fPath := writeSynth(t, spec)
			ew := weightError(t, qPath, fPath)
			got := prefill(t, loadPath(t, qPath), ggml.TypeF32, testPrompt, nil)
			want := prefill(t, loadPath(t, fPath), ggml.TypeF32, testPrompt, nil)
			eh, el := relErr(got.hidden, want.hidden), relErr(got.logits, want.logits)
			t.Logf("%s %s: relative error weights %.2g, hidden %.2g, logits %.2g", arch, typ, ew, eh, el)
			if eh > 3*ew || el > 3*ew || eh == 0 {
				t.Errorf("%s %s: relative error hidden %.3g logits %.3g, weights %.3g", arch, typ, eh, el, ew)
			}
		}
	}
}

// weightError returns the relative RMS difference between the matrices of
// two model files.
func weightError(t *testing.T, path, refPath string) float64 {
	t.Helper()
	open := func(p string) *gguf.File {
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	f, ref := open(path), open(refPath)
	var num, den float64
	for _, info := range ref.Tensors {
		if len(info.Shape) != 2 {
			continue
		}
		a, _ := f.Tensor(info.Name)
		b, _ := ref.Tensor(info.Name)
		va, vb := make([]float32, a.Elements()), make([]float32, b.Elements())
		if err := errors.Join(ggml.Dequantize(a.Type, a.Data, va), ggml.Dequantize(b.Type, b.Data, vb)); err != nil {
			t.Fatal(err)
		}
		for i := range va {
			e := float64(va[i]) - float64(vb[i])
			num += e * e
			den += float64(vb[i]) * float64(vb[i])
		}
	}
	return math.Sqrt(num / den)
}

package synth

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/testenv"
	"github.com/carryon/carryon/models/tokenizer"
)

func tiny(arch string, wt ggml.Type) Spec {
	return Spec{Arch: arch, Vocab: 300, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 128, Context: 64,
		RopeBase: 1e4, Eps: 1e-5, WeightType: wt, Seed: 7}
}

func writeOpen(t *testing.T, s Spec) *gguf.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := Write(path, s); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func tensorFloats(t *testing.T, f *gguf.File, name string) []float32 {
	t.Helper()
	tn, err := f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, tn.Elements())
	if err := ggml.Dequantize(tn.Type, tn.Data, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLayout(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		f := writeOpen(t, tiny(arch, ggml.TypeF16))
		if f.Arch() != arch {
			t.Errorf("arch %q", f.Arch())
		}
		if n, _ := f.Meta.Uint(arch + ".embedding_length"); n != 64 {
			t.Errorf("%s: embedding_length %d", arch, n)
		}
		want := map[string][]int{
			"token_embd.weight":        {64, 300},
			"output.weight":            {64, 300},
			"output_norm.weight":       {64},
			"blk.1.attn_q.weight":      {64, 64},
			"blk.1.attn_k.weight":      {64, 32},
			"blk.1.attn_v.weight":      {64, 32},
			"blk.1.attn_output.weight": {64, 64},
			"blk.1.ffn_gate.weight":    {64, 128},
			"blk.1.ffn_up.weight":      {64, 128},
			"blk.1.ffn_down.weight":    {128, 64},
			"blk.1.attn_norm.weight":   {64},
			"blk.1.ffn_norm.weight":    {64},
		}
		switch arch {
		case "qwen2":
			want["blk.0.attn_q.bias"] = []int{64}
			want["blk.0.attn_k.bias"] = []int{32}
		case "qwen3":
			want["blk.0.attn_q_norm.weight"] = []int{16}
			want["blk.0.attn_k_norm.weight"] = []int{16}
		}
		for name, shape := range want {
			tn, err := f.Tensor(name)
			if err != nil {
				t.Errorf("%s: %v", arch, err)
				continue
			}
			if len(tn.Shape) != len(shape) || tn.Shape[0] != shape[0] || (len(shape) > 1 && tn.Shape[1] != shape[1]) {
				t.Errorf("%s: %s shape %v, want %v", arch, name, tn.Shape, shape)
			}
			wantType := ggml.TypeF16
			if len(shape) == 1 {
				wantType = ggml.TypeF32
			}
			if tn.Type != wantType {
				t.Errorf("%s: %s type %s, want %s", arch, name, tn.Type, wantType)
			}
		}
		if arch != "qwen2" && f.HasTensor("blk.0.attn_q.bias") {
			t.Errorf("%s has biases", arch)
		}
	}
}

// TestStatistics checks the weight recipe.
func TestStatistics(t *testing.T) {
	s := tiny("qwen2", ggml.TypeF32)
	s.Dim, s.Heads, s.KVHeads = 256, 4, 4
	f := writeOpen(t, s)
	check := func(name string, mean, std float64) {
		v := tensorFloats(t, f, name)
		var sum, sq float64
		for _, x := range v {
			sum += float64(x)
		}
		m := sum / float64(len(v))
		for _, x := range v {
			sq += (float64(x) - m) * (float64(x) - m)
		}
		sd := math.Sqrt(sq / float64(len(v)))
		if math.Abs(m-mean) > 4*std/math.Sqrt(float64(len(v))) || math.Abs(sd-std) > 0.1*std {
			t.Errorf("%s: mean %.4f std %.4f, want %.4f and %.4f", name, m, sd, mean, std)
		}
	}
	check("token_embd.weight", 0, 0.02)
	check("blk.0.ffn_down.weight", 0, 0.02)
	check("blk.0.attn_norm.weight", 1, 0.01)
	check("blk.1.attn_q.bias", 0, 0.02)
}

// TestSameWeightsAcrossTypes checks that a quantized file holds the F32
// file's weights up to quantization error.
func TestSameWeightsAcrossTypes(t *testing.T) {
	ref := tensorFloats(t, writeOpen(t, tiny("llama", ggml.TypeF32)), "blk.0.attn_q.weight")
	for _, tc := range []struct {
		typ ggml.Type
		tol float64 // max abs error for N(0, 0.02²) weights
	}{{ggml.TypeF16, 1e-4}, {ggml.TypeQ8_0, 1e-3}, {ggml.TypeQ6_K, 3e-3}, {ggml.TypeQ4_K, 1e-2}} {
		s := tiny("llama", tc.typ)
		if tc.typ == ggml.TypeQ4_K || tc.typ == ggml.TypeQ6_K {
			s.Dim, s.FFN, s.Heads, s.KVHeads = 256, 256, 4, 2
			ref := tensorFloats(t, writeOpen(t, func() Spec { x := s; x.WeightType = ggml.TypeF32; return x }()), "blk.0.attn_q.weight")
			got := tensorFloats(t, writeOpen(t, s), "blk.0.attn_q.weight")
			if d := maxDiff(ref, got); d > tc.tol || d == 0 {
				t.Errorf("%s: max diff %g", tc.typ, d)
			}
			continue
		}
		got := tensorFloats(t, writeOpen(t, s), "blk.0.attn_q.weight")
		if d := maxDiff(ref, got); d > tc.tol || d == 0 {
			t.Errorf("%s: max diff %g", tc.typ, d)
		}
	}
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestRejects(t *testing.T) {
	dir := t.TempDir()
	for name, s := range map[string]Spec{
		"arch":      func() Spec { s := tiny("gpt2", ggml.TypeF32); return s }(),
		"heads":     func() Spec { s := tiny("llama", ggml.TypeF32); s.KVHeads = 3; return s }(),
		"block":     tiny("llama", ggml.TypeQ4_K),
		"vocab":     func() Spec { s := tiny("llama", ggml.TypeF32); s.Vocab = 100; return s }(),
		"zero dims": func() Spec { s := tiny("llama", ggml.TypeF32); s.Layers = 0; return s }(),
	} {
		if err := Write(filepath.Join(dir, "x.gguf"), s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBuiltinVocabTokenizes(t *testing.T) {
	f := writeOpen(t, tiny("llama", ggml.TypeF32))
	tok, err := tokenizer.FromGGUF(&f.Meta)
	if err != nil {
		t.Fatal(err)
	}
	text := "the cat sat on the mat. Zebra 42 ü"
	ids := tok.Encode(text, true, false)
	if len(ids) < 3 || ids[0] != 1 {
		t.Fatalf("ids %v", ids)
	}
	for _, id := range ids {
		if id < 0 || id >= 300 {
			t.Fatalf("id %d out of the vocabulary", id)
		}
	}
	if got := tok.Decode(ids[1:]); strings.TrimSpace(got) != text {
		t.Errorf("round trip %q", got)
	}
}

func TestTokenizerFrom(t *testing.T) {
	vf, err := gguf.Open(testenv.Path(t, "vocab/ggml-vocab-gpt-2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	s := tiny("qwen2", ggml.TypeF16)
	s.Vocab, s.TokenizerFrom = 0, &vf.Meta
	f := writeOpen(t, s)
	toks, _ := f.Meta.Strings("tokenizer.ggml.tokens")
	if len(toks) != 50257 {
		t.Fatalf("%d tokens", len(toks))
	}
	if tn, _ := f.Tensor("token_embd.weight"); tn.Shape[1] != 50257 {
		t.Errorf("token_embd shape %v", tn.Shape)
	}
	if _, ok := f.Meta.Strings("tokenizer.ggml.merges"); !ok {
		t.Error("merges not copied")
	}
}

func TestPresets(t *testing.T) {
	for _, s := range []Spec{Bench360M(ggml.TypeF16), Bench500M(ggml.TypeQ8_0), Bench360MQ4K(), Bench500MQ4K()} {
		if _, err := s.normalize(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	s := Bench500M(ggml.TypeF16)
	params := s.Vocab*s.Dim*2 + s.Layers*(2*s.Dim*s.Dim+2*s.Dim*s.Dim*s.KVHeads/s.Heads+3*s.Dim*s.FFN)
	if params < 440e6 || params > 460e6 {
		t.Errorf("bench-qwen2-500m has %d parameters, BENCH.md says 448M", params)
	}
}

package llm

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
)

// rewrite copies the GGUF file at src to a new file, letting meta change
// the metadata (or add tensors) and edit change each tensor (returning
// keep=false drops it).
func rewrite(t *testing.T, src string, meta func(*gguf.Writer), edit func(name string, typ ggml.Type, shape []int, data []byte) (ggml.Type, []int, []byte, bool)) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, k := range f.Meta.Keys() {
		v, _ := f.Meta.Value(k)
		w.Meta().Set(k, v)
	}
	if meta != nil {
		meta(w)
	}
	for _, info := range f.Tensors {
		tn, _ := f.Tensor(info.Name)
		typ, shape, data, keep := info.Type, info.Shape, append([]byte(nil), tn.Data...), true
		if edit != nil {
			typ, shape, data, keep = edit(info.Name, typ, shape, data)
		}
		if keep {
			if err := w.AddTensor(info.Name, typ, shape, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "edited.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadErrors(t *testing.T) {
	src := writeSynth(t, tinySpec("qwen3", ggml.TypeF32))
	same := func(name string, typ ggml.Type, shape []int, data []byte) (ggml.Type, []int, []byte, bool) {
		return typ, shape, data, true
	}
	drop := func(victim string) func(string, ggml.Type, []int, []byte) (ggml.Type, []int, []byte, bool) {
		return func(name string, typ ggml.Type, shape []int, data []byte) (ggml.Type, []int, []byte, bool) {
			return typ, shape, data, name != victim
		}
	}
	cases := []struct {
		name string
		meta func(*gguf.Writer)
		edit func(string, ggml.Type, []int, []byte) (ggml.Type, []int, []byte, bool)
		want string
	}{
		{"arch", func(w *gguf.Writer) { w.Meta().Set("general.architecture", "mamba") }, same, `architecture "mamba" is not supported`},
		{"no arch", func(w *gguf.Writer) { w.Meta().Set("general.architecture", "") }, same, "general.architecture is missing"},
		{"metadata", func(w *gguf.Writer) { w.Meta().Set("qwen3.block_count", "two") }, same, "qwen3.block_count is not a single non-negative integer"},
		{"layers", func(w *gguf.Writer) { w.Meta().Set("qwen3.block_count", uint32(1<<20)) }, same, "block count 1048576 exceeds"},
		{"heads", func(w *gguf.Writer) { w.Meta().Set("qwen3.attention.head_count_kv", uint32(3)) }, same, "not a multiple of the key/value head count"},
		{"eps", func(w *gguf.Writer) { w.Meta().Set("qwen3.attention.layer_norm_rms_epsilon", float32(math.NaN())) }, same, "out of range"},
		{"scaling", func(w *gguf.Writer) { w.Meta().Set("qwen3.rope.scaling.type", "longrope") }, same, `rope scaling type "longrope"`},
		{"experts", func(w *gguf.Writer) { w.Meta().Set("qwen3.expert_count", uint32(8)) }, same, "mixture-of-experts"},
		{"vocab", func(w *gguf.Writer) { w.Meta().Set("tokenizer.ggml.tokens", []string{"a", "b"}) }, same, "the vocabulary has 2 tokens"},
		{"missing", nil, drop("blk.1.ffn_up.weight"), `tensor "blk.1.ffn_up.weight" not found`},
		{"missing q norm", nil, drop("blk.0.attn_q_norm.weight"), `"blk.0.attn_q_norm.weight" not found`},
		{"missing output norm", nil, drop("output_norm.weight"), `"output_norm.weight" not found`},
		{"shape", nil, func(name string, typ ggml.Type, shape []int, data []byte) (ggml.Type, []int, []byte, bool) {
			if name == "blk.0.attn_k.weight" {
				return typ, []int{shape[1], shape[0]}, data, true
			}
			return typ, shape, data, true
		}, "blk.0.attn_k.weight has shape [32 64], want [64 32]"},
		{"type", nil, func(name string, typ ggml.Type, shape []int, data []byte) (ggml.Type, []int, []byte, bool) {
			if name == "blk.0.ffn_gate.weight" {
				return ggml.TypeI32, shape, data, true
			}
			return typ, shape, data, true
		}, "tensor type I32 is not supported"},
	}
	for _, c := range cases {
		path := rewrite(t, src, c.meta, c.edit)
		m, err := Load(path, Options{Threads: 1})
		if err == nil {
			m.Close()
			t.Errorf("%s: loaded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.gguf"), Options{}); err == nil {
		t.Error("absent file loaded")
	}
	if _, err := Load(src, Options{Backend: "abacus"}); err == nil || !strings.Contains(err.Error(), `"abacus" is not available`) {
		t.Errorf("unknown backend: %v", err)
	}
}

// TestTiedOutput checks that a model without output.weight uses the token
// embeddings as its LM head.
func TestTiedOutput(t *testing.T) {
	src := writeSynth(t, tinySpec("llama", ggml.TypeF16))
	var embd []byte
	path := rewrite(t, src, nil, func(name string, typ ggml.Type, shape []int, data []byte) (ggml.Type, []int, []byte, bool) {
		if name == "token_embd.weight" {
			embd = data
		}
		return typ, shape, data, name != "output.weight"
	})
	m := loadPath(t, path)
	hidden := make([]float32, 64)
	hidden[5] = 1
	logits := make([]float32, 300)
	if err := m.Logits(logits, hidden); err != nil {
		t.Fatal(err)
	}
	for tok := range 300 {
		want := ggml.F16ToF32(uint16(embd[2*(tok*64+5)]) | uint16(embd[2*(tok*64+5)+1])<<8)
		if logits[tok] != want {
			t.Fatalf("logit %d = %v, want embedding element %v", tok, logits[tok], want)
		}
	}
}

func TestConfig(t *testing.T) {
	base := func() *gguf.Metadata {
		var m gguf.Metadata
		for k, v := range map[string]any{
			"x.embedding_length": uint32(128), "x.block_count": uint32(2), "x.feed_forward_length": uint32(256),
			"x.attention.head_count": uint32(4), "x.context_length": uint32(4096),
			"x.attention.layer_norm_rms_epsilon": float32(1e-6),
		} {
			m.Set(k, v)
		}
		return &m
	}
	c, err := parseConfig("x", base())
	if err != nil {
		t.Fatal(err)
	}
	if c.KVHeads != 4 || c.HeadDim != 32 || c.ValueDim != 32 || c.RoPE.Dims != 32 || c.RoPE.Base != 10000 ||
		c.RoPE.FreqScale != 1 || c.RoPE.ExtFactor != 0 || c.RopeScaling != "none" || c.Eps != 1e-6 || c.RoPE.OrigContext != 4096 {
		t.Errorf("defaults: %+v", c)
	}

	m := base()
	m.Set("x.rope.scaling.type", "yarn")
	m.Set("x.rope.scaling.factor", float32(4))
	m.Set("x.rope.scaling.original_context_length", uint32(1024))
	m.Set("x.rope.freq_base", float32(1e6))
	m.Set("x.attention.key_length", uint32(64))
	m.Set("x.attention.value_length", uint32(48))
	m.Set("x.attention.head_count_kv", uint32(2))
	c, err = parseConfig("x", m)
	if err != nil {
		t.Fatal(err)
	}
	if c.RopeScaling != "yarn" || c.RoPE.FreqScale != 0.25 || c.RoPE.ExtFactor != 1 || c.RoPE.OrigContext != 1024 ||
		c.RoPE.Base != 1e6 || c.HeadDim != 64 || c.ValueDim != 48 || c.RoPE.Dims != 64 || c.KVHeads != 2 {
		t.Errorf("yarn: %+v", c)
	}

	m = base()
	m.Set("x.rope.scale_linear", float32(2))
	c, err = parseConfig("x", m)
	if err != nil || c.RopeScaling != "linear" || c.RoPE.FreqScale != 0.5 || c.RoPE.ExtFactor != 0 {
		t.Errorf("linear: %+v %v", c, err)
	}
	m.Set("x.rope.scaling.type", "none")
	if c, err = parseConfig("x", m); err != nil || c.RoPE.FreqScale != 1 {
		t.Errorf("none: %+v %v", c, err)
	}

	m = base()
	m.Set("x.rope.dimension_count", uint32(33))
	if _, err := parseConfig("x", m); err == nil {
		t.Error("odd rope dimension count accepted")
	}
	m = base()
	m.Set("x.feed_forward_length", []uint32{256, 256})
	if _, err := parseConfig("x", m); err == nil {
		t.Error("per-layer feed-forward lengths accepted")
	}
}

// TestRopeFreqs checks that a rope_freqs tensor (LLaMA 3) divides the
// rotation frequencies: factors of 1 change nothing, factors of 2 change
// the outputs.
func TestRopeFreqs(t *testing.T) {
	src := writeSynth(t, tinySpec("llama", ggml.TypeF32))
	withFactors := func(f float32) string {
		return rewrite(t, src, func(w *gguf.Writer) {
			v := make([]float32, 8) // head size 16 → 8 pairs
			for i := range v {
				v[i] = f
			}
			b := make([]byte, 4*len(v))
			ggml.F32RowToBytes(v, b)
			if err := w.AddTensor("rope_freqs.weight", ggml.TypeF32, []int{8}, b); err != nil {
				t.Fatal(err)
			}
		}, nil)
	}
	base := prefill(t, loadPath(t, src), ggml.TypeF32, testPrompt, nil)
	ones := prefill(t, loadPath(t, withFactors(1)), ggml.TypeF32, testPrompt, nil)
	twos := prefill(t, loadPath(t, withFactors(2)), ggml.TypeF32, testPrompt, nil)
	if d := maxDiffRows(base.logits, ones.logits); d != 0 {
		t.Errorf("unit factors changed the logits by %g", d)
	}
	if d := maxDiffRows(base.logits[1:], twos.logits[1:]); d == 0 {
		t.Error("factors of 2 changed nothing")
	}
	if d := maxAbsDiff(base.logits[0], twos.logits[0]); d != 0 {
		t.Errorf("position 0 changed by %g", d)
	}
}

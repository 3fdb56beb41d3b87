package carryon

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testBase is a small base model identity.
var testBase = Base{Arch: "llama", Dim: 24, Vocab: 100, Layers: 4, Context: 64, Fingerprint: "sha256:test"}

func testConfig(seed uint64) Config {
	c := DefaultConfig(testBase)
	c.Width, c.Heads, c.FFN, c.Blocks = 16, 2, 40, 2
	c.Alpha = 50 // large enough that deltas are far from zero
	c.Seed = seed
	return c
}

func newHead(t testing.TB, c Config) *Head {
	t.Helper()
	h, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// inputs returns n random rows of width w.
func inputs(seed uint64, n, w int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, w)
		for j := range out[i] {
			out[i][j] = float32(rng.NormFloat64())
		}
	}
	return out
}

func seqRows(head string, seq SeqID, pos0 int, in [][]float32) []Row {
	rows := make([]Row, len(in))
	for i, x := range in {
		rows[i] = Row{Head: head, Seq: seq, Pos: pos0 + i, Input: x}
	}
	return rows
}

func equalRows(t *testing.T, what string, got, want [][]float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: row %d has %d floats, want %d", what, i, len(got[i]), len(want[i]))
		}
		for j := range got[i] {
			if d := math.Abs(float64(got[i][j] - want[i][j])); d > tol || math.IsNaN(float64(got[i][j])) {
				t.Fatalf("%s: row %d[%d] = %v, want %v", what, i, j, got[i][j], want[i][j])
			}
		}
	}
}

func TestAlphaZeroIsExactlyZero(t *testing.T) {
	c := testConfig(1)
	c.Alpha = 0
	h := newHead(t, c)
	in := inputs(2, 5, c.InputDim())
	in[3][0] = 1e30 // even absurd inputs give zero
	out, err := h.Forward(context.Background(), seqRows("", 1, 0, in))
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range out {
		for j, v := range row {
			if v != 0 || math.Signbit(float64(v)) {
				t.Fatalf("row %d[%d] = %v", i, j, v)
			}
		}
	}
}

func TestFreshHeadIsNearTheBase(t *testing.T) {
	c := DefaultConfig(Base{Arch: "llama", Dim: 96, Layers: 2})
	c.Width, c.Heads, c.FFN = 32, 2, 64
	h := newHead(t, c)
	out, err := h.Forward(context.Background(), seqRows("", 1, 0, inputs(3, 8, 96)))
	if err != nil {
		t.Fatal(err)
	}
	var ss float64
	for _, row := range out {
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
	}
	rms := math.Sqrt(ss / float64(8*96))
	// Δ ~ N(0, 0.01²) gated by g ≈ 0.5: well under 1% of the unit-scale input.
	if rms == 0 || rms > 0.02 {
		t.Fatalf("fresh head delta RMS %v", rms)
	}
}

func TestTokenByTokenEqualsOneCall(t *testing.T) {
	for _, bridge := range []string{BridgeIdentity, BridgeInt8, BridgeLinear} {
		t.Run(bridge, func(t *testing.T) {
			c := testConfig(4)
			c.Bridge.Kind = bridge
			c.Taps = []int{FinalLayer, 1}
			in := inputs(5, 9, c.InputDim())
			whole := newHead(t, c)
			want, err := whole.Forward(context.Background(), seqRows("", 7, 0, in))
			if err != nil {
				t.Fatal(err)
			}
			step := newHead(t, c)
			var got [][]float32
			for p := range in {
				out, err := step.Forward(context.Background(), seqRows("", 7, p, in[p:p+1]))
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, out...)
			}
			equalRows(t, "token by token", got, want, 1e-6)
			// And in uneven chunks.
			chunk := newHead(t, c)
			got = got[:0]
			for _, span := range [][2]int{{0, 4}, {4, 5}, {5, 9}} {
				out, err := chunk.Forward(context.Background(), seqRows("", 7, span[0], in[span[0]:span[1]]))
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, out...)
			}
			equalRows(t, "chunks", got, want, 1e-6)
		})
	}
}

func TestMixedHeadsEqualSeparateCalls(t *testing.T) {
	set := NewSet()
	configs := map[string]Config{"a": testConfig(10), "b": testConfig(11), "c": testConfig(12)}
	cb := configs["b"]
	cb.Bridge.Kind = BridgeLinear
	cb.Bridge.Dim = 8
	configs["b"] = cb
	cc := configs["c"]
	cc.Blocks = 1
	configs["c"] = cc
	for id, c := range configs {
		set.Put(id, newHead(t, c))
	}
	// Three sequences per head, prompts of different lengths, interleaved.
	type seq struct {
		head string
		id   SeqID
		in   [][]float32
	}
	var seqs []seq
	n := SeqID(0)
	for _, id := range []string{"a", "b", "c"} {
		for k := range 3 {
			n++
			seqs = append(seqs, seq{id, n, inputs(uint64(n), 2+k, testBase.Dim)})
		}
	}
	var rows []Row
	for p := 0; p < 4; p++ {
		for _, s := range seqs {
			if p < len(s.in) {
				rows = append(rows, Row{Head: s.head, Seq: s.id, Pos: p, Input: s.in[p]})
			}
		}
	}
	mixed, err := set.Forward(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	got := map[SeqID][][]float32{}
	for _, r := range rows {
		got[r.Seq] = append(got[r.Seq], mixed[i])
		i++
	}
	for _, s := range seqs {
		alone := newHead(t, configs[s.head])
		want, err := alone.Forward(context.Background(), seqRows("", s.id, 0, s.in))
		if err != nil {
			t.Fatal(err)
		}
		equalRows(t, "sequence of head "+s.head, got[s.id], want, 1e-6)
	}
}

func TestReleaseAndRewind(t *testing.T) {
	c := testConfig(20)
	h := newHead(t, c)
	ctx := context.Background()
	in := inputs(21, 6, c.InputDim())
	if _, err := h.Forward(ctx, seqRows("", 1, 0, in)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Forward(ctx, seqRows("", 2, 0, in[:2])); err != nil {
		t.Fatal(err)
	}
	if h.Sequences() != 2 || h.Positions(1) != 6 {
		t.Fatalf("%d sequences, %d positions", h.Sequences(), h.Positions(1))
	}

	// Rewinding sequence 1 to position 3 with new rows equals a sequence
	// that had those rows from the start.
	alt := inputs(22, 2, c.InputDim())
	got, err := h.Forward(ctx, seqRows("", 1, 3, alt))
	if err != nil {
		t.Fatal(err)
	}
	fresh := newHead(t, c)
	want, err := fresh.Forward(ctx, seqRows("", 9, 0, append(append([][]float32{}, in[:3]...), alt...)))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "rewound", got, want[3:], 1e-6)
	if h.Positions(1) != 5 {
		t.Fatalf("after rewind: %d positions", h.Positions(1))
	}

	h.Release(1, 99)
	if h.Sequences() != 1 || h.Positions(1) != 0 {
		t.Fatalf("after Release: %d sequences", h.Sequences())
	}
	// A released sequence starts over at position 0 only.
	if _, err := h.Forward(ctx, seqRows("", 1, 1, in[:1])); !errors.Is(err, ErrRows) {
		t.Fatalf("continuing a released sequence: %v", err)
	}
	first, err := h.Forward(ctx, seqRows("", 1, 0, in[:1]))
	if err != nil {
		t.Fatal(err)
	}
	want, _ = newHead(t, c).Forward(ctx, seqRows("", 1, 0, in[:1]))
	equalRows(t, "after release", first, want, 0)

	set := NewSet()
	set.Put("x", h)
	set.Release(2)
	if h.Sequences() != 1 {
		t.Fatalf("Set.Release: %d sequences", h.Sequences())
	}
}

func TestBadRowsChangeNothing(t *testing.T) {
	c := testConfig(30)
	set := NewSet()
	h := newHead(t, c)
	set.Put("a", h)
	ctx := context.Background()
	in := inputs(31, 3, c.InputDim())
	if _, err := set.Forward(ctx, seqRows("a", 1, 0, in[:2])); err != nil {
		t.Fatal(err)
	}
	good := Row{Head: "a", Seq: 2, Pos: 0, Input: in[0]}
	cases := []struct {
		name string
		rows []Row
		want error
	}{
		{"unknown head", []Row{good, {Head: "b", Seq: 1, Pos: 2, Input: in[2]}}, ErrUnknownHead},
		{"short input", []Row{good, {Head: "a", Seq: 1, Pos: 2, Input: in[2][:5]}}, ErrRows},
		{"gap", []Row{good, {Head: "a", Seq: 1, Pos: 3, Input: in[2]}}, ErrRows},
		{"not consecutive", []Row{good, {Head: "a", Seq: 1, Pos: 2, Input: in[2]}, {Head: "a", Seq: 1, Pos: 2, Input: in[2]}}, ErrRows},
		{"negative", []Row{good, {Head: "a", Seq: 1, Pos: -1, Input: in[2]}}, ErrRows},
		{"past context", []Row{good, {Head: "a", Seq: 3, Pos: 0, Input: in[2]}, {Head: "a", Seq: 3, Pos: 64, Input: in[2]}}, ErrRows},
	}
	for _, tc := range cases {
		if _, err := set.Forward(ctx, tc.rows); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if h.Sequences() != 1 || h.Positions(1) != 2 {
			t.Fatalf("%s changed state: %d sequences, %d positions", tc.name, h.Sequences(), h.Positions(1))
		}
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := set.Forward(ctxDone, []Row{good}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestSaveLoad(t *testing.T) {
	for _, dtype := range []string{DTypeF32, DTypeF16} {
		t.Run(dtype, func(t *testing.T) { testSaveLoad(t, dtype) })
	}
}

func testSaveLoad(t *testing.T, dtype string) {
	c := testConfig(40)
	c.Bridge = Bridge{Kind: BridgeLinear, Dim: 12}
	c.DType = dtype
	h := newHead(t, c)
	dir := filepath.Join(t.TempDir(), "head")
	if err := h.Save(dir); err != nil {
		t.Fatal(err)
	}
	v, err := DirVersion(dir)
	if err != nil || v != h.Version() || len(v) != 64 {
		t.Fatalf("DirVersion %q (%v), head version %q", v, err, h.Version())
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Version() != h.Version() || back.Parameters() != h.Parameters() {
		t.Fatalf("loaded version %s, %d parameters", back.Version(), back.Parameters())
	}
	in := inputs(41, 4, c.InputDim())
	want, _ := h.Forward(context.Background(), seqRows("", 1, 0, in))
	got, err := back.Forward(context.Background(), seqRows("", 1, 0, in))
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, "loaded head", got, want, 0)

	// Another seed is another version; the same config and seed the same.
	if newHead(t, testConfig(41)).Version() == newHead(t, testConfig(40)).Version() {
		t.Error("different seeds, same version")
	}
	if newHead(t, c).Version() != h.Version() {
		t.Error("same seed, different version")
	}
}

func TestLoadRejectsBadDirectories(t *testing.T) {
	c := testConfig(50)
	h := newHead(t, c)
	write := func(t *testing.T, mutate func(dir string)) string {
		dir := t.TempDir()
		if err := h.Save(dir); err != nil {
			t.Fatal(err)
		}
		mutate(dir)
		return dir
	}
	other := newHead(t, func() Config { c := testConfig(50); c.Width, c.FFN = 8, 16; return c }())
	cases := []struct {
		name   string
		mutate func(dir string)
		want   string
	}{
		{"no config", func(d string) { os.Remove(filepath.Join(d, ConfigFile)) }, "config.json"},
		{"no weights", func(d string) { os.Remove(filepath.Join(d, WeightsFile)) }, "weights.safetensors"},
		{"bad json", func(d string) { os.WriteFile(filepath.Join(d, ConfigFile), []byte("{"), 0o644) }, "config.json"},
		{"wrong type", func(d string) {
			os.WriteFile(filepath.Join(d, ConfigFile), []byte(`{"type":"lora"}`), 0o644)
		}, `type "lora"`},
		{"five blocks", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, ConfigFile))
			os.WriteFile(filepath.Join(d, ConfigFile), []byte(strings.Replace(string(b), `"blocks": 2`, `"blocks": 5`, 1)), 0o644)
		}, "blocks"},
		{"truncated weights", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, WeightsFile))
			os.WriteFile(filepath.Join(d, WeightsFile), b[:len(b)-10], 0o644)
		}, "weights.safetensors"},
		{"weights of another shape", func(d string) {
			o := t.TempDir()
			other.Save(o)
			b, _ := os.ReadFile(filepath.Join(o, WeightsFile))
			os.WriteFile(filepath.Join(d, WeightsFile), b, 0o644)
		}, "shape"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(t, tc.mutate))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestF16WeightsAreCloseToF32(t *testing.T) {
	c := testConfig(90)
	c.DType = DTypeF32
	h32 := newHead(t, c)
	c.DType = DTypeF16
	h16 := newHead(t, c)
	if h16.Version() == h32.Version() {
		t.Fatal("f16 and f32 heads share a version")
	}
	in := inputs(91, 6, c.InputDim())
	a, _ := h32.Forward(context.Background(), seqRows("", 1, 0, in))
	b, err := h16.Forward(context.Background(), seqRows("", 1, 0, in))
	if err != nil {
		t.Fatal(err)
	}
	var worst, scale float64
	for i := range a {
		for j := range a[i] {
			worst = math.Max(worst, math.Abs(float64(a[i][j]-b[i][j])))
			scale = math.Max(scale, math.Abs(float64(a[i][j])))
		}
	}
	// Half precision keeps 11 significant bits of each weight.
	if worst > 5e-3*scale {
		t.Fatalf("f16 head differs by %v (max |Δ| %v)", worst, scale)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"zero width":     func(c *Config) { c.Width = 0 },
		"odd head size":  func(c *Config) { c.Heads = 16 },
		"no blocks":      func(c *Config) { c.Blocks = 0 },
		"bad bridge":     func(c *Config) { c.Bridge.Kind = "pca" },
		"identity dim":   func(c *Config) { c.Bridge.Dim = 3 },
		"tap too deep":   func(c *Config) { c.Taps = []int{4} },
		"tap twice":      func(c *Config) { c.Taps = []int{-1, -1} },
		"nan alpha":      func(c *Config) { c.Alpha = float32(math.NaN()) },
		"no base dim":    func(c *Config) { c.Base.Dim = 0 },
		"negative theta": func(c *Config) { c.RopeTheta = -1 },
		"bf16 dtype":     func(c *Config) { c.DType = "bf16" },
	} {
		c := testConfig(1)
		mutate(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestInt8Bridge(t *testing.T) {
	x := inputs(60, 1, 200)[0]
	x[17] = -9
	y := append([]float32(nil), x...)
	int8RoundTrip(y)
	scale := float32(9) / 127
	for i := range x {
		if d := math.Abs(float64(x[i] - y[i])); d > float64(scale)/2*1.0001 {
			t.Fatalf("[%d] %v → %v, error beyond half a step %v", i, x[i], y[i], scale/2)
		}
	}
	if y[17] != -9 {
		t.Errorf("the extreme value %v is not exact", y[17])
	}
	z := append([]float32(nil), y...)
	int8RoundTrip(z)
	equalRows(t, "idempotent", [][]float32{z}, [][]float32{y}, 1e-6)
}

func TestConcurrentForward(t *testing.T) {
	set := NewSet()
	for i, id := range []string{"a", "b"} {
		set.Put(id, newHead(t, testConfig(uint64(70+i))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := []string{"a", "b"}[g%2]
			in := inputs(uint64(g), 5, testBase.Dim)
			for p := range in {
				if _, err := set.Forward(context.Background(), []Row{{Head: id, Seq: SeqID(g), Pos: p, Input: in[p]}}); err != nil {
					errs <- err
					return
				}
			}
			set.Release(SeqID(g))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

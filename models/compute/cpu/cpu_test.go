package cpu

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
)

func randn(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(std * rng.NormFloat64())
	}
	return v
}

func newBackend(t testing.TB, threads int) *Backend {
	t.Helper()
	b, err := New(compute.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// tensor quantizes vals (rows rows of cols) as typ and returns the tensor
// and its dequantized values.
func tensor(t testing.TB, typ ggml.Type, vals []float32, cols, rows int) (gguf.Tensor, []float32) {
	t.Helper()
	data, err := ggml.Quantize(typ, vals)
	if err != nil {
		t.Fatal(err)
	}
	deq := make([]float32, len(vals))
	if err := ggml.Dequantize(typ, data, deq); err != nil {
		t.Fatal(err)
	}
	info := gguf.TensorInfo{Name: "w", Shape: []int{cols, rows}, Type: typ, Size: int64(len(data))}
	return gguf.Tensor{TensorInfo: info, Data: data}, deq
}

var weightTypes = []ggml.Type{ggml.TypeF32, ggml.TypeF16, ggml.TypeBF16, ggml.TypeQ4_0, ggml.TypeQ5_0,
	ggml.TypeQ8_0, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K}

// TestMatMul compares MatMul for every weight type with a float64 product
// of the dequantized weights, and checks that the thread count does not
// change the result.
func TestMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const cols, rows, n = 512, 37, 5
	vals := randn(rng, cols*rows, 0.02)
	x := randn(rng, n*cols, 1)
	one, two := newBackend(t, 1), newBackend(t, 2)
	for _, typ := range weightTypes {
		tn, deq := tensor(t, typ, vals, cols, rows)
		w1, err := one.LoadWeight(tn)
		if err != nil {
			t.Fatal(err)
		}
		w2, _ := two.LoadWeight(tn)
		if w1.Type() != typ || w1.Rows() != rows || w1.Cols() != cols {
			t.Fatalf("%s: weight %v %d×%d", typ, w1.Type(), w1.Rows(), w1.Cols())
		}
		got1, got2 := make([]float32, n*rows), make([]float32, n*rows)
		one.MatMul(got1, w1, x, n)
		two.MatMul(got2, w2, x, n)
		if !slices.Equal(got1, got2) {
			t.Errorf("%s: results differ between 1 and 2 threads", typ)
		}
		step := activationStep(typ, x, cols)
		for r := 0; r < n; r++ {
			for o := 0; o < rows; o++ {
				var want, bound float64
				for i := 0; i < cols; i++ {
					want += float64(deq[o*cols+i]) * float64(x[r*cols+i])
					bound += math.Abs(float64(deq[o*cols+i])) * step[r*cols+i] / 2
				}
				if d := math.Abs(float64(got1[r*rows+o]) - want); d > 1e-5+1.001*bound {
					t.Fatalf("%s: dst[%d,%d] = %v, want %v ± %.3g", typ, r, o, got1[r*rows+o], want, bound)
				}
			}
		}
		row := make([]float32, cols)
		one.Row(row, w1, 3)
		if !slices.Equal(row, deq[3*cols:4*cols]) {
			t.Errorf("%s: Row differs from the dequantized row", typ)
		}
	}
}

// activationStep returns, for each input value, the quantization step of
// the activations that weights of type typ multiply: 0 where the input is
// used as float32, else the step d = max|x|/127 of the input's block (32
// values for Q8_0 activations, 256 for Q8_K), so that rounding moves each
// value by at most d/2.
func activationStep(typ ggml.Type, x []float32, cols int) []float64 {
	step := make([]float64, len(x))
	block := 0
	switch typ {
	case ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0:
		block = 32
	case ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K:
		block = 256
	default:
		return step
	}
	for b := 0; b+block <= len(x); b += block {
		var m float64
		for _, v := range x[b : b+block] {
			m = max(m, math.Abs(float64(v)))
		}
		for i := b; i < b+block; i++ {
			step[i] = m / 127
		}
	}
	return step
}

func TestLoadWeightRejects(t *testing.T) {
	b := newBackend(t, 1)
	bad := []gguf.Tensor{
		{TensorInfo: gguf.TensorInfo{Name: "v", Shape: []int{4}, Type: ggml.TypeF32}, Data: make([]byte, 16)},
		{TensorInfo: gguf.TensorInfo{Name: "iq", Shape: []int{256, 1}, Type: ggml.TypeIQ2_XXS}, Data: make([]byte, 66)},
		{TensorInfo: gguf.TensorInfo{Name: "short", Shape: []int{4, 2}, Type: ggml.TypeF32}, Data: make([]byte, 31)},
	}
	for _, tn := range bad {
		if _, err := b.LoadWeight(tn); err == nil {
			t.Errorf("%s: accepted", tn.Name)
		}
	}
}

func TestRegistered(t *testing.T) {
	if !slices.Contains(compute.Names(), "cpu") {
		t.Fatalf("names %v", compute.Names())
	}
	b, err := compute.New("cpu", compute.Options{Threads: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != "cpu" || b.(*Backend).Threads() != 3 {
		t.Errorf("backend %s with %d threads", b.Name(), b.(*Backend).Threads())
	}
	if _, err := compute.New("nope", compute.Options{}); err == nil {
		t.Error("unknown backend opened")
	}
}

func TestRMSNormAndSwiGLU(t *testing.T) {
	b := newBackend(t, 2)
	x := []float32{1, 2, 3, 4, -4, -3, -2, -1}
	w := []float32{1, 0.5, 2, 1}
	dst := make([]float32, 8)
	b.RMSNorm(dst, x, w, 0)
	scale := 1 / math.Sqrt(7.5)
	for i := range x {
		if want := float64(x[i]) * scale * float64(w[i%4]); math.Abs(float64(dst[i])-want) > 1e-6 {
			t.Errorf("rmsnorm[%d] = %v, want %v", i, dst[i], want)
		}
	}
	g, u := []float32{-2, 0, 1, 3}, []float32{1, 2, 3, 4}
	out := make([]float32, 4)
	b.SwiGLU(out, g, u)
	for i := range g {
		want := float64(g[i]) / (1 + math.Exp(-float64(g[i]))) * float64(u[i])
		if math.Abs(float64(out[i])-want) > 1e-6 {
			t.Errorf("swiglu[%d] = %v, want %v", i, out[i], want)
		}
	}
}

// ropeRef rotates one head in float64 without scaling.
func ropeRef(x []float32, pos int, dims int, base float64, neox bool) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = float64(x[i])
	}
	for k := 0; k < dims/2; k++ {
		theta := float64(pos) * math.Pow(base, -2*float64(k)/float64(dims))
		i, j := 2*k, 2*k+1
		if neox {
			i, j = k, k+dims/2
		}
		c, s := math.Cos(theta), math.Sin(theta)
		out[i] = float64(x[i])*c - float64(x[j])*s
		out[j] = float64(x[i])*s + float64(x[j])*c
	}
	return out
}

func TestRoPE(t *testing.T) {
	b := newBackend(t, 1)
	rng := rand.New(rand.NewPCG(3, 4))
	const heads, hd = 3, 16
	pos := []int32{0, 1, 7, 100}
	for _, neox := range []bool{false, true} {
		for _, dims := range []int{16, 8} {
			x := randn(rng, len(pos)*heads*hd, 1)
			y := slices.Clone(x)
			b.RoPE(y, heads, hd, pos, &compute.RoPE{Dims: dims, NeoX: neox, Base: 10000, FreqScale: 1, AttnFactor: 1})
			for r, p := range pos {
				for h := 0; h < heads; h++ {
					off := (r*heads + h) * hd
					want := ropeRef(x[off:off+hd], int(p), dims, 10000, neox)
					for i := range want {
						if math.Abs(float64(y[off+i])-want[i]) > 1e-4 {
							t.Fatalf("neox=%v dims=%d pos %d: [%d] = %v, want %v", neox, dims, p, i, y[off+i], want[i])
						}
					}
				}
			}
		}
	}

	// Linear scaling by 2 at position 2p is the unscaled rotation at p;
	// frequency factors of 2 do the same.
	x := randn(rng, hd, 1)
	plain, scaled, factored := slices.Clone(x), slices.Clone(x), slices.Clone(x)
	b.RoPE(plain, 1, hd, []int32{21}, &compute.RoPE{Dims: hd, Base: 10000})
	b.RoPE(scaled, 1, hd, []int32{42}, &compute.RoPE{Dims: hd, Base: 10000, FreqScale: 0.5})
	ff := make([]float32, hd/2)
	for i := range ff {
		ff[i] = 2
	}
	b.RoPE(factored, 1, hd, []int32{42}, &compute.RoPE{Dims: hd, Base: 10000, FreqFactors: ff})
	for i := range x {
		if math.Abs(float64(plain[i]-scaled[i])) > 1e-5 || math.Abs(float64(plain[i]-factored[i])) > 1e-5 {
			t.Fatalf("[%d]: plain %v, linear-scaled %v, factored %v", i, plain[i], scaled[i], factored[i])
		}
	}
}

// TestYaRN checks YaRN's ramp: the fastest-turning pairs keep the
// unscaled angle, the slowest use the interpolated one, and every pair is
// scaled by 1 + 0.1·ln(factor).
func TestYaRN(t *testing.T) {
	b := newBackend(t, 1)
	const hd, factor, pos = 64, 4.0, 1000
	p := compute.RoPE{Dims: hd, Base: 10000, FreqScale: 1 / factor, ExtFactor: 1, AttnFactor: 1,
		BetaFast: 32, BetaSlow: 1, OrigContext: 4096}
	x := make([]float32, hd)
	for i := 0; i < hd; i += 2 {
		x[i] = 1 // (1, 0) pairs come out as (m·cos θ, m·sin θ)
	}
	b.RoPE(x, 1, hd, []int32{pos}, &p)
	mscale := 1 + 0.1*math.Log(factor)
	for k := 0; k < hd/2; k++ {
		c, s := float64(x[2*k]), float64(x[2*k+1])
		if m := math.Hypot(c, s); math.Abs(m-mscale) > 1e-5 {
			t.Fatalf("pair %d: magnitude %v, want %v", k, m, mscale)
		}
		theta := pos * math.Pow(10000, -2*float64(k)/hd)
		var want float64
		switch k {
		case 0, 1:
			want = theta // extrapolated: unchanged
		case hd/2 - 1:
			want = theta / factor // interpolated
		default:
			continue
		}
		if d := math.Abs(math.Remainder(math.Atan2(s, c)-want, 2*math.Pi)); d > 1e-3 {
			t.Errorf("pair %d: angle off by %v", k, d)
		}
	}
}

// TestAttention compares attention with grouped-query heads over F32 and
// F16 caches with a float64 computation.
func TestAttention(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := compute.AttentionShape{Heads: 6, KVHeads: 2, HeadDim: 8, ValueDim: 4, Scale: 1 / float32(math.Sqrt(8))}
	const positions = 40
	k := randn(rng, positions*s.KVHeads*s.HeadDim, 1)
	v := randn(rng, positions*s.KVHeads*s.ValueDim, 1)
	lens := []int{1, 17, 40, 3}
	q := randn(rng, len(lens)*s.Heads*s.HeadDim, 1)
	k16, v16 := make([]uint16, len(k)), make([]uint16, len(v))
	for i := range k {
		k16[i] = ggml.F32ToF16(k[i])
	}
	for i := range v {
		v16[i] = ggml.F32ToF16(v[i])
	}
	for _, kv := range []compute.KV{{K32: k, V32: v}, {K16: k16, V16: v16}} {
		rows := make([]compute.AttentionRow, len(lens))
		for i, n := range lens {
			rows[i] = compute.AttentionRow{KV: kv, Len: n}
		}
		for _, threads := range []int{1, 2} {
			b := newBackend(t, threads)
			dst := make([]float32, len(lens)*s.Heads*s.ValueDim)
			b.Attention(dst, q, rows, s)
			tol := 1e-5
			if kv.K16 != nil {
				tol = 5e-3
			}
			for r, n := range lens {
				for h := 0; h < s.Heads; h++ {
					kvh := h / (s.Heads / s.KVHeads)
					w := make([]float64, n)
					var mx, sum float64 = math.Inf(-1), 0
					for p := 0; p < n; p++ {
						for i := 0; i < s.HeadDim; i++ {
							w[p] += float64(q[(r*s.Heads+h)*s.HeadDim+i]) * float64(k[(p*s.KVHeads+kvh)*s.HeadDim+i])
						}
						w[p] *= float64(s.Scale)
						mx = max(mx, w[p])
					}
					for p := range w {
						w[p] = math.Exp(w[p] - mx)
						sum += w[p]
					}
					for j := 0; j < s.ValueDim; j++ {
						var want float64
						for p := range w {
							want += w[p] / sum * float64(v[(p*s.KVHeads+kvh)*s.ValueDim+j])
						}
						got := dst[(r*s.Heads+h)*s.ValueDim+j]
						if math.Abs(float64(got)-want) > tol {
							t.Fatalf("f16=%v threads=%d row %d head %d [%d] = %v, want %v", kv.K16 != nil, threads, r, h, j, got, want)
						}
					}
				}
			}
		}
	}
}

func BenchmarkMatVec(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const cols, rows = 896, 4864
	vals := randn(rng, 1024*rows, 0.02)
	x := randn(rng, cols, 1)
	for _, typ := range []ggml.Type{ggml.TypeF32, ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_K} {
		c := cols
		if typ == ggml.TypeQ4_K {
			c = 1024
		}
		tn, _ := tensor(b, typ, vals[:c*rows], c, rows)
		b.Run(typ.String(), func(b *testing.B) {
			be := newBackend(b, 0)
			w, _ := be.LoadWeight(tn)
			dst := make([]float32, rows)
			xx := append(x, make([]float32, c-cols)...)
			b.SetBytes(int64(len(tn.Data)))
			for b.Loop() {
				be.MatMul(dst, w, xx, 1)
			}
		})
	}
}

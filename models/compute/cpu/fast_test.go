package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/ggml"
)

// TestMatMuls checks that products of one input through MatMuls, with
// weights of several types (kernel types sharing one prepared input, a
// type without kernels), equal the same products made one at a time, for
// a single row and for batches that take the parallel path.
func TestMatMuls(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const cols = 256
	types := []ggml.Type{ggml.TypeQ8_0, ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_1, ggml.TypeQ4_K}
	rowsOf := []int{40, 17, 33, 9, 64}
	for _, threads := range []int{1, 2} {
		b := newBackend(t, threads)
		ws := make([]compute.Weight, len(types))
		for i, typ := range types {
			tn, _ := tensor(t, typ, randn(rng, cols*rowsOf[i], 0.02), cols, rowsOf[i])
			w, err := b.LoadWeight(tn)
			if err != nil {
				t.Fatal(err)
			}
			ws[i] = w
		}
		for _, n := range []int{1, 3, 70} {
			x := randn(rng, n*cols, 1)
			ps := make([]compute.Product, len(ws))
			for i, w := range ws {
				ps[i] = compute.Product{Dst: make([]float32, n*w.Rows()), W: w}
			}
			b.MatMuls(x, n, ps)
			for i, w := range ws {
				want := make([]float32, n*w.Rows())
				b.MatMul(want, w, x, n)
				if !slices.Equal(ps[i].Dst, want) {
					t.Errorf("threads=%d n=%d: product %d (%s) differs from MatMul", threads, n, i, types[i])
				}
			}
		}
	}
}

// TestThreadedVectorOps runs RMSNorm, SwiGLU and RoPE on batches large
// enough to be split over threads and compares them with one thread.
func TestThreadedVectorOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	one, two := newBackend(t, 1), newBackend(t, 2)
	const rows, d, heads, hd = 97, 896, 14, 64
	x := randn(rng, rows*d, 1)
	w := randn(rng, d, 1)
	n1, n2 := make([]float32, len(x)), make([]float32, len(x))
	one.RMSNorm(n1, x, w, 1e-6)
	two.RMSNorm(n2, x, w, 1e-6)
	if !slices.Equal(n1, n2) {
		t.Error("RMSNorm differs between 1 and 2 threads")
	}
	for r := 0; r < rows; r += 31 {
		var ss float64
		for _, v := range x[r*d : (r+1)*d] {
			ss += float64(v) * float64(v)
		}
		s := 1 / math.Sqrt(ss/d+1e-6)
		for i := 0; i < d; i += 101 {
			if want := float64(x[r*d+i]) * s * float64(w[i]); math.Abs(float64(n1[r*d+i])-want) > 1e-5*math.Abs(want)+1e-6 {
				t.Fatalf("RMSNorm row %d [%d] = %g, want %g", r, i, n1[r*d+i], want)
			}
		}
	}
	g, u := randn(rng, rows*4864, 2), randn(rng, rows*4864, 1)
	s1, s2 := make([]float32, len(g)), make([]float32, len(g))
	one.SwiGLU(s1, g, u)
	two.SwiGLU(s2, g, u)
	if !slices.Equal(s1, s2) {
		t.Error("SwiGLU differs between 1 and 2 threads")
	}
	for i := 0; i < len(g); i += 997 {
		want := float64(g[i]) / (1 + math.Exp(-float64(g[i]))) * float64(u[i])
		if math.Abs(float64(s1[i])-want) > 1e-5*math.Abs(want)+1e-6 {
			t.Fatalf("SwiGLU [%d] = %g, want %g", i, s1[i], want)
		}
	}
	pos := make([]int32, rows)
	for i := range pos {
		pos[i] = int32(3 * i)
	}
	q := randn(rng, rows*heads*hd, 1)
	r1, r2 := slices.Clone(q), slices.Clone(q)
	p := &compute.RoPE{Dims: hd, Base: 1e6, NeoX: true}
	one.RoPE(r1, heads, hd, pos, p)
	two.RoPE(r2, heads, hd, pos, p)
	if !slices.Equal(r1, r2) {
		t.Error("RoPE differs between 1 and 2 threads")
	}
}

// TestRoPEAngleCache checks that the cached angles follow changes of the
// positions and of every parameter, including frequency factors changed
// in place.
func TestRoPEAngleCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const heads, hd = 2, 16
	x := randn(rng, 2*heads*hd, 1)
	ff := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	cases := []struct {
		pos []int32
		p   compute.RoPE
	}{
		{[]int32{5, 6}, compute.RoPE{Dims: hd, Base: 10000}},
		{[]int32{5, 7}, compute.RoPE{Dims: hd, Base: 10000}},
		{[]int32{5, 7}, compute.RoPE{Dims: hd, Base: 500000}},
		{[]int32{5, 7}, compute.RoPE{Dims: hd, Base: 500000, FreqScale: 0.25}},
		{[]int32{5, 7}, compute.RoPE{Dims: 8, Base: 500000, FreqScale: 0.25}},
		{[]int32{5, 7}, compute.RoPE{Dims: hd, Base: 10000, FreqFactors: ff}},
		{[]int32{5, 7}, compute.RoPE{Dims: hd, Base: 10000, FreqFactors: ff}}, // ff changed in place below
	}
	cached := newBackend(t, 1)
	for i, c := range cases {
		if i == len(cases)-1 {
			ff[3] = 4
		}
		got := slices.Clone(x)
		cached.RoPE(got, heads, hd, c.pos, &c.p)
		want := slices.Clone(x)
		newBackend(t, 1).RoPE(want, heads, hd, c.pos, &c.p) // a fresh cache
		if !slices.Equal(got, want) {
			t.Errorf("case %d: rotation with cached angles differs from a fresh computation", i)
		}
	}
}

// TestAttentionLong compares attention over a few hundred positions, split
// over threads, with a float64 reference, for both cache types.
func TestAttentionLong(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	s := compute.AttentionShape{Heads: 14, KVHeads: 2, HeadDim: 64, ValueDim: 64, Scale: 0.125}
	const positions = 300
	k := randn(rng, positions*s.KVHeads*s.HeadDim, 1)
	v := randn(rng, positions*s.KVHeads*s.ValueDim, 1)
	k16, v16 := make([]uint16, len(k)), make([]uint16, len(v))
	for i := range k {
		k16[i], v16[i] = ggml.F32ToF16(k[i]), ggml.F32ToF16(v[i])
		k[i], v[i] = ggml.F16ToF32(k16[i]), ggml.F16ToF32(v16[i]) // the same values in both caches
	}
	lens := []int{300, 1, 150}
	q := randn(rng, len(lens)*s.Heads*s.HeadDim, 1)
	b := newBackend(t, 2)
	for _, kv := range []compute.KV{{K32: k, V32: v}, {K16: k16, V16: v16}} {
		rows := make([]compute.AttentionRow, len(lens))
		for i, n := range lens {
			rows[i] = compute.AttentionRow{KV: kv, Len: n}
		}
		dst := make([]float32, len(lens)*s.Heads*s.ValueDim)
		b.Attention(dst, q, rows, s)
		tol := 2e-5
		if kv.K16 != nil {
			tol = 3e-3 // the query and the weights are rounded to F16
		}
		for r, n := range lens {
			for h := 0; h < s.Heads; h++ {
				kvh := h / (s.Heads / s.KVHeads)
				w := make([]float64, n)
				mx := math.Inf(-1)
				for p := range w {
					for i := 0; i < s.HeadDim; i++ {
						w[p] += float64(q[(r*s.Heads+h)*s.HeadDim+i]) * float64(k[(p*s.KVHeads+kvh)*s.HeadDim+i])
					}
					w[p] *= float64(s.Scale)
					mx = max(mx, w[p])
				}
				var sum float64
				for p := range w {
					w[p] = math.Exp(w[p] - mx)
					sum += w[p]
				}
				for j := 0; j < s.ValueDim; j++ {
					var want float64
					for p := range w {
						want += w[p] / sum * float64(v[(p*s.KVHeads+kvh)*s.ValueDim+j])
					}
					if got := dst[(r*s.Heads+h)*s.ValueDim+j]; math.Abs(float64(got)-want) > tol {
						t.Fatalf("f16=%v row %d head %d [%d] = %v, want %v", kv.K16 != nil, r, h, j, got, want)
					}
				}
			}
		}
	}
}

// TestNoAllocations: a decode-sized step of every operation allocates
// nothing once the backend's scratch has grown.
func TestNoAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	b := newBackend(t, 2)
	const d, ffn = 256, 512
	load := func(typ ggml.Type, cols, rows int) compute.Weight {
		tn, _ := tensor(t, typ, randn(rng, cols*rows, 0.02), cols, rows)
		w, err := b.LoadWeight(tn)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	wq, wk, gate, down := load(ggml.TypeQ8_0, d, d), load(ggml.TypeQ8_0, d, 64), load(ggml.TypeQ4_K, d, ffn), load(ggml.TypeF16, ffn, d)
	x, xn := randn(rng, 4*d, 1), make([]float32, 4*d)
	q, k, g, out := make([]float32, 4*d), make([]float32, 4*64), make([]float32, 4*ffn), make([]float32, 4*d)
	norm := randn(rng, d, 1)
	kv := compute.KV{K32: randn(rng, 64*64, 1), V32: randn(rng, 64*64, 1)}
	rows := []compute.AttentionRow{{KV: kv, Len: 40}, {KV: kv, Len: 64}, {KV: kv, Len: 3}, {KV: kv, Len: 10}}
	pos := []int32{39, 63, 2, 9}
	shape := compute.AttentionShape{Heads: 4, KVHeads: 1, HeadDim: 64, ValueDim: 64, Scale: 0.125}
	ps := []compute.Product{{Dst: q, W: wq}, {Dst: k, W: wk}}
	rope := &compute.RoPE{Dims: 64, Base: 10000}
	step := func() {
		b.RMSNorm(xn, x, norm, 1e-5)
		b.MatMuls(xn, 4, ps)
		b.RoPE(q, 4, 64, pos, rope)
		b.Attention(out, q, rows, shape)
		b.MatMul(g, gate, xn, 4)
		b.SwiGLU(g, g, g)
		b.MatMul(out, down, g, 4)
		b.Row(xn[:d], wq, 3)
	}
	step()
	if n := testing.AllocsPerRun(20, step); n != 0 {
		t.Errorf("a step allocates %v times", n)
	}
}

// BenchmarkAttention measures one decoded row attending over a long F16
// and F32 cache with the head layout of bench-llama-360m (15 query heads
// on 5 key/value heads of 64).
func BenchmarkAttention(b *testing.B) {
	rng := rand.New(rand.NewPCG(17, 18))
	s := compute.AttentionShape{Heads: 15, KVHeads: 5, HeadDim: 64, ValueDim: 64, Scale: 0.125}
	for _, n := range []int{128, 1024} {
		k := randn(rng, n*s.KVHeads*s.HeadDim, 1)
		v := randn(rng, n*s.KVHeads*s.ValueDim, 1)
		k16, v16 := make([]uint16, len(k)), make([]uint16, len(v))
		for i := range k {
			k16[i], v16[i] = ggml.F32ToF16(k[i]), ggml.F32ToF16(v[i])
		}
		q := randn(rng, s.Heads*s.HeadDim, 1)
		dst := make([]float32, s.Heads*s.ValueDim)
		for _, kv := range []compute.KV{{K16: k16, V16: v16}, {K32: k, V32: v}} {
			name := "F32"
			if kv.K16 != nil {
				name = "F16"
			}
			b.Run(fmt.Sprintf("%s/len=%d", name, n), func(b *testing.B) {
				be := newBackend(b, 1)
				rows := []compute.AttentionRow{{KV: kv, Len: n}}
				b.SetBytes(int64(n * s.KVHeads * (s.HeadDim + s.ValueDim) * 2))
				for b.Loop() {
					be.Attention(dst, q, rows, s)
				}
			})
		}
	}
}

// BenchmarkPromptProductsF16 measures the weight products of one layer of
// bench-llama-360m (F16, d=960, 5 key/value heads of 64, FFN 2560) for a
// prompt of 128 rows, as a prompt's forward pass issues them: query, key
// and value together, output, gate and up together, down. GFLOP/s counts
// two per multiply-add, of wall time and of the process's CPU time (Linux;
// idle workers' spinning included).
func BenchmarkPromptProductsF16(b *testing.B) {
	const d, kv, ffn, m = 960, 320, 2560, 128
	rng := rand.New(rand.NewPCG(19, 20))
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			be := newBackend(b, threads)
			load := func(rows, cols int) compute.Weight {
				tn, _ := tensor(b, ggml.TypeF16, randn(rng, rows*cols, 0.02), cols, rows)
				w, err := be.LoadWeight(tn)
				if err != nil {
					b.Fatal(err)
				}
				return w
			}
			q, k, v, o := load(d, d), load(kv, d), load(kv, d), load(d, d)
			gate, up, down := load(ffn, d), load(ffn, d), load(d, ffn)
			x, h := randn(rng, m*d, 1), randn(rng, m*ffn, 1)
			out := func(w compute.Weight) []float32 { return make([]float32, m*w.Rows()) }
			qkv := []compute.Product{{Dst: out(q), W: q}, {Dst: out(k), W: k}, {Dst: out(v), W: v}}
			gu := []compute.Product{{Dst: out(gate), W: gate}, {Dst: out(up), W: up}}
			od, dd := out(o), out(down)
			flop := 2 * float64(m) * float64(d*d*2+kv*d*2+ffn*d*3)
			pass := func() {
				be.MatMuls(x, m, qkv)
				be.MatMul(od, o, x, m)
				be.MatMuls(x, m, gu)
				be.MatMul(dd, down, h, m)
			}
			pass() // sizes the prepared inputs
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			for i := 0; i < b.N; i++ {
				pass()
			}
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			if cpu1, _ := processCPU(); cpuOK && cpu1 > cpu0 {
				b.ReportMetric(flop*float64(b.N)/(cpu1-cpu0).Seconds()/1e9, "GFLOP/cpu-s")
			}
		})
	}
}

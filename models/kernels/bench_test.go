package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/carryon/carryon/models/ggml"
)

// The benchmark shapes are the projection matrices of the models in the
// project's benchmark table: rows×cols = output×input features.
// d=1024 shapes stand in for the k-quant types, whose rows must be whole
// 256-element super-blocks.
var benchShapes = map[ggml.Type][][2]int{
	ggml.TypeF16:  {{2560, 960}, {960, 2560}, {4864, 896}, {896, 4864}},
	ggml.TypeQ8_0: {{2560, 960}, {960, 2560}, {4864, 896}, {896, 4864}},
	ggml.TypeQ4_0: {{2560, 960}, {960, 2560}},
	ggml.TypeQ5_0: {{2560, 960}, {960, 2560}},
	ggml.TypeQ4_K: {{2816, 1024}, {1024, 2816}},
	ggml.TypeQ5_K: {{2816, 1024}, {1024, 2816}},
	ggml.TypeQ6_K: {{2816, 1024}, {1024, 2816}},
}

// coldBytes is how much weight data a cold benchmark cycles through: far
// more than the last-level cache, as decoding a whole model does.
const coldBytes = 512 << 20

// benchMatrices returns enough copies of one random rows×cols matrix of
// type t to hold total bytes (at least one).
func benchMatrices(b *testing.B, t ggml.Type, rows, cols, total int) []*Matrix {
	b.Helper()
	r := rand.New(rand.NewPCG(1, uint64(rows*cols)))
	rb, _ := t.RowSize(cols)
	var one []byte
	if t == ggml.TypeF16 {
		one = randF16(r, rows*cols, 0.02)
	} else {
		one = randBlocks(r, t, rows*rb/t.TypeSize())
	}
	n := max(1, total/len(one))
	data := make([]byte, n*len(one))
	ms := make([]*Matrix, n)
	for i := range ms {
		copy(data[i*len(one):], one)
		m, err := NewMatrix(t, rows, cols, data[i*len(one):(i+1)*len(one)])
		if err != nil {
			b.Fatal(err)
		}
		ms[i] = m
	}
	return ms
}

// BenchmarkMatVec measures one activation row times a weight matrix, on
// one thread and on a 2-thread pool, with the weights hot in cache and
// cold (cycling through 512 MiB of copies). Throughput is weight bytes
// read per second.
func BenchmarkMatVec(b *testing.B) {
	for _, t := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K} {
		for _, sh := range benchShapes[t] {
			rows, cols := sh[0], sh[1]
			for _, cold := range []bool{false, true} {
				for _, threads := range []int{1, 2} {
					name := fmt.Sprintf("%s/%dx%d/%s/t%d", t, rows, cols, map[bool]string{false: "hot", true: "cold"}[cold], threads)
					b.Run(name, func(b *testing.B) {
						total := 0
						if cold {
							total = coldBytes
						}
						ms := benchMatrices(b, t, rows, cols, total)
						r := rand.New(rand.NewPCG(2, 3))
						x := randF32(r, cols, 1)
						var a Activations
						if err := a.Prepare(t, x, 1, cols); err != nil {
							b.Fatal(err)
						}
						dst := make([]float32, rows)
						pool := NewPool(threads)
						defer pool.Close()
						b.SetBytes(int64(len(ms[0].data)))
						b.ReportAllocs()
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							w := ms[i%len(ms)]
							if threads == 1 {
								active.mul(dst, w, &a, 0, rows)
							} else if err := pool.MatMul(dst, w, &a); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
		}
	}
}

// BenchmarkMatMul shows throughput growing with the batch: each weight row
// is read once per four activation rows. Reported: activation rows per
// second (rows/s) beside the weight bytes.
func BenchmarkMatMul(b *testing.B) {
	for _, t := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_K, ggml.TypeQ6_K} {
		sh := benchShapes[t][0]
		rows, cols := sh[0], sh[1]
		for _, m := range []int{1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/%dx%d/m%d", t, rows, cols, m), func(b *testing.B) {
				ms := benchMatrices(b, t, rows, cols, coldBytes/4)
				r := rand.New(rand.NewPCG(4, 5))
				x := randF32(r, m*cols, 1)
				var a Activations
				if err := a.Prepare(t, x, m, cols); err != nil {
					b.Fatal(err)
				}
				dst := make([]float32, m*rows)
				b.SetBytes(int64(len(ms[0].data)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					active.mul(dst, ms[i%len(ms)], &a, 0, rows)
				}
				b.ReportMetric(float64(m)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkDotQ8_0 compares the portable reference dot product over ggml
// blocks with the vector kernel over one weight row.
func BenchmarkDotQ8_0(b *testing.B) {
	const n = 4864
	r := rand.New(rand.NewPCG(6, 7))
	w := randBlocks(r, ggml.TypeQ8_0, n/32)
	x := randF32(r, n, 1)
	xq := make([]byte, n/32*blockQ8_0)
	if err := QuantizeQ8_0(xq, x); err != nil {
		b.Fatal(err)
	}
	b.Run("reference", func(b *testing.B) {
		b.SetBytes(int64(len(w)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := DotQ8_0(w, xq, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kernel", func(b *testing.B) {
		m, _ := NewMatrix(ggml.TypeQ8_0, 1, n, w)
		var a Activations
		if err := a.Prepare(ggml.TypeQ8_0, x, 1, n); err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, 1)
		b.SetBytes(int64(len(w)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			active.mul(dst, m, &a, 0, 1)
		}
	})
}

// BenchmarkPrepare measures quantizing one activation row.
func BenchmarkPrepare(b *testing.B) {
	for _, t := range []ggml.Type{ggml.TypeQ8_0, ggml.TypeQ4_K} {
		for _, n := range []int{1024, 4864} {
			b.Run(fmt.Sprintf("%s/%d", t, n), func(b *testing.B) {
				x := randF32(rand.New(rand.NewPCG(8, 9)), n, 1)
				var a Activations
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if err := a.Prepare(t, x, 1, n); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPoolRun measures the fixed cost of one parallel call: a
// trivial task split over the pool.
func BenchmarkPoolRun(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			var sink [64]int
			fn := TaskFunc(func(lo, hi, _ int) { sink[lo%64] += hi - lo })
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Run(64, fn)
			}
		})
	}
}

// BenchmarkReadBandwidth measures the machine's read bandwidth over 1 GiB
// on one and two goroutines, with a plain Go loop (as the project's
// benchmark notes measure it) and with the vector max kernel, which reads
// 64 bytes per step: the ceiling for the cold MatVec benchmarks.
func BenchmarkReadBandwidth(b *testing.B) {
	buf := make([]uint64, 1<<27) // 1 GiB
	for i := range buf {
		buf[i] = uint64(i)
	}
	f32 := bytesF32(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), 8*len(buf)))
	for _, kind := range []string{"go", "simd"} {
		for _, g := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/g%d", kind, g), func(b *testing.B) {
				b.SetBytes(int64(len(buf) * 8))
				sums := make([]uint64, g*8)
				for i := 0; i < b.N; i++ {
					var wg sync.WaitGroup
					part := len(buf) / g
					for k := range g {
						wg.Add(1)
						go func(s []uint64) {
							defer wg.Done()
							if kind == "simd" {
								f := f32[2*k*part : 2*(k+1)*part]
								sums[8*k] += uint64(active.maxF32(f))
								return
							}
							var a0, a1, a2, a3 uint64
							for j := 0; j+4 <= len(s); j += 4 {
								a0 += s[j]
								a1 += s[j+1]
								a2 += s[j+2]
								a3 += s[j+3]
							}
							sums[8*k] += a0 + a1 + a2 + a3
						}(buf[k*part : (k+1)*part])
					}
					wg.Wait()
				}
			})
		}
	}
}

// BenchmarkKernelSets compares the implementations available on this
// machine on a 128×1024 matrix that stays in the L2 cache: the compute
// ceiling of each kernel, free of memory stalls.
func BenchmarkKernelSets(b *testing.B) {
	const rows, cols = 128, 1024
	for _, t := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K} {
		ms := benchMatrices(b, t, rows, cols, 0)
		for _, ks := range kernelSets() {
			for _, m := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s/%s/m%d", t, ks.name, m), func(b *testing.B) {
					x := randF32(rand.New(rand.NewPCG(1, 2)), m*cols, 1)
					var a Activations
					if err := a.Prepare(t, x, m, cols); err != nil {
						b.Fatal(err)
					}
					dst := make([]float32, m*rows)
					b.SetBytes(int64(len(ms[0].data)))
					for i := 0; i < b.N; i++ {
						ks.mul(dst, ms[0], &a, 0, rows)
					}
				})
			}
		}
	}
}

// BenchmarkMatMulF16 measures the large-batch products of float weights
// (a prompt's rows times one projection, hot in cache after the first
// pass) on one thread, with each vector kernel set, in GFLOP/s (two per
// multiply-add) of wall time and, on Linux, of the thread's CPU time.
func BenchmarkMatMulF16(b *testing.B) {
	for _, t := range []ggml.Type{ggml.TypeF16, ggml.TypeF32} {
		for _, sh := range [][2]int{{2560, 960}, {960, 2560}} {
			rows, cols := sh[0], sh[1]
			for _, ks := range fastSets() {
				for _, m := range []int{16, 32, 128} {
					b.Run(fmt.Sprintf("%s/%dx%d/%s/m%d", t, rows, cols, ks.name, m), func(b *testing.B) {
						w := benchFloatMatrix(t, rows, cols)
						x := randF32(rand.New(rand.NewPCG(6, 7)), m*cols, 1)
						var a Activations
						if err := a.Prepare(t, x, m, cols); err != nil {
							b.Fatal(err)
						}
						dst := make([]float32, m*rows)
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						b.ReportAllocs()
						b.ResetTimer()
						cpu0, cpuOK := threadCPU()
						for i := 0; i < b.N; i++ {
							ks.mul(dst, w, &a, 0, rows)
						}
						flop := 2 * float64(rows*cols*m) * float64(b.N)
						b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
						if cpu1, _ := threadCPU(); cpuOK && cpu1 > cpu0 {
							b.ReportMetric(flop/(cpu1-cpu0).Seconds()/1e9, "GFLOP/cpu-s")
						}
					})
				}
			}
		}
	}
}

// benchFloatMatrix returns a random rows×cols F16 or F32 matrix of normal
// values (random bytes would make F32 weights of NaNs and subnormals).
func benchFloatMatrix(t ggml.Type, rows, cols int) *Matrix {
	r := rand.New(rand.NewPCG(8, uint64(rows*cols)))
	var data []byte
	if t == ggml.TypeF16 {
		data = randF16(r, rows*cols, 0.02)
	} else {
		data = make([]byte, 4*rows*cols)
		for i, v := range randF32(r, rows*cols, 0.02) {
			put32f(data[4*i:], v)
		}
	}
	w, err := NewMatrix(t, rows, cols, data)
	if err != nil {
		panic(err)
	}
	return w
}

package gtt

import (
	"math/rand/v2"
	"testing"
)

// refGemm is C += A·B in float64, the reference for gemm.
func refGemm(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := float64(c[i*ldc+j])
			for p := 0; p < k; p++ {
				s += float64(a[i*lda+p]) * float64(b[p*ldb+j])
			}
			c[i*ldc+j] = float32(s)
		}
	}
}

func TestGemmMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][3]int{{1, 64, 1}, {4, 64, 3}, {7, 130, 300}, {13, 200, 520}, {64, 128, 128}, {5, 17, 9}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, threads := range []int{1, 3} {
			a := randSlice(rng, m*(k+2))
			b := randSlice(rng, k*(n+1))
			c := randSlice(rng, m*(n+3))
			want := append([]float32(nil), c...)
			refGemm(want, n+3, a, k+2, b, n+1, m, n, k)
			c2 := append([]float32(nil), c...)
			gemm(c, n+3, a, k+2, b, n+1, m, n, k, threads)
			for i := range c {
				if d := c[i] - want[i]; d > 1e-3 || d < -1e-3 {
					t.Fatalf("m=%d n=%d k=%d threads=%d: c[%d] = %g, want %g", m, n, k, threads, i, c[i], want[i])
				}
			}
			// The same product with A stored transposed.
			at := make([]float32, k*(m+1))
			transpose(at, m+1, a, k+2, m, k)
			gemmTA(c2, n+3, at, m+1, b, n+1, m, n, k, threads)
			for i := range c2 {
				if d := c2[i] - want[i]; d > 1e-3 || d < -1e-3 {
					t.Fatalf("transposed A, m=%d n=%d k=%d threads=%d: c[%d] = %g, want %g", m, n, k, threads, i, c2[i], want[i])
				}
			}
		}
	}
}

func TestTranspose(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rows, cols := 37, 70
	src := randSlice(rng, rows*cols)
	dst := make([]float32, cols*rows)
	transpose(dst, rows, src, cols, rows, cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if dst[j*rows+i] != src[i*cols+j] {
				t.Fatalf("dst[%d][%d] = %g, want %g", j, i, dst[j*rows+i], src[i*cols+j])
			}
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][3]int{{2048, 512, 128}, {2048, 128, 512}, {128, 512, 2048}} {
		m, n, k := sh[0], sh[1], sh[2]
		a := randSlice(rng, m*k)
		bb := randSlice(rng, k*n)
		c := make([]float32, m*n)
		b.Run("", func(b *testing.B) {
			for b.Loop() {
				gemm(c, n, a, k, bb, n, m, n, k, 1)
			}
			b.ReportMetric(float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

package gtt

import (
	"sync"

	"github.com/carryon/carryon/models/kernels"
)

// kBlock bounds the inner dimension of one pass over a 64-column panel of B,
// so that the panel (kBlock×64 floats) stays in the core's L2 cache while
// every row tile of A streams past it.
const kBlock = 256

// gemm adds A·B to C, where A is m×k (row stride lda), B is k×n (row stride
// ldb) and C is m×n (row stride ldc), all row-major float32. Rows of C are
// split over up to threads goroutines.
func gemm(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k, threads int) {
	gemmStrided(c, ldc, a, lda, 1, b, ldb, m, n, k, threads)
}

// gemmTA adds Aᵀ·B to C, where A is k×m (row stride lda): the gradient of
// a weight matrix from a batch of inputs, without a transposed copy.
func gemmTA(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k, threads int) {
	gemmStrided(c, ldc, a, 1, lda, b, ldb, m, n, k, threads)
}

// gemmStrided adds A·B to C for the m×k matrix A with elements
// a[i·ar + j·ak].
func gemmStrided(c []float32, ldc int, a []float32, ar, ak int, b []float32, ldb int, m, n, k, threads int) {
	if m == 0 || n == 0 || k == 0 {
		return
	}
	if threads > 1 && m >= 8 && m*n*k >= 1<<18 {
		chunk := (m + threads - 1) / threads
		chunk = (chunk + 3) &^ 3
		var wg sync.WaitGroup
		for lo := 0; lo < m; lo += chunk {
			hi := min(lo+chunk, m)
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				gemmSerial(c[lo*ldc:], ldc, a[lo*ar:], ar, ak, b, ldb, hi-lo, n, k)
			}(lo, hi)
		}
		wg.Wait()
		return
	}
	gemmSerial(c, ldc, a, ar, ak, b, ldb, m, n, k)
}

// gemmSerial is gemmStrided on the calling goroutine.
func gemmSerial(c []float32, ldc int, a []float32, ar, ak int, b []float32, ldb int, m, n, k int) {
	n64 := n &^ 63
	for j := 0; j < n64; j += 64 {
		for k0 := 0; k0 < k; k0 += kBlock {
			kk := min(kBlock, k-k0)
			bp := b[k0*ldb+j:]
			i := 0
			for ; i+4 <= m; i += 4 {
				tile4x64(c[i*ldc+j:], ldc, a[i*ar+k0*ak:], ar, ak, bp, ldb, kk)
			}
			for ; i < m; i++ {
				tile1x64(c[i*ldc+j:], a[i*ar+k0*ak:], ak, bp, ldb, kk)
			}
		}
	}
	if n64 == n {
		return
	}
	// Columns past the last whole panel.
	w := n - n64
	for i := 0; i < m; i++ {
		ci := c[i*ldc+n64 : i*ldc+n]
		for p := 0; p < k; p++ {
			if av := a[i*ar+p*ak]; av != 0 {
				kernels.Axpy(ci, av, b[p*ldb+n64:p*ldb+n64+w])
			}
		}
	}
}

// tile4x64Generic is the portable tile4x64.
func tile4x64Generic(c []float32, ldc int, a []float32, ar, ak int, b []float32, ldb, k int) {
	for r := 0; r < 4; r++ {
		tile1x64Generic(c[r*ldc:], a[r*ar:], ak, b, ldb, k)
	}
}

// tile1x64Generic is the portable tile1x64.
func tile1x64Generic(c []float32, a []float32, ak int, b []float32, ldb, k int) {
	cr := c[:64]
	for p := 0; p < k; p++ {
		kernels.Axpy(cr, a[p*ak], b[p*ldb:p*ldb+64])
	}
}

// transpose writes the transpose of the rows×cols matrix src (row stride
// lds) into dst as a cols×rows matrix (row stride ldd).
func transpose(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	const blk = 32
	for i0 := 0; i0 < rows; i0 += blk {
		i1 := min(i0+blk, rows)
		for j0 := 0; j0 < cols; j0 += blk {
			j1 := min(j0+blk, cols)
			for i := i0; i < i1; i++ {
				s := src[i*lds:]
				for j := j0; j < j1; j++ {
					dst[j*ldd+i] = s[j]
				}
			}
		}
	}
}

//go:build amd64 && !noasm

package gtt

import "golang.org/x/sys/cpu"

// hasAVX512 selects the AVX-512 tile kernels, chosen once from the CPU.
var hasAVX512 = cpu.X86.HasAVX512F

//go:noescape
func gemm4x64(c *float32, ldc int, a *float32, ar, ak int, b *float32, ldb int, k int)

//go:noescape
func gemm1x64(c *float32, a *float32, ak int, b *float32, ldb int, k int)

// tile4x64 adds to C[0:4][0:64] the product of the 4×k matrix with
// elements a[r·ar + j·ak] and B[0:k][0:64].
func tile4x64(c []float32, ldc int, a []float32, ar, ak int, b []float32, ldb, k int) {
	if !hasAVX512 {
		tile4x64Generic(c, ldc, a, ar, ak, b, ldb, k)
		return
	}
	if k == 0 {
		return
	}
	// Bounds the assembly relies on.
	_ = c[3*ldc+63]
	_ = a[3*ar+(k-1)*ak]
	_ = b[(k-1)*ldb+63]
	gemm4x64(&c[0], ldc, &a[0], ar, ak, &b[0], ldb, k)
}

// tile1x64 adds to C[0:64] the product of the row a[j·ak] (j < k) and
// B[0:k][0:64].
func tile1x64(c []float32, a []float32, ak int, b []float32, ldb, k int) {
	if !hasAVX512 {
		tile1x64Generic(c, a, ak, b, ldb, k)
		return
	}
	if k == 0 {
		return
	}
	_ = c[63]
	_ = a[(k-1)*ak]
	_ = b[(k-1)*ldb+63]
	gemm1x64(&c[0], &a[0], ak, &b[0], ldb, k)
}

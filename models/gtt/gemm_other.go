//go:build !amd64 || noasm

package gtt

func tile4x64(c []float32, ldc int, a []float32, ar, ak int, b []float32, ldb, k int) {
	tile4x64Generic(c, ldc, a, ar, ak, b, ldb, k)
}

func tile1x64(c []float32, a []float32, ak int, b []float32, ldb, k int) {
	tile1x64Generic(c, a, ak, b, ldb, k)
}

//go:build amd64 && !noasm

package kernels

import (
	"unsafe"

	"github.com/carryon/carryon/models/ggml"
	"golang.org/x/sys/cpu"
)

// Vector levels, chosen once at init from the CPU's features.
var (
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
		cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI
)

var avx2Set = kernelSet{
	name:        "avx2",
	dotF32:      dotF32AVX2,
	dotF16:      dotF16AVX2,
	dotRowsF32:  dotRowsF32AVX2,
	dotRowsF16:  dotRowsF16AVX2,
	axpyRowsF32: axpyRowsF32AVX2,
	axpyRowsF16: axpyRowsF16AVX2,
	axpy:        axpyAVX2,
	scale:       scaleAVX2,
	mulScaled:   mulScaledAVX2,
	swiglu:      swigluAVX2,
	roundF16:    roundF16AVX2,
	expSub:      expSubAVX2,
	maxF32:      maxF32AVX2,
	mul:         mulAVX2,
	prepQ8_0:    prepQ8_0Fast,
	prepQ8_K:    prepQ8_KFast,

	dotRowsCache: dotRowsCacheAVX2,
	axpyHeads:    axpyHeadsAVX2,
}

var avx512Set = kernelSet{
	name:        "avx512",
	dotF32:      dotF32AVX2,
	dotF16:      dotF16AVX512,
	dotRowsF32:  dotRowsF32AVX2,
	dotRowsF16:  dotRowsF16AVX512,
	axpyRowsF32: axpyRowsF32AVX2,
	axpyRowsF16: axpyRowsF16AVX2,
	axpy:        axpyAVX2,
	scale:       scaleAVX2,
	mulScaled:   mulScaledAVX2,
	swiglu:      swigluAVX2,
	roundF16:    roundF16AVX2,
	expSub:      expSubAVX2,
	maxF32:      maxF32AVX2,
	mul:         mulAVX512,
	prepQ8_0:    prepQ8_0Fast,
	prepQ8_K:    prepQ8_KFast,
	pack:        packAVX512,

	dotRowsCache: dotRowsCacheAVX512,
	axpyHeads:    axpyHeadsAVX512,
}

// active is the kernel set in use.
var active = func() *kernelSet {
	switch {
	case hasAVX512:
		return &avx512Set
	case hasAVX2:
		return &avx2Set
	}
	return &generic
}()

// kernelSets lists every implementation that runs on this machine.
func kernelSets() []*kernelSet {
	sets := []*kernelSet{&generic}
	if hasAVX2 {
		sets = append(sets, &avx2Set)
	}
	if hasAVX512 {
		sets = append(sets, &avx512Set)
	}
	return sets
}

// tile4 names four activation rows and their four output rows for the
// batched kernels. Unused slots repeat a used row: the duplicate writes
// store the same value to the same place.
type tile4 struct {
	x   [4]unsafe.Pointer
	out [4]unsafe.Pointer
}

//go:noescape
func f32Rows2(w unsafe.Pointer, wstride uintptr, x *float32, n int, out *float32, rows int)

//go:noescape
func f16Rows2(w unsafe.Pointer, wstride uintptr, x *float32, n int, out *float32, rows int)

//go:noescape
func f16Rows512(w unsafe.Pointer, wstride uintptr, x *float32, n int, out *float32, rows int)

//go:noescape
func f16Rows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, n int, rows int)

//go:noescape
func f16Rows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, n int, rows int)

//go:noescape
func axpyRows2(out *float32, p *float32, rows unsafe.Pointer, stride uintptr, n int, d int, half bool)

//go:noescape
func axpy2(y *float32, x *float32, alpha float32, n int)

//go:noescape
func mulScaled2(dst, x, w *float32, s float32, n int)

//go:noescape
func scale2(x *float32, alpha float32, n int)

//go:noescape
func max2(x *float32, n int) float32

//go:noescape
func expSub2(x *float32, m float32, n int) float32

//go:noescape
func swiglu2(dst, gate, up *float32, n int)

func spinPause()

//go:noescape
func roundF16x2(dst, src *float32, n int)

func roundF16AVX2(dst, src []float32) {
	if len(dst) == 0 {
		return
	}
	src = src[:len(dst)]
	roundF16x2(&dst[0], &src[0], len(dst))
}

//go:noescape
func prepQ8_0AVX2(dst *byte, x *float32, nb int, negk int32)

//go:noescape
func prepQ8_KAVX2(dst *byte, x *float32, nb int)

func prepQ8_0Fast(dst []byte, x []float32, k int32) {
	nb := len(x) / qk8_0
	if nb == 0 {
		return
	}
	_ = dst[(nb+1)/2*q8PairBytes-1]
	prepQ8_0AVX2(&dst[0], &x[0], nb, -k)
}

func prepQ8_KFast(dst []byte, x []float32) {
	nb := len(x) / qkK
	if nb == 0 {
		return
	}
	_ = dst[nb*q8KBytes-1]
	prepQ8_KAVX2(&dst[0], &x[0], nb)
}

//go:noescape
func q4kRows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q4kRows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q4kRows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q4kRows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q5kRows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q5kRows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q5kRows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q5kRows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q6kRows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q6kRows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q6kRows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q6kRows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q80Rows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q80Rows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q80Rows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q80Rows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q40Rows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q40Rows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q40Rows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q40Rows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q50Rows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q50Rows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

//go:noescape
func q50Rows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)

//go:noescape
func q50Rows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)

func dotF32AVX2(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	b = b[:len(a)]
	var out float32
	f32Rows2(unsafe.Pointer(&a[0]), 0, &b[0], len(a), &out, 1)
	return out
}

func dotF16AVX2(w []byte, x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	w = w[:2*len(x)]
	var out float32
	f16Rows2(unsafe.Pointer(&w[0]), 0, &x[0], len(x), &out, 1)
	return out
}

func dotF16AVX512(w []byte, x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	w = w[:2*len(x)]
	var out float32
	f16Rows512(unsafe.Pointer(&w[0]), 0, &x[0], len(x), &out, 1)
	return out
}

func dotRowsF32AVX2(out, q, rows []float32, stride int) {
	if len(out) == 0 || len(q) == 0 {
		clear(out)
		return
	}
	_ = rows[(len(out)-1)*stride+len(q)-1]
	f32Rows2(unsafe.Pointer(&rows[0]), uintptr(4*stride), &q[0], len(q), &out[0], len(out))
}

func dotRowsF16AVX2(out, q []float32, rows []byte, stride int) {
	if len(out) == 0 || len(q) == 0 {
		clear(out)
		return
	}
	_ = rows[2*((len(out)-1)*stride+len(q))-1]
	f16Rows2(unsafe.Pointer(&rows[0]), uintptr(2*stride), &q[0], len(q), &out[0], len(out))
}

func dotRowsF16AVX512(out, q []float32, rows []byte, stride int) {
	if len(out) == 0 || len(q) == 0 {
		clear(out)
		return
	}
	_ = rows[2*((len(out)-1)*stride+len(q))-1]
	f16Rows512(unsafe.Pointer(&rows[0]), uintptr(2*stride), &q[0], len(q), &out[0], len(out))
}

func axpyRowsF32AVX2(out, p, rows []float32, stride int) {
	if len(out) == 0 || len(p) == 0 {
		return
	}
	_ = rows[(len(p)-1)*stride+len(out)-1]
	axpyRows2(&out[0], &p[0], unsafe.Pointer(&rows[0]), uintptr(4*stride), len(p), len(out), false)
}

func axpyRowsF16AVX2(out, p []float32, rows []byte, stride int) {
	if len(out) == 0 || len(p) == 0 {
		return
	}
	_ = rows[2*((len(p)-1)*stride+len(out))-1]
	axpyRows2(&out[0], &p[0], unsafe.Pointer(&rows[0]), uintptr(2*stride), len(p), len(out), true)
}

func axpyAVX2(y []float32, alpha float32, x []float32) {
	if len(y) == 0 {
		return
	}
	x = x[:len(y)]
	axpy2(&y[0], &x[0], alpha, len(y))
}

func scaleAVX2(x []float32, alpha float32) {
	if len(x) == 0 {
		return
	}
	scale2(&x[0], alpha, len(x))
}

func mulScaledAVX2(dst, x, w []float32, s float32) {
	if len(dst) == 0 {
		return
	}
	x, w = x[:len(dst)], w[:len(dst)]
	mulScaled2(&dst[0], &x[0], &w[0], s, len(dst))
}

func maxF32AVX2(x []float32) float32 { return max2(&x[0], len(x)) }

func expSubAVX2(x []float32, m float32) float32 {
	if len(x) == 0 {
		return 0
	}
	return expSub2(&x[0], m, len(x))
}

func swigluAVX2(dst, gate, up []float32) {
	if len(dst) == 0 {
		return
	}
	gate, up = gate[:len(dst)], up[:len(dst)]
	swiglu2(&dst[0], &gate[0], &up[0], len(dst))
}

// kernelID names one pair of asm kernels (one activation row, four
// activation rows) for one weight type and vector level. Calls go through
// a switch rather than func values so that the tile stays on the stack.
type kernelID uint8

const (
	kf16x2 kernelID = iota
	kq80x2
	kq40x2
	kq50x2
	kq4kx2
	kq5kx2
	kq6kx2
	kf16x512
	kq80x512
	kq40x512
	kq50x512
	kq4kx512
	kq5kx512
	kq6kx512
)

// rows1 computes out[i] = dot(weight row i, activation row x) for rows
// consecutive weight rows at w.
func rows1(k kernelID, w unsafe.Pointer, ws uintptr, x unsafe.Pointer, cols int, out *float32, rows int) {
	switch k {
	case kf16x2:
		f16Rows2(w, ws, (*float32)(x), cols, out, rows)
	case kq80x2:
		q80Rows2(w, ws, x, cols, out, rows)
	case kq40x2:
		q40Rows2(w, ws, x, cols, out, rows)
	case kq50x2:
		q50Rows2(w, ws, x, cols, out, rows)
	case kq4kx2:
		q4kRows2(w, ws, x, cols, out, rows)
	case kq5kx2:
		q5kRows2(w, ws, x, cols, out, rows)
	case kq6kx2:
		q6kRows2(w, ws, x, cols, out, rows)
	case kf16x512:
		f16Rows512(w, ws, (*float32)(x), cols, out, rows)
	case kq80x512:
		q80Rows512(w, ws, x, cols, out, rows)
	case kq40x512:
		q40Rows512(w, ws, x, cols, out, rows)
	case kq50x512:
		q50Rows512(w, ws, x, cols, out, rows)
	case kq4kx512:
		q4kRows512(w, ws, x, cols, out, rows)
	case kq5kx512:
		q5kRows512(w, ws, x, cols, out, rows)
	case kq6kx512:
		q6kRows512(w, ws, x, cols, out, rows)
	}
}

// rows4 is rows1 for the four activation rows of a tile.
func rows4(k kernelID, w unsafe.Pointer, ws uintptr, t *tile4, cols int, rows int) {
	switch k {
	case kf16x2:
		f16Rows4x2(w, ws, t, cols, rows)
	case kq80x2:
		q80Rows4x2(w, ws, t, cols, rows)
	case kq40x2:
		q40Rows4x2(w, ws, t, cols, rows)
	case kq50x2:
		q50Rows4x2(w, ws, t, cols, rows)
	case kq4kx2:
		q4kRows4x2(w, ws, t, cols, rows)
	case kq5kx2:
		q5kRows4x2(w, ws, t, cols, rows)
	case kq6kx2:
		q6kRows4x2(w, ws, t, cols, rows)
	case kf16x512:
		f16Rows4x512(w, ws, t, cols, rows)
	case kq80x512:
		q80Rows4x512(w, ws, t, cols, rows)
	case kq40x512:
		q40Rows4x512(w, ws, t, cols, rows)
	case kq50x512:
		q50Rows4x512(w, ws, t, cols, rows)
	case kq4kx512:
		q4kRows4x512(w, ws, t, cols, rows)
	case kq5kx512:
		q5kRows4x512(w, ws, t, cols, rows)
	case kq6kx512:
		q6kRows4x512(w, ws, t, cols, rows)
	}
}

// tileBlockBytes bounds the weight rows that batches of more than four
// activation rows traverse together: each group of four re-reads them from
// the L2 cache rather than from memory.
const tileBlockBytes = 64 << 10

// mulTiled runs a product over weight rows [lo, hi) with one pass over the
// weights per group of four activation rows, and the one-row kernel for a
// batch of one. Larger batches go over the weights in blocks that stay in
// cache across the groups, so memory sees each weight row once.
func mulTiled(dst []float32, w *Matrix, a *Activations, lo, hi int, k kernelID) {
	if hi <= lo {
		return
	}
	ws := uintptr(w.rowBytes)
	if a.m == 1 {
		rows1(k, unsafe.Pointer(&w.data[lo*w.rowBytes]), ws, xrow(a, 0), a.cols, &dst[lo], hi-lo)
		return
	}
	blk := hi - lo
	if a.m > 4 {
		blk = max(1, tileBlockBytes/w.rowBytes)
	}
	var t tile4
	for b0 := lo; b0 < hi; b0 += blk {
		n := min(blk, hi-b0)
		wp := unsafe.Pointer(&w.data[b0*w.rowBytes])
		for r := 0; r < a.m; r += 4 {
			if r == a.m-1 {
				// A lone last row: the one-row kernel does a quarter of the
				// arithmetic of a tile of four copies.
				rows1(k, wp, ws, xrow(a, r), a.cols, &dst[r*w.rows+b0], n)
				break
			}
			for j := range 4 {
				rj := min(r+j, a.m-1)
				t.x[j] = xrow(a, rj)
				t.out[j] = unsafe.Pointer(&dst[rj*w.rows+b0])
			}
			rows4(k, wp, ws, &t, a.cols, n)
		}
	}
}

// xrow returns the start of activation row r.
func xrow(a *Activations, r int) unsafe.Pointer {
	if a.kind == actF32 {
		return unsafe.Pointer(&a.f32[r*a.cols])
	}
	return unsafe.Pointer(&a.q[r*a.stride])
}

// mulF32Rows multiplies F32 weights one activation row at a time; F32
// matrices are rare enough in practice not to warrant a batched kernel.
func mulF32Rows(dst []float32, w *Matrix, a *Activations, lo, hi int) {
	for r := 0; r < a.m; r++ {
		f32Rows2(unsafe.Pointer(&w.data[lo*w.rowBytes]), uintptr(w.rowBytes), &a.f32[r*a.cols], a.cols, &dst[r*w.rows+lo], hi-lo)
	}
}

// kernelFor returns the asm kernels for weight type t at a vector level
// (k?x2 for AVX2, k?x512 for AVX-512).
func kernelFor(t ggml.Type, avx512 bool) kernelID {
	var k kernelID
	switch t {
	case ggml.TypeF16:
		k = kf16x2
	case ggml.TypeQ8_0:
		k = kq80x2
	case ggml.TypeQ4_0:
		k = kq40x2
	case ggml.TypeQ5_0:
		k = kq50x2
	case ggml.TypeQ4_K:
		k = kq4kx2
	case ggml.TypeQ5_K:
		k = kq5kx2
	default:
		k = kq6kx2
	}
	if avx512 {
		k += kf16x512
	}
	return k
}

func mulAVX2(dst []float32, w *Matrix, a *Activations, lo, hi int) {
	if hi <= lo {
		return
	}
	if (w.typ == ggml.TypeF16 || w.typ == ggml.TypeF32) && a.m >= batchFloatRows {
		mulFloatGemm(dst, w, a, lo, hi, gemm256)
		return
	}
	if w.typ == ggml.TypeF32 {
		mulF32Rows(dst, w, a, lo, hi)
		return
	}
	mulTiled(dst, w, a, lo, hi, kernelFor(w.typ, false))
}

func mulAVX512(dst []float32, w *Matrix, a *Activations, lo, hi int) {
	if hi <= lo {
		return
	}
	if w.packed != nil {
		mulPanels(dst, w, a, lo, hi)
		return
	}
	if (w.typ == ggml.TypeF16 || w.typ == ggml.TypeF32) && a.m >= batchFloatRows {
		mulFloatGemm(dst, w, a, lo, hi, gemm512)
		return
	}
	if w.typ == ggml.TypeF32 {
		mulF32Rows(dst, w, a, lo, hi)
		return
	}
	mulTiled(dst, w, a, lo, hi, kernelFor(w.typ, true))
}

//go:noescape
func q80Panels512(w unsafe.Pointer, pstride uintptr, x unsafe.Pointer, blocks int, out *float32, rows int)

//go:noescape
func q80Panels4x512(w unsafe.Pointer, pstride uintptr, t *tile4, blocks int, rows int)

// packAVX512 returns the panel layout of Q8_0 and Q4_K weights, the
// types whose AVX-512 kernels read a layout of their own.
func packAVX512(w *Matrix) []byte {
	switch w.typ {
	case ggml.TypeQ8_0:
		return packQ8_0(w.data, w.rows, w.cols)
	case ggml.TypeQ4_K:
		return packQ4_K(w.data, w.rows, w.cols)
	}
	return nil
}

// panel1 and panel4 run the one-row and four-row panel kernels of w's
// type.
func panel1(w *Matrix, p unsafe.Pointer, ps uintptr, x unsafe.Pointer, nb int, out *float32, rows int) {
	if w.typ == ggml.TypeQ4_K {
		q4kPanels512(p, ps, x, nb, out, rows)
		return
	}
	q80Panels512(p, ps, x, nb, out, rows)
}

func panel4(w *Matrix, p unsafe.Pointer, ps uintptr, t *tile4, nb int, rows int) {
	if w.typ == ggml.TypeQ4_K {
		q4kPanels4x512(p, ps, t, nb, rows)
		return
	}
	q80Panels4x512(p, ps, t, nb, rows)
}

// panelGeometry returns the blocks per row and the bytes per panel of a
// packed matrix.
func panelGeometry(w *Matrix) (nb, stride int) {
	if w.typ == ggml.TypeQ4_K {
		nb = w.cols / qkK
		return nb, nb * q4kPanelBlock
	}
	nb = w.cols / qk8_0
	return nb, panelStride(nb)
}

// mulPanels is mulTiled for a matrix in the panel layout. A range that
// starts inside a panel computes that panel into scratch first; the last
// panel of the range is stored under a mask by the kernels.
func mulPanels(dst []float32, w *Matrix, a *Activations, lo, hi int) {
	nb, ps := panelGeometry(w)
	if lo%panelRows != 0 {
		p := lo / panelRows
		n := min(panelRows, w.rows-p*panelRows) // rows of this panel
		var scratch [panelRows]float32
		end := min(hi, p*panelRows+n)
		pp := unsafe.Pointer(&w.packed[p*ps])
		for r := 0; r < a.m; r++ {
			panel1(w, pp, uintptr(ps), xrow(a, r), nb, &scratch[0], n)
			copy(dst[r*w.rows+lo:r*w.rows+end], scratch[lo-p*panelRows:end-p*panelRows])
		}
		lo = end
		if lo >= hi {
			return
		}
	}
	wp := func(row int) unsafe.Pointer { return unsafe.Pointer(&w.packed[row/panelRows*ps]) }
	if a.m == 1 {
		panel1(w, wp(lo), uintptr(ps), xrow(a, 0), nb, &dst[lo], hi-lo)
		return
	}
	// Batches go over the weights in blocks of panels that stay in cache
	// while every group of four activation rows reads them.
	blk := hi - lo
	if a.m > 4 {
		blk = max(1, tileBlockBytes/ps) * panelRows
	}
	var t tile4
	for b0 := lo; b0 < hi; b0 += blk {
		n := min(blk, hi-b0)
		r := 0
		for ; r+4 <= a.m; r += 4 {
			for j := range 4 {
				t.x[j] = xrow(a, r+j)
				t.out[j] = unsafe.Pointer(&dst[(r+j)*w.rows+b0])
			}
			panel4(w, wp(b0), uintptr(ps), &t, nb, n)
		}
		// One to three rows left: the one-row kernel costs about a
		// quarter of a tile each.
		for ; r < a.m; r++ {
			panel1(w, wp(b0), uintptr(ps), xrow(a, r), nb, &dst[r*w.rows+b0], n)
		}
	}
}

//go:noescape
func q4kPanels512(w unsafe.Pointer, pstride uintptr, x unsafe.Pointer, blocks int, out *float32, rows int)

//go:noescape
func q4kPanels4x512(w unsafe.Pointer, pstride uintptr, t *tile4, blocks int, rows int)

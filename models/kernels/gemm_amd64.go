//go:build amd64 && !noasm

package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/carryon/carryon/models/ggml"
)

// Blocked products of float weights with large batches (AVX-512, AVX2).
//
// A batch of many activation rows turns an F16 or F32 product from
// memory-bound into compute-bound: every weight is multiplied with every
// row. mulFloatGemm therefore spends its time in one register tile that
// does nothing but FMAs. It walks the weight rows of its range in panels of
// two vectors of rows (32 with AVX-512, 16 with AVX2) and the columns in
// blocks of gemmKBlock; each block of a panel is converted to float32
// once, transposed so that a vector's lanes are output rows (f16Panel,
// f32Panel and their 8-lane forms), and then multiplied with every group
// of activation rows (12, or 6 with AVX2) by f32Panel2x12 (f32Panel16x6),
// whose 24 (12) accumulators hold finished dot products of consecutive
// outputs of one activation row: they are stored as they are, without
// horizontal sums. The converted block (32 or 16 KiB) stays in the L1 and
// L2 caches while the activation rows stream past it.

// gemmShape is the geometry of the blocked product at one vector level.
type gemmShape struct {
	lanes int // weight rows of a panel: two vectors
	rows  int // activation rows of the register tile
}

var (
	gemm512 = gemmShape{lanes: 32, rows: 12}
	gemm256 = gemmShape{lanes: 16, rows: 6}
)

const (
	// gemmKBlock is the number of columns converted at a time; a multiple
	// of 16, the transposition's unit.
	gemmKBlock = 256
	// batchFloatRows is the batch from which F16 and F32 products run
	// the blocked product: below it the conversion and transposition of
	// the weights cost more than the tile saves over the row kernels. It
	// is at least the rows of either register tile.
	batchFloatRows = 16
)

//go:noescape
func f16Panel(dst *float32, src unsafe.Pointer, sstride uintptr, n int)

//go:noescape
func f32Panel(dst *float32, src unsafe.Pointer, sstride uintptr, n int)

//go:noescape
func f32Panel2x12(p *float32, n int, x *float32, xstride uintptr, out *float32, ostride uintptr, skip int, pf unsafe.Pointer, pfLines int, accumulate bool, mask uint32)

//go:noescape
func f32Panel2x4(p *float32, n int, x *float32, xstride uintptr, out *float32, ostride uintptr, skip int, pf unsafe.Pointer, pfLines int, accumulate bool, mask uint32)

//go:noescape
func f16Panel8(dst *float32, src unsafe.Pointer, sstride uintptr, n int)

//go:noescape
func f32Panel8(dst *float32, src unsafe.Pointer, sstride uintptr, n int)

//go:noescape
func f32Panel16x6(p *float32, n int, x *float32, xstride uintptr, out *float32, ostride uintptr, skip int, pf unsafe.Pointer, pfLines int, accumulate bool, mask *[16]int32)

// mulFloatGemm is the product of F16 or F32 weight rows [lo, hi) with a
// batch of at least sh.rows activation rows (see the notes above), with
// AVX-512 (gemm512) or AVX2 (gemm256). A last, partial group of activation
// rows is computed as the batch's last sh.rows rows, of which the kernel
// stores only those not done before. While a panel is multiplied, the
// kernel prefetches the weights of the next one. The function does not
// allocate: its buffer lives on the stack.
func mulFloatGemm(dst []float32, w *Matrix, a *Activations, lo, hi int, sh gemmShape) {
	var mem [gemmKBlock*32 + 16]float32
	panel := mem[int(-uintptr(unsafe.Pointer(&mem[0]))&63)/4:][:gemmKBlock*sh.lanes]
	xs, os := uintptr(4*a.cols), uintptr(4*w.rows)
	groups := (a.m + sh.rows - 1) / sh.rows
	calls := groups * ((a.cols + gemmKBlock - 1) / gemmKBlock) // kernel calls per panel
	var mask8 [16]int32
	for i0 := lo; i0 < hi; i0 += sh.lanes {
		n := min(sh.lanes, hi-i0)
		mask := uint32(1)<<n - 1
		if n == 32 {
			mask = math.MaxUint32
		}
		for i := range mask8 {
			mask8[i] = -int32(mask >> i & 1)
		}
		// The next panel's weights are contiguous: spread their
		// prefetches over this panel's kernel calls.
		var pf unsafe.Pointer
		pfLines, pfPer := 0, 0
		if next := i0 + sh.lanes; next < hi {
			pf = unsafe.Pointer(&w.data[next*w.rowBytes])
			pfLines = (min(next+sh.lanes, hi)*w.rowBytes - next*w.rowBytes + 63) / 64
			pfPer = (pfLines + calls - 1) / calls
		}
		for k0 := 0; k0 < a.cols; k0 += gemmKBlock {
			kn := min(gemmKBlock, a.cols-k0)
			fillPanel(panel, w, i0, n, k0, kn, sh.lanes)
			for g := range groups {
				r, skip := g*sh.rows, 0
				if r+sh.rows > a.m {
					r, skip = a.m-sh.rows, r+sh.rows-a.m
				}
				lines := min(pfPer, pfLines, kn/4) // the kernels prefetch one line per four columns
				x, out := &a.f32[r*a.cols+k0], &dst[r*w.rows+i0]
				switch {
				case sh.lanes == 16:
					f32Panel16x6(&panel[0], kn, x, xs, out, os, skip, pf, lines, k0 > 0, &mask8)
				case skip < 4:
					f32Panel2x12(&panel[0], kn, x, xs, out, os, skip, pf, lines, k0 > 0, mask)
				default:
					// At most eight rows left: one or two tiles of four
					// (the second ends at the batch's last row).
					for q := r + skip; q < a.m; q += 4 {
						qr, qskip := q, 0
						if q+4 > a.m {
							qr, qskip = a.m-4, q+4-a.m
						}
						f32Panel2x4(&panel[0], kn, &a.f32[qr*a.cols+k0], xs, &dst[qr*w.rows+i0], os, qskip, pf, lines, k0 > 0, mask)
					}
				}
				if pfLines -= lines; pfLines > 0 {
					pf = unsafe.Add(pf, 64*lines)
				}
			}
		}
	}
}

// fillPanel writes columns [k0, k0+kn) of weight rows [i0, i0+n) (n ≤
// lanes, 32 or 16) as float32 into the panel: panel[lanes·k + j] =
// w[i0+j][k0+k], zero for j ≥ n. With 32 lanes it also zeroes columns kn
// up to the next multiple of 16.
func fillPanel(panel []float32, w *Matrix, i0, n, k0, kn, lanes int) {
	esize := 2
	if w.typ == ggml.TypeF32 {
		esize = 4
	}
	half := lanes / 2
	for h := range 2 {
		rows := min(max(n-half*h, 0), half)
		done := 0 // columns converted by the vector code
		if rows == half {
			src := unsafe.Pointer(&w.data[(i0+half*h)*w.rowBytes+esize*k0])
			dst, stride := &panel[half*h], uintptr(w.rowBytes)
			switch {
			case lanes == 32 && esize == 2:
				f16Panel(dst, src, stride, kn)
			case lanes == 32:
				f32Panel(dst, src, stride, kn)
			case esize == 2:
				f16Panel8(dst, src, stride, kn)
			default:
				f32Panel8(dst, src, stride, kn)
			}
			done = kn
			if lanes == 16 {
				done = kn &^ 7
			}
		}
		// Partial halves, at the end of a range, and the AVX2 column
		// tail: rare enough for scalar code.
		end := kn
		if lanes == 32 && done < kn {
			end = (kn + 15) &^ 15
		}
		for k := done; k < end; k++ {
			col := panel[lanes*k+half*h : lanes*k+half*h+half]
			clear(col)
			if k >= kn {
				continue
			}
			for j := range rows {
				off := (i0+half*h+j)*w.rowBytes + esize*(k0+k)
				if esize == 2 {
					col[j] = f16ToF32(binary.LittleEndian.Uint16(w.data[off:]))
				} else {
					col[j] = math.Float32frombits(binary.LittleEndian.Uint32(w.data[off:]))
				}
			}
		}
	}
}

//go:build amd64 && !noasm

package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/carryon/carryon/models/ggml"
)

// Blocked products of float weights with large batches (AVX-512).
//
// A batch of many activation rows turns an F16 or F32 product from
// memory-bound into compute-bound: every weight is multiplied with every
// row. mulFloatGemm therefore spends its time in one register tile that
// does nothing but FMAs. It walks the weight rows of its range in panels of
// gemmLanes rows and the columns in blocks of gemmKBlock; each block of a
// panel is converted to float32 once, transposed so that a vector's lanes
// are 16 output rows (f16Panel, f32Panel), and then multiplied with every
// group of gemmRows activation rows by f32Panel2x12, whose 24
// accumulators hold finished dot products of 16 consecutive outputs of one
// activation row: they are stored as they are, without horizontal sums.
// The converted block (32 KiB) stays in the L1 and L2 caches while the
// activation rows stream past it.

const (
	// gemmRows is the number of activation rows of the register tile.
	gemmRows = 12
	// gemmLanes is the number of weight rows of a panel: two vectors.
	gemmLanes = 32
	// gemmKBlock is the number of columns converted at a time; a multiple
	// of 16, the transposition's unit.
	gemmKBlock = 256
	// batchFloatRows is the batch from which F16 and F32 products run
	// the blocked product: below it the conversion and transposition of
	// the weights cost more than the tile saves over the row kernels. It
	// is at least gemmRows.
	batchFloatRows = 16
)

//go:noescape
func f16Panel(dst *float32, src unsafe.Pointer, sstride uintptr, n int)

//go:noescape
func f32Panel(dst *float32, src unsafe.Pointer, sstride uintptr, n int)

//go:noescape
func f32Panel2x12(p *float32, n int, x *float32, xstride uintptr, out *float32, ostride uintptr, skip int, pf unsafe.Pointer, pfLines int, accumulate bool, mask uint32)

// mulFloatGemm is the AVX-512 product of F16 or F32 weight rows [lo, hi)
// with a batch of at least gemmRows activation rows (see the notes
// above). A last, partial group of activation rows is computed as the
// batch's last gemmRows rows, of which the kernel stores only those not
// done before. While a panel is multiplied, the kernel prefetches the
// weights of the next one. The function does not allocate: its buffer
// lives on the stack.
func mulFloatGemm(dst []float32, w *Matrix, a *Activations, lo, hi int) {
	var mem [gemmKBlock*gemmLanes + 16]float32
	panel := mem[int(-uintptr(unsafe.Pointer(&mem[0]))&63)/4:][:gemmKBlock*gemmLanes]
	xs, os := uintptr(4*a.cols), uintptr(4*w.rows)
	groups := (a.m + gemmRows - 1) / gemmRows
	calls := groups * ((a.cols + gemmKBlock - 1) / gemmKBlock) // kernel calls per panel
	for i0 := lo; i0 < hi; i0 += gemmLanes {
		n := min(gemmLanes, hi-i0)
		mask := uint32(1)<<n - 1
		if n == gemmLanes {
			mask = math.MaxUint32
		}
		// The next panel's weights are contiguous: spread their
		// prefetches over this panel's kernel calls.
		var pf unsafe.Pointer
		pfLines, pfPer := 0, 0
		if next := i0 + gemmLanes; next < hi {
			pf = unsafe.Pointer(&w.data[next*w.rowBytes])
			pfLines = (min(next+gemmLanes, hi)*w.rowBytes - next*w.rowBytes + 63) / 64
			pfPer = (pfLines + calls - 1) / calls
		}
		for k0 := 0; k0 < a.cols; k0 += gemmKBlock {
			kn := min(gemmKBlock, a.cols-k0)
			fillPanel(panel, w, i0, n, k0, kn)
			for g := range groups {
				r, skip := g*gemmRows, 0
				if r+gemmRows > a.m {
					r, skip = a.m-gemmRows, r+gemmRows-a.m
				}
				lines := min(pfPer, pfLines)
				f32Panel2x12(&panel[0], kn, &a.f32[r*a.cols+k0], xs, &dst[r*w.rows+i0], os, skip, pf, lines, k0 > 0, mask)
				if pfLines -= lines; pfLines > 0 {
					pf = unsafe.Add(pf, 64*lines)
				}
			}
		}
	}
}

// fillPanel writes columns [k0, k0+kn) of weight rows [i0, i0+n) (n ≤ 32)
// as float32 into the panel: panel[32·k + j] = w[i0+j][k0+k], zero for
// j ≥ n and for k from kn up to the next multiple of 16.
func fillPanel(panel []float32, w *Matrix, i0, n, k0, kn int) {
	esize := 2
	if w.typ == ggml.TypeF32 {
		esize = 4
	}
	kn16 := (kn + 15) &^ 15
	for h := 0; h < gemmLanes/16; h++ {
		rows := min(max(n-16*h, 0), 16)
		if rows == 16 {
			src := unsafe.Pointer(&w.data[(i0+16*h)*w.rowBytes+esize*k0])
			if esize == 2 {
				f16Panel(&panel[16*h], src, uintptr(w.rowBytes), kn)
			} else {
				f32Panel(&panel[16*h], src, uintptr(w.rowBytes), kn)
			}
			continue
		}
		// A partial half, at the end of a range: rare enough for scalar
		// code.
		for k := range kn16 {
			col := panel[32*k+16*h : 32*k+16*h+16]
			clear(col)
			if k >= kn {
				continue
			}
			for j := range rows {
				off := (i0+16*h+j)*w.rowBytes + esize*(k0+k)
				if esize == 2 {
					col[j] = f16ToF32(binary.LittleEndian.Uint16(w.data[off:]))
				} else {
					col[j] = math.Float32frombits(binary.LittleEndian.Uint32(w.data[off:]))
				}
			}
		}
	}
}

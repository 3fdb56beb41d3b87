package kernels

import (
	"encoding/binary"
	"unsafe"

	"github.com/carryon/carryon/models/ggml"
)

// Panel layout of Q8_0 weights, used by the AVX-512 VNNI kernels.
//
// The rows of the matrix are grouped into panels of panelRows rows (the
// last panel padded with zero rows). A panel holds, for each block b of
// 32 columns, 512 bytes of quants and then, after all blocks, the 16 fp16
// scales of each block:
//
//	[b·512, (b+1)·512)        block b: 8 chunks of 64 bytes; byte 4i+j of
//	                          chunk k is quant 4k+j of row i, plus 128
//	                          (unsigned)
//	[nb·512 + b·32, +32)      block b: the fp16 scale of each of the 16 rows
//
// and is padded to a multiple of 64 bytes. One 64-byte load then holds four
// quants of each of 16 rows, so that a VPDPBUSD with four activation quants
// broadcast to every lane advances the block sums of 16 rows at once: the
// lanes of the accumulator are output rows, no horizontal sums are needed,
// and the scales are applied once per block for 16 rows. The layout holds
// as many bytes as the ggml blocks it comes from (34 per 32 weights).
const (
	panelRows       = 16
	panelChunkBytes = 64
	panelBlockBytes = 8 * panelChunkBytes // quants of one block of a panel
	panelScaleBytes = 2 * panelRows       // fp16 scales of one block
)

// panelStride returns the bytes of one Q8_0 panel of nb blocks.
func panelStride(nb int) int {
	return (nb*(panelBlockBytes+panelScaleBytes) + 63) &^ 63
}

// packQ8_0 copies a Q8_0 matrix into the panel layout, 64-byte aligned.
func packQ8_0(data []byte, rows, cols int) []byte {
	nb := cols / qk8_0
	stride := panelStride(nb)
	panels := (rows + panelRows - 1) / panelRows
	out := alignedBytes(panels * stride)
	rowBytes := nb * blockQ8_0
	for r := range panels * panelRows {
		p, i := r/panelRows, r%panelRows
		pan := out[p*stride : (p+1)*stride]
		for b := range nb {
			q := pan[b*panelBlockBytes+4*i:]
			if r >= rows {
				// Padding rows: zero scales make their outputs 0
				// whatever the quants; 128 is the quant 0.
				for k := range 8 {
					binary.LittleEndian.PutUint32(q[k*panelChunkBytes:], 0x80808080)
				}
				continue
			}
			blk := data[r*rowBytes+b*blockQ8_0:]
			sc := pan[nb*panelBlockBytes+b*panelScaleBytes+2*i:]
			sc[0], sc[1] = blk[0], blk[1]
			for k := range 8 {
				v := binary.LittleEndian.Uint32(blk[2+4*k:])
				binary.LittleEndian.PutUint32(q[k*panelChunkBytes:], v^0x80808080)
			}
		}
	}
	return out
}

// Q4_K panels hold, for each super-block of 256 columns, 2368 bytes:
//
//	[0, 2048)      quants: pair c (sub-blocks 2c, 2c+1) has 8 chunks of 64
//	               bytes; byte 4i+t of chunk k is byte 32c+4k+t of row i's
//	               ggml quants (low nibble: element 64c+4k+t, high nibble:
//	               element 64c+32+4k+t)
//	[2048, 2176)   the 6-bit scale of sub-block j of row i at 16j+i
//	[2176, 2304)   the 6-bit mins of sub-blocks 2c, 2c+1 of row i at
//	               32c+2i, 32c+2i+1 (int16 pairs once widened, for VPDPWSSD
//	               with the activations' sums of 32)
//	[2304, 2336)   the fp16 d of the 16 rows
//	[2336, 2368)   the fp16 dmin of the 16 rows
//
// 2.8% more bytes than the ggml blocks.
const (
	q4kPanelBlock = 2368
	q4kScales     = 2048
	q4kMins       = 2176
	q4kD          = 2304
	q4kDmin       = 2336
)

// packQ4_K copies a Q4_K matrix into the panel layout, 64-byte aligned.
// Padding rows have zero scales, mins and d.
func packQ4_K(data []byte, rows, cols int) []byte {
	nb := cols / qkK
	stride := nb * q4kPanelBlock
	panels := (rows + panelRows - 1) / panelRows
	out := alignedBytes(panels * stride)
	for r := range rows {
		p, i := r/panelRows, r%panelRows
		for b := range nb {
			blk := data[(r*nb+b)*blockQ4_K:]
			pb := out[p*stride+b*q4kPanelBlock:]
			for c := range 4 {
				for k := range 8 {
					copy(pb[c*512+k*64+4*i:][:4], blk[16+32*c+4*k:])
				}
			}
			for j := range 8 {
				sc, m := scaleMinK4(j, blk[4:16])
				pb[q4kScales+16*j+i] = sc
				pb[q4kMins+32*(j/2)+2*i+j%2] = m
			}
			pb[q4kD+2*i], pb[q4kD+2*i+1] = blk[0], blk[1]
			pb[q4kDmin+2*i], pb[q4kDmin+2*i+1] = blk[2], blk[3]
		}
	}
	return out
}

// alignedBytes returns n zero bytes starting at a 64-byte boundary.
func alignedBytes(n int) []byte {
	mem := make([]byte, n+63)
	off := int(-uintptr(unsafe.Pointer(&mem[0])) & 63)
	return mem[off : off+n : off+n]
}

// PackMatrix is NewMatrix for weights that products will read many times,
// as a model's are: where the kernels in use have a faster layout for type
// t (Q8_0 weights with AVX-512 VNNI), it copies the weights into that
// layout, and the Matrix then holds as many bytes again as data beside its
// view of data; otherwise it returns what NewMatrix does. Products give
// the same results either way, up to the order of float32 additions.
func PackMatrix(t ggml.Type, rows, cols int, data []byte) (*Matrix, error) {
	w, err := NewMatrix(t, rows, cols, data)
	if err != nil {
		return nil, err
	}
	if active.pack != nil {
		w.packed = active.pack(w)
	}
	return w, nil
}

// Packed reports whether w holds its weights in a kernel layout of its
// own (see PackMatrix).
func (w *Matrix) Packed() bool { return w.packed != nil }

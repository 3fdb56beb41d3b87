package ggml

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The dequantizers below follow ggml's dequantize_row_* functions operation
// for operation, in float32, so that their results are bit-identical to
// ggml's reference code built without fused multiply-add. Go may fuse a
// product into a following addition (it does on arm64, for example); an
// explicit float32(...) conversion around a product forbids that, which is
// why such conversions appear where a product meets an addition.
//
// Each per-type function converts as many whole blocks as both slices hold,
// min(len(src)/TypeSize, len(dst)/BlockSize) blocks, and returns the number
// of elements it wrote. It never reads or writes past either slice.

// ErrUnsupported reports that an operation does not handle a tensor type
// (the IQ*, TQ* and MXFP4 families, for example). Errors returned by
// Dequantize and Quantize wrap it, so callers can test with errors.Is.
var ErrUnsupported = errors.New("tensor type not supported")

// dequantizers maps each type Dequantize handles to its row function.
var dequantizers = map[Type]func(src []byte, dst []float32) int{
	TypeF32:  F32RowFromBytes,
	TypeF16:  F16RowToF32,
	TypeBF16: BF16RowToF32,
	TypeQ4_0: DequantizeQ4_0,
	TypeQ4_1: DequantizeQ4_1,
	TypeQ5_0: DequantizeQ5_0,
	TypeQ5_1: DequantizeQ5_1,
	TypeQ8_0: DequantizeQ8_0,
	TypeQ2_K: DequantizeQ2_K,
	TypeQ3_K: DequantizeQ3_K,
	TypeQ4_K: DequantizeQ4_K,
	TypeQ5_K: DequantizeQ5_K,
	TypeQ6_K: DequantizeQ6_K,
	TypeQ8_K: DequantizeQ8_K,
}

// CanDequantize reports whether Dequantize handles type t.
func CanDequantize(t Type) bool {
	_, ok := dequantizers[t]
	return ok
}

// Dequantize decodes len(dst) elements of type t from src into dst. len(dst)
// must be a multiple of t's block size and len(src) must be exactly the row
// size of len(dst) elements; otherwise, or when t is unknown or not handled
// (an error wrapping ErrUnsupported), it returns an error and leaves dst
// untouched.
func Dequantize(t Type, src []byte, dst []float32) error {
	if !t.Known() {
		return fmt.Errorf("dequantize %s: unknown tensor type", t)
	}
	f, ok := dequantizers[t]
	if !ok {
		return fmt.Errorf("dequantize %s: %w", t, ErrUnsupported)
	}
	want, err := t.RowSize(len(dst))
	if err != nil {
		return fmt.Errorf("dequantize: %w", err)
	}
	if len(src) != want {
		return fmt.Errorf("dequantize %s: %d bytes for %d elements, want %d", t, len(src), len(dst), want)
	}
	f(src, dst)
	return nil
}

// blocks returns how many whole blocks of typeSize bytes and blockSize
// elements both src and dst hold.
func blocks(src []byte, dst []float32, typeSize, blockSize int) int {
	return min(len(src)/typeSize, len(dst)/blockSize)
}

func fp16At(b []byte, off int) float32 {
	return F16ToF32(binary.LittleEndian.Uint16(b[off:]))
}

// DequantizeQ4_0 decodes Q4_0 blocks (see BlockQ4_0): w = d * (q - 8).
func DequantizeQ4_0(src []byte, dst []float32) int {
	nb := blocks(src, dst, 18, QK4_0)
	for i := range nb {
		b := src[i*18 : i*18+18]
		y := dst[i*QK4_0 : i*QK4_0+QK4_0]
		d := fp16At(b, 0)
		qs := b[2:18]
		for j, q := range qs {
			y[j] = float32(int(q&0xf)-8) * d
			y[j+16] = float32(int(q>>4)-8) * d
		}
	}
	return nb * QK4_0
}

// DequantizeQ4_1 decodes Q4_1 blocks (see BlockQ4_1): w = d*q + m.
func DequantizeQ4_1(src []byte, dst []float32) int {
	nb := blocks(src, dst, 20, QK4_1)
	for i := range nb {
		b := src[i*20 : i*20+20]
		y := dst[i*QK4_1 : i*QK4_1+QK4_1]
		d, m := fp16At(b, 0), fp16At(b, 2)
		qs := b[4:20]
		for j, q := range qs {
			y[j] = float32(float32(q&0xf)*d) + m
			y[j+16] = float32(float32(q>>4)*d) + m
		}
	}
	return nb * QK4_1
}

// DequantizeQ5_0 decodes Q5_0 blocks (see BlockQ5_0): w = d * (q - 16).
func DequantizeQ5_0(src []byte, dst []float32) int {
	nb := blocks(src, dst, 22, QK5_0)
	for i := range nb {
		b := src[i*22 : i*22+22]
		y := dst[i*QK5_0 : i*QK5_0+QK5_0]
		d := fp16At(b, 0)
		qh := binary.LittleEndian.Uint32(b[2:])
		qs := b[6:22]
		for j, q := range qs {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(int(q&0xf|h0)-16) * d
			y[j+16] = float32(int(q>>4|h1)-16) * d
		}
	}
	return nb * QK5_0
}

// DequantizeQ5_1 decodes Q5_1 blocks (see BlockQ5_1): w = d*q + m.
func DequantizeQ5_1(src []byte, dst []float32) int {
	nb := blocks(src, dst, 24, QK5_1)
	for i := range nb {
		b := src[i*24 : i*24+24]
		y := dst[i*QK5_1 : i*QK5_1+QK5_1]
		d, m := fp16At(b, 0), fp16At(b, 2)
		qh := binary.LittleEndian.Uint32(b[4:])
		qs := b[8:24]
		for j, q := range qs {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(float32(q&0xf|h0)*d) + m
			y[j+16] = float32(float32(q>>4|h1)*d) + m
		}
	}
	return nb * QK5_1
}

// DequantizeQ8_0 decodes Q8_0 blocks (see BlockQ8_0): w = d * q.
func DequantizeQ8_0(src []byte, dst []float32) int {
	nb := blocks(src, dst, 34, QK8_0)
	for i := range nb {
		b := src[i*34 : i*34+34]
		y := dst[i*QK8_0 : i*QK8_0+QK8_0]
		d := fp16At(b, 0)
		qs := b[2:34]
		for j, q := range qs {
			y[j] = float32(int8(q)) * d
		}
	}
	return nb * QK8_0
}

// DequantizeQ2_K decodes Q2_K super-blocks (see BlockQ2_K).
func DequantizeQ2_K(src []byte, dst []float32) int {
	nb := blocks(src, dst, 84, QK_K)
	for i := range nb {
		b := src[i*84 : i*84+84]
		y := dst[i*QK_K : i*QK_K+QK_K]
		scales := b[0:16]
		d, dmin := fp16At(b, 80), fp16At(b, 82)
		for h := range 2 {
			q := b[16+32*h : 16+32*h+32]
			for s := range 4 {
				shift := uint(2 * s)
				for half := range 2 {
					sc := scales[8*h+2*s+half]
					dl := float32(d * float32(sc&0xf))
					ml := float32(dmin * float32(sc>>4))
					out := y[128*h+32*s+16*half : 128*h+32*s+16*half+16]
					qq := q[16*half : 16*half+16]
					for l := range out {
						out[l] = float32(dl*float32((qq[l]>>shift)&3)) - ml
					}
				}
			}
		}
	}
	return nb * QK_K
}

// DequantizeQ3_K decodes Q3_K super-blocks (see BlockQ3_K).
func DequantizeQ3_K(src []byte, dst []float32) int {
	nb := blocks(src, dst, 110, QK_K)
	for i := range nb {
		b := src[i*110 : i*110+110]
		y := dst[i*QK_K : i*QK_K+QK_K]
		hmask := b[0:32]
		scales := b[96:108]
		d := fp16At(b, 108)
		for h := range 2 {
			q := b[32+32*h : 32+32*h+32]
			for s := range 4 {
				shift := uint(2 * s)
				bit := uint8(1) << (4*h + s)
				for half := range 2 {
					dl := d * float32(ScaleQ3_K(8*h+2*s+half, scales))
					out := y[128*h+32*s+16*half : 128*h+32*s+16*half+16]
					qq := q[16*half : 16*half+16]
					hm := hmask[16*half : 16*half+16]
					for l := range out {
						v := int((qq[l] >> shift) & 3)
						if hm[l]&bit == 0 {
							v -= 4
						}
						out[l] = dl * float32(v)
					}
				}
			}
		}
	}
	return nb * QK_K
}

// DequantizeQ4_K decodes Q4_K super-blocks (see BlockQ4_K):
// w = d*sc*q - dmin*m per sub-block of 32.
func DequantizeQ4_K(src []byte, dst []float32) int {
	nb := blocks(src, dst, 144, QK_K)
	for i := range nb {
		b := src[i*144 : i*144+144]
		y := dst[i*QK_K : i*QK_K+QK_K]
		d, dmin := fp16At(b, 0), fp16At(b, 2)
		scales := b[4:16]
		for c := range 4 {
			q := b[16+32*c : 16+32*c+32]
			sc, m := ScaleMinK4(2*c, scales)
			d1, m1 := float32(d*float32(sc)), float32(dmin*float32(m))
			sc, m = ScaleMinK4(2*c+1, scales)
			d2, m2 := float32(d*float32(sc)), float32(dmin*float32(m))
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l, v := range q {
				lo[l] = float32(d1*float32(v&0xf)) - m1
				hi[l] = float32(d2*float32(v>>4)) - m2
			}
		}
	}
	return nb * QK_K
}

// DequantizeQ5_K decodes Q5_K super-blocks (see BlockQ5_K).
func DequantizeQ5_K(src []byte, dst []float32) int {
	nb := blocks(src, dst, 176, QK_K)
	for i := range nb {
		b := src[i*176 : i*176+176]
		y := dst[i*QK_K : i*QK_K+QK_K]
		d, dmin := fp16At(b, 0), fp16At(b, 2)
		scales := b[4:16]
		qh := b[16:48]
		for c := range 4 {
			ql := b[48+32*c : 48+32*c+32]
			sc, m := ScaleMinK4(2*c, scales)
			d1, m1 := float32(d*float32(sc)), float32(dmin*float32(m))
			sc, m = ScaleMinK4(2*c+1, scales)
			d2, m2 := float32(d*float32(sc)), float32(dmin*float32(m))
			u1, u2 := uint8(1)<<(2*c), uint8(2)<<(2*c)
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l, v := range ql {
				q1, q2 := v&0xf, v>>4
				if qh[l]&u1 != 0 {
					q1 += 16
				}
				if qh[l]&u2 != 0 {
					q2 += 16
				}
				lo[l] = float32(d1*float32(q1)) - m1
				hi[l] = float32(d2*float32(q2)) - m2
			}
		}
	}
	return nb * QK_K
}

// DequantizeQ6_K decodes Q6_K super-blocks (see BlockQ6_K):
// w = d*sc*(q - 32) per sub-block of 16.
func DequantizeQ6_K(src []byte, dst []float32) int {
	nb := blocks(src, dst, 210, QK_K)
	for i := range nb {
		b := src[i*210 : i*210+210]
		y := dst[i*QK_K : i*QK_K+QK_K]
		d := fp16At(b, 208)
		// ds[k] is d times the scale of sub-block k; ggml multiplies in
		// the same order, (d*sc)*q.
		var ds [16]float32
		for k, s := range b[192:208] {
			ds[k] = d * float32(int8(s))
		}
		for h := range 2 {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			out := y[128*h : 128*h+128]
			for half := range 2 {
				s1, s2, s3, s4 := ds[8*h+half], ds[8*h+half+2], ds[8*h+half+4], ds[8*h+half+6]
				for l := 16 * half; l < 16*half+16; l++ {
					lo, hi, h2 := ql[l], ql[l+32], qh[l]
					out[l] = s1 * float32(int(lo&0xf|(h2&3)<<4)-32)
					out[l+32] = s2 * float32(int(hi&0xf|(h2>>2&3)<<4)-32)
					out[l+64] = s3 * float32(int(lo>>4|(h2>>4&3)<<4)-32)
					out[l+96] = s4 * float32(int(hi>>4|(h2>>6)<<4)-32)
				}
			}
		}
	}
	return nb * QK_K
}

// DequantizeQ8_K decodes Q8_K super-blocks (see BlockQ8_K): w = d * q.
func DequantizeQ8_K(src []byte, dst []float32) int {
	nb := blocks(src, dst, 292, QK_K)
	for i := range nb {
		b := src[i*292 : i*292+292]
		y := dst[i*QK_K : i*QK_K+QK_K]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		qs := b[4 : 4+QK_K]
		for j, q := range qs {
			y[j] = d * float32(int8(q))
		}
	}
	return nb * QK_K
}

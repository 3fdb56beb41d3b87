//go:build amd64 && !noasm

#include "textflag.h"

// The AVX2 form of the blocked product of float weights with many
// activation rows (gemm2_amd64.go): panels of 16 weight rows, two vectors
// of 8 lanes, and a 2×6 register tile.

// TRANSPOSE8 transposes the 8×8 floats in Y0..Y7 (Yj = row j) into
// Y8..Y15 (Y8+k = column k).
#define TRANSPOSE8 \
	VUNPCKLPS  Y1, Y0, Y8 \
	VUNPCKHPS  Y1, Y0, Y9 \
	VUNPCKLPS  Y3, Y2, Y10 \
	VUNPCKHPS  Y3, Y2, Y11 \
	VUNPCKLPS  Y5, Y4, Y12 \
	VUNPCKHPS  Y5, Y4, Y13 \
	VUNPCKLPS  Y7, Y6, Y14 \
	VUNPCKHPS  Y7, Y6, Y15 \
	VUNPCKLPD  Y10, Y8, Y0 \
	VUNPCKHPD  Y10, Y8, Y1 \
	VUNPCKLPD  Y11, Y9, Y2 \
	VUNPCKHPD  Y11, Y9, Y3 \
	VUNPCKLPD  Y14, Y12, Y4 \
	VUNPCKHPD  Y14, Y12, Y5 \
	VUNPCKLPD  Y15, Y13, Y6 \
	VUNPCKHPD  Y15, Y13, Y7 \
	VPERM2F128 $0x20, Y4, Y0, Y8 \
	VPERM2F128 $0x20, Y5, Y1, Y9 \
	VPERM2F128 $0x20, Y6, Y2, Y10 \
	VPERM2F128 $0x20, Y7, Y3, Y11 \
	VPERM2F128 $0x31, Y4, Y0, Y12 \
	VPERM2F128 $0x31, Y5, Y1, Y13 \
	VPERM2F128 $0x31, Y6, Y2, Y14 \
	VPERM2F128 $0x31, Y7, Y3, Y15

// STORE8 writes Y8..Y15 to the 8 panel columns at DI, 64 bytes apart.
#define STORE8 \
	VMOVUPS Y8, (DI) \
	VMOVUPS Y9, 64(DI) \
	VMOVUPS Y10, 128(DI) \
	VMOVUPS Y11, 192(DI) \
	VMOVUPS Y12, 256(DI) \
	VMOVUPS Y13, 320(DI) \
	VMOVUPS Y14, 384(DI) \
	VMOVUPS Y15, 448(DI)

// LOAD8 applies the load op to the 8 rows at SI and R10 (four rows each,
// R8 apart; R9 = 3·R8) into Y0..Y7.
#define LOAD8(op) \
	op (SI), Y0 \
	op (SI)(R8*1), Y1 \
	op (SI)(R8*2), Y2 \
	op (SI)(R9*1), Y3 \
	op (R10), Y4 \
	op (R10)(R8*1), Y5 \
	op (R10)(R8*2), Y6 \
	op (R10)(R9*1), Y7

#define PANEL8SETUP \
	MOVQ dst+0(FP), DI \
	MOVQ src+8(FP), SI \
	MOVQ sstride+16(FP), R8 \
	MOVQ n+24(FP), CX \
	LEAQ (R8)(R8*2), R9 \
	LEAQ (SI)(R8*4), R10

// func f16Panel8(dst *float32, src unsafe.Pointer, sstride uintptr, n int)
// For the 8 F16 rows at src + j·sstride (j < 8) and columns k < n rounded
// down to a multiple of 8: dst[16·k + j] = float32(row j, column k).
TEXT ·f16Panel8(SB), NOSPLIT, $0-32
	PANEL8SETUP
	SHRQ $3, CX
	JZ   f16p8_done

f16p8_loop:
	LOAD8(VCVTPH2PS)
	TRANSPOSE8
	STORE8
	ADDQ $16, SI
	ADDQ $16, R10
	ADDQ $512, DI
	DECQ CX
	JNZ  f16p8_loop

f16p8_done:
	VZEROUPPER
	RET

// func f32Panel8(dst *float32, src unsafe.Pointer, sstride uintptr, n int)
// f16Panel8 for float32 rows.
TEXT ·f32Panel8(SB), NOSPLIT, $0-32
	PANEL8SETUP
	SHRQ $3, CX
	JZ   f32p8_done

f32p8_loop:
	LOAD8(VMOVUPS)
	TRANSPOSE8
	STORE8
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $512, DI
	DECQ CX
	JNZ  f32p8_loop

f32p8_done:
	VZEROUPPER
	RET

// STEP6 advances the twelve accumulators by one column at offset off of
// the panel (SI) and of the activation rows: R8 and R11 point at rows 0
// and 4, R9 is the distance between rows and R10 three times that.
#define STEP6(off) \
	VMOVAPS      (16*off)(SI), Y12 \
	VMOVAPS      (16*off+32)(SI), Y13 \
	VBROADCASTSS off(R8), Y14 \
	VFMADD231PS  Y14, Y12, Y0 \
	VFMADD231PS  Y14, Y13, Y1 \
	VBROADCASTSS off(R8)(R9*1), Y15 \
	VFMADD231PS  Y15, Y12, Y2 \
	VFMADD231PS  Y15, Y13, Y3 \
	VBROADCASTSS off(R8)(R9*2), Y14 \
	VFMADD231PS  Y14, Y12, Y4 \
	VFMADD231PS  Y14, Y13, Y5 \
	VBROADCASTSS off(R8)(R10*1), Y15 \
	VFMADD231PS  Y15, Y12, Y6 \
	VFMADD231PS  Y15, Y13, Y7 \
	VBROADCASTSS off(R11), Y14 \
	VFMADD231PS  Y14, Y12, Y8 \
	VFMADD231PS  Y14, Y13, Y9 \
	VBROADCASTSS off(R11)(R9*1), Y15 \
	VFMADD231PS  Y15, Y12, Y10 \
	VFMADD231PS  Y15, Y13, Y11

// OUT2 writes (or, when BL is set, adds) the accumulators lo and hi to
// the 16 outputs at DI, under the lane masks Y12 and Y13, unless R14 (the
// rows left to skip) is positive, and advances DI by R13 and R14 by -1.
#define OUT2(lo, hi) \
	DECQ       R14 \
	JGE        9(PC) \
	TESTB      BL, BL \
	JZ         5(PC) \
	VMASKMOVPS (DI), Y12, Y14 \
	VMASKMOVPS 32(DI), Y13, Y15 \
	VADDPS     Y14, lo, lo \
	VADDPS     Y15, hi, hi \
	VMASKMOVPS lo, Y12, (DI) \
	VMASKMOVPS hi, Y13, 32(DI) \
	ADDQ       R13, DI

// func f32Panel16x6(p *float32, n int, x *float32, xstride uintptr, out *float32, ostride uintptr, skip int, pf unsafe.Pointer, pfLines int, accumulate bool, mask *[16]int32)
// For skip ≤ j < 6 and lanes i < 16 whose mask entry is -1:
// out[j·ostride/4 + i] (+)= Σ_k p[16·k + i]·x[j·xstride/4 + k], k < n,
// prefetching pfLines cache lines from pf on along the way (see
// f32Panel2x12).
TEXT ·f32Panel16x6(SB), NOSPLIT, $0-88
	MOVQ   p+0(FP), SI
	MOVQ   n+8(FP), CX
	MOVQ   x+16(FP), R8
	MOVQ   xstride+24(FP), R9
	LEAQ   (R9)(R9*2), R10
	LEAQ   (R8)(R9*4), R11
	MOVQ   pf+56(FP), R15
	MOVQ   pfLines+64(FP), AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ   CX, BX
	SHRQ   $2, BX
	JZ     p166_one

p166_loop4:
	TESTQ      AX, AX
	JZ         4(PC)
	PREFETCHT1 (R15)
	ADDQ       $64, R15
	DECQ       AX
	STEP6(0)
	STEP6(4)
	STEP6(8)
	STEP6(12)
	ADDQ $256, SI
	ADDQ $16, R8
	ADDQ $16, R11
	DECQ BX
	JNZ  p166_loop4

p166_one:
	ANDQ $3, CX
	JZ   p166_out

p166_loop1:
	STEP6(0)
	ADDQ $64, SI
	ADDQ $4, R8
	ADDQ $4, R11
	DECQ CX
	JNZ  p166_loop1

p166_out:
	MOVQ    mask+80(FP), DX
	VMOVDQU (DX), Y12
	VMOVDQU 32(DX), Y13
	MOVBLZX accumulate+72(FP), BX
	MOVQ    out+32(FP), DI
	MOVQ    ostride+40(FP), R13
	MOVQ    skip+48(FP), R14
	OUT2(Y0, Y1)
	OUT2(Y2, Y3)
	OUT2(Y4, Y5)
	OUT2(Y6, Y7)
	OUT2(Y8, Y9)
	OUT2(Y10, Y11)
	VZEROUPPER
	RET

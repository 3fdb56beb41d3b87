//go:build amd64 && !noasm

#include "textflag.h"

// The blocked product of float weights with many activation rows (see
// gemm_amd64.go). Weight rows are converted to float32 and transposed into
// a k-major panel whose vector lanes are output rows; the micro-kernel then
// multiplies a panel with broadcast activation values, so that its
// accumulators hold finished dot products of 16 consecutive output rows and
// need no horizontal sums.

// UNPACK2 interleaves the floats of rows r0 and r1 within each 128-bit
// lane: lo = (r0[0], r1[0], r0[1], r1[1]), hi = (r0[2], r1[2], r0[3], r1[3]).
#define UNPACK2(r0, r1, lo, hi) \
	VUNPCKLPS r1, r0, lo \
	VUNPCKHPS r1, r0, hi

// UNPACK4 takes UNPACK2's output for rows 0,1 (a0, a1) and 2,3 (a2, a3) of
// a group of four and leaves in b0..b3 the four rows' values at lane
// offsets 0..3 of each 128-bit lane.
#define UNPACK4(a0, a1, a2, a3, b0, b1, b2, b3) \
	VUNPCKLPD a2, a0, b0 \
	VUNPCKHPD a2, a0, b1 \
	VUNPCKLPD a3, a1, b2 \
	VUNPCKHPD a3, a1, b3

// LANES4 transposes the 128-bit lanes of B0..B3 (lane c of Bj is four rows
// 4j..4j+3 at column 4c+t): O_c gets lane c of every Bj, that is rows 0..15
// at column 4c+t. C0..C3 are scratch.
#define LANES4(B0, B1, B2, B3, C0, C1, C2, C3, O0, O1, O2, O3) \
	VSHUFF32X4 $0x88, B1, B0, C0 \
	VSHUFF32X4 $0xDD, B1, B0, C1 \
	VSHUFF32X4 $0x88, B3, B2, C2 \
	VSHUFF32X4 $0xDD, B3, B2, C3 \
	VSHUFF32X4 $0x88, C2, C0, O0 \
	VSHUFF32X4 $0xDD, C2, C0, O2 \
	VSHUFF32X4 $0x88, C3, C1, O1 \
	VSHUFF32X4 $0xDD, C3, C1, O3

// TRANSPOSE16 transposes the 16×16 floats in Z0..Z15 (Zj = row j) in
// place (Zk = column k), using Z16..Z31.
#define TRANSPOSE16 \
	UNPACK2(Z0, Z1, Z16, Z17) \
	UNPACK2(Z2, Z3, Z18, Z19) \
	UNPACK2(Z4, Z5, Z20, Z21) \
	UNPACK2(Z6, Z7, Z22, Z23) \
	UNPACK2(Z8, Z9, Z24, Z25) \
	UNPACK2(Z10, Z11, Z26, Z27) \
	UNPACK2(Z12, Z13, Z28, Z29) \
	UNPACK2(Z14, Z15, Z30, Z31) \
	UNPACK4(Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3) \
	UNPACK4(Z20, Z21, Z22, Z23, Z4, Z5, Z6, Z7) \
	UNPACK4(Z24, Z25, Z26, Z27, Z8, Z9, Z10, Z11) \
	UNPACK4(Z28, Z29, Z30, Z31, Z12, Z13, Z14, Z15) \
	LANES4(Z0, Z4, Z8, Z12, Z16, Z17, Z18, Z19, Z0, Z4, Z8, Z12) \
	LANES4(Z1, Z5, Z9, Z13, Z20, Z21, Z22, Z23, Z1, Z5, Z9, Z13) \
	LANES4(Z2, Z6, Z10, Z14, Z24, Z25, Z26, Z27, Z2, Z6, Z10, Z14) \
	LANES4(Z3, Z7, Z11, Z15, Z28, Z29, Z30, Z31, Z3, Z7, Z11, Z15)

// STORE16 writes Z0..Z15 to the 16 panel columns at DI, 128 bytes apart.
#define STORE16 \
	VMOVUPS Z0, (DI) \
	VMOVUPS Z1, 128(DI) \
	VMOVUPS Z2, 256(DI) \
	VMOVUPS Z3, 384(DI) \
	VMOVUPS Z4, 512(DI) \
	VMOVUPS Z5, 640(DI) \
	VMOVUPS Z6, 768(DI) \
	VMOVUPS Z7, 896(DI) \
	VMOVUPS Z8, 1024(DI) \
	VMOVUPS Z9, 1152(DI) \
	VMOVUPS Z10, 1280(DI) \
	VMOVUPS Z11, 1408(DI) \
	VMOVUPS Z12, 1536(DI) \
	VMOVUPS Z13, 1664(DI) \
	VMOVUPS Z14, 1792(DI) \
	VMOVUPS Z15, 1920(DI)

// LOAD16 applies the load op to the 16 rows at SI, R10, R11, R12 (four
// rows each, R8 apart; R9 = 3·R8) into Z0..Z15.
#define LOAD16(op) \
	op (SI), Z0 \
	op (SI)(R8*1), Z1 \
	op (SI)(R8*2), Z2 \
	op (SI)(R9*1), Z3 \
	op (R10), Z4 \
	op (R10)(R8*1), Z5 \
	op (R10)(R8*2), Z6 \
	op (R10)(R9*1), Z7 \
	op (R11), Z8 \
	op (R11)(R8*1), Z9 \
	op (R11)(R8*2), Z10 \
	op (R11)(R9*1), Z11 \
	op (R12), Z12 \
	op (R12)(R8*1), Z13 \
	op (R12)(R8*2), Z14 \
	op (R12)(R9*1), Z15

// MLOADH loads, under mask K1, halves at addr into yreg and converts them
// to the floats of zreg; MLOADS loads floats under K1.
#define MLOADH(addr, yreg, zreg) \
	VMOVDQU16.Z addr, K1, yreg \
	VCVTPH2PS   yreg, zreg

#define MLOADS(addr, yreg, zreg) \
	VMOVUPS.Z addr, K1, zreg

// MLOAD16 is LOAD16 for the column tail, with one of the masked loads
// above.
#define MLOAD16(m) \
	m((SI), Y0, Z0) \
	m((SI)(R8*1), Y1, Z1) \
	m((SI)(R8*2), Y2, Z2) \
	m((SI)(R9*1), Y3, Z3) \
	m((R10), Y4, Z4) \
	m((R10)(R8*1), Y5, Z5) \
	m((R10)(R8*2), Y6, Z6) \
	m((R10)(R9*1), Y7, Z7) \
	m((R11), Y8, Z8) \
	m((R11)(R8*1), Y9, Z9) \
	m((R11)(R8*2), Y10, Z10) \
	m((R11)(R9*1), Y11, Z11) \
	m((R12), Y12, Z12) \
	m((R12)(R8*1), Y13, Z13) \
	m((R12)(R8*2), Y14, Z14) \
	m((R12)(R9*1), Y15, Z15)

// PANELSETUP loads the arguments of the panel converters: DI = dst,
// SI/R10/R11/R12 = rows 0, 4, 8, 12, R8 = stride, R9 = 3·stride,
// CX = columns.
#define PANELSETUP \
	MOVQ dst+0(FP), DI \
	MOVQ src+8(FP), SI \
	MOVQ sstride+16(FP), R8 \
	MOVQ n+24(FP), CX \
	LEAQ (R8)(R8*2), R9 \
	LEAQ (SI)(R8*4), R10 \
	LEAQ (R10)(R8*4), R11 \
	LEAQ (R11)(R8*4), R12

// func f16Panel(dst *float32, src unsafe.Pointer, sstride uintptr, n int)
// For the 16 F16 rows at src + j·sstride (j < 16) and columns k < n:
// dst[32·k + j] = float32(row j, column k). Columns n up to the next
// multiple of 16 are written as zeros.
TEXT ·f16Panel(SB), NOSPLIT, $0-32
	PANELSETUP

f16p_loop:
	CMPQ CX, $16
	JLT  f16p_tail
	LOAD16(VCVTPH2PS)
	TRANSPOSE16
	STORE16
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $2048, DI
	SUBQ $16, CX
	JMP  f16p_loop

f16p_tail:
	TESTQ CX, CX
	JZ    f16p_done
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	MLOAD16(MLOADH)
	TRANSPOSE16
	STORE16

f16p_done:
	VZEROUPPER
	RET

// func f32Panel(dst *float32, src unsafe.Pointer, sstride uintptr, n int)
// f16Panel for float32 rows.
TEXT ·f32Panel(SB), NOSPLIT, $0-32
	PANELSETUP

f32p_loop:
	CMPQ CX, $16
	JLT  f32p_tail
	LOAD16(VMOVUPS)
	TRANSPOSE16
	STORE16
	ADDQ $64, SI
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, R12
	ADDQ $2048, DI
	SUBQ $16, CX
	JMP  f32p_loop

f32p_tail:
	TESTQ CX, CX
	JZ    f32p_done
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	MLOAD16(MLOADS)
	TRANSPOSE16
	STORE16

f32p_done:
	VZEROUPPER
	RET

// STEP12 advances the 24 accumulators by one column at offset off of the
// panel (SI) and of the activation rows: R8, R11, R12 point at rows 0, 4
// and 8, R9 is the distance between rows and R10 three times that.
#define STEP12(off) \
	VMOVAPS      (32*off)(SI), Z24 \
	VMOVAPS      (32*off+64)(SI), Z25 \
	VBROADCASTSS off(R8), Z26 \
	VBROADCASTSS off(R8)(R9*1), Z27 \
	VFMADD231PS  Z26, Z24, Z0 \
	VFMADD231PS  Z26, Z25, Z1 \
	VBROADCASTSS off(R8)(R9*2), Z28 \
	VFMADD231PS  Z27, Z24, Z2 \
	VFMADD231PS  Z27, Z25, Z3 \
	VBROADCASTSS off(R8)(R10*1), Z29 \
	VFMADD231PS  Z28, Z24, Z4 \
	VFMADD231PS  Z28, Z25, Z5 \
	VBROADCASTSS off(R11), Z30 \
	VFMADD231PS  Z29, Z24, Z6 \
	VFMADD231PS  Z29, Z25, Z7 \
	VBROADCASTSS off(R11)(R9*1), Z31 \
	VFMADD231PS  Z30, Z24, Z8 \
	VFMADD231PS  Z30, Z25, Z9 \
	VBROADCASTSS off(R11)(R9*2), Z26 \
	VFMADD231PS  Z31, Z24, Z10 \
	VFMADD231PS  Z31, Z25, Z11 \
	VBROADCASTSS off(R11)(R10*1), Z27 \
	VFMADD231PS  Z26, Z24, Z12 \
	VFMADD231PS  Z26, Z25, Z13 \
	VBROADCASTSS off(R12), Z28 \
	VFMADD231PS  Z27, Z24, Z14 \
	VFMADD231PS  Z27, Z25, Z15 \
	VBROADCASTSS off(R12)(R9*1), Z29 \
	VFMADD231PS  Z28, Z24, Z16 \
	VFMADD231PS  Z28, Z25, Z17 \
	VBROADCASTSS off(R12)(R9*2), Z30 \
	VFMADD231PS  Z29, Z24, Z18 \
	VFMADD231PS  Z29, Z25, Z19 \
	VBROADCASTSS off(R12)(R10*1), Z31 \
	VFMADD231PS  Z30, Z24, Z20 \
	VFMADD231PS  Z30, Z25, Z21 \
	VFMADD231PS  Z31, Z24, Z22 \
	VFMADD231PS  Z31, Z25, Z23

// OUTS writes (or, when BL is set, adds) the accumulators lo and hi to
// the 32 outputs at DI, under the lane masks K1 and K2, unless R14 (the
// rows left to skip) is positive, and advances DI by R13 and R14 by -1.
#define OUTS(lo, hi) \
	DECQ      R14 \
	JGE       9(PC) \
	TESTB     BL, BL \
	JZ        5(PC) \
	VMOVUPS.Z (DI), K1, Z24 \
	VMOVUPS.Z 64(DI), K2, Z25 \
	VADDPS    Z24, lo, lo \
	VADDPS    Z25, hi, hi \
	VMOVUPS   lo, K1, (DI) \
	VMOVUPS   hi, K2, 64(DI) \
	ADDQ      R13, DI

// func f32Panel2x12(p *float32, n int, x *float32, xstride uintptr, out *float32, ostride uintptr, skip int, pf unsafe.Pointer, pfLines int, accumulate bool, mask uint32)
// For skip ≤ j < 12 and lanes i < 32 selected by mask:
// out[j·ostride/4 + i] (+)= Σ_k p[32·k + i]·x[j·xstride/4 + k], k < n.
// Two 16-row halves of a panel times twelve activation rows: 24
// accumulators, two panel loads and twelve broadcasts per column. Along
// the way it prefetches pfLines cache lines (at most n/4) from pf on into
// the L2 cache (the weights that the next panel will be converted from),
// two per eight columns, so that reading them from memory overlaps the
// arithmetic.
TEXT ·f32Panel2x12(SB), NOSPLIT, $0-80
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ x+16(FP), R8
	MOVQ xstride+24(FP), R9
	LEAQ (R9)(R9*2), R10
	LEAQ (R8)(R9*4), R11
	LEAQ (R11)(R9*4), R12
	MOVQ pf+56(FP), R15
	MOVQ pfLines+64(FP), AX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	VXORPS Z20, Z20, Z20
	VXORPS Z21, Z21, Z21
	VXORPS Z22, Z22, Z22
	VXORPS Z23, Z23, Z23
	MOVQ CX, BX
	SHRQ $3, BX
	JZ   p212_one

p212_loop8:
	TESTQ      AX, AX
	JLE        7(PC)
	PREFETCHT1 (R15)
	PREFETCHT1 64(R15)
	ADDQ       $128, R15
	SUBQ       $2, AX
	JGE        2(PC)
	XORQ       AX, AX
	STEP12(0)
	STEP12(4)
	STEP12(8)
	STEP12(12)
	STEP12(16)
	STEP12(20)
	STEP12(24)
	STEP12(28)
	ADDQ $1024, SI
	ADDQ $32, R8
	ADDQ $32, R11
	ADDQ $32, R12
	DECQ BX
	JNZ  p212_loop8

p212_one:
	ANDQ $7, CX
	JZ   p212_out

p212_loop1:
	STEP12(0)
	ADDQ $128, SI
	ADDQ $4, R8
	ADDQ $4, R11
	ADDQ $4, R12
	DECQ CX
	JNZ  p212_loop1

p212_out:
	MOVL    mask+76(FP), DX
	KMOVW   DX, K1
	SHRL    $16, DX
	KMOVW   DX, K2
	MOVBLZX accumulate+72(FP), BX
	MOVQ    out+32(FP), DI
	MOVQ    ostride+40(FP), R13
	MOVQ    skip+48(FP), R14
	OUTS(Z0, Z1)
	OUTS(Z2, Z3)
	OUTS(Z4, Z5)
	OUTS(Z6, Z7)
	OUTS(Z8, Z9)
	OUTS(Z10, Z11)
	OUTS(Z12, Z13)
	OUTS(Z14, Z15)
	OUTS(Z16, Z17)
	OUTS(Z18, Z19)
	OUTS(Z20, Z21)
	OUTS(Z22, Z23)
	VZEROUPPER
	RET

// STEP4 is STEP12 for four activation rows (R8, R9 as in STEP12).
#define STEP4(off) \
	VMOVAPS      (32*off)(SI), Z24 \
	VMOVAPS      (32*off+64)(SI), Z25 \
	VBROADCASTSS off(R8), Z26 \
	VBROADCASTSS off(R8)(R9*1), Z27 \
	VFMADD231PS  Z26, Z24, Z0 \
	VFMADD231PS  Z26, Z25, Z1 \
	VBROADCASTSS off(R8)(R9*2), Z28 \
	VFMADD231PS  Z27, Z24, Z2 \
	VFMADD231PS  Z27, Z25, Z3 \
	VBROADCASTSS off(R8)(R10*1), Z29 \
	VFMADD231PS  Z28, Z24, Z4 \
	VFMADD231PS  Z28, Z25, Z5 \
	VFMADD231PS  Z29, Z24, Z6 \
	VFMADD231PS  Z29, Z25, Z7

// func f32Panel2x4(p *float32, n int, x *float32, xstride uintptr, out *float32, ostride uintptr, skip int, pf unsafe.Pointer, pfLines int, accumulate bool, mask uint32)
// f32Panel2x12 for four activation rows: the tile for the rows of a batch
// beyond its last group of twelve.
TEXT ·f32Panel2x4(SB), NOSPLIT, $0-80
	MOVQ   p+0(FP), SI
	MOVQ   n+8(FP), CX
	MOVQ   x+16(FP), R8
	MOVQ   xstride+24(FP), R9
	LEAQ   (R9)(R9*2), R10
	MOVQ   pf+56(FP), R15
	MOVQ   pfLines+64(FP), AX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	MOVQ   CX, BX
	SHRQ   $2, BX
	JZ     p24_one

p24_loop4:
	TESTQ      AX, AX
	JZ         4(PC)
	PREFETCHT1 (R15)
	ADDQ       $64, R15
	DECQ       AX
	STEP4(0)
	STEP4(4)
	STEP4(8)
	STEP4(12)
	ADDQ $512, SI
	ADDQ $16, R8
	DECQ BX
	JNZ  p24_loop4

p24_one:
	ANDQ $3, CX
	JZ   p24_out

p24_loop1:
	STEP4(0)
	ADDQ $128, SI
	ADDQ $4, R8
	DECQ CX
	JNZ  p24_loop1

p24_out:
	MOVL    mask+76(FP), DX
	KMOVW   DX, K1
	SHRL    $16, DX
	KMOVW   DX, K2
	MOVBLZX accumulate+72(FP), BX
	MOVQ    out+32(FP), DI
	MOVQ    ostride+40(FP), R13
	MOVQ    skip+48(FP), R14
	OUTS(Z0, Z1)
	OUTS(Z2, Z3)
	OUTS(Z4, Z5)
	OUTS(Z6, Z7)
	VZEROUPPER
	RET

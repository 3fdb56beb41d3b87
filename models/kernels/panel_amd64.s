//go:build amd64 && !noasm

#include "textflag.h"

// AVX-512 VNNI kernels for Q8_0 weights in the panel layout (panel.go)
// against activations in the actQ8_0 layout (matrix.go). The lanes of
// every accumulator are the 16 rows of a panel. Per block: the int32 sums
// start at the activation block's bias (−128·Σx, undoing the +128 of the
// unsigned weight quants), eight VPDPBUSD add four quants of each row
// times four broadcast activation quants, and the exact block sums are
// scaled by d_w·d_x into float32 accumulators.

// B1 adds one block of the panel at R10 (quants) and R11 (scales) times
// the activation row DX+R15 into F. wq, wsc: the block's offsets in the
// quants and scales; xq, xb, xs: offsets of the activation block's quants,
// bias and scale.
#define B1(wq, wsc, xq, xb, xs, IA, IB, F) \
	VPBROADCASTD     xb(DX)(R15*1), IA \
	VPXORD           IB, IB, IB \
	PREFETCHT0       wq+4096(R10) \
	PREFETCHT0       wq+4160(R10) \
	PREFETCHT0       wq+4224(R10) \
	PREFETCHT0       wq+4288(R10) \
	PREFETCHT0       wq+4352(R10) \
	PREFETCHT0       wq+4416(R10) \
	PREFETCHT0       wq+4480(R10) \
	PREFETCHT0       wq+4544(R10) \
	VMOVDQU64        wq+0(R10), Z8 \
	VPDPBUSD.BCST    xq+0(DX)(R15*1), Z8, IA \
	VMOVDQU64        wq+64(R10), Z9 \
	VPDPBUSD.BCST    xq+4(DX)(R15*1), Z9, IB \
	VMOVDQU64        wq+128(R10), Z10 \
	VPDPBUSD.BCST    xq+8(DX)(R15*1), Z10, IA \
	VMOVDQU64        wq+192(R10), Z11 \
	VPDPBUSD.BCST    xq+12(DX)(R15*1), Z11, IB \
	VMOVDQU64        wq+256(R10), Z8 \
	VPDPBUSD.BCST    xq+16(DX)(R15*1), Z8, IA \
	VMOVDQU64        wq+320(R10), Z9 \
	VPDPBUSD.BCST    xq+20(DX)(R15*1), Z9, IB \
	VMOVDQU64        wq+384(R10), Z10 \
	VPDPBUSD.BCST    xq+24(DX)(R15*1), Z10, IA \
	VMOVDQU64        wq+448(R10), Z11 \
	VPDPBUSD.BCST    xq+28(DX)(R15*1), Z11, IB \
	VPADDD           IB, IA, IA \
	VCVTDQ2PS        IA, IA \
	VCVTPH2PS        wsc(R11), Z12 \
	VMULPS.BCST      xs(DX)(R15*1), Z12, Z12 \
	VFMADD231PS      Z12, IA, F

// K4 multiplies one chunk of quants (offset wo from R10) with the
// activation dwords at xo of the four rows of the tile.
#define K4(wo, xo, A0, A1, A2, A3) \
	PREFETCHT0    wo+4096(R10) \
	VMOVDQU64     wo(R10), Z8 \
	VPDPBUSD.BCST xo(DX)(R15*1), Z8, A0 \
	VPDPBUSD.BCST xo(R11)(R15*1), Z8, A1 \
	VPDPBUSD.BCST xo(R13)(R15*1), Z8, A2 \
	VPDPBUSD.BCST xo(R14)(R15*1), Z8, A3

// FIN4 scales the block sums IA+IB of one tile row (activation base
// register base) by Z12·d_x and adds them to F.
#define FIN4(xs, base, IA, IB, F) \
	VPADDD      IB, IA, IA \
	VCVTDQ2PS   IA, IA \
	VMULPS.BCST xs(base)(R15*1), Z12, Z13 \
	VFMADD231PS Z13, IA, F

// B4 is B1 for the four activation rows DX, R11, R13, R14 (+R15) into
// Z0..Z3, with the scales at BX.
#define B4(wq, wsc, xq, xb, xs) \
	VPBROADCASTD xb(DX)(R15*1), Z16 \
	VPBROADCASTD xb(R11)(R15*1), Z17 \
	VPBROADCASTD xb(R13)(R15*1), Z18 \
	VPBROADCASTD xb(R14)(R15*1), Z19 \
	VPXORD       Z20, Z20, Z20 \
	VPXORD       Z21, Z21, Z21 \
	VPXORD       Z22, Z22, Z22 \
	VPXORD       Z23, Z23, Z23 \
	K4(wq+0, xq+0, Z16, Z17, Z18, Z19) \
	K4(wq+64, xq+4, Z20, Z21, Z22, Z23) \
	K4(wq+128, xq+8, Z16, Z17, Z18, Z19) \
	K4(wq+192, xq+12, Z20, Z21, Z22, Z23) \
	K4(wq+256, xq+16, Z16, Z17, Z18, Z19) \
	K4(wq+320, xq+20, Z20, Z21, Z22, Z23) \
	K4(wq+384, xq+24, Z16, Z17, Z18, Z19) \
	K4(wq+448, xq+28, Z20, Z21, Z22, Z23) \
	VCVTPH2PS    wsc(BX), Z12 \
	FIN4(xs, DX, Z16, Z20, Z0) \
	FIN4(xs, R11, Z17, Z21, Z1) \
	FIN4(xs, R13, Z18, Z22, Z2) \
	FIN4(xs, R14, Z19, Z23, Z3)

// STORE4 writes Z of tile row k (out pointer at offset 32+8k of the tile)
// at byte offset DI, under mask K1 when PARTIAL.
#define STORE4(k, Z) \
	MOVQ    t+16(FP), AX \
	MOVQ    32+8*k(AX), AX \
	VMOVUPS Z, (AX)(DI*1)

#define STORE4M(k, Z) \
	MOVQ    t+16(FP), AX \
	MOVQ    32+8*k(AX), AX \
	VMOVUPS Z, K1, (AX)(DI*1)

// Q4_K panels (panel.go): per super-block, eight sub-block sums per row
// from VPDPBUSD of the nibbles with broadcast activation quants, scaled by
// the rows' 6-bit scales in int32 (VPMULLD: exact, like ggml's sums); the
// mins times the activations' sums of 32 by VPDPWSSD; then
// acc += Σ·d·d_x and acc −= mins·dmin·d_x in float32. Z30 holds 0x0F
// bytes.

// QK1 adds chunk off of the quants at R10 (low nibbles: activation dword
// xlo; high: xhi) for the activation row DX+R15.
#define QK1(off, xlo, xhi, A, B) \
	PREFETCHT0    off+4096(R10) \
	VMOVDQU64     off(R10), Z8 \
	VPSRLW        $4, Z8, Z9 \
	VPANDD        Z30, Z8, Z8 \
	VPANDD        Z30, Z9, Z9 \
	VPDPBUSD.BCST xlo(DX)(R15*1), Z8, A \
	VPDPBUSD.BCST xhi(DX)(R15*1), Z9, B

// PAIR1 adds sub-blocks 2c and 2c+1 (quants at c·512, activations at
// 64c) times their scales into Z1.
#define PAIR1(qo, xo, so) \
	VPXORD    Z16, Z16, Z16 \
	VPXORD    Z17, Z17, Z17 \
	QK1(qo+0, xo+0, xo+32, Z16, Z17) \
	QK1(qo+64, xo+4, xo+36, Z16, Z17) \
	QK1(qo+128, xo+8, xo+40, Z16, Z17) \
	QK1(qo+192, xo+12, xo+44, Z16, Z17) \
	QK1(qo+256, xo+16, xo+48, Z16, Z17) \
	QK1(qo+320, xo+20, xo+52, Z16, Z17) \
	QK1(qo+384, xo+24, xo+56, Z16, Z17) \
	QK1(qo+448, xo+28, xo+60, Z16, Z17) \
	VPMOVZXBD so(R10), Z20 \
	VPMULLD   Z20, Z16, Z16 \
	VPADDD    Z16, Z1, Z1 \
	VPMOVZXBD so+16(R10), Z21 \
	VPMULLD   Z21, Z17, Z17 \
	VPADDD    Z17, Z1, Z1

// QK4 is QK1 for the four activation rows DX, R11, R13, R14.
#define QK4(off, xlo, xhi) \
	PREFETCHT0    off+4096(R10) \
	VMOVDQU64     off(R10), Z8 \
	VPSRLW        $4, Z8, Z9 \
	VPANDD        Z30, Z8, Z8 \
	VPANDD        Z30, Z9, Z9 \
	VPDPBUSD.BCST xlo(DX)(R15*1), Z8, Z16 \
	VPDPBUSD.BCST xlo(R11)(R15*1), Z8, Z17 \
	VPDPBUSD.BCST xlo(R13)(R15*1), Z8, Z18 \
	VPDPBUSD.BCST xlo(R14)(R15*1), Z8, Z19 \
	VPDPBUSD.BCST xhi(DX)(R15*1), Z9, Z20 \
	VPDPBUSD.BCST xhi(R11)(R15*1), Z9, Z21 \
	VPDPBUSD.BCST xhi(R13)(R15*1), Z9, Z22 \
	VPDPBUSD.BCST xhi(R14)(R15*1), Z9, Z23

// SCALE4 multiplies the sums A of one row by the scales in Z and adds
// them to the row's total T.
#define SCALE4(Z, A, T) \
	VPMULLD Z, A, A \
	VPADDD  A, T, T

#define PAIR4(qo, xo, so) \
	VPXORD Z16, Z16, Z16 \
	VPXORD Z17, Z17, Z17 \
	VPXORD Z18, Z18, Z18 \
	VPXORD Z19, Z19, Z19 \
	VPXORD Z20, Z20, Z20 \
	VPXORD Z21, Z21, Z21 \
	VPXORD Z22, Z22, Z22 \
	VPXORD Z23, Z23, Z23 \
	QK4(qo+0, xo+0, xo+32) \
	QK4(qo+64, xo+4, xo+36) \
	QK4(qo+128, xo+8, xo+40) \
	QK4(qo+192, xo+12, xo+44) \
	QK4(qo+256, xo+16, xo+48) \
	QK4(qo+320, xo+20, xo+52) \
	QK4(qo+384, xo+24, xo+56) \
	QK4(qo+448, xo+28, xo+60) \
	VPMOVZXBD so(R10), Z24 \
	SCALE4(Z24, Z16, Z4) \
	SCALE4(Z24, Z17, Z5) \
	SCALE4(Z24, Z18, Z6) \
	SCALE4(Z24, Z19, Z7) \
	VPMOVZXBD so+16(R10), Z25 \
	SCALE4(Z25, Z20, Z4) \
	SCALE4(Z25, Z21, Z5) \
	SCALE4(Z25, Z22, Z6) \
	SCALE4(Z25, Z23, Z7)

// MINS4 adds the mins pair c times the activations' sums of 32 into the
// rows' min totals Z10..Z13.
#define MINS4(c) \
	VPMOVZXBW     2176+32*c(R10), Z26 \
	VPDPWSSD.BCST 288+4*c(DX)(R15*1), Z26, Z10 \
	VPDPWSSD.BCST 288+4*c(R11)(R15*1), Z26, Z11 \
	VPDPWSSD.BCST 288+4*c(R13)(R15*1), Z26, Z12 \
	VPDPWSSD.BCST 288+4*c(R14)(R15*1), Z26, Z13

// FIN4K adds a row's super-block into its accumulator F: T·d·d_x and
// −M·dmin·d_x (Z27 = d, Z28 = dmin as float32; d_x at 304 of the row).
#define FIN4K(base, T, M, F) \
	VMULPS.BCST  304(base)(R15*1), Z27, Z24 \
	VCVTDQ2PS    T, T \
	VFMADD231PS  Z24, T, F \
	VMULPS.BCST  304(base)(R15*1), Z28, Z25 \
	VCVTDQ2PS    M, M \
	VFNMADD231PS Z25, M, F

#define NIBBLEMASK \
	MOVL         $0x0f0f0f0f, AX \
	VPBROADCASTD AX, Z30

// func q80Panels512(w unsafe.Pointer, pstride uintptr, x unsafe.Pointer, blocks int, out *float32, rows int)
// out[i] = dot(row i, activation row x) for i < rows: the rows of
// consecutive panels of pstride bytes at w. Each output adds its blocks
// in order into one accumulator, exactly as q80Panels4x512 does, so that
// a row's result does not depend on the batch it is computed in.
TEXT ·q80Panels512(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ pstride+8(FP), R8
	MOVQ x+16(FP), DX
	MOVQ blocks+24(FP), CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	MOVQ CX, R13
	SHLQ $9, R13
	TESTQ R9, R9
	JLE  p1_done

p1_panel:
	VXORPS Z0, Z0, Z0
	MOVQ SI, R10
	LEAQ (SI)(R13*1), R11
	XORQ R15, R15
	MOVQ CX, R12
	SHRQ $1, R12
	JZ   p1_odd

p1_pair:
	B1(0, 0, 0, 64, 128, Z16, Z17, Z0)
	B1(512, 32, 32, 96, 160, Z18, Z19, Z0)
	ADDQ $1024, R10
	ADDQ $64, R11
	ADDQ $192, R15
	DECQ R12
	JNZ  p1_pair

p1_odd:
	TESTQ $1, CX
	JZ    p1_store
	B1(0, 0, 0, 64, 128, Z16, Z17, Z0)

p1_store:
	CMPQ   R9, $16
	JLT    p1_partial
	VMOVUPS Z0, (DI)
	ADDQ   $64, DI
	ADDQ   R8, SI
	SUBQ   $16, R9
	JNZ    p1_panel
	JMP    p1_done

p1_partial:
	MOVQ  R9, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	VMOVUPS Z0, K1, (DI)

p1_done:
	VZEROUPPER
	RET

// func q80Panels4x512(w unsafe.Pointer, pstride uintptr, t *tile4, blocks int, rows int)
// t.out[k][i] = dot(row i, activation row t.x[k]) for k < 4, i < rows.
TEXT ·q80Panels4x512(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ pstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), DX
	MOVQ 8(AX), R11
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ blocks+24(FP), CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JLE  p4_done

p4_panel:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ SI, R10
	MOVQ CX, AX
	SHLQ $9, AX
	LEAQ (SI)(AX*1), BX
	XORQ R15, R15
	MOVQ CX, R12
	SHRQ $1, R12
	JZ   p4_odd

p4_pair:
	B4(0, 0, 0, 64, 128)
	B4(512, 32, 32, 96, 160)
	ADDQ $1024, R10
	ADDQ $64, BX
	ADDQ $192, R15
	DECQ R12
	JNZ  p4_pair

p4_odd:
	TESTQ $1, CX
	JZ    p4_store
	B4(0, 0, 0, 64, 128)

p4_store:
	CMPQ R9, $16
	JLT  p4_partial
	STORE4(0, Z0)
	STORE4(1, Z1)
	STORE4(2, Z2)
	STORE4(3, Z3)
	ADDQ $64, DI
	ADDQ R8, SI
	SUBQ $16, R9
	JNZ  p4_panel
	JMP  p4_done

p4_partial:
	MOVQ  R9, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	STORE4M(0, Z0)
	STORE4M(1, Z1)
	STORE4M(2, Z2)
	STORE4M(3, Z3)

p4_done:
	VZEROUPPER
	RET

// func q4kPanels512(w unsafe.Pointer, pstride uintptr, x unsafe.Pointer, blocks int, out *float32, rows int)
// out[i] = dot(row i, activation row x) for i < rows over consecutive Q4_K
// panels; blocks is the number of super-blocks per row. Each output takes
// its super-blocks in order, exactly as q4kPanels4x512 does.
TEXT ·q4kPanels512(SB), NOSPLIT, $0-48
	NIBBLEMASK
	MOVQ w+0(FP), SI
	MOVQ pstride+8(FP), R8
	MOVQ x+16(FP), DX
	MOVQ blocks+24(FP), CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JLE  k1_done

k1_panel:
	VXORPS Z0, Z0, Z0
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, R12

k1_block:
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	PAIR1(0, 0, 2048)
	PAIR1(512, 64, 2080)
	PAIR1(1024, 128, 2112)
	PAIR1(1536, 192, 2144)
	VPMOVZXBW     2176(R10), Z26
	VPDPWSSD.BCST 288(DX)(R15*1), Z26, Z2
	VPMOVZXBW     2208(R10), Z26
	VPDPWSSD.BCST 292(DX)(R15*1), Z26, Z2
	VPMOVZXBW     2240(R10), Z26
	VPDPWSSD.BCST 296(DX)(R15*1), Z26, Z2
	VPMOVZXBW     2272(R10), Z26
	VPDPWSSD.BCST 300(DX)(R15*1), Z26, Z2
	VCVTPH2PS     2304(R10), Z27
	VCVTPH2PS     2336(R10), Z28
	VMULPS.BCST   304(DX)(R15*1), Z27, Z24
	VCVTDQ2PS     Z1, Z1
	VFMADD231PS   Z24, Z1, Z0
	VMULPS.BCST   304(DX)(R15*1), Z28, Z25
	VCVTDQ2PS     Z2, Z2
	VFNMADD231PS  Z25, Z2, Z0
	ADDQ $2368, R10
	ADDQ $320, R15
	DECQ R12
	JNZ  k1_block

	CMPQ R9, $16
	JLT  k1_partial
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	ADDQ R8, SI
	SUBQ $16, R9
	JNZ  k1_panel
	JMP  k1_done

k1_partial:
	MOVQ  R9, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	VMOVUPS Z0, K1, (DI)

k1_done:
	VZEROUPPER
	RET

// func q4kPanels4x512(w unsafe.Pointer, pstride uintptr, t *tile4, blocks int, rows int)
// t.out[k][i] = dot(row i, activation row t.x[k]) for k < 4, i < rows.
TEXT ·q4kPanels4x512(SB), NOSPLIT, $0-40
	NIBBLEMASK
	MOVQ w+0(FP), SI
	MOVQ pstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), DX
	MOVQ 8(AX), R11
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ blocks+24(FP), CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JLE  k4_done

k4_panel:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, R12

k4_block:
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	PAIR4(0, 0, 2048)
	PAIR4(512, 64, 2080)
	PAIR4(1024, 128, 2112)
	PAIR4(1536, 192, 2144)
	MINS4(0)
	MINS4(1)
	MINS4(2)
	MINS4(3)
	VCVTPH2PS 2304(R10), Z27
	VCVTPH2PS 2336(R10), Z28
	FIN4K(DX, Z4, Z10, Z0)
	FIN4K(R11, Z5, Z11, Z1)
	FIN4K(R13, Z6, Z12, Z2)
	FIN4K(R14, Z7, Z13, Z3)
	ADDQ $2368, R10
	ADDQ $320, R15
	DECQ R12
	JNZ  k4_block

	CMPQ R9, $16
	JLT  k4_partial
	STORE4(0, Z0)
	STORE4(1, Z1)
	STORE4(2, Z2)
	STORE4(3, Z3)
	ADDQ $64, DI
	ADDQ R8, SI
	SUBQ $16, R9
	JNZ  k4_panel
	JMP  k4_done

k4_partial:
	MOVQ  R9, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	STORE4M(0, Z0)
	STORE4M(1, Z1)
	STORE4M(2, Z2)
	STORE4M(3, Z3)

k4_done:
	VZEROUPPER
	RET

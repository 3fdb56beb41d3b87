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

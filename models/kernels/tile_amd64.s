//go:build amd64 && !noasm

#include "textflag.h"

// FMA4 multiplies the activation vector A with the four weight vectors
// Z16..Z19 into the accumulators of one activation row.
#define FMA4(A, C0, C1, C2, C3) \
	VFMADD231PS A, Z16, C0 \
	VFMADD231PS A, Z17, C1 \
	VFMADD231PS A, Z18, C2 \
	VFMADD231PS A, Z19, C3

// SUM4 leaves in X(dst) the horizontal sums of the four accumulators
// a, b, c, d (lane i = sum of the i-th), using Y20..Y23.
#define SUM4(a, b, c, d, Ya, Yb, Yc, Yd, Xa, Xdst) \
	VEXTRACTF64X4 $1, a, Y20 \
	VADDPS        Y20, Ya, Ya \
	VEXTRACTF64X4 $1, b, Y21 \
	VADDPS        Y21, Yb, Yb \
	VEXTRACTF64X4 $1, c, Y22 \
	VADDPS        Y22, Yc, Yc \
	VEXTRACTF64X4 $1, d, Y23 \
	VADDPS        Y23, Yd, Yd \
	VHADDPS       Yb, Ya, Ya \
	VHADDPS       Yd, Yc, Yc \
	VHADDPS       Yc, Ya, Ya \
	VEXTRACTF32X4 $1, Ya, X20 \
	VADDPS        X20, Xa, Xdst

// STOREQ writes (or, with accumulate set, adds) the four sums in X to the
// output row at offset off of the tile.
#define STOREQ(off, X) \
	MOVQ    off(AX), DX \
	TESTB   BL, BL \
	JZ      2(PC) \
	VADDPS  (DX), X, X \
	VMOVUPS X, (DX)

// func f32Tile4x4(w *float32, wstride uintptr, t *tile4, n int, accumulate bool)
// For i, j < 4: t.out[j][i] (+)= Σ_k w[i·wstride/4 + k]·t.x[j][k], k < n:
// four weight rows times four activation rows, sixteen accumulators.
TEXT ·f32Tile4x4(SB), NOSPLIT, $0-33
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	LEAQ (SI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R12
	MOVQ t+16(FP), AX
	MOVQ 0(AX), DX
	MOVQ 8(AX), R11
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ n+24(FP), CX
	XORQ R15, R15
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
	MOVQ CX, BX
	SHRQ $4, BX
	JZ   t44_tail

t44_loop:
	VMOVUPS (SI)(R15*1), Z16
	VMOVUPS (R9)(R15*1), Z17
	VMOVUPS (R10)(R15*1), Z18
	VMOVUPS (R12)(R15*1), Z19
	VMOVUPS (DX)(R15*1), Z24
	FMA4(Z24, Z0, Z4, Z8, Z12)
	VMOVUPS (R11)(R15*1), Z25
	FMA4(Z25, Z1, Z5, Z9, Z13)
	VMOVUPS (R13)(R15*1), Z26
	FMA4(Z26, Z2, Z6, Z10, Z14)
	VMOVUPS (R14)(R15*1), Z27
	FMA4(Z27, Z3, Z7, Z11, Z15)
	ADDQ $64, R15
	DECQ BX
	JNZ  t44_loop

t44_tail:
	ANDQ $15, CX
	JZ   t44_sum
	MOVL $1, BX
	SHLL CX, BX
	DECL BX
	KMOVW BX, K1
	VMOVUPS.Z (SI)(R15*1), K1, Z16
	VMOVUPS.Z (R9)(R15*1), K1, Z17
	VMOVUPS.Z (R10)(R15*1), K1, Z18
	VMOVUPS.Z (R12)(R15*1), K1, Z19
	VMOVUPS.Z (DX)(R15*1), K1, Z24
	FMA4(Z24, Z0, Z4, Z8, Z12)
	VMOVUPS.Z (R11)(R15*1), K1, Z25
	FMA4(Z25, Z1, Z5, Z9, Z13)
	VMOVUPS.Z (R13)(R15*1), K1, Z26
	FMA4(Z26, Z2, Z6, Z10, Z14)
	VMOVUPS.Z (R14)(R15*1), K1, Z27
	FMA4(Z27, Z3, Z7, Z11, Z15)

t44_sum:
	MOVBLZX accumulate+32(FP), BX
	MOVQ    t+16(FP), AX
	SUM4(Z0, Z4, Z8, Z12, Y0, Y4, Y8, Y12, X0, X0)
	STOREQ(32, X0)
	SUM4(Z1, Z5, Z9, Z13, Y1, Y5, Y9, Y13, X1, X1)
	STOREQ(40, X1)
	SUM4(Z2, Z6, Z10, Z14, Y2, Y6, Y10, Y14, X2, X2)
	STOREQ(48, X2)
	SUM4(Z3, Z7, Z11, Z15, Y3, Y7, Y11, Y15, X3, X3)
	STOREQ(56, X3)
	VZEROUPPER
	RET

// func f16ToF32x512(dst *float32, src unsafe.Pointer, n int)
// dst[i] = fp16 value i of src, for i < n (16 values per step, a masked
// step for the tail).
TEXT ·f16ToF32x512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

hz_64:
	CMPQ CX, $64
	JLT  hz_16
	VCVTPH2PS (SI), Z0
	VCVTPH2PS 32(SI), Z1
	VCVTPH2PS 64(SI), Z2
	VCVTPH2PS 96(SI), Z3
	VMOVUPS   Z0, (DI)
	VMOVUPS   Z1, 64(DI)
	VMOVUPS   Z2, 128(DI)
	VMOVUPS   Z3, 192(DI)
	ADDQ $128, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  hz_64

hz_16:
	CMPQ CX, $16
	JLT  hz_tail
	VCVTPH2PS (SI), Z0
	VMOVUPS   Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  hz_16

hz_tail:
	TESTQ CX, CX
	JZ    hz_done
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	VMOVDQU16.Z (SI), K1, Y0
	VCVTPH2PS   Y0, Z0
	VMOVUPS     Z0, K1, (DI)

hz_done:
	VZEROUPPER
	RET

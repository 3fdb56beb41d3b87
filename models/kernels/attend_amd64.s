//go:build amd64 && !noasm

#include "textflag.h"

// Attention kernels (AVX-512). dotRows16 computes the query·key products
// of 16 cached positions at once, one accumulator per position, and folds
// the 16 accumulators into one vector of 16 sums with a shuffle tree (46
// instructions instead of 16 horizontal sums). axpyGroup adds the weighted
// values of every position to up to four query heads that share the
// key/value head, converting each value row once for all of them.

// Lane order of the shuffle tree's result: lane 4L+k holds position 4k+L.
DATA rowperm<>+0(SB)/4, $0
DATA rowperm<>+4(SB)/4, $4
DATA rowperm<>+8(SB)/4, $8
DATA rowperm<>+12(SB)/4, $12
DATA rowperm<>+16(SB)/4, $1
DATA rowperm<>+20(SB)/4, $5
DATA rowperm<>+24(SB)/4, $9
DATA rowperm<>+28(SB)/4, $13
DATA rowperm<>+32(SB)/4, $2
DATA rowperm<>+36(SB)/4, $6
DATA rowperm<>+40(SB)/4, $10
DATA rowperm<>+44(SB)/4, $14
DATA rowperm<>+48(SB)/4, $3
DATA rowperm<>+52(SB)/4, $7
DATA rowperm<>+56(SB)/4, $11
DATA rowperm<>+60(SB)/4, $15
GLOBL rowperm<>(SB), RODATA|NOPTR, $64

// FOLD1 folds the halves of a and b: [a.lo+a.hi | b.lo+b.hi].
#define FOLD1(a, b, dst) \
	VSHUFF32X4 $0x44, b, a, Z20 \
	VSHUFF32X4 $0xEE, b, a, Z21 \
	VADDPS     Z21, Z20, dst

// FOLD2 folds 256-bit halves again: 128-bit lane L of the result holds 4
// partial sums of position L of the four positions in a (2) and b (2).
#define FOLD2(a, b, dst) \
	VSHUFF32X4 $0x88, b, a, Z20 \
	VSHUFF32X4 $0xDD, b, a, Z21 \
	VADDPS     Z21, Z20, dst

// REDUCE16 leaves in Z0 the 16 sums of Z0..Z15 (lane p: the sum of Zp).
#define REDUCE16 \
	FOLD1(Z0, Z1, Z0) \
	FOLD1(Z2, Z3, Z1) \
	FOLD1(Z4, Z5, Z2) \
	FOLD1(Z6, Z7, Z3) \
	FOLD1(Z8, Z9, Z4) \
	FOLD1(Z10, Z11, Z5) \
	FOLD1(Z12, Z13, Z6) \
	FOLD1(Z14, Z15, Z7) \
	FOLD2(Z0, Z1, Z0) \
	FOLD2(Z2, Z3, Z1) \
	FOLD2(Z4, Z5, Z2) \
	FOLD2(Z6, Z7, Z3) \
	VSHUFPS $0x44, Z1, Z0, Z20 \
	VSHUFPS $0xEE, Z1, Z0, Z21 \
	VADDPS  Z21, Z20, Z0 \
	VSHUFPS $0x44, Z3, Z2, Z20 \
	VSHUFPS $0xEE, Z3, Z2, Z21 \
	VADDPS  Z21, Z20, Z1 \
	VSHUFPS $0x88, Z1, Z0, Z20 \
	VSHUFPS $0xDD, Z1, Z0, Z21 \
	VADDPS  Z21, Z20, Z0 \
	VMOVDQU32 rowperm<>(SB), Z22 \
	VPERMPS Z0, Z22, Z0

// Position p of a block of 16 is at R10 + (p%4)·stride + (p/4)·4·stride:
// R10, R11, R12, R13 are positions 0, 4, 8, 12; R8 = stride, R9 = 3·stride.
#define H16(op, Q, k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15) \
	op (R10), Z17 \
	VFMADD231PS Z17, Q, k0 \
	op (R10)(R8*1), Z17 \
	VFMADD231PS Z17, Q, k1 \
	op (R10)(R8*2), Z17 \
	VFMADD231PS Z17, Q, k2 \
	op (R10)(R9*1), Z17 \
	VFMADD231PS Z17, Q, k3 \
	op (R11), Z17 \
	VFMADD231PS Z17, Q, k4 \
	op (R11)(R8*1), Z17 \
	VFMADD231PS Z17, Q, k5 \
	op (R11)(R8*2), Z17 \
	VFMADD231PS Z17, Q, k6 \
	op (R11)(R9*1), Z17 \
	VFMADD231PS Z17, Q, k7 \
	op (R12), Z17 \
	VFMADD231PS Z17, Q, k8 \
	op (R12)(R8*1), Z17 \
	VFMADD231PS Z17, Q, k9 \
	op (R12)(R8*2), Z17 \
	VFMADD231PS Z17, Q, k10 \
	op (R12)(R9*1), Z17 \
	VFMADD231PS Z17, Q, k11 \
	op (R13), Z17 \
	VFMADD231PS Z17, Q, k12 \
	op (R13)(R8*1), Z17 \
	VFMADD231PS Z17, Q, k13 \
	op (R13)(R8*2), Z17 \
	VFMADD231PS Z17, Q, k14 \
	op (R13)(R9*1), Z17 \
	VFMADD231PS Z17, Q, k15

#define ZERO16 \
	VXORPS Z0, Z0, Z0 \
	VXORPS Z1, Z1, Z1 \
	VXORPS Z2, Z2, Z2 \
	VXORPS Z3, Z3, Z3 \
	VXORPS Z4, Z4, Z4 \
	VXORPS Z5, Z5, Z5 \
	VXORPS Z6, Z6, Z6 \
	VXORPS Z7, Z7, Z7 \
	VXORPS Z8, Z8, Z8 \
	VXORPS Z9, Z9, Z9 \
	VXORPS Z10, Z10, Z10 \
	VXORPS Z11, Z11, Z11 \
	VXORPS Z12, Z12, Z12 \
	VXORPS Z13, Z13, Z13 \
	VXORPS Z14, Z14, Z14 \
	VXORPS Z15, Z15, Z15

// func dotRows16F16(out *float32, q *float32, rows unsafe.Pointer, stride uintptr, d int, blocks int)
// out[p] = Σ_k q[k]·fp16(rows[p·stride + 2k]) for p < 16·blocks, k < d;
// d is a multiple of 16, stride in bytes.
TEXT ·dotRows16F16(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ rows+16(FP), R14
	MOVQ stride+24(FP), R8
	MOVQ d+32(FP), CX
	MOVQ blocks+40(FP), BX
	LEAQ (R8)(R8*2), R9
	SHRQ $4, CX
	TESTQ BX, BX
	JZ   dh_done

dh_block:
	ZERO16
	MOVQ R14, R10
	LEAQ (R10)(R8*4), R11
	LEAQ (R11)(R8*4), R12
	LEAQ (R12)(R8*4), R13
	MOVQ SI, DX
	MOVQ CX, AX

dh_chunk:
	VMOVUPS (DX), Z16
	H16(VCVTPH2PS, Z16, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ $64, DX
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, R13
	DECQ AX
	JNZ  dh_chunk

	REDUCE16
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	LEAQ (R14)(R8*8), R14
	LEAQ (R14)(R8*8), R14
	DECQ BX
	JNZ  dh_block

dh_done:
	VZEROUPPER
	RET

// func dotRows16F32(out *float32, q *float32, rows unsafe.Pointer, stride uintptr, d int, blocks int)
// dotRows16F16 over float32 rows.
TEXT ·dotRows16F32(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ rows+16(FP), R14
	MOVQ stride+24(FP), R8
	MOVQ d+32(FP), CX
	MOVQ blocks+40(FP), BX
	LEAQ (R8)(R8*2), R9
	SHRQ $4, CX
	TESTQ BX, BX
	JZ   df_done

df_block:
	ZERO16
	MOVQ R14, R10
	LEAQ (R10)(R8*4), R11
	LEAQ (R11)(R8*4), R12
	LEAQ (R12)(R8*4), R13
	MOVQ SI, DX
	MOVQ CX, AX

df_chunk:
	VMOVUPS (DX), Z16
	H16(VMOVUPS, Z16, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ $64, DX
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, R12
	ADDQ $64, R13
	DECQ AX
	JNZ  df_chunk

	REDUCE16
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	LEAQ (R14)(R8*8), R14
	LEAQ (R14)(R8*8), R14
	DECQ BX
	JNZ  df_block

df_done:
	VZEROUPPER
	RET

// G4 adds weight w_j[p] (at off from each head's pointer, R11..R14) times
// the value chunk V into the heads' accumulators.
#define G4(off, V, A0, A1, A2, A3) \
	VFMADD231PS.BCST off(R11), V, A0 \
	VFMADD231PS.BCST off(R12), V, A1 \
	VFMADD231PS.BCST off(R13), V, A2 \
	VFMADD231PS.BCST off(R14), V, A3

// func axpyGroup(out *[4]*float32, w *[4]*float32, rows unsafe.Pointer, stride uintptr, n int, half bool)
// For j < 4: out[j][0:64] = Σ_p w[j][p]·row_p[0:64], p < n, where row p is
// at rows + p·stride (bytes) and holds fp16 values when half is set,
// float32 otherwise.
TEXT ·axpyGroup(SB), NOSPLIT, $0-41
	MOVQ w+8(FP), AX
	MOVQ 0(AX), R11
	MOVQ 8(AX), R12
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ rows+16(FP), R10
	MOVQ stride+24(FP), R8
	MOVQ n+32(FP), CX
	MOVBLZX half+40(FP), BX
	ZERO16
	TESTQ CX, CX
	JZ    ag_store
	TESTQ BX, BX
	JZ    ag_f32

ag_f16:
	VCVTPH2PS (R10), Z16
	VCVTPH2PS 32(R10), Z17
	VCVTPH2PS 64(R10), Z18
	VCVTPH2PS 96(R10), Z19
	G4(0, Z16, Z0, Z4, Z8, Z12)
	G4(0, Z17, Z1, Z5, Z9, Z13)
	G4(0, Z18, Z2, Z6, Z10, Z14)
	G4(0, Z19, Z3, Z7, Z11, Z15)
	ADDQ R8, R10
	ADDQ $4, R11
	ADDQ $4, R12
	ADDQ $4, R13
	ADDQ $4, R14
	DECQ CX
	JNZ  ag_f16
	JMP  ag_store

ag_f32:
	VMOVUPS (R10), Z16
	VMOVUPS 64(R10), Z17
	VMOVUPS 128(R10), Z18
	VMOVUPS 192(R10), Z19
	G4(0, Z16, Z0, Z4, Z8, Z12)
	G4(0, Z17, Z1, Z5, Z9, Z13)
	G4(0, Z18, Z2, Z6, Z10, Z14)
	G4(0, Z19, Z3, Z7, Z11, Z15)
	ADDQ R8, R10
	ADDQ $4, R11
	ADDQ $4, R12
	ADDQ $4, R13
	ADDQ $4, R14
	DECQ CX
	JNZ  ag_f32

ag_store:
	MOVQ out+0(FP), AX
	MOVQ 0(AX), DX
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	MOVQ 8(AX), DX
	VMOVUPS Z4, (DX)
	VMOVUPS Z5, 64(DX)
	VMOVUPS Z6, 128(DX)
	VMOVUPS Z7, 192(DX)
	MOVQ 16(AX), DX
	VMOVUPS Z8, (DX)
	VMOVUPS Z9, 64(DX)
	VMOVUPS Z10, 128(DX)
	VMOVUPS Z11, 192(DX)
	MOVQ 24(AX), DX
	VMOVUPS Z12, (DX)
	VMOVUPS Z13, 64(DX)
	VMOVUPS Z14, 128(DX)
	VMOVUPS Z15, 192(DX)
	VZEROUPPER
	RET

//go:build amd64 && !noasm

#include "textflag.h"

// Kernels for weights in the 32-element block types (Q8_0, Q4_0, Q5_0)
// against activations in the actQ8_0 layout (see matrix.go): per pair of
// blocks, 64 int8 quants, 16 int32 bias lanes and 16 float32 scale lanes.
//
// AVX-512 kernels make the weight quants unsigned (Q8_0: w XOR 0x80 =
// w+128; Q4_0 and Q5_0 are stored unsigned), multiply them with the
// signed activation quants by VPDPBUSD into accumulators that start at the
// bias lanes (−K·Σx), so each block's eight int32 lanes sum to the exact
// Σ w·x, then scale the lanes by d_w·d_x in float32.
//
// AVX2 kernels use VPMADDUBSW + VPMADDWD: Q8_0 moves the weights' signs
// onto the activations (VPABSB/VPSIGNB) as the products of 8-bit
// magnitudes cannot saturate 16 bits; Q4_0 and Q5_0 quants are small
// enough to multiply unsigned and take the bias lanes.

#define HSUM256(Ys, Xs, Xt) \
	VEXTRACTF128 $1, Ys, Xt \
	VADDPS       Xt, Xs, Xs \
	VPERMILPS    $0x4E, Xs, Xt \
	VADDPS       Xt, Xs, Xs \
	VPERMILPS    $0xB1, Xs, Xt \
	VADDPS       Xt, Xs, Xs

DATA q4perm<>+0(SB)/8, $0
DATA q4perm<>+8(SB)/8, $1
DATA q4perm<>+16(SB)/8, $8
DATA q4perm<>+24(SB)/8, $9
DATA q4perm<>+32(SB)/8, $2
DATA q4perm<>+40(SB)/8, $3
DATA q4perm<>+48(SB)/8, $10
DATA q4perm<>+56(SB)/8, $11
GLOBL q4perm<>(SB), RODATA|NOPTR, $64

// Byte j of a 32-byte vector picks byte j/8 of a broadcast dword.
DATA q5shuf<>+0(SB)/8, $0x0000000000000000
DATA q5shuf<>+8(SB)/8, $0x0101010101010101
DATA q5shuf<>+16(SB)/8, $0x0202020202020202
DATA q5shuf<>+24(SB)/8, $0x0303030303030303
GLOBL q5shuf<>(SB), RODATA|NOPTR, $32

// Byte j holds bit j%8.
DATA q5bits<>+0(SB)/8, $0x8040201008040201
DATA q5bits<>+8(SB)/8, $0x8040201008040201
DATA q5bits<>+16(SB)/8, $0x8040201008040201
DATA q5bits<>+24(SB)/8, $0x8040201008040201
GLOBL q5bits<>(SB), RODATA|NOPTR, $32

// Constants: Z31 = 0x80 bytes, Z30 = 0x0F bytes, Z28 = 0x10 bytes,
// Z29 = qword permutation interleaving low and high nibbles of two
// blocks, K1 = word lanes 8..15.
#define SETUP512 \
	MOVL         $0x80808080, AX \
	VPBROADCASTD AX, Z31 \
	MOVL         $0x0f0f0f0f, AX \
	VPBROADCASTD AX, Z30 \
	MOVL         $0x10101010, AX \
	VPBROADCASTD AX, Z28 \
	VMOVDQU64    q4perm<>(SB), Z29 \
	MOVL         $0xff00, AX \
	KMOVW        AX, K1

// Constants: Y15 = int16 ones, Y14 = 0x0F bytes, Y13 = 0x10 bytes,
// Y12 = bit-of-byte masks, Y11 = dword-byte spreading shuffle.
#define SETUP2 \
	MOVL         $0x00010001, AX \
	MOVD         AX, X15 \
	VPBROADCASTD X15, Y15 \
	MOVL         $0x0f0f0f0f, AX \
	MOVD         AX, X14 \
	VPBROADCASTD X14, Y14 \
	MOVL         $0x10101010, AX \
	MOVD         AX, X13 \
	VPBROADCASTD X13, Y13 \
	VMOVDQU      q5bits<>(SB), Y12 \
	VMOVDQU      q5shuf<>(SB), Y11

// Weight decoders. *_PAIR512 leave two blocks' unsigned quants in Z2 and
// their scales (8 lanes each) in Z4; *_ONE512 one block in Y2 and Y4.

#define W80_PAIR512 \
	VMOVDQU      2(R10), Y2 \
	VINSERTI64X4 $1, 36(R10), Z2, Z2 \
	VPXORD       Z31, Z2, Z2 \
	VPBROADCASTW (R10), Y4 \
	VPBROADCASTW 34(R10), K1, Y4 \
	VCVTPH2PS    Y4, Z4

#define W80_ONE512 \
	VMOVDQU      2(R10), Y2 \
	VPXORD       Y31, Y2, Y2 \
	VPBROADCASTW (R10), X4 \
	VCVTPH2PS    X4, Y4

#define W40_PAIR512 \
	VMOVDQU      2(R10), X2 \
	VINSERTI128  $1, 20(R10), Y2, Y2 \
	VPSRLW       $4, Z2, Z3 \
	VPERMT2Q     Z3, Z29, Z2 \
	VPANDD       Z30, Z2, Z2 \
	VPBROADCASTW (R10), Y4 \
	VPBROADCASTW 18(R10), K1, Y4 \
	VCVTPH2PS    Y4, Z4

#define W40_ONE512 \
	VMOVDQU      2(R10), X2 \
	VPSRLW       $4, X2, X3 \
	VINSERTI128  $1, X3, Y2, Y2 \
	VPANDD       Y30, Y2, Y2 \
	VPBROADCASTW (R10), X4 \
	VCVTPH2PS    X4, Y4

#define W50_PAIR512 \
	VMOVDQU      6(R10), X2 \
	VINSERTI128  $1, 28(R10), Y2, Y2 \
	VPSRLW       $4, Z2, Z3 \
	VPERMT2Q     Z3, Z29, Z2 \
	VPANDD       Z30, Z2, Z2 \
	KMOVD        2(R10), K2 \
	KMOVD        24(R10), K3 \
	KUNPCKDQ     K2, K3, K2 \
	VPADDB       Z28, Z2, K2, Z2 \
	VPBROADCASTW (R10), Y4 \
	VPBROADCASTW 22(R10), K1, Y4 \
	VCVTPH2PS    Y4, Z4

#define W50_ONE512 \
	VMOVDQU      6(R10), X2 \
	VPSRLW       $4, X2, X3 \
	VINSERTI128  $1, X3, Y2, Y2 \
	VPANDD       Y30, Y2, Y2 \
	KMOVD        2(R10), K2 \
	VPADDB       Y28, Y2, K2, Y2 \
	VPBROADCASTW (R10), X4 \
	VCVTPH2PS    X4, Y4

// ROW512 accumulates into ACC the products of the decoded pair with one
// activation row at base+R15.
#define ROW512(base, ACC) \
	VMOVDQA32   64(base)(R15*1), Z5 \
	VPDPBUSD    (base)(R15*1), Z2, Z5 \
	VCVTDQ2PS   Z5, Z5 \
	VMULPS      128(base)(R15*1), Z4, Z6 \
	VFMADD231PS Z6, Z5, ACC

#define ROW256(base, ACC) \
	VMOVDQA     64(base)(R15*1), Y5 \
	VPDPBUSD    (base)(R15*1), Y2, Y5 \
	VCVTDQ2PS   Y5, Y5 \
	VMULPS      128(base)(R15*1), Y4, Y6 \
	VFMADD231PS Y6, Y5, ACC

// AVX2 decoders: one block at R10. Q8_0 leaves the signed quants in Y2 and
// their magnitudes in Y3; Q4_0 and Q5_0 leave unsigned quants in Y3. The
// scale goes to Y4.
#define W80_2 \
	VMOVDQU      2(R10), Y2 \
	VPABSB       Y2, Y3 \
	VPBROADCASTW (R10), X4 \
	VCVTPH2PS    X4, Y4

#define W40_2 \
	VMOVDQU      2(R10), X2 \
	VPSRLW       $4, X2, X3 \
	VINSERTI128  $1, X3, Y2, Y2 \
	VPAND        Y14, Y2, Y3 \
	VPBROADCASTW (R10), X4 \
	VCVTPH2PS    X4, Y4

#define W50_2 \
	VMOVDQU      6(R10), X2 \
	VPSRLW       $4, X2, X3 \
	VINSERTI128  $1, X3, Y2, Y2 \
	VPAND        Y14, Y2, Y3 \
	VPBROADCASTD 2(R10), Y5 \
	VPSHUFB      Y11, Y5, Y5 \
	VPAND        Y12, Y5, Y5 \
	VPCMPEQB     Y12, Y5, Y5 \
	VPAND        Y13, Y5, Y5 \
	VPOR         Y5, Y3, Y3 \
	VPBROADCASTW (R10), X4 \
	VCVTPH2PS    X4, Y4

// ROWS2: signed Q8_0 block times the activation block at off(base)(R15).
#define ROWS2(base, off, ACC) \
	VMOVDQU     off(base)(R15*1), Y5 \
	VPSIGNB     Y2, Y5, Y5 \
	VPMADDUBSW  Y5, Y3, Y5 \
	VPMADDWD    Y15, Y5, Y5 \
	VCVTDQ2PS   Y5, Y5 \
	VMULPS      128+off(base)(R15*1), Y4, Y6 \
	VFMADD231PS Y6, Y5, ACC

// ROWU2: unsigned block times the activation block, plus its bias lanes.
#define ROWU2(base, off, ACC) \
	VPMADDUBSW  off(base)(R15*1), Y3, Y5 \
	VPMADDWD    Y15, Y5, Y5 \
	VPADDD      64+off(base)(R15*1), Y5, Y5 \
	VCVTDQ2PS   Y5, Y5 \
	VMULPS      128+off(base)(R15*1), Y4, Y6 \
	VFMADD231PS Y6, Y5, ACC

// func q80Rows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)
// out[i] = dot(weight row i, activation row x) for i < rows.
TEXT ·q80Rows512(SB), NOSPLIT, $0-48
	SETUP512
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), R11
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	MOVQ SI, R10
	XORQ R15, R15
	VXORPS Z9, Z9, Z9
	MOVQ CX, R12
	SHRQ $2, R12
	JZ   pair1

pair2:
	PREFETCHT0 1024(R10)
	W80_PAIR512
	ROW512(R11, Z0)
	ADDQ $68, R10
	ADDQ $192, R15
	W80_PAIR512
	ROW512(R11, Z1)
	ADDQ $68, R10
	ADDQ $192, R15
	DECQ R12
	JNZ  pair2

pair1:
	TESTQ $2, CX
	JZ    one
	W80_PAIR512
	ROW512(R11, Z0)
	ADDQ $68, R10
	ADDQ $192, R15

one:
	TESTQ $1, CX
	JZ    sum
	W80_ONE512
	ROW256(R11, Y9)

sum:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y3
	VADDPS        Y3, Y0, Y0
	VADDPS        Y9, Y0, Y0
	HSUM256(Y0, X0, X3)
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, SI
	DECQ   R9
	JNZ    row

done:
	VZEROUPPER
	RET

// func q80Rows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)
// t.out[k][i] = dot(weight row i, activation row t.x[k]) for k < 4, i < rows.
TEXT ·q80Rows4x512(SB), NOSPLIT, $0-40
	SETUP512
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), R11
	MOVQ 8(AX), R12
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, BX
	SHRQ $1, BX
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W80_PAIR512
	ROW512(R11, Z0)
	ROW512(R12, Z7)
	ROW512(R13, Z8)
	ROW512(R14, Z9)
	ADDQ $68, R10
	ADDQ $192, R15
	DECQ BX
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W80_ONE512
	ROW256(R11, Y10)
	ROW256(R12, Y11)
	ROW256(R13, Y12)
	ROW256(R14, Y13)

sum:
	MOVQ t+16(FP), AX
	VEXTRACTF64X4 $1, Z0, Y3
	VADDPS        Y3, Y0, Y0
	VADDPS        Y10, Y0, Y0
	HSUM256(Y0, X0, X3)
	MOVQ          32(AX), DX
	VMOVSS        X0, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z7, Y3
	VADDPS        Y3, Y7, Y7
	VADDPS        Y11, Y7, Y7
	HSUM256(Y7, X7, X3)
	MOVQ          40(AX), DX
	VMOVSS        X7, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z8, Y3
	VADDPS        Y3, Y8, Y8
	VADDPS        Y12, Y8, Y8
	HSUM256(Y8, X8, X3)
	MOVQ          48(AX), DX
	VMOVSS        X8, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z9, Y3
	VADDPS        Y3, Y9, Y9
	VADDPS        Y13, Y9, Y9
	HSUM256(Y9, X9, X3)
	MOVQ          56(AX), DX
	VMOVSS        X9, (DX)(DI*4)
	INCQ DI
	ADDQ R8, SI
	CMPQ DI, R9
	JLT  row

done:
	VZEROUPPER
	RET

// func q80Rows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)
// AVX2 version of the AVX-512 kernel of the same type.
TEXT ·q80Rows2(SB), NOSPLIT, $0-48
	SETUP2
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), R11
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, R12
	SHRQ $1, R12
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W80_2
	ROWS2(R11, 0, Y0)
	ADDQ $34, R10
	W80_2
	ROWS2(R11, 32, Y1)
	ADDQ $34, R10
	ADDQ $192, R15
	DECQ R12
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W80_2
	ROWS2(R11, 0, Y0)

sum:
	VADDPS Y1, Y0, Y0
	HSUM256(Y0, X0, X3)
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, SI
	DECQ   R9
	JNZ    row

done:
	VZEROUPPER
	RET

// func q80Rows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)
// AVX2 version of the AVX-512 kernel of the same type.
TEXT ·q80Rows4x2(SB), NOSPLIT, $0-40
	SETUP2
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), R11
	MOVQ 8(AX), R12
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, BX
	SHRQ $1, BX
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W80_2
	ROWS2(R11, 0, Y0)
	ROWS2(R12, 0, Y1)
	ROWS2(R13, 0, Y7)
	ROWS2(R14, 0, Y8)
	ADDQ $34, R10
	W80_2
	ROWS2(R11, 32, Y0)
	ROWS2(R12, 32, Y1)
	ROWS2(R13, 32, Y7)
	ROWS2(R14, 32, Y8)
	ADDQ $34, R10
	ADDQ $192, R15
	DECQ BX
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W80_2
	ROWS2(R11, 0, Y0)
	ROWS2(R12, 0, Y1)
	ROWS2(R13, 0, Y7)
	ROWS2(R14, 0, Y8)

sum:
	MOVQ t+16(FP), AX
	HSUM256(Y0, X0, X3)
	MOVQ   32(AX), DX
	VMOVSS X0, (DX)(DI*4)
	HSUM256(Y1, X1, X3)
	MOVQ   40(AX), DX
	VMOVSS X1, (DX)(DI*4)
	HSUM256(Y7, X7, X3)
	MOVQ   48(AX), DX
	VMOVSS X7, (DX)(DI*4)
	HSUM256(Y8, X8, X3)
	MOVQ   56(AX), DX
	VMOVSS X8, (DX)(DI*4)
	INCQ DI
	ADDQ R8, SI
	CMPQ DI, R9
	JLT  row

done:
	VZEROUPPER
	RET

// func q40Rows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)
// out[i] = dot(weight row i, activation row x) for i < rows.
TEXT ·q40Rows512(SB), NOSPLIT, $0-48
	SETUP512
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), R11
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	MOVQ SI, R10
	XORQ R15, R15
	VXORPS Z9, Z9, Z9
	MOVQ CX, R12
	SHRQ $2, R12
	JZ   pair1

pair2:
	PREFETCHT0 1024(R10)
	W40_PAIR512
	ROW512(R11, Z0)
	ADDQ $36, R10
	ADDQ $192, R15
	W40_PAIR512
	ROW512(R11, Z1)
	ADDQ $36, R10
	ADDQ $192, R15
	DECQ R12
	JNZ  pair2

pair1:
	TESTQ $2, CX
	JZ    one
	W40_PAIR512
	ROW512(R11, Z0)
	ADDQ $36, R10
	ADDQ $192, R15

one:
	TESTQ $1, CX
	JZ    sum
	W40_ONE512
	ROW256(R11, Y9)

sum:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y3
	VADDPS        Y3, Y0, Y0
	VADDPS        Y9, Y0, Y0
	HSUM256(Y0, X0, X3)
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, SI
	DECQ   R9
	JNZ    row

done:
	VZEROUPPER
	RET

// func q40Rows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)
// t.out[k][i] = dot(weight row i, activation row t.x[k]) for k < 4, i < rows.
TEXT ·q40Rows4x512(SB), NOSPLIT, $0-40
	SETUP512
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), R11
	MOVQ 8(AX), R12
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, BX
	SHRQ $1, BX
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W40_PAIR512
	ROW512(R11, Z0)
	ROW512(R12, Z7)
	ROW512(R13, Z8)
	ROW512(R14, Z9)
	ADDQ $36, R10
	ADDQ $192, R15
	DECQ BX
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W40_ONE512
	ROW256(R11, Y10)
	ROW256(R12, Y11)
	ROW256(R13, Y12)
	ROW256(R14, Y13)

sum:
	MOVQ t+16(FP), AX
	VEXTRACTF64X4 $1, Z0, Y3
	VADDPS        Y3, Y0, Y0
	VADDPS        Y10, Y0, Y0
	HSUM256(Y0, X0, X3)
	MOVQ          32(AX), DX
	VMOVSS        X0, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z7, Y3
	VADDPS        Y3, Y7, Y7
	VADDPS        Y11, Y7, Y7
	HSUM256(Y7, X7, X3)
	MOVQ          40(AX), DX
	VMOVSS        X7, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z8, Y3
	VADDPS        Y3, Y8, Y8
	VADDPS        Y12, Y8, Y8
	HSUM256(Y8, X8, X3)
	MOVQ          48(AX), DX
	VMOVSS        X8, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z9, Y3
	VADDPS        Y3, Y9, Y9
	VADDPS        Y13, Y9, Y9
	HSUM256(Y9, X9, X3)
	MOVQ          56(AX), DX
	VMOVSS        X9, (DX)(DI*4)
	INCQ DI
	ADDQ R8, SI
	CMPQ DI, R9
	JLT  row

done:
	VZEROUPPER
	RET

// func q40Rows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)
// AVX2 version of the AVX-512 kernel of the same type.
TEXT ·q40Rows2(SB), NOSPLIT, $0-48
	SETUP2
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), R11
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, R12
	SHRQ $1, R12
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W40_2
	ROWU2(R11, 0, Y0)
	ADDQ $18, R10
	W40_2
	ROWU2(R11, 32, Y1)
	ADDQ $18, R10
	ADDQ $192, R15
	DECQ R12
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W40_2
	ROWU2(R11, 0, Y0)

sum:
	VADDPS Y1, Y0, Y0
	HSUM256(Y0, X0, X3)
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, SI
	DECQ   R9
	JNZ    row

done:
	VZEROUPPER
	RET

// func q40Rows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)
// AVX2 version of the AVX-512 kernel of the same type.
TEXT ·q40Rows4x2(SB), NOSPLIT, $0-40
	SETUP2
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), R11
	MOVQ 8(AX), R12
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, BX
	SHRQ $1, BX
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W40_2
	ROWU2(R11, 0, Y0)
	ROWU2(R12, 0, Y1)
	ROWU2(R13, 0, Y7)
	ROWU2(R14, 0, Y8)
	ADDQ $18, R10
	W40_2
	ROWU2(R11, 32, Y0)
	ROWU2(R12, 32, Y1)
	ROWU2(R13, 32, Y7)
	ROWU2(R14, 32, Y8)
	ADDQ $18, R10
	ADDQ $192, R15
	DECQ BX
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W40_2
	ROWU2(R11, 0, Y0)
	ROWU2(R12, 0, Y1)
	ROWU2(R13, 0, Y7)
	ROWU2(R14, 0, Y8)

sum:
	MOVQ t+16(FP), AX
	HSUM256(Y0, X0, X3)
	MOVQ   32(AX), DX
	VMOVSS X0, (DX)(DI*4)
	HSUM256(Y1, X1, X3)
	MOVQ   40(AX), DX
	VMOVSS X1, (DX)(DI*4)
	HSUM256(Y7, X7, X3)
	MOVQ   48(AX), DX
	VMOVSS X7, (DX)(DI*4)
	HSUM256(Y8, X8, X3)
	MOVQ   56(AX), DX
	VMOVSS X8, (DX)(DI*4)
	INCQ DI
	ADDQ R8, SI
	CMPQ DI, R9
	JLT  row

done:
	VZEROUPPER
	RET

// func q50Rows512(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)
// out[i] = dot(weight row i, activation row x) for i < rows.
TEXT ·q50Rows512(SB), NOSPLIT, $0-48
	SETUP512
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), R11
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	MOVQ SI, R10
	XORQ R15, R15
	VXORPS Z9, Z9, Z9
	MOVQ CX, R12
	SHRQ $2, R12
	JZ   pair1

pair2:
	PREFETCHT0 1024(R10)
	W50_PAIR512
	ROW512(R11, Z0)
	ADDQ $44, R10
	ADDQ $192, R15
	W50_PAIR512
	ROW512(R11, Z1)
	ADDQ $44, R10
	ADDQ $192, R15
	DECQ R12
	JNZ  pair2

pair1:
	TESTQ $2, CX
	JZ    one
	W50_PAIR512
	ROW512(R11, Z0)
	ADDQ $44, R10
	ADDQ $192, R15

one:
	TESTQ $1, CX
	JZ    sum
	W50_ONE512
	ROW256(R11, Y9)

sum:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y3
	VADDPS        Y3, Y0, Y0
	VADDPS        Y9, Y0, Y0
	HSUM256(Y0, X0, X3)
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, SI
	DECQ   R9
	JNZ    row

done:
	VZEROUPPER
	RET

// func q50Rows4x512(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)
// t.out[k][i] = dot(weight row i, activation row t.x[k]) for k < 4, i < rows.
TEXT ·q50Rows4x512(SB), NOSPLIT, $0-40
	SETUP512
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), R11
	MOVQ 8(AX), R12
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, BX
	SHRQ $1, BX
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W50_PAIR512
	ROW512(R11, Z0)
	ROW512(R12, Z7)
	ROW512(R13, Z8)
	ROW512(R14, Z9)
	ADDQ $44, R10
	ADDQ $192, R15
	DECQ BX
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W50_ONE512
	ROW256(R11, Y10)
	ROW256(R12, Y11)
	ROW256(R13, Y12)
	ROW256(R14, Y13)

sum:
	MOVQ t+16(FP), AX
	VEXTRACTF64X4 $1, Z0, Y3
	VADDPS        Y3, Y0, Y0
	VADDPS        Y10, Y0, Y0
	HSUM256(Y0, X0, X3)
	MOVQ          32(AX), DX
	VMOVSS        X0, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z7, Y3
	VADDPS        Y3, Y7, Y7
	VADDPS        Y11, Y7, Y7
	HSUM256(Y7, X7, X3)
	MOVQ          40(AX), DX
	VMOVSS        X7, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z8, Y3
	VADDPS        Y3, Y8, Y8
	VADDPS        Y12, Y8, Y8
	HSUM256(Y8, X8, X3)
	MOVQ          48(AX), DX
	VMOVSS        X8, (DX)(DI*4)
	VEXTRACTF64X4 $1, Z9, Y3
	VADDPS        Y3, Y9, Y9
	VADDPS        Y13, Y9, Y9
	HSUM256(Y9, X9, X3)
	MOVQ          56(AX), DX
	VMOVSS        X9, (DX)(DI*4)
	INCQ DI
	ADDQ R8, SI
	CMPQ DI, R9
	JLT  row

done:
	VZEROUPPER
	RET

// func q50Rows2(w unsafe.Pointer, wstride uintptr, x unsafe.Pointer, cols int, out *float32, rows int)
// AVX2 version of the AVX-512 kernel of the same type.
TEXT ·q50Rows2(SB), NOSPLIT, $0-48
	SETUP2
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), R11
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, R12
	SHRQ $1, R12
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W50_2
	ROWU2(R11, 0, Y0)
	ADDQ $22, R10
	W50_2
	ROWU2(R11, 32, Y1)
	ADDQ $22, R10
	ADDQ $192, R15
	DECQ R12
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W50_2
	ROWU2(R11, 0, Y0)

sum:
	VADDPS Y1, Y0, Y0
	HSUM256(Y0, X0, X3)
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, SI
	DECQ   R9
	JNZ    row

done:
	VZEROUPPER
	RET

// func q50Rows4x2(w unsafe.Pointer, wstride uintptr, t *tile4, cols int, rows int)
// AVX2 version of the AVX-512 kernel of the same type.
TEXT ·q50Rows4x2(SB), NOSPLIT, $0-40
	SETUP2
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ t+16(FP), AX
	MOVQ 0(AX), R11
	MOVQ 8(AX), R12
	MOVQ 16(AX), R13
	MOVQ 24(AX), R14
	MOVQ cols+24(FP), CX
	SHRQ $5, CX
	MOVQ rows+32(FP), R9
	XORQ DI, DI
	TESTQ R9, R9
	JZ   done

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	MOVQ SI, R10
	XORQ R15, R15
	MOVQ CX, BX
	SHRQ $1, BX
	JZ   one

pair:
	PREFETCHT0 1024(R10)
	W50_2
	ROWU2(R11, 0, Y0)
	ROWU2(R12, 0, Y1)
	ROWU2(R13, 0, Y7)
	ROWU2(R14, 0, Y8)
	ADDQ $22, R10
	W50_2
	ROWU2(R11, 32, Y0)
	ROWU2(R12, 32, Y1)
	ROWU2(R13, 32, Y7)
	ROWU2(R14, 32, Y8)
	ADDQ $22, R10
	ADDQ $192, R15
	DECQ BX
	JNZ  pair

one:
	TESTQ $1, CX
	JZ    sum
	W50_2
	ROWU2(R11, 0, Y0)
	ROWU2(R12, 0, Y1)
	ROWU2(R13, 0, Y7)
	ROWU2(R14, 0, Y8)

sum:
	MOVQ t+16(FP), AX
	HSUM256(Y0, X0, X3)
	MOVQ   32(AX), DX
	VMOVSS X0, (DX)(DI*4)
	HSUM256(Y1, X1, X3)
	MOVQ   40(AX), DX
	VMOVSS X1, (DX)(DI*4)
	HSUM256(Y7, X7, X3)
	MOVQ   48(AX), DX
	VMOVSS X7, (DX)(DI*4)
	HSUM256(Y8, X8, X3)
	MOVQ   56(AX), DX
	VMOVSS X8, (DX)(DI*4)
	INCQ DI
	ADDQ R8, SI
	CMPQ DI, R9
	JLT  row

done:
	VZEROUPPER
	RET

//go:build amd64 && !noasm

#include "textflag.h"

#define HSUM256(Ys, Xs, Xt) \
	VEXTRACTF128 $1, Ys, Xt \
	VADDPS       Xt, Xs, Xs \
	VPERMILPS    $0x4E, Xs, Xt \
	VADDPS       Xt, Xs, Xs \
	VPERMILPS    $0xB1, Xs, Xt \
	VADDPS       Xt, Xs, Xs

// func f32Rows2(w unsafe.Pointer, wstride uintptr, x *float32, n int, out *float32, rows int)
// out[i] = Σ_k w[i·wstride + 4k] · x[k], k < n, for i < rows (AVX2+FMA).
TEXT ·f32Rows2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R8
	MOVQ x+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DI
	MOVQ rows+40(FP), R9
	TESTQ R9, R9
	JZ   f32r_done

f32r_row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ CX, R12
	SHRQ $5, R12
	JZ   f32r_8

f32r_32:
	VMOVUPS     (R10), Y4
	VMOVUPS     32(R10), Y5
	VMOVUPS     64(R10), Y6
	VMOVUPS     96(R10), Y7
	VFMADD231PS (R11), Y4, Y0
	VFMADD231PS 32(R11), Y5, Y1
	VFMADD231PS 64(R11), Y6, Y2
	VFMADD231PS 96(R11), Y7, Y3
	ADDQ $128, R10
	ADDQ $128, R11
	DECQ R12
	JNZ  f32r_32

f32r_8:
	MOVQ CX, R12
	SHRQ $3, R12
	ANDQ $3, R12
	JZ   f32r_tail

f32r_8loop:
	VMOVUPS     (R10), Y4
	VFMADD231PS (R11), Y4, Y0
	ADDQ $32, R10
	ADDQ $32, R11
	DECQ R12
	JNZ  f32r_8loop

f32r_tail:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM256(Y0, X0, X1)
	MOVQ CX, R12
	ANDQ $7, R12
	JZ   f32r_store

f32r_tailloop:
	VMOVSS      (R10), X4
	VFMADD231SS (R11), X4, X0
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ R12
	JNZ  f32r_tailloop

f32r_store:
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ R8, SI
	DECQ R9
	JNZ  f32r_row

f32r_done:
	VZEROUPPER
	RET

// func axpyRows2(out *float32, p *float32, rows unsafe.Pointer, stride uintptr, n int, d int, half bool)
// out[c] += Σ_{j<n} p[j]·row_j[c] for c < d, row_j at rows + j·stride,
// holding float32 values, or fp16 values when half is set (AVX2+FMA+F16C).
TEXT ·axpyRows2(SB), NOSPLIT, $0-49
	MOVQ out+0(FP), DI
	MOVQ p+8(FP), DX
	MOVQ rows+16(FP), SI
	MOVQ stride+24(FP), R8
	MOVQ n+32(FP), R9
	MOVQ d+40(FP), CX
	MOVBLZX half+48(FP), BX
	TESTQ R9, R9
	JZ   axr_done

axr_block32:
	CMPQ CX, $32
	JLT  axr_block8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	MOVQ SI, R10
	XORQ R11, R11
	TESTQ BX, BX
	JNZ  axr_32h

axr_32f:
	VBROADCASTSS (DX)(R11*4), Y15
	VFMADD231PS  (R10), Y15, Y0
	VFMADD231PS  32(R10), Y15, Y1
	VFMADD231PS  64(R10), Y15, Y2
	VFMADD231PS  96(R10), Y15, Y3
	ADDQ R8, R10
	INCQ R11
	CMPQ R11, R9
	JLT  axr_32f
	ADDQ $128, SI
	JMP  axr_32store

axr_32h:
	VBROADCASTSS (DX)(R11*4), Y15
	VCVTPH2PS    (R10), Y4
	VCVTPH2PS    16(R10), Y5
	VCVTPH2PS    32(R10), Y6
	VCVTPH2PS    48(R10), Y7
	VFMADD231PS  Y4, Y15, Y0
	VFMADD231PS  Y5, Y15, Y1
	VFMADD231PS  Y6, Y15, Y2
	VFMADD231PS  Y7, Y15, Y3
	ADDQ R8, R10
	INCQ R11
	CMPQ R11, R9
	JLT  axr_32h
	ADDQ $64, SI

axr_32store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  axr_block32

axr_block8:
	CMPQ CX, $8
	JLT  axr_tail
	VMOVUPS (DI), Y0
	MOVQ SI, R10
	XORQ R11, R11
	TESTQ BX, BX
	JNZ  axr_8h

axr_8f:
	VBROADCASTSS (DX)(R11*4), Y15
	VFMADD231PS  (R10), Y15, Y0
	ADDQ R8, R10
	INCQ R11
	CMPQ R11, R9
	JLT  axr_8f
	ADDQ $32, SI
	JMP  axr_8store

axr_8h:
	VBROADCASTSS (DX)(R11*4), Y15
	VCVTPH2PS    (R10), Y4
	VFMADD231PS  Y4, Y15, Y0
	ADDQ R8, R10
	INCQ R11
	CMPQ R11, R9
	JLT  axr_8h
	ADDQ $16, SI

axr_8store:
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  axr_block8

axr_tail:
	TESTQ CX, CX
	JZ   axr_done
	VMOVSS (DI), X0
	MOVQ SI, R10
	XORQ R11, R11
	TESTQ BX, BX
	JNZ  axr_th

axr_tf:
	VMOVSS      (DX)(R11*4), X15
	VFMADD231SS (R10), X15, X0
	ADDQ R8, R10
	INCQ R11
	CMPQ R11, R9
	JLT  axr_tf
	ADDQ $4, SI
	JMP  axr_tstore

axr_th:
	VMOVSS      (DX)(R11*4), X15
	VPINSRW     $0, (R10), X4, X4
	VCVTPH2PS   X4, X4
	VFMADD231SS X4, X15, X0
	ADDQ R8, R10
	INCQ R11
	CMPQ R11, R9
	JLT  axr_th
	ADDQ $2, SI

axr_tstore:
	VMOVSS X0, (DI)
	ADDQ $4, DI
	DECQ CX
	JMP  axr_tail

axr_done:
	VZEROUPPER
	RET

// func axpy2(y *float32, x *float32, alpha float32, n int)
// y[i] += alpha·x[i] for i < n.
TEXT ·axpy2(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	VBROADCASTSS alpha+16(FP), Y15
	MOVQ n+24(FP), CX

axpy_32:
	CMPQ CX, $32
	JLT  axpy_8
	VMOVUPS     (DI), Y0
	VMOVUPS     32(DI), Y1
	VMOVUPS     64(DI), Y2
	VMOVUPS     96(DI), Y3
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS 32(SI), Y15, Y1
	VFMADD231PS 64(SI), Y15, Y2
	VFMADD231PS 96(SI), Y15, Y3
	VMOVUPS     Y0, (DI)
	VMOVUPS     Y1, 32(DI)
	VMOVUPS     Y2, 64(DI)
	VMOVUPS     Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  axpy_32

axpy_8:
	CMPQ CX, $8
	JLT  axpy_tail
	VMOVUPS     (DI), Y0
	VFMADD231PS (SI), Y15, Y0
	VMOVUPS     Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  axpy_8

axpy_tail:
	TESTQ CX, CX
	JZ    axpy_done
	VMOVSS      (DI), X0
	VFMADD231SS (SI), X15, X0
	VMOVSS      X0, (DI)
	ADDQ $4, DI
	ADDQ $4, SI
	DECQ CX
	JMP  axpy_tail

axpy_done:
	VZEROUPPER
	RET

// func mulScaled2(dst, x, w *float32, s float32, n int)
// dst[i] = x[i]·s·w[i] for i < n; s = 1 with w = nil-free use gives scaling.
TEXT ·mulScaled2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	VBROADCASTSS s+24(FP), Y15
	MOVQ n+32(FP), CX

ms_16:
	CMPQ CX, $16
	JLT  ms_8
	VMULPS  (SI), Y15, Y0
	VMULPS  32(SI), Y15, Y1
	VMULPS  (DX), Y0, Y0
	VMULPS  32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $64, SI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP  ms_16

ms_8:
	CMPQ CX, $8
	JLT  ms_tail
	VMULPS  (SI), Y15, Y0
	VMULPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	SUBQ $8, CX

ms_tail:
	TESTQ CX, CX
	JZ    ms_done
	VMULSS (SI), X15, X0
	VMULSS (DX), X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ $4, SI
	ADDQ $4, DX
	DECQ CX
	JMP  ms_tail

ms_done:
	VZEROUPPER
	RET

// func scale2(x *float32, alpha float32, n int)
TEXT ·scale2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	VBROADCASTSS alpha+8(FP), Y15
	MOVQ n+16(FP), CX

sc_32:
	CMPQ CX, $32
	JLT  sc_8
	VMULPS  (DI), Y15, Y0
	VMULPS  32(DI), Y15, Y1
	VMULPS  64(DI), Y15, Y2
	VMULPS  96(DI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  sc_32

sc_8:
	CMPQ CX, $8
	JLT  sc_tail
	VMULPS  (DI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  sc_8

sc_tail:
	TESTQ CX, CX
	JZ    sc_done
	VMULSS (DI), X15, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	DECQ CX
	JMP  sc_tail

sc_done:
	VZEROUPPER
	RET

// func max2(x *float32, n int) float32
// Largest of x[:n], n ≥ 1.
TEXT ·max2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS (SI), Y0
	VMOVAPS Y0, Y1

mx_16:
	CMPQ CX, $16
	JLT  mx_8
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  mx_16

mx_8:
	VMAXPS Y1, Y0, Y0
	CMPQ CX, $8
	JLT  mx_red
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX

mx_red:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VMAXPS       X1, X0, X0

mx_tail:
	TESTQ CX, CX
	JZ    mx_done
	VMAXSS (SI), X0, X0
	ADDQ $4, SI
	DECQ CX
	JMP  mx_tail

mx_done:
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// Constants for exp: Cephes-style range reduction and polynomial.
DATA expc<>+0(SB)/4, $0x42b00000  // 88.0 (clamp high: keeps 2^n finite)
DATA expc<>+4(SB)/4, $0xc2aeac50  // -87.3365447505531 (clamp low)
DATA expc<>+8(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expc<>+12(SB)/4, $0x3f318000 // ln2 high part 0.693359375
DATA expc<>+16(SB)/4, $0xb95e8083 // ln2 low part -2.12194440e-4
DATA expc<>+20(SB)/4, $0x39506967 // 1.9875691500e-4
DATA expc<>+24(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA expc<>+28(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA expc<>+32(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA expc<>+36(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA expc<>+40(SB)/4, $0x3f000000 // 0.5
DATA expc<>+44(SB)/4, $0x3f800000 // 1.0
DATA expc<>+48(SB)/4, $0x0000007f // exponent bias 127
GLOBL expc<>(SB), RODATA|NOPTR, $52

// EXP8 sets Yx = exp(Yx) for 8 lanes, clobbering Y8..Y13 (constants in
// Y2..Y7 and Y14: see EXPCONST).
#define EXPCONST \
	VBROADCASTSS expc<>+0(SB), Y2 \
	VBROADCASTSS expc<>+4(SB), Y3 \
	VBROADCASTSS expc<>+8(SB), Y4 \
	VBROADCASTSS expc<>+12(SB), Y5 \
	VBROADCASTSS expc<>+16(SB), Y6 \
	VBROADCASTSS expc<>+44(SB), Y7 \
	VPBROADCASTD expc<>+48(SB), Y14

#define EXP8(Yx) \
	VMINPS       Y2, Yx, Yx \
	VMAXPS       Y3, Yx, Yx \
	VMULPS       Y4, Yx, Y8 \
	VROUNDPS     $0, Y8, Y8 \
	VFNMADD231PS Y5, Y8, Yx \
	VFNMADD231PS Y6, Y8, Yx \
	VBROADCASTSS expc<>+20(SB), Y9 \
	VBROADCASTSS expc<>+24(SB), Y10 \
	VFMADD213PS  Y10, Yx, Y9 \
	VBROADCASTSS expc<>+28(SB), Y10 \
	VFMADD213PS  Y10, Yx, Y9 \
	VBROADCASTSS expc<>+32(SB), Y10 \
	VFMADD213PS  Y10, Yx, Y9 \
	VBROADCASTSS expc<>+36(SB), Y10 \
	VFMADD213PS  Y10, Yx, Y9 \
	VBROADCASTSS expc<>+40(SB), Y10 \
	VFMADD213PS  Y10, Yx, Y9 \
	VMULPS       Yx, Yx, Y11 \
	VFMADD213PS  Yx, Y11, Y9 \
	VADDPS       Y7, Y9, Y9 \
	VCVTPS2DQ    Y8, Y8 \
	VPADDD       Y14, Y8, Y8 \
	VPSLLD       $23, Y8, Y8 \
	VMULPS       Y8, Y9, Yx

// func expSub2(x *float32, m float32, n int) float32
// x[i] = exp(x[i]−m) for i < n; returns their sum.
TEXT ·expSub2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), DI
	VBROADCASTSS m+8(FP), Y15
	MOVQ n+16(FP), CX
	EXPCONST
	VXORPS Y12, Y12, Y12

es_8:
	CMPQ CX, $8
	JLT  es_tail
	VMOVUPS (DI), Y0
	VSUBPS  Y15, Y0, Y0
	EXP8(Y0)
	VMOVUPS Y0, (DI)
	VADDPS  Y0, Y12, Y12
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  es_8

es_tail:
	HSUM256(Y12, X12, X13)

es_tailloop:
	TESTQ CX, CX
	JZ    es_done
	VMOVSS (DI), X0
	VSUBSS X15, X0, X0
	EXP8(Y0)
	VMOVSS X0, (DI)
	VADDSS X0, X12, X12
	ADDQ $4, DI
	DECQ CX
	JMP  es_tailloop

es_done:
	VMOVSS X12, ret+24(FP)
	VZEROUPPER
	RET

// func swiglu2(dst, gate, up *float32, n int)
// dst[i] = gate[i]/(1+exp(−gate[i]))·up[i] for i < n.
TEXT ·swiglu2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	EXPCONST
	VXORPS Y15, Y15, Y15

sw_8:
	CMPQ CX, $8
	JLT  sw_tail
	VMOVUPS (SI), Y1
	VSUBPS  Y1, Y15, Y0
	EXP8(Y0)
	VADDPS  Y7, Y0, Y0
	VDIVPS  Y0, Y1, Y1
	VMULPS  (DX), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  sw_8

sw_tail:
	TESTQ CX, CX
	JZ    sw_done
	VMOVSS (SI), X1
	VSUBSS X1, X15, X0
	EXP8(Y0)
	VADDSS X7, X0, X0
	VDIVSS X0, X1, X1
	VMULSS (DX), X1, X1
	VMOVSS X1, (DI)
	ADDQ $4, DI
	ADDQ $4, SI
	ADDQ $4, DX
	DECQ CX
	JMP  sw_tail

sw_done:
	VZEROUPPER
	RET

// func spinPause()
TEXT ·spinPause(SB), NOSPLIT, $0-0
	PAUSE
	RET

// func roundF16x2(dst, src *float32, n int)
// dst[i] = src[i] rounded to the nearest half-precision value (ties to
// even), for i < n.
TEXT ·roundF16x2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

rf_16:
	CMPQ CX, $16
	JLT  rf_8
	VMOVUPS   (SI), Y0
	VMOVUPS   32(SI), Y1
	VCVTPS2PH $0, Y0, X0
	VCVTPS2PH $0, Y1, X1
	VCVTPH2PS X0, Y0
	VCVTPH2PS X1, Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  rf_16

rf_8:
	CMPQ CX, $8
	JLT  rf_tail
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X0
	VCVTPH2PS X0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX

rf_tail:
	TESTQ CX, CX
	JZ    rf_done
	VMOVSS    (SI), X0
	VCVTPS2PH $0, X0, X0
	VCVTPH2PS X0, X0
	VMOVSS    X0, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  rf_tail

rf_done:
	VZEROUPPER
	RET

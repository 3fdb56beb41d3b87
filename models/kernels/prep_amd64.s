//go:build amd64 && !noasm

#include "textflag.h"

// Activation quantizers (AVX2+FMA+F16C) writing the internal layouts of
// matrix.go with exactly the values of ggml's reference quantizers.

DATA prepc<>+0(SB)/4, $0x7fffffff  // abs mask
DATA prepc<>+4(SB)/4, $0x80000000  // sign mask
DATA prepc<>+8(SB)/4, $0x42fe0000  // 127.0
DATA prepc<>+12(SB)/4, $0x3f800000 // 1.0
DATA prepc<>+16(SB)/4, $0x3f000000 // 0.5
DATA prepc<>+20(SB)/4, $0xc2fe0000 // -127.0
DATA prepc<>+24(SB)/4, $127        // int32 127
GLOBL prepc<>(SB), RODATA|NOPTR, $28

// Dword order that undoes the lane interleaving of VPACKSSDW+VPACKSSWB.
DATA packidx<>+0(SB)/4, $0
DATA packidx<>+4(SB)/4, $4
DATA packidx<>+8(SB)/4, $1
DATA packidx<>+12(SB)/4, $5
DATA packidx<>+16(SB)/4, $2
DATA packidx<>+20(SB)/4, $6
DATA packidx<>+24(SB)/4, $3
DATA packidx<>+28(SB)/4, $7
GLOBL packidx<>(SB), RODATA|NOPTR, $32

// Constants: Y15 abs mask, Y14 sign mask, Y13 1.0, Y12 0.5, Y11 pack
// order, X10 127.0.
#define PREPCONST \
	VBROADCASTSS prepc<>+0(SB), Y15 \
	VBROADCASTSS prepc<>+4(SB), Y14 \
	VBROADCASTSS prepc<>+12(SB), Y13 \
	VBROADCASTSS prepc<>+16(SB), Y12 \
	VMOVDQU      packidx<>(SB), Y11 \
	VMOVSS       prepc<>+8(SB), X10

// ROUNDAWAY rounds Y to the nearest integer, ties away from zero (C's
// roundf), exactly: trunc(y) plus ±1 when |y − trunc(y)| ≥ 0.5.
#define ROUNDAWAY(Y, T, F) \
	VROUNDPS $3, Y, T \
	VSUBPS   T, Y, F \
	VANDPS   Y15, F, F \
	VCMPPS   $5, Y12, F, F \
	VANDPS   Y14, Y, Y \
	VORPS    Y13, Y, Y \
	VANDPS   F, Y, Y \
	VADDPS   T, Y, Y

// PACK32 packs the int32 lanes of Y0..Y3 (elements 0..31) into 32 int8 in
// Y0, in order.
#define PACK32 \
	VPACKSSDW Y1, Y0, Y0 \
	VPACKSSDW Y3, Y2, Y2 \
	VPACKSSWB Y2, Y0, Y0 \
	VPERMD    Y0, Y11, Y0

// QBLOCK quantizes the 32 floats at SI as a Q8_0 block into the half H
// (0 or 32) of the pair at DI, with bias factor BX (negated).
#define QBLOCK(H) \
	VMOVUPS      (SI), Y0 \
	VMOVUPS      32(SI), Y1 \
	VMOVUPS      64(SI), Y2 \
	VMOVUPS      96(SI), Y3 \
	VANDPS       Y15, Y0, Y4 \
	VANDPS       Y15, Y1, Y5 \
	VMAXPS       Y5, Y4, Y4 \
	VANDPS       Y15, Y2, Y5 \
	VMAXPS       Y5, Y4, Y4 \
	VANDPS       Y15, Y3, Y5 \
	VMAXPS       Y5, Y4, Y4 \
	VEXTRACTF128 $1, Y4, X5 \
	VMAXPS       X5, X4, X4 \
	VPERMILPS    $0x4E, X4, X5 \
	VMAXPS       X5, X4, X4 \
	VPERMILPS    $0xB1, X4, X5 \
	VMAXPS       X5, X4, X4 \
	VDIVSS       X10, X4, X4 \
	VCVTPS2PH    $0, X4, X5 \
	VCVTPH2PS    X5, X5 \
	VBROADCASTSS X5, Y5 \
	VMOVUPS      Y5, 128+H(DI) \
	VDIVSS       X4, X13, X6 \
	VXORPS       X7, X7, X7 \
	VCMPSS       $4, X7, X4, X7 \
	VANDPS       X7, X6, X6 \
	VBROADCASTSS X6, Y6 \
	VMULPS       Y6, Y0, Y0 \
	VMULPS       Y6, Y1, Y1 \
	VMULPS       Y6, Y2, Y2 \
	VMULPS       Y6, Y3, Y3 \
	ROUNDAWAY(Y0, Y4, Y5) \
	ROUNDAWAY(Y1, Y4, Y5) \
	ROUNDAWAY(Y2, Y4, Y5) \
	ROUNDAWAY(Y3, Y4, Y5) \
	VCVTTPS2DQ   Y0, Y0 \
	VCVTTPS2DQ   Y1, Y1 \
	VCVTTPS2DQ   Y2, Y2 \
	VCVTTPS2DQ   Y3, Y3 \
	VPADDD       Y1, Y0, Y4 \
	VPADDD       Y3, Y2, Y5 \
	VPADDD       Y5, Y4, Y4 \
	VEXTRACTI128 $1, Y4, X5 \
	VPADDD       X5, X4, X4 \
	VPSHUFD      $0x4E, X4, X5 \
	VPADDD       X5, X4, X4 \
	VPSHUFD      $0xB1, X4, X5 \
	VPADDD       X5, X4, X4 \
	VMOVD        X4, AX \
	IMULL        BX, AX \
	PACK32 \
	VMOVDQU      Y0, H(DI) \
	VPXOR        Y4, Y4, Y4 \
	VMOVDQU      Y4, 64+H(DI) \
	MOVL         AX, 64+H(DI) \
	ADDQ         $128, SI

// func prepQ8_0AVX2(dst *byte, x *float32, nb int, negk int32)
// Quantizes nb blocks of 32 floats into the actQ8_0 layout with bias
// lanes negk·Σq.
TEXT ·prepQ8_0AVX2(SB), NOSPLIT, $0-28
	PREPCONST
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVL negk+24(FP), BX

pairs:
	CMPQ CX, $2
	JLT  last
	QBLOCK(0)
	QBLOCK(32)
	ADDQ $192, DI
	SUBQ $2, CX
	JMP  pairs

last:
	TESTQ CX, CX
	JZ    done
	QBLOCK(0)
	VPXOR   Y4, Y4, Y4
	VMOVDQU Y4, 32(DI)
	VMOVDQU Y4, 96(DI)
	VMOVDQU Y4, 160(DI)

done:
	VZEROUPPER
	RET

// func prepQ8_KAVX2(dst *byte, x *float32, nb int)
// Quantizes nb super-blocks of 256 floats into the actQ8_K layout.
TEXT ·prepQ8_KAVX2(SB), NOSPLIT, $0-24
	PREPCONST
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ nb+16(FP), CX
	VPBROADCASTD prepc<>+24(SB), Y10

sb:
	TESTQ CX, CX
	JZ    done
	// amax over 256 values
	VXORPS Y4, Y4, Y4
	XORQ   AX, AX

amax:
	VANDPS (SI)(AX*1), Y15, Y5
	VMAXPS Y5, Y4, Y4
	ADDQ   $32, AX
	CMPQ   AX, $1024
	JLT    amax
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VPERMILPS    $0x4E, X4, X5
	VMAXPS       X5, X4, X4
	VPERMILPS    $0xB1, X4, X5
	VMAXPS       X5, X4, X4
	VBROADCASTSS X4, Y4
	VXORPS       X5, X5, X5
	VUCOMISS     X5, X4
	JNE          nonzero
	// An all-zero block: zero quants, sums and scale.
	XORQ AX, AX

zero:
	VMOVDQU Y5, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, $320
	JLT     zero
	JMP     next

nonzero:
	// The first value whose magnitude is amax gives the scale's sign.
	XORQ AX, AX

find:
	VANDPS    (SI)(AX*1), Y15, Y5
	VCMPPS    $0, Y4, Y5, Y5
	VMOVMSKPS Y5, DX
	TESTL     DX, DX
	JNZ       found
	ADDQ      $32, AX
	JMP       find

found:
	BSFL   DX, DX
	LEAQ   (AX)(DX*4), AX
	VMOVSS (SI)(AX*1), X5
	VMOVSS prepc<>+20(SB), X6
	VDIVSS X5, X6, X6
	VMOVAPS X13, X7
	VDIVSS X6, X7, X7
	VMOVSS X7, 304(DI)
	MOVL   $0, 308(DI)
	MOVQ   $0, 312(DI)
	VBROADCASTSS X6, Y6
	XORQ   AX, AX
	XORQ   DX, DX

group:
	VMULPS     (SI)(AX*4), Y6, Y0
	VMULPS     32(SI)(AX*4), Y6, Y1
	VMULPS     64(SI)(AX*4), Y6, Y2
	VMULPS     96(SI)(AX*4), Y6, Y3
	VCVTPS2DQ  Y0, Y0
	VCVTPS2DQ  Y1, Y1
	VCVTPS2DQ  Y2, Y2
	VCVTPS2DQ  Y3, Y3
	VPMINSD    Y10, Y0, Y0
	VPMINSD    Y10, Y1, Y1
	VPMINSD    Y10, Y2, Y2
	VPMINSD    Y10, Y3, Y3
	VPADDD     Y1, Y0, Y4
	VPADDD     Y3, Y2, Y5
	VPHADDD    Y5, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD     X5, X4, X4
	VPHADDD    X4, X4, X4
	PACK32
	VMOVDQU    Y0, (DI)(AX*1)
	VMOVD      X4, R8
	VPEXTRD    $1, X4, R9
	MOVW       R8, 256(DI)(DX*4)
	MOVW       R9, 258(DI)(DX*4)
	ADDL       R9, R8
	MOVW       R8, 288(DI)(DX*2)
	ADDQ       $32, AX
	INCQ       DX
	CMPQ       DX, $8
	JLT        group

next:
	ADDQ $1024, SI
	ADDQ $320, DI
	DECQ CX
	JMP  sb

done:
	VZEROUPPER
	RET

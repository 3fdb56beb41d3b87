//go:build amd64 && !noasm

#include "textflag.h"

// Constants of GELU (tanh form) and of the rational tanh of tanh32.
DATA geluConst<>+0(SB)/4, $0x3f000000 // half
DATA geluConst<>+4(SB)/4, $0x3f800000 // one
DATA geluConst<>+8(SB)/4, $0x3f4c422a // geluc
DATA geluConst<>+12(SB)/4, $0x3d122279 // gelucA
DATA geluConst<>+16(SB)/4, $0x40fcf84f // clamp
DATA geluConst<>+20(SB)/4, $0xc0fcf84f // nclamp
DATA geluConst<>+24(SB)/4, $0xa59f25c0 // p13
DATA geluConst<>+28(SB)/4, $0x2a61337e // p11
DATA geluConst<>+32(SB)/4, $0xaebd37ff // p9
DATA geluConst<>+36(SB)/4, $0x335c0041 // p7
DATA geluConst<>+40(SB)/4, $0x3779434a // p5
DATA geluConst<>+44(SB)/4, $0x3a270ded // p3
DATA geluConst<>+48(SB)/4, $0x3ba059dc // p1
DATA geluConst<>+52(SB)/4, $0x35a0d3d8 // q6
DATA geluConst<>+56(SB)/4, $0x38f895d6 // q4
DATA geluConst<>+60(SB)/4, $0x3b14aa05 // q2
DATA geluConst<>+64(SB)/4, $0x3ba059dd // q0
DATA geluConst<>+68(SB)/4, $0x3e095d4f // three_a
GLOBL geluConst<>(SB), RODATA|NOPTR, $72

// func geluAVX512(dst, th, src *float32, n int)
// For i < n (a multiple of 16): t[i] = tanh(c·(u + a·u³)), g[i] = u/2·(1 + t[i]).
TEXT ·geluAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ th+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	SHRQ $4, CX
	JZ   gf_done
	VBROADCASTSS geluConst<>+0(SB), Z20
	VBROADCASTSS geluConst<>+4(SB), Z21
	VBROADCASTSS geluConst<>+8(SB), Z22
	VBROADCASTSS geluConst<>+12(SB), Z23
	VBROADCASTSS geluConst<>+16(SB), Z24
	VBROADCASTSS geluConst<>+20(SB), Z25

gf_loop:
	VMOVUPS (SI), Z0            // x
	VMULPS  Z0, Z0, Z1          // x²
	VMOVAPS Z22, Z2
	VFMADD231PS Z1, Z23, Z2     // c + c·a·x²
	VMULPS  Z2, Z0, Z2          // z
	VMINPS  Z24, Z2, Z2
	VMAXPS  Z25, Z2, Z2
	VMULPS  Z2, Z2, Z3          // z²
	VBROADCASTSS geluConst<>+24(SB), Z4
	VBROADCASTSS geluConst<>+28(SB), Z5
	VFMADD213PS Z5, Z3, Z4      // p = p·z² + p11
	VBROADCASTSS geluConst<>+32(SB), Z5
	VFMADD213PS Z5, Z3, Z4
	VBROADCASTSS geluConst<>+36(SB), Z5
	VFMADD213PS Z5, Z3, Z4
	VBROADCASTSS geluConst<>+40(SB), Z5
	VFMADD213PS Z5, Z3, Z4
	VBROADCASTSS geluConst<>+44(SB), Z5
	VFMADD213PS Z5, Z3, Z4
	VBROADCASTSS geluConst<>+48(SB), Z5
	VFMADD213PS Z5, Z3, Z4
	VBROADCASTSS geluConst<>+52(SB), Z6
	VBROADCASTSS geluConst<>+56(SB), Z7
	VFMADD213PS Z7, Z3, Z6
	VBROADCASTSS geluConst<>+60(SB), Z7
	VFMADD213PS Z7, Z3, Z6
	VBROADCASTSS geluConst<>+64(SB), Z7
	VFMADD213PS Z7, Z3, Z6
	VMULPS  Z4, Z2, Z4          // z·p
	VDIVPS  Z6, Z4, Z4          // th = z·p/q
	VMOVUPS Z4, (DX)
	VADDPS  Z21, Z4, Z4         // 1 + th
	VMULPS  Z20, Z0, Z0         // x/2
	VMULPS  Z4, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	DECQ CX
	JNZ  gf_loop

gf_done:
	VZEROUPPER
	RET

// func geluBackwardAVX512(dx, dy, src, th *float32, n int)
// For i < n (a multiple of 16): du[i] = dg[i]·gelu'(u[i]) with t[i] the
// forward tanh: gelu' = (1+t)/2 + u/2·(1−t²)·c·(1 + 3a·u²).
TEXT ·geluBackwardAVX512(SB), NOSPLIT, $0-40
	MOVQ dx+0(FP), DI
	MOVQ dy+8(FP), BX
	MOVQ src+16(FP), SI
	MOVQ th+24(FP), DX
	MOVQ n+32(FP), CX
	SHRQ $4, CX
	JZ   gb_done
	VBROADCASTSS geluConst<>+0(SB), Z20
	VBROADCASTSS geluConst<>+4(SB), Z21
	VBROADCASTSS geluConst<>+8(SB), Z22
	VBROADCASTSS geluConst<>+68(SB), Z23

gb_loop:
	VMOVUPS (SI), Z0            // x
	VMOVUPS (DX), Z1            // th
	VMULPS  Z0, Z0, Z2          // x²
	VMOVAPS Z21, Z3
	VFMADD231PS Z2, Z23, Z3     // 1 + 3a·x²
	VMULPS  Z22, Z3, Z3         // c·(1 + 3a·x²)
	VMOVAPS Z21, Z4
	VFNMADD231PS Z1, Z1, Z4     // 1 − th²
	VMULPS  Z4, Z3, Z3
	VMULPS  Z20, Z0, Z0         // x/2
	VMULPS  Z0, Z3, Z3          // x/2·(1−th²)·c·(1+3a·x²)
	VADDPS  Z21, Z1, Z1
	VFMADD231PS Z1, Z20, Z3     // + (1+th)/2
	VMULPS  (BX), Z3, Z3
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, BX
	ADDQ $64, DI
	DECQ CX
	JNZ  gb_loop

gb_done:
	VZEROUPPER
	RET

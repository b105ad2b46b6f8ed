//go:build !purego

// The input and output transforms of the Winograd F(2x2, 3x3) convolution
// (winograd.go), sixteen 2x2 output tiles at a time, one tile per lane.
// V = Bᵀ·d·B and Y = Aᵀ·M·A with
//
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  Aᵀ = [1 1 1 0; 0 1 −1 −1]
//
// (Lavin and Gray 2015, "Fast Algorithms for Convolutional Neural
// Networks"). Tile j reads columns 2j … 2j+3 of four input rows: two loads
// at column 32g and two at 32g+2 are split into even and odd columns by
// VPERMI2PS. The output's two columns per tile are interleaved back the
// same way.

#include "textflag.h"

// Even and odd lanes of two registers; their interleaving, low and high.
DATA winoEven<>+0(SB)/8, $0x0000000200000000
DATA winoEven<>+8(SB)/8, $0x0000000600000004
DATA winoEven<>+16(SB)/8, $0x0000000a00000008
DATA winoEven<>+24(SB)/8, $0x0000000e0000000c
DATA winoEven<>+32(SB)/8, $0x0000001200000010
DATA winoEven<>+40(SB)/8, $0x0000001600000014
DATA winoEven<>+48(SB)/8, $0x0000001a00000018
DATA winoEven<>+56(SB)/8, $0x0000001e0000001c
GLOBL winoEven<>(SB), RODATA|NOPTR, $64

DATA winoOdd<>+0(SB)/8, $0x0000000300000001
DATA winoOdd<>+8(SB)/8, $0x0000000700000005
DATA winoOdd<>+16(SB)/8, $0x0000000b00000009
DATA winoOdd<>+24(SB)/8, $0x0000000f0000000d
DATA winoOdd<>+32(SB)/8, $0x0000001300000011
DATA winoOdd<>+40(SB)/8, $0x0000001700000015
DATA winoOdd<>+48(SB)/8, $0x0000001b00000019
DATA winoOdd<>+56(SB)/8, $0x0000001f0000001d
GLOBL winoOdd<>(SB), RODATA|NOPTR, $64

DATA winoLo<>+0(SB)/8, $0x0000001000000000
DATA winoLo<>+8(SB)/8, $0x0000001100000001
DATA winoLo<>+16(SB)/8, $0x0000001200000002
DATA winoLo<>+24(SB)/8, $0x0000001300000003
DATA winoLo<>+32(SB)/8, $0x0000001400000004
DATA winoLo<>+40(SB)/8, $0x0000001500000005
DATA winoLo<>+48(SB)/8, $0x0000001600000006
DATA winoLo<>+56(SB)/8, $0x0000001700000007
GLOBL winoLo<>(SB), RODATA|NOPTR, $64

DATA winoHi<>+0(SB)/8, $0x0000001800000008
DATA winoHi<>+8(SB)/8, $0x0000001900000009
DATA winoHi<>+16(SB)/8, $0x0000001a0000000a
DATA winoHi<>+24(SB)/8, $0x0000001b0000000b
DATA winoHi<>+32(SB)/8, $0x0000001c0000000c
DATA winoHi<>+40(SB)/8, $0x0000001d0000000d
DATA winoHi<>+48(SB)/8, $0x0000001e0000000e
DATA winoHi<>+56(SB)/8, $0x0000001f0000000f
GLOBL winoHi<>(SB), RODATA|NOPTR, $64

// SPLIT loads the row at register r: columns 2j, 2j+1, 2j+2, 2j+3 of the
// sixteen tiles into c0..c3.
#define SPLIT(r, c0, c1, c2, c3) \
	VMOVUPS   (r), Z16; \
	VMOVUPS   64(r), Z17; \
	VMOVUPS   8(r), Z18; \
	VMOVUPS   72(r), Z19; \
	VMOVUPS   winoEven<>(SB), c0; \
	VPERMI2PS Z17, Z16, c0; \
	VMOVUPS   winoOdd<>(SB), c1; \
	VPERMI2PS Z17, Z16, c1; \
	VMOVUPS   winoEven<>(SB), c2; \
	VPERMI2PS Z19, Z18, c2; \
	VMOVUPS   winoOdd<>(SB), c3; \
	VPERMI2PS Z19, Z18, c3

// COLT is Bᵀ applied down column c: t0 = d0 − d2, t1 = d1 + d2,
// t2 = d2 − d1, t3 = d1 − d3 (d_r = row r's register of that column).
#define COLT(d0, d1, d2, d3, t0, t1, t2, t3) \
	VSUBPS d2, d0, t0; \
	VADDPS d2, d1, t1; \
	VSUBPS d1, d2, t2; \
	VSUBPS d3, d1, t3

// ROWT is B applied along row i of t, into v0..v3.
#define ROWT(t0, t1, t2, t3, v0, v1, v2, v3) \
	VSUBPS t2, t0, v0; \
	VADDPS t2, t1, v1; \
	VSUBPS t1, t2, v2; \
	VSUBPS t3, t1, v3

// PUT stores z to AX under K1 and moves AX to the next ξ.
#define PUT(z) \
	VMOVUPS z, K1, (AX); \
	ADDQ    R10, AX

// func winoInputAVX512(src *float32, ls int, dst *float32, ld, n int)
//
// For tiles j < n: V_ξ[j] = (Bᵀ·d_j·B)[ξ], where d_j is the 4x4 patch at
// columns 2j … 2j+3 of the four rows at src (ls floats apart), and V_ξ is at
// dst + ξ·ld floats. Reads columns below 32·⌈n/16⌉ + 2 of each row; writes
// only the n tiles.
TEXT ·winoInputAVX512(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), SI
	MOVQ ls+8(FP), R8
	SHLQ $2, R8
	MOVQ dst+16(FP), DI
	MOVQ ld+24(FP), R10
	SHLQ $2, R10
	MOVQ n+32(FP), CX
	LEAQ (SI)(R8*1), R12
	LEAQ (SI)(R8*2), R13
	LEAQ (R12)(R8*2), R9

group:
	MOVL  $0xffff, AX
	CMPQ  CX, $16
	JGE   full
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX

full:
	KMOVW AX, K1
	SPLIT(SI, Z0, Z1, Z2, Z3)
	SPLIT(R12, Z4, Z5, Z6, Z7)
	SPLIT(R13, Z8, Z9, Z10, Z11)
	SPLIT(R9, Z12, Z13, Z14, Z15)
	COLT(Z0, Z4, Z8, Z12, Z16, Z20, Z24, Z28)
	COLT(Z1, Z5, Z9, Z13, Z17, Z21, Z25, Z29)
	COLT(Z2, Z6, Z10, Z14, Z18, Z22, Z26, Z30)
	COLT(Z3, Z7, Z11, Z15, Z19, Z23, Z27, Z31)
	ROWT(Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	ROWT(Z20, Z21, Z22, Z23, Z4, Z5, Z6, Z7)
	ROWT(Z24, Z25, Z26, Z27, Z8, Z9, Z10, Z11)
	ROWT(Z28, Z29, Z30, Z31, Z12, Z13, Z14, Z15)
	MOVQ DI, AX
	PUT(Z0)
	PUT(Z1)
	PUT(Z2)
	PUT(Z3)
	PUT(Z4)
	PUT(Z5)
	PUT(Z6)
	PUT(Z7)
	PUT(Z8)
	PUT(Z9)
	PUT(Z10)
	PUT(Z11)
	PUT(Z12)
	PUT(Z13)
	PUT(Z14)
	PUT(Z15)
	ADDQ $64, DI
	ADDQ $128, SI
	ADDQ $128, R12
	ADDQ $128, R13
	ADDQ $128, R9
	SUBQ $16, CX
	JG   group
	VZEROUPPER
	RET

// GET loads ξ's sixteen tiles from AX under K1 (zeros past n) and moves AX
// to the next ξ.
#define GET(z) \
	VMOVUPS.Z (AX), K1, z; \
	ADDQ      R10, AX

// func winoOutputAVX512(src *float32, ld int, dst *float32, ldd, rows, n, w int, bias float32)
//
// For tiles j < n: the 2x2 block Aᵀ·M_j·A + bias, M_j[ξ] at src + ξ·ld + j,
// to columns 2j and 2j+1 of the first rows (1 or 2) rows at dst (ldd floats
// apart), columns below w only.
TEXT ·winoOutputAVX512(SB), NOSPLIT, $0-60
	MOVQ         src+0(FP), SI
	MOVQ         ld+8(FP), R10
	SHLQ         $2, R10
	MOVQ         dst+16(FP), DI
	MOVQ         ldd+24(FP), R8
	SHLQ         $2, R8
	MOVQ         rows+32(FP), R11
	MOVQ         n+40(FP), R12
	MOVQ         w+48(FP), DX
	VBROADCASTSS bias+56(FP), Z28

ogroup:
	// K1: the group's tiles; K2, K3: its output columns, low and high 16.
	MOVL  $0xffff, AX
	CMPQ  R12, $16
	JGE   ofull
	MOVQ  R12, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX

ofull:
	KMOVW AX, K1
	MOVQ  DX, CX
	MOVL  $0xffff, AX
	CMPQ  CX, $16
	JGE   olo
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX

olo:
	KMOVW AX, K2
	SUBQ  $16, CX
	MOVL  $0xffff, AX
	CMPQ  CX, $16
	JGE   ohi
	XORL  AX, AX
	CMPQ  CX, $0
	JLE   ohi
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX

ohi:
	KMOVW AX, K3
	MOVQ  SI, AX
	GET(Z0)
	GET(Z1)
	GET(Z2)
	GET(Z3)
	GET(Z4)
	GET(Z5)
	GET(Z6)
	GET(Z7)
	GET(Z8)
	GET(Z9)
	GET(Z10)
	GET(Z11)
	GET(Z12)
	GET(Z13)
	GET(Z14)
	GET(Z15)

	// s0_j = M0j + M1j + M2j, s1_j = M1j − M2j − M3j.
	VADDPS Z4, Z0, Z16
	VADDPS Z8, Z16, Z16
	VADDPS Z5, Z1, Z17
	VADDPS Z9, Z17, Z17
	VADDPS Z6, Z2, Z18
	VADDPS Z10, Z18, Z18
	VADDPS Z7, Z3, Z19
	VADDPS Z11, Z19, Z19
	VSUBPS Z8, Z4, Z20
	VSUBPS Z12, Z20, Z20
	VSUBPS Z9, Z5, Z21
	VSUBPS Z13, Z21, Z21
	VSUBPS Z10, Z6, Z22
	VSUBPS Z14, Z22, Z22
	VSUBPS Z11, Z7, Z23
	VSUBPS Z15, Z23, Z23

	// y_i0 = s_i0 + s_i1 + s_i2 + bias, y_i1 = s_i1 − s_i2 − s_i3 + bias.
	VADDPS Z17, Z16, Z24
	VADDPS Z18, Z24, Z24
	VADDPS Z28, Z24, Z24
	VSUBPS Z18, Z17, Z25
	VSUBPS Z19, Z25, Z25
	VADDPS Z28, Z25, Z25
	VADDPS Z21, Z20, Z26
	VADDPS Z22, Z26, Z26
	VADDPS Z28, Z26, Z26
	VSUBPS Z22, Z21, Z27
	VSUBPS Z23, Z27, Z27
	VADDPS Z28, Z27, Z27

	VMOVUPS   winoLo<>(SB), Z0
	VPERMI2PS Z25, Z24, Z0
	VMOVUPS   winoHi<>(SB), Z1
	VPERMI2PS Z25, Z24, Z1
	VMOVUPS   Z0, K2, (DI)
	VMOVUPS   Z1, K3, 64(DI)
	CMPQ      R11, $2
	JLT       onext
	VMOVUPS   winoLo<>(SB), Z2
	VPERMI2PS Z27, Z26, Z2
	VMOVUPS   winoHi<>(SB), Z3
	VPERMI2PS Z27, Z26, Z3
	VMOVUPS   Z2, K2, (DI)(R8*1)
	VMOVUPS   Z3, K3, 64(DI)(R8*1)

onext:
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, DX
	SUBQ $16, R12
	JG   ogroup
	VZEROUPPER
	RET

//go:build !purego

// Vector kernels for softmaxRow (softmax.go, dispatched in softmax_amd64.go):
// the row maximum, e^(x−m) in place with the sum of the results, and the
// final scaling; and, built on the same exponential, the SiLU and GEGLU
// activations with their derivatives (activation.go, AVX-512 only). The exponential is expf's algorithm (exp.go) lane-wise:
// Cody–Waite reduction x = q·ln2 + s with q rounded to nearest, the same
// degree-6 polynomial in s (with FMAs), 2^q built in the exponent bits, and
// lanes with x < −87.33654 (−Inf included) set to 0. x must be ≤ 88 (true
// for x = row[i] − max(row)); NaN lanes stay NaN.
//
// Tails of n%16 (n%8) elements use masked loads and stores, which touch no
// memory outside the row.

#include "textflag.h"

#define F32X8(name, bits) \
	DATA name+0(SB)/4, $bits; \
	DATA name+4(SB)/4, $bits; \
	DATA name+8(SB)/4, $bits; \
	DATA name+12(SB)/4, $bits; \
	DATA name+16(SB)/4, $bits; \
	DATA name+20(SB)/4, $bits; \
	DATA name+24(SB)/4, $bits; \
	DATA name+28(SB)/4, $bits; \
	GLOBL name(SB), RODATA|NOPTR, $32

F32X8(expLog2e<>, 0x3fb8aa3b)  // 1.442695
F32X8(expL2u<>, 0x3f317200)    // 0.693145751953125
F32X8(expL2l<>, 0x35bfbe8e)    // 1.428606765330187045e-06
F32X8(expC6<>, 0x39502bda)     // 0.000198527617612853646278381
F32X8(expC5<>, 0x3ab696c9)     // 0.00139304355252534151077271
F32X8(expC4<>, 0x3c0888a6)     // 0.00833336077630519866943359
F32X8(expC3<>, 0x3d2aaa7a)     // 0.0416664853692054748535156
F32X8(expC2<>, 0x3e2aaaab)     // 0.166666671633720397949219
F32X8(expHalf<>, 0x3f000000)   // 0.5
F32X8(expOne<>, 0x3f800000)    // 1
F32X8(exp127<>, 0x0000007f)    // int32 127
F32X8(expCut<>, 0xc2aeac4f)    // -87.33654
F32X8(negInf<>, 0xff800000)    // -Inf

// Eight all-ones words then eight zeros: the 8 words at offset 4·(8−r)
// select the first r lanes.
DATA tailMask<>+0(SB)/8, $0xffffffffffffffff
DATA tailMask<>+8(SB)/8, $0xffffffffffffffff
DATA tailMask<>+16(SB)/8, $0xffffffffffffffff
DATA tailMask<>+24(SB)/8, $0xffffffffffffffff
DATA tailMask<>+32(SB)/8, $0
DATA tailMask<>+40(SB)/8, $0
DATA tailMask<>+48(SB)/8, $0
DATA tailMask<>+56(SB)/8, $0
GLOBL tailMask<>(SB), RODATA|NOPTR, $64

// ---- AVX-512. Constants: Z16 m, Z17 log2e, Z18 l2u, Z19 l2l, Z20..Z25
// the polynomial (c6..0.5), Z26 1, Z27 127, Z28 the cut-off, Z29 the sum,
// Z30 zero. EXP512 takes x in Z0 and leaves e^(x−m) in Z3.

// EXP512_CONSTS loads EXP512's constants, Z17..Z28, and zeroes Z30.
#define EXP512_CONSTS \
	VBROADCASTSS expLog2e<>(SB), Z17; \
	VBROADCASTSS expL2u<>(SB), Z18; \
	VBROADCASTSS expL2l<>(SB), Z19; \
	VBROADCASTSS expC6<>(SB), Z20; \
	VBROADCASTSS expC5<>(SB), Z21; \
	VBROADCASTSS expC4<>(SB), Z22; \
	VBROADCASTSS expC3<>(SB), Z23; \
	VBROADCASTSS expC2<>(SB), Z24; \
	VBROADCASTSS expHalf<>(SB), Z25; \
	VBROADCASTSS expOne<>(SB), Z26; \
	VPBROADCASTD exp127<>(SB), Z27; \
	VBROADCASTSS expCut<>(SB), Z28; \
	VPXORD Z30, Z30, Z30

// TAILMASK sets K1 to the low CX lanes (0 < CX ≤ 16), with r as scratch.
#define TAILMASK(r) \
	MOVL  $1, r; \
	SHLL  CX, r; \
	DECL  r; \
	KMOVW r, K1

// EXPLANES computes e^(x−m) for x in register x into e, with q, s and t
// as scratch and k as the cut-off mask (the algorithm at the top of this
// file). EXP512, EXP512B and EXP512C are its three register sets, for loops
// that run two or three independent dependency chains.
#define EXPLANES(x, q, s, e, t, k) \
	VSUBPS Z16, x, x; \
	VMULPS Z17, x, q; \
	VRNDSCALEPS $0, q, q; \
	VMOVAPS x, s; \
	VFNMADD231PS Z18, q, s; \
	VFNMADD231PS Z19, q, s; \
	VMOVAPS Z20, e; \
	VFMADD213PS Z21, s, e; \
	VFMADD213PS Z22, s, e; \
	VFMADD213PS Z23, s, e; \
	VFMADD213PS Z24, s, e; \
	VFMADD213PS Z25, s, e; \
	VMULPS s, s, t; \
	VFMADD213PS s, t, e; \
	VADDPS Z26, e, e; \
	VCVTPS2DQ q, q; \
	VPADDD Z27, q, q; \
	VPSLLD $23, q, q; \
	VMULPS q, e, e; \
	VCMPPS $1, Z28, x, k; \
	VMOVAPS Z30, k, e

// x in Z0, result in Z3.
#define EXP512 EXPLANES(Z0, Z1, Z2, Z3, Z4, K2)

// Second lane set for the unrolled loops: x in Z5, result in Z8.
#define EXP512B EXPLANES(Z5, Z6, Z7, Z8, Z9, K3)

// Third lane set: x in Z10, result in Z13.
#define EXP512C EXPLANES(Z10, Z11, Z12, Z13, Z14, K4)

// func expSumAVX512(p *float32, n int, m float32) float32
TEXT ·expSumAVX512(SB), NOSPLIT, $0-28
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Z16
	EXP512_CONSTS
	VPXORD Z29, Z29, Z29
	VPXORD Z31, Z31, Z31

loop32:
	CMPQ CX, $32
	JLT  loop16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z5
	EXP512
	EXP512B
	VMOVUPS Z3, (SI)
	VMOVUPS Z8, 64(SI)
	VADDPS  Z3, Z29, Z29
	VADDPS  Z8, Z31, Z31
	ADDQ    $128, SI
	SUBQ    $32, CX
	JMP     loop32

loop16:
	CMPQ CX, $16
	JLT  tail
	VMOVUPS (SI), Z0
	EXP512
	VMOVUPS Z3, (SI)
	VADDPS  Z3, Z29, Z29
	ADDQ    $64, SI
	SUBQ    $16, CX

tail:
	TESTQ CX, CX
	JZ    reduce
	TAILMASK(AX)
	VMOVUPS.Z (SI), K1, Z0
	EXP512
	VMOVUPS Z3, K1, (SI)
	VADDPS  Z3, Z29, K1, Z29

reduce:
	VADDPS        Z31, Z29, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VADDPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VADDSS        X1, X0, X0
	VMOVSS        X0, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX512(p *float32, n int) float32
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS negInf<>(SB), Z0
	VMOVAPS Z0, Z1
	VMOVAPS Z0, Z2
	VMOVAPS Z0, Z3

max64:
	CMPQ CX, $64
	JLT  max16
	VMAXPS (SI), Z0, Z0
	VMAXPS 64(SI), Z1, Z1
	VMAXPS 128(SI), Z2, Z2
	VMAXPS 192(SI), Z3, Z3
	ADDQ   $256, SI
	SUBQ   $64, CX
	JMP    max64

max16:
	VMAXPS Z1, Z0, Z0
	VMAXPS Z3, Z2, Z2
	VMAXPS Z2, Z0, Z0

max16loop:
	CMPQ CX, $16
	JLT  maxtail
	VMAXPS (SI), Z0, Z0
	ADDQ   $64, SI
	SUBQ   $16, CX
	JMP    max16loop

maxtail:
	TESTQ CX, CX
	JZ    maxreduce
	TAILMASK(AX)
	VMAXPS (SI), Z0, K1, Z0

maxreduce:
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXSS        X1, X0, X0
	VMOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX512(p *float32, n int, s float32)
TEXT ·scaleAVX512(SB), NOSPLIT, $0-20
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Z1

scale32:
	CMPQ CX, $32
	JLT  scale16
	VMULPS  (SI), Z1, Z0
	VMULPS  64(SI), Z1, Z2
	VMOVUPS Z0, (SI)
	VMOVUPS Z2, 64(SI)
	ADDQ    $128, SI
	SUBQ    $32, CX
	JMP     scale32

scale16:
	CMPQ CX, $16
	JLT  scaletail
	VMULPS  (SI), Z1, Z0
	VMOVUPS Z0, (SI)
	ADDQ    $64, SI
	SUBQ    $16, CX

scaletail:
	TESTQ CX, CX
	JZ    scaledone
	TAILMASK(AX)
	VMOVUPS.Z (SI), K1, Z0
	VMULPS  Z1, Z0, Z0
	VMOVUPS Z0, K1, (SI)

scaledone:
	VZEROUPPER
	RET

// HSUM512 reduces Z0's lanes to their sum in X0 (clobbers Z1).
#define HSUM512 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	VEXTRACTF128  $1, Y0, X1; \
	VADDPS        X1, X0, X0; \
	VMOVHLPS      X0, X0, X1; \
	VADDPS        X1, X0, X0; \
	VMOVSHDUP     X0, X1; \
	VADDSS        X1, X0, X0

// func softmaxRowsAVX512(p *float32, n, rows int)
//
// Softmax of each of rows consecutive rows of n floats (n, rows ≥ 1) in
// place. Short rows (77 text tokens) give one row's exponentials too little
// independent work to hide EXP512's latency, so the block goes in passes:
// each row shifted by its maximum (0 for a row of all −Inf, which then
// exponentiates to zeros), e^x over the whole block three registers at a
// time, then each row's sum and scaling by its reciprocal (skipped for a
// zero sum: the all −Inf rows). A row holding a NaN comes out all NaN (its
// sum is NaN), as from softmaxRow's passes.
TEXT ·softmaxRowsAVX512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), DX
	MOVQ rows+16(FP), BX
	EXP512_CONSTS
	MOVQ SI, DI
	MOVQ BX, R11

shift:
	// The row's maximum m, then x −= m.
	MOVQ         DI, AX
	MOVQ         DX, CX
	VBROADCASTSS negInf<>(SB), Z0

rmax:
	CMPQ   CX, $16
	JLE    rmaxlast
	VMAXPS (AX), Z0, Z0
	ADDQ   $64, AX
	SUBQ   $16, CX
	JMP    rmax

rmaxlast:
	TAILMASK(R10)
	VMAXPS        (AX), Z0, K1, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXSS        X1, X0, X0
	VUCOMISS      negInf<>(SB), X0
	JPS           rfinite      // NaN: on, the sum makes the row NaN
	JNE           rfinite
	VXORPS        X0, X0, X0   // all −Inf: shift by 0

rfinite:
	VBROADCASTSS X0, Z1
	MOVQ         DI, AX
	MOVQ         DX, CX

rsub:
	CMPQ    CX, $16
	JLE     rsublast
	VMOVUPS (AX), Z0
	VSUBPS  Z1, Z0, Z0
	VMOVUPS Z0, (AX)
	ADDQ    $64, AX
	SUBQ    $16, CX
	JMP     rsub

rsublast:
	TAILMASK(R10)
	VMOVUPS.Z (AX), K1, Z0
	VSUBPS    Z1, Z0, Z0
	VMOVUPS   Z0, K1, (AX)
	LEAQ      (DI)(DX*4), DI
	DECQ      R11
	JNZ       shift

	// e^x over the whole block (EXP512 with m = 0).
	VPXORD Z16, Z16, Z16
	MOVQ   DX, CX
	IMULQ  BX, CX
	MOVQ   SI, AX

rexp:
	CMPQ    CX, $48
	JLT     rexp16
	VMOVUPS (AX), Z0
	VMOVUPS 64(AX), Z5
	VMOVUPS 128(AX), Z10
	EXP512
	EXP512B
	EXP512C
	VMOVUPS Z3, (AX)
	VMOVUPS Z8, 64(AX)
	VMOVUPS Z13, 128(AX)
	ADDQ    $192, AX
	SUBQ    $48, CX
	JMP     rexp

rexp16:
	CMPQ    CX, $16
	JLT     rexptail
	VMOVUPS (AX), Z0
	EXP512
	VMOVUPS Z3, (AX)
	ADDQ    $64, AX
	SUBQ    $16, CX
	JMP     rexp16

rexptail:
	TESTQ     CX, CX
	JZ        rnorm
	TAILMASK(R10)
	VMOVUPS.Z (AX), K1, Z0
	EXP512
	VMOVUPS   Z3, K1, (AX)

rnorm:
	// Each row's sum s, then x *= 1/s.
	MOVQ   SI, AX
	MOVQ   DX, CX
	VPXORD Z0, Z0, Z0
	VPXORD Z2, Z2, Z2

rsum:
	CMPQ   CX, $32
	JLE    rsumlast
	VADDPS (AX), Z0, Z0
	VADDPS 64(AX), Z2, Z2
	ADDQ   $128, AX
	SUBQ   $32, CX
	JMP    rsum

rsumlast:
	CMPQ   CX, $16
	JLE    rsumtail
	VADDPS (AX), Z0, Z0
	ADDQ   $64, AX
	SUBQ   $16, CX

rsumtail:
	TAILMASK(R10)
	VADDPS   (AX), Z2, K1, Z2
	VADDPS   Z2, Z0, Z0
	HSUM512
	VXORPS   X1, X1, X1
	VUCOMISS X1, X0
	JPS      rdiv  // a NaN sum (a NaN in the row): scaled by NaN, all NaN
	JEQ      rnext // a zero sum, a row of all −Inf: all zeros already

rdiv:
	VMOVSS   expOne<>(SB), X1
	VDIVSS   X0, X1, X1
	VBROADCASTSS X1, Z1
	MOVQ     SI, AX
	MOVQ     DX, CX

rscale:
	CMPQ    CX, $16
	JLE     rscalelast
	VMULPS  (AX), Z1, Z0
	VMOVUPS Z0, (AX)
	ADDQ    $64, AX
	SUBQ    $16, CX
	JMP     rscale

rscalelast:
	TAILMASK(R10)
	VMOVUPS.Z (AX), K1, Z0
	VMULPS    Z1, Z0, Z0
	VMOVUPS   Z0, K1, (AX)

rnext:
	LEAQ (SI)(DX*4), SI
	DECQ BX
	JNZ  rnorm
	VZEROUPPER
	RET

// ---- AVX2 + FMA. Y15 m, Y14 the sum, Y13 the tail mask, Y5..Y12 log2e,
// l2u, l2l and the first five polynomial coefficients; the rest are memory
// operands. EXP256 takes x in Y0 and leaves e^(x−m) in Y3.

#define EXP256 \
	VSUBPS Y15, Y0, Y0; \
	VMULPS Y5, Y0, Y1; \
	VROUNDPS $0, Y1, Y1; \
	VMOVAPS Y0, Y2; \
	VFNMADD231PS Y6, Y1, Y2; \
	VFNMADD231PS Y7, Y1, Y2; \
	VMOVAPS Y8, Y3; \
	VFMADD213PS Y9, Y2, Y3; \
	VFMADD213PS Y10, Y2, Y3; \
	VFMADD213PS Y11, Y2, Y3; \
	VFMADD213PS Y12, Y2, Y3; \
	VFMADD213PS expHalf<>(SB), Y2, Y3; \
	VMULPS Y2, Y2, Y4; \
	VFMADD213PS Y2, Y4, Y3; \
	VADDPS expOne<>(SB), Y3, Y3; \
	VCVTPS2DQ Y1, Y1; \
	VPADDD exp127<>(SB), Y1, Y1; \
	VPSLLD $23, Y1, Y1; \
	VMULPS Y1, Y3, Y3; \
	VCMPPS $1, expCut<>(SB), Y0, Y4; \
	VANDNPS Y3, Y4, Y3

// func expSumAVX2(p *float32, n int, m float32) float32
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y15
	VMOVUPS expLog2e<>(SB), Y5
	VMOVUPS expL2u<>(SB), Y6
	VMOVUPS expL2l<>(SB), Y7
	VMOVUPS expC6<>(SB), Y8
	VMOVUPS expC5<>(SB), Y9
	VMOVUPS expC4<>(SB), Y10
	VMOVUPS expC3<>(SB), Y11
	VMOVUPS expC2<>(SB), Y12
	VXORPS  Y14, Y14, Y14

loop8:
	CMPQ CX, $8
	JLT  tail2
	VMOVUPS (SI), Y0
	EXP256
	VMOVUPS Y3, (SI)
	VADDPS  Y3, Y14, Y14
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     loop8

tail2:
	TESTQ CX, CX
	JZ    reduce2
	LEAQ  tailMask<>(SB), AX
	MOVQ  $8, DX
	SUBQ  CX, DX
	VMOVDQU    (AX)(DX*4), Y13
	VMASKMOVPS (SI), Y13, Y0
	EXP256
	VANDPS     Y13, Y3, Y3
	VMASKMOVPS Y3, Y13, (SI)
	VADDPS     Y3, Y14, Y14

reduce2:
	VEXTRACTF128 $1, Y14, X1
	VADDPS       X1, X14, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX2(p *float32, n int) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS negInf<>(SB), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3

max32b:
	CMPQ CX, $32
	JLT  max8b
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	VMAXPS 64(SI), Y2, Y2
	VMAXPS 96(SI), Y3, Y3
	ADDQ   $128, SI
	SUBQ   $32, CX
	JMP    max32b

max8b:
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0

max8loop:
	CMPQ CX, $8
	JLT  maxtail2
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JMP    max8loop

maxtail2:
	TESTQ CX, CX
	JZ    maxreduce2
	LEAQ  tailMask<>(SB), AX
	MOVQ  $8, DX
	SUBQ  CX, DX
	VMOVDQU    (AX)(DX*4), Y13
	VMASKMOVPS (SI), Y13, Y1
	VMOVUPS    negInf<>(SB), Y2
	VBLENDVPS  Y13, Y1, Y2, Y1
	VMAXPS     Y1, Y0, Y0

maxreduce2:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(p *float32, n int, s float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1

scale8:
	CMPQ CX, $8
	JLT  scaletail2
	VMULPS  (SI), Y1, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     scale8

scaletail2:
	TESTQ CX, CX
	JZ    scaledone2
	LEAQ  tailMask<>(SB), AX
	MOVQ  $8, DX
	SUBQ  CX, DX
	VMOVDQU    (AX)(DX*4), Y13
	VMASKMOVPS (SI), Y13, Y0
	VMULPS     Y1, Y0, Y0
	VMASKMOVPS Y0, Y13, (SI)

scaledone2:
	VZEROUPPER
	RET

// ---- SiLU, x·sigmoid(x) = x/(1+e^(−x)), AVX-512, with EXP512 at m = 0.
// −x is clamped at 88 (e^88 is finite; x/(1+e^88) rounds to −0 or a
// denormal, as x/(1+e^(−x)) does for x < −88). Z10 holds x, Z11 the
// incoming gradient, Z15 the clamp.

F32X8(expMax<>, 0x42b00000) // 88

#define SILU_CONSTS \
	VPXORD Z16, Z16, Z16; \
	EXP512_CONSTS; \
	VBROADCASTSS expMax<>(SB), Z15

// DENOM512 leaves 1+e^(−x), for x in Z10, in Z3.
#define DENOM512 \
	VSUBPS Z10, Z30, Z0; \
	VMINPS Z15, Z0, Z0; \
	EXP512; \
	VADDPS Z26, Z3, Z3

// SILUGRAD512 adds Z11·s·(1+x·(1−s)), s = sigmoid(x), for x in Z10, to Z12.
#define SILUGRAD512 \
	DENOM512; \
	VDIVPS      Z3, Z26, Z3; \
	VSUBPS      Z3, Z26, Z4; \
	VFMADD213PS Z26, Z10, Z4; \
	VMULPS      Z4, Z3, Z3; \
	VFMADD231PS Z11, Z3, Z12

// func siluAVX512(dst, src *float32, n int)
TEXT ·siluAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SILU_CONSTS

siluloop:
	CMPQ CX, $16
	JLT  silutail
	VMOVUPS (SI), Z10
	DENOM512
	VDIVPS  Z3, Z10, Z3
	VMOVUPS Z3, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     siluloop

silutail:
	TESTQ CX, CX
	JZ    silu_done
	TAILMASK(AX)
	VMOVUPS.Z (SI), K1, Z10
	DENOM512
	VDIVPS  Z3, Z10, Z3
	VMOVUPS Z3, K1, (DI)

silu_done:
	VZEROUPPER
	RET

// func siluGradAVX512(acc, grad, x *float32, n int): acc += grad·s·(1+x·(1−s)) with
// s = sigmoid(x), the derivative of x·s.
TEXT ·siluGradAVX512(SB), NOSPLIT, $0-32
	MOVQ acc+0(FP), DI
	MOVQ grad+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	SILU_CONSTS

sgloop:
	CMPQ CX, $16
	JLT  sgtail
	VMOVUPS (SI), Z10
	VMOVUPS (DX), Z11
	VMOVUPS (DI), Z12
	SILUGRAD512
	VMOVUPS     Z12, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DX
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         sgloop

sgtail:
	TESTQ CX, CX
	JZ    sg_done
	TAILMASK(AX)
	VMOVUPS.Z (SI), K1, Z10
	VMOVUPS.Z (DX), K1, Z11
	VMOVUPS.Z (DI), K1, Z12
	SILUGRAD512
	VMOVUPS     Z12, K1, (DI)

sg_done:
	VZEROUPPER
	RET

// ---- GEGLU, hidden·GELU(gate) with the exact GELU v·Φ(v), AVX-512. Φ comes
// from erf by Abramowitz & Stegun 7.1.26 as erf32 (activation.go) computes
// it: with t = 1/(1 + p·|v|/√2) and E = ½·t·(a1 + t·(a2 + … + t·a5))·e^(−v²/2),
// Φ(v) = 1 − E for v ≥ 0 and E for v < 0; Φ′(v) = φ(v) = e^(−v²/2)/√(2π).
// Constants: Z11..Z15 a1..a5, Z29 p/√2, Z31 1/√(2π), and EXP512's at m = 0.

F32X8(erfA1<>, 0x3e827906)    // 0.254829592
F32X8(erfA2<>, 0xbe91a98e)    // -0.284496736
F32X8(erfA3<>, 0x3fb5f0e3)    // 1.421413741
F32X8(erfA4<>, 0xbfba00e3)    // -1.453152027
F32X8(erfA5<>, 0x3f87dc22)    // 1.061405429
F32X8(erfPs<>, 0x3e6d3388)    // 0.3275911/√2 = 0.23164189
F32X8(invSqrt2Pi<>, 0x3ecc422a) // 0.3989422804

#define GEGLU_CONSTS \
	VPXORD Z16, Z16, Z16; \
	EXP512_CONSTS; \
	VBROADCASTSS erfA1<>(SB), Z11; \
	VBROADCASTSS erfA2<>(SB), Z12; \
	VBROADCASTSS erfA3<>(SB), Z13; \
	VBROADCASTSS erfA4<>(SB), Z14; \
	VBROADCASTSS erfA5<>(SB), Z15; \
	VBROADCASTSS erfPs<>(SB), Z29; \
	VBROADCASTSS invSqrt2Pi<>(SB), Z31

// PHI512 takes v in Z10 and leaves Φ(v) in Z8 and e^(−v²/2) in Z4
// (clobbers Z0..Z3, Z5..Z7, K2, K3).
#define PHI512 \
	VSUBPS Z10, Z30, Z5; \
	VMAXPS Z10, Z5, Z5; \
	VMOVAPS Z26, Z6; \
	VFMADD231PS Z29, Z5, Z6; \
	VDIVPS Z6, Z26, Z6; \
	VMOVAPS Z15, Z7; \
	VFMADD213PS Z14, Z6, Z7; \
	VFMADD213PS Z13, Z6, Z7; \
	VFMADD213PS Z12, Z6, Z7; \
	VFMADD213PS Z11, Z6, Z7; \
	VMULPS Z6, Z7, Z7; \
	VMULPS Z10, Z10, Z0; \
	VMULPS Z25, Z0, Z0; \
	VSUBPS Z0, Z30, Z0; \
	EXP512; \
	VMOVAPS Z3, Z4; \
	VMULPS Z7, Z3, Z3; \
	VMULPS Z25, Z3, Z3; \
	VSUBPS Z3, Z26, Z8; \
	VCMPPS $1, Z30, Z10, K3; \
	VMOVAPS Z3, K3, Z8

// GELUDERIV512 takes the gate v in Z10 and hidden h in Z9 and leaves
// GELU(v) in Z1 and h·GELU′(v) = h·(Φ(v) + v·φ(v)) in Z2 (and PHI512's
// clobbers).
#define GELUDERIV512 \
	PHI512; \
	VMULPS      Z10, Z8, Z1; \
	VMULPS      Z31, Z4, Z4; \
	VMOVAPS     Z8, Z2; \
	VFMADD231PS Z4, Z10, Z2; \
	VMULPS      Z9, Z2, Z2

// func gegluAVX512(dst, hidden, gate *float32, n int): dst = hidden·gate·Φ(gate).
TEXT ·gegluAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ hidden+8(FP), BX
	MOVQ gate+16(FP), SI
	MOVQ n+24(FP), CX
	GEGLU_CONSTS

gegluloop:
	CMPQ CX, $16
	JLT  geglutail
	VMOVUPS (SI), Z10
	VMOVUPS (BX), Z9
	PHI512
	VMULPS  Z10, Z8, Z1
	VMULPS  Z9, Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, BX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     gegluloop

geglutail:
	TESTQ CX, CX
	JZ    geglu_done
	TAILMASK(AX)
	VMOVUPS.Z (SI), K1, Z10
	VMOVUPS.Z (BX), K1, Z9
	PHI512
	VMULPS  Z10, Z8, Z1
	VMULPS  Z9, Z1, Z1
	VMOVUPS Z1, K1, (DI)

geglu_done:
	VZEROUPPER
	RET

// func gegluGradAVX512(accH, accGate, grad, hidden, gate *float32, n int):
// accH += grad·GELU(gate), accGate += grad·hidden·(Φ(gate) + gate·φ(gate)).
TEXT ·gegluGradAVX512(SB), NOSPLIT, $0-48
	MOVQ accH+0(FP), DI
	MOVQ accGate+8(FP), R8
	MOVQ grad+16(FP), DX
	MOVQ hidden+24(FP), BX
	MOVQ gate+32(FP), SI
	MOVQ n+40(FP), CX
	GEGLU_CONSTS

gglooop:
	CMPQ CX, $16
	JLT  ggtail
	VMOVUPS (SI), Z10
	VMOVUPS (BX), Z9
	GELUDERIV512
	VMOVUPS     (DX), Z7
	VMOVUPS     (DI), Z5
	VFMADD231PS Z1, Z7, Z5
	VMOVUPS     Z5, (DI)
	VMOVUPS     (R8), Z6
	VFMADD231PS Z2, Z7, Z6
	VMOVUPS     Z6, (R8)
	ADDQ        $64, SI
	ADDQ        $64, BX
	ADDQ        $64, DX
	ADDQ        $64, DI
	ADDQ        $64, R8
	SUBQ        $16, CX
	JMP         gglooop

ggtail:
	TESTQ CX, CX
	JZ    gg_done
	TAILMASK(AX)
	VMOVUPS.Z (SI), K1, Z10
	VMOVUPS.Z (BX), K1, Z9
	GELUDERIV512
	VMOVUPS.Z   (DX), K1, Z7
	VMOVUPS.Z   (DI), K1, Z5
	VFMADD231PS Z1, Z7, Z5
	VMOVUPS     Z5, K1, (DI)
	VMOVUPS.Z   (R8), K1, Z6
	VFMADD231PS Z2, Z7, Z6
	VMOVUPS     Z6, K1, (R8)

gg_done:
	VZEROUPPER
	RET

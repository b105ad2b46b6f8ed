//go:build !purego

// Micro-kernels for Packed.Sgemm (sgemm.go) and the CPUID probe that picks
// one (sgemm_amd64.go). Each kernel computes C = alpha·a·b + beta·C for one
// mr×nr block of C from packed micro-panels a [k×mr] and b [k×nr]:
//
//	func kernelMxN(k int, a, b, c *float32, ldc int, alpha, beta float32)
//
// The block of C stays in registers for the whole k loop (one FMA per
// vector of C per k step); with beta = 0, C is not read.

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// ---- AVX2 + FMA, 6×16: Y0..Y11 accumulate rows 0..5 (two YMM each),
// Y12/Y13 hold the k step's 16 values of b, Y14/Y15 broadcast values of a.

#define AVX2_STEP(q) \
	VMOVUPS (64*q)(BX), Y12; \
	VMOVUPS (64*q+32)(BX), Y13; \
	VBROADCASTSS (24*q)(AX), Y14; \
	VBROADCASTSS (24*q+4)(AX), Y15; \
	VFMADD231PS Y12, Y14, Y0; \
	VFMADD231PS Y13, Y14, Y1; \
	VFMADD231PS Y12, Y15, Y2; \
	VFMADD231PS Y13, Y15, Y3; \
	VBROADCASTSS (24*q+8)(AX), Y14; \
	VBROADCASTSS (24*q+12)(AX), Y15; \
	VFMADD231PS Y12, Y14, Y4; \
	VFMADD231PS Y13, Y14, Y5; \
	VFMADD231PS Y12, Y15, Y6; \
	VFMADD231PS Y13, Y15, Y7; \
	VBROADCASTSS (24*q+16)(AX), Y14; \
	VBROADCASTSS (24*q+20)(AX), Y15; \
	VFMADD231PS Y12, Y14, Y8; \
	VFMADD231PS Y13, Y14, Y9; \
	VFMADD231PS Y12, Y15, Y10; \
	VFMADD231PS Y13, Y15, Y11

// Scale a row pair by alpha (Y14) and store it at DI.
#define AVX2_STORE(r0, r1) \
	VMULPS Y14, r0, r0; \
	VMULPS Y14, r1, r1; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 32(DI); \
	ADDQ SI, DI

// Scale a row pair by alpha (Y14), add beta (Y15) times C at DI, store.
#define AVX2_UPDATE(r0, r1) \
	VMULPS Y14, r0, r0; \
	VMULPS Y14, r1, r1; \
	VFMADD231PS (DI), Y15, r0; \
	VFMADD231PS 32(DI), Y15, r1; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 32(DI); \
	ADDQ SI, DI

// func kernel6x16AVX2(k int, a, b, c *float32, ldc int, alpha, beta float32)
TEXT ·kernel6x16AVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), SI
	SHLQ $2, SI

	// Touch C's rows now so they are in cache by the end of the loop.
	MOVQ DI, DX
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	ADDQ SI, DX
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	ADDQ SI, DX
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	ADDQ SI, DX
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	ADDQ SI, DX
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	ADDQ SI, DX
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	MOVQ CX, DX
	SHRQ $2, DX
	JZ   avx2_tail

avx2_loop4:
	AVX2_STEP(0)
	AVX2_STEP(1)
	AVX2_STEP(2)
	AVX2_STEP(3)
	ADDQ $96, AX
	ADDQ $256, BX
	DECQ DX
	JNZ  avx2_loop4

avx2_tail:
	ANDQ $3, CX
	JZ   avx2_done

avx2_loop1:
	AVX2_STEP(0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  avx2_loop1

avx2_done:
	VBROADCASTSS alpha+40(FP), Y14
	MOVL beta+44(FP), DX
	ANDL $0x7fffffff, DX
	JZ   avx2_store
	VBROADCASTSS beta+44(FP), Y15
	AVX2_UPDATE(Y0, Y1)
	AVX2_UPDATE(Y2, Y3)
	AVX2_UPDATE(Y4, Y5)
	AVX2_UPDATE(Y6, Y7)
	AVX2_UPDATE(Y8, Y9)
	AVX2_UPDATE(Y10, Y11)
	VZEROUPPER
	RET

avx2_store:
	AVX2_STORE(Y0, Y1)
	AVX2_STORE(Y2, Y3)
	AVX2_STORE(Y4, Y5)
	AVX2_STORE(Y6, Y7)
	AVX2_STORE(Y8, Y9)
	AVX2_STORE(Y10, Y11)
	VZEROUPPER
	RET

// ---- AVX-512F, 14×32: Z0..Z27 accumulate rows 0..13 (two ZMM each),
// Z28/Z29 hold the k step's 32 values of b, Z30/Z31 broadcast values of a.

#define AVX512_ROWS2(q, i, r0, r1, r2, r3) \
	VBROADCASTSS (56*q+4*i)(AX), Z30; \
	VBROADCASTSS (56*q+4*i+4)(AX), Z31; \
	VFMADD231PS Z28, Z30, r0; \
	VFMADD231PS Z29, Z30, r1; \
	VFMADD231PS Z28, Z31, r2; \
	VFMADD231PS Z29, Z31, r3

#define AVX512_STEP(q) \
	VMOVUPS (128*q)(BX), Z28; \
	VMOVUPS (128*q+64)(BX), Z29; \
	AVX512_ROWS2(q, 0, Z0, Z1, Z2, Z3); \
	AVX512_ROWS2(q, 2, Z4, Z5, Z6, Z7); \
	AVX512_ROWS2(q, 4, Z8, Z9, Z10, Z11); \
	AVX512_ROWS2(q, 6, Z12, Z13, Z14, Z15); \
	AVX512_ROWS2(q, 8, Z16, Z17, Z18, Z19); \
	AVX512_ROWS2(q, 10, Z20, Z21, Z22, Z23); \
	AVX512_ROWS2(q, 12, Z24, Z25, Z26, Z27)

#define AVX512_PREFETCH_ROW \
	PREFETCHT0 (DX); \
	PREFETCHT0 64(DX); \
	PREFETCHT0 124(DX); \
	ADDQ SI, DX

// Scale a row by alpha (Z30) and store it at DI.
#define AVX512_STORE(r0, r1) \
	VMULPS Z30, r0, r0; \
	VMULPS Z30, r1, r1; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 64(DI); \
	ADDQ SI, DI

// Scale a row by alpha (Z30), add beta (Z31) times C at DI, store.
#define AVX512_UPDATE(r0, r1) \
	VMULPS Z30, r0, r0; \
	VMULPS Z30, r1, r1; \
	VFMADD231PS (DI), Z31, r0; \
	VFMADD231PS 64(DI), Z31, r1; \
	VMOVUPS r0, (DI); \
	VMOVUPS r1, 64(DI); \
	ADDQ SI, DI

// func kernel14x32AVX512(k int, a, b, c *float32, ldc int, alpha, beta float32)
TEXT ·kernel14x32AVX512(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), SI
	SHLQ $2, SI

	MOVQ DI, DX
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW
	AVX512_PREFETCH_ROW

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27

	MOVQ CX, DX
	SHRQ $2, DX
	JZ   avx512_tail

avx512_loop4:
	AVX512_STEP(0)
	AVX512_STEP(1)
	AVX512_STEP(2)
	AVX512_STEP(3)
	ADDQ $224, AX
	ADDQ $512, BX
	DECQ DX
	JNZ  avx512_loop4

avx512_tail:
	ANDQ $3, CX
	JZ   avx512_done

avx512_loop1:
	AVX512_STEP(0)
	ADDQ $56, AX
	ADDQ $128, BX
	DECQ CX
	JNZ  avx512_loop1

avx512_done:
	VBROADCASTSS alpha+40(FP), Z30
	MOVL beta+44(FP), DX
	ANDL $0x7fffffff, DX
	JZ   avx512_store
	VBROADCASTSS beta+44(FP), Z31
	AVX512_UPDATE(Z0, Z1)
	AVX512_UPDATE(Z2, Z3)
	AVX512_UPDATE(Z4, Z5)
	AVX512_UPDATE(Z6, Z7)
	AVX512_UPDATE(Z8, Z9)
	AVX512_UPDATE(Z10, Z11)
	AVX512_UPDATE(Z12, Z13)
	AVX512_UPDATE(Z14, Z15)
	AVX512_UPDATE(Z16, Z17)
	AVX512_UPDATE(Z18, Z19)
	AVX512_UPDATE(Z20, Z21)
	AVX512_UPDATE(Z22, Z23)
	AVX512_UPDATE(Z24, Z25)
	AVX512_UPDATE(Z26, Z27)
	VZEROUPPER
	RET

avx512_store:
	AVX512_STORE(Z0, Z1)
	AVX512_STORE(Z2, Z3)
	AVX512_STORE(Z4, Z5)
	AVX512_STORE(Z6, Z7)
	AVX512_STORE(Z8, Z9)
	AVX512_STORE(Z10, Z11)
	AVX512_STORE(Z12, Z13)
	AVX512_STORE(Z14, Z15)
	AVX512_STORE(Z16, Z17)
	AVX512_STORE(Z18, Z19)
	AVX512_STORE(Z20, Z21)
	AVX512_STORE(Z22, Z23)
	AVX512_STORE(Z24, Z25)
	AVX512_STORE(Z26, Z27)
	VZEROUPPER
	RET

// ---- Panel packing with AVX-512 (see panelPacker in sgemm.go). Masked
// loads and stores touch no memory outside their mask, so edges need no
// scalar code.

// LOWMASK sets kreg to the low n bits, n in [0, 16] (in reg; clobbers AX, CX).
#define LOWMASK(reg, kreg) \
	MOVQ reg, CX; \
	MOVL $1, AX; \
	SHLL CX, AX; \
	DECL AX; \
	KMOVW AX, kreg

// CLAMP16 clamps reg to [0, 16] (clobbers R11).
#define CLAMP16(reg) \
	MOVQ $16, R11; \
	CMPQ reg, R11; \
	CMOVQGT R11, reg; \
	XORQ R11, R11; \
	CMPQ reg, R11; \
	CMOVQLT R11, reg

// func copyPanels32AVX512(dst *float32, width int, src *float32, ld, n, k int)
// dst[(j/width)*width*k + q*width + j%width] = src[q*ld+j] for j < n, zero to
// the next multiple of width; width ≤ 32, n, k ≥ 1. Row by row of src, so
// reads are sequential; the panels being written stay in cache.
TEXT ·copyPanels32AVX512(SB), NOSPLIT, $0-48
	// K1, K2: the two halves of a panel row; K3, K4: of the last panel's data.
	MOVQ width+8(FP), R8
	MOVQ R8, R10
	CLAMP16(R10)
	LOWMASK(R10, K1)
	MOVQ R8, R10
	SUBQ $16, R10
	CLAMP16(R10)
	LOWMASK(R10, K2)
	MOVQ n+32(FP), AX
	XORQ DX, DX
	DIVQ R8
	MOVQ AX, R14 // full panels
	MOVQ DX, R9  // columns in the last, partial panel (0: none)
	MOVQ R9, R10
	CLAMP16(R10)
	LOWMASK(R10, K3)
	MOVQ R9, R10
	SUBQ $16, R10
	CLAMP16(R10)
	LOWMASK(R10, K4)

	MOVQ dst+0(FP), DI
	MOVQ src+16(FP), SI
	MOVQ ld+24(FP), DX
	SHLQ $2, DX
	MOVQ R8, BX
	SHLQ $2, BX // panel row, bytes
	MOVQ k+40(FP), CX
	MOVQ BX, R12
	IMULQ CX, R12 // panel, bytes

copy_row:
	MOVQ SI, R10
	MOVQ DI, R13
	MOVQ R14, AX
	TESTQ AX, AX
	JZ   copy_last

copy_panel:
	VMOVUPS.Z (R10), K1, Z0
	VMOVUPS.Z 64(R10), K2, Z1
	VMOVUPS Z0, K1, (R13)
	VMOVUPS Z1, K2, 64(R13)
	ADDQ BX, R10
	ADDQ R12, R13
	DECQ AX
	JNZ  copy_panel

copy_last:
	TESTQ R9, R9
	JZ   copy_next
	VMOVUPS.Z (R10), K3, Z0
	VMOVUPS.Z 64(R10), K4, Z1
	VMOVUPS Z0, K1, (R13)
	VMOVUPS Z1, K2, 64(R13)

copy_next:
	ADDQ DX, SI
	ADDQ BX, DI
	DECQ CX
	JNZ  copy_row
	VZEROUPPER
	RET

// func transPanel16AVX512(dst *float32, width int, src *float32, ld, rows, k, sw int)
// dst[q*width+j] = src[j*ld+q] for j < rows, 0 for rows ≤ j < sw; rows, sw ≤ 16,
// k ≥ 1. Each block of 16 k steps is a 16×16 transpose in Z0..Z31:
// interleave pairs of rows (32-bit, then 64-bit), then exchange 128-bit lanes.
TEXT ·transPanel16AVX512(SB), NOSPLIT, $0-56
	MOVQ sw+48(FP), R10
	CLAMP16(R10)
	LOWMASK(R10, K3)
	MOVQ dst+0(FP), DI
	MOVQ width+8(FP), BX
	SHLQ $2, BX
	MOVQ BX, R12
	SHLQ $4, R12
	MOVQ src+16(FP), SI
	MOVQ ld+24(FP), DX
	SHLQ $2, DX
	MOVQ rows+32(FP), R8
	MOVQ k+40(FP), R9

trans_block:
	MOVQ R9, R13
	CLAMP16(R13)
	LOWMASK(R13, K1)
	CMPQ R8, $16
	JEQ  trans_load

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

trans_load:
	MOVQ SI, R10
	CMPQ R8, $1
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z0
	ADDQ DX, R10
	CMPQ R8, $2
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z1
	ADDQ DX, R10
	CMPQ R8, $3
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z2
	ADDQ DX, R10
	CMPQ R8, $4
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z3
	ADDQ DX, R10
	CMPQ R8, $5
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z4
	ADDQ DX, R10
	CMPQ R8, $6
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z5
	ADDQ DX, R10
	CMPQ R8, $7
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z6
	ADDQ DX, R10
	CMPQ R8, $8
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z7
	ADDQ DX, R10
	CMPQ R8, $9
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z8
	ADDQ DX, R10
	CMPQ R8, $10
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z9
	ADDQ DX, R10
	CMPQ R8, $11
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z10
	ADDQ DX, R10
	CMPQ R8, $12
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z11
	ADDQ DX, R10
	CMPQ R8, $13
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z12
	ADDQ DX, R10
	CMPQ R8, $14
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z13
	ADDQ DX, R10
	CMPQ R8, $15
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z14
	ADDQ DX, R10
	CMPQ R8, $16
	JLT  trans_loaded
	VMOVUPS.Z (R10), K1, Z15

trans_loaded:
	// t[2p], t[2p+1] = unpack lo/hi of rows 2p, 2p+1 (Z16..Z31)
	VUNPCKLPS Z1, Z0, Z16
	VUNPCKHPS Z1, Z0, Z17
	VUNPCKLPS Z3, Z2, Z18
	VUNPCKHPS Z3, Z2, Z19
	VUNPCKLPS Z5, Z4, Z20
	VUNPCKHPS Z5, Z4, Z21
	VUNPCKLPS Z7, Z6, Z22
	VUNPCKHPS Z7, Z6, Z23
	VUNPCKLPS Z9, Z8, Z24
	VUNPCKHPS Z9, Z8, Z25
	VUNPCKLPS Z11, Z10, Z26
	VUNPCKHPS Z11, Z10, Z27
	VUNPCKLPS Z13, Z12, Z28
	VUNPCKHPS Z13, Z12, Z29
	VUNPCKLPS Z15, Z14, Z30
	VUNPCKHPS Z15, Z14, Z31
	// u[4g+e]: element e of each 128-bit lane for rows 4g..4g+3 (Z0..Z15)
	VUNPCKLPD Z18, Z16, Z0
	VUNPCKHPD Z18, Z16, Z1
	VUNPCKLPD Z19, Z17, Z2
	VUNPCKHPD Z19, Z17, Z3
	VUNPCKLPD Z22, Z20, Z4
	VUNPCKHPD Z22, Z20, Z5
	VUNPCKLPD Z23, Z21, Z6
	VUNPCKHPD Z23, Z21, Z7
	VUNPCKLPD Z26, Z24, Z8
	VUNPCKHPD Z26, Z24, Z9
	VUNPCKLPD Z27, Z25, Z10
	VUNPCKHPD Z27, Z25, Z11
	VUNPCKLPD Z30, Z28, Z12
	VUNPCKHPD Z30, Z28, Z13
	VUNPCKLPD Z31, Z29, Z14
	VUNPCKHPD Z31, Z29, Z15
	// lanes 0-1 (Z16+e, Z24+e) and 2-3 (Z20+e, Z28+e) of row groups 0,1 and 2,3
	VSHUFF32X4 $0x44, Z4, Z0, Z16
	VSHUFF32X4 $0xEE, Z4, Z0, Z20
	VSHUFF32X4 $0x44, Z12, Z8, Z24
	VSHUFF32X4 $0xEE, Z12, Z8, Z28
	VSHUFF32X4 $0x44, Z5, Z1, Z17
	VSHUFF32X4 $0xEE, Z5, Z1, Z21
	VSHUFF32X4 $0x44, Z13, Z9, Z25
	VSHUFF32X4 $0xEE, Z13, Z9, Z29
	VSHUFF32X4 $0x44, Z6, Z2, Z18
	VSHUFF32X4 $0xEE, Z6, Z2, Z22
	VSHUFF32X4 $0x44, Z14, Z10, Z26
	VSHUFF32X4 $0xEE, Z14, Z10, Z30
	VSHUFF32X4 $0x44, Z7, Z3, Z19
	VSHUFF32X4 $0xEE, Z7, Z3, Z23
	VSHUFF32X4 $0x44, Z15, Z11, Z27
	VSHUFF32X4 $0xEE, Z15, Z11, Z31
	// column c of the block into Zc
	VSHUFF32X4 $0x88, Z24, Z16, Z0
	VSHUFF32X4 $0xDD, Z24, Z16, Z4
	VSHUFF32X4 $0x88, Z28, Z20, Z8
	VSHUFF32X4 $0xDD, Z28, Z20, Z12
	VSHUFF32X4 $0x88, Z25, Z17, Z1
	VSHUFF32X4 $0xDD, Z25, Z17, Z5
	VSHUFF32X4 $0x88, Z29, Z21, Z9
	VSHUFF32X4 $0xDD, Z29, Z21, Z13
	VSHUFF32X4 $0x88, Z26, Z18, Z2
	VSHUFF32X4 $0xDD, Z26, Z18, Z6
	VSHUFF32X4 $0x88, Z30, Z22, Z10
	VSHUFF32X4 $0xDD, Z30, Z22, Z14
	VSHUFF32X4 $0x88, Z27, Z19, Z3
	VSHUFF32X4 $0xDD, Z27, Z19, Z7
	VSHUFF32X4 $0x88, Z31, Z23, Z11
	VSHUFF32X4 $0xDD, Z31, Z23, Z15

	MOVQ DI, R10
	CMPQ R13, $1
	JLT  trans_stored
	VMOVUPS Z0, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $2
	JLT  trans_stored
	VMOVUPS Z1, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $3
	JLT  trans_stored
	VMOVUPS Z2, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $4
	JLT  trans_stored
	VMOVUPS Z3, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $5
	JLT  trans_stored
	VMOVUPS Z4, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $6
	JLT  trans_stored
	VMOVUPS Z5, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $7
	JLT  trans_stored
	VMOVUPS Z6, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $8
	JLT  trans_stored
	VMOVUPS Z7, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $9
	JLT  trans_stored
	VMOVUPS Z8, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $10
	JLT  trans_stored
	VMOVUPS Z9, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $11
	JLT  trans_stored
	VMOVUPS Z10, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $12
	JLT  trans_stored
	VMOVUPS Z11, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $13
	JLT  trans_stored
	VMOVUPS Z12, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $14
	JLT  trans_stored
	VMOVUPS Z13, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $15
	JLT  trans_stored
	VMOVUPS Z14, K3, (R10)
	ADDQ BX, R10
	CMPQ R13, $16
	JLT  trans_stored
	VMOVUPS Z15, K3, (R10)

trans_stored:
	ADDQ $64, SI
	ADDQ R12, DI
	SUBQ $16, R9
	JGT  trans_block
	VZEROUPPER
	RET

// ---- Panel transposing with AVX2 (transPanelAVX2 in sgemm_amd64.go).

// func transPanel8AVX2(dst *float32, width int, src *float32, ld, rows, k, sw int)
// dst[q*width+j] = src[j*ld+q] for j < rows, 0 for rows ≤ j < sw; rows ≤ 8,
// sw is 8 or 6, k a positive multiple of 8. Each block of 8 k steps is an 8×8
// transpose: interleave row pairs, shuffle 64-bit pairs, exchange 128-bit halves.
TEXT ·transPanel8AVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ width+8(FP), BX
	SHLQ $2, BX
	MOVQ BX, R12
	SHLQ $3, R12
	MOVQ src+16(FP), SI
	MOVQ ld+24(FP), DX
	SHLQ $2, DX
	MOVQ rows+32(FP), R8
	MOVQ k+40(FP), R9
	MOVQ sw+48(FP), R11

t8_block:
	CMPQ R8, $8
	JEQ  t8_load

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

t8_load:
	MOVQ SI, R10
	CMPQ R8, $1
	JLT  t8_loaded
	VMOVUPS (R10), Y0
	ADDQ DX, R10
	CMPQ R8, $2
	JLT  t8_loaded
	VMOVUPS (R10), Y1
	ADDQ DX, R10
	CMPQ R8, $3
	JLT  t8_loaded
	VMOVUPS (R10), Y2
	ADDQ DX, R10
	CMPQ R8, $4
	JLT  t8_loaded
	VMOVUPS (R10), Y3
	ADDQ DX, R10
	CMPQ R8, $5
	JLT  t8_loaded
	VMOVUPS (R10), Y4
	ADDQ DX, R10
	CMPQ R8, $6
	JLT  t8_loaded
	VMOVUPS (R10), Y5
	ADDQ DX, R10
	CMPQ R8, $7
	JLT  t8_loaded
	VMOVUPS (R10), Y6
	ADDQ DX, R10
	CMPQ R8, $8
	JLT  t8_loaded
	VMOVUPS (R10), Y7

t8_loaded:
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y7, Y3, Y15

	MOVQ DI, R10
	CMPQ R11, $8
	JNE  t8_store6
	VMOVUPS Y8, (R10)
	ADDQ BX, R10
	VMOVUPS Y9, (R10)
	ADDQ BX, R10
	VMOVUPS Y10, (R10)
	ADDQ BX, R10
	VMOVUPS Y11, (R10)
	ADDQ BX, R10
	VMOVUPS Y12, (R10)
	ADDQ BX, R10
	VMOVUPS Y13, (R10)
	ADDQ BX, R10
	VMOVUPS Y14, (R10)
	ADDQ BX, R10
	VMOVUPS Y15, (R10)
	JMP  t8_next

t8_store6:
	VMOVUPS X8, (R10)
	VEXTRACTF128 $1, Y8, X8
	VMOVSD X8, 16(R10)
	ADDQ BX, R10
	VMOVUPS X9, (R10)
	VEXTRACTF128 $1, Y9, X9
	VMOVSD X9, 16(R10)
	ADDQ BX, R10
	VMOVUPS X10, (R10)
	VEXTRACTF128 $1, Y10, X10
	VMOVSD X10, 16(R10)
	ADDQ BX, R10
	VMOVUPS X11, (R10)
	VEXTRACTF128 $1, Y11, X11
	VMOVSD X11, 16(R10)
	ADDQ BX, R10
	VMOVUPS X12, (R10)
	VEXTRACTF128 $1, Y12, X12
	VMOVSD X12, 16(R10)
	ADDQ BX, R10
	VMOVUPS X13, (R10)
	VEXTRACTF128 $1, Y13, X13
	VMOVSD X13, 16(R10)
	ADDQ BX, R10
	VMOVUPS X14, (R10)
	VEXTRACTF128 $1, Y14, X14
	VMOVSD X14, 16(R10)
	ADDQ BX, R10
	VMOVUPS X15, (R10)
	VEXTRACTF128 $1, Y15, X15
	VMOVSD X15, 16(R10)

t8_next:
	ADDQ $32, SI
	ADDQ R12, DI
	SUBQ $8, R9
	JGT  t8_block
	VZEROUPPER
	RET

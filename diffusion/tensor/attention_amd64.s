//go:build !purego

// The row-block product of the fused small-key attention (attention.go,
// attentionRows): C[6][n] = A[6][k]·B[k][n] in float32, for the two products
// of one block of six query rows, scores = q·(scale·kᵀ) and out = P·v. The
// rows of A, B and C are lda, ldb and ldc floats apart. Columns go in strips
// of 64 (6×4 ZMM accumulators, Z8..Z31); each step of k loads the strip's
// row of B once and broadcasts the six entries of A's column, so B and A are
// each read once per strip. The last 16 columns of a strip use masked loads
// and stores (K1): nothing outside the n columns is read or written.

#include "textflag.h"

// FMAROW4..1 add the broadcast a times Z0..Z3 (the first 4..1 of them) to
// one row's accumulators.
#define FMAROW4(a, z, c0, c1, c2, c3) \
	VBROADCASTSS a, z; \
	VFMADD231PS Z0, z, c0; \
	VFMADD231PS Z1, z, c1; \
	VFMADD231PS Z2, z, c2; \
	VFMADD231PS Z3, z, c3

#define FMAROW3(a, z, c0, c1, c2) \
	VBROADCASTSS a, z; \
	VFMADD231PS Z0, z, c0; \
	VFMADD231PS Z1, z, c1; \
	VFMADD231PS Z2, z, c2

#define FMAROW2(a, z, c0, c1) \
	VBROADCASTSS a, z; \
	VFMADD231PS Z0, z, c0; \
	VFMADD231PS Z1, z, c1

#define FMAROW1(a, z, c0) \
	VBROADCASTSS a, z; \
	VFMADD231PS Z0, z, c0

// The rows of A are at AX, AX+R8, AX+2·R8, DX, DX+R8, DX+2·R8; row 0 of the
// six accumulators of column j is Z(8+j), row r's Z(8+4r+j).
#define STEP4 \
	VMOVUPS   (CX), Z0; \
	VMOVUPS   64(CX), Z1; \
	VMOVUPS   128(CX), Z2; \
	VMOVUPS.Z 192(CX), K1, Z3; \
	FMAROW4((AX), Z4, Z8, Z9, Z10, Z11); \
	FMAROW4((AX)(R8*1), Z5, Z12, Z13, Z14, Z15); \
	FMAROW4((AX)(R8*2), Z6, Z16, Z17, Z18, Z19); \
	FMAROW4((DX), Z7, Z20, Z21, Z22, Z23); \
	FMAROW4((DX)(R8*1), Z4, Z24, Z25, Z26, Z27); \
	FMAROW4((DX)(R8*2), Z5, Z28, Z29, Z30, Z31)

#define STEP3 \
	VMOVUPS   (CX), Z0; \
	VMOVUPS   64(CX), Z1; \
	VMOVUPS.Z 128(CX), K1, Z2; \
	FMAROW3((AX), Z4, Z8, Z9, Z10); \
	FMAROW3((AX)(R8*1), Z5, Z12, Z13, Z14); \
	FMAROW3((AX)(R8*2), Z6, Z16, Z17, Z18); \
	FMAROW3((DX), Z7, Z20, Z21, Z22); \
	FMAROW3((DX)(R8*1), Z4, Z24, Z25, Z26); \
	FMAROW3((DX)(R8*2), Z5, Z28, Z29, Z30)

#define STEP2 \
	VMOVUPS   (CX), Z0; \
	VMOVUPS.Z 64(CX), K1, Z1; \
	FMAROW2((AX), Z4, Z8, Z9); \
	FMAROW2((AX)(R8*1), Z5, Z12, Z13); \
	FMAROW2((AX)(R8*2), Z6, Z16, Z17); \
	FMAROW2((DX), Z7, Z20, Z21); \
	FMAROW2((DX)(R8*1), Z4, Z24, Z25); \
	FMAROW2((DX)(R8*2), Z5, Z28, Z29)

#define STEP1 \
	VMOVUPS.Z (CX), K1, Z0; \
	FMAROW1((AX), Z4, Z8); \
	FMAROW1((AX)(R8*1), Z5, Z12); \
	FMAROW1((AX)(R8*2), Z6, Z16); \
	FMAROW1((DX), Z7, Z20); \
	FMAROW1((DX)(R8*1), Z4, Z24); \
	FMAROW1((DX)(R8*2), Z5, Z28)

#define ZERO4(c0, c1, c2, c3) \
	VPXORD c0, c0, c0; \
	VPXORD c1, c1, c1; \
	VPXORD c2, c2, c2; \
	VPXORD c3, c3, c3

// STORE4..1 write one row's accumulators to AX (the last one masked by K1)
// and move AX to the next row of C.
#define STORE4(c0, c1, c2, c3) \
	VMOVUPS c0, (AX); \
	VMOVUPS c1, 64(AX); \
	VMOVUPS c2, 128(AX); \
	VMOVUPS c3, K1, 192(AX); \
	ADDQ    R12, AX

#define STORE3(c0, c1, c2) \
	VMOVUPS c0, (AX); \
	VMOVUPS c1, 64(AX); \
	VMOVUPS c2, K1, 128(AX); \
	ADDQ    R12, AX

#define STORE2(c0, c1) \
	VMOVUPS c0, (AX); \
	VMOVUPS c1, K1, 64(AX); \
	ADDQ    R12, AX

#define STORE1(c0) \
	VMOVUPS c0, K1, (AX); \
	ADDQ    R12, AX

// START sets the k loop's pointers: AX and DX to rows 0 and 3 of A, CX to
// the strip's row 0 of B, R10 to k.
#define START \
	MOVQ SI, AX; \
	MOVQ R9, DX; \
	MOVQ BX, CX; \
	MOVQ R13, R10

// NEXT moves the k loop's pointers one step on.
#define NEXT \
	ADDQ $4, AX; \
	ADDQ $4, DX; \
	ADDQ R11, CX; \
	DECQ R10

// func attnRows6AVX512(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, n int)
TEXT ·attnRows6AVX512(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R8
	SHLQ $2, R8
	MOVQ b+16(FP), BX
	MOVQ ldb+24(FP), R11
	SHLQ $2, R11
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), R12
	SHLQ $2, R12
	MOVQ k+48(FP), R13
	MOVQ n+56(FP), R14
	LEAQ (SI)(R8*2), R9
	ADDQ R8, R9

strip:
	// CX = the strip's last register's lanes (1..16), K1 its mask.
	MOVQ  R14, CX
	CMPQ  CX, $64
	JLT   narrow
	MOVQ  $16, CX
	MOVL  $0xffff, AX
	KMOVW AX, K1
	JMP   wide

narrow:
	ANDQ  $15, CX
	JNZ   masked
	MOVQ  $16, CX

masked:
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	CMPQ  R14, $48
	JGT   wide
	CMPQ  R14, $32
	JGT   three
	CMPQ  R14, $16
	JGT   two
	JMP   one

wide:
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	ZERO4(Z16, Z17, Z18, Z19)
	ZERO4(Z20, Z21, Z22, Z23)
	ZERO4(Z24, Z25, Z26, Z27)
	ZERO4(Z28, Z29, Z30, Z31)
	START

loop4:
	STEP4
	NEXT
	JNZ loop4
	MOVQ DI, AX
	STORE4(Z8, Z9, Z10, Z11)
	STORE4(Z12, Z13, Z14, Z15)
	STORE4(Z16, Z17, Z18, Z19)
	STORE4(Z20, Z21, Z22, Z23)
	STORE4(Z24, Z25, Z26, Z27)
	STORE4(Z28, Z29, Z30, Z31)
	ADDQ $256, BX
	ADDQ $256, DI
	SUBQ $64, R14
	JG   strip
	VZEROUPPER
	RET

three:
	ZERO4(Z8, Z9, Z10, Z12)
	ZERO4(Z13, Z14, Z16, Z17)
	ZERO4(Z18, Z20, Z21, Z22)
	ZERO4(Z24, Z25, Z26, Z28)
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	START

loop3:
	STEP3
	NEXT
	JNZ loop3
	MOVQ DI, AX
	STORE3(Z8, Z9, Z10)
	STORE3(Z12, Z13, Z14)
	STORE3(Z16, Z17, Z18)
	STORE3(Z20, Z21, Z22)
	STORE3(Z24, Z25, Z26)
	STORE3(Z28, Z29, Z30)
	VZEROUPPER
	RET

two:
	ZERO4(Z8, Z9, Z12, Z13)
	ZERO4(Z16, Z17, Z20, Z21)
	ZERO4(Z24, Z25, Z28, Z29)
	START

loop2:
	STEP2
	NEXT
	JNZ loop2
	MOVQ DI, AX
	STORE2(Z8, Z9)
	STORE2(Z12, Z13)
	STORE2(Z16, Z17)
	STORE2(Z20, Z21)
	STORE2(Z24, Z25)
	STORE2(Z28, Z29)
	VZEROUPPER
	RET

one:
	ZERO4(Z8, Z12, Z16, Z20)
	VPXORD Z24, Z24, Z24
	VPXORD Z28, Z28, Z28
	START

loop1:
	STEP1
	NEXT
	JNZ loop1
	MOVQ DI, AX
	STORE1(Z8)
	STORE1(Z12)
	STORE1(Z16)
	STORE1(Z20)
	STORE1(Z24)
	STORE1(Z28)
	VZEROUPPER
	RET

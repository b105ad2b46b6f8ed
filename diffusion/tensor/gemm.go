package tensor

import (
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
)

// Sgemmer is the BLAS-shaped interface every matrix product in Pigment goes
// through. Sgemm computes, for row-major matrices,
//
//	C = alpha·op(A)·op(B) + beta·C
//
// where op(X) is X or Xᵀ as tA/tB say, op(A) is m×k, op(B) is k×n and C is
// m×n; lda, ldb and ldc are the row strides. The signature is BLAS's sgemm
// (and gonum's blas.Float32Level3), so gonum's pure-Go implementation, a cgo
// OpenBLAS binding or a hand-written kernel can all stand behind it.
type Sgemmer interface {
	Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// BLAS is the Sgemm implementation used by MatMul, Linear, Conv2d and
// Attention. It defaults to Packed, Pigment's blocked SGEMM with assembly
// micro-kernels (gonum.Implementation{} is the pure-Go alternative), which
// splits large products across GOMAXPROCS goroutines. Replace it only at
// program start, before any tensor op runs.
var BLAS Sgemmer = Packed{}

func transpose(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemm is a shorthand over BLAS.Sgemm with boolean transposes.
func gemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		// BLAS leaves C·beta; do it here so callers need not special-case.
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	flops.Add(2 * int64(m) * int64(n) * int64(k))
	BLAS.Sgemm(transpose(tA), transpose(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

var flops atomic.Int64

// FLOPs returns the floating-point operations issued through BLAS since the
// program started, counting 2·m·n·k per matrix product: every convolution,
// linear layer and attention product, which is where diffusion models spend
// their time. Benchmarks divide differences of it by elapsed time. A
// convolution computed by Winograd F(2x2, 3x3) counts the direct
// convolution's 2·Cout·Cin·9·H·W, not the 2.25× fewer it performs, so the
// figure measures the model's work and GFLOP/s is the effective rate (it
// can pass a plain sgemm's peak).
func FLOPs() int64 { return flops.Load() }

// gemmBias computes C = A·B + bias[i] on each row i of C (A m×k, B k×n,
// row-major, C not read): in one pass through Packed's micro-kernels when
// BLAS is Packed, else as a bias fill followed by BLAS.Sgemm with beta 1.
func gemmBias(m, n, k int, a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
	if _, packed := BLAS.(Packed); !packed || k == 0 {
		for i := 0; i < m; i++ {
			fill(c[i*ldc:i*ldc+n], bias[i])
		}
		gemm(false, false, m, n, k, 1, a, lda, b, ldb, 1, c, ldc)
		return
	}
	flops.Add(2 * int64(m) * int64(n) * int64(k))
	sgemmBias(sgemmKernel, m, n, k, a, lda, b, ldb, bias, c, ldc)
}

// gemmLinear computes C = A·Bᵀ + 1·biasᵀ (bias[j] added to column j of C),
// a Linear layer's y = x·Wᵀ + b with A [m, k] and B [n, k]. Through Packed
// (and where the product is not computed transposed) the bias is filled
// into each block of C just before its first kernels, in cache; otherwise C
// is filled with it first and the product added.
func gemmLinear(m, n, k int, a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
	if _, packed := BLAS.(Packed); packed && k > 0 && !transposeFits(sgemmKernel, m, n) {
		flops.Add(2 * int64(m) * int64(n) * int64(k))
		sgemmLinear(sgemmKernel, m, n, k, a, lda, b, ldb, bias, c, ldc)
		return
	}
	for r := 0; r < m; r++ {
		copy(c[r*ldc:r*ldc+n], bias[:n])
	}
	gemm(false, true, m, n, k, 1, a, lda, b, ldb, 1, c, ldc)
}

// gemmFilled computes C = A·B (+ bias[i] on each row i when bias is set)
// with B k×n given by a block filler (see sgemmProblem.bFill), through
// Packed's kernels whatever BLAS is: callers check that BLAS is Packed.
func gemmFilled(m, n, k int, a []float32, lda int, bFill func(dst []float32, ld, q0, kq, j0, n int), bias, c []float32, ldc int) {
	flops.Add(2 * int64(m) * int64(n) * int64(k))
	sgemmFilled(sgemmKernel, m, n, k, a, lda, bFill, bias, c, ldc)
}

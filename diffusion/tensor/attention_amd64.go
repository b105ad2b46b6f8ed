//go:build !purego

package tensor

// Assembly in attention_amd64.s.

//go:noescape
func attnRows6AVX512(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, n int)

// rows6AVX512 is the AVX-512 rowsKernel.
func rows6AVX512(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int) {
	checkRows6(a, lda, b, ldb, c, ldc, k, n)
	attnRows6AVX512(&a[0], lda, &b[0], ldb, &c[0], ldc, k, n)
}

// attnRows6 is the kernel of Attention's fused path for few keys: AVX-512,
// else nil (the GEMM path serves every shape).
var attnRows6 = func() rowsKernel {
	if _, avx512 := cpuFeatures(); avx512 {
		return rows6AVX512
	}
	return nil
}()

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

//go:noescape
func winoInputAVX512(src *float32, ls int, dst *float32, ld, n int)

//go:noescape
func winoOutputAVX512(src *float32, ld int, dst *float32, ldd, rows, n, w int, bias float32)

// winoAVX512 is the AVX-512 winoImpl; its wrappers check the bounds the
// assembly relies on.
var winoAVX512 = winoImpl{
	name: "avx512",
	input: func(src []float32, ls int, dst []float32, ld, n int) {
		if n < 1 || len(src) < 3*ls+32*((n+15)/16)+2 || len(dst) < 15*ld+n {
			panic("tensor: winograd input transform bounds")
		}
		winoInputAVX512(&src[0], ls, &dst[0], ld, n)
	},
	output: func(src []float32, ld int, dst []float32, ldd, rows, n, w int, bias float32) {
		if n < 1 || rows < 1 || rows > 2 || w > 2*n || w < 2*n-1 || len(src) < 15*ld+n || len(dst) < (rows-1)*ldd+w {
			panic("tensor: winograd output transform bounds")
		}
		winoOutputAVX512(&src[0], ld, &dst[0], ldd, rows, n, w, bias)
	},
}

// winoImpls lists the Winograd transforms this CPU can run, fastest first;
// Conv2d uses Winograd only with a vector version (the scalar transforms
// cost about what the products save).
func winoImpls() []winoImpl {
	if _, avx512 := cpuFeatures(); avx512 {
		return []winoImpl{winoAVX512, winoGo}
	}
	return []winoImpl{winoGo}
}

//go:build !purego

package tensor

// Assembly in softmax_amd64.s.

//go:noescape
func expSumAVX512(p *float32, n int, m float32) float32

//go:noescape
func maxAVX512(p *float32, n int) float32

//go:noescape
func scaleAVX512(p *float32, n int, s float32)

//go:noescape
func expSumAVX2(p *float32, n int, m float32) float32

//go:noescape
func maxAVX2(p *float32, n int) float32

//go:noescape
func scaleAVX2(p *float32, n int, s float32)

// softmaxKernels is the vector implementation softmaxRow uses: AVX-512,
// else AVX2 with FMA, else the Go code.
var softmaxKernels = softmaxImpls()[0]

// softmaxImpls lists the implementations this CPU can run, fastest first
// (the tests check each one).
func softmaxImpls() []softmaxImpl {
	avx2FMA, avx512 := cpuFeatures()
	var impls []softmaxImpl
	if avx512 {
		impls = append(impls, softmaxImpl{"avx512", wrapMax(maxAVX512), wrapExpSum(expSumAVX512), wrapScale(scaleAVX512)})
	}
	if avx2FMA {
		impls = append(impls, softmaxImpl{"avx2", wrapMax(maxAVX2), wrapExpSum(expSumAVX2), wrapScale(scaleAVX2)})
	}
	return append(impls, softmaxGo)
}

func wrapMax(f func(*float32, int) float32) func([]float32) float32 {
	return func(row []float32) float32 {
		if len(row) == 0 {
			return negInf32
		}
		return f(&row[0], len(row))
	}
}

func wrapExpSum(f func(*float32, int, float32) float32) func([]float32, float32) float32 {
	return func(row []float32, m float32) float32 {
		if len(row) == 0 {
			return 0
		}
		return f(&row[0], len(row), m)
	}
}

func wrapScale(f func(*float32, int, float32)) func([]float32, float32) {
	return func(row []float32, s float32) {
		if len(row) > 0 {
			f(&row[0], len(row), s)
		}
	}
}

//go:noescape
func siluAVX512(dst, src *float32, n int)

//go:noescape
func siluGradAVX512(acc, grad, x *float32, n int)

// siluKernels is the SiLU implementation in use: AVX-512, else the Go code.
var siluKernels = siluImpls()[0]

// siluImpls lists the SiLU implementations this CPU can run, fastest first.
func siluImpls() []siluImpl {
	if _, avx512 := cpuFeatures(); avx512 {
		return []siluImpl{{"avx512",
			func(dst, src []float32) {
				if len(src) > 0 {
					siluAVX512(&dst[:len(src)][0], &src[0], len(src))
				}
			},
			func(dx, g, x []float32) {
				if len(x) > 0 {
					siluGradAVX512(&dx[:len(x)][0], &g[:len(x)][0], &x[0], len(x))
				}
			}}, siluGo}
	}
	return []siluImpl{siluGo}
}

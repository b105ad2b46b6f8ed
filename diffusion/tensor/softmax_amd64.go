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
		k := withPasses(softmaxImpl{name: "avx512", max: wrapMax(maxAVX512), expSum: wrapExpSum(expSumAVX512), scale: wrapScale(scaleAVX512)})
		long := k.rows
		k.rows = func(block []float32, n int) {
			if n > shortRow {
				long(block, n)
			} else if n > 0 && len(block) >= n {
				softmaxRowsAVX512(&block[0], n, len(block)/n)
			}
		}
		impls = append(impls, k)
	}
	if avx2FMA {
		impls = append(impls, withPasses(softmaxImpl{name: "avx2", max: wrapMax(maxAVX2), expSum: wrapExpSum(expSumAVX2), scale: wrapScale(scaleAVX2)}))
	}
	return append(impls, softmaxGo)
}

//go:noescape
func softmaxRowsAVX512(p *float32, n, rows int)

// shortRow is the longest row the AVX-512 softmax hands to
// softmaxRowsAVX512, whose extra passes pay off only while one row's
// exponentials are too few to keep the vector units busy; longer rows (the
// 4096 keys of a self-attention) go through the three passes.
const shortRow = 256

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

//go:noescape
func gegluAVX512(dst, hidden, gate *float32, n int)

//go:noescape
func gegluGradAVX512(accH, accGate, grad, hidden, gate *float32, n int)

// actKernels is the activation implementation in use: AVX-512, else Go.
var actKernels = actImpls()[0]

// actImpls lists the activation implementations this CPU can run, fastest
// first (the tests check each one).
func actImpls() []actImpl {
	if _, avx512 := cpuFeatures(); !avx512 {
		return []actImpl{actGo}
	}
	return []actImpl{{
		name: "avx512",
		silu: func(dst, src []float32) {
			if n := len(src); n > 0 {
				siluAVX512(&dst[:n][0], &src[0], n)
			}
		},
		siluGrad: func(acc, g, x []float32) {
			if n := len(x); n > 0 {
				siluGradAVX512(&acc[:n][0], &g[:n][0], &x[0], n)
			}
		},
		geglu: func(dst, hidden, gate []float32) {
			if n := len(gate); n > 0 {
				gegluAVX512(&dst[:n][0], &hidden[:n][0], &gate[0], n)
			}
		},
		gegluGrad: func(accH, accGate, g, hidden, gate []float32) {
			if n := len(gate); n > 0 {
				gegluGradAVX512(&accH[:n][0], &accGate[:n][0], &g[:n][0], &hidden[:n][0], &gate[0], n)
			}
		},
	}, actGo}
}

package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// gemmCase is one product C = alpha·op(A)·op(B) + beta·C, with the matrices
// stored as views: each row of A, B and C is followed by pad unused floats
// (lda = cols + pad), which must come back untouched.
type gemmCase struct {
	tA, tB      bool
	m, n, k     int
	alpha, beta float32
	pad         int
}

func (tc gemmCase) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s/m%d_n%d_k%d/a%g_b%g/pad%d", t(tc.tA), t(tc.tB), tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.pad)
}

// sentinel fills the padding of every view; finding it changed means a
// write outside the matrix.
const sentinel = -12345

// gemmOperands returns A, B and C for tc with their leading dimensions.
// C holds NaN when beta = 0 (it must be overwritten, not scaled).
func gemmOperands(r *rand.Rand, tc gemmCase) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	view := func(rows, cols int, fill func() float32) ([]float32, int) {
		ld := max(cols+tc.pad, 1)
		s := make([]float32, rows*ld)
		for i := range s {
			if i%ld < cols {
				s[i] = fill()
			} else {
				s[i] = sentinel
			}
		}
		return s, ld
	}
	normal := func() float32 { return float32(r.NormFloat64()) }
	aRows, aCols := tc.m, tc.k
	if tc.tA {
		aRows, aCols = tc.k, tc.m
	}
	bRows, bCols := tc.k, tc.n
	if tc.tB {
		bRows, bCols = tc.n, tc.k
	}
	a, lda = view(aRows, aCols, normal)
	b, ldb = view(bRows, bCols, normal)
	cFill := normal
	if tc.beta == 0 {
		cFill = func() float32 { return float32(math.NaN()) }
	}
	c, ldc = view(tc.m, tc.n, cFill)
	return a, lda, b, ldb, c, ldc
}

// naiveGemm returns the float64 reference alpha·op(A)·op(B) + beta·C and, per
// element, |alpha|·Σ|a||b| + |beta·c|, the scale of its rounding error.
func naiveGemm(tc gemmCase, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) (want, scale []float64) {
	want = make([]float64, tc.m*tc.n)
	scale = make([]float64, tc.m*tc.n)
	at := func(i, p int) float64 {
		if tc.tA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if tc.tB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			var s, abs float64
			for p := 0; p < tc.k; p++ {
				s += at(i, p) * bt(p, j)
				abs += math.Abs(at(i, p) * bt(p, j))
			}
			w := float64(tc.alpha) * s
			sc := math.Abs(float64(tc.alpha)) * abs
			if tc.beta != 0 {
				w += float64(tc.beta) * float64(c[i*ldc+j])
				sc += math.Abs(float64(tc.beta) * float64(c[i*ldc+j]))
			}
			want[i*tc.n+j], scale[i*tc.n+j] = w, sc
		}
	}
	return want, scale
}

// checkGemm runs tc through each kernel and compares with the float64
// reference: each element must be within (√k+2)·2·eps of its error scale
// (random-sign sums round like a random walk), and the padding must be
// untouched.
func checkGemm(t *testing.T, kernels []*kernel, tc gemmCase, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, uint64(tc.m*1e6+tc.n*1e3+tc.k)))
	a, lda, b, ldb, c0, ldc := gemmOperands(r, tc)
	want, scale := naiveGemm(tc, a, lda, b, ldb, c0, ldc)
	const eps = 1.0 / (1 << 23)
	rtol := 2 * (math.Sqrt(float64(tc.k)) + 2) * eps
	c := make([]float32, len(c0))
	for _, kern := range kernels {
		copy(c, c0)
		sgemm(kern, transpose(tc.tA), transpose(tc.tB), tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		for i := 0; i < tc.m; i++ {
			for j := 0; j < ldc && i*ldc+j < len(c); j++ {
				got := c[i*ldc+j]
				if j >= tc.n {
					if got != sentinel {
						t.Fatalf("%v %v: C padding [%d][%d] overwritten with %g", kern.name, tc, i, j, got)
					}
					continue
				}
				w, tol := want[i*tc.n+j], rtol*scale[i*tc.n+j]+1e-30
				if d := math.Abs(float64(got) - w); !(d <= tol) {
					t.Fatalf("%v %v: C[%d][%d] = %g, want %g (diff %g > tol %g)", kern.name, tc, i, j, got, w, d, tol)
				}
			}
		}
	}
}

// testKernels are the kernels this CPU supports, each also with tiny cache
// blocks so that small products cross every mc, kc and nc boundary.
func testKernels() []*kernel {
	var ks []*kernel
	for _, k := range sgemmKernels() {
		tiny := *k
		tiny.name += " tiny blocks"
		tiny.mc, tiny.kc, tiny.nc = 2*k.mr, 7, 3*k.nr
		ks = append(ks, k, &tiny)
	}
	return ks
}

var gemmSizes = []int{1, 2, 3, 5, 7, 16, 17, 31, 64, 65, 127, 300}

// TestSgemmSizes covers all transpose combinations over a sample of m×n×k
// from gemmSizes: every size appears in every dimension, next to small and
// large partners, without running the whole 12³ product.
func TestSgemmSizes(t *testing.T) {
	kernels := testKernels()
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			t.Run(gemmCase{tA: tA, tB: tB}.String()[:2], func(t *testing.T) {
				t.Parallel()
				r := rand.New(rand.NewPCG(7, 7))
				for _, m := range gemmSizes {
					for _, n := range gemmSizes {
						// Two k per (m, n), skipping the costliest triples.
						for range 2 {
							k := gemmSizes[r.IntN(len(gemmSizes))]
							if m*n*k > 300*300*64 {
								k = gemmSizes[r.IntN(6)]
							}
							checkGemm(t, kernels, gemmCase{tA: tA, tB: tB, m: m, n: n, k: k, alpha: 1, beta: 0}, 1)
						}
					}
				}
			})
		}
	}
}

// TestSgemmAlphaBetaStrides covers strided views, alpha and beta (beta = 0
// over a C full of NaN must overwrite; beta = 1 accumulates, as Conv2d's
// bias relies on), alpha = 0 and k = 0.
func TestSgemmAlphaBetaStrides(t *testing.T) {
	scalars := []struct{ alpha, beta float32 }{
		{1, 0}, {1, 1}, {0.125, 0}, {-1.5, 0.5}, {2, -1}, {0, 0}, {0, 1}, {0, 0.5},
	}
	shapes := [][3]int{{1, 1, 1}, {7, 17, 5}, {65, 31, 127}, {17, 65, 300}, {300, 7, 64}, {256, 40, 77}, {5, 3, 0}}
	kernels := testKernels()
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			t.Run(gemmCase{tA: tA, tB: tB}.String()[:2], func(t *testing.T) {
				t.Parallel()
				for _, s := range scalars {
					for _, sh := range shapes {
						for _, pad := range []int{0, 3} {
							checkGemm(t, kernels, gemmCase{tA: tA, tB: tB, m: sh[0], n: sh[1], k: sh[2], alpha: s.alpha, beta: s.beta, pad: pad}, 2)
						}
					}
				}
			})
		}
	}
}

// TestSgemmAttentionViews runs the products Attention issues: one head's
// columns of [L, H·D] activations (lda = ldb = H·D) into a score block, and
// scores times one head's V columns into a view of the output (ldc = H·Dv).
func TestSgemmAttentionViews(t *testing.T) {
	const lq, lk, heads, d = 37, 45, 3, 8
	r := rand.New(rand.NewPCG(3, 3))
	q, k, v := randn(r, lq, heads*d), randn(r, lk, heads*d), randn(r, lk, heads*d)
	for _, kern := range testKernels() {
		out := Full(float32(math.NaN()), lq, heads*d)
		for h := 0; h < heads; h++ {
			s := make([]float32, lq*lk)
			sgemm(kern, blas.NoTrans, blas.Trans, lq, lk, d, 0.5, q.Data[h*d:], heads*d, k.Data[h*d:], heads*d, 0, s, lk)
			sgemm(kern, blas.NoTrans, blas.NoTrans, lq, d, lk, 1, s, lk, v.Data[h*d:], heads*d, 0, out.Data[h*d:], heads*d)
		}
		want := New(lq, heads*d)
		for h := 0; h < heads; h++ {
			for i := 0; i < lq; i++ {
				for c := 0; c < d; c++ {
					var acc float64
					for j := 0; j < lk; j++ {
						var s float64
						for p := 0; p < d; p++ {
							s += float64(q.Data[i*heads*d+h*d+p]) * float64(k.Data[j*heads*d+h*d+p])
						}
						acc += 0.5 * s * float64(v.Data[j*heads*d+h*d+c])
					}
					want.Data[i*heads*d+h*d+c] = float32(acc)
				}
			}
		}
		assertClose(t, kern.name, out, want, 1e-4)
	}
}

// TestSgemmKernelsAgree checks that every kernel gives the same product
// within float32 rounding, the portable fallback included.
func TestSgemmKernelsAgree(t *testing.T) {
	const m, n, k = 131, 77, 300
	r := rand.New(rand.NewPCG(4, 4))
	a, b := randn(r, m, k), randn(r, k, n)
	var ref []float32
	for i, kern := range sgemmKernels() {
		c := make([]float32, m*n)
		sgemm(kern, blas.NoTrans, blas.NoTrans, m, n, k, 1, a.Data, k, b.Data, n, 0, c, n)
		if i == 0 {
			ref = c
			continue
		}
		if d, at := MaxAbsDiff(FromData(c, m, n), FromData(ref, m, n)); d > 1e-4 {
			t.Errorf("%s vs %s: max abs diff %g at %d", kern.name, sgemmKernels()[0].name, d, at)
		}
	}
}

// TestPackedKernels forces each kernel, the portable fallback included,
// into Packed through sgemmKernel and runs the ops built on it: Conv2d (its
// bias accumulated with beta = 1), Linear (op(B) transposed) and Attention
// (strided head views).
func TestPackedKernels(t *testing.T) {
	defer func(k *kernel) { sgemmKernel = k }(sgemmKernel)
	r := rand.New(rand.NewPCG(13, 13))
	x, w, bias := randn(r, 2, 5, 9, 11), randn(r, 7, 5, 3, 3), randn(r, 7)
	p := Conv2dParams{Stride: 1, Padding: 1}
	wantConv := naiveConv2d(x, w, bias, p)
	lx, lw := randn(r, 3, 19, 33), randn(r, 21, 33)
	q, k, v := randn(r, 2, 23, 3*8), randn(r, 2, 29, 3*8), randn(r, 2, 29, 3*8)
	var wantLinear, wantAttn *Tensor
	for i, kern := range append(sgemmKernels(), genericKernel) {
		sgemmKernel = kern
		assertClose(t, kern.name+" Conv2d", Conv2d(x, w, bias, p), wantConv, 1e-4)
		lin, attn := Linear(lx, lw, nil), Attention(q, k, v, 3, 0.3, false)
		if i == 0 {
			wantLinear, wantAttn = lin, attn
			continue
		}
		assertClose(t, kern.name+" Linear", lin, wantLinear, 1e-4)
		assertClose(t, kern.name+" Attention", attn, wantAttn, 1e-5)
	}
}

// TestSgemmDeterministic checks that splitting a product across goroutines
// (and calls running concurrently) gives bit-identical results to a serial
// run, for products split along n and along m.
func TestSgemmDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(5))
	shapes := [][3]int{{67, 1001, 129}, {1001, 67, 129}, {300, 300, 300}}
	for _, kern := range testKernels() {
		for _, sh := range shapes {
			m, n, k := sh[0], sh[1], sh[2]
			r := rand.New(rand.NewPCG(5, 5))
			a, b, c0 := randn(r, m, k), randn(r, n, k), randn(r, m, n)
			serial := append([]float32(nil), c0.Data...)
			p := sgemmProblem{kern: kern, bTrans: true, m: m, n: n, k: k, alpha: 0.75, beta: 1,
				a: a.Data, lda: k, b: b.Data, ldb: k, c: serial, ldc: n}
			p.block(0, m, 0, n)
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := append([]float32(nil), c0.Data...)
					sgemm(kern, blas.NoTrans, blas.Trans, m, n, k, 0.75, a.Data, k, b.Data, k, 1, c, n)
					for i := range c {
						if c[i] != serial[i] {
							t.Errorf("%s %v: goroutine %d: C[%d] = %g, serial %g", kern.name, sh, g, i, c[i], serial[i])
							return
						}
					}
				}()
			}
			wg.Wait()
		}
	}
}

// TestSgemmConcurrent runs different products from several goroutines at
// once through the default BLAS (run it with -race).
func TestSgemmConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 6))
			for i := 0; i < 4; i++ {
				m, n, k := 1+r.IntN(200), 1+r.IntN(200), 1+r.IntN(200)
				a, b := randn(r, m, k), randn(r, k, n)
				got := MatMul(a, b)
				want := New(m, n)
				for x := 0; x < m; x++ {
					for y := 0; y < n; y++ {
						var s float64
						for p := 0; p < k; p++ {
							s += float64(a.Data[x*k+p]) * float64(b.Data[p*n+y])
						}
						want.Data[x*n+y] = float32(s)
					}
				}
				if d, at := MaxAbsDiff(got, want); d > 1e-4 {
					t.Errorf("goroutine %d: %dx%dx%d: max abs diff %g at %d", g, m, n, k, d, at)
				}
			}
		}()
	}
	wg.Wait()
}

func TestSgemmPanics(t *testing.T) {
	f := make([]float32, 100)
	cases := []struct {
		name string
		call func()
	}{
		{"negative m", func() { Packed{}.Sgemm(blas.NoTrans, blas.NoTrans, -1, 2, 2, 1, f, 2, f, 2, 0, f, 2) }},
		{"bad transpose", func() { Packed{}.Sgemm('x', blas.NoTrans, 2, 2, 2, 1, f, 2, f, 2, 0, f, 2) }},
		{"lda < k", func() { Packed{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, f, 2, f, 2, 0, f, 2) }},
		{"lda < m transposed", func() { Packed{}.Sgemm(blas.Trans, blas.NoTrans, 3, 2, 2, 1, f, 2, f, 2, 0, f, 2) }},
		{"ldc < n", func() { Packed{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 3, 2, 1, f, 2, f, 3, 0, f, 2) }},
		{"short a", func() { Packed{}.Sgemm(blas.NoTrans, blas.NoTrans, 20, 2, 10, 1, f, 10, f, 2, 0, f, 2) }},
		{"short c", func() { Packed{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 10, 2, 1, f, 2, f, 10, 0, f[:15], 10) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tc.call()
		})
	}
}

// TestSgemmNoAlloc checks that packing buffers and the bookkeeping of a
// split product are reused: serial, split across goroutines and transposed
// products allocate nothing once warm.
func TestSgemmNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	r := rand.New(rand.NewPCG(8, 8))
	for _, sz := range [][3]int{{20, 10, 30}, {200, 100, 300}, {256, 40, 512}} {
		m, n, k := sz[0], sz[1], sz[2]
		a, b, c := randn(r, m, k), randn(r, k, n), New(m, n)
		allocs := testing.AllocsPerRun(20, func() {
			Packed{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a.Data, k, b.Data, n, 0, c.Data, n)
		})
		// A garbage collection emptying the pools may cost a refill.
		if allocs > 0.5 {
			t.Errorf("%dx%dx%d: %g allocations per call", m, n, k, allocs)
		}
	}
}

// raceEnabled is set by sgemm_race_test.go in -race builds.
var raceEnabled bool

func benchSgemm(b *testing.B, m, n, k int) {
	r := rand.New(rand.NewPCG(9, 9))
	x, y, z := randn(r, m, k), randn(r, k, n), New(m, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		BLAS.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, x.Data, k, y.Data, n, 0, z.Data, n)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkSgemm_4096(b *testing.B) { benchSgemm(b, 4096, 4096, 4096) }

// BenchmarkSgemmKernel measures each micro-kernel alone on one core, its
// packed panels in L1: the ceiling for the blocked product.
func BenchmarkSgemmKernel(b *testing.B) {
	for _, kern := range sgemmKernels() {
		b.Run(kern.name, func(b *testing.B) {
			const k = 256
			r := rand.New(rand.NewPCG(10, 10))
			a, p, c := randn(r, k, kern.mr), randn(r, k, kern.nr), New(kern.mr, kern.nr)
			for b.Loop() {
				kern.fn(k, &a.Data[0], &p.Data[0], &c.Data[0], kern.nr, 1, 1)
			}
			b.ReportMetric(2*float64(kern.mr*kern.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemmSerial is one core's blocked product, without splitting.
func BenchmarkSgemmSerial(b *testing.B) {
	for _, n := range []int{256, 1024} {
		for _, kern := range sgemmKernels() {
			b.Run(fmt.Sprintf("%d/%s", n, kern.name), func(b *testing.B) {
				r := rand.New(rand.NewPCG(11, 11))
				x, y, z := randn(r, n, n), randn(r, n, n), New(n, n)
				p := sgemmProblem{kern: kern, m: n, n: n, k: n, alpha: 1, a: x.Data, lda: n, b: y.Data, ldb: n, c: z.Data, ldc: n}
				for b.Loop() {
					p.block(0, n, 0, n)
				}
				b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestPanelPackers checks each kernel's packers against the Go ones for
// every panel width and fill they see, and that they write nothing past
// the panels.
func TestPanelPackers(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	const ld = 80
	src := randn(r, 80, ld).Data
	compare := func(t *testing.T, name string, fill func(dst []float32), ref func(dst []float32), size int) {
		t.Helper()
		got, want := make([]float32, size+20), make([]float32, size+20)
		for i := range got {
			got[i], want[i] = sentinel, sentinel
		}
		fill(got)
		ref(want)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: dst[%d] = %g, want %g", name, i, got[i], want[i])
			}
		}
	}
	for _, kern := range sgemmKernels() {
		for _, width := range []int{kern.mr, kern.nr} {
			for _, k := range []int{1, 2, 15, 16, 17, 33} {
				for w := 0; w <= width; w++ {
					compare(t, fmt.Sprintf("%s trans width %d w %d k %d", kern.name, width, w, k),
						func(d []float32) { kern.transPanel(d, width, src, ld, w, k) },
						func(d []float32) { transPanelGo(d, width, src, ld, w, k) }, k*width)
				}
				for n := 1; n <= 3*width+1 && n <= ld; n++ {
					compare(t, fmt.Sprintf("%s copy width %d n %d k %d", kern.name, width, n, k),
						func(d []float32) { kern.copyPanels(d, width, src, ld, n, k) },
						func(d []float32) { copyPanelsGo(d, width, src, ld, n, k) }, (n+width-1)/width*width*k)
				}
			}
		}
	}
}

// TestSgemmBias checks C = A·B + bias·1ᵀ for every kernel (with tiny cache
// blocks too, so the bias must be added in the first k block only and on
// edge tiles), through a parallel split, and through gemmBias's fallback
// when BLAS is not Packed. C starts as NaN: it must not be read.
// TestSgemmBias checks the products with a bias filled in block by block:
// per row (sgemmBias, convolutions: C = A·B + bias·1ᵀ) and per column
// (sgemmLinear, Linear layers: C = A·Bᵀ + 1·biasᵀ), every kernel, the gemm
// wrappers and their fallbacks, for shapes around the tile and block edges
// (n past nc = 2048, k past kc = 384) and a thin one the Linear wrapper
// computes transposed; C's padding must stay untouched.
func TestSgemmBias(t *testing.T) {
	type shape struct{ m, n, k int }
	shapes := []shape{{1, 1, 1}, {3, 5, 7}, {17, 31, 16}, {31, 65, 300}, {64, 300, 127}, {300, 64, 65}, {5, 2, 0}, {3, 2100, 400}, {2, 40, 9}}
	check := func(t *testing.T, name string, s shape, perColumn bool, run func(a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int)) {
		t.Helper()
		tc := gemmCase{tB: perColumn, m: s.m, n: s.n, k: s.k, alpha: 1, beta: 0, pad: 3}
		r := rand.New(rand.NewPCG(uint64(s.m), uint64(s.n*1000+s.k)))
		a, lda, b, ldb, c, ldc := gemmOperands(r, tc)
		bias := make([]float32, s.m)
		if perColumn {
			bias = make([]float32, s.n)
		}
		for i := range bias {
			bias[i] = float32(r.NormFloat64())
		}
		want, scale := naiveGemm(tc, a, lda, b, ldb, c, ldc)
		run(a, lda, b, ldb, bias, c, ldc)
		const eps = 1.0 / (1 << 23)
		rtol := 2 * (math.Sqrt(float64(s.k)) + 2) * eps
		for i := 0; i < s.m; i++ {
			for j := 0; j < ldc && i*ldc+j < len(c); j++ {
				got := c[i*ldc+j]
				if j >= s.n {
					if got != sentinel {
						t.Fatalf("%s %v: C padding [%d][%d] overwritten", name, s, i, j)
					}
					continue
				}
				bi := i
				if perColumn {
					bi = j
				}
				bv := float64(bias[bi])
				w := want[i*s.n+j] + bv
				tol := rtol*(scale[i*s.n+j]+math.Abs(bv)) + 1e-30
				if d := math.Abs(float64(got) - w); !(d <= tol) {
					t.Fatalf("%s %v: C[%d][%d] = %g, want %g (diff %g > %g)", name, s, i, j, got, w, d, tol)
				}
			}
		}
	}
	for _, s := range shapes {
		for _, kern := range append(testKernels(), genericKernel) {
			check(t, kern.name, s, false, func(a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
				sgemmBias(kern, s.m, s.n, s.k, a, lda, b, ldb, bias, c, ldc)
			})
			if s.k > 0 {
				check(t, kern.name+" linear", s, true, func(a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
					sgemmLinear(kern, s.m, s.n, s.k, a, lda, b, ldb, bias, c, ldc)
				})
			}
		}
		gemms := func(suffix string) {
			check(t, "gemmBias"+suffix, s, false, func(a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
				gemmBias(s.m, s.n, s.k, a, lda, b, ldb, bias, c, ldc)
			})
			check(t, "gemmLinear"+suffix, s, true, func(a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
				gemmLinear(s.m, s.n, s.k, a, lda, b, ldb, bias, c, ldc)
			})
		}
		gemms("")
		old := BLAS
		BLAS = struct{ Packed }{} // not Packed itself: the wrappers take their fallbacks
		gemms(" fallback")
		BLAS = old
	}
}

// TestTranspose checks every kernel's transposer against the definition,
// for sizes around its block edges, and that it writes nothing of dst
// besides the transposed elements (dst's row stride leaves gaps).
func TestTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for _, kern := range append(sgemmKernels(), genericKernel) {
		for _, rows := range []int{1, 3, 15, 16, 17, 40, 77} {
			for _, cols := range []int{1, 7, 16, 33, 100} {
				lds, ldd := cols+3, rows+5
				src := make([]float32, rows*lds)
				for i := range src {
					src[i] = r.Float32()
				}
				dst := make([]float32, cols*ldd)
				for i := range dst {
					dst[i] = -1
				}
				kern.transpose(dst, ldd, src, lds, rows, cols)
				for c := range cols {
					for j := range ldd {
						want := float32(-1)
						if j < rows {
							want = src[j*lds+c]
						}
						if got := dst[c*ldd+j]; got != want {
							t.Fatalf("%s %dx%d: dst[%d][%d] = %v, want %v", kern.name, rows, cols, c, j, got, want)
						}
					}
				}
			}
		}
	}
}

package tensor

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"gonum.org/v1/gonum/blas"
)

// Packed is a cache-blocked, packed single-precision GEMM in the structure of
// GotoBLAS and BLIS (Goto & van de Geijn, "Anatomy of High-Performance Matrix
// Multiplication", ACM TOMS 2008; Van Zee & van de Geijn, "BLIS: A Framework
// for Rapidly Instantiating BLAS Functionality", ACM TOMS 2015):
//
//	for jc in steps of nc over n:           B block [kc×nc] lives in L3
//	  for pc in steps of kc over k:         pack op(B)[pc:pc+kc, jc:jc+nc]
//	    for ic in steps of mc over m:       pack op(A)[ic:ic+mc, pc:pc+kc], in L2
//	      for jr in steps of nr over nc:    B micro-panel [kc×nr] stays in L1
//	        for ir in steps of mr over mc:  micro-kernel: C[mr×nr] += A·B
//
// Packing copies op(A) into row micro-panels of mr rows stored k-major and
// op(B) into column micro-panels of nr columns, zero-padded at the edges, so
// transposes and strides cost nothing past the packing step and the
// micro-kernel reads both operands contiguously. The micro-kernel keeps the
// mr×nr block of C in registers: on amd64 it is assembly, 14×32 with AVX-512
// or 6×16 with AVX2+FMA, chosen at start-up from CPUID; elsewhere (or built
// with -tags purego) a portable Go kernel. Every element of C is computed in the same order however many
// goroutines share the work, so results do not depend on GOMAXPROCS or on
// concurrent calls.
//
// Large products are split across up to runtime.GOMAXPROCS(0) goroutines,
// each with at least parallelMinWork multiply-adds; goroutines already inside
// Sgemm count against that limit, so products issued concurrently (as
// Attention does) do not oversubscribe the CPUs. Packing buffers are reused
// through a sync.Pool: a warm Sgemm does not allocate.
type Packed struct{}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, with
// op(A) m×k, op(B) k×n and C m×n; see Sgemmer. With beta = 0, C is
// overwritten without being read (NaNs in C do not propagate); with k = 0 or
// alpha = 0, C becomes beta·C. It panics, as gonum's Sgemm does, on a bad
// transpose, negative sizes, leading dimensions smaller than a row, or slices
// too short for the matrices they hold.
func (Packed) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(sgemmKernel, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemm is Packed.Sgemm with the micro-kernel given, so tests can run every
// kernel the CPU supports.
func sgemm(kern *kernel, tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aTrans, bTrans := isTrans(tA), isTrans(tB)
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("tensor: Sgemm with negative size m=%d n=%d k=%d", m, n, k))
	}
	aRows, aCols := m, k
	if aTrans {
		aRows, aCols = k, m
	}
	bRows, bCols := k, n
	if bTrans {
		bRows, bCols = n, k
	}
	if lda < max(1, aCols) || ldb < max(1, bCols) || ldc < max(1, n) {
		panic(fmt.Sprintf("tensor: Sgemm leading dimensions lda=%d ldb=%d ldc=%d for %d×%d · %d×%d", lda, ldb, ldc, aRows, aCols, bRows, bCols))
	}
	if m == 0 || n == 0 {
		return
	}
	if (aRows > 0 && len(a) < (aRows-1)*lda+aCols) || (bRows > 0 && len(b) < (bRows-1)*ldb+bCols) || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("tensor: Sgemm slices too short: len(a)=%d len(b)=%d len(c)=%d for %d×%d · %d×%d", len(a), len(b), len(c), aRows, aCols, bRows, bCols))
	}
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	p := sgemmProblem{
		kern:   kern,
		aTrans: aTrans, bTrans: bTrans,
		m: m, n: n, k: k,
		alpha: alpha, beta: beta,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
	}
	if transposeFits(kern, m, n) {
		p.runTransposed()
		return
	}
	p.run()
}

// sgemmBias computes C = A·B + bias·1ᵀ (bias[i] added to row i) for
// row-major A m×k, B k×n and C m×n, without reading C: the convolution's
// output with its bias, in one pass.
func sgemmBias(kern *kernel, m, n, k int, a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if len(bias) < m || lda < max(1, k) || ldb < max(1, n) || ldc < max(1, n) ||
		len(a) < (m-1)*lda+k || (k > 0 && len(b) < (k-1)*ldb+n) || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("tensor: sgemmBias operands too short for %d×%d · %d×%d (bias %d)", m, k, k, n, len(bias)))
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			fill(c[i*ldc:i*ldc+n], bias[i])
		}
		return
	}
	p := sgemmProblem{kern: kern, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, bias: bias}
	p.run()
}

// sgemmLinear computes C = A·Bᵀ + 1·biasᵀ (bias[j] added to column j) for
// row-major A m×k and B n×k, without reading C: a Linear layer's
// y = x·Wᵀ + b in one pass over y.
func sgemmLinear(kern *kernel, m, n, k int, a []float32, lda int, b []float32, ldb int, bias, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k < 1 || len(bias) < n || lda < k || ldb < k || ldc < n ||
		len(a) < (m-1)*lda+k || len(b) < (n-1)*ldb+k || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("tensor: sgemmLinear operands too short for %d×%d · (%d×%d)ᵀ (bias %d)", m, k, n, k, len(bias)))
	}
	p := sgemmProblem{kern: kern, bTrans: true, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, colBias: bias}
	p.run()
}

// sgemmFilled is sgemmBias (bias may be nil: C = A·B) with B given by its
// block filler (see sgemmProblem.bFill) instead of stored.
func sgemmFilled(kern *kernel, m, n, k int, a []float32, lda int, bFill func(dst []float32, ld, q0, kq, j0, n int), bias, c []float32, ldc int) {
	if m == 0 || n == 0 || k == 0 {
		panic(fmt.Sprintf("tensor: sgemmFilled of an empty product %d×%d·%d×%d", m, k, k, n))
	}
	if (bias != nil && len(bias) < m) || lda < k || ldc < n || len(a) < (m-1)*lda+k || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("tensor: sgemmFilled operands too short for %d×%d · %d×%d", m, k, k, n))
	}
	p := sgemmProblem{kern: kern, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, bFill: bFill, c: c, ldc: ldc, bias: bias}
	p.run()
}

// transposeFits reports whether C = op(A)·op(B) is better computed as
// Cᵀ = op(B)ᵀ·op(A)ᵀ, the kernel's tiles wasting much less of a thin C that
// way: attention's probabilities·V has n = 40 columns (two 32-wide tiles,
// 62% used) but rows by the hundred, which fill 14-row tiles (95% used).
func transposeFits(kern *kernel, m, n int) bool {
	if n >= 2*kern.nr || m*n > 1<<20 {
		return false
	}
	used := func(x, tile int) float64 { return float64(x) / float64((x+tile-1)/tile*tile) }
	return used(n, kern.mr)*used(m, kern.nr) > 1.25*used(n, kern.nr)*used(m, kern.mr)
}

// runTransposed computes Cᵀ = alpha·op(B)ᵀ·op(A)ᵀ into a scratch n×m
// matrix and adds its transpose to beta·C.
func (p *sgemmProblem) runTransposed() {
	buf := sgemmPool.Get().(*sgemmBuf)
	ct := aligned(&buf.ct, p.m*p.n)
	q := *p
	q.aTrans, q.bTrans = !p.bTrans, !p.aTrans
	q.m, q.n = p.n, p.m
	q.a, q.lda, q.b, q.ldb = p.b, p.ldb, p.a, p.lda
	q.beta, q.c, q.ldc = 0, ct, p.m
	q.run()
	if p.beta == 0 {
		p.kern.transpose(p.c, p.ldc, ct, p.m, p.n, p.m)
	} else {
		for i := 0; i < p.m; i++ {
			row := p.c[i*p.ldc : i*p.ldc+p.n]
			for j := range row {
				row[j] = ct[j*p.m+i] + p.beta*row[j]
			}
		}
	}
	sgemmPool.Put(buf)
}

func isTrans(t blas.Transpose) bool {
	switch t {
	case blas.NoTrans:
		return false
	case blas.Trans, blas.ConjTrans:
		return true
	}
	panic(fmt.Sprintf("tensor: Sgemm bad transpose %v", t))
}

// scaleC sets C = beta·C, writing zeros for beta = 0 (BLAS semantics: C is
// not read then).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// microKernel computes, for packed micro-panels a [k×mr] (k-major) and
// b [k×nr], the mr×nr block C = alpha·a·b + beta·C at c with row stride ldc
// (in elements). With beta = 0, C is not read. k ≥ 1.
type microKernel func(k int, a, b, c *float32, ldc int, alpha, beta float32)

// kernel is a micro-kernel with its register block (mr×nr), the cache
// blocks that suit it (mc×kc of A in L2, kc×nc of B in L3) and the panel
// packers for its instruction set.
type kernel struct {
	name       string
	mr, nr     int
	mc, kc, nc int
	fn         microKernel
	copyPanels panelsCopier
	transPanel panelPacker
	transpose  transposer
}

// transposer sets dst[c·ldd+r] = src[r·lds+c] for r < rows, c < cols,
// writing nothing else of dst.
type transposer func(dst []float32, ldd int, src []float32, lds, rows, cols int)

// transposeGo is the portable transposer, in bands of 64 columns of src
// (rows of dst): each band reads 64 consecutive floats of every row of src.
// Walking dst row by row instead reads src down its columns, lds floats
// apart: with lds a power of two (4096 latent pixels) every read maps to
// the same L1 set.
func transposeGo(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	const band = 64
	for c0 := 0; c0 < cols; c0 += band {
		c1 := min(c0+band, cols)
		for r := 0; r < rows; r++ {
			d := dst[c0*ldd+r:]
			for dc, v := range src[r*lds+c0 : r*lds+c1] {
				d[dc*ldd] = v
			}
		}
	}
}

// sgemmKernel is the micro-kernel Packed uses, the fastest one the CPU
// supports, chosen at start-up by sgemm_amd64.go or sgemm_other.go.
var sgemmKernel *kernel

// parallelMinWork is the smallest product (m·n·k multiply-adds) split across
// goroutines; below it the goroutine start and join (a few µs) cost more than
// the second core gains.
const parallelMinWork = 1 << 18

// sgemmBusy counts goroutines currently working inside Packed.Sgemm, so that
// concurrent calls share GOMAXPROCS instead of each taking all of it.
var sgemmBusy atomic.Int32

// sgemmProblem is one call's operands; run and block work on sub-ranges of it.
type sgemmProblem struct {
	kern           *kernel
	aTrans, bTrans bool
	m, n, k        int
	alpha, beta    float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
	// bias, when set (with beta 0), adds bias[i] to row i of C: each
	// mc×nc block of C is filled with its rows' bias just before the first
	// k block's micro-kernels accumulate onto it, while it is in cache,
	// instead of in a separate pass over C.
	bias []float32
	// colBias, when set instead (with beta 0), adds colBias[j] to column
	// j of C (a Linear layer's bias), filled in the same way.
	colBias []float32
	// bFill, when set, stands for b: it fills dst[q·ld+j] with
	// op(B)[q0+q][j0+j] for q < kq, j < n, so that B (an im2col matrix) is
	// built a kc×nc block at a time, in cache, and never whole in memory.
	bFill func(dst []float32, ld, q0, kq, j0, n int)
}

// run computes the product, splitting C into independent column (or row)
// ranges across goroutines when it is large enough. Ranges start at
// multiples of nr (or mr), so every element is computed by the same kernel
// tile, in the same order, as in a serial run.
func (p *sgemmProblem) run() {
	workers := 1
	if work := float64(p.m) * float64(p.n) * float64(p.k); work >= parallelMinWork {
		procs := int32(runtime.GOMAXPROCS(0))
		workers = int(max(1, procs-sgemmBusy.Load()))
		workers = min(workers, int(work/parallelMinWork))
	}
	kr := p.kern
	// Split the longer side of C (in units of tiles): splitting n shares
	// nothing but A's packing, splitting m nothing but B's.
	splitN := (p.n+kr.nr-1)/kr.nr >= (p.m+kr.mr-1)/kr.mr
	unit, extent := kr.mr, p.m
	if splitN {
		unit, extent = kr.nr, p.n
	}
	units := (extent + unit - 1) / unit
	workers = min(workers, units)
	if workers <= 1 {
		sgemmBusy.Add(1)
		p.block(0, p.m, 0, p.n)
		sgemmBusy.Add(-1)
		return
	}
	// Two chunks per worker, taken in order, even out a core that is slower
	// (busy with another process); each chunk repacks the operand it shares
	// (all of op(A) or op(B)), so only chunks of 256 or more rows or columns
	// are worth it.
	chunks := workers
	if extent >= 2*workers*256 {
		chunks = min(units, 2*workers)
	}
	per := (units + chunks - 1) / chunks * unit
	sp := sgemmSplitPool.Get().(*sgemmSplit)
	sp.p, sp.splitN, sp.per, sp.extent = *p, splitN, per, extent
	sp.chunks = int32((extent + per - 1) / per)
	sp.next.Store(0)
	sgemmBusy.Add(int32(workers))
	sp.wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go sp.worker()
	}
	sp.work()
	sp.wg.Wait()
	sgemmBusy.Add(-int32(workers))
	sp.p = sgemmProblem{}
	sgemmSplitPool.Put(sp)
}

// sgemmSplit is one product shared by several goroutines: chunks of
// extent (C's columns if splitN, else its rows) of per each, taken in turn.
type sgemmSplit struct {
	p           sgemmProblem
	splitN      bool
	per, extent int
	chunks      int32
	next        atomic.Int32
	wg          sync.WaitGroup
}

var sgemmSplitPool = sync.Pool{New: func() any { return new(sgemmSplit) }}

func (sp *sgemmSplit) worker() {
	sp.work()
	sp.wg.Done()
}

func (sp *sgemmSplit) work() {
	p := &sp.p
	for {
		i := sp.next.Add(1) - 1
		if i >= sp.chunks {
			return
		}
		lo, hi := int(i)*sp.per, min(sp.extent, int(i+1)*sp.per)
		if sp.splitN {
			p.block(0, p.m, lo, hi)
		} else {
			p.block(lo, hi, 0, p.n)
		}
	}
}

// sgemmBuf holds one goroutine's packing buffers.
type sgemmBuf struct {
	a, b, tmp, ct, bsrc []float32
}

var sgemmPool = sync.Pool{New: func() any { return new(sgemmBuf) }}

// aligned returns a slice of n floats starting on a 64-byte boundary,
// reusing *buf when it is large enough.
func aligned(buf *[]float32, n int) []float32 {
	const pad = 16
	if cap(*buf) < n+pad {
		*buf = make([]float32, n+pad)
	}
	s := (*buf)[:n+pad]
	off := int(uintptr(unsafe.Pointer(&s[0]))&63) / 4
	if off != 0 {
		off = pad - off
	}
	return s[off : off+n]
}

// block computes rows [i0, i1) and columns [j0, j1) of C: the serial
// five-loop algorithm described at Packed.
func (p *sgemmProblem) block(i0, i1, j0, j1 int) {
	kr := p.kern
	mr, nr := kr.mr, kr.nr
	m, n := i1-i0, j1-j0
	// k in ⌈k/kc⌉ equal blocks, so that no block is a sliver.
	kc := (p.k + (p.k+kr.kc-1)/kr.kc - 1) / ((p.k + kr.kc - 1) / kr.kc)
	nc := min(max(nr, kr.nc/nr*nr), (n+nr-1)/nr*nr)
	mc := min(max(mr, kr.mc/mr*mr), (m+mr-1)/mr*mr)

	buf := sgemmPool.Get().(*sgemmBuf)
	ap := aligned(&buf.a, mc*kc)
	bp := aligned(&buf.b, kc*nc)
	tmp := aligned(&buf.tmp, mr*nr)

	for jc := j0; jc < j1; jc += nc {
		ncc := min(nc, j1-jc)
		for pc := 0; pc < p.k; pc += kc {
			kcc := min(kc, p.k-pc)
			beta := p.beta
			if pc > 0 {
				beta = 1
			}
			p.packB(buf, bp, pc, kcc, jc, ncc)
			for ic := i0; ic < i1; ic += mc {
				mcc := min(mc, i1-ic)
				p.packA(ap, ic, mcc, pc, kcc)
				if pc == 0 && (p.bias != nil || p.colBias != nil) {
					// The block of C starts from its bias, filled row
					// segment by row segment just before the kernels
					// accumulate onto it (it is then in cache).
					for i := ic; i < ic+mcc; i++ {
						seg := p.c[i*p.ldc+jc : i*p.ldc+jc+ncc]
						if p.bias != nil {
							fill(seg, p.bias[i])
						} else {
							copy(seg, p.colBias[jc:jc+ncc])
						}
					}
					beta = 1
				}
				p.macro(ap, bp, tmp, ic, mcc, jc, ncc, kcc, beta)
			}
		}
	}
	sgemmPool.Put(buf)
}

// macro multiplies a packed mcc×kcc block of A by a packed kcc×ncc block of
// B into C[ic:ic+mcc, jc:jc+ncc], one mr×nr tile at a time. Tiles cut by the
// edge of C go through tmp.
func (p *sgemmProblem) macro(ap, bp, tmp []float32, ic, mcc, jc, ncc, kcc int, beta float32) {
	kr := p.kern
	mr, nr := kr.mr, kr.nr
	alpha, ldc := p.alpha, p.ldc
	for jr := 0; jr < ncc; jr += nr {
		nrr := min(nr, ncc-jr)
		b := &bp[jr*kcc]
		for ir := 0; ir < mcc; ir += mr {
			mrr := min(mr, mcc-ir)
			a := &ap[ir*kcc]
			off := (ic+ir)*ldc + jc + jr
			if mrr == mr && nrr == nr {
				kr.fn(kcc, a, b, &p.c[off], ldc, alpha, beta)
				continue
			}
			// Edge tile: run the same kernel on a full tile in tmp so these
			// elements are rounded exactly as the others.
			if beta != 0 {
				for i := 0; i < mrr; i++ {
					copy(tmp[i*nr:i*nr+nrr], p.c[off+i*ldc:off+i*ldc+nrr])
				}
			}
			kr.fn(kcc, a, b, &tmp[0], nr, alpha, beta)
			for i := 0; i < mrr; i++ {
				copy(p.c[off+i*ldc:off+i*ldc+nrr], tmp[i*nr:i*nr+nrr])
			}
		}
	}
}

// packA copies op(A)[ic:ic+mcc, pc:pc+kcc] into dst as ⌈mcc/mr⌉ micro-panels
// of kcc×mr (k-major), zero-filling rows past mcc.
func (p *sgemmProblem) packA(dst []float32, ic, mcc, pc, kcc int) {
	kr := p.kern
	mr := kr.mr
	if p.aTrans {
		// op(A)[i][q] = a[q*lda+i]: each k step is a run of mcc floats.
		copySlabs(kr.copyPanels, dst, mr, p.a[pc*p.lda+ic:], p.lda, mcc, kcc)
		return
	}
	// op(A)[i][q] = a[i*lda+q]: mr rows of a at a time, transposed.
	for ir := 0; ir < mcc; ir += mr {
		mrr := min(mr, mcc-ir)
		panel := dst[ir*kcc : ir*kcc+mr*kcc]
		kr.transPanel(panel, mr, p.a[(ic+ir)*p.lda+pc:], p.lda, mrr, kcc)
	}
}

// packB copies op(B)[pc:pc+kcc, jc:jc+ncc] into dst as ⌈ncc/nr⌉
// micro-panels of kcc×nr, zero-filling columns past ncc. A filled B is
// first built into buf's bsrc.
func (p *sgemmProblem) packB(buf *sgemmBuf, dst []float32, pc, kcc, jc, ncc int) {
	kr := p.kern
	nr := kr.nr
	if p.bFill != nil {
		src := aligned(&buf.bsrc, kcc*ncc)
		p.bFill(src, ncc, pc, kcc, jc, ncc)
		copySlabs(kr.copyPanels, dst, nr, src, ncc, ncc, kcc)
		return
	}
	if !p.bTrans {
		// op(B)[q][j] = b[q*ldb+j]: each k step is a run of ncc floats.
		copySlabs(kr.copyPanels, dst, nr, p.b[pc*p.ldb+jc:], p.ldb, ncc, kcc)
		return
	}
	// op(B)[q][j] = b[j*ldb+q]: nr rows of b at a time, transposed.
	for jr := 0; jr < ncc; jr += nr {
		nrr := min(nr, ncc-jr)
		panel := dst[jr*kcc : jr*kcc+nr*kcc]
		kr.transPanel(panel, nr, p.b[(jc+jr)*p.ldb+pc:], p.ldb, nrr, kcc)
	}
}

// Packers fill micro-panels of the given width (mr or nr) from a matrix src
// with row stride ld. copyPanels packs n columns, k rows deep, into
// ⌈n/width⌉ panels, reading src a row at a time (sequential memory):
//
//	dst[(j/width)*width*k + q*width + j%width] = src[q*ld+j]  (j < n, q < k)
//
// transPanels packs one panel from w ≤ width rows of src, transposed:
//
//	dst[q*width+j] = src[j*ld+q]  (j < w, q < k)
//
// Both zero-fill the panel columns past the data.
type (
	panelsCopier func(dst []float32, width int, src []float32, ld, n, k int)
	panelPacker  func(dst []float32, width int, src []float32, ld, w, k int)
)

// copySlabs runs copy over slabs of four panels: reading 4·width floats of
// each row, writing four panels at a time, is 2-3× faster than whole rows
// across dozens of panels (which each sit in their own pages).
func copySlabs(copy panelsCopier, dst []float32, width int, src []float32, ld, n, k int) {
	const slab = 4
	for j := 0; j < n; j += slab * width {
		copy(dst[j*k:], width, src[j:], ld, min(slab*width, n-j), k)
	}
}

func copyPanelsGo(dst []float32, width int, src []float32, ld, n, k int) {
	for q := 0; q < k; q++ {
		row := src[q*ld : q*ld+n]
		for j0 := 0; j0 < n; j0 += width {
			d := dst[j0*k+q*width : j0*k+q*width+width]
			copy(d, row[j0:])
			clear(d[min(width, n-j0):])
		}
	}
}

func transPanelGo(dst []float32, width int, src []float32, ld, w, k int) {
	dst = dst[:k*width]
	for j := 0; j < w; j++ {
		row := src[j*ld : j*ld+k]
		for q, v := range row {
			dst[q*width+j] = v
		}
	}
	if w < width {
		for q := 0; q < k; q++ {
			clear(dst[q*width+w : q*width+width])
		}
	}
}

// genericKernel is the portable micro-kernel: 4×4 register blocking in plain
// Go, used where no assembly kernel fits the CPU.
var genericKernel = &kernel{
	name: "generic 4×4", mr: 4, nr: 4, mc: 128, kc: 256, nc: 2048,
	fn: kernelGeneric4x4, copyPanels: copyPanelsGo, transPanel: transPanelGo, transpose: transposeGo,
}

func kernelGeneric4x4(k int, ap, bp, cp *float32, ldc int, alpha, beta float32) {
	a := unsafe.Slice(ap, 4*k)
	b := unsafe.Slice(bp, 4*k)
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	for q := 0; q < k; q++ {
		av := (*[4]float32)(a[4*q:])
		bv := (*[4]float32)(b[4*q:])
		a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	c := unsafe.Slice(cp, 3*ldc+4)
	acc := [4][4]float32{
		{c00, c01, c02, c03},
		{c10, c11, c12, c13},
		{c20, c21, c22, c23},
		{c30, c31, c32, c33},
	}
	for i := range acc {
		row := (*[4]float32)(c[i*ldc:])
		for j, v := range acc[i] {
			if beta == 0 {
				row[j] = alpha * v
			} else {
				row[j] = alpha*v + beta*row[j]
			}
		}
	}
}

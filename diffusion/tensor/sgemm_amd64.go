//go:build !purego

package tensor

// Assembly in sgemm_amd64.s.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv() (eax, edx uint32)

//go:noescape
func kernel6x16AVX2(k int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernel14x32AVX512(k int, a, b, c *float32, ldc int, alpha, beta float32)

// avx512Kernel is 14×32 with 28 ZMM accumulators (AVX-512 has 32 vector
// registers: two more hold b's 32 values and two a's broadcasts), 28 FMAs
// per 16 loads. An mc×kc block of A (210 KiB) sits in L2 and a kc×nc block
// of B (3 MiB) in L3; the kc×32 micro-panel of B (48 KiB) streams from L1
// and L2 at 9 bytes a cycle. The blocks were measured on Zen 5 over kc
// 192-512, mc 70-280 and nc 512-4096: all within a few percent, kc = 384
// ahead on the k = 320 products common in the SD UNet (one pass over C).
var avx512Kernel = &kernel{
	name: "avx512 14×32", mr: 14, nr: 32, mc: 140, kc: 384, nc: 2048,
	fn: kernel14x32AVX512, copyPanels: copyPanelsAVX512, transPanel: transPanelAVX512, transpose: transposeAVX512,
}

// avx2Kernel is 6×16 with twelve YMM accumulators (as BLIS's Haswell and Zen
// sgemm kernels). kc = 256 keeps a 16 KiB micro-panel of B in L1; an mc×kc
// block of A (144 KiB) sits in L2.
var avx2Kernel = &kernel{
	name: "avx2 6×16", mr: 6, nr: 16, mc: 144, kc: 256, nc: 2048,
	fn: kernel6x16AVX2, copyPanels: copyPanelsGo, transPanel: transPanelAVX2, transpose: transposeGo,
}

//go:noescape
func transPanel8AVX2(dst *float32, width int, src *float32, ld, rows, k, sw int)

// transPanelAVX2 is transPanelGo for panel widths 8j or 8j+6 (the AVX2
// kernel's are 6 and 16), transposing 8×8 blocks in registers, in bands of 8 columns of dst;
// the last k%8 steps are done in Go.
func transPanelAVX2(dst []float32, width int, src []float32, ld, w, k int) {
	if width%8 != 0 && width%8 != 6 {
		transPanelGo(dst, width, src, ld, w, k)
		return
	}
	if w > width || len(dst) < k*width || (w > 0 && len(src) < (w-1)*ld+k) {
		panic("tensor: transPanelAVX2 bounds")
	}
	k8 := k &^ 7
	for j := 0; j < width; j += 8 {
		rows, sw := min(8, max(0, w-j)), min(8, width-j)
		if k8 > 0 {
			s := &src[0]
			if rows > 0 {
				s = &src[j*ld]
			}
			transPanel8AVX2(&dst[j], width, s, ld, rows, k8, sw)
		}
		for q := k8; q < k; q++ {
			d := dst[q*width+j : q*width+j+sw]
			for r := range d {
				if r < rows {
					d[r] = src[(j+r)*ld+q]
				} else {
					d[r] = 0
				}
			}
		}
	}
}

//go:noescape
func copyPanels32AVX512(dst *float32, width int, src *float32, ld, n, k int)

//go:noescape
func transPanel16AVX512(dst *float32, width int, src *float32, ld, rows, k, sw int)

// copyPanelsAVX512 is copyPanelsGo for width ≤ 32, with masked loads and
// stores (which touch no memory outside the mask).
func copyPanelsAVX512(dst []float32, width int, src []float32, ld, n, k int) {
	if k == 0 || n == 0 {
		return
	}
	if width > 32 || len(dst) < (n+width-1)/width*width*k || len(src) < (k-1)*ld+n {
		panic("tensor: copyPanelsAVX512 bounds")
	}
	copyPanels32AVX512(&dst[0], width, &src[0], ld, n, k)
}

// transPanelAVX512 is transPanelGo, transposing 16×16 blocks in registers;
// widths over 16 are done in bands of 16 columns of dst.
func transPanelAVX512(dst []float32, width int, src []float32, ld, w, k int) {
	if k == 0 {
		return
	}
	if w > width || len(dst) < k*width || (w > 0 && len(src) < (w-1)*ld+k) {
		panic("tensor: transPanelAVX512 bounds")
	}
	for j := 0; j < width; j += 16 {
		rows := min(16, max(0, w-j))
		s := &src[0]
		if rows > 0 {
			s = &src[j*ld]
		}
		transPanel16AVX512(&dst[j], width, s, ld, rows, k, min(16, width-j))
	}
}

// transposeAVX512 is transposeGo with 16×16 blocks transposed in
// registers by transPanel16AVX512, in bands of 16 rows of src; its masked
// loads and stores touch only the rows that exist (rows = sw).
func transposeAVX512(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	if len(dst) < (cols-1)*ldd+rows || len(src) < (rows-1)*lds+cols {
		panic("tensor: transposeAVX512 bounds")
	}
	for r0 := 0; r0 < rows; r0 += 16 {
		sw := min(16, rows-r0)
		transPanel16AVX512(&dst[r0], ldd, &src[r0*lds], lds, sw, cols, sw)
	}
}

// cpuFeatures reports what the CPU and OS support: AVX2 with FMA (CPUID and
// the YMM state enabled in XCR0) and AVX-512F (ZMM and opmask state too).
func cpuFeatures() (avx2FMA, avx512 bool) {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false, false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false, false
	}
	xcr0, _ := xgetbv()
	const (
		sseYMM    = 1<<1 | 1<<2
		opmaskZMM = 1<<5 | 1<<6 | 1<<7
	)
	if xcr0&sseYMM != sseYMM {
		return false, false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	avx2FMA = ebx7&(1<<5) != 0
	avx512 = avx2FMA && ebx7&(1<<16) != 0 && xcr0&opmaskZMM == opmaskZMM
	return avx2FMA, avx512
}

// sgemmKernels lists the kernels this CPU can run, fastest first.
func sgemmKernels() []*kernel {
	ks := []*kernel{genericKernel}
	avx2FMA, avx512 := cpuFeatures()
	if avx2FMA {
		ks = append([]*kernel{avx2Kernel}, ks...)
	}
	if avx512 {
		ks = append([]*kernel{avx512Kernel}, ks...)
	}
	return ks
}

func init() { sgemmKernel = sgemmKernels()[0] }

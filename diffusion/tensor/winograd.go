package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Winograd F(2x2, 3x3) convolution (Lavin and Gray 2015, "Fast Algorithms
// for Convolutional Neural Networks", arXiv:1509.09308), the algorithm
// cuDNN, oneDNN and NNPACK use for 3x3 stride-1 convolutions. Each 2x2 tile
// of output is
//
//	Y = Aᵀ·[Σ_c (G·g_c·Gᵀ) ⊙ (Bᵀ·d_c·B)]·A
//
// for the 4x4 input patch d_c of every input channel c and its 3x3 filter
// g_c, with
//
//	G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//	Aᵀ = [1 1 1 0; 0 1 −1 −1]
//
// The sum over channels is 16 matrix products, one per position ξ of the
// 4x4 transformed tile: M_ξ [Cout, tiles] = U_ξ [Cout, Cin] · V_ξ [Cin,
// tiles], with U = G·g·Gᵀ and V = Bᵀ·d·B. That is 16 multiplications per
// tile and channel pair where direct convolution needs 36: 2.25× fewer
// FLOPs. The transforms only add and subtract (and halve, in G), so the
// rounding error stays that of a direct convolution's sums of products.

// winoImpl is a pair of tile transforms, sixteen tiles at a time in the
// vector versions (winograd_amd64.s).
//
// input sets V_ξ[j] = (Bᵀ·d_j·B)[ξ] at dst[ξ·ld+j] for the n tiles j, d_j
// the 4x4 patch at columns 2j … 2j+3 of the four rows at src (ls floats
// apart). It may read columns below 32·⌈n/16⌉ + 2 of those rows.
//
// output writes the 2x2 block Aᵀ·M_j·A + bias of tile j, M_j[ξ] at
// src[ξ·ld+j], to columns 2j and 2j+1 of the first rows (1 or 2) rows at
// dst (ldd floats apart), only below column w.
type winoImpl struct {
	name   string
	input  func(src []float32, ls int, dst []float32, ld, n int)
	output func(src []float32, ld int, dst []float32, ldd, rows, n, w int, bias float32)
}

// winoGo is the portable winoImpl, the reference the tests hold the vector
// versions to.
var winoGo = winoImpl{"go", winoInputGo, winoOutputGo}

func winoInputGo(src []float32, ls int, dst []float32, ld, n int) {
	var d, t [4][4]float32
	for j := range n {
		for r := range 4 {
			copy(d[r][:], src[r*ls+2*j:r*ls+2*j+4])
		}
		for c := range 4 { // Bᵀ·d
			t[0][c] = d[0][c] - d[2][c]
			t[1][c] = d[1][c] + d[2][c]
			t[2][c] = d[2][c] - d[1][c]
			t[3][c] = d[1][c] - d[3][c]
		}
		for i := range 4 { // ·B
			dst[(4*i+0)*ld+j] = t[i][0] - t[i][2]
			dst[(4*i+1)*ld+j] = t[i][1] + t[i][2]
			dst[(4*i+2)*ld+j] = t[i][2] - t[i][1]
			dst[(4*i+3)*ld+j] = t[i][1] - t[i][3]
		}
	}
}

func winoOutputGo(src []float32, ld int, dst []float32, ldd, rows, n, w int, bias float32) {
	var s [2][4]float32
	for j := range n {
		for c := range 4 { // Aᵀ·M
			m0, m1, m2, m3 := src[c*ld+j], src[(4+c)*ld+j], src[(8+c)*ld+j], src[(12+c)*ld+j]
			s[0][c] = m0 + m1 + m2
			s[1][c] = m1 - m2 - m3
		}
		for i := range rows { // ·A
			y0 := s[i][0] + s[i][1] + s[i][2] + bias
			y1 := s[i][1] - s[i][2] - s[i][3] + bias
			dst[i*ldd+2*j] = y0
			if 2*j+1 < w {
				dst[i*ldd+2*j+1] = y1
			}
		}
	}
}

// winoMaxFloats bounds each of the transformed-input and product buffers
// of one block of tile rows (16·max(Cin, Cout)·tiles floats, 8 MiB). A
// variable only so the tests can make blocks small.
var winoMaxFloats = 1 << 21

// winoFilters sets u [16, Cout, Cin] to U_ξ = (G·g·Gᵀ)[ξ] for the 3x3
// filters g of wd [Cout, Cin, 3, 3].
func winoFilters(u, wd []float32, cout, cin int) {
	plane := cout * cin
	parallelFor(cout, 8, func(lo, hi int) {
		var rows [16][]float32
		for co := lo; co < hi; co++ {
			for xi := range rows {
				rows[xi] = u[xi*plane+co*cin : xi*plane+(co+1)*cin]
			}
			gs := wd[co*cin*9 : (co+1)*cin*9]
			for ci := range cin {
				g := (*[9]float32)(gs[ci*9:])
				var t [4][3]float32
				for c := range 3 { // G·g
					g0, g1, g2 := g[c], g[3+c], g[6+c]
					t[0][c] = g0
					t[1][c] = (g0 + g1 + g2) / 2
					t[2][c] = (g0 - g1 + g2) / 2
					t[3][c] = g2
				}
				for i := range 4 { // ·Gᵀ
					g0, g1, g2 := t[i][0], t[i][1], t[i][2]
					rows[4*i+0][ci] = g0
					rows[4*i+1][ci] = (g0 + g1 + g2) / 2
					rows[4*i+2][ci] = (g0 - g1 + g2) / 2
					rows[4*i+3][ci] = g2
				}
			}
		}
	})
}

// winoPool holds winogradConv3x3's workspace, one buffer grown to the
// largest convolution's need: a pool of its own, so that buffers of other
// sizes (getScratch's) never displace it and every convolution after the
// largest allocates nothing (garbage here raises the peak RSS of a whole
// generation, whose heap runs close to the GC's goal).
var winoPool sync.Pool

// winoWorkspace returns n floats of workspace from winoPool.
func winoWorkspace(n int) *[]float32 {
	s, _ := winoPool.Get().(*[]float32)
	if s == nil || cap(*s) < n {
		b := makeFloats(n)
		s = &b
	}
	*s = (*s)[:n]
	return s
}

// winogradConv3x3 computes out [N, Cout, H, W] = the 3x3, stride-1,
// padding-1 convolution of an input of N images of Cin planes H×W with the
// float32 filters wd [Cout, Cin, 3, 3] and bias ([Cout] or nil), by
// Winograd F(2x2, 3x3) with the transforms of impl. The input is read
// through row: row(dst, i, c, y) sets dst [W] to row y of plane c of image
// i (a stored input, or one upsampled on the fly).
//
// The tiles go in blocks of whole tile rows: per block, the input transform
// (per channel, in parallel) into V [16, Cin, tiles], the 16 products
// M_ξ = U_ξ·V_ξ, and the output transform (per output channel, in
// parallel) with the bias into out. tensor.FLOPs counts the direct
// convolution's FLOPs, so GFLOP/s figures stay comparable.
func winogradConv3x3(impl winoImpl, row func(dst []float32, i, c, y int), n, cin, h, w, cout int, wd, bias, out []float32) {
	th, tw := (h+1)/2, (w+1)/2
	// Padded input rows: column 0 and columns past W are zero, and
	// impl.input may read below 32·⌈tw/16⌉ + 2.
	ls := 32*((tw+15)/16) + 32
	nty := max(1, min(th, winoMaxFloats/(16*max(cin, cout)*tw)))
	// The workspace: U [16, Cout, Cin], V [16, Cin, tiles], M [16, Cout,
	// tiles] and one band of padded input rows per worker (eachTask starts
	// at most GOMAXPROCS), rows 2·ty0−1 … 2·(ty0+rows) of one channel. Only
	// columns 1 … W of a band's row are ever written, so the others stay
	// zero.
	workers, bandLen := runtime.GOMAXPROCS(0), (2*nty+2)*ls
	nu, nv, nm := 16*cout*cin, 16*cin*nty*tw, 16*cout*nty*tw
	ws := winoWorkspace(nu + nv + nm + workers*bandLen)
	u, v, m, bands := (*ws)[:nu], (*ws)[nu:nu+nv], (*ws)[nu+nv:nu+nv+nm], (*ws)[nu+nv+nm:]
	clear(bands)
	winoFilters(u, wd, cout, cin)
	for img := range n {
		for ty0 := 0; ty0 < th; ty0 += nty {
			rows := min(nty, th-ty0)
			tb := rows * tw
			var slot atomic.Int32
			eachTask(cin, func() func(int) {
				var band []float32
				if i := int(slot.Add(1) - 1); i < workers {
					band = bands[i*bandLen : (i+1)*bandLen]
				} else { // GOMAXPROCS raised since the workspace was sized
					band = make([]float32, bandLen)
				}
				return func(c int) {
					for r := range 2*rows + 2 {
						y := 2*ty0 - 1 + r
						dst := band[r*ls+1 : r*ls+1+w]
						if y < 0 || y >= h {
							clear(dst)
						} else {
							row(dst, img, c, y)
						}
					}
					for t := range rows {
						impl.input(band[2*t*ls:], ls, v[c*tb+t*tw:], cin*tb, tw)
					}
				}
			})
			// One product per task: each runs on one core (sgemmBusy), with
			// no synchronisation inside the small products.
			eachTask(16, func() func(int) {
				return func(xi int) {
					gemm(false, false, cout, tb, cin, 1, u[xi*cout*cin:], cin, v[xi*cin*tb:], tb, 0, m[xi*cout*tb:], tb)
				}
			})
			parallelFor(cout, 1, func(lo, hi int) {
				for co := lo; co < hi; co++ {
					var b float32
					if bias != nil {
						b = bias[co]
					}
					plane := out[(img*cout+co)*h*w:]
					for t := range rows {
						y := 2 * (ty0 + t)
						impl.output(m[co*tb+t*tw:], cout*tb, plane[y*w:], w, min(2, h-y), tw, w, b)
					}
				}
			})
		}
	}
	flops.Add(2*int64(n)*int64(cout)*int64(cin)*int64(h*w)*9 - 32*int64(n)*int64(cout)*int64(cin)*int64(th*tw))
	winoPool.Put(ws)
}

// winograd is the transform pair Conv2d's Winograd path uses, nil where
// there is no vector version (direct convolution only).
var winograd = func() *winoImpl {
	if impls := winoImpls(); impls[0].name != winoGo.name {
		return &impls[0]
	}
	return nil
}()

// Below these sizes direct convolution is faster: few channels leave the
// 16 products too thin (k = Cin) for the transforms' cost, and on planes
// under 64x64 the filter transform (per call, Cout·Cin filters) and the
// products' packing cost more than the 2.25× fewer multiplications save
// (measured: 640 → 640 channels at 32x32, 226 against 301 GFLOP/s).
const (
	winoMinChannels = 32
	winoMinPixels   = 64 * 64
)

// useWinograd reports whether Conv2d computes a kh×kw convolution with p of
// cin → cout channels over h×w planes (the output's size too) by
// winogradConv3x3: 3x3, stride 1, padding 1, a Packed BLAS, a vector
// transform, and sizes where it pays.
func useWinograd(kh, kw int, p Conv2dParams, cin, cout, h, w int) bool {
	_, packed := BLAS.(Packed)
	return winograd != nil && packed && kh == 3 && kw == 3 && p.Stride == 1 && p.Padding == 1 &&
		cin >= winoMinChannels && cout >= winoMinChannels && h*w >= winoMinPixels
}

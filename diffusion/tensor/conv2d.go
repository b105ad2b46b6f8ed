package tensor

import "fmt"

// Conv2dParams are the geometry of a 2-D convolution, as torch.nn.Conv2d's
// stride and padding (symmetric, zero padding; dilation 1, groups 1).
type Conv2dParams struct {
	Stride, Padding int
}

// maxColFloats bounds the im2col buffer of one Conv2d call (32 MiB), so that a
// 3x3 convolution over a 512x512 image with 512 channels does not allocate a
// multi-gigabyte column matrix: the output is computed in bands of rows. The
// backward step works in the same bands and holds up to two such buffers
// (the recomputed columns and their gradient). A variable only so the tests
// can make bands small.
var maxColFloats = 8 << 20

// Conv2dOutSize returns the output size of a convolution along one axis:
// (in + 2·padding − kernel)/stride + 1, as torch.nn.Conv2d documents it.
func Conv2dOutSize(in, kernel int, p Conv2dParams) int {
	return (in+2*p.Padding-kernel)/p.Stride + 1
}

// Conv2d is torch.nn.functional.conv2d for float32 NCHW tensors.
// x: [N, Cin, H, W]; weight: [Cout, Cin, KH, KW]; bias: [Cout] or nil.
// Returns [N, Cout, H', W'] with H' = Conv2dOutSize(H, KH, p) (same for W).
//
// It lowers the convolution to matrix products (im2col + Sgemm) over bands of
// output rows: out[n][:, band] = weight[Cout, Cin·KH·KW] · col[Cin·KH·KW, band].
// The bias is added by the matrix product itself (gemmBias). 1x1 stride-1
// convolutions skip im2col. Untracked 3x3 stride-1 padding-1 convolutions
// of at least 32 channels in and out over planes of at least 64x64 (the SD
// VAE decoder's and the UNet's outer level) go through Winograd F(2x2, 3x3)
// instead, 2.25× fewer multiplications (winograd.go), where the CPU has its
// vector transforms. It panics on mismatched channels or an empty output.
//
// When an input is tracked, the backward step works per image and band too:
// dweight += g·colᵀ over the im2col of the saved input (recomputed, not
// kept), dx += col2im(weightᵀ·g), and dbias += the sum of g over N, H', W';
// the 1x1 stride-1 case uses x and dx directly in place of col.
//
// The weight may be half-precision: it is widened into a scratch buffer for
// the call, so the result is bit for bit that of weight.Float32().
func Conv2d(x, weight, bias *Tensor, p Conv2dParams) *Tensor {
	mustFloat32("Conv2d input", x)
	mustFloat32("Conv2d bias", bias)
	if x.Dims() != 4 || weight.Dims() != 4 {
		panic(fmt.Sprintf("tensor: Conv2d needs 4-D input and weight, got %v and %v", x.Shape, weight.Shape))
	}
	if p.Stride < 1 {
		p.Stride = 1
	}
	n, cin, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	cout, wcin, kh, kw := weight.Shape[0], weight.Shape[1], weight.Shape[2], weight.Shape[3]
	if wcin != cin {
		panic(fmt.Sprintf("tensor: Conv2d input %v has %d channels, weight %v wants %d", x.Shape, cin, weight.Shape, wcin))
	}
	ho, wo := Conv2dOutSize(h, kh, p), Conv2dOutSize(w, kw, p)
	if ho <= 0 || wo <= 0 {
		panic(fmt.Sprintf("tensor: Conv2d output of %v with kernel %dx%d is empty", x.Shape, kh, kw))
	}
	if bias != nil && bias.Len() != cout {
		panic(fmt.Sprintf("tensor: Conv2d bias %v for %d output channels", bias.Shape, cout))
	}
	out := newUninit(n, cout, ho, wo) // every element is written by the products below
	hw := ho * wo
	var biasData []float32
	if bias != nil {
		biasData = bias.Data
	}
	// product writes out[Cout, cols] (row stride hw) = W·B plus the bias.
	product := func(cols, k int, w, b []float32, ldb int, dst []float32) {
		if biasData != nil {
			gemmBias(cout, cols, k, w, k, b, ldb, biasData, dst, hw)
		} else {
			gemm(false, false, cout, cols, k, 1, w, k, b, ldb, 0, dst, hw)
		}
	}
	kdim := cin * kh * kw
	xd := x.Data
	isTracked := tracked(x, weight, bias)
	wd, scratch := weightData(weight, isTracked)
	pointwise := kh == 1 && kw == 1 && p.Stride == 1 && p.Padding == 0
	band := max(1, min(ho, maxColFloats/max(1, kdim*wo)))
	switch {
	case pointwise:
		for i := 0; i < n; i++ {
			product(hw, cin, wd, xd[i*cin*h*w:(i+1)*cin*h*w], hw, out.Data[i*cout*hw:(i+1)*cout*hw])
		}
	case !isTracked && useWinograd(kh, kw, p, cin, cout, h, w):
		winogradConv3x3(*winograd, func(dst []float32, i, c, y int) {
			copy(dst, xd[((i*cin+c)*h+y)*w:][:w])
		}, n, cin, h, w, cout, wd, biasData, out.Data)
	case p.Stride == 1 && wo == w && implicitConv(im2colBlocks(xd, cin, h, w, kh, kw, p.Padding, im2colShifted), n, cout, hw, kdim, wd, biasData, out.Data):
		// Implicit GEMM: each kc×nc block of the im2col matrix is built as
		// the product packs it, never the whole matrix.
	default:
		buf := getScratch(kdim * band * wo)
		col := *buf
		for i := 0; i < n; i++ {
			img := xd[i*cin*h*w : (i+1)*cin*h*w]
			dst := out.Data[i*cout*hw : (i+1)*cout*hw]
			for r0 := 0; r0 < ho; r0 += band {
				rows := min(band, ho-r0)
				cols := rows * wo
				im2col(col[:kdim*cols], img, cin, h, w, kh, kw, p, r0, rows, wo)
				product(cols, kdim, wd, col, cols, dst[r0*wo:])
			}
		}
		putScratch(buf)
	}
	putScratch(scratch)
	if !isTracked {
		return out
	}
	record(out, []*Tensor{x, weight, bias}, func(g []float32, d [][]float32) {
		dx, dw, db := d[0], d[1], d[2]
		if db != nil {
			parallelFor(cout, 1, func(lo, hi int) {
				for c := lo; c < hi; c++ {
					var s float64
					for i := 0; i < n; i++ {
						for _, v := range g[(i*cout+c)*hw : (i*cout+c+1)*hw] {
							s += float64(v)
						}
					}
					db[c] += float32(s)
				}
			})
		}
		if dx == nil && dw == nil {
			return
		}
		if pointwise {
			for i := 0; i < n; i++ {
				gi := g[i*cout*hw : (i+1)*cout*hw]
				if dw != nil { // dW[Cout, Cin] += g_i[Cout, HW]·x_i[Cin, HW]ᵀ
					gemm(false, true, cout, cin, hw, 1, gi, hw, xd[i*cin*hw:(i+1)*cin*hw], hw, 1, dw, cin)
				}
				if dx != nil { // dx_i[Cin, HW] += Wᵀ·g_i
					gemm(true, false, cin, hw, cout, 1, wd, cin, gi, hw, 1, dx[i*cin*hw:(i+1)*cin*hw], hw)
				}
			}
			return
		}
		var col, dcol []float32
		if dw != nil {
			buf := getScratch(kdim * band * wo)
			defer putScratch(buf)
			col = *buf
		}
		if dx != nil {
			buf := getScratch(kdim * band * wo)
			defer putScratch(buf)
			dcol = *buf
		}
		for i := 0; i < n; i++ {
			img := xd[i*cin*h*w : (i+1)*cin*h*w]
			gi := g[i*cout*hw : (i+1)*cout*hw]
			for r0 := 0; r0 < ho; r0 += band {
				rows := min(band, ho-r0)
				cols := rows * wo
				// g_band [Cout, cols] with row stride hw.
				gb := gi[r0*wo:]
				if dw != nil { // dW[Cout, kdim] += g_band·col_bandᵀ
					im2col(col[:kdim*cols], img, cin, h, w, kh, kw, p, r0, rows, wo)
					gemm(false, true, cout, kdim, cols, 1, gb, hw, col, cols, 1, dw, kdim)
				}
				if dx != nil { // dcol = Wᵀ·g_band, scattered back onto dx_i
					gemm(true, false, kdim, cols, cout, 1, wd, kdim, gb, hw, 0, dcol, cols)
					col2im(dx[i*cin*h*w:(i+1)*cin*h*w], dcol[:kdim*cols], cin, h, w, kh, kw, p, r0, rows, wo)
				}
			}
		}
	})
	return out
}

// Conv2dUpsample2x is Conv2d(UpsampleNearest2x(x), weight, bias, p), the
// upsampler of diffusers' Upsample2D (interpolate(scale_factor=2.0,
// mode="nearest"), then a 3x3 padding-1 convolution), with the same
// result bit for bit. x: [N, Cin, H, W] → [N, Cout, Ho, Wo] with
// Ho = Conv2dOutSize(2H, KH, p), Wo likewise.
//
// When the convolution keeps the upsampled size (stride 1, KW = 2·padding
// + 1), BLAS is Packed and nothing is tracked, the upsampled input is never
// stored: the implicit GEMM's filler reads each entry of its im2col matrix
// from x (im2colUpsampled). In a 512x512 SD VAE decode that saves writing
// and reading 416 MB of upsampled activations; where Conv2d would use
// Winograd for the upsampled input, so does this, each upsampled row built
// from x as the transform reads it. Otherwise, and for the backward step,
// it is the composition.
func Conv2dUpsample2x(x, weight, bias *Tensor, p Conv2dParams) *Tensor {
	mustFloat32("Conv2dUpsample2x input", x)
	mustFloat32("Conv2dUpsample2x bias", bias)
	if x.Dims() != 4 || weight.Dims() != 4 {
		panic(fmt.Sprintf("tensor: Conv2dUpsample2x needs 4-D input and weight, got %v and %v", x.Shape, weight.Shape))
	}
	_, packed := BLAS.(Packed)
	n, cin, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	cout, kh, kw := weight.Shape[0], weight.Shape[2], weight.Shape[3]
	if !packed || p.Stride > 1 || kw != 2*p.Padding+1 || tracked(x, weight, bias) ||
		weight.Shape[1] != cin || bias != nil && bias.Len() != cout || h == 0 || w == 0 || cout == 0 {
		up := UpsampleNearest2x(x)
		return Replace(up, Conv2d(up, weight, bias, p))
	}
	ho, wo := Conv2dOutSize(2*h, kh, p), 2*w
	if ho <= 0 {
		panic(fmt.Sprintf("tensor: Conv2dUpsample2x output of %v with kernel %dx%d is empty", x.Shape, kh, kw))
	}
	out := newUninit(n, cout, ho, wo) // every element is written by the product
	var biasData []float32
	if bias != nil {
		biasData = bias.Data
	}
	wd, scratch := weightData(weight, false)
	if useWinograd(kh, kw, p, cin, cout, 2*h, 2*w) {
		xd := x.Data
		winogradConv3x3(*winograd, func(dst []float32, i, c, y int) {
			upsampleRow(dst, xd[((i*cin+c)*h+y/2)*w:][:w], 0)
		}, n, cin, 2*h, 2*w, cout, wd, biasData, out.Data)
	} else {
		implicitConv(im2colBlocks(x.Data, cin, h, w, kh, kw, p.Padding, im2colUpsampled), n, cout, ho*wo, cin*kh*kw, wd, biasData, out.Data)
	}
	putScratch(scratch)
	return out
}

// im2colUpsampled is im2colShifted over the nearest-neighbour 2x upsampling
// of plane [h, w] without storing it: it fills dst [n] with entries j0 …
// j0+n−1 of one im2col row of the [2h, 2w] upsampled plane, where entry j
// (oy = j/2w, ox = j%2w) is plane[(oy+dy)/2, (ox+dx)/2] when 0 ≤ oy+dy < 2h
// and 0 ≤ ox+dx < 2w, else 0.
func im2colUpsampled(dst, plane []float32, h, w, dy, dx, j0, n int) {
	w2 := 2 * w
	for j := j0; j < j0+n; {
		oy, ox := j/w2, j%w2
		cnt := min(w2-ox, j0+n-j)
		d := dst[j-j0 : j-j0+cnt]
		if iy := oy + dy; iy < 0 || iy >= 2*h {
			clear(d)
		} else {
			upsampleRow(d, plane[(iy/2)*w:(iy/2+1)*w], ox+dx)
		}
		j += cnt
	}
}

// upsampleRow sets d[k] = src[(x0+k)/2] where 0 ≤ x0+k < 2·len(src), and
// 0 elsewhere: a span of a row of src upsampled 2x by nearest neighbour.
func upsampleRow(d, src []float32, x0 int) {
	k := 0
	for ; k < len(d) && x0+k < 0; k++ {
		d[k] = 0
	}
	if k < len(d) && (x0+k)&1 == 1 && x0+k < 2*len(src) {
		d[k] = src[(x0+k)/2]
		k++
	}
	if i := (x0 + k) / 2; k < len(d) && i < len(src) {
		pairs := min((len(d)-k)/2, len(src)-i)
		pd, ps := d[k:k+2*pairs], src[i:i+pairs]
		for t, v := range ps {
			pd[2*t] = v
			pd[2*t+1] = v
		}
		k += 2 * pairs
	}
	for ; k < len(d); k++ {
		if x := x0 + k; x < 2*len(src) {
			d[k] = src[x/2]
		} else {
			d[k] = 0
		}
	}
}

// im2colBlocks returns, for image i of xd [N, cin, h, w], the filler of
// any block of its im2col matrix for a kh×kw kernel with the given padding
// (the B operand of an implicit GEMM, see sgemmProblem.bFill): row r of the
// matrix, tap (c, ki, kj), is filled by row from channel c's plane with the
// offsets dy = ki − padding, dx = kj − padding (im2colShifted, or
// im2colUpsampled for an upsampled input).
func im2colBlocks(xd []float32, cin, h, w, kh, kw, padding int, row func(dst, plane []float32, h, w, dy, dx, j0, n int)) func(i int) func(dst []float32, ld, q0, kq, j0, n int) {
	return func(i int) func(dst []float32, ld, q0, kq, j0, n int) {
		img := xd[i*cin*h*w : (i+1)*cin*h*w]
		return func(dst []float32, ld, q0, kq, j0, cnt int) {
			for q := range kq {
				r := q0 + q
				c, ki, kj := r/(kh*kw), (r/kw)%kh, r%kw
				row(dst[q*ld:q*ld+cnt], img[c*h*w:(c+1)*h*w], h, w, ki-padding, kj-padding, j0, cnt)
			}
		}
	}
}

// implicitConv runs, for each of n images, out_i [Cout, hw] = W·B_i (+ bias)
// with B_i given by fill(i) (see sgemmProblem.bFill), when BLAS is Packed
// and the product is not empty; it reports false, having done nothing,
// otherwise.
func implicitConv(fill func(i int) func(dst []float32, ld, q0, kq, j0, n int), n, cout, hw, kdim int, w, bias, out []float32) bool {
	if _, packed := BLAS.(Packed); !packed || cout == 0 || hw == 0 || kdim == 0 {
		return false
	}
	for i := 0; i < n; i++ {
		gemmFilled(cout, hw, kdim, w, kdim, fill(i), bias, out[i*cout*hw:(i+1)*cout*hw], hw)
	}
	return true
}

// im2col fills col [Cin·KH·KW, rows·wo] with the receptive fields of output
// rows [r0, r0+rows) of one image img [Cin, h, w]; out-of-image taps are 0.
//
// A stride-1 convolution that keeps the width (wo = w, as every 3x3 padding-1
// convolution of the UNet and VAE) takes the fast path: each row of col is
// the image plane shifted by one offset, so it is one copy plus zeroing the
// taps that fall outside the image (whole rows above or below it, and the
// |dx| columns that wrap around at the left or right edge).
func im2col(col, img []float32, cin, h, w, kh, kw int, p Conv2dParams, r0, rows, wo int) {
	cols := rows * wo
	if p.Stride == 1 && wo == w {
		parallelFor(cin*kh*kw, 8, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				c, ki, kj := r/(kh*kw), (r/kw)%kh, r%kw
				im2colShifted(col[r*cols:(r+1)*cols], img[c*h*w:(c+1)*h*w], h, w, r0-p.Padding+ki, kj-p.Padding, 0, cols)
			}
		})
		return
	}
	parallelFor(cin*kh*kw, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			c, ki, kj := r/(kh*kw), (r/kw)%kh, r%kw
			plane := img[c*h*w : (c+1)*h*w]
			dst := col[r*cols : (r+1)*cols]
			for oy := 0; oy < rows; oy++ {
				iy := (r0+oy)*p.Stride - p.Padding + ki
				row := dst[oy*wo : (oy+1)*wo]
				if iy < 0 || iy >= h {
					clear(row)
					continue
				}
				src := plane[iy*w : (iy+1)*w]
				if p.Stride == 1 {
					// ix = ox - pad + kj; copy the in-image span, zero the rest.
					off := kj - p.Padding
					lo, hi := max(0, -off), min(wo, w-off)
					if lo >= hi {
						clear(row)
						continue
					}
					clear(row[:lo])
					copy(row[lo:hi], src[lo+off:hi+off])
					clear(row[hi:])
					continue
				}
				for ox := range row {
					ix := ox*p.Stride - p.Padding + kj
					if ix < 0 || ix >= w {
						row[ox] = 0
					} else {
						row[ox] = src[ix]
					}
				}
			}
		}
	})
}

// im2colShifted fills dst [n] with entries j0 … j0+n−1 of one im2col row:
// entry j, at output row oy = j/w and column ox = j%w, is plane [h, w] read
// at (oy+dy, ox+dx), 0 outside the plane. Entries j of valid output rows
// read plane[j+s] with s = dy·w+dx, so the span is one copy; taps that wrap
// around a row's end (|dx| columns per row) are then zeroed.
func im2colShifted(dst, plane []float32, h, w, dy, dx, j0, n int) {
	j1 := j0 + n
	start, end := max(j0, -dy*w), min(j1, (h-dy)*w) // rows with 0 ≤ oy+dy < h
	if start >= end {
		clear(dst)
		return
	}
	clear(dst[:start-j0])
	clear(dst[end-j0:])
	s := dy*w + dx
	// Entries before a or after b would read before or past the plane:
	// they are wrapped taps (ox < −dx in the first valid row, ox ≥ w−dx in
	// the last), which the loop below zeroes with the others.
	a := min(max(start, -s), end)
	b := max(min(end, h*w-s), a)
	if a < b {
		copy(dst[a-j0:b-j0], plane[a+s:b+s])
	}
	if dx == 0 {
		return
	}
	for oy := start / w; oy*w < end; oy++ {
		lo, hi := oy*w, oy*w-dx // dx < 0: columns ox < −dx
		if dx > 0 {
			lo, hi = oy*w+w-dx, oy*w+w // columns ox ≥ w−dx
		}
		lo, hi = max(lo, start), min(hi, end)
		if lo < hi {
			clear(dst[lo-j0 : hi-j0])
		}
	}
}

// col2im is the adjoint of im2col: it adds each entry of col [Cin·KH·KW,
// rows·wo] to the pixel of img [Cin, h, w] that im2col read it from, for
// output rows [r0, r0+rows); out-of-image taps are dropped. Work is split by
// channel, so no two goroutines write the same plane.
func col2im(img, col []float32, cin, h, w, kh, kw int, p Conv2dParams, r0, rows, wo int) {
	cols := rows * wo
	parallelFor(cin, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			plane := img[c*h*w : (c+1)*h*w]
			for ki := 0; ki < kh; ki++ {
				for kj := 0; kj < kw; kj++ {
					r := (c*kh+ki)*kw + kj
					src := col[r*cols : (r+1)*cols]
					for oy := 0; oy < rows; oy++ {
						iy := (r0+oy)*p.Stride - p.Padding + ki
						if iy < 0 || iy >= h {
							continue
						}
						row := src[oy*wo : (oy+1)*wo]
						dst := plane[iy*w : (iy+1)*w]
						if p.Stride == 1 {
							off := kj - p.Padding
							lo, hi := max(0, -off), min(wo, w-off)
							if lo >= hi {
								continue
							}
							d := dst[lo+off : hi+off]
							for j, v := range row[lo:hi] {
								d[j] += v
							}
							continue
						}
						for ox, v := range row {
							ix := ox*p.Stride - p.Padding + kj
							if ix >= 0 && ix < w {
								dst[ix] += v
							}
						}
					}
				}
			}
		}
	})
}

func fill(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

// Conv2dGroupNormSiLU is Conv2d(SiLU(GroupNorm(x, groups, gnWeight, gnBias,
// eps)), weight, bias, p), the normalisation, activation and convolution of
// diffusers' ResnetBlock2D, with the same result bit for bit. With consume,
// x is the caller's to give up: its storage may be reused and it must not be
// used after the call.
//
// Where Conv2d takes the Winograd path and nothing is tracked, the
// normalised x is never stored: after one statistics pass over x, the input
// transform normalises and activates each row as it reads it, so a 512x512
// SD VAE decode never holds the 268 MB normalised copy of its largest
// activation, nor writes and reads it. Otherwise it is the composition
// (normalising x in place with consume).
func Conv2dGroupNormSiLU(x *Tensor, groups int, gnWeight, gnBias *Tensor, eps float32, weight, bias *Tensor, p Conv2dParams, consume bool) *Tensor {
	mustFloat32("Conv2dGroupNormSiLU", x, gnWeight, gnBias, bias)
	fused := x.Dims() == 4 && weight.Dims() == 4 && !tracked(x, gnWeight, gnBias, weight, bias)
	var n, cin, h, w, cout int
	if fused {
		n, cin, h, w = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		cout = weight.Shape[0]
		fused = useWinograd(weight.Shape[2], weight.Shape[3], p, cin, cout, h, w) && weight.Shape[1] == cin &&
			groups > 0 && cin%groups == 0 && (gnWeight == nil || gnWeight.Len() == cin) &&
			(gnBias == nil || gnBias.Len() == cin) && (bias == nil || bias.Len() == cout)
	}
	if !fused {
		hn := x
		if consume {
			GroupNormTo(x, x, groups, gnWeight, gnBias, eps)
		} else {
			hn = GroupNorm(x, groups, gnWeight, gnBias, eps)
		}
		SiLU(hn)
		return Replace(hn, Conv2d(hn, weight, bias, p))
	}
	// GroupNorm's per-channel affine map x̂ = x·a + b (groupAffine).
	spatial, cpg := h*w, cin/groups
	var gw, gb []float32
	if gnWeight != nil {
		gw = gnWeight.Data
	}
	if gnBias != nil {
		gb = gnBias.Data
	}
	ab := make([]float32, 2*n*cin)
	xd := x.Data
	parallelFor(n*groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			mean, rstd := meanRstd(xd[ng*cpg*spatial:(ng+1)*cpg*spatial], eps)
			for ci := range cpg {
				i := ng*cpg + ci // image ng/groups, channel (ng%groups)·cpg + ci
				ab[2*i], ab[2*i+1] = groupAffine(gw, gb, (ng%groups)*cpg+ci, mean, rstd)
			}
		}
	})
	out := newUninit(n, cout, h, w) // every element is written by the output transform
	var biasData []float32
	if bias != nil {
		biasData = bias.Data
	}
	wd, scratch := weightData(weight, false)
	winogradConv3x3(*winograd, func(dst []float32, i, c, y int) {
		a, b := ab[2*(i*cin+c)], ab[2*(i*cin+c)+1]
		for k, v := range xd[((i*cin+c)*h+y)*w:][:len(dst)] {
			dst[k] = v*a + b
		}
		actKernels.silu(dst, dst)
	}, n, cin, h, w, cout, wd, biasData, out.Data)
	putScratch(scratch)
	if consume {
		Release(x)
	}
	return out
}

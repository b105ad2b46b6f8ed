package imageio

// Lossy WebP colour. x/image/webp returns a lossy (VP8) image as an
// *image.YCbCr or *image.NYCbCrA, but VP8 samples are limited-range BT.601
// (Y in [16, 235]) while Go's YCbCr conversions assume full-range JFIF, so
// converting with them lifts blacks and dims whites by up to ~16 levels
// (golang/go#40173). webpRGB converts the way libwebp (and so PIL) does,
// with libwebp's fixed-point BT.601 formulas (src/dsp/yuv.h):
//
//	R = 1.164·(Y-16) + 1.596·(V-128)
//	G = 1.164·(Y-16) - 0.813·(V-128) - 0.391·(U-128)
//	B = 1.164·(Y-16) + 2.018·(U-128)
//
// Chroma (4:2:0) is upsampled as libwebp's default "fancy" upsampler does
// (src/dsp/upsampling.c, rows paired as in src/dec/io_dec.c EmitFancyRGB):
// each pixel interpolates its four nearest chroma samples with weights
// 9/16, 3/16, 3/16, 1/16, using libwebp's integer rounding; the first
// column, and the last column and row of an even-sized image, interpolate
// vertically only (3/4, 1/4), and the first row mirrors its chroma row.

import (
	"image"
	"image/color"
)

// webpRGB returns a lossy WebP image (*image.YCbCr or *image.NYCbCrA) as
// an *image.NRGBA with bounds starting at (0, 0), keeping NYCbCrA's alpha;
// other images are returned unchanged.
func webpRGB(img image.Image) image.Image {
	var ycc *image.YCbCr
	var withAlpha *image.NYCbCrA
	switch m := img.(type) {
	case *image.YCbCr:
		ycc = m
	case *image.NYCbCrA:
		ycc, withAlpha = &m.YCbCr, m
	default:
		return img
	}
	b := ycc.Rect
	w, h := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	fancy := ycc.SubsampleRatio == image.YCbCrSubsampleRatio420 && b.Min == (image.Point{})
	cw, ch := (w+1)/2, (h+1)/2
	for y := 0; y < h; y++ {
		nr, fr := nearFar(y, ch) // chroma rows: nearest, other
		for x := 0; x < w; x++ {
			var u, v uint8
			if fancy {
				nc, fc := nearFar(x, cw)
				at := func(p []uint8, r, c int) int { return int(p[r*ycc.CStride+c]) }
				u = upsample(at(ycc.Cb, nr, nc), at(ycc.Cb, nr, fc), at(ycc.Cb, fr, nc), at(ycc.Cb, fr, fc), nc == fc)
				v = upsample(at(ycc.Cr, nr, nc), at(ycc.Cr, nr, fc), at(ycc.Cr, fr, nc), at(ycc.Cr, fr, fc), nc == fc)
			} else {
				ci := ycc.COffset(b.Min.X+x, b.Min.Y+y)
				u, v = ycc.Cb[ci], ycc.Cr[ci]
			}
			r, g, bl := vp8ToRGB(ycc.Y[ycc.YOffset(b.Min.X+x, b.Min.Y+y)], u, v)
			a := uint8(255)
			if withAlpha != nil {
				a = withAlpha.A[withAlpha.AOffset(b.Min.X+x, b.Min.Y+y)]
			}
			dst.SetNRGBA(x, y, color.NRGBA{r, g, bl, a})
		}
	}
	return dst
}

// nearFar returns, for pixel i of a 2:1 subsampled axis with n chroma
// samples, the nearest chroma sample and the other one it interpolates
// with (libwebp pairs pixels 2k-1 and 2k between samples k-1 and k). Pixel
// 0 and the last pixel of an even-sized axis have only one, returned
// twice.
func nearFar(i, n int) (near, far int) {
	if i == 0 {
		return 0, 0
	}
	k := (i + 1) / 2
	if i%2 == 1 {
		near, far = k-1, k
	} else {
		near, far = k, k-1
	}
	if far >= n {
		far = near
	}
	return near, far
}

// upsample interpolates a chroma value from the nearest sample a, its
// horizontal neighbour b, vertical neighbour c and diagonal d, rounding
// as libwebp does: (9a + 3b + 3c + d)/16 as ((a+3b+3c+d+8)/8 + a)/2. If
// vertical, the pixel interpolates vertically only: (3a + c)/4.
func upsample(a, b, c, d int, vertical bool) uint8 {
	if vertical {
		return uint8((3*a + c + 2) >> 2)
	}
	return uint8((((a + b + c + d + 8 + 2*(b+c)) >> 3) + a) >> 1)
}

// vp8ToRGB is libwebp's VP8YuvToRgb: 14-bit fixed point (8 fractional
// bits from the "mulhi" products, 6 more in the sums), clipped to 8 bits.
func vp8ToRGB(y, u, v uint8) (r, g, b uint8) {
	mulHi := func(x uint8, c int) int { return int(x) * c >> 8 }
	yy := mulHi(y, 19077)
	return clip8(yy + mulHi(v, 26149) - 14234),
		clip8(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708),
		clip8(yy + mulHi(u, 33050) - 17685)
}

func clip8(v int) uint8 {
	const fix = 6
	switch {
	case v < 0:
		return 0
	case v >= 256<<fix:
		return 255
	}
	return uint8(v >> fix)
}

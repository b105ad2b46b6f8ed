package imageio

// Conversions between images and the VAE's tensors, following diffusers'
// VaeImageProcessor (diffusers 0.27.2, src/diffusers/image_processor.py):
// preprocess = resize (PIL Lanczos) → pil_to_numpy (/255 in float32) →
// normalize (2x-1); postprocess = denormalize ((x/2+0.5).clamp(0,1)) →
// numpy_to_pil ((x*255).round().astype(uint8)).

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/disintegration/imaging"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// ToTensor returns img as the VAE encoder's input: [1, 3, height, width]
// float32, NCHW, RGB, each value pixel/255*2-1 in [-1, 1].
//
// The image is first converted to 8-bit RGB as PIL's convert("RGB") does:
// alpha is dropped without compositing (the un-premultiplied colour is
// kept; a premultiplied *image.RGBA or RGBA64 is un-premultiplied first),
// gray is replicated, palettes are looked up, YCbCr and CMYK use Go's
// 8-bit conversions (color.YCbCrToRGB, color.CMYKToRGB), and 16-bit
// samples keep their high byte (v>>8, as PIL reads 16-bit RGB(A) PNGs;
// this is within 1 of round(v/257)). It is then resized to width×height
// with imaging's Lanczos filter (a=3) unless it already has that size,
// as diffusers resizes with PIL's LANCZOS (same support, weights and
// 8-bit rounding between the two passes; results agree with PIL's to
// within 1 level on rare values, see TestToTensorResizePIL).
//
// ToTensor panics if img is nil, empty, or width or height is not
// positive.
func ToTensor(img image.Image, width, height int) *tensor.Tensor {
	if width <= 0 || height <= 0 {
		panic(fmt.Sprintf("imageio: ToTensor to a %dx%d tensor", width, height))
	}
	rgb := toRGB(img)
	if rgb.Rect.Dx() == 0 || rgb.Rect.Dy() == 0 {
		panic(fmt.Sprintf("imageio: ToTensor of an empty %dx%d image", rgb.Rect.Dx(), rgb.Rect.Dy()))
	}
	if rgb.Rect.Dx() != width || rgb.Rect.Dy() != height {
		rgb = imaging.Resize(rgb, width, height, imaging.Lanczos)
	}
	x := tensor.New(1, 3, height, width)
	plane := width * height
	for y := 0; y < height; y++ {
		row := rgb.Pix[y*rgb.Stride:]
		for i := 0; i < width; i++ {
			for c := 0; c < 3; c++ {
				x.Data[c*plane+y*width+i] = normalize(row[4*i+c])
			}
		}
	}
	return x
}

// normalize maps a pixel to [-1, 1] with the reference's float32 steps:
// numpy's float32(p)/255.0, then torch's 2*x-1. The conversions keep each
// step rounded to float32 (Go may otherwise fuse operations).
func normalize(p uint8) float32 {
	v := float32(p) / 255
	return float32(2*v) - 1
}

// FitSize returns w and h each rounded down to a multiple of multiple (the
// VAE scale factor, 8 for Stable Diffusion), as diffusers'
// get_default_height_width does (x - x % vae_scale_factor). A side smaller
// than multiple becomes 0. It panics if multiple is not positive.
func FitSize(w, h, multiple int) (int, int) {
	if multiple <= 0 {
		panic(fmt.Sprintf("imageio: FitSize to a multiple of %d", multiple))
	}
	w, h = max(w, 0), max(h, 0)
	return w - w%multiple, h - h%multiple
}

// PrepareInit turns an init image (img2img) into the VAE encoder's input
// [1, 3, h, w], where w×h is its size rounded down by FitSize, resizing
// when that differs from its size (diffusers resizes, it does not crop).
// It fails with ErrTooSmall if a side is shorter than multiple. It panics
// if img is nil or multiple is not positive.
func PrepareInit(img image.Image, multiple int) (x *tensor.Tensor, w, h int, err error) {
	b := img.Bounds()
	w, h = FitSize(b.Dx(), b.Dy(), multiple)
	if w == 0 || h == 0 {
		return nil, 0, 0, fmt.Errorf("%w: image is %dx%d pixels, both sides must be at least %d", ErrTooSmall, b.Dx(), b.Dy(), multiple)
	}
	return ToTensor(img, w, h), w, h, nil
}

// FromTensor turns VAE decoder output x [N, 3, H, W] (nominally in
// [-1, 1], not clamped) into N opaque 8-bit images exactly as diffusers'
// postprocess with output_type "pil" does: v = x/2 + 0.5 in float32,
// clamped to [0, 1], then float32(v*255) rounded half to even (numpy's
// round) and converted to uint8. NaN becomes 0. It panics if x is not
// [N, 3, H, W].
func FromTensor(x *tensor.Tensor) []*image.NRGBA {
	n, h, w := checkImageTensor(x)
	plane := h * w
	out := make([]*image.NRGBA, n)
	for b := range out {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		base := b * 3 * plane
		for i := 0; i < plane; i++ {
			p := img.Pix[4*i:][:4]
			p[0] = toUint8(x.Data[base+i])
			p[1] = toUint8(x.Data[base+plane+i])
			p[2] = toUint8(x.Data[base+2*plane+i])
			p[3] = 255
		}
		out[b] = img
	}
	return out
}

// ToUint8NHWC returns the pixels FromTensor would produce for x
// [N, 3, H, W] as one flat uint8 slice in NHWC order ([N, H, W, 3], the
// layout of the references' image_uint8). It panics if x is not
// [N, 3, H, W].
func ToUint8NHWC(x *tensor.Tensor) []uint8 {
	n, h, w := checkImageTensor(x)
	plane := h * w
	out := make([]uint8, n*plane*3)
	for b := 0; b < n; b++ {
		for i := 0; i < plane; i++ {
			for c := 0; c < 3; c++ {
				out[(b*plane+i)*3+c] = toUint8(x.Data[(b*3+c)*plane+i])
			}
		}
	}
	return out
}

func checkImageTensor(x *tensor.Tensor) (n, h, w int) {
	if x == nil || len(x.Shape) != 4 || x.Shape[1] != 3 {
		var shape []int
		if x != nil {
			shape = x.Shape
		}
		panic(fmt.Sprintf("imageio: image tensor has shape %v, want [N, 3, H, W]", shape))
	}
	return x.Shape[0], x.Shape[2], x.Shape[3]
}

// toUint8 is denormalize + numpy_to_pil for one value; see FromTensor.
func toUint8(x float32) uint8 {
	v := float32(x/2) + 0.5
	if !(v > 0) { // also NaN
		return 0
	}
	if v > 1 {
		v = 1
	}
	return uint8(math.RoundToEven(float64(float32(v * 255))))
}

// toRGB returns img as an *image.NRGBA with bounds starting at (0, 0), its
// colour converted as ToTensor describes and every alpha 255. It panics if
// img is nil.
func toRGB(img image.Image) *image.NRGBA {
	if img == nil {
		panic("imageio: nil image")
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	set := func(x, y int, r, g, bl uint8) {
		p := dst.Pix[y*dst.Stride+4*x:][:4]
		p[0], p[1], p[2], p[3] = r, g, bl, 255
	}
	switch src := img.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				s := src.Pix[src.PixOffset(b.Min.X+x, b.Min.Y+y):][:3]
				set(x, y, s[0], s[1], s[2])
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := src.Pix[src.PixOffset(b.Min.X+x, b.Min.Y+y)]
				set(x, y, v, v, v)
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := src.Pix[src.PixOffset(b.Min.X+x, b.Min.Y+y)] // high byte
				set(x, y, v, v, v)
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				s := src.Pix[src.PixOffset(b.Min.X+x, b.Min.Y+y):][:6] // big-endian R, G, B
				set(x, y, s[0], s[2], s[4])
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := src.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := src.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
				set(x, y, r, g, bl)
			}
		}
	case *image.NYCbCrA: // alpha is separate and not premultiplied: ignore it
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := src.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := src.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
				set(x, y, r, g, bl)
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				s := src.Pix[src.PixOffset(b.Min.X+x, b.Min.Y+y):][:4]
				r, g, bl := color.CMYKToRGB(s[0], s[1], s[2], s[3])
				set(x, y, r, g, bl)
			}
		}
	case *image.Paletted:
		// Palette entries convert once; an index past the palette (which
		// the decoders reject) reads as black.
		pal := make([]color.NRGBA, len(src.Palette))
		for i, c := range src.Palette {
			pal[i] = nrgba(c)
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				var c color.NRGBA
				if i := int(src.Pix[src.PixOffset(b.Min.X+x, b.Min.Y+y)]); i < len(pal) {
					c = pal[i]
				}
				set(x, y, c.R, c.G, c.B)
			}
		}
	default:
		// *image.RGBA, *image.RGBA64 and anything else: through
		// color.NRGBAModel, which un-premultiplies in 16 bits and keeps
		// the high byte.
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := nrgba(img.At(b.Min.X+x, b.Min.Y+y))
				set(x, y, c.R, c.G, c.B)
			}
		}
	}
	return dst
}

// nrgba converts c to un-premultiplied 8-bit colour; nil is black.
func nrgba(c color.Color) color.NRGBA {
	if c == nil {
		return color.NRGBA{}
	}
	return color.NRGBAModel.Convert(c).(color.NRGBA)
}

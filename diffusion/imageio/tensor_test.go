package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// one returns a 1×1 image of the given kind holding c (set through the
// image's own Set, so through its colour model).
func one[T interface {
	image.Image
	Set(x, y int, c color.Color)
}](img T, c color.Color) image.Image {
	img.Set(0, 0, c)
	return img
}

var px = image.Rect(0, 0, 1, 1)

func TestToRGB(t *testing.T) {
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{10, 20, 30, 128}})
	pal.Pix[1] = 7 // past the palette: black
	ycc := image.NewYCbCr(px, image.YCbCrSubsampleRatio444)
	ycc.Y[0], ycc.Cb[0], ycc.Cr[0] = 76, 85, 255
	nycca := image.NewNYCbCrA(px, image.YCbCrSubsampleRatio444)
	nycca.Y[0], nycca.Cb[0], nycca.Cr[0], nycca.A[0] = 128, 128, 128, 0
	g16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	copy(g16.Pix, []uint8{0x80, 0xFF, 0x00, 0xC8, 0xFF, 0xFF})
	sub := gradient(4, 3, 255).SubImage(image.Rect(1, 1, 3, 2))

	tests := []struct {
		name string
		img  image.Image
		want [][3]uint8 // row-major pixels
	}{
		{"nrgba/opaque", one(image.NewNRGBA(px), color.NRGBA{1, 2, 3, 255}), [][3]uint8{{1, 2, 3}}},
		{"nrgba/alpha0_keeps_colour", one(image.NewNRGBA(px), color.NRGBA{10, 20, 30, 0}), [][3]uint8{{10, 20, 30}}},
		// 100·255/128 = 199.2, 50·255/128 = 99.6: un-premultiplied, truncated (color.NRGBAModel).
		{"rgba/premultiplied", one(image.NewRGBA(px), color.RGBA{100, 50, 0, 128}), [][3]uint8{{199, 99, 0}}},
		{"rgba/alpha0", one(image.NewRGBA(px), color.RGBA{}), [][3]uint8{{0, 0, 0}}},
		{"gray", one(image.NewGray(px), color.Gray{77}), [][3]uint8{{77, 77, 77}}},
		// High byte: 0x80FF → 0x80 (33023/257 = 128.5), 200 → 0 (200/257 = 0.78), 65535 → 255.
		{"gray16/high_byte", g16, [][3]uint8{{128, 128, 128}, {0, 0, 0}, {255, 255, 255}}},
		{"nrgba64/high_byte_alpha_dropped", one(image.NewNRGBA64(px), color.NRGBA64{0x12FF, 0xAB00, 0xFFFF, 0}), [][3]uint8{{0x12, 0xAB, 0xFF}}},
		// 0x4000·0xFFFF/0x8000 = 0x7FFF → 0x7F.
		{"rgba64/premultiplied", one(image.NewRGBA64(px), color.RGBA64{0x4000, 0x2000, 0, 0x8000}), [][3]uint8{{127, 63, 0}}},
		{"paletted/translucent_entry_and_bad_index", pal, [][3]uint8{{10, 20, 30}, {0, 0, 0}}},
		// JFIF red: RGBToYCbCr(255, 0, 0) = (76, 85, 255) → (254, 0, 0).
		{"ycbcr", ycc, [][3]uint8{{254, 0, 0}}},
		{"nycbcra/alpha0_keeps_colour", nycca, [][3]uint8{{128, 128, 128}}},
		// (255-c)(255-k)/255: 255·191/255 = 191, 127·191/255 = 95.1.
		{"cmyk", one(image.NewCMYK(px), color.CMYK{0, 128, 255, 64}), [][3]uint8{{191, 95, 0}}},
		{"alpha/generic_path", one(image.NewAlpha(px), color.Alpha{128}), [][3]uint8{{255, 255, 255}}},
		{"subimage/offset_bounds", sub, [][3]uint8{{10, 20, 30}, {20, 20, 40}}},
		{"empty", image.NewNRGBA(image.Rect(0, 0, 0, 0)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toRGB(tt.img)
			if got.Rect.Min != (image.Point{}) || got.Rect.Size() != tt.img.Bounds().Size() {
				t.Fatalf("bounds %v for an image of bounds %v", got.Rect, tt.img.Bounds())
			}
			for i, w := range tt.want {
				p := got.Pix[4*i:][:4]
				if [3]uint8(p[:3]) != w || p[3] != 255 {
					t.Errorf("pixel %d = %v, want %v with alpha 255", i, p, w)
				}
			}
		})
	}
}

// Provenance of the float32 values: numpy 1.24,
// (np.array(p, np.uint8).astype(np.float32) / 255.0) * np.float32(2) - np.float32(1),
// which is what VaeImageProcessor's pil_to_numpy + normalize compute.
var normalized = []struct {
	pixel uint8
	bits  uint32
}{
	{0, 0xbf800000},   // -1
	{1, 0xbf7dfdfe},   // -0.99215686
	{127, 0xbb808080}, // -0.0039215684
	{128, 0x3b808100}, // 0.003921628
	{254, 0x3f7dfdfe}, // 0.99215686
	{255, 0x3f800000}, // 1
}

func TestToTensor(t *testing.T) {
	// One row holding each pixel value of the table in R, 255-p in G and
	// p again in B, so the planes are distinguishable.
	img := image.NewNRGBA(image.Rect(0, 0, len(normalized), 1))
	for i, n := range normalized {
		img.SetNRGBA(i, 0, color.NRGBA{n.pixel, 255 - n.pixel, n.pixel, 255})
	}
	x := ToTensor(img, len(normalized), 1)
	if want := []int{1, 3, 1, len(normalized)}; !slices.Equal(x.Shape, want) {
		t.Fatalf("shape %v, want %v", x.Shape, want)
	}
	w := len(normalized)
	bitsOf := make(map[uint8]uint32) // the table is closed under p → 255-p
	for _, n := range normalized {
		bitsOf[n.pixel] = n.bits
	}
	for i, n := range normalized {
		if got := math.Float32bits(x.Data[i]); got != n.bits {
			t.Errorf("R of pixel %d: %v (%#08x), want %v (%#08x)", n.pixel, x.Data[i], got, math.Float32frombits(n.bits), n.bits)
		}
		if got, want := math.Float32bits(x.Data[w+i]), bitsOf[255-n.pixel]; got != want {
			t.Errorf("G of pixel %d: %#08x, want %#08x", 255-n.pixel, got, want)
		}
		if got := math.Float32bits(x.Data[2*w+i]); got != n.bits {
			t.Errorf("B of pixel %d: %#08x, want %#08x", n.pixel, got, n.bits)
		}
	}
}

func TestToTensorLayout(t *testing.T) {
	img := gradient(5, 3, 0) // alpha 0 everywhere: colour must survive
	x := ToTensor(img, 5, 3)
	for y := 0; y < 3; y++ {
		for i := 0; i < 5; i++ {
			c := img.NRGBAAt(i, y)
			for ch, v := range []uint8{c.R, c.G, c.B} {
				if got, want := x.Data[(ch*3+y)*5+i], normalize(v); got != want {
					t.Fatalf("x[0,%d,%d,%d] = %v, want %v", ch, y, i, got, want)
				}
			}
		}
	}
}

func TestToTensorResize(t *testing.T) {
	tests := []struct {
		name       string
		src        image.Rectangle
		width, hgt int
	}{
		{"upscale", image.Rect(0, 0, 10, 7), 16, 8},
		{"downscale", image.Rect(0, 0, 64, 40), 24, 16},
		{"width_only", image.Rect(0, 0, 13, 8), 8, 8},
		{"height_only", image.Rect(0, 0, 8, 13), 8, 8},
		{"offset_bounds", image.Rect(5, 5, 17, 14), 8, 8},
	}
	c := color.NRGBA{200, 100, 3, 77} // translucent: resize must not weigh by alpha
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := image.NewNRGBA(tt.src)
			for y := tt.src.Min.Y; y < tt.src.Max.Y; y++ {
				for x := tt.src.Min.X; x < tt.src.Max.X; x++ {
					img.SetNRGBA(x, y, c)
				}
			}
			x := ToTensor(img, tt.width, tt.hgt)
			if want := []int{1, 3, tt.hgt, tt.width}; !slices.Equal(x.Shape, want) {
				t.Fatalf("shape %v, want %v", x.Shape, want)
			}
			plane := tt.width * tt.hgt
			for i, v := range x.Data {
				if want := normalize([]uint8{c.R, c.G, c.B}[i/plane]); v != want {
					t.Fatalf("value %d = %v, want %v: a flat image must stay flat", i, v, want)
				}
			}
		})
	}
	// A gradient resized keeps its ordering (Lanczos overshoots only at
	// edges; a linear ramp has none inside).
	ramp := image.NewGray(image.Rect(0, 0, 64, 1))
	for i := range ramp.Pix {
		ramp.Pix[i] = uint8(4 * i)
	}
	x := ToTensor(ramp, 16, 1)
	for i := 1; i < 16; i++ {
		if x.Data[i] <= x.Data[i-1] {
			t.Fatalf("resized ramp not increasing at %d: %v", i, x.Data[:16])
		}
	}
}

func TestFitSize(t *testing.T) {
	tests := []struct {
		w, h, multiple int
		wantW, wantH   int
	}{
		{512, 512, 8, 512, 512},
		{513, 767, 8, 512, 760},
		{48, 32, 8, 48, 32},
		{7, 100, 8, 0, 96},
		{100, 7, 8, 96, 0},
		{0, 0, 8, 0, 0},
		{-5, 9, 8, 0, 8},
		{1000, 1000, 64, 960, 960},
		{3, 3, 1, 3, 3},
	}
	for _, tt := range tests {
		if w, h := FitSize(tt.w, tt.h, tt.multiple); w != tt.wantW || h != tt.wantH {
			t.Errorf("FitSize(%d, %d, %d) = %d, %d, want %d, %d", tt.w, tt.h, tt.multiple, w, h, tt.wantW, tt.wantH)
		}
	}
}

func TestPrepareInit(t *testing.T) {
	tests := []struct {
		name         string
		w, h         int
		wantW, wantH int
		err          error
	}{
		{"divisible", 48, 32, 48, 32, nil},
		{"rounded_down", 53, 39, 48, 32, nil},
		{"one_multiple", 8, 8, 8, 8, nil},
		{"too_narrow", 7, 64, 0, 0, ErrTooSmall},
		{"too_short", 64, 5, 0, 0, ErrTooSmall},
		{"one_pixel", 1, 1, 0, 0, ErrTooSmall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := gradient(tt.w, tt.h, 255)
			x, w, h, err := PrepareInit(img, 8)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || x != nil {
					t.Fatalf("PrepareInit = %v, %v, want %v", x, err, tt.err)
				}
				if !strings.Contains(err.Error(), "at least 8") {
					t.Errorf("error %q does not say the minimum", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w != tt.wantW || h != tt.wantH || !slices.Equal(x.Shape, []int{1, 3, tt.wantH, tt.wantW}) {
				t.Fatalf("PrepareInit: %dx%d, shape %v, want %dx%d", w, h, x.Shape, tt.wantW, tt.wantH)
			}
			if tt.w == tt.wantW && tt.h == tt.wantH {
				want := ToTensor(img, w, h)
				for i := range want.Data {
					if x.Data[i] != want.Data[i] {
						t.Fatalf("value %d = %v, want %v (no resize)", i, x.Data[i], want.Data[i])
					}
				}
			}
		})
	}
}

// Provenance: numpy 1.24 in float32, as diffusers' postprocess with
// output_type "pil" computes it:
//
//	v = (x / np.float32(2) + np.float32(0.5)).clip(0, 1)  # torch denormalize
//	(v * np.float32(255)).round().astype(np.uint8)        # numpy_to_pil
//
// The first five inputs were searched so that v*255 is exactly n + 0.5:
// round half to even gives 126, 128, 128, 254, 254 where rounding half up
// would give 127, 128, 129, 254, 255.
var postprocessed = []struct {
	bits uint32
	want uint8
}{
	{0xbc008080, 126}, // -0.007843137 → 126.5
	{0x00000000, 128}, // 0 → 127.5
	{0x3c008080, 128}, // 0.007843137 → 128.5
	{0x3f7cfcfc, 254}, // 0.98823524 → 253.5
	{0x3f7efefe, 254}, // 0.9960784 → 254.5
	{0xbf800000, 0},   // -1
	{0x3f800000, 255}, // 1
	{0xbf800001, 0},   // -1.0000001
	{0x3f800001, 255}, // 1.0000001
	{0xc0400000, 0},   // -3
	{0x40400000, 255}, // 3
	{0x7f800000, 255}, // +Inf
	{0xff800000, 0},   // -Inf
	{0x00000001, 128}, // smallest subnormal
	{0x80000001, 128}, // its negative
	{0x3e99999a, 166}, // 0.3 → 165.75
	{0xbf333333, 38},  // -0.7 → 38.25
	{0x3f7d70a4, 254}, // 0.99 → 253.725
	{0xbf7fffff, 0},   // -0.99999994 → 7.6e-06
}

func TestFromTensor(t *testing.T) {
	n := len(postprocessed)
	// Batch of 2, 3 channels, 1×n: image b channel c holds the table
	// shifted by b+c so every value lands in every slot.
	x := tensor.New(2, 3, 1, n)
	for b := 0; b < 2; b++ {
		for c := 0; c < 3; c++ {
			for i := 0; i < n; i++ {
				x.Data[(b*3+c)*n+i] = math.Float32frombits(postprocessed[(i+b+c)%n].bits)
			}
		}
	}
	imgs := FromTensor(x)
	flat := ToUint8NHWC(x)
	if len(imgs) != 2 || len(flat) != 2*n*3 {
		t.Fatalf("got %d images and %d bytes, want 2 and %d", len(imgs), len(flat), 2*n*3)
	}
	for b, img := range imgs {
		if img.Rect != image.Rect(0, 0, n, 1) {
			t.Fatalf("image %d bounds %v", b, img.Rect)
		}
		for i := 0; i < n; i++ {
			for c := 0; c < 3; c++ {
				want := postprocessed[(i+b+c)%n].want
				if got := img.Pix[4*i+c]; got != want {
					t.Errorf("image %d pixel %d channel %d: %d from %v, want %d", b, i, c, got, math.Float32frombits(postprocessed[(i+b+c)%n].bits), want)
				}
				if got := flat[(b*n+i)*3+c]; got != want {
					t.Errorf("ToUint8NHWC[%d,0,%d,%d] = %d, want %d", b, i, c, got, want)
				}
			}
			if img.Pix[4*i+3] != 255 {
				t.Errorf("image %d pixel %d alpha %d, want 255", b, i, img.Pix[4*i+3])
			}
		}
	}
}

func TestFromTensorNaN(t *testing.T) {
	x := tensor.FromData([]float32{float32(math.NaN()), 0, 0}, 1, 3, 1, 1)
	if got := ToUint8NHWC(x); got[0] != 0 || got[1] != 128 {
		t.Errorf("NaN → %d, want 0 (and 0 → %d, want 128)", got[0], got[1])
	}
}

func TestPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		msg  string
	}{
		{"FitSize/zero_multiple", func() { FitSize(8, 8, 0) }, "multiple of 0"},
		{"ToTensor/zero_width", func() { ToTensor(gradient(2, 2, 255), 0, 2) }, "0x2"},
		{"ToTensor/nil_image", func() { ToTensor(nil, 2, 2) }, "nil image"},
		{"ToTensor/empty_image", func() { ToTensor(image.NewGray(image.Rect(0, 0, 0, 3)), 2, 2) }, "empty"},
		{"PrepareInit/zero_multiple", func() { PrepareInit(gradient(8, 8, 255), 0) }, "multiple of 0"},
		{"FromTensor/3d", func() { FromTensor(tensor.New(3, 2, 2)) }, "[3 2 2]"},
		{"FromTensor/4_channels", func() { FromTensor(tensor.New(1, 4, 2, 2)) }, "[1 4 2 2]"},
		{"FromTensor/nil", func() { FromTensor(nil) }, "[]"},
		{"ToUint8NHWC/1_channel", func() { ToUint8NHWC(tensor.New(1, 1, 2, 2)) }, "want [N, 3, H, W]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				s, _ := p.(string)
				if !strings.HasPrefix(s, "imageio: ") || !strings.Contains(s, tt.msg) {
					t.Errorf("panic %v, want an imageio: message containing %q", p, tt.msg)
				}
			}()
			tt.f()
		})
	}
}

// TestToTensorResizePIL compares ToTensor's Lanczos resize with PIL's
// Image.resize(LANCZOS), which diffusers uses, on testdata/images'
// random 19×13 image (see the README there). imaging's filter has the same
// support, weights and per-pass rounding to 8 bits as PIL's; they differ
// only in fixed- vs floating-point accumulation, by at most 1 on a few
// values.
func TestToTensorResizePIL(t *testing.T) {
	src, _, err := Decode(bytes.NewReader(readFixture(t, "resize_src.png")), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []image.Point{{12, 8}, {24, 16}} {
		want := rawFixture(t, fmt.Sprintf("resize_%dx%d.rgb", size.X, size.Y), size.X, size.Y, 3)
		x := ToTensor(src, size.X, size.Y)
		plane := size.X * size.Y
		worst, off := 0, 0
		for i := 0; i < plane; i++ {
			for c := 0; c < 3; c++ {
				// Back to the pixel: x = p/255*2-1 exactly invertible.
				p := int(math.Round(float64(x.Data[c*plane+i]+1) / 2 * 255))
				d := p - int(want.Pix[4*i+c])
				if d < 0 {
					d = -d
				}
				worst = max(worst, d)
				if d > 0 {
					off++
				}
			}
		}
		t.Logf("%v: %d of %d values differ from PIL, max %d", size, off, 3*plane, worst)
		if worst > 1 || off > 3*plane/100 {
			t.Errorf("%v: %d of %d values differ from PIL, max %d; want ≤ 1 on ≤ 1%%", size, off, 3*plane, worst)
		}
	}
}

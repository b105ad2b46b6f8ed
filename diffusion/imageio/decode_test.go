package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"strings"
	"testing"
)

// decodeCase is one Decode input: either it decodes to an image of the
// given format and size (whose RGB pixels equal want's exactly, or lie
// within tol of near everywhere), or it fails with err and a message
// containing msg.
type decodeCase struct {
	name      string
	data      []byte
	maxPixels int

	format string
	size   image.Point
	want   image.Image  // compared exactly through toRGB, if set
	alpha  bool         // compare want's alpha too
	near   *color.NRGBA // every pixel within tol, if set
	tol    int

	err error
	msg string
}

func decodeCases(t testing.TB) []decodeCase {
	opaque := gradient(5, 4, 255)
	translucent := gradient(5, 4, 100)
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	copy(gray.Pix, []uint8{0, 1, 127, 128, 254, 255})
	gray16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	copy(gray16.Pix, []uint8{0x00, 0xC8, 0x80, 0xFF, 0xFF, 0xFF}) // 200, 33023, 65535
	nrgba64 := image.NewNRGBA64(image.Rect(0, 0, 2, 1))
	nrgba64.SetNRGBA64(0, 0, color.NRGBA64{0x1234, 0xABCD, 0xFFFF, 0x8000})
	nrgba64.SetNRGBA64(1, 0, color.NRGBA64{0x00FF, 0xFF00, 0x7F7F, 0})
	gifImg := image.NewPaletted(image.Rect(0, 0, 3, 2), color.Palette{
		color.RGBA{255, 0, 0, 255}, color.RGBA{0, 255, 0, 255}, color.RGBA{0, 0, 255, 255},
	})
	copy(gifImg.Pix, []uint8{0, 1, 2, 2, 1, 0})

	pngBytes := encodePNG(t, opaque)
	jpegBytes := encodeJPEG(t, gradient(16, 16, 255))
	gifBytes := encodeGIF(t, gifImg)
	gifZero := append([]byte(nil), gifBytes...)
	copy(gifZero[6:10], []byte{0, 0, 0, 0}) // logical screen 0×0
	badCRC := append([]byte(nil), pngBytes...)
	idat := bytes.Index(badCRC, []byte("IDAT"))
	badCRC[idat+6] ^= 0xFF
	arith := append([]byte(nil), jpegBytes...)
	sof := bytes.Index(arith, []byte{0xFF, 0xC0})
	arith[sof+1] = 0xC9 // SOF9: arithmetic coding
	lossless := readFixture(t, "lossless.webp")
	pilLossless := image.NewNRGBA(image.Rect(0, 0, 4, 3)) // what PIL decodes
	for i, c := range []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 128}, {0, 0, 255, 0}, {10, 20, 30, 255}} {
		for y := 0; y < 3; y++ {
			pilLossless.SetNRGBA(i, y, c)
		}
	}

	return []decodeCase{
		{name: "png/nrgba", data: pngBytes, format: "png", size: image.Pt(5, 4), want: opaque},
		{name: "png/nrgba_translucent", data: encodePNG(t, translucent), format: "png", size: image.Pt(5, 4), want: translucent},
		{name: "png/paletted_trns", data: encodePNG(t, paletted()), format: "png", size: image.Pt(3, 2), want: paletted()},
		{name: "png/gray", data: encodePNG(t, gray), format: "png", size: image.Pt(3, 2), want: gray},
		{name: "png/gray16", data: encodePNG(t, gray16), format: "png", size: image.Pt(3, 1), want: gray16},
		{name: "png/nrgba64", data: encodePNG(t, nrgba64), format: "png", size: image.Pt(2, 1), want: nrgba64},
		{name: "jpeg", data: jpegBytes, format: "jpeg", size: image.Pt(16, 16)},
		{name: "jpeg/cmyk", data: readFixture(t, "cmyk.jpg"), format: "jpeg", size: image.Pt(8, 8), near: &color.NRGBA{191, 95, 0, 255}, tol: 2},
		{name: "gif", data: gifBytes, format: "gif", size: image.Pt(3, 2), want: gifImg},
		{name: "bmp", data: encodeBMP(t, opaque), format: "bmp", size: image.Pt(5, 4), want: opaque},
		{name: "webp/lossless_alpha", data: lossless, format: "webp", size: image.Pt(4, 3), want: pilLossless},
		{name: "webp/lossy_odd", data: readFixture(t, "lossy.webp"), format: "webp", size: image.Pt(15, 9), want: rawFixture(t, "lossy.webp.rgb", 15, 9, 3)},
		{name: "webp/lossy_alpha_even", data: readFixture(t, "lossy_alpha.webp"), format: "webp", size: image.Pt(16, 10), want: rawFixture(t, "lossy_alpha.webp.rgba", 16, 10, 4), alpha: true},
		{name: "limit/exact", data: pngBytes, maxPixels: 20, format: "png", size: image.Pt(5, 4), want: opaque},

		{name: "limit/one_over", data: pngBytes, maxPixels: 19, err: ErrTooLarge, msg: "image is 5x4 pixels, the limit is 19"},
		{name: "png/header_100000x100000", data: pngHeaderOnly(100000, 100000), err: ErrTooLarge, msg: "image is 100000x100000 pixels, the limit is 16777216"},
		{name: "png/header_zero_width", data: pngHeaderOnly(0, 5), err: ErrCorrupt},
		{name: "png/truncated_half", data: pngBytes[:len(pngBytes)/2], err: ErrCorrupt, msg: "png"},
		{name: "png/signature_only", data: pngBytes[:8], err: ErrCorrupt, msg: "truncated"},
		{name: "png/bad_crc", data: badCRC, err: ErrCorrupt},
		{name: "jpeg/sof_65535x65535", data: jpegWithSOF(t, 65535, 65535), err: ErrTooLarge, msg: "65535x65535"},
		{name: "jpeg/sof_zero_width", data: jpegWithSOF(t, 0, 8), err: ErrCorrupt},
		{name: "jpeg/truncated", data: jpegBytes[:len(jpegBytes)*6/10], err: ErrCorrupt},
		{name: "jpeg/soi_only", data: []byte{0xFF, 0xD8}, err: ErrCorrupt},
		{name: "jpeg/arithmetic", data: arith, err: ErrUnsupportedFormat, msg: "jpeg"},
		{name: "gif/zero_screen", data: gifZero, err: ErrCorrupt},
		{name: "webp/animated", data: []byte("RIFF\x1a\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x03\x00\x00"), err: ErrUnsupportedFormat, msg: "animated WebP"},
		{name: "webp/truncated", data: lossless[:30], err: ErrCorrupt},
		{name: "bmp/truncated", data: encodeBMP(t, opaque)[:40], err: ErrCorrupt},
		{name: "empty", data: nil, err: ErrCorrupt, msg: "empty"},
		{name: "garbage", data: []byte("hello, world"), err: ErrUnsupportedFormat, msg: "68 65 6c 6c"},
		{name: "tiff", data: []byte("II*\x00\x08\x00\x00\x00"), err: ErrUnsupportedFormat, msg: "TIFF"},
		{name: "svg", data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), err: ErrUnsupportedFormat},
	}
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img, format, err := Decode(bytes.NewReader(tt.data), tt.maxPixels)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Decode error = %v, want %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("Decode error %q does not mention %q", err, tt.msg)
				}
				if img != nil {
					t.Errorf("Decode returned an image with error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if format != tt.format {
				t.Errorf("format = %q, want %q", format, tt.format)
			}
			if got := img.Bounds().Size(); got != tt.size {
				t.Fatalf("size = %v, want %v", got, tt.size)
			}
			if tt.want != nil {
				equalRGB(t, toRGB(img), toRGB(tt.want))
			}
			if tt.alpha {
				got, ok := img.(*image.NRGBA)
				if !ok || !bytes.Equal(got.Pix, tt.want.(*image.NRGBA).Pix) {
					t.Errorf("NRGBA pixels with alpha differ from want")
				}
			}
			if tt.near != nil {
				rgb := toRGB(img)
				for i := 0; i < len(rgb.Pix); i += 4 {
					for c, w := range []uint8{tt.near.R, tt.near.G, tt.near.B} {
						if d := int(rgb.Pix[i+c]) - int(w); d < -tt.tol || d > tt.tol {
							t.Fatalf("pixel %d channel %d = %d, want %d±%d", i/4, c, rgb.Pix[i+c], w, tt.tol)
						}
					}
				}
			}
		})
	}
}

// rawFixture reads a w×h image stored as raw RGB (channels 3) or RGBA
// (channels 4) bytes, as numpy's tofile writes them.
func rawFixture(t testing.TB, name string, w, h, channels int) *image.NRGBA {
	t.Helper()
	b := readFixture(t, name)
	if len(b) != w*h*channels {
		t.Fatalf("%s: %d bytes, want %d", name, len(b), w*h*channels)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		p := b[i*channels:]
		a := uint8(255)
		if channels == 4 {
			a = p[3]
		}
		copy(img.Pix[4*i:], []uint8{p[0], p[1], p[2], a})
	}
	return img
}

// equalRGB fails unless got and want have the same size and RGB pixels.
func equalRGB(t testing.TB, got, want *image.NRGBA) {
	t.Helper()
	if got.Rect != want.Rect {
		t.Fatalf("bounds %v, want %v", got.Rect, want.Rect)
	}
	for y := 0; y < want.Rect.Dy(); y++ {
		for x := 0; x < want.Rect.Dx(); x++ {
			g, w := got.NRGBAAt(x, y), want.NRGBAAt(x, y)
			if g.R != w.R || g.G != w.G || g.B != w.B {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestDecodeChecksHeaderFirst: a too-large image is rejected after
// reading its header, without reading (let alone decoding) the rest.
func TestDecodeChecksHeaderFirst(t *testing.T) {
	data := append(pngHeaderOnly(100000, 100000), make([]byte, 8<<20)...)
	cr := &countingReader{r: bytes.NewReader(data)}
	_, _, err := Decode(cr, 0)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode error = %v, want ErrTooLarge", err)
	}
	if cr.n > 64<<10 {
		t.Errorf("Decode read %d bytes before rejecting the header", cr.n)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestDecodeReaderError: a failing reader is reported as such, not as a
// corrupt image.
func TestDecodeReaderError(t *testing.T) {
	errNet := errors.New("connection reset")
	png := encodePNG(t, gradient(64, 64, 255))
	for _, n := range []int{0, 4, 40, len(png) / 2} {
		_, _, err := Decode(&failingReader{data: png[:n], err: errNet}, 0)
		if !errors.Is(err, errNet) || errors.Is(err, ErrCorrupt) {
			t.Errorf("after %d bytes: Decode error = %v, want the reader's error", n, err)
		}
	}
}

// TestDecodeEXIFOrientation: a JPEG stored in each EXIF orientation
// decodes to the same display image. The display image is a 3×2 grid of
// 8×8 gray blocks; stored lists the grid as written to the file for each
// orientation (the inverse of the transform a viewer applies), in both
// TIFF byte orders.
func TestDecodeEXIFOrientation(t *testing.T) {
	display := [][]uint8{{0, 1, 2}, {3, 4, 5}}
	tests := []struct {
		orientation uint32
		stored      [][]uint8
	}{
		{1, [][]uint8{{0, 1, 2}, {3, 4, 5}}},
		{2, [][]uint8{{2, 1, 0}, {5, 4, 3}}},      // mirrored
		{3, [][]uint8{{5, 4, 3}, {2, 1, 0}}},      // rotated 180°
		{4, [][]uint8{{3, 4, 5}, {0, 1, 2}}},      // flipped
		{5, [][]uint8{{0, 3}, {1, 4}, {2, 5}}},    // transposed
		{6, [][]uint8{{2, 5}, {1, 4}, {0, 3}}},    // rotated 90° CCW; display turns it CW
		{7, [][]uint8{{5, 2}, {4, 1}, {3, 0}}},    // transversed
		{8, [][]uint8{{3, 0}, {4, 1}, {5, 2}}},    // rotated 90° CW; display turns it CCW
		{0, [][]uint8{{0, 1, 2}, {3, 4, 5}}},      // invalid: ignored
		{9, [][]uint8{{0, 1, 2}, {3, 4, 5}}},      // invalid: ignored
		{0xFFFF, [][]uint8{{0, 1, 2}, {3, 4, 5}}}, // invalid: ignored
	}
	for _, tt := range tests {
		for _, bo := range byteOrders {
			t.Run(fmt.Sprintf("%v/%d", bo, tt.orientation), func(t *testing.T) {
				jpg := withSegments(encodeJPEG(t, grid(tt.stored)), exifAPP1(bo, orientationEntry(bo, tt.orientation)))
				img, _, err := Decode(bytes.NewReader(jpg), 0)
				if err != nil {
					t.Fatal(err)
				}
				checkGrid(t, img, display)
			})
		}
	}
}

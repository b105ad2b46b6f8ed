package imageio

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
)

// Tiny fixtures built in code; testdata/images holds the few that Go
// cannot write (WebP, CMYK JPEG, PIL's text chunks, PIL's EXIF), made by
// the Pillow script in testdata/images/README.md.

// fixtureDir is testdata/images at the module root.
var fixtureDir = filepath.Join("..", "..", "testdata", "images")

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gradient returns a w×h NRGBA image whose pixels differ (R = x, G = y,
// B = x+y, alpha from a) so that orientation and layout mistakes show.
func gradient(w, h int, a uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(10 * x), uint8(20 * y), uint8(10*x + 20*y), a})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, img *image.Paletted) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeBMP(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := bmp.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// paletted returns a 3×2 paletted image using a palette with a
// translucent entry.
func paletted() *image.Paletted {
	pal := color.Palette{
		color.NRGBA{255, 0, 0, 255},
		color.NRGBA{0, 255, 0, 255},
		color.NRGBA{0, 0, 255, 128}, // PNG keeps it as NRGBA via tRNS
	}
	img := image.NewPaletted(image.Rect(0, 0, 3, 2), pal)
	copy(img.Pix, []uint8{0, 1, 2, 2, 1, 0})
	return img
}

// pngChunk returns a PNG chunk with a correct CRC.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// pngHeaderOnly returns a PNG signature and an IHDR claiming w×h 8-bit
// RGB, and nothing else: decoding its pixels would fail, so only a
// header-first size check can tell it is too large.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	return append([]byte(pngSignature), pngChunk("IHDR", ihdr)...)
}

// jpegWithSOF returns a valid small JPEG whose SOF0 frame header is
// patched to claim w×h.
func jpegWithSOF(t testing.TB, w, h uint16) []byte {
	t.Helper()
	b := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 8, 8)))
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0 in image/jpeg output")
	}
	// FF C0, length (2), precision (1), height (2), width (2).
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

// exifAPP1 returns an APP1 Exif segment (marker included) whose IFD0
// holds entries, each a raw 12-byte IFD entry in the given byte order.
func exifAPP1(bo byteOrder, entries ...[]byte) []byte {
	tiff := []byte("II*\x00")
	if bo == binary.BigEndian {
		tiff = []byte("MM\x00*")
	}
	tiff = bo.AppendUint32(tiff, 8) // IFD0 offset
	tiff = bo.AppendUint16(tiff, uint16(len(entries)))
	for _, e := range entries {
		tiff = append(tiff, e...)
	}
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xFF, 0xE1}
	out = binary.BigEndian.AppendUint16(out, uint16(len(seg)+2))
	return append(out, seg...)
}

// ifdEntry returns a 12-byte IFD entry with a one-value SHORT (typ 3) or
// LONG (typ 4) value.
func ifdEntry(bo byteOrder, tag, typ uint16, count, value uint32) []byte {
	e := bo.AppendUint16(nil, tag)
	e = bo.AppendUint16(e, typ)
	e = bo.AppendUint32(e, count)
	if typ == 3 {
		e = bo.AppendUint16(e, uint16(value))
		return bo.AppendUint16(e, 0)
	}
	return bo.AppendUint32(e, value)
}

// orientationEntry is the usual Orientation entry: tag 0x0112, SHORT, 1.
func orientationEntry(bo byteOrder, o uint32) []byte {
	return ifdEntry(bo, 0x0112, 3, 1, o)
}

// withSegments inserts segments right after the SOI of a JPEG.
func withSegments(jpg []byte, segments ...[]byte) []byte {
	out := append([]byte(nil), jpg[:2]...)
	for _, s := range segments {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

package imageio

import (
	"bytes"
	"errors"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// fuzzMaxPixels keeps each fuzz iteration small.
const fuzzMaxPixels = 1 << 16

// addFixtureSeeds adds every file of testdata/images with one of exts.
func addFixtureSeeds(f *testing.F, exts ...string) {
	for _, ext := range exts {
		paths, err := filepath.Glob(filepath.Join(fixtureDir, "*"+ext))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzDecode: Decode never panics; a failure matches one of the sentinels
// (the reader never fails); a success is a non-empty image within the
// pixel limit, of a known format, that ToTensor accepts. Seeds: the
// decodeCases table (every format, corrupt and oversized headers), JPEGs
// with each EXIF orientation, testdata/images.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeCases(f) {
		f.Add(tt.data)
	}
	jpg := encodeJPEG(f, grid([][]uint8{{0, 1}, {2, 3}}))
	for o := uint32(1); o <= 8; o++ {
		bo := byteOrders[o%2]
		f.Add(withSegments(jpg, exifAPP1(bo, orientationEntry(bo, o))))
	}
	addFixtureSeeds(f, ".png", ".jpg", ".webp")
	f.Fuzz(func(t *testing.T, data []byte) {
		img, format, err := Decode(bytes.NewReader(data), fuzzMaxPixels)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			if img != nil {
				t.Fatalf("image returned with error %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || b.Dx()*b.Dy() > fuzzMaxPixels || format == "" {
			t.Fatalf("Decode = %v image, format %q", b, format)
		}
		x := ToTensor(img, 8, 8)
		for _, v := range x.Data {
			if !(v >= -1 && v <= 1) {
				t.Fatalf("ToTensor value %v outside [-1, 1]", v)
			}
		}
	})
}

// FuzzExifOrientation: the segment walker and IFD reader never panic and
// return 1–8, whether given a whole JPEG prefix or a raw TIFF structure.
func FuzzExifOrientation(f *testing.F) {
	for _, bo := range byteOrders {
		f.Add(exifAPP1(bo, orientationEntry(bo, 6))[10:]) // the TIFF structure
		f.Add(exifAPP1(bo, ifdEntry(bo, 0x010F, 3, 1, 1), ifdEntry(bo, 0x0112, 4, 1, 8))[10:])
	}
	f.Add([]byte("II*\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tiff []byte) {
		for _, data := range [][]byte{
			tiff,
			withSegments([]byte{0xFF, 0xD8}, tiff),
			withSegments([]byte{0xFF, 0xD8}, segment(0xE1, append([]byte("Exif\x00\x00"), tiff...))),
		} {
			if o := exifOrientation(data); o < 1 || o > 8 {
				t.Fatalf("exifOrientation = %d", o)
			}
		}
		if o := tiffOrientation(tiff); o < 1 || o > 8 {
			t.Fatalf("tiffOrientation = %d", o)
		}
	})
}

// FuzzReadPNGText: ReadPNGText never panics; a failure matches a
// sentinel; on success keys are non-empty and everything is valid UTF-8.
// Seeds: EncodePNG outputs, Pillow's pil_text.png, hand-made text chunks.
func FuzzReadPNGText(f *testing.F) {
	for _, tt := range textCases {
		var buf bytes.Buffer
		if err := EncodePNG(&buf, gradient(2, 2, 255), tt.text); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	addFixtureSeeds(f, ".png")
	f.Add(pngWith(pngChunk("zTXt", append([]byte("k\x00\x00"), zlibBytes([]byte("caf\xe9"))...))))
	f.Add(pngWith(pngChunk("iTXt", append([]byte("k\x00\x01\x00ja\x00t\x00"), zlibBytes([]byte("日本語"))...))))
	f.Fuzz(func(t *testing.T, data []byte) {
		text, err := ReadPNGText(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			return
		}
		for k, v := range text {
			if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("text %q: %q", k, v)
			}
		}
	})
}

// FuzzPNGTextRoundTrip: for any key and value, EncodePNG either rejects
// them for the documented reasons (key not 1–79 Latin-1 bytes without NUL,
// value not UTF-8), or writes a PNG that image/png decodes and from which
// ReadPNGText returns exactly {key: value}.
func FuzzPNGTextRoundTrip(f *testing.F) {
	for _, tt := range textCases {
		for k, v := range tt.text {
			f.Add(k, v)
		}
	}
	f.Add("", "empty key")
	f.Add("k\xff", "invalid key")
	f.Add("k", "v\xff")
	img := gradient(2, 1, 255)
	f.Fuzz(func(t *testing.T, key, value string) {
		var buf bytes.Buffer
		err := EncodePNG(&buf, img, map[string]string{key: value})
		k, latin := latin1BytesOK(key)
		valid := utf8.ValidString(key) && latin && len(k) >= 1 && len(k) <= 79 && !bytes.Contains(k, []byte{0}) && utf8.ValidString(value)
		if (err == nil) != valid {
			t.Fatalf("EncodePNG(%q: %q) error = %v, want error: %v", key, value, err, !valid)
		}
		if err != nil {
			return
		}
		if _, err := png.Decode(bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatalf("image/png: %v", err)
		}
		got, err := ReadPNGText(bytes.NewReader(buf.Bytes()))
		if err != nil || !maps.Equal(got, map[string]string{key: value}) {
			t.Fatalf("ReadPNGText = %q, %v; want {%q: %q}", got, err, key, value)
		}
	})
}

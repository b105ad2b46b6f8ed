package imageio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the pixel limit Decode uses when given maxPixels ≤ 0:
// 4096×4096.
const DefaultMaxPixels = 1 << 24

// Sentinel errors of Decode and PrepareInit; match them with errors.Is. The
// errors returned carry a message saying what exactly was wrong.
var (
	// ErrUnsupportedFormat: the data is not PNG, JPEG, GIF, WebP or BMP,
	// or uses a feature of one of them that the decoder lacks.
	ErrUnsupportedFormat = errors.New("imageio: unsupported image format")
	// ErrTooLarge: the header claims more pixels than allowed.
	ErrTooLarge = errors.New("imageio: image too large")
	// ErrCorrupt: the data is malformed, truncated or empty, or claims a
	// zero size.
	ErrCorrupt = errors.New("imageio: corrupt image")
	// ErrTooSmall: the image is smaller than one multiple of the VAE scale
	// factor in some dimension (PrepareInit).
	ErrTooSmall = errors.New("imageio: image too small")
)

// format is one decodable image format, recognised by its magic prefix
// ('?' matches any byte), as image.RegisterFormat does. The table is local
// so that what Decode accepts does not depend on which packages a program
// happens to import.
type format struct {
	name   string
	magic  string
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var formats = []format{
	{"png", "\x89PNG\r\n\x1a\n", png.DecodeConfig, png.Decode},
	{"jpeg", "\xff\xd8", jpeg.DecodeConfig, jpeg.Decode},
	{"gif", "GIF8?a", gif.DecodeConfig, gif.Decode}, // first frame only
	{"webp", "RIFF????WEBPVP8", webp.DecodeConfig, webp.Decode},
	{"bmp", "BM????\x00\x00\x00\x00", bmp.DecodeConfig, bmp.Decode},
}

// knownUnsupported names common formats Decode does not read, so that the
// error can say what the upload was.
var knownUnsupported = []struct{ name, magic string }{
	{"TIFF", "II*\x00"},
	{"TIFF", "MM\x00*"},
	{"HEIF/AVIF", "????ftyp"},
	{"JPEG XL", "\xff\x0a"},
	{"JPEG XL", "\x00\x00\x00\x0cJXL \r\n\x87\n"},
	{"JPEG 2000", "\x00\x00\x00\x0cjP  \r\n\x87\n"},
	{"Photoshop", "8BPS"},
	{"ICO", "\x00\x00\x01\x00"},
	{"QOI", "qoif"},
	{"SVG or other text", "<"},
}

const supportedList = "PNG, JPEG, GIF, WebP and BMP"

// magicLen is the longest prefix sniff looks at (a WebP's VP8X flags are
// byte 20).
const magicLen = 32

func match(magic string, b []byte) bool {
	if len(b) < len(magic) {
		return false
	}
	for i := 0; i < len(magic); i++ {
		if magic[i] != '?' && magic[i] != b[i] {
			return false
		}
	}
	return true
}

// sniff returns the format whose magic prefixes b.
func sniff(b []byte) (format, error) {
	if len(b) == 0 {
		return format{}, fmt.Errorf("%w: no data (empty input)", ErrCorrupt)
	}
	for _, f := range formats {
		if match(f.magic, b) {
			// x/image/webp reads no animation, and would call the frames
			// that it cannot find a truncation.
			if f.name == "webp" && match("RIFF????WEBPVP8X", b) && len(b) > 20 && b[20]&0x02 != 0 {
				return format{}, fmt.Errorf("%w: animated WebP (supported: %s; GIF animations decode to their first frame)", ErrUnsupportedFormat, supportedList)
			}
			return f, nil
		}
	}
	for _, u := range knownUnsupported {
		if match(u.magic, b) {
			return format{}, fmt.Errorf("%w: %s (supported: %s)", ErrUnsupportedFormat, u.name, supportedList)
		}
	}
	n := min(len(b), 8)
	return format{}, fmt.Errorf("%w: unrecognised data starting with % x (supported: %s)", ErrUnsupportedFormat, b[:n], supportedList)
}

// Decode reads one image (PNG, JPEG, GIF's first frame, WebP or BMP) from
// r and returns it with its format name ("png", "jpeg", "gif", "webp",
// "bmp"); the name is also returned with an error once the format is
// recognised.
//
// The header is read first: an image whose width·height exceeds maxPixels
// (DefaultMaxPixels if maxPixels ≤ 0) fails with ErrTooLarge, and one with
// a zero side with ErrCorrupt, before any pixel memory is allocated.
// Malformed or truncated data fails with ErrCorrupt, other formats (and
// animated WebP) with ErrUnsupportedFormat; an error of r itself is
// returned wrapped as it is. Decode never panics on any input.
//
// A JPEG's EXIF orientation (1–8, from the APP1 Exif segment) is applied,
// as diffusers' load_image does with PIL's exif_transpose; the result is
// then an *image.NRGBA. A lossy WebP is returned as an *image.NRGBA
// converted with libwebp's BT.601 formulas and chroma upsampling, so its
// pixels equal PIL's, rather than as x/image/webp's *image.YCbCr, whose
// colours are off.
//
// Decode reads r only as far as the image goes and keeps the bytes before
// the pixel data in memory; it does not bound the length of r, which
// callers limit (e.g. with http.MaxBytesReader).
func Decode(r io.Reader, maxPixels int) (image.Image, string, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	er := &errReader{r: r}
	br := bufio.NewReader(er)
	magic, _ := br.Peek(magicLen)
	if er.err != nil {
		return nil, "", fmt.Errorf("imageio: reading image: %w", er.err)
	}
	f, err := sniff(magic)
	if err != nil {
		return nil, "", err
	}

	// The decoder reads the header through head, so that the full decode
	// can replay it: r need not be seekable.
	var head bytes.Buffer
	cfg, err := safeConfig(f, io.TeeReader(br, &head))
	if err != nil {
		return nil, f.name, decodeError(f.name, er, err)
	}
	if err := checkSize(cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, f.name, err
	}

	img, err := safeDecode(f, io.MultiReader(bytes.NewReader(head.Bytes()), br))
	if err != nil {
		return nil, f.name, decodeError(f.name, er, err)
	}
	b := img.Bounds()
	if err := checkSize(b.Dx(), b.Dy(), maxPixels); err != nil {
		return nil, f.name, err
	}
	if f.name == "webp" {
		img = webpRGB(img)
	}
	if f.name == "jpeg" {
		if o := exifOrientation(head.Bytes()); o > 1 {
			img = orient(toRGB(img), o)
		}
	}
	return img, f.name, nil
}

// checkSize rejects a zero or negative side and more than maxPixels pixels.
func checkSize(w, h, maxPixels int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: image has a zero size (%dx%d pixels)", ErrCorrupt, w, h)
	}
	if w > maxPixels/h {
		return fmt.Errorf("%w: image is %dx%d pixels, the limit is %d", ErrTooLarge, w, h, maxPixels)
	}
	return nil
}

// safeConfig and safeDecode call the format's decoder, turning a panic in
// it (a bug in a third-party decoder; none is known) into an error, so
// that an upload can never bring a worker down.
func safeConfig(f format, r io.Reader) (cfg image.Config, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s decoder panicked: %v", f.name, p)
		}
	}()
	return f.config(r)
}

func safeDecode(f format, r io.Reader) (img image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("%s decoder panicked: %v", f.name, p)
		}
	}()
	return f.decode(r)
}

// decodeError classifies a decoder error: a failure of the underlying
// reader is passed on, an unsupported feature is ErrUnsupportedFormat and
// everything else ErrCorrupt.
func decodeError(name string, er *errReader, err error) error {
	if er.err != nil {
		return fmt.Errorf("imageio: reading %s: %w", name, er.err)
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %s data ends early (truncated file): %w", ErrCorrupt, name, err)
	case isUnsupported(err):
		return fmt.Errorf("%w: %s: %w", ErrUnsupportedFormat, name, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
}

func isUnsupported(err error) bool {
	var pu png.UnsupportedError
	var ju jpeg.UnsupportedError
	return errors.As(err, &pu) || errors.As(err, &ju) || errors.Is(err, bmp.ErrUnsupported)
}

// errReader remembers the first error other than io.EOF of the reader it
// wraps, so that Decode can tell a failing network read from bad data.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

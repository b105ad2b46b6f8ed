package assets

// Post-processing of stored images on their way out (GET /v1/images/{id}
// with format, quality, w, h and fit; a job's `output` options), with
// github.com/disintegration/imaging and the Lanczos filter throughout.

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/diffusion/imageio"
)

const (
	// MaxSide bounds w, h, a thumbnail's size and every side of a
	// resized image.
	MaxSide = 4096
	// DefaultJPEGQuality is the JPEG quality when none is given.
	DefaultJPEGQuality = 90
	// MaxPixels bounds the images Process and Thumbnail decode
	// (imageio.DefaultMaxPixels, 4096×4096).
	MaxPixels = imageio.DefaultMaxPixels
)

// Options say how to post-process an image. The zero value leaves it as
// it is.
//
//   - Format: "png" or "jpeg" ("jpg" and any letter case accepted); empty
//     keeps the stored format.
//   - Quality: JPEG quality 1–100 (0: DefaultJPEGQuality); only with
//     JPEG output.
//   - Width, Height: 1–MaxSide, 0 when not given.
//   - Fit, when both Width and Height are given (imaging's functions):
//     "fit" (the default) scales the image down to fit inside Width×Height,
//     keeping its aspect ratio, and never enlarges it (imaging.Fit);
//     "fill" scales and crops it to exactly Width×Height around its centre
//     (imaging.Fill, Center); "stretch" resizes it to exactly Width×Height
//     (imaging.Resize). With only one of Width and Height the image is
//     scaled to it, keeping its aspect ratio, enlarging if need be
//     (imaging.Resize with 0 for the other side); "fill" and "stretch"
//     then need both.
type Options struct {
	Format  string
	Quality int
	Width   int
	Height  int
	Fit     string
}

// IsZero reports whether o asks for no change.
func (o Options) IsZero() bool { return o == Options{} }

// OptionError is an invalid post-processing option. Field names the query
// parameter (format, quality, w, h, fit), or the job's output field
// (output.format, …) for FromOutput; Message says what is wrong, for the
// API's error body.
type OptionError struct {
	Field   string
	Message string
}

func (e *OptionError) Error() string { return "invalid " + e.Field + ": " + e.Message }

// fieldNames are the names errors give each option.
type fieldNames struct{ format, quality, width, height, fit string }

var (
	queryNames  = fieldNames{"format", "quality", "w", "h", "fit"}
	outputNames = fieldNames{"output.format", "output.quality", "output.width", "output.height", "output.fit"}
)

// ParseOptions reads the query parameters format, quality, w, h and fit
// (an empty parameter counts as absent; others are ignored) and returns
// the normalized, valid Options, or an *OptionError naming the parameter.
func ParseOptions(q url.Values) (Options, error) {
	var o Options
	one := func(name string) (string, error) {
		vs := q[name]
		if len(vs) > 1 {
			return "", &OptionError{name, "given more than once"}
		}
		if len(vs) == 0 {
			return "", nil
		}
		return vs[0], nil
	}
	integer := func(name string, lo, hi int, dst *int) error {
		s, err := one(name)
		if err != nil || s == "" {
			return err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return &OptionError{name, fmt.Sprintf("must be an integer from %d to %d (got %q)", lo, hi, s)}
		}
		*dst = n
		return nil
	}
	var err error
	if o.Format, err = one("format"); err != nil {
		return Options{}, err
	}
	if err := integer("quality", 1, 100, &o.Quality); err != nil {
		return Options{}, err
	}
	if err := integer("w", 1, MaxSide, &o.Width); err != nil {
		return Options{}, err
	}
	if err := integer("h", 1, MaxSide, &o.Height); err != nil {
		return Options{}, err
	}
	if o.Fit, err = one("fit"); err != nil {
		return Options{}, err
	}
	return o.normalize(queryNames)
}

// FromOutput returns the Options of a job's `output` (nil: none), checked
// as ParseOptions checks a query, with errors naming output.format,
// output.quality, output.width, output.height and output.fit.
func FromOutput(out *pigment.OutputOptions) (Options, error) {
	if out == nil {
		return Options{}, nil
	}
	o := Options{Format: out.Format, Quality: out.Quality, Width: out.Width, Height: out.Height, Fit: out.Fit}
	return o.normalize(outputNames)
}

// Validate returns o normalized (format "png" or "jpeg", fit in lower
// case) or an *OptionError naming the query parameter at fault.
func (o Options) Validate() (Options, error) { return o.normalize(queryNames) }

func (o Options) normalize(n fieldNames) (Options, error) {
	switch f := strings.ToLower(o.Format); f {
	case "", "png", "jpeg":
		o.Format = f
	case "jpg":
		o.Format = "jpeg"
	default:
		return Options{}, &OptionError{n.format, fmt.Sprintf("must be png or jpeg (%q is not supported)", o.Format)}
	}
	if o.Quality < 0 || o.Quality > 100 {
		return Options{}, &OptionError{n.quality, fmt.Sprintf("must be an integer from 1 to 100 (got %d)", o.Quality)}
	}
	if o.Quality != 0 && o.Format != "jpeg" {
		return Options{}, &OptionError{n.quality, fmt.Sprintf("applies only to jpeg output; set %s to jpeg", n.format)}
	}
	if o.Width < 0 || o.Width > MaxSide {
		return Options{}, &OptionError{n.width, fmt.Sprintf("must be an integer from 1 to %d (got %d)", MaxSide, o.Width)}
	}
	if o.Height < 0 || o.Height > MaxSide {
		return Options{}, &OptionError{n.height, fmt.Sprintf("must be an integer from 1 to %d (got %d)", MaxSide, o.Height)}
	}
	switch f := strings.ToLower(o.Fit); f {
	case "", "fit":
		o.Fit = f
		if f != "" && o.Width == 0 && o.Height == 0 {
			return Options{}, &OptionError{n.fit, fmt.Sprintf("needs %s or %s", n.width, n.height)}
		}
	case "fill", "stretch":
		o.Fit = f
		if o.Width == 0 || o.Height == 0 {
			return Options{}, &OptionError{n.fit, fmt.Sprintf("%q needs both %s and %s", f, n.width, n.height)}
		}
	default:
		return Options{}, &OptionError{n.fit, fmt.Sprintf("must be fit, fill or stretch (got %q)", o.Fit)}
	}
	return o, nil
}

// Process post-processes the stored image src (PNG, or any format
// imageio.Decode reads) as o says and returns the result with its content
// type. With nothing to change (o is zero, or only asks for the format src
// already has) src itself is returned, untouched.
//
// PNG output keeps the text chunks of a PNG src, the generation
// `parameters` among them. JPEG output has no text chunks and no alpha
// (transparent pixels turn black). Without Format the output has src's
// format if that is PNG or JPEG, else PNG.
//
// Errors: an invalid o is an *OptionError; data that does not decode
// matches imageio.ErrCorrupt, ErrUnsupportedFormat or ErrTooLarge
// (errors.Is); a size that w or h alone would scale a side beyond MaxSide
// is an *OptionError.
func Process(src []byte, o Options) (data []byte, contentType string, err error) {
	if o, err = o.Validate(); err != nil {
		return nil, "", err
	}
	srcFormat := sniff(src)
	resize := o.Width != 0 || o.Height != 0
	if !resize && (o.Format == "" || o.Format == srcFormat) && o.Quality == 0 {
		return src, http.DetectContentType(src), nil
	}
	img, _, err := imageio.Decode(bytes.NewReader(src), MaxPixels)
	if err != nil {
		return nil, "", fmt.Errorf("assets: %w", err)
	}
	if resize {
		if img, err = resizeImage(img, o); err != nil {
			return nil, "", err
		}
	}
	format := o.Format
	if format == "" {
		format = "png"
		if srcFormat == "jpeg" {
			format = "jpeg"
		}
	}
	var buf bytes.Buffer
	switch format {
	case "jpeg":
		q := o.Quality
		if q == 0 {
			q = DefaultJPEGQuality
		}
		if err := jpeg.Encode(&buf, toRGBA(img), &jpeg.Options{Quality: q}); err != nil {
			return nil, "", fmt.Errorf("assets: encoding jpeg: %w", err)
		}
		return buf.Bytes(), "image/jpeg", nil
	default:
		var text map[string]string
		if srcFormat == "png" {
			if text, err = imageio.ReadPNGText(bytes.NewReader(src)); err != nil {
				return nil, "", fmt.Errorf("assets: %w", err)
			}
		}
		if err := imageio.EncodePNG(&buf, img, text); err != nil {
			return nil, "", fmt.Errorf("assets: %w", err)
		}
		return buf.Bytes(), "image/png", nil
	}
}

// toRGBA returns img as an *image.RGBA (alpha-premultiplied, which is how
// image/jpeg would read it), for which image/jpeg has a fast path; it reads
// other types pixel by pixel through color interfaces.
func toRGBA(img image.Image) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok {
		return m
	}
	b := img.Bounds()
	m := image.NewRGBA(b)
	draw.Draw(m, b, img, b.Min, draw.Src)
	return m
}

// resizeImage applies o's Width, Height and Fit (valid, not both 0).
func resizeImage(img image.Image, o Options) (image.Image, error) {
	b := img.Bounds()
	if o.Width != 0 && o.Height != 0 {
		switch o.Fit {
		case "fill":
			return imaging.Fill(img, o.Width, o.Height, imaging.Center, imaging.Lanczos), nil
		case "stretch":
			return imaging.Resize(img, o.Width, o.Height, imaging.Lanczos), nil
		default:
			return imaging.Fit(img, o.Width, o.Height, imaging.Lanczos), nil
		}
	}
	// One side given: the other follows the aspect ratio, rounded as
	// imaging.Resize rounds it. Check it first, so that a narrow image
	// cannot be scaled into gigapixels.
	if o.Width != 0 {
		if h := scaledSide(o.Width, b.Dy(), b.Dx()); h > MaxSide {
			return nil, &OptionError{"w", fmt.Sprintf("would make the %dx%d image %dx%d; sides are limited to %d", b.Dx(), b.Dy(), o.Width, h, MaxSide)}
		}
	} else {
		if w := scaledSide(o.Height, b.Dx(), b.Dy()); w > MaxSide {
			return nil, &OptionError{"h", fmt.Sprintf("would make the %dx%d image %dx%d; sides are limited to %d", b.Dx(), b.Dy(), w, o.Height, MaxSide)}
		}
	}
	return imaging.Resize(img, o.Width, o.Height, imaging.Lanczos), nil
}

// scaledSide returns other·given/side rounded half up, at least 1, as
// imaging.Resize computes the side it is given as 0.
func scaledSide(given, other, side int) int {
	return int(math.Max(1, math.Floor(float64(given)*float64(other)/float64(side)+0.5)))
}

// sniff returns "png" or "jpeg" if src starts like one, else "".
func sniff(src []byte) string {
	switch {
	case bytes.HasPrefix(src, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(src, []byte("\xff\xd8")):
		return "jpeg"
	}
	return ""
}

// Thumbnail returns src (any format imageio.Decode reads) scaled and
// centre-cropped to size×size (imaging.Thumbnail, Lanczos; enlarged if
// smaller), as a PNG without text chunks. A size outside 1–MaxSide is an
// *OptionError for the field "size"; undecodable data fails as in Process.
func Thumbnail(src []byte, size int) ([]byte, error) {
	if size < 1 || size > MaxSide {
		return nil, &OptionError{"size", fmt.Sprintf("must be an integer from 1 to %d (got %d)", MaxSide, size)}
	}
	img, _, err := imageio.Decode(bytes.NewReader(src), MaxPixels)
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	var buf bytes.Buffer
	if err := imageio.EncodePNG(&buf, imaging.Thumbnail(img, size, size, imaging.Lanczos), nil); err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	return buf.Bytes(), nil
}

// Grid lays images out as a contact sheet (an artist's batch of
// variations): cols columns (cols ≤ 0: ⌈√n⌉; at most n), as many rows as
// needed, row-major in the order given. Every cell is the size of the
// largest width × the largest height among the images; each image is
// centred in its cell and drawn over an opaque black background, which
// also fills the cells left over in the last row and those of nil images.
// No images give an empty (0×0) image.
func Grid(images []image.Image, cols int) *image.NRGBA {
	n := len(images)
	if n == 0 {
		return &image.NRGBA{}
	}
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(n))))
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	var cellW, cellH int
	for _, img := range images {
		if img != nil {
			cellW = max(cellW, img.Bounds().Dx())
			cellH = max(cellH, img.Bounds().Dy())
		}
	}
	dst := imaging.New(cols*cellW, rows*cellH, color.Black)
	for i, img := range images {
		if img == nil {
			continue
		}
		b := img.Bounds()
		at := image.Pt((i%cols)*cellW+(cellW-b.Dx())/2, (i/cols)*cellH+(cellH-b.Dy())/2)
		draw.Draw(dst, image.Rectangle{Min: at, Max: at.Add(b.Size())}, img, b.Min, draw.Over)
	}
	return dst
}

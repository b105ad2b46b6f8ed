package assets

import (
	"bytes"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/diffusion/imageio"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// gradient returns a w×h opaque image whose red grows left to right and
// green top to bottom, with a blue checkerboard, so that crops, flips and
// scalings all show.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			var b uint8
			if (x/4+y/4)%2 == 0 {
				b = 200
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), b, 255})
		}
	}
	return img
}

func encode(t testing.TB, img image.Image, text map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := imageio.EncodePNG(&buf, img, text); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		query string
		want  Options
		field string // the *OptionError's Field; "" for success
	}{
		{query: "", want: Options{}},
		{query: "unrelated=1", want: Options{}},
		{query: "format=png", want: Options{Format: "png"}},
		{query: "format=PNG", want: Options{Format: "png"}},
		{query: "format=jpeg", want: Options{Format: "jpeg"}},
		{query: "format=jpg&quality=75", want: Options{Format: "jpeg", Quality: 75}},
		{query: "format=jpeg&quality=1", want: Options{Format: "jpeg", Quality: 1}},
		{query: "format=jpeg&quality=100", want: Options{Format: "jpeg", Quality: 100}},
		{query: "w=256", want: Options{Width: 256}},
		{query: "h=4096", want: Options{Height: 4096}},
		{query: "w=1&h=1", want: Options{Width: 1, Height: 1}},
		{query: "w=64&h=32&fit=fill", want: Options{Width: 64, Height: 32, Fit: "fill"}},
		{query: "w=64&h=32&fit=Stretch", want: Options{Width: 64, Height: 32, Fit: "stretch"}},
		{query: "w=64&fit=fit", want: Options{Width: 64, Fit: "fit"}},
		{query: "w=&h=&format=&fit=&quality=", want: Options{}}, // empty = absent

		{query: "format=webp", field: "format"},
		{query: "format=gif", field: "format"},
		{query: "format=bmp", field: "format"},
		{query: "format=png&format=jpeg", field: "format"},
		{query: "format=jpeg&quality=0", field: "quality"},
		{query: "format=jpeg&quality=101", field: "quality"},
		{query: "format=jpeg&quality=-5", field: "quality"},
		{query: "format=jpeg&quality=high", field: "quality"},
		{query: "format=jpeg&quality=9.5", field: "quality"},
		{query: "quality=80", field: "quality"},            // no jpeg output
		{query: "format=png&quality=80", field: "quality"}, // no jpeg output
		{query: "w=0", field: "w"},
		{query: "w=-1", field: "w"},
		{query: "w=4097", field: "w"},
		{query: "w=abc", field: "w"},
		{query: "w=1e3", field: "w"},
		{query: "w=99999999999999999999", field: "w"},
		{query: "w=10&w=20", field: "w"},
		{query: "h=0", field: "h"},
		{query: "h=4097", field: "h"},
		{query: "h=%20", field: "h"},
		{query: "w=10&h=10&fit=cover", field: "fit"},
		{query: "w=10&h=10&fit=crop", field: "fit"},
		{query: "fit=fit", field: "fit"},          // nothing to fit to
		{query: "w=10&fit=fill", field: "fit"},    // fill needs both
		{query: "h=10&fit=stretch", field: "fit"}, // stretch needs both
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseOptions(q)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ParseOptions(%q): %v", tt.query, err)
				}
				if got != tt.want {
					t.Fatalf("ParseOptions(%q) = %+v, want %+v", tt.query, got, tt.want)
				}
				return
			}
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("ParseOptions(%q) = %+v, %v; want an *OptionError for %q", tt.query, got, err, tt.field)
			}
			if oe.Field != tt.field || oe.Message == "" {
				t.Fatalf("ParseOptions(%q): error %+v, want field %q", tt.query, oe, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestFromOutput(t *testing.T) {
	tests := []struct {
		name  string
		out   *pigment.OutputOptions
		want  Options
		field string
	}{
		{name: "nil", out: nil},
		{name: "empty", out: &pigment.OutputOptions{}},
		{name: "jpeg", out: &pigment.OutputOptions{Format: "JPG", Quality: 80, Width: 256, Height: 256, Fit: "fill"},
			want: Options{Format: "jpeg", Quality: 80, Width: 256, Height: 256, Fit: "fill"}},
		{name: "bad_format", out: &pigment.OutputOptions{Format: "webp"}, field: "output.format"},
		{name: "bad_quality", out: &pigment.OutputOptions{Format: "jpeg", Quality: 101}, field: "output.quality"},
		{name: "quality_png", out: &pigment.OutputOptions{Quality: 50}, field: "output.quality"},
		{name: "bad_width", out: &pigment.OutputOptions{Width: 5000}, field: "output.width"},
		{name: "bad_height", out: &pigment.OutputOptions{Height: -1}, field: "output.height"},
		{name: "bad_fit", out: &pigment.OutputOptions{Width: 8, Height: 8, Fit: "cover"}, field: "output.fit"},
		{name: "fill_one_side", out: &pigment.OutputOptions{Width: 8, Fit: "fill"}, field: "output.fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromOutput(tt.out)
			if tt.field == "" {
				if err != nil || got != tt.want {
					t.Fatalf("FromOutput = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Field != tt.field {
				t.Fatalf("FromOutput = %+v, %v; want an *OptionError for %q", got, err, tt.field)
			}
		})
	}
}

func TestProcessSizes(t *testing.T) {
	src := pngBytes(t, 64, 32, "a lighthouse, Steps: 20")
	tall := pngBytes(t, 20, 40, "tall")
	small := pngBytes(t, 8, 4, "small")
	tests := []struct {
		name string
		src  []byte
		o    Options
		w, h int
	}{
		{"fit_16x16", src, Options{Width: 16, Height: 16, Fit: "fit"}, 16, 8},
		{"fit_default", src, Options{Width: 16, Height: 16}, 16, 8},
		{"fit_tall_box", src, Options{Width: 100, Height: 10}, 20, 10},
		{"fit_never_enlarges", src, Options{Width: 128, Height: 128}, 64, 32},
		{"fit_already_fits", small, Options{Width: 8, Height: 4}, 8, 4},
		{"fill_16x16", src, Options{Width: 16, Height: 16, Fit: "fill"}, 16, 16},
		{"fill_enlarges", small, Options{Width: 30, Height: 30, Fit: "fill"}, 30, 30},
		{"fill_tall", tall, Options{Width: 30, Height: 10, Fit: "fill"}, 30, 10},
		{"stretch_16x16", src, Options{Width: 16, Height: 16, Fit: "stretch"}, 16, 16},
		{"stretch_enlarges", small, Options{Width: 100, Height: 7, Fit: "stretch"}, 100, 7},
		{"w_only", src, Options{Width: 32}, 32, 16},
		{"w_only_rounds", src, Options{Width: 25}, 25, 13}, // 12.5 rounds up, as imaging does
		{"h_only", src, Options{Height: 8}, 16, 8},
		{"h_only_enlarges", src, Options{Height: 64}, 128, 64},
		{"w_only_fit", src, Options{Width: 16, Fit: "fit"}, 16, 8},
		{"w_1", src, Options{Width: 1}, 1, 1},
		{"format_only", src, Options{Format: "jpeg"}, 64, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, ct, err := Process(tt.src, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			img, format, err := imageio.Decode(bytes.NewReader(data), 0)
			if err != nil {
				t.Fatalf("output does not decode: %v", err)
			}
			if "image/"+format != ct {
				t.Errorf("content type %q, but the data is %s", ct, format)
			}
			if got := img.Bounds().Size(); got != image.Pt(tt.w, tt.h) {
				t.Errorf("size %v, want %dx%d", got, tt.w, tt.h)
			}
		})
	}
}

func TestProcessUntouched(t *testing.T) {
	src := pngBytes(t, 16, 16, "p")
	var jbuf bytes.Buffer
	if err := jpeg.Encode(&jbuf, gradient(16, 16), nil); err != nil {
		t.Fatal(err)
	}
	jsrc := jbuf.Bytes()
	tests := []struct {
		name string
		src  []byte
		o    Options
		ct   string
	}{
		{"zero", src, Options{}, "image/png"},
		{"png_as_png", src, Options{Format: "png"}, "image/png"},
		{"jpeg_zero", jsrc, Options{}, "image/jpeg"},
		{"jpeg_as_jpg", jsrc, Options{Format: "jpg"}, "image/jpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, ct, err := Process(tt.src, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if ct != tt.ct {
				t.Errorf("content type %q, want %q", ct, tt.ct)
			}
			if &data[0] != &tt.src[0] || len(data) != len(tt.src) {
				t.Error("the original bytes were not returned as they are")
			}
		})
	}
}

func TestProcessJPEG(t *testing.T) {
	src := pngBytes(t, 64, 32, "p")
	tests := []struct {
		name    string
		o       Options
		w, h    int
		quality int // compare sizes: lower quality must not be larger
	}{
		{"default_quality", Options{Format: "jpeg"}, 64, 32, DefaultJPEGQuality},
		{"q100_resized", Options{Format: "jpeg", Quality: 100, Width: 32, Height: 32, Fit: "fill"}, 32, 32, 100},
		{"q10_w_only", Options{Format: "jpg", Quality: 10, Width: 16}, 16, 8, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, ct, err := Process(src, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if ct != "image/jpeg" {
				t.Errorf("content type %q", ct)
			}
			img, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("output is not a JPEG: %v", err)
			}
			if got := img.Bounds().Size(); got != image.Pt(tt.w, tt.h) {
				t.Errorf("size %v, want %dx%d", got, tt.w, tt.h)
			}
		})
	}
	// Colours survive (the encoder reads the pixels right).
	flat := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := 0; i < len(flat.Pix); i += 4 {
		copy(flat.Pix[i:], []uint8{200, 50, 100, 255})
	}
	data, _, err := Process(encode(t, flat, nil), Options{Format: "jpeg", Width: 16})
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := img.At(8, 8).RGBA()
	if got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}; abs(got[0]-200) > 4 || abs(got[1]-50) > 4 || abs(got[2]-100) > 4 {
		t.Errorf("JPEG pixel = %v, want about [200 50 100]", got)
	}

	// Quality reaches the encoder: same image, lower quality, fewer bytes.
	lo, _, err := Process(src, Options{Format: "jpeg", Quality: 10})
	if err != nil {
		t.Fatal(err)
	}
	hi, _, err := Process(src, Options{Format: "jpeg", Quality: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(lo) >= len(hi) {
		t.Errorf("quality 10 gave %d bytes, quality 100 %d", len(lo), len(hi))
	}
}

func TestProcessKeepsParameters(t *testing.T) {
	params := "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 64x32 — ünïcödé ✓"
	src := encode(t, gradient(64, 32), map[string]string{"parameters": params, "Software": "pigment"})
	for _, o := range []Options{
		{Width: 16, Height: 16, Fit: "fill"},
		{Width: 32},
		{Format: "png", Height: 8},
	} {
		data, ct, err := Process(src, o)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "image/png" {
			t.Fatalf("%+v: content type %q", o, ct)
		}
		text, err := imageio.ReadPNGText(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if text["parameters"] != params || text["Software"] != "pigment" {
			t.Errorf("%+v: text chunks %q, want the original's", o, text)
		}
	}
}

func TestProcessErrors(t *testing.T) {
	src := pngBytes(t, 64, 32, "p")
	truncated := src[:len(src)/2]
	flipped := bytes.Clone(src)
	flipped[len(flipped)/2] ^= 0xFF
	narrow := pngBytes(t, 4, 2000, "narrow")
	tests := []struct {
		name  string
		src   []byte
		o     Options
		err   error  // errors.Is, if set
		field string // *OptionError field, if set
	}{
		{"empty", nil, Options{Width: 8}, imageio.ErrCorrupt, ""},
		{"truncated", truncated, Options{Width: 8}, imageio.ErrCorrupt, ""},
		{"flipped_byte", flipped, Options{Width: 8}, imageio.ErrCorrupt, ""},
		{"not_an_image", []byte("hello, world, this is not an image"), Options{Format: "jpeg"}, imageio.ErrUnsupportedFormat, ""},
		{"invalid_options", src, Options{Format: "webp"}, nil, "format"},
		{"negative_width", src, Options{Width: -3}, nil, "w"},
		{"w_only_too_tall", narrow, Options{Width: 16}, nil, "w"}, // 16x8000
		{"h_only_too_wide", pngBytes(t, 2000, 4, "wide"), Options{Height: 16}, nil, "h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, _, err := Process(tt.src, tt.o)
			if err == nil {
				t.Fatalf("Process succeeded with %d bytes", len(data))
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			var oe *OptionError
			if tt.field != "" && (!errors.As(err, &oe) || oe.Field != tt.field) {
				t.Errorf("err = %v, want an *OptionError for %q", err, tt.field)
			}
		})
	}
}

func TestThumbnail(t *testing.T) {
	src := pngBytes(t, 64, 32, "p")
	for _, size := range []int{1, 16, 48, 100} {
		data, err := Thumbnail(src, size)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Bounds().Size(); got != image.Pt(size, size) {
			t.Errorf("Thumbnail(%d): size %v", size, got)
		}
	}
	for _, size := range []int{0, -1, MaxSide + 1} {
		var oe *OptionError
		if _, err := Thumbnail(src, size); !errors.As(err, &oe) || oe.Field != "size" {
			t.Errorf("Thumbnail(%d): err = %v, want an *OptionError for size", size, err)
		}
	}
	if _, err := Thumbnail([]byte("junk"), 8); !errors.Is(err, imageio.ErrUnsupportedFormat) {
		t.Errorf("Thumbnail(junk): err = %v", err)
	}
}

func TestGrid(t *testing.T) {
	img := func(w, h int) image.Image { return gradient(w, h) }
	tests := []struct {
		name   string
		images []image.Image
		cols   int
		w, h   int
	}{
		{"none", nil, 3, 0, 0},
		{"one", []image.Image{img(8, 6)}, 0, 8, 6},
		{"four_auto", []image.Image{img(8, 6), img(8, 6), img(8, 6), img(8, 6)}, 0, 16, 12},
		{"five_auto", []image.Image{img(8, 6), img(8, 6), img(8, 6), img(8, 6), img(8, 6)}, 0, 24, 12},
		{"row", []image.Image{img(8, 6), img(8, 6), img(8, 6)}, 3, 24, 6},
		{"column", []image.Image{img(8, 6), img(8, 6), img(8, 6)}, 1, 8, 18},
		{"cols_beyond_n", []image.Image{img(8, 6), img(8, 6)}, 5, 16, 6},
		{"mixed_sizes", []image.Image{img(8, 6), img(4, 10), img(2, 2)}, 2, 16, 20},
		{"nil_cell", []image.Image{img(8, 6), nil, img(8, 6)}, 3, 24, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Grid(tt.images, tt.cols)
			if got := g.Bounds().Size(); got != image.Pt(tt.w, tt.h) {
				t.Errorf("size %v, want %dx%d", got, tt.w, tt.h)
			}
		})
	}

	// Placement: 3 images in 2 columns, cells 8×6; the 4×2 image is
	// centred in cell 1, the empty cell 3 and the margins are black.
	red := image.NewUniform(color.NRGBA{255, 0, 0, 255})
	a := image.NewNRGBA(image.Rect(0, 0, 8, 6))
	b := image.NewNRGBA(image.Rect(10, 10, 14, 12)) // a non-zero origin
	c := image.NewNRGBA(image.Rect(0, 0, 8, 6))
	for _, m := range []*image.NRGBA{a, b, c} {
		for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
			for x := m.Rect.Min.X; x < m.Rect.Max.X; x++ {
				m.Set(x, y, red.C)
			}
		}
	}
	g := Grid([]image.Image{a, b, c}, 2)
	black := color.NRGBA{0, 0, 0, 255}
	for _, p := range []struct {
		x, y int
		want color.NRGBA
	}{
		{0, 0, color.NRGBA{255, 0, 0, 255}},  // a
		{7, 5, color.NRGBA{255, 0, 0, 255}},  // a
		{8, 0, black},                        // cell 1 margin
		{10, 2, color.NRGBA{255, 0, 0, 255}}, // b: cell 1 at (8,0), offset (2,2)
		{13, 3, color.NRGBA{255, 0, 0, 255}}, // b
		{14, 3, black},                       // right of b
		{10, 4, black},                       // below b
		{0, 6, color.NRGBA{255, 0, 0, 255}},  // c, row 1
		{12, 9, black},                       // empty cell 3
	} {
		if got := g.NRGBAAt(p.x, p.y); got != p.want {
			t.Errorf("pixel (%d,%d) = %v, want %v", p.x, p.y, got, p.want)
		}
	}

	// A transparent image is drawn over the black background.
	clear := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	if got := Grid([]image.Image{clear}, 1).NRGBAAt(1, 1); got != black {
		t.Errorf("transparent pixel = %v, want black", got)
	}
}

// TestProcessGolden compares one resize of each fit mode with the images
// in testdata/golden (go test -run Golden -update rewrites them). Pixels
// may differ by 1 (floating-point contraction differs between CPUs).
func TestProcessGolden(t *testing.T) {
	src := pngBytes(t, 64, 32, "golden")
	for _, tt := range []struct {
		file string
		o    Options
	}{
		{"fit_24x24.png", Options{Width: 24, Height: 24}},
		{"fill_24x24.png", Options{Width: 24, Height: 24, Fit: "fill"}},
		{"stretch_24x24.png", Options{Width: 24, Height: 24, Fit: "stretch"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data, _, err := Process(src, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tt.file)
			if *update {
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			want, err := png.Decode(bytes.NewReader(golden))
			if err != nil {
				t.Fatal(err)
			}
			got, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if got.Bounds() != want.Bounds() {
				t.Fatalf("bounds %v, golden %v", got.Bounds(), want.Bounds())
			}
			b := got.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					g := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA)
					w := color.NRGBAModel.Convert(want.At(x, y)).(color.NRGBA)
					if diff(g.R, w.R) > 1 || diff(g.G, w.G) > 1 || diff(g.B, w.B) > 1 || diff(g.A, w.A) > 1 {
						t.Fatalf("pixel (%d,%d) = %v, golden %v", x, y, g, w)
					}
				}
			}
		})
	}
}

func abs(x int) int { return max(x, -x) }

func diff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

var sink []byte

func BenchmarkProcess_512to256JPEG(b *testing.B) {
	benchProcess(b, 512, Options{Format: "jpeg", Width: 256, Height: 256})
}
func BenchmarkProcess_512to256PNG(b *testing.B) {
	benchProcess(b, 512, Options{Width: 256, Height: 256})
}

func benchProcess(b *testing.B, size int, o Options) {
	src := pngBytes(b, size, size, "bench")
	b.SetBytes(int64(size * size * 4)) // decoded RGBA bytes

	b.ReportAllocs()
	for b.Loop() {
		data, _, err := Process(src, o)
		if err != nil {
			b.Fatal(err)
		}
		sink = data
	}
}

package shapes

import (
	"image"
	"image/color"
	"math"
)

// supersample is the number of sub-samples per pixel side used for
// anti-aliasing (4x4 = 16 samples per pixel).
const supersample = 4

// starVertices is the 5-pointed star polygon in normalised object
// coordinates, pointing up: outer radius 1, inner radius 0.4.
var starVertices = func() [][2]float64 {
	v := make([][2]float64, 10)
	for k := range v {
		a := math.Pi/2 + float64(k)*math.Pi/5
		r := 1.0
		if k%2 == 1 {
			r = 0.4
		}
		v[k] = [2]float64{r * math.Cos(a), r * math.Sin(a)}
	}
	return v
}()

// inPolygon is the even-odd point-in-polygon test.
func inPolygon(x, y float64, poly [][2]float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		xi, yi, xj, yj := poly[i][0], poly[i][1], poly[j][0], poly[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

// Heart curve (x²+y²-1)³ - x²y³ ≤ 0 spans x in [-1.1385, 1.1385] and y in
// [-1, 1.236]; these map it onto the unit box.
const (
	heartScale   = 1.1385
	heartYOffset = 0.118
)

// inside reports whether the point (u, v) lies in shape, in normalised
// object coordinates: the object's box is [-1, 1]², u to the right, v up,
// 1 being half the object's diameter.
func inside(shape string, u, v float64) bool {
	switch shape {
	case "circle":
		return u*u+v*v <= 1
	case "square": // side 0.8 of the diameter, so it looks as big as the circle
		return math.Abs(u) <= 0.8 && math.Abs(v) <= 0.8
	case "triangle": // equilateral, pointing up, base filling the box width
		const h = 0.8660254037844386 // half the height, sqrt(3)/2
		return v >= -h && v <= h && math.Abs(u) <= (h-v)/math.Sqrt(3)
	case "star":
		return inPolygon(u, v, starVertices)
	case "heart":
		x, y := u*heartScale, v*heartScale+heartYOffset
		a := x*x + y*y - 1
		return a*a*a-x*x*y*y*y <= 0
	case "ring": // annulus, inner radius 0.55 of the outer
		r2 := u*u + v*v
		return r2 <= 1 && r2 >= 0.55*0.55
	case "cross": // plus sign, arm thickness 0.34 of the diameter
		au, av := math.Abs(u), math.Abs(v)
		return au <= 1 && av <= 1 && (au <= 0.34 || av <= 0.34)
	case "diamond":
		return math.Abs(u)+math.Abs(v) <= 1
	}
	return false
}

// Render draws the complete scene s into a new size x size pixel image: the
// background colour, then each object in order, with 4x4 supersampled
// anti-aliasing (the fraction of covered sub-samples alpha-blends the object
// colour over what is below, in sRGB). Each object is drawn in a box of its
// diameter (see Diameter) centred on its anchor (see Anchor), so it stays
// inside the image. Unknown names draw nothing (an unknown background is
// black). Pixels are a deterministic function of s and size (see the
// package documentation on floating point).
func Render(s Scene, size int) *image.RGBA {
	return renderOffset(s, size, 0, 0)
}

// renderOffset is Render with every object moved by (dx, dy) pixels.
func renderOffset(s Scene, size int, dx, dy float64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	bg := Palette[s.Background]
	bg.A = 255
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = bg.R, bg.G, bg.B, 255
	}
	for _, o := range s.Objects {
		drawObject(img, o, float64(size), dx, dy)
	}
	return img
}

func drawObject(img *image.RGBA, o Object, size, dx, dy float64) {
	ax, ay, ok1 := Anchor(o.Position)
	d, ok2 := Diameter(o.Size)
	col, ok3 := Palette[o.Colour]
	if !ok1 || !ok2 || !ok3 {
		return
	}
	cx, cy, r := ax*size+dx, ay*size+dy, d*size/2
	b := img.Bounds()
	x0, x1 := max(b.Min.X, int(math.Floor(cx-r))), min(b.Max.X, int(math.Ceil(cx+r)))
	y0, y1 := max(b.Min.Y, int(math.Floor(cy-r))), min(b.Max.Y, int(math.Ceil(cy+r)))
	const n = supersample
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			hits := 0
			for j := range n {
				v := (cy - (float64(y) + (float64(j)+0.5)/n)) / r
				for i := range n {
					u := (float64(x) + (float64(i)+0.5)/n - cx) / r
					if inside(o.Shape, u, v) {
						hits++
					}
				}
			}
			if hits == 0 {
				continue
			}
			a := float64(hits) / (n * n)
			p := img.PixOffset(x, y)
			img.Pix[p] = blend(img.Pix[p], col.R, a)
			img.Pix[p+1] = blend(img.Pix[p+1], col.G, a)
			img.Pix[p+2] = blend(img.Pix[p+2], col.B, a)
		}
	}
}

func blend(dst, src uint8, a float64) uint8 {
	return uint8(math.Round(float64(dst) + (float64(src)-float64(dst))*a))
}

// ToCHW converts img to a [3, H, W] float32 slice (channel-major: all red
// values row by row, then green, then blue) with values v/127.5 - 1 in
// [-1, 1], the layout and range a diffusion VAE expects. Alpha is ignored.
func ToCHW(img *image.RGBA) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]float32, 3*w*h)
	for y := range h {
		for x := range w {
			p := img.PixOffset(b.Min.X+x, b.Min.Y+y)
			for c := range 3 {
				out[c*w*h+y*w+x] = float32(img.Pix[p+c])/127.5 - 1
			}
		}
	}
	return out
}

// nearestColour returns the palette colour nearest to (r, g, b) in RGB
// Euclidean distance, ties broken by Colours order.
func nearestColour(r, g, b float64) string {
	best, bestD := "", math.Inf(1)
	for _, name := range Colours {
		c := Palette[name]
		d := sq(r-float64(c.R)) + sq(g-float64(c.G)) + sq(b-float64(c.B))
		if d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

func sq(x float64) float64 { return x * x }

// rgbOf reads a pixel as 8-bit sRGB, whatever the image type.
func rgbOf(img image.Image, x, y int) (r, g, b float64) {
	c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
	return float64(c.R), float64(c.G), float64(c.B)
}

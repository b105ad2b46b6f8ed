package shapes

import (
	"cmp"
	"image"
	"math"
	"slices"
	"sync"
)

// Analysis is what Analyse recognises in a single-object image.
type Analysis struct {
	// Background is the palette colour nearest to the median border pixel.
	Background string
	// Colour is the palette colour nearest to the median interior pixel of
	// the object; empty when Found is false.
	Colour string
	// Position is the entry of Positions whose anchor is nearest to the
	// object's centroid; empty when Found is false.
	Position string
	// Shape is the entry of Shapes whose reference geometry is nearest to
	// the object's; empty when Found is false.
	Shape string
	// Size is the entry of Sizes whose reference area (for the recognised
	// shape) is nearest to the object's, on a log scale; empty when Found is
	// false.
	Size string
	// Found reports whether an object was found: a connected region of at
	// least 8 pixels per 64x64 (0.2% of the image) that differs clearly from
	// the background.
	Found bool
	// Centroid is the object's centroid in normalised image coordinates
	// (x, y in 0..1, y down; pixel (i, j) has its centre at
	// ((i+0.5)/W, (j+0.5)/H)).
	Centroid [2]float64
	// Area is the object's area (the region with any holes filled, so a
	// ring counts its hole) as a fraction of the image area.
	Area float64
}

// Mask thresholds, in 8-bit RGB Euclidean distance from the measured
// background. The threshold adapts to border noise between these bounds;
// palette colours are at least ~100 apart, so objects stay above it.
const (
	minThreshold = 48
	maxThreshold = 80
)

// rgbImage is an image as float RGB planes, row-major.
type rgbImage struct {
	w, h    int
	r, g, b []float64
}

func toRGB(img image.Image) rgbImage {
	bd := img.Bounds()
	w, h := bd.Dx(), bd.Dy()
	m := rgbImage{w: w, h: h, r: make([]float64, w*h), g: make([]float64, w*h), b: make([]float64, w*h)}
	rgba, fast := img.(*image.RGBA)
	for y := range h {
		for x := range w {
			i := y*w + x
			if fast {
				p := rgba.PixOffset(bd.Min.X+x, bd.Min.Y+y)
				m.r[i], m.g[i], m.b[i] = float64(rgba.Pix[p]), float64(rgba.Pix[p+1]), float64(rgba.Pix[p+2])
			} else {
				m.r[i], m.g[i], m.b[i] = rgbOf(img, bd.Min.X+x, bd.Min.Y+y)
			}
		}
	}
	return m
}

// median returns the lower median of vals (0..255 values), by sorting a copy.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// percentile returns the p-quantile (0..1) of vals, lower value.
func percentile(vals []float64, p float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// region is a connected object region in bounding-box local coordinates.
type region struct {
	x0, y0, w, h int    // bounding box in image pixels
	pix          []bool // w*h, the component itself
	filled       []bool // w*h, the component with its holes filled
	area         int    // pixels in pix
	filledArea   int    // pixels in filled
}

// Analyse recognises the background, the object's colour, position, shape
// and size in a single-object image of any size (everything is measured in
// normalised coordinates, no resizing). It is deterministic and tolerates
// mild noise, blur and shifts of a few pixels:
//
//   - Background: the palette colour nearest to the per-channel median of
//     the border pixels.
//   - Object: pixels farther than a threshold from that measured median
//     (48..80 in RGB distance, adapting to border noise); the largest
//     4-connected component is kept, and Found is false when it is smaller
//     than 8 pixels per 64x64.
//   - Colour: the palette colour nearest to the per-channel median of the
//     component eroded by one pixel (the whole component if erosion empties
//     it), keeping only the half of those pixels farthest from the
//     background, which skips anti-aliased and blurred edges.
//   - Position: the anchor nearest to the centroid.
//   - Shape: the nearest prototype (a mean feature vector per shape, size
//     and sharpness, computed once from 64x64 Render outputs, sharp and
//     slightly blurred, over all positions, four colour pairs and three
//     sub-pixel offsets) in a standardised space of
//     scale-invariant features: extent (area over bounding-box area), hole
//     fraction, solidity (area over convex-hull area), aspect ratio,
//     vertical mass balance and 3x3-grid occupancy of the bounding box.
//   - Size: the size whose reference area for that shape is nearest.
func Analyse(img image.Image) Analysis {
	a, _ := analyse(img, true)
	return a
}

// analyse is Analyse; it also returns the shape features, and leaves Shape
// and Size empty unless classifyShape (prototypes are built with it false).
func analyse(img image.Image, classifyShape bool) (a Analysis, f [numFeatures]float64) {
	m := toRGB(img)
	if m.w == 0 || m.h == 0 {
		return a, f
	}
	// Background: median of the border pixels.
	var br, bg, bb []float64
	for y := range m.h {
		for x := range m.w {
			if x == 0 || y == 0 || x == m.w-1 || y == m.h-1 {
				i := y*m.w + x
				br, bg, bb = append(br, m.r[i]), append(bg, m.g[i]), append(bb, m.b[i])
			}
		}
	}
	mr, mg, mb := median(br), median(bg), median(bb)
	a.Background = nearestColour(mr, mg, mb)

	dist := make([]float64, m.w*m.h)
	for i := range dist {
		dist[i] = math.Sqrt(sq(m.r[i]-mr) + sq(m.g[i]-mg) + sq(m.b[i]-mb))
	}
	borderDist := make([]float64, len(br))
	for i := range br {
		borderDist[i] = math.Sqrt(sq(br[i]-mr) + sq(bg[i]-mg) + sq(bb[i]-mb))
	}
	thr := min(max(2.5*percentile(borderDist, 0.8), minThreshold), maxThreshold)
	mask := make([]bool, len(dist))
	for i, d := range dist {
		mask[i] = d > thr
	}
	reg, ok := largestComponent(mask, m.w, m.h)
	minArea := max(1, int(math.Round(8*float64(m.w*m.h)/(64*64))))
	if !ok || reg.area < minArea {
		return a, f
	}
	a.Found = true

	// Colour from the eroded interior, and of that the half farthest from
	// the background, which skips anti-aliased and blurred edges.
	var idx []int
	for pass := range 2 {
		for ly := range reg.h {
			for lx := range reg.w {
				if reg.pix[ly*reg.w+lx] && (pass == 1 || reg.interior(lx, ly)) {
					idx = append(idx, (reg.y0+ly)*m.w+reg.x0+lx)
				}
			}
		}
		if len(idx) > 0 {
			break
		}
	}
	var ds []float64
	for _, i := range idx {
		ds = append(ds, dist[i])
	}
	dmed := median(ds)
	var cr, cg, cb []float64
	for _, i := range idx {
		if dist[i] >= dmed {
			cr, cg, cb = append(cr, m.r[i]), append(cg, m.g[i]), append(cb, m.b[i])
		}
	}
	a.Colour = nearestColour(median(cr), median(cg), median(cb))

	// Centroid and position.
	var sx, sy float64
	for ly := range reg.h {
		for lx := range reg.w {
			if reg.filled[ly*reg.w+lx] {
				sx += float64(reg.x0+lx) + 0.5
				sy += float64(reg.y0+ly) + 0.5
			}
		}
	}
	n := float64(reg.filledArea)
	a.Centroid = [2]float64{sx / n / float64(m.w), sy / n / float64(m.h)}
	a.Area = n / float64(m.w*m.h)
	best := math.Inf(1)
	for i, p := range Positions {
		d := sq(a.Centroid[0]-anchors[i][0]) + sq(a.Centroid[1]-anchors[i][1])
		if d < best {
			best, a.Position = d, p
		}
	}

	f = reg.features()
	if classifyShape {
		a.Shape, a.Size = classify(f, a.Area)
	}
	return a, f
}

// largestComponent returns the largest 4-connected component of mask (ties:
// the first in raster order), with its holes filled in reg.filled.
func largestComponent(mask []bool, w, h int) (region, bool) {
	label := make([]int32, len(mask))
	var queue []int
	bestLabel, bestSize := int32(0), 0
	next := int32(0)
	for start, on := range mask {
		if !on || label[start] != 0 {
			continue
		}
		next++
		label[start] = next
		queue = append(queue[:0], start)
		for k := 0; k < len(queue); k++ {
			i := queue[k]
			x, y := i%w, i/w
			for _, nb := range [4][2]int{{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}} {
				if nb[0] < 0 || nb[1] < 0 || nb[0] >= w || nb[1] >= h {
					continue
				}
				j := nb[1]*w + nb[0]
				if mask[j] && label[j] == 0 {
					label[j] = next
					queue = append(queue, j)
				}
			}
		}
		if len(queue) > bestSize {
			bestLabel, bestSize = next, len(queue)
		}
	}
	if bestSize == 0 {
		return region{}, false
	}
	x0, y0, x1, y1 := w, h, -1, -1
	for i, l := range label {
		if l == bestLabel {
			x, y := i%w, i/w
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
		}
	}
	r := region{x0: x0, y0: y0, w: x1 - x0 + 1, h: y1 - y0 + 1, area: bestSize}
	r.pix = make([]bool, r.w*r.h)
	for ly := range r.h {
		for lx := range r.w {
			r.pix[ly*r.w+lx] = label[(y0+ly)*w+x0+lx] == bestLabel
		}
	}
	r.fillHoles()
	return r, true
}

// fillHoles sets r.filled to r.pix plus every pixel not 4-connected to the
// outside of the bounding box through non-component pixels.
func (r *region) fillHoles() {
	// Flood the outside in a grid padded by one pixel.
	pw, ph := r.w+2, r.h+2
	outside := make([]bool, pw*ph)
	at := func(px, py int) bool { // component pixel in padded coordinates
		if px < 1 || py < 1 || px > r.w || py > r.h {
			return false
		}
		return r.pix[(py-1)*r.w+px-1]
	}
	queue := []int{0}
	outside[0] = true
	for k := 0; k < len(queue); k++ {
		x, y := queue[k]%pw, queue[k]/pw
		for _, nb := range [4][2]int{{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}} {
			if nb[0] < 0 || nb[1] < 0 || nb[0] >= pw || nb[1] >= ph {
				continue
			}
			j := nb[1]*pw + nb[0]
			if !outside[j] && !at(nb[0], nb[1]) {
				outside[j] = true
				queue = append(queue, j)
			}
		}
	}
	r.filled = make([]bool, r.w*r.h)
	r.filledArea = 0
	for ly := range r.h {
		for lx := range r.w {
			f := !outside[(ly+1)*pw+lx+1]
			r.filled[ly*r.w+lx] = f
			if f {
				r.filledArea++
			}
		}
	}
}

// interior reports whether local pixel (x, y) and its four neighbours are
// all in the component.
func (r *region) interior(x, y int) bool {
	if x <= 0 || y <= 0 || x >= r.w-1 || y >= r.h-1 {
		return false
	}
	i := y*r.w + x
	return r.pix[i] && r.pix[i-1] && r.pix[i+1] && r.pix[i-r.w] && r.pix[i+r.w]
}

// numFeatures is the length of a shape feature vector.
const numFeatures = 5 + 9

// features returns the scale-invariant shape features of the region:
// extent, hole fraction, solidity, log aspect ratio, vertical mass balance
// and the 3x3 grid occupancy (row-major, top row first) of the filled mask.
func (r *region) features() [numFeatures]float64 {
	var f [numFeatures]float64
	fa := float64(r.filledArea)
	f[0] = fa / float64(r.w*r.h)
	f[1] = 1 - float64(r.area)/fa
	f[2] = fa / r.hullArea()
	f[3] = math.Log(float64(r.w) / float64(r.h))
	var sy float64
	var cells, cellOn [9]float64
	for ly := range r.h {
		gy := min(2, int(3*(float64(ly)+0.5)/float64(r.h)))
		for lx := range r.w {
			gx := min(2, int(3*(float64(lx)+0.5)/float64(r.w)))
			cells[gy*3+gx]++
			if r.filled[ly*r.w+lx] {
				sy += float64(ly) + 0.5
				cellOn[gy*3+gx]++
			}
		}
	}
	f[4] = (sy/fa - float64(r.h)/2) / float64(r.h)
	for k := range 9 {
		if cells[k] > 0 {
			f[5+k] = cellOn[k] / cells[k]
		}
	}
	return f
}

// hullArea returns the area of the convex hull of the filled mask's pixel
// squares, in pixels.
func (r *region) hullArea() float64 {
	var pts [][2]float64
	for ly := range r.h {
		lo, hi := -1, -1
		for lx := range r.w {
			if r.filled[ly*r.w+lx] {
				if lo < 0 {
					lo = lx
				}
				hi = lx
			}
		}
		if lo < 0 {
			continue
		}
		y := float64(ly)
		pts = append(pts, [2]float64{float64(lo), y}, [2]float64{float64(lo), y + 1},
			[2]float64{float64(hi + 1), y}, [2]float64{float64(hi + 1), y + 1})
	}
	hull := convexHull(pts)
	var s float64
	for i := range hull {
		j := (i + 1) % len(hull)
		s += hull[i][0]*hull[j][1] - hull[j][0]*hull[i][1]
	}
	return math.Max(math.Abs(s)/2, 1)
}

// convexHull is Andrew's monotone chain; it returns the hull in order.
func convexHull(pts [][2]float64) [][2]float64 {
	slices.SortFunc(pts, func(a, b [2]float64) int {
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return cmp.Compare(a[1], b[1])
	})
	pts = slices.Compact(pts)
	if len(pts) < 3 {
		return pts
	}
	cross := func(o, a, b [2]float64) float64 {
		return (a[0]-o[0])*(b[1]-o[1]) - (a[1]-o[1])*(b[0]-o[0])
	}
	hull := make([][2]float64, 0, 2*len(pts))
	for _, p := range pts {
		for len(hull) >= 2 && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(pts) - 2; i >= 0; i-- {
		p := pts[i]
		for len(hull) >= lower && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}

// prototypes holds the reference model of the shape classifier.
type prototypes struct {
	scale [numFeatures]float64   // per-feature standard deviation
	mean  [][numFeatures]float64 // per (shape, size, variant), see protoIndex
	area  [][]float64            // mean log area per [shape][size]
	refs  [][numFeatures]float64 // every reference feature vector
}

var (
	protoOnce sync.Once
	proto     *prototypes
)

// referencePairs are the (object, background) colours of reference renders:
// high and low contrast.
var referencePairs = [][2]string{{"white", "black"}, {"orange", "yellow"}, {"red", "blue"}, {"green", "gray"}}

// referenceOffsets are sub-pixel shifts (pixels at 64x64) of reference
// renders, so prototypes average over grid alignment.
var referenceOffsets = [][2]float64{{0, 0}, {0.5, 0.25}, {-0.25, 0.5}}

// referenceSize is the side in pixels of reference renders.
const referenceSize = 64

// referenceVariants: every reference is measured sharp (0) and softened by
// a 3x3 binomial blur (1), so that slightly soft generated images match a
// prototype too.
const referenceVariants = 2

// protoIndex is the index in prototypes.mean of (shape, size, variant).
func protoIndex(shape, size, variant int) int {
	return (shape*len(Sizes)+size)*referenceVariants + variant
}

// blurBinomial returns img filtered with the 3x3 kernel [1 2 1]ᵀ[1 2 1]/16,
// edges clamped.
func blurBinomial(img *image.RGBA) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(b)
	w, h := b.Dx(), b.Dy()
	k := [3]int{1, 2, 1}
	for y := range h {
		for x := range w {
			for c := range 4 {
				s := 0
				for j := -1; j <= 1; j++ {
					for i := -1; i <= 1; i++ {
						xx, yy := min(w-1, max(0, x+i)), min(h-1, max(0, y+j))
						s += k[i+1] * k[j+1] * int(img.Pix[img.PixOffset(b.Min.X+xx, b.Min.Y+yy)+c])
					}
				}
				out.Pix[out.PixOffset(b.Min.X+x, b.Min.Y+y)+c] = uint8((s + 8) / 16)
			}
		}
	}
	return out
}

func getPrototypes() *prototypes {
	protoOnce.Do(func() {
		p := &prototypes{
			mean: make([][numFeatures]float64, len(Shapes)*len(Sizes)*referenceVariants),
			area: make([][]float64, len(Shapes)),
		}
		counts := make([]float64, len(p.mean))
		for si, sh := range Shapes {
			p.area[si] = make([]float64, len(Sizes))
			for zi, sz := range Sizes {
				var logArea, nArea float64
				for _, pos := range Positions {
					for _, pair := range referencePairs {
						for vi := range referenceVariants * len(referenceOffsets) {
							off, variant := referenceOffsets[vi/referenceVariants], vi%referenceVariants
							s := Scene{Background: pair[1], Objects: []Object{{Shape: sh, Colour: pair[0], Size: sz, Position: pos}}}
							img := renderOffset(s, referenceSize, off[0], off[1])
							if variant == 1 {
								img = blurBinomial(img)
							}
							f, area, ok := measure(img)
							if !ok {
								continue
							}
							k := protoIndex(si, zi, variant)
							for j := range f {
								p.mean[k][j] += f[j]
							}
							counts[k]++
							p.refs = append(p.refs, f)
							logArea += math.Log(area)
							nArea++
						}
					}
				}
				p.area[si][zi] = logArea / nArea
			}
		}
		for k := range p.mean {
			for j := range p.mean[k] {
				p.mean[k][j] /= counts[k]
			}
		}
		// Standardise by each feature's standard deviation over all
		// references, so that no feature dominates by its range alone.
		var all [numFeatures]float64
		for _, f := range p.refs {
			for j := range f {
				all[j] += f[j]
			}
		}
		n := float64(len(p.refs))
		for j := range all {
			all[j] /= n
		}
		for _, f := range p.refs {
			for j := range f {
				p.scale[j] += sq(f[j] - all[j])
			}
		}
		for j := range p.scale {
			p.scale[j] = math.Sqrt(p.scale[j]/n) + 1e-6
		}
		proto = p
	})
	return proto
}

// measure returns the shape features and area fraction of the largest
// object region of img, as Analyse computes them.
func measure(img image.Image) (f [numFeatures]float64, area float64, ok bool) {
	a, f := analyse(img, false)
	return f, a.Area, a.Found
}

// classify returns the shape and size whose prototypes are nearest to the
// features f and the (filled) area fraction.
func classify(f [numFeatures]float64, area float64) (shape, size string) {
	p := getPrototypes()
	best, bestD := 0, math.Inf(1)
	for k, m := range p.mean {
		var d float64
		for j := range f {
			d += sq((f[j] - m[j]) / p.scale[j])
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	si := best / (len(Sizes) * referenceVariants)
	zi, bestA := 0, math.Inf(1)
	for z, la := range p.area[si] {
		if d := math.Abs(math.Log(area) - la); d < bestA {
			zi, bestA = z, d
		}
	}
	return Shapes[si], Sizes[zi]
}

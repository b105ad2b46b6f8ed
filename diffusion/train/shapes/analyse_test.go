package shapes

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// analyserCase is one rendered single-object scene.
type analyserCase struct {
	scene Scene
	dx    float64 // object shift in pixels (shift variant)
	dy    float64
}

// analyserCases returns every shape × size × position with pairsPer colour
// pairs each, the pairs cycling deterministically through all colours as
// object and as background.
func analyserCases(pairsPer int) []analyserCase {
	var out []analyserCase
	c := 0
	for _, sh := range Shapes {
		for _, sz := range Sizes {
			for _, pos := range Positions {
				for range pairsPer {
					obj := Colours[c%len(Colours)]
					bg := Colours[(c*5+1+c/len(Colours))%len(Colours)]
					if bg == obj {
						bg = Colours[(c*5+2+c/len(Colours))%len(Colours)]
					}
					out = append(out, analyserCase{scene: Scene{Background: bg, Objects: []Object{{sh, obj, sz, pos}}}})
					c++
				}
			}
		}
	}
	return out
}

// addNoise adds deterministic triangular noise in [-amp, amp] to every
// channel.
func addNoise(img *image.RGBA, seed uint64, amp float64) {
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range img.Pix {
		if i%4 == 3 {
			continue
		}
		n := (r.Float64() + r.Float64() - 1) * amp
		img.Pix[i] = uint8(min(255, max(0, math.Round(float64(img.Pix[i])+n))))
	}
}

// boxBlur returns img blurred with a 3x3 box filter (edges clamped).
func boxBlur(img *image.RGBA) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(b)
	w, h := b.Dx(), b.Dy()
	for y := range h {
		for x := range w {
			for c := range 4 {
				var s float64
				for j := -1; j <= 1; j++ {
					for i := -1; i <= 1; i++ {
						xx, yy := min(w-1, max(0, x+i)), min(h-1, max(0, y+j))
						s += float64(img.Pix[img.PixOffset(xx, yy)+c])
					}
				}
				out.Pix[out.PixOffset(x, y)+c] = uint8(math.Round(s / 9))
			}
		}
	}
	return out
}

// attrTally counts per-attribute hits and confusions.
type attrTally struct {
	name      string
	n, ok     int
	confusion map[string]int // "want→got"
}

func (t *attrTally) add(want, got string) {
	t.n++
	if want == got {
		t.ok++
		return
	}
	if t.confusion == nil {
		t.confusion = map[string]int{}
	}
	t.confusion[want+"→"+got]++
}

func (t *attrTally) acc() float64 { return float64(t.ok) / float64(max(1, t.n)) }

func (t *attrTally) String() string {
	var keys []string
	for k := range t.confusion {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if t.confusion[keys[i]] != t.confusion[keys[j]] {
			return t.confusion[keys[i]] > t.confusion[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %4d/%4d = %6.2f%%", t.name, t.ok, t.n, 100*t.acc())
	for i, k := range keys {
		if i == 8 {
			fmt.Fprintf(&b, " …")
			break
		}
		fmt.Fprintf(&b, " %s:%d", k, t.confusion[k])
	}
	return b.String()
}

// evaluate runs Analyse over the cases, transformed by tf, and returns the
// tallies for background, colour, position, shape, size and found.
func evaluate(cases []analyserCase, size int, tf func(i int, c analyserCase) *image.RGBA) []*attrTally {
	t := []*attrTally{{name: "background"}, {name: "colour"}, {name: "position"}, {name: "shape"}, {name: "size"}, {name: "found"}}
	for i, c := range cases {
		img := tf(i, c)
		a := Analyse(img)
		o := c.scene.Objects[0]
		t[0].add(c.scene.Background, a.Background)
		t[1].add(o.Colour, a.Colour)
		t[2].add(o.Position, a.Position)
		t[3].add(o.Shape, a.Shape)
		t[4].add(o.Size, a.Size)
		t[5].add("true", fmt.Sprint(a.Found))
	}
	return t
}

func checkTallies(tb testing.TB, label string, t []*attrTally, minAcc float64) {
	tb.Helper()
	failed := false
	for _, x := range t {
		if x.acc() < minAcc {
			failed = true
		}
	}
	var b strings.Builder
	for _, x := range t {
		fmt.Fprintf(&b, "\n  %s", x)
	}
	if failed {
		tb.Errorf("%s: an attribute is below %.0f%% accuracy:%s", label, 100*minAcc, b.String())
	} else {
		tb.Logf("%s:%s", label, b.String())
	}
}

func TestAnalyseClean(t *testing.T) {
	cases := analyserCases(6)
	for _, size := range []int{64, 96} {
		tally := evaluate(cases, size, func(_ int, c analyserCase) *image.RGBA { return Render(c.scene, size) })
		checkTallies(t, fmt.Sprintf("clean %dx%d, %d renders", size, size, len(cases)), tally, 0.99)
	}
}

func TestAnalyseNoisyBlur(t *testing.T) {
	cases := analyserCases(6)
	tally := evaluate(cases, 64, func(i int, c analyserCase) *image.RGBA {
		img := Render(c.scene, 64)
		addNoise(img, uint64(i), 20)
		return boxBlur(img)
	})
	checkTallies(t, fmt.Sprintf("noise ±20 + 3x3 blur, %d renders", len(cases)), tally, 0.95)
}

func TestAnalyseNoisyShift(t *testing.T) {
	cases := analyserCases(6)
	tally := evaluate(cases, 64, func(i int, c analyserCase) *image.RGBA {
		r := rand.New(rand.NewPCG(uint64(i), 11))
		dx, dy := float64(2*r.IntN(2)*2-2), float64(2*r.IntN(2)*2-2)
		img := renderOffset(c.scene, 64, dx, dy)
		addNoise(img, uint64(i)+1e6, 20)
		return img
	})
	checkTallies(t, fmt.Sprintf("noise ±20 + shift ±2 px, %d renders", len(cases)), tally, 0.95)
}

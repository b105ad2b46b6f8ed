package shapes

import (
	"image"
	"image/color"
	"math"
	"reflect"
	"slices"
	"testing"
)

func TestHeldOutFraction(t *testing.T) {
	total, held := 0, 0
	perShape := map[string]int{}
	perColour, perBg, perPos := map[string]int{}, map[string]int{}, map[string]int{}
	for _, sh := range Shapes {
		for _, c := range Colours {
			for _, bg := range Colours {
				if bg == c {
					continue
				}
				for _, p := range Positions {
					total++
					o := Object{Shape: sh, Colour: c, Position: p}
					h := HeldOut(o, bg)
					for _, sz := range Sizes { // size is not part of the combination
						o.Size = sz
						if HeldOut(o, bg) != h {
							t.Fatalf("HeldOut depends on size for %+v on %s", o, bg)
						}
					}
					if h {
						held++
						perShape[sh]++
						perColour[c]++
						perBg[bg]++
						perPos[p]++
					}
				}
			}
		}
	}
	frac := float64(held) / float64(total)
	t.Logf("held out %d of %d combinations = %.2f%%", held, total, 100*frac)
	if frac < 0.03 || frac > 0.08 {
		t.Errorf("held-out fraction %.4f outside [0.03, 0.08]", frac)
	}
	for name, m := range map[string]map[string]int{"shape": perShape, "colour": perColour, "background": perBg, "position": perPos} {
		var list []string
		switch name {
		case "shape":
			list = Shapes
		case "position":
			list = Positions
		default:
			list = Colours
		}
		for _, v := range list {
			if m[v] == 0 {
				t.Errorf("no held-out combination with %s %q", name, v)
			}
		}
	}
}

func TestSamplerNeverHeldOut(t *testing.T) {
	s := NewSampler(42, 64)
	const n = 20000
	two := 0
	sizes := map[string]int{}
	for i := range n {
		sc, c := s.Next()
		if err := sc.Validate(); err != nil || !sc.Complete() {
			t.Fatalf("sample %d: invalid scene %+v: %v", i, sc, err)
		}
		for _, o := range sc.Objects {
			if HeldOut(o, sc.Background) {
				t.Fatalf("sample %d: held-out combination %+v on %s (caption %q)", i, o, sc.Background, c)
			}
			sizes[o.Size]++
		}
		switch len(sc.Objects) {
		case 1:
		case 2:
			two++
			a, b := sc.Objects[0], sc.Objects[1]
			if a.Shape == b.Shape && a.Colour == b.Colour {
				t.Fatalf("sample %d: identical objects %+v", i, sc)
			}
		default:
			t.Fatalf("sample %d: %d objects", i, len(sc.Objects))
		}
	}
	if f := float64(two) / n; f < 0.17 || f > 0.23 {
		t.Errorf("two-object fraction %.3f, want about 0.2", f)
	}
	if sizes["small"] == 0 || sizes["large"] == 0 {
		t.Errorf("sizes %v", sizes)
	}
}

func TestSamplerDeterministic(t *testing.T) {
	a, b, c := NewSampler(7, 64), NewSampler(7, 64), NewSampler(8, 64)
	differ := false
	for i := range 500 {
		sa, ca := a.Next()
		sb, cb := b.Next()
		sc, cc := c.Next()
		if ca != cb || !reflect.DeepEqual(sa, sb) {
			t.Fatalf("sample %d differs for the same seed: %q vs %q", i, ca, cb)
		}
		if ca != cc || !reflect.DeepEqual(sa, sc) {
			differ = true
		}
	}
	if !differ {
		t.Error("seeds 7 and 8 gave the same 500 samples")
	}
	img, sc, _ := NewSampler(9, 48).NextImage()
	if img.Bounds() != image.Rect(0, 0, 48, 48) || !reflect.DeepEqual(img, Render(sc, 48)) {
		t.Error("NextImage does not render its scene at the sampler's size")
	}
}

// TestSamplerObjectsDisjoint renders the objects of two-object scenes one
// at a time and checks that no pixel is covered by both.
func TestSamplerObjectsDisjoint(t *testing.T) {
	s := NewSampler(5, 64)
	checked := 0
	for checked < 300 {
		sc, _ := s.Next()
		if len(sc.Objects) != 2 {
			continue
		}
		checked++
		bg := Render(Scene{Background: sc.Background}, 64)
		a := Render(Scene{Background: sc.Background, Objects: sc.Objects[:1]}, 64)
		b := Render(Scene{Background: sc.Background, Objects: sc.Objects[1:]}, 64)
		for i := 0; i < len(bg.Pix); i += 4 {
			if !slices.Equal(a.Pix[i:i+3], bg.Pix[i:i+3]) && !slices.Equal(b.Pix[i:i+3], bg.Pix[i:i+3]) {
				t.Fatalf("objects of %+v overlap at pixel %d", sc, i/4)
			}
		}
	}
}

func TestEvalSet(t *testing.T) {
	const n = 200
	a, b := EvalSet(n), EvalSet(n)
	if len(a) != n || !reflect.DeepEqual(a, b) {
		t.Fatalf("EvalSet(%d) not deterministic or wrong length %d", n, len(a))
	}
	captions := map[string]bool{}
	count := map[string]int{}
	for i, s := range a {
		if err := s.Validate(); err != nil || !s.Complete() || len(s.Objects) != 1 {
			t.Fatalf("scene %d invalid: %+v: %v", i, s, err)
		}
		o := s.Objects[0]
		if !HeldOut(o, s.Background) {
			t.Fatalf("scene %d %+v is not held out", i, s)
		}
		captions[CanonicalCaption(o, s.Background)] = true
		count["shape:"+o.Shape]++
		count["colour:"+o.Colour]++
		count["bg:"+s.Background]++
		count["pos:"+o.Position]++
		count["size:"+o.Size]++
	}
	if len(captions) != n {
		t.Errorf("%d distinct captions, want %d", len(captions), n)
	}
	for _, sh := range Shapes {
		if count["shape:"+sh] != n/len(Shapes) {
			t.Errorf("shape %s appears %d times, want %d", sh, count["shape:"+sh], n/len(Shapes))
		}
	}
	for _, c := range Colours {
		if count["colour:"+c] < 5 || count["bg:"+c] < 5 {
			t.Errorf("colour %s: %d as object, %d as background", c, count["colour:"+c], count["bg:"+c])
		}
	}
	for _, p := range Positions {
		if count["pos:"+p] < 25 {
			t.Errorf("position %s appears %d times", p, count["pos:"+p])
		}
	}
	if count["size:small"] < n/2-10 || count["size:small"] > n/2+10 {
		t.Errorf("sizes: %d small of %d", count["size:small"], n)
	}
	// Held-out combinations come back at the other size, so captions stay
	// distinct up to twice their number; then the sequence restarts.
	k := len(heldOutCombos())
	big := EvalSet(2 * k)
	seen := map[string]bool{}
	for _, s := range big {
		seen[CanonicalCaption(s.Objects[0], s.Background)] = true
	}
	if len(seen) != 2*k {
		t.Errorf("EvalSet(%d): %d distinct captions", 2*k, len(seen))
	}
	if again := EvalSet(2*k + 3); !reflect.DeepEqual(again[2*k:], big[:3]) {
		t.Errorf("EvalSet beyond %d does not restart: %+v", 2*k, again[2*k:])
	}
	if EvalSet(0) != nil {
		t.Error("EvalSet(0) != nil")
	}
}

// coverage returns the fraction of the object's box covered by its shape,
// measured on a fine grid.
func coverage(shape string) float64 {
	const n = 400
	hits := 0
	for j := range n {
		for i := range n {
			if inside(shape, -1+2*(float64(i)+0.5)/n, -1+2*(float64(j)+0.5)/n) {
				hits++
			}
		}
	}
	return float64(hits) / (n * n)
}

func TestShapeGeometry(t *testing.T) {
	starArea := 10 * 0.5 * 0.4 * math.Sin(math.Pi/5) // ten triangles, sides 1 and 0.4
	want := map[string]float64{
		"circle":   math.Pi / 4,
		"square":   0.64,
		"triangle": math.Sqrt(3) / 4,
		"star":     starArea / 4,
		"ring":     math.Pi / 4 * (1 - 0.55*0.55),
		"cross":    (2*2*0.68 - 0.68*0.68) / 4,
		"diamond":  0.5,
	}
	for _, sh := range Shapes {
		got := coverage(sh)
		if w, ok := want[sh]; ok && math.Abs(got-w) > 0.01 {
			t.Errorf("%s covers %.4f of its box, want %.4f", sh, got, w)
		}
		if got < 0.2 || got > 0.9 {
			t.Errorf("%s covers %.4f of its box", sh, got)
		}
		// The shape reaches its box: the extent in u spans at least 90%.
		lo, hi := 1.0, -1.0
		for i := range 201 {
			u := -1 + float64(i)/100
			for j := range 201 {
				if inside(sh, u, -1+float64(j)/100) {
					lo, hi = min(lo, u), max(hi, u)
				}
			}
		}
		if sh != "square" && (lo > -0.9 || hi < 0.9) {
			t.Errorf("%s spans u in [%.2f, %.2f], want about [-1, 1]", sh, lo, hi)
		}
	}
	if inside("blob", 0, 0) {
		t.Error("unknown shape has an inside")
	}
}

func TestRender(t *testing.T) {
	red, blue := Palette["red"], Palette["blue"]
	s := Scene{Background: "blue", Objects: []Object{{"circle", "red", "large", "center"}}}
	img := Render(s, 64)
	if img.Bounds() != image.Rect(0, 0, 64, 64) {
		t.Fatalf("bounds %v", img.Bounds())
	}
	if got := img.RGBAAt(32, 32); got != red {
		t.Errorf("centre pixel %v, want %v", got, red)
	}
	if got := img.RGBAAt(0, 0); got != blue {
		t.Errorf("corner pixel %v, want %v", got, blue)
	}
	// Anti-aliasing gives edge pixels between the two colours, about one
	// per pixel of perimeter (2π·16 ≈ 100).
	mixed := 0
	for y := range 64 {
		for x := range 64 {
			if c := img.RGBAAt(x, y); c != red && c != blue {
				mixed++
			}
		}
	}
	if mixed < 60 || mixed > 160 {
		t.Errorf("%d anti-aliased pixels around the circle, want about 100", mixed)
	}
	if !reflect.DeepEqual(img, Render(s, 64)) {
		t.Error("Render not deterministic")
	}

	// Every object stays inside the image: its box lies in [0, size].
	for _, size := range []int{32, 64, 100} {
		for _, sz := range Sizes {
			for _, p := range Positions {
				ax, ay, _ := Anchor(p)
				d, _ := Diameter(sz)
				for _, v := range []float64{ax - d/2, ax + d/2, ay - d/2, ay + d/2} {
					if v*float64(size) < 0 || v*float64(size) > float64(size) {
						t.Errorf("%s %s object leaves a %d-pixel image", sz, p, size)
					}
				}
			}
		}
	}
	// Every shape differs from every other in pixels.
	seen := map[string]string{}
	for _, sh := range Shapes {
		img := Render(Scene{Background: "white", Objects: []Object{{sh, "black", "large", "center"}}}, 64)
		k := string(img.Pix)
		if other, dup := seen[k]; dup {
			t.Errorf("%s renders like %s", sh, other)
		}
		seen[k] = sh
	}
}

func TestToCHW(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.SetRGBA(1, 0, color.RGBA{255, 0, 51, 255})
	img.SetRGBA(2, 1, color.RGBA{0, 255, 127, 255})
	got := ToCHW(img)
	if len(got) != 3*3*2 {
		t.Fatalf("len %d", len(got))
	}
	at := func(c, y, x int) float32 { return got[c*6+y*3+x] }
	for _, tc := range []struct {
		c, y, x int
		want    float32
	}{
		{0, 0, 1, 1}, {1, 0, 1, -1}, {2, 0, 1, 51/127.5 - 1},
		{0, 1, 2, -1}, {1, 1, 2, 1}, {2, 1, 2, 127/127.5 - 1},
		{0, 0, 0, -1}, {2, 1, 1, -1},
	} {
		if g := at(tc.c, tc.y, tc.x); math.Abs(float64(g-tc.want)) > 1e-6 {
			t.Errorf("[%d,%d,%d] = %v, want %v", tc.c, tc.y, tc.x, g, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Scene{"blue", []Object{{"star", "red", "small", "top left"}}}
	if err := good.Validate(); err != nil || !good.Complete() {
		t.Errorf("valid scene: %v", err)
	}
	for _, s := range []Scene{
		{"blue", nil},
		{"teal", []Object{{"star", "red", "small", "top left"}}},
		{"blue", []Object{{"blob", "red", "small", "top left"}}},
		{"blue", []Object{{"star", "teal", "small", "top left"}}},
		{"blue", []Object{{"star", "red", "huge", "top left"}}},
		{"blue", []Object{{"star", "red", "small", "middle"}}},
		{"blue", []Object{{"star", "blue", "small", "top left"}}},
		{"blue", []Object{{"star", "red", "small", "top left"}, {"ring", "red", "small", "top left"}}},
	} {
		if s.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", s)
		}
	}
	if (Scene{"", []Object{{"star", "red", "", ""}}}).Complete() {
		t.Error("incomplete scene reported complete")
	}
}

func TestAnalyseEdgeCases(t *testing.T) {
	// A blank image has no object.
	blank := Render(Scene{Background: "green"}, 64)
	if a := Analyse(blank); a.Found || a.Background != "green" {
		t.Errorf("blank: %+v", a)
	}
	// Noise alone is not an object.
	addNoise(blank, 1, 20)
	if a := Analyse(blank); a.Found {
		t.Errorf("noise: %+v", a)
	}
	// A 2x2 speck is ignored, and specks beside an object do not matter.
	img := Render(Scene{Background: "white"}, 64)
	for _, p := range [][2]int{{10, 10}, {11, 10}, {10, 11}, {11, 11}} {
		img.SetRGBA(p[0], p[1], color.RGBA{0, 0, 0, 255})
	}
	if a := Analyse(img); a.Found {
		t.Errorf("speck: %+v", a)
	}
	s := Scene{Background: "white", Objects: []Object{{"heart", "purple", "large", "bottom right"}}}
	img = Render(s, 64)
	for _, p := range [][2]int{{5, 5}, {6, 5}, {60, 3}, {3, 60}} {
		img.SetRGBA(p[0], p[1], color.RGBA{0, 0, 0, 255})
	}
	a := Analyse(img)
	if !a.Found || a.Shape != "heart" || a.Colour != "purple" || a.Position != "bottom right" || a.Size != "large" || a.Background != "white" {
		t.Errorf("heart with specks: %+v", a)
	}
	if math.Abs(a.Centroid[0]-0.75) > 0.05 || math.Abs(a.Centroid[1]-0.75) > 0.05 || a.Area < 0.1 || a.Area > 0.25 {
		t.Errorf("heart centroid %v area %v", a.Centroid, a.Area)
	}
	// Other image types and non-zero origins work.
	src := Render(Scene{Background: "black", Objects: []Object{{"cross", "yellow", "small", "top right"}}}, 64)
	nrgba := image.NewNRGBA(image.Rect(10, 20, 74, 84))
	for y := range 64 {
		for x := range 64 {
			nrgba.Set(x+10, y+20, src.At(x, y))
		}
	}
	if a := Analyse(nrgba); a.Shape != "cross" || a.Colour != "yellow" || a.Position != "top right" || a.Size != "small" || a.Background != "black" {
		t.Errorf("NRGBA cross: %+v", a)
	}
	if a := Analyse(image.NewRGBA(image.Rectangle{})); a.Found {
		t.Errorf("empty image: %+v", a)
	}
}

func TestPaletteSeparation(t *testing.T) {
	if len(Palette) != len(Colours) {
		t.Fatalf("palette has %d colours, want %d", len(Palette), len(Colours))
	}
	for i, a := range Colours {
		for _, b := range Colours[i+1:] {
			ca, cb := Palette[a], Palette[b]
			d := math.Sqrt(sq(float64(ca.R)-float64(cb.R)) + sq(float64(ca.G)-float64(cb.G)) + sq(float64(ca.B)-float64(cb.B)))
			if d < 100 {
				t.Errorf("%s and %s are only %.1f apart", a, b, d)
			}
		}
	}
}

// TestNextDrill checks the geometry drills, white on black and coloured: a
// complete single object, never a held-out combination, every shape, size
// and position (and for coloured drills every palette colour, object and
// background) drawn, captions that parse back to the scene, deterministic
// by seed.
func TestNextDrill(t *testing.T) {
	for _, tc := range []struct {
		name   string
		next   func(*Sampler) (Scene, string)
		colour bool
	}{
		{"white", (*Sampler).NextDrill, false},
		{"colour", (*Sampler).NextColourDrill, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, again := NewSampler(3, 64), NewSampler(3, 64)
			seen := map[string]bool{}
			for i := range 5000 {
				sc, c := tc.next(s)
				sc2, c2 := tc.next(again)
				if c != c2 || !reflect.DeepEqual(sc, sc2) {
					t.Fatalf("drill %d differs for the same seed", i)
				}
				if err := sc.Validate(); err != nil || !sc.Complete() || len(sc.Objects) != 1 {
					t.Fatalf("drill %d: invalid scene %+v: %v", i, sc, err)
				}
				o := sc.Objects[0]
				switch {
				case !tc.colour && (o.Colour != "white" || sc.Background != "black"):
					t.Fatalf("drill %d: %s on %s, want white on black", i, o.Colour, sc.Background)
				case o.Colour == sc.Background:
					t.Fatalf("drill %d: %s on %s", i, o.Colour, sc.Background)
				}
				if HeldOut(o, sc.Background) {
					t.Fatalf("drill %d: held-out combination %+v", i, o)
				}
				p, err := ParseCaption(c)
				if err != nil {
					t.Fatalf("drill %d: caption %q: %v", i, c, err)
				}
				po := p.Objects[0]
				if po.Shape != o.Shape || po.Colour != o.Colour || po.Size != "" && po.Size != o.Size || po.Position != "" && po.Position != o.Position {
					t.Fatalf("drill %d: caption %q does not describe %+v", i, c, o)
				}
				seen[o.Shape] = true
				seen[o.Size] = true
				seen[o.Position] = true
				seen["object "+o.Colour] = true
				seen["background "+sc.Background] = true
			}
			want := slices.Concat(Shapes, Sizes, Positions)
			if tc.colour {
				for _, c := range Colours {
					want = append(want, "object "+c, "background "+c)
				}
			}
			for _, w := range want {
				if !seen[w] {
					t.Errorf("no drill with %q in 5000", w)
				}
			}
		})
	}
}

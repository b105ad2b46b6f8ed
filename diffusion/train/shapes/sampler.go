package shapes

import (
	"image"
	"math/rand/v2"
)

// twoObjectFraction is the probability that a sampled scene has two objects.
const twoObjectFraction = 0.2

// Sampler draws random training scenes and captions. It is deterministic:
// two samplers made with the same seed yield the same sequence. It is not
// safe for concurrent use.
type Sampler struct {
	rng  *rand.Rand
	size int
}

// NewSampler returns a sampler seeded with seed whose images (NextImage) are
// size x size pixels.
func NewSampler(seed uint64, size int) *Sampler {
	return &Sampler{rng: rand.New(rand.NewPCG(seed, 0x5ce4e5b9a7f3c1d1)), size: size}
}

// ImageSize returns the side in pixels of the images NextImage renders.
func (s *Sampler) ImageSize() int { return s.size }

// Next returns a training scene and a caption for it (see Caption). About
// 80% of scenes have one object and 20% two; all attributes are uniform at
// random, except that in two-object scenes with an object at the center
// both objects are small so that they do not overlap (two large objects in
// adjacent corners touch at most). No object of a returned scene forms a
// held-out combination with the background (see HeldOut), and two objects
// never share both shape and colour.
func (s *Sampler) Next() (Scene, string) {
	sc := s.scene()
	return sc, Caption(sc, s.rng)
}

// NextDrill returns a geometry drill and a caption for it (see Caption): one
// white object on a black background, its shape, size and position uniform
// at random, never a held-out combination. With colour fixed, everything
// a drill's denoising loss measures is the object's geometry; mixed into
// training it is what teaches a small model to place and shape objects
// from the caption at all (on the full scenes alone, colour dominates the
// loss and position words were ignored: see BENCHMARKS.md).
func (s *Sampler) NextDrill() (Scene, string) {
	return s.drill(func() (string, string) { return "white", "black" })
}

// NextColourDrill is NextDrill with the object and background colours
// drawn from the palette (two different colours) instead of white on black:
// a single object whose shape, size and position are uniform like a
// drill's. A model trained on white drills alone draws their shapes but
// not those of coloured objects (it learns geometry for white on black
// only); these drills carry the shapes over to every colour.
func (s *Sampler) NextColourDrill() (Scene, string) {
	return s.drill(func() (string, string) {
		for {
			if c, bg := s.pick(Colours), s.pick(Colours); c != bg {
				return c, bg
			}
		}
	})
}

// drill draws a single-object scene with the colours colours returns,
// redrawing held-out combinations.
func (s *Sampler) drill(colours func() (object, background string)) (Scene, string) {
	for {
		o := Object{Shape: s.pick(Shapes), Size: s.pick(Sizes), Position: s.pick(Positions)}
		var bg string
		o.Colour, bg = colours()
		sc := Scene{Background: bg, Objects: []Object{o}}
		if !sceneHeldOut(sc) {
			return sc, Caption(sc, s.rng)
		}
	}
}

// NextImage is Next followed by Render at the sampler's image size.
func (s *Sampler) NextImage() (*image.RGBA, Scene, string) {
	sc, c := s.Next()
	return Render(sc, s.size), sc, c
}

func (s *Sampler) pick(list []string) string { return list[s.rng.IntN(len(list))] }

func (s *Sampler) scene() Scene {
	r := s.rng
	if r.Float64() >= twoObjectFraction {
		for {
			sc := Scene{Background: s.pick(Colours), Objects: []Object{{
				Shape: s.pick(Shapes), Colour: s.pick(Colours), Size: s.pick(Sizes), Position: s.pick(Positions),
			}}}
			if sc.Objects[0].Colour != sc.Background && !sceneHeldOut(sc) {
				return sc
			}
		}
	}
	for {
		sc := Scene{Background: s.pick(Colours)}
		p := r.Perm(len(Positions))
		for i := range 2 {
			sc.Objects = append(sc.Objects, Object{
				Shape: s.pick(Shapes), Colour: s.pick(Colours), Size: s.pick(Sizes), Position: Positions[p[i]],
			})
		}
		a, b := &sc.Objects[0], &sc.Objects[1]
		if a.Position == "center" || b.Position == "center" {
			a.Size, b.Size = "small", "small"
		}
		if a.Colour == sc.Background || b.Colour == sc.Background ||
			a.Shape == b.Shape && a.Colour == b.Colour || sceneHeldOut(sc) {
			continue
		}
		return sc
	}
}

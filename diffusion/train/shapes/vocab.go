// Package shapes is a deterministic synthetic captioned data set of simple
// scenes (coloured geometric shapes on a flat background, 64x64 pixels by
// default) for training a small text-to-image diffusion model, together with
// a deterministic image analyser that evaluates generated images.
//
// A scene holds one or two objects; each object is a shape drawn in a colour
// at a size and at one of five anchor positions:
//
//	s := shapes.Scene{Background: "blue", Objects: []shapes.Object{
//		{Shape: "star", Colour: "red", Size: "small", Position: "top left"}}}
//	shapes.CanonicalCaption(s.Objects[0], s.Background)
//	// "a small red star on a blue background, top left"
//	img := shapes.Render(s, 64) // *image.RGBA, 64x64 pixels
//	a := shapes.Analyse(img)   // a.Shape == "star", a.Colour == "red", ...
//
// Some (shape, colour, background, position) combinations are held out (see
// HeldOut): a Sampler never produces them, and EvalSet lists them, so that
// an evaluation measures compositional generalisation rather than recall.
//
// Everything is deterministic: the same seed gives the same scenes and
// captions everywhere, and the same pixels on a given CPU architecture (a
// compiler that fuses multiply-adds could flip rare edge sub-samples).
package shapes

import (
	"image/color"
	"slices"
)

// Shapes lists the shape names in their fixed order.
var Shapes = []string{"circle", "square", "triangle", "star", "heart", "ring", "cross", "diamond"}

// Colours lists the colour names in their fixed order; Palette gives each
// one's sRGB value. Parsing also accepts the alias "grey" for "gray".
var Colours = []string{"red", "green", "blue", "yellow", "white", "black", "purple", "orange", "pink", "gray", "brown", "cyan"}

// Sizes lists the object sizes in their fixed order. At 64x64 pixels a small
// object is 18 pixels across and a large one 32 (see Diameter).
var Sizes = []string{"small", "large"}

// Positions lists the anchor positions in their fixed order; see Anchor.
var Positions = []string{"top left", "top right", "bottom left", "bottom right", "center"}

// Palette maps every name in Colours to its sRGB value (alpha 255). The
// values are chosen far apart (at least about 100 in RGB Euclidean distance)
// so that nearest-colour classification is robust.
var Palette = map[string]color.RGBA{
	"red":    {230, 25, 25, 255},
	"green":  {30, 170, 40, 255},
	"blue":   {30, 60, 230, 255},
	"yellow": {250, 235, 20, 255},
	"white":  {255, 255, 255, 255},
	"black":  {0, 0, 0, 255},
	"purple": {130, 30, 180, 255},
	"orange": {255, 130, 0, 255},
	"pink":   {255, 130, 200, 255},
	"gray":   {128, 128, 128, 255},
	"brown":  {120, 70, 20, 255},
	"cyan":   {0, 220, 230, 255},
}

// anchors holds the object centre of each position in normalised image
// coordinates (0..1, x to the right, y down), in Positions order.
var anchors = [][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}, {0.5, 0.5}}

// Anchor returns the centre of an object at position p in normalised image
// coordinates (x, y in 0..1, y down): (16,16), (48,16), (16,48), (48,48) and
// (32,32) pixels in a 64x64 image. ok is false for an unknown position.
func Anchor(p string) (x, y float64, ok bool) {
	i := slices.Index(Positions, p)
	if i < 0 {
		return 0, 0, false
	}
	return anchors[i][0], anchors[i][1], true
}

// Diameter returns the diameter of an object of size sz as a fraction of the
// image width: 18/64 for "small" and 32/64 for "large". ok is false for an
// unknown size.
func Diameter(sz string) (d float64, ok bool) {
	switch sz {
	case "small":
		return 18.0 / 64, true
	case "large":
		return 32.0 / 64, true
	}
	return 0, false
}

// connective words that captions use besides the vocabulary words.
var fillerWords = []string{"a", "an", "and", "at", "background", "in", "of", "on", "the", "with"}

// Words returns every word any caption template can emit, sorted and
// unique: lowercase, without punctuation ("top left" is the two words "top"
// and "left"). Commas are separate tokens, listed by Punctuation. A trainer
// builds its word-level text vocabulary from Words and Punctuation.
func Words() []string {
	var w []string
	w = append(w, fillerWords...)
	w = append(w, Shapes...)
	w = append(w, Colours...)
	w = append(w, Sizes...)
	for _, p := range Positions {
		w = append(w, splitWords(p)...)
	}
	slices.Sort(w)
	return slices.Compact(w)
}

// Punctuation returns the punctuation tokens captions use: only ",".
func Punctuation() []string { return []string{","} }

package train

import (
	"image"

	"github.com/pigment-ai/pigment/diffusion/train/shapes"
)

// Attributes are the properties the shapes evaluation scores, in report
// order.
var Attributes = []string{"colour", "background", "position", "shape", "size"}

// Score compares what a single-object caption asked for with what
// shapes.Analyse found in the generated image, returning one verdict per
// entry of Attributes (a missing object fails all but background).
func Score(asked shapes.Scene, img image.Image) (map[string]bool, shapes.Analysis) {
	a := shapes.Analyse(img)
	o := asked.Objects[0]
	return map[string]bool{
		"colour":     a.Found && a.Colour == o.Colour,
		"background": a.Background == asked.Background,
		"position":   a.Found && a.Position == o.Position,
		"shape":      a.Found && a.Shape == o.Shape,
		"size":       a.Found && a.Size == o.Size,
	}, a
}

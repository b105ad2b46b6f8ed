package shapes

import (
	"errors"
	"fmt"
	"slices"
)

// Object is one shape in a scene. Every field holds a name from the
// corresponding vocabulary list (Shapes, Colours, Sizes, Positions). A scene
// parsed from a caption leaves Size or Position empty when the caption does
// not mention them; scenes made by Sampler and EvalSet are always complete.
type Object struct {
	Shape, Colour, Size, Position string
}

// Scene is a flat background colour (a name from Colours) with objects
// drawn on it in order. Object colours differ from the background colour and
// objects differ in position. Background is empty only in scenes parsed from
// captions that do not mention it.
type Scene struct {
	Background string
	Objects    []Object
}

// Complete reports whether every field of the scene is set, as Render
// requires.
func (s Scene) Complete() bool {
	if s.Background == "" || len(s.Objects) == 0 {
		return false
	}
	for _, o := range s.Objects {
		if o.Shape == "" || o.Colour == "" || o.Size == "" || o.Position == "" {
			return false
		}
	}
	return true
}

// Validate checks that every non-empty field names a vocabulary entry, that
// there is at least one object and every object has a shape and a colour,
// that no object has the background colour and that no two objects share a
// position. Empty Background, Size and Position fields are allowed (they
// mean "unspecified"); use Complete to require them.
func (s Scene) Validate() error {
	if len(s.Objects) == 0 {
		return errors.New("shapes: scene has no objects")
	}
	if s.Background != "" && !slices.Contains(Colours, s.Background) {
		return fmt.Errorf("shapes: unknown background colour %q", s.Background)
	}
	for i, o := range s.Objects {
		if !slices.Contains(Shapes, o.Shape) {
			return fmt.Errorf("shapes: object %d: unknown shape %q", i, o.Shape)
		}
		if !slices.Contains(Colours, o.Colour) {
			return fmt.Errorf("shapes: object %d: unknown colour %q", i, o.Colour)
		}
		if o.Size != "" && !slices.Contains(Sizes, o.Size) {
			return fmt.Errorf("shapes: object %d: unknown size %q", i, o.Size)
		}
		if o.Position != "" && !slices.Contains(Positions, o.Position) {
			return fmt.Errorf("shapes: object %d: unknown position %q", i, o.Position)
		}
		if o.Colour == s.Background {
			return fmt.Errorf("shapes: object %d has the background colour %q", i, o.Colour)
		}
		for j := range i {
			if o.Position != "" && s.Objects[j].Position == o.Position {
				return fmt.Errorf("shapes: objects %d and %d share position %q", j, i, o.Position)
			}
		}
	}
	return nil
}

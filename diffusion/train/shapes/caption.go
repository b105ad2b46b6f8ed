package shapes

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// article returns "an" before a word starting with a vowel, "a" otherwise.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// splitWords splits a multi-word vocabulary entry such as "top left".
func splitWords(s string) []string { return strings.Fields(s) }

// nounPhrase is "[size] colour shape", with an article in front when art.
func nounPhrase(o Object, withSize, art bool) string {
	p := o.Colour + " " + o.Shape
	if withSize && o.Size != "" {
		p = o.Size + " " + p
	}
	if art {
		p = article(p) + " " + p
	}
	return p
}

// CanonicalCaption returns the canonical caption of a single object on a
// background, e.g. "a small red star on a blue background, top left" ("an"
// before "orange"). ParseCaption inverts it. o must be complete (all fields
// set).
func CanonicalCaption(o Object, background string) string {
	return nounPhrase(o, true, true) + " on " + article(background) + " " + background + " background, " + o.Position
}

// singleTemplates are the single-object phrasings. Placeholders: {np} noun
// phrase with article, {NP} without, {bga} background colour with article,
// {bg} without, {pos} position, {in} "in" or "at". Every template names the
// shape and colour; some omit size, position or background, which the
// renderer always chooses at random, so an omitted attribute means "any".
var singleTemplates = []string{
	"{np} on {bga} background, {pos}", // canonical when the size is kept
	"{np} {in} the {pos} on {bga} background",
	"{NP}, {pos}, {bg} background",
	"{NP} on {bg}, {pos}",
	"{np} at the {pos} of {bga} background",
	"{np} at the {pos}",
	"{np} in the {pos}",
	"{bga} background with {np} in the {pos}",
	"{np} on {bga} background",
	"{np}, {pos}, on {bga} background",
}

// Caption returns a caption for the complete scene s, choosing a phrasing at
// random with r (one third of single-object captions are canonical, see
// CanonicalCaption). Looser phrasings may omit the size, the position or
// the background. Scenes with several objects join the objects with "and",
// optionally with their positions and the background. Every word comes from
// Words and the only punctuation is ",".
func Caption(s Scene, r *rand.Rand) string {
	if len(s.Objects) == 1 {
		return singleCaption(s.Objects[0], s.Background, r)
	}
	return multiCaption(s, r)
}

func singleCaption(o Object, bg string, r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return CanonicalCaption(o, bg)
	}
	t := singleTemplates[r.IntN(len(singleTemplates))]
	withSize := r.IntN(4) != 0 // keep the size three times in four
	in := "in"
	if r.IntN(2) == 0 {
		in = "at"
	}
	return strings.NewReplacer(
		"{np}", nounPhrase(o, withSize, true),
		"{NP}", nounPhrase(o, withSize, false),
		"{bga}", article(bg)+" "+bg,
		"{bg}", bg,
		"{pos}", o.Position,
		"{in}", in,
	).Replace(t)
}

func multiCaption(s Scene, r *rand.Rand) string {
	withPos := r.IntN(3) != 0
	parts := make([]string, len(s.Objects))
	for i, o := range s.Objects {
		p := nounPhrase(o, r.IntN(2) == 0, true)
		if withPos {
			prep := []string{"in", "at", "on"}[r.IntN(3)]
			if o.Position == "center" && prep == "on" {
				prep = "in"
			}
			p += " " + prep + " the " + o.Position
		}
		parts[i] = p
	}
	c := strings.Join(parts, " and ")
	switch r.IntN(4) {
	case 0: // no background
	case 1:
		c += ", on " + article(s.Background) + " " + s.Background + " background"
	case 2:
		c = article(s.Background) + " " + s.Background + " background with " + c
	case 3:
		if withPos {
			c += ", on " + article(s.Background) + " " + s.Background + " background"
		} else {
			c += " on " + article(s.Background) + " " + s.Background + " background"
		}
	}
	return c
}

// Tokens splits a caption into lowercase word tokens, with every comma a
// separate "," token and a trailing full stop dropped. It is the word-level
// tokenisation that Words and Punctuation describe.
func Tokens(caption string) []string {
	caption = strings.ToLower(strings.TrimSpace(caption))
	caption = strings.TrimSuffix(caption, ".")
	caption = strings.ReplaceAll(caption, ",", " , ")
	return strings.Fields(caption)
}

// parseAlias maps accepted alternative spellings to vocabulary words.
var parseAlias = map[string]string{"grey": "gray", "centre": "center", "middle": "center"}

// ParseCaption parses a caption back into the scene it asks for. It accepts
// the canonical form and every phrasing Caption emits (and other orderings
// of the same words and phrases), plus the aliases "grey" and "centre".
// Attributes the caption does not mention are left empty. It returns an
// error for unknown words, for phrases it cannot attach (a position before
// any object, a colour that is neither an object's nor the background) and
// for invalid scenes (see Scene.Validate).
func ParseCaption(s string) (Scene, error) {
	toks := Tokens(s)
	for i, t := range toks {
		if a, ok := parseAlias[t]; ok {
			toks[i] = a
		}
	}
	var sc Scene
	prev := "" // previous token, skipping articles
	at := func(i int) string {
		if i < len(toks) {
			return toks[i]
		}
		return ""
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case slices.Contains(fillerWords, t) && t != "background", t == ",":
			if t != "a" && t != "an" {
				prev = t
			}
			continue
		case slices.Contains(Sizes, t):
			if !slices.Contains(Colours, at(i+1)) || !slices.Contains(Shapes, at(i+2)) {
				return Scene{}, fmt.Errorf("shapes: size %q not followed by a colour and a shape", t)
			}
			sc.Objects = append(sc.Objects, Object{Size: t, Colour: toks[i+1], Shape: toks[i+2]})
			i += 2
		case slices.Contains(Colours, t):
			switch next := at(i + 1); {
			case slices.Contains(Shapes, next):
				sc.Objects = append(sc.Objects, Object{Colour: t, Shape: next})
				i++
			case next == "background" || prev == "on" && (next == "," || next == ""):
				if sc.Background != "" {
					return Scene{}, errors.New("shapes: caption names two backgrounds")
				}
				sc.Background = t
				if next == "background" {
					i++
				}
			default:
				return Scene{}, fmt.Errorf("shapes: colour %q is neither an object's nor the background", t)
			}
		case t == "top" || t == "bottom" || t == "center":
			p := t
			if t != "center" {
				if n := at(i + 1); n != "left" && n != "right" {
					return Scene{}, fmt.Errorf("shapes: %q not followed by left or right", t)
				}
				p += " " + toks[i+1]
				i++
			}
			if len(sc.Objects) == 0 {
				return Scene{}, fmt.Errorf("shapes: position %q before any object", p)
			}
			o := &sc.Objects[len(sc.Objects)-1]
			if o.Position != "" {
				return Scene{}, fmt.Errorf("shapes: second position %q for one object", p)
			}
			o.Position = p
		default:
			return Scene{}, fmt.Errorf("shapes: unexpected word %q", t)
		}
		prev = t
	}
	if err := sc.Validate(); err != nil {
		return Scene{}, err
	}
	return sc, nil
}

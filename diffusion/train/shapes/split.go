package shapes

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// heldOutModulus: a combination is held out when its hash is 0 modulo this
// (about 1 in 20, 5%).
const heldOutModulus = 20

// HeldOut reports whether the single-object combination (o.Shape,
// o.Colour, background, o.Position) is held out of training. Size is not
// part of the combination. The function is a fixed hash (FNV-1a, 64-bit,
// of the four names, then a SplitMix64 finaliser) modulo 20, so about 5% of
// combinations are held out, independently of any seed. Samplers never
// produce a scene in which any object forms a held-out combination with the
// background; EvalSet draws from exactly these combinations.
func HeldOut(o Object, background string) bool {
	h := fnv.New64a()
	for _, s := range []string{o.Shape, o.Colour, background, o.Position} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	x := h.Sum64()
	// SplitMix64 finaliser, so that the low bits depend on every input bit.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x%heldOutModulus == 0
}

// sceneHeldOut reports whether any object of s forms a held-out combination
// with the background.
func sceneHeldOut(s Scene) bool {
	for _, o := range s.Objects {
		if HeldOut(o, s.Background) {
			return true
		}
	}
	return false
}

// heldOutCombos lists every held-out combination (with empty Size), in
// vocabulary order: shape, colour, background, position.
func heldOutCombos() []Scene {
	var out []Scene
	for _, sh := range Shapes {
		for _, c := range Colours {
			for _, bg := range Colours {
				if bg == c {
					continue
				}
				for _, p := range Positions {
					o := Object{Shape: sh, Colour: c, Position: p}
					if HeldOut(o, bg) {
						out = append(out, Scene{Background: bg, Objects: []Object{o}})
					}
				}
			}
		}
	}
	return out
}

// EvalSet returns n deterministic single-object evaluation scenes, every one
// a held-out combination (see HeldOut). Shapes cycle in Shapes order (so
// each shape gets n/8 scenes, ±1) and sizes alternate per shape. Within a
// shape, combinations not yet used come first, then ones used once, at the
// other size; among those the one whose object colour, background colour
// and position have been used least so far wins, which spreads the set over
// all colours and positions. Captions are therefore distinct up to 2·K
// scenes (K ≈ 270 held-out combinations, each at both sizes); beyond that
// the sequence starts again. n = 200 is what the evaluator uses.
func EvalSet(n int) []Scene {
	combos := heldOutCombos()
	if n <= 0 || len(combos) == 0 {
		return nil
	}
	// A fixed hash order, so that ties are broken without favouring the
	// first colours of the vocabulary.
	key := func(s Scene) uint64 {
		h := fnv.New64a()
		o := s.Objects[0]
		h.Write([]byte(o.Shape + "/" + o.Colour + "/" + s.Background + "/" + o.Position))
		return h.Sum64()
	}
	slices.SortStableFunc(combos, func(a, b Scene) int { return cmp.Compare(key(a), key(b)) })

	out := make([]Scene, 0, n)
	for len(out) < n {
		usedSize := make([][2]bool, len(combos)) // per combination and size
		uses := func(j int) int {
			u := 0
			for _, b := range usedSize[j] {
				if b {
					u++
				}
			}
			return u
		}
		count := map[string]int{}
		for i := 0; len(out) < n; i++ {
			shape := Shapes[i%len(Shapes)]
			want := (i / len(Shapes)) % len(Sizes) // preferred size index
			best, bestKey := -1, [3]int{}
			for pass := 0; pass < 2 && best < 0; pass++ {
				for j, c := range combos {
					o := c.Objects[0]
					if uses(j) == len(Sizes) || pass == 0 && o.Shape != shape {
						continue
					}
					taken := 0
					if usedSize[j][want] {
						taken = 1
					}
					k := [3]int{uses(j), taken, count["c:"+o.Colour] + count["b:"+c.Background] + count["p:"+o.Position]}
					if best < 0 || cmp.Compare(k[0], bestKey[0]) < 0 ||
						k[0] == bestKey[0] && (k[1] < bestKey[1] || k[1] == bestKey[1] && k[2] < bestKey[2]) {
						best, bestKey = j, k
					}
				}
			}
			if best < 0 {
				break // every combination used at both sizes: start again
			}
			size := want
			if usedSize[best][size] {
				size = 1 - size
			}
			usedSize[best][size] = true
			c := combos[best]
			o := c.Objects[0]
			count["c:"+o.Colour]++
			count["b:"+c.Background]++
			count["p:"+o.Position]++
			o.Size = Sizes[size]
			out = append(out, Scene{Background: c.Background, Objects: []Object{o}})
		}
	}
	return out
}

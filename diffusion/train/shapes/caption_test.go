package shapes

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCanonicalCaption(t *testing.T) {
	tests := []struct {
		o    Object
		bg   string
		want string
	}{
		{Object{"star", "red", "small", "top left"}, "blue", "a small red star on a blue background, top left"},
		{Object{"circle", "orange", "large", "center"}, "white", "a large orange circle on a white background, center"},
		{Object{"ring", "cyan", "small", "bottom right"}, "orange", "a small cyan ring on an orange background, bottom right"},
	}
	for _, tc := range tests {
		if got := CanonicalCaption(tc.o, tc.bg); got != tc.want {
			t.Errorf("CanonicalCaption(%v, %q) = %q, want %q", tc.o, tc.bg, got, tc.want)
		}
	}
}

// allCanonical calls f for every complete single-object scene.
func allCanonical(f func(o Object, bg string)) {
	for _, sh := range Shapes {
		for _, c := range Colours {
			for _, bg := range Colours {
				if bg == c {
					continue
				}
				for _, sz := range Sizes {
					for _, p := range Positions {
						f(Object{sh, c, sz, p}, bg)
					}
				}
			}
		}
	}
}

func TestParseCaptionRoundTrip(t *testing.T) {
	n := 0
	allCanonical(func(o Object, bg string) {
		n++
		c := CanonicalCaption(o, bg)
		got, err := ParseCaption(c)
		want := Scene{Background: bg, Objects: []Object{o}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseCaption(%q) = %+v, %v; want %+v", c, got, err, want)
		}
	})
	if want := 8 * 12 * 11 * 2 * 5; n != want {
		t.Fatalf("checked %d combinations, want %d", n, want)
	}
}

func TestParseCaptionVariants(t *testing.T) {
	tests := []struct {
		in   string
		want Scene
	}{
		{"a red star in the top left on a blue background", Scene{"blue", []Object{{"star", "red", "", "top left"}}}},
		{"small red star, top left, blue background", Scene{"blue", []Object{{"star", "red", "small", "top left"}}}},
		{"red star on blue, top left", Scene{"blue", []Object{{"star", "red", "", "top left"}}}},
		{"a large green circle at the center of a white background", Scene{"white", []Object{{"circle", "green", "large", "center"}}}},
		{"a red star at the top left", Scene{"", []Object{{"star", "red", "", "top left"}}}},
		{"A Small GREY Heart on a black background, bottom right.", Scene{"black", []Object{{"heart", "gray", "small", "bottom right"}}}},
		{"a red circle and a green square", Scene{"", []Object{{"circle", "red", "", ""}, {"square", "green", "", ""}}}},
		{"a red circle on the top left and a green square on the bottom right, on a blue background",
			Scene{"blue", []Object{{"circle", "red", "", "top left"}, {"square", "green", "", "bottom right"}}}},
		{"an orange background with a small pink ring in the centre", Scene{"orange", []Object{{"ring", "pink", "small", "center"}}}},
	}
	for _, tc := range tests {
		got, err := ParseCaption(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCaption(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCaptionErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"a small red star on a blue background, top middle",
		"a small red blob on a blue background, top left",
		"a small red star on a red background, top left", // object has the background colour
		"top left, a red star",                           // position before any object
		"a red star on a blue background on a green background",
		"a red star in the top left and a blue circle in the top left",
		"a small star on a blue background", // size without colour
		"a red star, top left, bottom right",
		"a red star background",
		"a red star on a blue background, top",
		"hello",
	} {
		if s, err := ParseCaption(in); err == nil {
			t.Errorf("ParseCaption(%q) = %+v, want an error", in, s)
		}
	}
}

// captionConsistent checks that ParseCaption recovers every attribute the
// caption mentions, and that what it leaves empty was really omitted.
func captionConsistent(t *testing.T, s Scene, c string) {
	t.Helper()
	got, err := ParseCaption(c)
	if err != nil {
		t.Fatalf("ParseCaption(Caption(%+v)) = %q: %v", s, c, err)
	}
	if got.Background != "" && got.Background != s.Background || len(got.Objects) != len(s.Objects) {
		t.Fatalf("caption %q of %+v parses to %+v", c, s, got)
	}
	for i, o := range got.Objects {
		w := s.Objects[i]
		if o.Shape != w.Shape || o.Colour != w.Colour ||
			o.Size != "" && o.Size != w.Size || o.Position != "" && o.Position != w.Position {
			t.Fatalf("caption %q of %+v parses to %+v", c, s, got)
		}
	}
}

func TestCaptionsParseAndUseWords(t *testing.T) {
	words := Words()
	if !slices.IsSorted(words) || len(slices.Compact(slices.Clone(words))) != len(words) {
		t.Fatalf("Words() not sorted and unique: %v", words)
	}
	vocab := map[string]bool{}
	for _, w := range append(slices.Clone(words), Punctuation()...) {
		vocab[w] = true
	}
	used := map[string]bool{}
	canonical, omitSize, omitBg, omitPos := 0, 0, 0, 0
	forms := map[string]bool{}
	s := NewSampler(1, 64)
	const n = 20000
	for range n {
		sc, c := s.Next()
		for _, tok := range Tokens(c) {
			if !vocab[tok] {
				t.Fatalf("caption %q: token %q not in Words()/Punctuation()", c, tok)
			}
			used[tok] = true
		}
		if strings.Contains(c, "  ") || c != strings.TrimSpace(c) {
			t.Fatalf("caption %q has stray spaces", c)
		}
		captionConsistent(t, sc, c)
		p, _ := ParseCaption(c)
		if len(sc.Objects) == 1 {
			if c == CanonicalCaption(sc.Objects[0], sc.Background) {
				canonical++
			}
			// The template shape, with vocabulary words blanked out.
			form := c
			for _, w := range append(append(append(slices.Clone(Shapes), Colours...), Sizes...), Positions...) {
				form = strings.ReplaceAll(form, w, "_")
			}
			forms[strings.ReplaceAll(form, "an ", "a ")] = true
		}
		if p.Objects[0].Size == "" {
			omitSize++
		}
		if p.Background == "" {
			omitBg++
		}
		if p.Objects[0].Position == "" {
			omitPos++
		}
	}
	for _, w := range words {
		if !used[w] {
			t.Errorf("Words() lists %q, which no caption used", w)
		}
	}
	if canonical < n/5 || omitSize == 0 || omitBg == 0 || omitPos == 0 {
		t.Errorf("phrasing mix: %d canonical, %d omit size, %d omit background, %d omit position of %d", canonical, omitSize, omitBg, omitPos, n)
	}
	if len(forms) < 6 {
		t.Errorf("only %d single-object caption forms: %v", len(forms), forms)
	}
	t.Logf("%d canonical of %d; %d single-object forms", canonical, n, len(forms))
}

func TestCaptionDeterministic(t *testing.T) {
	s := Scene{"blue", []Object{{"star", "red", "small", "top left"}, {"circle", "white", "large", "bottom right"}}}
	a, b := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
	for range 100 {
		if x, y := Caption(s, a), Caption(s, b); x != y {
			t.Fatalf("Caption not deterministic: %q vs %q", x, y)
		}
	}
}

func FuzzParseCaption(f *testing.F) {
	f.Add("a small red star on a blue background, top left")
	f.Add("a red circle on the top left and a green square on the bottom right, on a blue background")
	f.Add("red star on blue, top left")
	f.Add("an orange background with a small pink ring in the centre")
	f.Add("small , , top")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseCaption(in)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseCaption(%q) returned an invalid scene %+v: %v", in, s, err)
		}
		if len(s.Objects) == 1 && s.Complete() {
			c := CanonicalCaption(s.Objects[0], s.Background)
			if s2, err := ParseCaption(c); err != nil || !reflect.DeepEqual(s, s2) {
				t.Fatalf("canonical %q of %+v parses to %+v, %v", c, s, s2, err)
			}
		}
	})
}

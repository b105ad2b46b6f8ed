package clip

// Text clean-up and pre-tokenisation of CLIP's tokenizer, as the slow
// transformers CLIPTokenizer does it when ftfy is not installed
// (transformers v4.39.0, src/transformers/models/clip/tokenization_clip.py):
//
//  1. BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize:
//     _clean_text (drop U+0000, U+FFFD and every character of a Unicode
//     "C*" category except \t \n \r; map \t \n \r and "Zs" characters to a
//     space), _tokenize_chinese_chars (a space either side of each CJK
//     ideograph), unicodedata.normalize("NFC"), str.split(), and str.lower()
//     of each word. Accents are kept: with strip_accents=False
//     _run_strip_accents is never called.
//  2. regex.findall of
//     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     compiled with re.IGNORECASE (the third-party "regex" module) over the
//     words joined by single spaces.
//
// The reference ran CPython 3.11, whose unicodedata is Unicode 14.0.0; Go's
// unicode package is Unicode 15.0.0. Every category assigned in 14.0 is the
// same in 15.0, and str.lower agrees with unicode.ToLower on all of them
// except U+0130 and U+03A3 (handled in pyLower), so the only difference is the
// 4489 code points new in 15.0, which Python sees as unassigned ("Cn") and
// removes: unicode15Only lists them.

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// unicode15Only holds the code points assigned in Unicode 15.0.0 (Go's
// unicode tables) but unassigned in Unicode 14.0.0 (CPython 3.11's
// unicodedata, which produced the reference), computed by comparing
// unicodedata.category with Go's categories for every code point.
var unicode15Only = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x0CF3, 0x0CF3, 1}, {0x0ECE, 0x0ECE, 1},
	},
	R32: []unicode.Range32{
		{0x10EFD, 0x10EFF, 1}, {0x1123F, 0x11241, 1}, {0x11B00, 0x11B09, 1},
		{0x11F00, 0x11F10, 1}, {0x11F12, 0x11F3A, 1}, {0x11F3E, 0x11F59, 1},
		{0x1342F, 0x1342F, 1}, {0x13439, 0x13455, 1}, {0x1B132, 0x1B132, 1},
		{0x1B155, 0x1B155, 1}, {0x1D2C0, 0x1D2D3, 1}, {0x1DF25, 0x1DF2A, 1},
		{0x1E030, 0x1E06D, 1}, {0x1E08F, 0x1E08F, 1}, {0x1E4D0, 0x1E4F9, 1},
		{0x1F6DC, 0x1F6DC, 1}, {0x1F774, 0x1F776, 1}, {0x1F77B, 0x1F77F, 1},
		{0x1F7D9, 0x1F7D9, 1}, {0x1FA75, 0x1FA77, 1}, {0x1FA87, 0x1FA88, 1},
		{0x1FAAD, 0x1FAAF, 1}, {0x1FABB, 0x1FABD, 1}, {0x1FABF, 0x1FABF, 1},
		{0x1FACE, 0x1FACF, 1}, {0x1FADA, 0x1FADB, 1}, {0x1FAE8, 0x1FAE8, 1},
		{0x1FAF7, 0x1FAF8, 1}, {0x2B739, 0x2B739, 1}, {0x31350, 0x323AF, 1},
	},
}

// isControl reports whether BasicTokenizer._clean_text drops r: U+0000,
// U+FFFD (also what an invalid UTF-8 byte decodes to) and transformers'
// _is_control (unicodedata.category(r) starts with "C", \t \n \r excepted),
// "Cn" (unassigned in Unicode 14.0) included.
func isControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	case 0, utf8.RuneError:
		return true
	}
	if r < 0x80 {
		return r < 0x20 || r == 0x7f
	}
	if unicode.Is(unicode.C, r) || unicode.Is(unicode15Only, r) {
		return true
	}
	// Unassigned: in no general category at all.
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isWhitespace is transformers' _is_whitespace: space, \t, \n, \r and
// category "Zs".
func isWhitespace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r':
		return true
	}
	return r >= 0x80 && unicode.Is(unicode.Zs, r)
}

// isCJK is BasicTokenizer._is_chinese_char: the CJK Unified Ideographs
// blocks and extensions A–E plus the compatibility ideographs, with the
// bounds written there.
func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// basicWords appends to dst the words BasicTokenizer.tokenize makes of
// text (see the top of this file): cleaned, CJK split, NFC, split on
// whitespace and lower-cased.
func basicWords(dst []string, text string) []string {
	var b strings.Builder
	b.Grow(len(text) + 8)
	ascii := true
	for _, r := range text {
		switch {
		case isControl(r):
		case isWhitespace(r):
			b.WriteByte(' ')
		case isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			ascii = false
		default:
			if r >= utf8.RuneSelf {
				ascii = false
			}
			b.WriteRune(r)
		}
	}
	s := b.String()
	if !ascii {
		s = norm.NFC.String(s)
	}
	// str.split() splits on str.isspace characters; after _clean_text only
	// ' ', U+2028 and U+2029 are left of them, all unicode.IsSpace.
	for len(s) > 0 {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			dst = append(dst, pyLower(s))
			break
		}
		if i > 0 {
			dst = append(dst, pyLower(s[:i]))
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		s = s[i+size:]
	}
	return dst
}

// pyLower is CPython's str.lower: the full lowercase mapping, which differs
// from unicode.ToLower rune by rune only for U+0130 (İ, to "i̇", two code
// points) and U+03A3 (Σ, to final ς at the end of a word, by the
// Final_Sigma rule of Unicode's SpecialCasing.txt as CPython implements it in
// handle_capital_sigma).
func pyLower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i, r := range rs {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3A3:
			if finalSigma(rs, i) {
				b.WriteRune(0x3C2)
			} else {
				b.WriteRune(0x3C3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma reports whether the capital sigma at rs[i] is in the
// Final_Sigma context: a cased letter before it and none after it, skipping
// case-ignorable characters both ways (CPython handle_capital_sigma).
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	k := i + 1
	for k < len(rs) && caseIgnorable(rs[k]) {
		k++
	}
	return k == len(rs) || !cased(rs[k])
}

// cased is Unicode's derived property Cased: Lu, Ll, Lt, Other_Lowercase
// and Other_Uppercase (DerivedCoreProperties.txt).
func cased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// caseIgnorable is Unicode's derived property Case_Ignorable: Mn, Me, Cf,
// Lm, Sk and Word_Break MidLetter, MidNumLet and Single_Quote
// (DerivedCoreProperties.txt; the Word_Break values from
// WordBreakProperty.txt, Unicode 14.0).
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024,
		0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// CLIP's special-token literals. Besides being tokens of the vocabulary,
// they are hard-coded in CLIPTokenizer's regex and BPE cache.
const (
	startOfText = "<|startoftext|>"
	endOfText   = "<|endoftext|>"
)

// contractions are the regex alternatives tried after an apostrophe, in
// the regex's order.
var contractions = [...]string{"s", "t", "re", "ve", "m", "ll", "d"}

// clipPieces calls emit with each match of CLIP's pre-tokenisation regex
// (see the top of this file) in word, a lower-cased word without
// whitespace. Two effects of re.IGNORECASE in the regex module are kept:
// U+017F (ſ) matches the letter s of the literals (so "'ſ" is one piece),
// and U+0345 (combining ypogegrammeni, which case-folds to ι) is matched by
// no alternative and so dropped.
func clipPieces(word string, emit func(piece string)) {
	for i := 0; i < len(word); {
		r, size := utf8.DecodeRuneInString(word[i:])
		switch {
		case r == '<':
			if n := matchFold(word[i:], startOfText); n > 0 {
				emit(word[i : i+n])
				i += n
				continue
			}
			if n := matchFold(word[i:], endOfText); n > 0 {
				emit(word[i : i+n])
				i += n
				continue
			}
		case r == '\'':
			matched := false
			for _, c := range contractions {
				if n := matchFold(word[i+1:], c); n > 0 {
					emit(word[i : i+1+n])
					i += 1 + n
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		case unicode.IsLetter(r):
			j := i + size
			for j < len(word) {
				r, size := utf8.DecodeRuneInString(word[j:])
				if !unicode.IsLetter(r) {
					break
				}
				j += size
			}
			emit(word[i:j])
			i = j
			continue
		case unicode.IsNumber(r):
			emit(word[i : i+size])
			i += size
			continue
		case skipped(r):
			i += size
			continue
		}
		// [^\s\p{L}\p{N}]+
		j := i + size
		for j < len(word) {
			r, size := utf8.DecodeRuneInString(word[j:])
			if unicode.IsLetter(r) || unicode.IsNumber(r) || skipped(r) {
				break
			}
			j += size
		}
		emit(word[i:j])
		i = j
	}
}

// skipped reports whether no alternative of CLIP's regex matches r: \s
// characters and U+0345.
func skipped(r rune) bool {
	return r == 0x345 || unicode.IsSpace(r)
}

// matchFold returns the length in bytes of the prefix of s that matches
// lit case-insensitively as the regex module does, or 0. lit is ASCII.
func matchFold(s, lit string) int {
	i := 0
	for k := 0; k < len(lit); k++ {
		if i >= len(s) {
			return 0
		}
		c := lit[k]
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == rune(c):
		case 'a' <= c && c <= 'z' && r == rune(c-'a'+'A'):
		case c == 's' && r == 0x17F:
		default:
			return 0
		}
		i += size
	}
	return i
}

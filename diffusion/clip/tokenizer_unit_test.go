package clip

// Unit tests on the hand-made vocabulary in testdata/tokenizer (32 tokens,
// 9 merges, CLIP's file formats). The expected tokens follow
// transformers' slow CLIPTokenizer without ftfy (v4.39.0); the cases that
// also exist in the reference data are checked there by the golden tests.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Ids of testdata/tokenizer/vocab.json.
const (
	tinyBang     = 0  // "!"
	tinyA        = 2  // "a"
	tinyT        = 8  // "t"
	tinyBangEnd  = 10 // "!</w>"
	tinyAEnd     = 11 // "a</w>"
	tinyBEnd     = 12 // "b</w>"
	tinySEnd     = 14 // "s</w>"
	tiny1End     = 16 // "1</w>"
	tiny2End     = 17 // "2</w>"
	tiny3End     = 18 // "3</w>"
	tinyCommaEnd = 19 // ",</w>"
	tinyCa       = 21 // "ca"
	tinyCatEnd   = 22 // "cat</w>"
	tinyDonEnd   = 24 // "don</w>"
	tinyQuoteT   = 25 // "'t</w>"
	tinyQuoteS   = 26 // "'s</w>"
	tinyBangBang = 27 // "!!</w>"
	tinyCaf      = 28 // "caf"
	tinyEAcute   = 29 // "Ã©</w>"
	tinyBOS      = 30 // "<|startoftext|>"
	tinyEOS      = 31 // "<|endoftext|>" (also unknown and padding)
)

// tinyTokenizer loads testdata/tokenizer.
func tinyTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := LoadTokenizer("testdata/tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tinyBangTokenizer is testdata/tokenizer padding with "!", like SD 2.x.
func tinyBangTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok := tinyTokenizer(t)
	bang, err := NewTokenizer(tok.vocab, tinyMerges(t), "!")
	if err != nil {
		t.Fatal(err)
	}
	return bang
}

// tinyMerges reads testdata/tokenizer/merges.txt.
func tinyMerges(t testing.TB) [][2]string {
	t.Helper()
	m, err := readMerges("testdata/tokenizer/merges.txt")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTokenizerTiny(t *testing.T) {
	tok := tinyTokenizer(t)
	if tok.BOS != tinyBOS || tok.EOS != tinyEOS || tok.Pad != tinyEOS || tok.Unk != tinyEOS || tok.MaxLength != 77 || tok.VocabSize() != 32 {
		t.Fatalf("BOS, EOS, Pad, Unk, MaxLength, VocabSize = %d, %d, %d, %d, %d, %d", tok.BOS, tok.EOS, tok.Pad, tok.Unk, tok.MaxLength, tok.VocabSize())
	}
	const unk = tinyEOS
	for _, tc := range []struct {
		name   string
		prompt string
		tokens []string
		ids    []int
	}{
		{"empty", "", nil, nil},
		{"only whitespace", " \t\n\r\u3000\u00a0 ", nil, nil},
		{"lower case", "CAT Cat cat", []string{"cat</w>", "cat</w>", "cat</w>"}, []int{tinyCatEnd, tinyCatEnd, tinyCatEnd}},
		{"whitespace runs", "  a \t\n\n b\u2003\u2028a  ", []string{"a</w>", "b</w>", "a</w>"}, []int{tinyAEnd, tinyBEnd, tinyAEnd}},
		{"partial merges", "cats", []string{"ca", "t", "s</w>"}, []int{tinyCa, tinyT, tinySEnd}},
		{"control chars removed", "c\x00a\x07t\u200b\ufeff\ufffd", []string{"cat</w>"}, []int{tinyCatEnd}},
		{"invalid UTF-8 removed", "ca\xfft", []string{"cat</w>"}, []int{tinyCatEnd}},
		{"CJK split off", "a猫b", []string{"a</w>", "ç", "Į", "«</w>", "b</w>"}, []int{tinyAEnd, unk, unk, unk, tinyBEnd}},
		{"accents kept", "Café", []string{"caf", "Ã©</w>"}, []int{tinyCaf, tinyEAcute}},
		{"NFC", "cafe\u0301", []string{"caf", "Ã©</w>"}, []int{tinyCaf, tinyEAcute}},
		{"contractions", "don't, cat's", []string{"don</w>", "'t</w>", ",</w>", "cat</w>", "'s</w>"},
			[]int{tinyDonEnd, tinyQuoteT, tinyCommaEnd, tinyCatEnd, tinyQuoteS}},
		{"upper-case contraction", "DON'T", []string{"don</w>", "'t</w>"}, []int{tinyDonEnd, tinyQuoteT}},
		{"long s contraction", "a'ſ", []string{"a</w>", "'", "Å", "¿</w>"}, []int{tinyAEnd, 1, unk, unk}},
		{"digits one per token", "123", []string{"1</w>", "2</w>", "3</w>"}, []int{tiny1End, tiny2End, tiny3End}},
		{"digits inside words", "a1b", []string{"a</w>", "1</w>", "b</w>"}, []int{tinyAEnd, tiny1End, tinyBEnd}},
		{"punctuation run", "a!!", []string{"a</w>", "!!</w>"}, []int{tinyAEnd, tinyBangBang}},
		{"punctuation run of three", "!!!", []string{"!", "!!</w>"}, []int{tinyBang, tinyBangBang}},
		{"mixed punctuation run", ",!", []string{",", "!</w>"}, []int{unk, tinyBangEnd}},
		{"special tokens in text", "a<|endoftext|>b<|startoftext|>", []string{"a</w>", "<|endoftext|>", "b</w>", "<|startoftext|>"},
			[]int{tinyAEnd, tinyEOS, tinyBEnd, tinyBOS}},
		{"special token any case", "<|EndOfText|>", []string{"<|endoftext|>"}, []int{tinyEOS}},
		{"special token inside a punctuation run", "!<|endoftext|>", []string{"!</w>", "<|endoftext|>"}, []int{tinyBangEnd, tinyEOS}},
		{"combining ypogegrammeni dropped", "a\u0345b", []string{"a</w>", "b</w>"}, []int{tinyAEnd, tinyBEnd}},
		{"unknown characters", "😀", []string{"ð", "Ł", "ĺ", "Ģ</w>"}, []int{unk, unk, unk, unk}},
		{"HTML entities kept", "&amp;", []string{"&</w>", "a", "m", "p</w>", ";</w>"}, []int{unk, tinyA, unk, unk, unk}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tok.Tokenize(tc.prompt); !slices.Equal(got, tc.tokens) {
				t.Errorf("Tokenize(%q) = %q, want %q", tc.prompt, got, tc.tokens)
			}
			want := append(append([]int{tinyBOS}, tc.ids...), tinyEOS)
			if got := tok.Encode(tc.prompt); !slices.Equal(got, want) {
				t.Errorf("Encode(%q) = %v, want %v", tc.prompt, got, want)
			}
			padded, truncated := tok.EncodePadded(tc.prompt)
			if truncated || len(padded) != 77 || !slices.Equal(padded[:len(want)], want) {
				t.Fatalf("EncodePadded(%q) = %v, %v", tc.prompt, padded, truncated)
			}
			for _, id := range padded[len(want):] {
				if id != tinyEOS {
					t.Fatalf("EncodePadded(%q) pads with %v", tc.prompt, padded[len(want):])
				}
			}
		})
	}
}

// TestTokenizerLowerCase checks the parts of Python's str.lower that
// differ from unicode.ToLower.
func TestTokenizerLowerCase(t *testing.T) {
	tok := tinyTokenizer(t)
	for _, tc := range []struct{ prompt, same string }{
		{"ΟΔΟΣ", "οδος"},               // final sigma
		{"ΣΑ", "σα"},                   // not final
		{"ΑΣ'", "ας'"},                 // final: the apostrophe is case-ignorable
		{"ΑΣ'Α", "ασ'α"},               // not final: a letter follows
		{"Σ", "σ"},                     // alone: no cased letter before it
		{"İstanbul", "i\u0307stanbul"}, // dotted capital I
		{"ǅ", "ǆ"},
	} {
		got, want := tok.Tokenize(tc.prompt), tok.Tokenize(tc.same)
		if !slices.Equal(got, want) {
			t.Errorf("Tokenize(%q) = %q, want Tokenize(%q) = %q", tc.prompt, got, tc.same, want)
		}
	}
}

func TestTokenizerPadBang(t *testing.T) {
	tok := tinyBangTokenizer(t)
	if tok.Pad != tinyBang {
		t.Fatalf("Pad = %d, want %d", tok.Pad, tinyBang)
	}
	for _, tc := range []struct {
		prompt string
		tokens []string
		ids    []int
	}{
		// Every "!" is an added token of its own: no "!</w>", no "!!</w>".
		{"a!!", []string{"a</w>", "!", "!"}, []int{tinyAEnd, tinyBang, tinyBang}},
		{"!cat !", []string{"!", "cat</w>", "!"}, []int{tinyBang, tinyCatEnd, tinyBang}},
		{",!,", []string{",</w>", "!", ",</w>"}, []int{tinyCommaEnd, tinyBang, tinyCommaEnd}},
		{"<|endoftext|>!", []string{"<|endoftext|>", "!"}, []int{tinyEOS, tinyBang}},
	} {
		if got := tok.Tokenize(tc.prompt); !slices.Equal(got, tc.tokens) {
			t.Errorf("Tokenize(%q) = %q, want %q", tc.prompt, got, tc.tokens)
		}
		padded, _ := tok.EncodePadded(tc.prompt)
		want := append(append([]int{tinyBOS}, tc.ids...), tinyEOS)
		for len(want) < 77 {
			want = append(want, tinyBang)
		}
		if !slices.Equal(padded, want) {
			t.Errorf("EncodePadded(%q) = %v, want %v", tc.prompt, padded, want)
		}
	}
}

func TestTokenizerTruncation(t *testing.T) {
	tok := tinyTokenizer(t)
	for _, n := range []int{74, 75, 76, 77, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			prompt := strings.Repeat("a ", n)
			if got := len(tok.Encode(prompt)); got != n+2 {
				t.Fatalf("len(Encode) = %d, want %d", got, n+2)
			}
			ids, truncated := tok.EncodePadded(prompt)
			if truncated != (n > 75) {
				t.Errorf("truncated = %v for %d tokens", truncated, n)
			}
			if len(ids) != 77 || ids[0] != tinyBOS {
				t.Fatalf("EncodePadded = %v", ids)
			}
			kept := min(n, 75)
			for i, id := range ids[1:] {
				want := tinyEOS // EOS, then padding
				if i < kept {
					want = tinyAEnd
				}
				if id != want {
					t.Fatalf("ids[%d] = %d, want %d (%v)", i+1, id, want, ids)
				}
			}
			if n > 75 {
				full := tok.Encode(prompt)
				if got, want := tok.Decode(full[tok.MaxLength-1:len(full)-1]), strings.TrimSpace(strings.Repeat("a ", n-75)); got != want {
					t.Errorf("Decode(truncated part) = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestTokenizerShortMaxLength(t *testing.T) {
	tok := tinyTokenizer(t)
	tok.MaxLength = 4
	ids, truncated := tok.EncodePadded("a b a")
	if want := []int{tinyBOS, tinyAEnd, tinyBEnd, tinyEOS}; !slices.Equal(ids, want) || !truncated {
		t.Errorf("EncodePadded = %v, %v; want %v, true", ids, truncated, want)
	}
}

func TestTokenizerDecode(t *testing.T) {
	tok := tinyTokenizer(t)
	for _, tc := range []struct {
		ids  []int
		want string
	}{
		{nil, ""},
		{tok.Encode("Café, don't"), "<|startoftext|>café , don 't <|endoftext|>"},
		{[]int{tinyCaf, tinyEAcute, tinyCatEnd}, "café cat"},
		{[]int{tinyCa, -1, 1000, tinyT}, "cat"}, // ids outside the vocabulary are skipped
		{[]int{9}, "\uFFFD"},                    // "Ã" alone is half of a UTF-8 sequence
		{[]int{tinyBangBang, tinyBang}, "!! !"},
	} {
		if got := tok.Decode(tc.ids); got != tc.want {
			t.Errorf("Decode(%v) = %q, want %q", tc.ids, got, tc.want)
		}
	}
}

func TestTokenizerConcurrent(t *testing.T) {
	tok := tinyTokenizer(t)
	prompts := []string{"a cat", "don't", "café!!", "cats 123", "a<|endoftext|>b"}
	want := make([][]int, len(prompts))
	for i, p := range prompts {
		want[i], _ = tok.EncodePadded(p)
	}
	fresh := tinyTokenizer(t) // empty cache: goroutines race to fill it
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := (g + i) % len(prompts)
				if got, _ := fresh.EncodePadded(prompts[k]); !slices.Equal(got, want[k]) {
					t.Errorf("EncodePadded(%q) = %v, want %v", prompts[k], got, want[k])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestTokenizerCacheBound(t *testing.T) {
	tok := tinyTokenizer(t)
	for i := 0; i < maxCacheEntries+10; i++ {
		tok.bpe(fmt.Sprintf("w%d", i))
	}
	if n := len(tok.cache); n > maxCacheEntries {
		t.Errorf("cache holds %d entries, want at most %d", n, maxCacheEntries)
	}
	long := strings.Repeat("ab", maxCachedPiece)
	tok.bpe(long)
	if _, ok := tok.cache[long]; ok {
		t.Errorf("a %d-byte piece was cached", len(long))
	}
}

// naiveBPE is CLIPTokenizer.bpe transcribed literally: find the ranked pair
// of lowest rank, merge all its occurrences left to right, repeat.
func naiveBPE(ranks map[[2]string]int, piece string) []string {
	enc := bytesToUnicode()
	word := make([]string, len(piece))
	for i := 0; i < len(piece); i++ {
		word[i] = string(enc[piece[i]])
	}
	word[len(word)-1] += endOfWord
	for len(word) > 1 {
		best, bestRank := [2]string{}, -1
		for i := 0; i+1 < len(word); i++ {
			p := [2]string{word[i], word[i+1]}
			if r, ok := ranks[p]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = p, r
			}
		}
		if bestRank < 0 {
			break
		}
		var next []string
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == best[0] && word[i+1] == best[1] {
				next = append(next, best[0]+best[1])
				i += 2
			} else {
				next = append(next, word[i])
				i++
			}
		}
		word = next
	}
	return word
}

// TestBPEMatchesNaive checks the heap-based merge against naiveBPE on
// random merge tables whose ranks are shuffled (so merged symbols can have
// lower ranks than their parts, which real tables never do) and random
// words over a small alphabet.
func TestBPEMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 30; trial++ {
		alphabet := []string{"a", "b", "c"}
		syms := []string{"a", "b", "c", "a</w>", "b</w>", "c</w>"}
		vocab := map[string]int{startOfText: 0, endOfText: 1}
		for _, s := range syms {
			vocab[s] = len(vocab)
		}
		var merges [][2]string
		seen := map[[2]string]bool{}
		for len(merges) < 40 {
			a := syms[rng.IntN(len(syms))]
			b := syms[rng.IntN(len(syms))]
			if strings.HasSuffix(a, endOfWord) || seen[[2]string{a, b}] || len(a+b) > 16 {
				continue
			}
			seen[[2]string{a, b}] = true
			merges = append(merges, [2]string{a, b})
			if _, ok := vocab[a+b]; !ok {
				vocab[a+b] = len(vocab)
				syms = append(syms, a+b)
			}
		}
		rng.Shuffle(len(merges), func(i, j int) { merges[i], merges[j] = merges[j], merges[i] })
		if trial%3 == 0 {
			merges = append(merges, merges[rng.IntN(len(merges))]) // a duplicate takes the last rank
		}
		tok, err := NewTokenizer(vocab, merges, "")
		if err != nil {
			t.Fatal(err)
		}
		ranks := map[[2]string]int{}
		for r, m := range merges {
			ranks[m] = r
		}
		for w := 0; w < 300; w++ {
			var b strings.Builder
			for n := 1 + rng.IntN(40); n > 0; n-- {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			word := b.String()
			var got []string
			for _, s := range tok.merge(word) {
				got = append(got, tok.symbols[s])
			}
			if want := naiveBPE(ranks, word); !slices.Equal(got, want) {
				t.Fatalf("trial %d: merge(%q) = %q, want %q", trial, word, got, want)
			}
		}
	}
}

// TestBPEMatchesNaiveCLIP does the same with CLIP's real merges on words
// with many repeats, when the reference data is there.
func TestBPEMatchesNaiveCLIP(t *testing.T) {
	tok, _ := loadRefTokenizer(t, "tiny-sd15")
	ranks := map[[2]string]int{}
	for k, m := range tok.merges {
		ranks[[2]string{tok.symbols[k>>32], tok.symbols[uint32(k)]}] = int(m.rank)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, alphabet := range []string{"a", "ab", "etaoinshrdlu", "abcdefghijklmnopqrstuvwxyz", "é😀猫"} {
		letters := []rune(alphabet)
		for w := 0; w < 200; w++ {
			var b strings.Builder
			for n := 1 + rng.IntN(100); n > 0; n-- {
				b.WriteRune(letters[rng.IntN(len(letters))])
			}
			word := b.String()
			var got []string
			for _, s := range tok.merge(word) {
				got = append(got, tok.symbols[s])
			}
			if want := naiveBPE(ranks, word); !slices.Equal(got, want) {
				t.Fatalf("merge(%q) = %q, want %q", word, got, want)
			}
		}
	}
}

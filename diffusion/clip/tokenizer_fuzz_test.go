package clip

import (
	"path/filepath"
	"slices"
	"testing"
)

// fuzzSeeds are the prompts of the reference tokenizer cases and of the
// unit tests.
var fuzzSeeds = []string{
	"",
	"a photo of a cat",
	"A Photo Of A CAT On The MOON",
	"4k, f/1.8, 35mm!! ultra-detailed; (masterpiece) #1 @home $100 50% a+b=c",
	"don't stop, it's John's dog's bone",
	"一只可爱的猫在草地上",
	"café crème brûlée, naïve Zoë, Ångström, Straße",
	"a cute dog 🐶 with a party hat 🎉🎉",
	"  many   spaces\n\nnew\tlines\t\tand tabs   ",
	"(red:1.3) [blue] {green} <lora:foo:0.8> ((masterpiece)), (worst quality:1.4)",
	"hello world",
	"HTML &amp; entities &lt;b&gt; and 'quotes' \"double\"",
	"numbers 0123456789 3.14159 1,000,000 and 1e-5",
	"astronaut riding a horse, highly detailed, digital painting, artstation, concept art, smooth, sharp focus, illustration",
	"c\x00a\x07t\u200b\ufeff\ufffd ca\xfft",
	"a<|endoftext|>b<|startoftext|> <|EndOfText|> <|ſtartoftext|> !<|endoftext|>",
	"a'ſ a\u0345b ΟΔΟΣ ΑΣ'Α İstanbul ǅ cafe\u0301 \u2028\u2003",
}

// FuzzTokenizer checks that any text tokenizes without panicking into ids
// of the vocabulary, that EncodePadded always gives MaxLength ids starting
// with BOS and holding EOS, and that Encode is deterministic and agrees with
// EncodePadded and Tokenize.
func FuzzTokenizer(f *testing.F) {
	toks := []*Tokenizer{tinyTokenizer(f), tinyBangTokenizer(f)}
	if refs, _ := findRefs(); refs != "" {
		for _, p := range []string{"tiny-sd15", "tiny-sd2v"} {
			tok, err := LoadTokenizer(filepath.Join(refs, p, "tokenizer"))
			if err != nil {
				f.Fatal(err)
			}
			toks = append(toks, tok)
		}
	}
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, tok := range toks {
			ids := tok.Encode(text)
			if len(ids) < 2 || ids[0] != tok.BOS || ids[len(ids)-1] != tok.EOS {
				t.Fatalf("Encode(%q) = %v: no BOS ... EOS", text, ids)
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("Encode(%q) = %v: id %d outside [0, %d)", text, ids, id, tok.VocabSize())
				}
			}
			if again := tok.Encode(text); !slices.Equal(again, ids) {
				t.Fatalf("Encode(%q) = %v, then %v", text, ids, again)
			}
			if n := len(tok.Tokenize(text)); n != len(ids)-2 {
				t.Fatalf("Tokenize(%q) has %d tokens, Encode %d ids", text, n, len(ids))
			}
			padded, truncated := tok.EncodePadded(text)
			if len(padded) != tok.MaxLength || padded[0] != tok.BOS || !slices.Contains(padded, tok.EOS) {
				t.Fatalf("EncodePadded(%q) = %v", text, padded)
			}
			keep := min(len(ids)-2, tok.MaxLength-2)
			if truncated != (len(ids) > tok.MaxLength) || !slices.Equal(padded[:1+keep], ids[:1+keep]) || padded[1+keep] != tok.EOS {
				t.Fatalf("EncodePadded(%q) = %v, %v; Encode = %v", text, padded, truncated, ids)
			}
			for _, id := range padded[2+keep:] {
				if id != tok.Pad {
					t.Fatalf("EncodePadded(%q) = %v: padding is not %d", text, padded, tok.Pad)
				}
			}
			_ = tok.Decode(ids)
		}
	})
}

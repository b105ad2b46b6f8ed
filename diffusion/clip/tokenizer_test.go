package clip

// Golden tests against the reference data (../shared/refs, see its
// README.md). The "tokenizer" cases of cases/<pipeline>/cases.json were made
// with diffusers 0.27.2 / transformers 4.39.0 (slow CLIPTokenizer, no ftfy):
//
//	tok = CLIPTokenizer.from_pretrained(pipeline_dir, subfolder="tokenizer")
//	enc = tok(prompt, padding="max_length", max_length=77, truncation=True)
//	untruncated = tok(prompt, padding="longest").input_ids
//	outputs = {input_ids: enc.input_ids, untruncated_ids: untruncated,
//	           truncated: len(untruncated) > 77,
//	           bpe_tokens: tok.convert_ids_to_tokens(untruncated)}

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// refsDir returns the reference data folder (see findRefs), skipping the
// test with a clear message if there is none.
func refsDir(t testing.TB) string {
	t.Helper()
	dir, why := findRefs()
	if dir == "" {
		t.Skipf("reference data not found: %s; skipping", why)
	}
	return dir
}

// findRefs locates the reference data: $PIGMENT_REFS, else ../shared/refs
// beside the module root (the nearest directory at or above the working
// directory holding go.mod). It returns "" and the reason if there is none.
func findRefs() (dir, why string) {
	if d := os.Getenv("PIGMENT_REFS"); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", "$PIGMENT_REFS=" + d + " is not a directory"
		}
		return d, ""
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err.Error()
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "no go.mod above the working directory and $PIGMENT_REFS unset"
		}
		dir = parent
	}
	refs := filepath.Join(filepath.Dir(dir), "shared", "refs")
	if st, err := os.Stat(refs); err != nil || !st.IsDir() {
		return "", refs + " does not exist (set $PIGMENT_REFS to its location)"
	}
	return refs, ""
}

// tokenizerCase is a case of kind "tokenizer" in cases.json.
type tokenizerCase struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Inputs struct {
		Prompt string `json:"prompt"`
	} `json:"inputs"`
	Outputs struct {
		InputIDs       []int    `json:"input_ids"`
		UntruncatedIDs []int    `json:"untruncated_ids"`
		Truncated      bool     `json:"truncated"`
		BPETokens      []string `json:"bpe_tokens"`
	} `json:"outputs"`
}

// loadRefTokenizer loads refs/<pipeline>/tokenizer and the tokenizer cases
// of refs/cases/<pipeline>/cases.json.
func loadRefTokenizer(t testing.TB, pipeline string) (*Tokenizer, []tokenizerCase) {
	t.Helper()
	refs := refsDir(t)
	tok, err := LoadTokenizer(filepath.Join(refs, pipeline, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(refs, "cases", pipeline, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(nullNonFinite(data), &file); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	var cases []tokenizerCase
	for _, raw := range file.Cases {
		var c tokenizerCase
		if err := json.Unmarshal(raw, &c); err == nil && c.Kind == "tokenizer" {
			cases = append(cases, c)
		}
	}
	return tok, cases
}

// nullNonFinite replaces the bare words NaN, Infinity and -Infinity that
// Python's json module writes for non-finite floats (cases.json has some in
// scheduler configs) by null, outside strings.
func nullNonFinite(data []byte) []byte {
	out := make([]byte, 0, len(data))
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			out = append(out, c)
			if c == '\\' && i+1 < len(data) {
				i++
				out = append(out, data[i])
			} else if c == '"' {
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
		}
		replaced := false
		for _, w := range [...]string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(data[i:], []byte(w)) {
				out = append(out, "null"...)
				i += len(w) - 1
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, c)
		}
	}
	return out
}

func TestTokenizerGoldenSD15(t *testing.T) { testTokenizerGolden(t, "tiny-sd15", 49407) }
func TestTokenizerGoldenSD2(t *testing.T)  { testTokenizerGolden(t, "tiny-sd2v", 0) }

func testTokenizerGolden(t *testing.T, pipeline string, pad int) {
	tok, cases := loadRefTokenizer(t, pipeline)
	if len(cases) == 0 {
		t.Fatalf("%s: no tokenizer cases", pipeline)
	}
	if tok.BOS != 49406 || tok.EOS != 49407 || tok.Pad != pad || tok.MaxLength != 77 || tok.VocabSize() != 49408 {
		t.Fatalf("BOS, EOS, Pad, MaxLength, VocabSize = %d, %d, %d, %d, %d; want 49406, 49407, %d, 77, 49408",
			tok.BOS, tok.EOS, tok.Pad, tok.MaxLength, tok.VocabSize(), pad)
	}
	passed := 0
	for _, c := range cases {
		ok := t.Run(c.ID, func(t *testing.T) {
			want := c.Outputs
			if got := tok.Encode(c.Inputs.Prompt); !slices.Equal(got, want.UntruncatedIDs) {
				t.Errorf("Encode(%q)\n got %v\nwant %v", c.Inputs.Prompt, got, want.UntruncatedIDs)
			}
			got, truncated := tok.EncodePadded(c.Inputs.Prompt)
			if !slices.Equal(got, want.InputIDs) || truncated != want.Truncated {
				t.Errorf("EncodePadded(%q)\n got %v, %v\nwant %v, %v", c.Inputs.Prompt, got, truncated, want.InputIDs, want.Truncated)
			}
			// bpe_tokens are the tokens of untruncated_ids, BOS and EOS included.
			wantToks := want.BPETokens
			if n := len(wantToks); n < 2 || wantToks[0] != startOfText || wantToks[n-1] != endOfText {
				t.Fatalf("bpe_tokens %q do not start with BOS and end with EOS", wantToks)
			}
			if toks := tok.Tokenize(c.Inputs.Prompt); !slices.Equal(toks, wantToks[1:len(wantToks)-1]) {
				t.Errorf("Tokenize(%q)\n got %q\nwant %q", c.Inputs.Prompt, toks, wantToks[1:len(wantToks)-1])
			}
		})
		if ok {
			passed++
		}
	}
	t.Logf("%s: %d/%d tokenizer cases match", pipeline, passed, len(cases))
}

// Benchmark sinks.
var (
	tokenizerSink *Tokenizer
	idsSink       []int
)

// BenchmarkLoadTokenizer loads CLIP's 49408-token vocabulary and 48894
// merges.
func BenchmarkLoadTokenizer(b *testing.B) {
	dir := filepath.Join(refsDir(b), "tiny-sd15", "tokenizer")
	b.ReportAllocs()
	for b.Loop() {
		tok, err := LoadTokenizer(dir)
		if err != nil {
			b.Fatal(err)
		}
		tokenizerSink = tok
	}
}

const benchPrompt = "astronaut riding a horse, highly detailed, digital painting, artstation, concept art, smooth, sharp focus, illustration"

func BenchmarkEncodePadded_Cached(b *testing.B) { benchEncodePadded(b, benchPrompt, false) }
func BenchmarkEncodePadded_Cold(b *testing.B)   { benchEncodePadded(b, benchPrompt, true) }

// benchEncodePadded tokenizes prompt with CLIP's vocabulary, with the BPE
// cache warm or emptied before every call.
func benchEncodePadded(b *testing.B, prompt string, cold bool) {
	tok, _ := loadRefTokenizer(b, "tiny-sd15")
	b.SetBytes(int64(len(prompt)))
	b.ReportAllocs()
	for b.Loop() {
		if cold {
			tok.mu.Lock()
			clear(tok.cache)
			tok.mu.Unlock()
		}
		idsSink, _ = tok.EncodePadded(prompt)
	}
}

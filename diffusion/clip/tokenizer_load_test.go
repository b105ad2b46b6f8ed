package clip

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyDir copies testdata/tokenizer to a temporary folder, then writes
// (or, for an empty content, removes) the given files.
func tinyDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"} {
		data, err := os.ReadFile(filepath.Join("testdata/tokenizer", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if content == "" {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadTokenizerConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		pad   int
		max   int
		added []string
	}{
		{"fixture", nil, tinyEOS, 77, nil},
		{"no config files", map[string]string{"tokenizer_config.json": "", "special_tokens_map.json": ""}, tinyEOS, 77, nil},
		{"pad string", map[string]string{"special_tokens_map.json": `{"pad_token": "!"}`}, tinyBang, 77, nil},
		{"pad object", map[string]string{"special_tokens_map.json": `{"pad_token": {"content": "!", "lstrip": false}}`}, tinyBang, 77, nil},
		{"pad from tokenizer_config", map[string]string{"tokenizer_config.json": `{"pad_token": "!"}`, "special_tokens_map.json": ""}, tinyBang, 77, nil},
		{"special_tokens_map wins", map[string]string{"tokenizer_config.json": `{"pad_token": "!"}`, "special_tokens_map.json": `{"pad_token": "a</w>"}`}, tinyAEnd, 77, nil},
		{"null pad keeps the default", map[string]string{"special_tokens_map.json": `{"pad_token": null}`}, tinyEOS, 77, nil},
		{"model_max_length", map[string]string{"tokenizer_config.json": `{"model_max_length": 16}`}, tinyEOS, 16, nil},
		{"added_tokens_decoder", map[string]string{"tokenizer_config.json": `{"added_tokens_decoder": {"10": {"content": "!</w>", "special": true}}}`}, tinyEOS, 77, []string{"!</w>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := LoadTokenizer(tinyDir(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Pad != tc.pad || tok.MaxLength != tc.max {
				t.Errorf("Pad, MaxLength = %d, %d; want %d, %d", tok.Pad, tok.MaxLength, tc.pad, tc.max)
			}
			for _, a := range tc.added {
				if !slices.Contains(tok.added, a) {
					t.Errorf("added tokens %q lack %q", tok.added, a)
				}
			}
			if ids, _ := tok.EncodePadded("a"); len(ids) != tc.max || ids[len(ids)-1] != tc.pad && tc.max > 3 {
				t.Errorf("EncodePadded = %v", ids)
			}
		})
	}
}

func TestLoadTokenizerMerges(t *testing.T) {
	for _, tc := range []struct {
		name, merges string
		want         []string // Tokenize("cat")
	}{
		{"fixture", "#version: 0.2\nc a\nca t</w>\n", []string{"cat</w>"}},
		{"CRLF and blank lines at the ends", "\n\n#version: 0.2\r\nc a\r\nca t</w>\r\n\n", []string{"cat</w>"}},
		// As in CLIPTokenizer, the first line is skipped whatever it holds.
		{"no header", "c a\nca t</w>\n", []string{"c", "a", "t</w>"}},
		{"header only", "#version: 0.2\n", []string{"c", "a", "t</w>"}},
		{"empty", "\n", []string{"c", "a", "t</w>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := LoadTokenizer(tinyDir(t, map[string]string{"merges.txt": tc.merges}))
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Tokenize("cat"); !slices.Equal(got, tc.want) {
				t.Errorf("Tokenize(cat) = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{"missing vocab.json", map[string]string{"vocab.json": ""}, []string{"vocab.json", "no such file"}},
		{"missing merges.txt", map[string]string{"merges.txt": ""}, []string{"merges.txt", "no such file"}},
		{"vocab not JSON", map[string]string{"vocab.json": `{"a": 0,`}, []string{"vocab.json", "unexpected end"}},
		{"vocab not an object", map[string]string{"vocab.json": `[1, 2]`}, []string{"vocab.json"}},
		{"vocab null", map[string]string{"vocab.json": `null`}, []string{"vocab.json", "not a JSON object"}},
		{"vocab id not an integer", map[string]string{"vocab.json": `{"a": 0.5}`}, []string{"vocab.json"}},
		{"vocab id out of range", map[string]string{"vocab.json": `{"<|startoftext|>": 0, "<|endoftext|>": 5}`, "merges.txt": "#version: 0.2\n"}, []string{"vocab.json", "id 5", "outside [0, 2)"}},
		{"vocab id twice", map[string]string{"vocab.json": `{"<|startoftext|>": 0, "<|endoftext|>": 1, "x": 1}`, "merges.txt": "#version: 0.2\n"}, []string{"vocab.json", "id 1"}},
		{"empty vocab", map[string]string{"vocab.json": `{}`, "merges.txt": "#version: 0.2\n"}, []string{"vocab.json", "empty vocabulary"}},
		{"merge line with one field", map[string]string{"merges.txt": "#version: 0.2\nc a\nca\n"}, []string{"merges.txt line 3", "two space-separated symbols"}},
		{"merge line with three fields", map[string]string{"merges.txt": "#version: 0.2\nc a t\n"}, []string{"merges.txt line 2"}},
		{"blank merge line", map[string]string{"merges.txt": "#version: 0.2\nc a\n\nd o\n"}, []string{"merges.txt line 3"}},
		{"merge symbol not in vocab", map[string]string{"merges.txt": "#version: 0.2\nc a\nx y\n"}, []string{"merges.txt line 3", `"x" "y": "x" is not in vocab.json`}},
		{"merge result not in vocab", map[string]string{"merges.txt": "#version: 0.2\na a\n"}, []string{"merges.txt line 2", `"aa" is not in vocab.json`}},
		{"pad not in vocab", map[string]string{"special_tokens_map.json": `{"pad_token": "<pad>"}`}, []string{"pad token", `"<pad>"`, "not in the vocabulary"}},
		{"bos not in vocab", map[string]string{"special_tokens_map.json": `{"bos_token": {"content": "<s>"}}`}, []string{"bos token", `"<s>"`}},
		{"pad neither string nor object", map[string]string{"special_tokens_map.json": `{"pad_token": 3}`}, []string{"special_tokens_map.json", "pad_token"}},
		{"pad object without content", map[string]string{"special_tokens_map.json": `{"pad_token": {"lstrip": false}}`}, []string{"special_tokens_map.json", "pad_token", "content"}},
		{"empty pad", map[string]string{"special_tokens_map.json": `{"pad_token": ""}`}, []string{"pad_token", "empty"}},
		{"lstrip unsupported", map[string]string{"special_tokens_map.json": `{"eos_token": {"content": "<|endoftext|>", "lstrip": true}}`}, []string{"eos_token", "not supported"}},
		{"config not JSON", map[string]string{"tokenizer_config.json": `{`}, []string{"tokenizer_config.json"}},
		{"config not an object", map[string]string{"tokenizer_config.json": `null`}, []string{"tokenizer_config.json", "not a JSON object"}},
		{"max length too small", map[string]string{"tokenizer_config.json": `{"model_max_length": 1}`}, []string{"tokenizer_config.json", "model_max_length", "[2, 4096]"}},
		{"max length huge", map[string]string{"tokenizer_config.json": `{"model_max_length": 1e30}`}, []string{"model_max_length"}},
		{"max length fractional", map[string]string{"tokenizer_config.json": `{"model_max_length": 77.5}`}, []string{"model_max_length"}},
		{"max length a string", map[string]string{"tokenizer_config.json": `{"model_max_length": "77"}`}, []string{"model_max_length"}},
		{"added token not in vocab", map[string]string{"tokenizer_config.json": `{"added_tokens_decoder": {"40000": {"content": "<new>"}}}`}, []string{"added token", `"<new>"`}},
		{"added token bad key", map[string]string{"tokenizer_config.json": `{"added_tokens_decoder": {"x": {"content": "!"}}}`}, []string{"added_tokens_decoder", `"x"`}},
		{"added token null", map[string]string{"tokenizer_config.json": `{"added_tokens_decoder": {"0": null}}`}, []string{"added_tokens_decoder[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tinyDir(t, tc.files)
			tok, err := LoadTokenizer(dir)
			if err == nil {
				t.Fatalf("LoadTokenizer succeeded (%d tokens)", tok.VocabSize())
			}
			msg := err.Error()
			for _, w := range append([]string{"clip: load tokenizer from " + dir}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	if _, err := LoadTokenizer(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LoadTokenizer of a missing folder succeeded")
	}
}

func TestNewTokenizerErrors(t *testing.T) {
	vocab := map[string]int{"a": 0, "b": 1, "ab": 2, startOfText: 3, endOfText: 4}
	if _, err := NewTokenizer(vocab, [][2]string{{"a", "b"}}, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		merges [][2]string
		pad    string
		want   string
	}{
		{"merge part missing", [][2]string{{"a", "b"}, {"a", "c"}}, "", `clip: merge 1 "a" "c": "c" is not in the vocabulary`},
		{"merge result missing", [][2]string{{"b", "a"}}, "", `"ba" is not in the vocabulary`},
		{"pad missing", nil, "<pad>", `clip: pad token "<pad>" is not in the vocabulary`},
	} {
		if _, err := NewTokenizer(vocab, tc.merges, tc.pad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// The vocabulary is copied.
	tok, err := NewTokenizer(vocab, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	vocab["a"] = 99
	if got := tok.vocab["a"]; got != 0 {
		t.Errorf("the tokenizer sees the caller's change of the vocabulary: id of \"a\" = %d", got)
	}
}

// TestParseVocab checks the fast vocab.json parser against encoding/json:
// it must give the same map or decline.
func TestParseVocab(t *testing.T) {
	for _, tc := range []struct {
		data string
		fast bool // whether parseVocab takes it
	}{
		{`{}`, true},
		{` { } `, true},
		{`{"a": 0, "b":1 ,"c" : 2}`, true},
		{"{\n  \"a\": 0,\n\t\"\\u00e9\\\"\\\\\": 1\r\n}\n", true},
		{`{"\ud83d\ude00": 7}`, true},
		{`{"a": 0, "a": 1}`, true},
		{`{"é": 12345}`, true},
		{`{"a": -1}`, false},
		{`{"a": 1.5}`, false},
		{`{"a": 1e3}`, false},
		{`{"a": 01}`, false},
		{`{"a": 12345678901}`, false},
		{`{"a": "1"}`, false},
		{`{"a": 0,}`, false},
		{`{"a": 0} x`, false},
		{`{"a" 0}`, false},
		{`{"a": 0`, false},
		{"{\"a\xff\": 0}", false},
		{"{\"a\nb\": 0}", false},
		{`[1]`, false},
		{`null`, false},
		{``, false},
	} {
		got, ok := parseVocab(tc.data)
		if ok != tc.fast {
			t.Errorf("parseVocab(%q) ok = %v, want %v", tc.data, ok, tc.fast)
		}
		if !ok {
			continue
		}
		var want map[string]int
		if err := json.Unmarshal([]byte(tc.data), &want); err != nil {
			t.Errorf("parseVocab took %q, which encoding/json rejects: %v", tc.data, err)
			continue
		}
		if !maps.Equal(got, want) {
			t.Errorf("parseVocab(%q) = %v, encoding/json %v", tc.data, got, want)
		}
	}
}

// FuzzParseVocab checks that whatever parseVocab takes, encoding/json
// reads the same way.
func FuzzParseVocab(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": 0, "b": 1}`, `{"\u00e9": 3}`, `{"a": 1.5}`, `[1]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		got, ok := parseVocab(data)
		if !ok {
			return
		}
		var want map[string]int
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatalf("parseVocab took %q, which encoding/json rejects: %v", data, err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("parseVocab(%q) = %v, encoding/json %v", data, got, want)
		}
	})
}

// TestLoadTokenizerMergeLimit checks that, as in CLIPTokenizer, at most
// 48894 merges are read: here the same merge repeated, whose rank is that of
// its last occurrence.
func TestLoadTokenizerMergeLimit(t *testing.T) {
	merges := "#version: 0.2\n" + strings.Repeat("c a\n", maxFileMerges+10)
	tok, err := LoadTokenizer(tinyDir(t, map[string]string{"merges.txt": merges}))
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.merges) != 1 {
		t.Fatalf("%d merges, want 1", len(tok.merges))
	}
	for _, m := range tok.merges {
		if m.rank != maxFileMerges-1 {
			t.Errorf("rank %d, want %d", m.rank, maxFileMerges-1)
		}
	}
	// Lines past the limit are not even read.
	tok, err = LoadTokenizer(tinyDir(t, map[string]string{"merges.txt": merges + "not a merge line\n"}))
	if err != nil {
		t.Fatalf("a bad line past the limit: %v", err)
	}
}

package clip

// Loading a tokenizer from a diffusers pipeline's tokenizer/ folder, as
// transformers' CLIPTokenizer.from_pretrained reads it (v4.39.0,
// tokenization_clip.py and tokenization_utils_base.py).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LoadTokenizer reads the tokenizer in dir, a model's tokenizer/ folder:
// vocab.json and merges.txt (required), and tokenizer_config.json and
// special_tokens_map.json (optional; the second one's entries win, as in
// from_pretrained). They give bos_token, eos_token, unk_token and pad_token
// (a string or an {"content": ...} object; by default <|startoftext|>,
// <|endoftext|>, <|endoftext|>, <|endoftext|>), model_max_length (default
// 77) and added_tokens_decoder. As CLIPTokenizer does, the first line of
// merges.txt (the "#version" header) is skipped whatever it holds, and at
// most 48894 merges are read.
func LoadTokenizer(dir string) (*Tokenizer, error) {
	t, err := loadTokenizer(dir)
	if err != nil {
		return nil, fmt.Errorf("clip: load tokenizer from %s: %w", dir, err)
	}
	return t, nil
}

func loadTokenizer(dir string) (*Tokenizer, error) {
	vocab, err := readVocab(filepath.Join(dir, "vocab.json"))
	if err != nil {
		return nil, err
	}
	mergesPath := filepath.Join(dir, "merges.txt")
	merges, err := readMerges(mergesPath)
	if err != nil {
		return nil, err
	}
	spec := specialTokens{bos: startOfText, eos: endOfText, unk: endOfText, pad: endOfText, maxLength: MaxLength}
	for _, name := range [...]string{"tokenizer_config.json", "special_tokens_map.json"} {
		if err := readSpecialTokens(filepath.Join(dir, name), &spec); err != nil {
			return nil, err
		}
	}
	t, err := newTokenizer(vocab, merges, spec)
	var me *mergeError
	if errors.As(err, &me) {
		// The header is line 1 and every later line is a merge.
		return nil, fmt.Errorf("%s line %d: %q %q: %q is not in vocab.json", mergesPath, me.index+2, me.a, me.b, me.missing)
	}
	if err != nil {
		return nil, fmt.Errorf("vocab.json: %w", err)
	}
	return t, nil
}

// readVocab reads vocab.json, a JSON object from token to id.
func readVocab(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if vocab, ok := parseVocab(string(data)); ok {
		return vocab, nil
	}
	// Anything parseVocab does not take, errors included, goes through
	// encoding/json.
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if vocab == nil {
		return nil, fmt.Errorf("%s: not a JSON object", path)
	}
	return vocab, nil
}

// parseVocab is a fast path for readVocab: it parses a JSON object of
// strings to non-negative integers, its keys sharing data's memory, and
// reports false for anything else (other JSON, or invalid JSON). It is four
// times as fast as encoding/json on CLIP's vocab.json.
func parseVocab(data string) (map[string]int, bool) {
	// Sized for one token per 17 bytes (CLIP's: 49408 in 862 kB).
	vocab := make(map[string]int, len(data)/17)
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return vocab, skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}
		end, escaped := i+1, false
		for end < len(data) && data[end] != '"' {
			if data[end] == '\\' {
				escaped = true
				end++
			} else if data[end] < 0x20 {
				return nil, false
			}
			end++
		}
		if end >= len(data) {
			return nil, false
		}
		key := data[i+1 : end]
		if escaped {
			if err := json.Unmarshal([]byte(data[i:end+1]), &key); err != nil {
				return nil, false
			}
		} else if !utf8.ValidString(key) {
			return nil, false // encoding/json would replace the invalid bytes
		}
		i = skipSpace(data, end+1)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		start := i
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		if i == start || i-start > 9 || (data[start] == '0' && i-start > 1) {
			return nil, false
		}
		id, _ := strconv.Atoi(data[start:i])
		vocab[key] = id
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return vocab, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// skipSpace returns the index of the first byte at or after i in s that is
// not JSON whitespace.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
		i++
	}
	return i
}

// readMerges reads merges.txt like CLIPTokenizer.__init__:
// read().strip().split("\n")[1:48895], each line split on whitespace, which
// must give two symbols.
func readMerges(path string) ([][2]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimFunc(string(data), isPySpace)
	nl := strings.IndexByte(text, '\n')
	if nl < 0 {
		return nil, nil // just the header, or nothing
	}
	text = text[nl+1:]
	merges := make([][2]string, 0, min(strings.Count(text, "\n")+1, maxFileMerges))
	for line := 2; len(merges) < maxFileMerges; line++ {
		cur, rest, more := strings.Cut(text, "\n")
		a, b, ok := splitMerge(cur)
		if !ok {
			return nil, fmt.Errorf("%s line %d: want two space-separated symbols, got %q", path, line, cur)
		}
		merges = append(merges, [2]string{a, b})
		if !more {
			break
		}
		text = rest
	}
	return merges, nil
}

// splitMerge splits a merges.txt line into its two fields, separated by
// isPySpace characters like Python's str.split().
func splitMerge(line string) (a, b string, ok bool) {
	var f [2]string
	n := 0
	for i := 0; i < len(line); {
		r, size := rune(line[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(line[i:])
		}
		if isPySpace(r) {
			i += size
			continue
		}
		if n == 2 {
			return "", "", false
		}
		j := i + size
		for j < len(line) {
			r, size := rune(line[j]), 1
			if r >= utf8.RuneSelf {
				r, size = utf8.DecodeRuneInString(line[j:])
			}
			if isPySpace(r) {
				break
			}
			j += size
		}
		f[n] = line[i:j]
		n++
		i = j
	}
	return f[0], f[1], n == 2
}

// isPySpace is Python's str.isspace for one character: Unicode White_Space
// plus the separators U+001C..U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (0x1C <= r && r <= 0x1F)
}

// readSpecialTokens updates spec from tokenizer_config.json or
// special_tokens_map.json at path; a missing file changes nothing.
func readSpecialTokens(path string, spec *specialTokens) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if fields == nil {
		return fmt.Errorf("%s: not a JSON object", path)
	}
	for key, dst := range map[string]*string{
		"bos_token": &spec.bos, "eos_token": &spec.eos, "unk_token": &spec.unk, "pad_token": &spec.pad,
	} {
		raw, ok := fields[key]
		if !ok {
			continue
		}
		tok, set, err := parseToken(raw)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, key, err)
		}
		if set {
			*dst = tok
		}
	}
	if raw, ok := fields["model_max_length"]; ok && !isNull(raw) {
		n, err := parseMaxLength(raw)
		if err != nil {
			return fmt.Errorf("%s: model_max_length: %w", path, err)
		}
		spec.maxLength = n
	}
	if raw, ok := fields["added_tokens_decoder"]; ok && !isNull(raw) {
		var added map[string]json.RawMessage
		if err := json.Unmarshal(raw, &added); err != nil {
			return fmt.Errorf("%s: added_tokens_decoder: %w", path, err)
		}
		for id, v := range added {
			if _, err := strconv.Atoi(id); err != nil {
				return fmt.Errorf("%s: added_tokens_decoder: key %q is not an id", path, id)
			}
			tok, set, err := parseToken(v)
			if err != nil || !set {
				return fmt.Errorf("%s: added_tokens_decoder[%s]: %v", path, id, errOr(err, "null token"))
			}
			spec.added = append(spec.added, tok)
		}
	}
	return nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// parseToken reads a special token written as a string or as an
// AddedToken object {"content": ..., "lstrip": ..., ...}; set is false for
// null. Tokens that strip spaces or must be single words are rejected: this
// tokenizer does not implement those options.
func parseToken(raw json.RawMessage) (tok string, set bool, err error) {
	if isNull(raw) {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &tok); err == nil {
		if tok == "" {
			return "", false, errors.New("empty token")
		}
		return tok, true, nil
	}
	var obj struct {
		Content    *string `json:"content"`
		LStrip     bool    `json:"lstrip"`
		RStrip     bool    `json:"rstrip"`
		SingleWord bool    `json:"single_word"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", false, fmt.Errorf("want a string or an object with \"content\": %w", err)
	}
	if obj.Content == nil || *obj.Content == "" {
		return "", false, errors.New("object without \"content\"")
	}
	if obj.LStrip || obj.RStrip || obj.SingleWord {
		return "", false, fmt.Errorf("token %q: lstrip, rstrip and single_word are not supported", *obj.Content)
	}
	return *obj.Content, true, nil
}

// parseMaxLength reads model_max_length, which must be an integer in
// [2, 4096]: room for BOS and EOS, and no larger than any CLIP text model.
func parseMaxLength(raw json.RawMessage) (int, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f < 2 || f > 4096 {
		return 0, fmt.Errorf("%v is not an integer in [2, 4096]", f)
	}
	return int(f), nil
}

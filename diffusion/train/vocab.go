package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pigment-ai/pigment/diffusion/clip"
)

// Vocab is a CLIP tokenizer vocabulary (vocab.json) and its BPE merges
// (merges.txt, in rank order).
type Vocab struct {
	Tokens map[string]int
	Merges [][2]string
}

// WordVocab builds a CLIP-format vocabulary in which each of words (lower
// case; what CLIP's pre-tokenizer yields) is a single token "word</w>", on
// top of the 512 byte-level tokens (every byte alone and with "</w>") and
// the two special tokens, so any other text still tokenizes, letter by
// letter. Merges are added greedily: while a word still splits into several
// tokens, the merge of its first two is appended at the lowest priority,
// which can never change how an already-whole word splits. The result is
// checked with clip.NewTokenizer, the tokenizer inference uses.
func WordVocab(words []string) (*Vocab, error) {
	v := &Vocab{Tokens: map[string]int{}}
	add := func(tok string) {
		if _, ok := v.Tokens[tok]; !ok {
			v.Tokens[tok] = len(v.Tokens)
		}
	}
	alphabet := clip.ByteAlphabet()
	for _, r := range alphabet {
		add(string(r))
	}
	for _, r := range alphabet {
		add(string(r) + "</w>")
	}
	add("<|startoftext|>")
	add("<|endoftext|>")
	for _, w := range words {
		for {
			tok, err := clip.NewTokenizer(v.Tokens, v.Merges, "")
			if err != nil {
				return nil, err
			}
			pieces := tok.Tokenize(w)
			if len(pieces) == 0 {
				return nil, fmt.Errorf("train: word %q has no tokens", w)
			}
			if len(pieces) == 1 {
				if pieces[0] != w+"</w>" {
					return nil, fmt.Errorf("train: word %q is not a single word for CLIP's pre-tokenizer (got %q)", w, pieces[0])
				}
				break
			}
			v.Merges = append(v.Merges, [2]string{pieces[0], pieces[1]})
			add(pieces[0] + pieces[1])
		}
	}
	return v, nil
}

// Write saves the vocabulary as a transformers CLIPTokenizer directory:
// vocab.json, merges.txt, tokenizer_config.json (with model_max_length)
// and special_tokens_map.json.
func (v *Vocab) Write(dir string, modelMaxLength int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var merges strings.Builder
	merges.WriteString("#version: 0.2\n")
	for _, m := range v.Merges {
		merges.WriteString(m[0] + " " + m[1] + "\n")
	}
	special := map[string]any{"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
	cfg := map[string]any{"tokenizer_class": "CLIPTokenizer", "model_max_length": modelMaxLength, "do_lower_case": true}
	for k, val := range special {
		cfg[k] = val
	}
	files := map[string]any{"vocab.json": v.Tokens, "tokenizer_config.json": cfg, "special_tokens_map.json": special}
	for name, val := range files {
		if err := writeJSON(filepath.Join(dir, name), val); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "merges.txt"), []byte(merges.String()), 0o644)
}

// writeJSON writes v as indented JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readVocab reads vocab.json and merges.txt of a tokenizer directory.
func readVocab(dir string) (*Vocab, error) {
	v := &Vocab{}
	b, err := os.ReadFile(filepath.Join(dir, "vocab.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &v.Tokens); err != nil {
		return nil, fmt.Errorf("%s/vocab.json: %w", dir, err)
	}
	m, err := os.ReadFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(m), "\n") {
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		a, b, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s/merges.txt line %d: %q is not a pair", dir, i+1, line)
		}
		v.Merges = append(v.Merges, [2]string{a, b})
	}
	return v, nil
}

// mustJSON marshals a value that cannot fail to marshal (maps of plain
// values built in this package).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

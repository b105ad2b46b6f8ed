package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pigment-ai/pigment/diffusion/clip"
)

// runTokenize prints the token ids the pipeline would feed the text encoder
// for TEXT: BOS, the BPE ids, EOS, padded with the model's pad token to 77.
// The last line of the output is the JSON array.
func runTokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tokenize", stderr)
	model := fs.String("model", "", "diffusers model directory (its tokenizer/ folder is used)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment tokenize --model DIR TEXT")
		printDefaults(fs, stderr)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *model == "" {
		return usagef("--model is required")
	}
	if len(pos) == 0 {
		return usagef("missing TEXT to tokenize")
	}
	tok, err := clip.LoadTokenizer(filepath.Join(*model, "tokenizer"))
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	ids, truncated := tok.EncodePadded(strings.Join(pos, " "))
	if truncated {
		fmt.Fprintf(stderr, "warning: prompt longer than %d tokens was truncated\n", tok.MaxLength)
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

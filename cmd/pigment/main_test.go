package main

// Tests of the command line through run(ctx, args, stdout, stderr), the
// same entry point main uses. Token ids are checked against the reference
// tokenizer cases in ../shared/refs/cases/<pipeline>/cases.json (computed by
// transformers' CLIPTokenizer as
//
//	tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids
//
// see the refs README); those tests skip when the data is absent. No test
// runs an actual benchmark: every bench case fails validation first.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/internal/refcases"

	"github.com/pigment-ai/pigment/internal/tinymodel"
)

// runCLI runs the command line and returns its status, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// lastLineIDs parses the last non-empty line of out as a JSON array of ints.
func lastLineIDs(t *testing.T, out string) []int {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	var ids []int
	if err := json.Unmarshal([]byte(last), &ids); err != nil {
		t.Fatalf("last line of stdout %q is not a JSON array of ints: %v", last, err)
	}
	return ids
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		code       int
		stderrSubs []string
	}{
		{name: "no args", args: nil, code: 2, stderrSubs: []string{"usage: pigment", "tokenize", "bench"}},
		{name: "help", args: []string{"help"}, code: 0, stderrSubs: []string{"usage: pigment"}},
		{name: "--help", args: []string{"--help"}, code: 0, stderrSubs: []string{"usage: pigment"}},
		{name: "unknown command", args: []string{"paint"}, code: 2, stderrSubs: []string{`unknown command "paint"`, "usage: pigment"}},
		{name: "tokenize without --model", args: []string{"tokenize", "a cat"}, code: 2, stderrSubs: []string{"--model"}},
		{name: "tokenize without anything", args: []string{"tokenize"}, code: 2, stderrSubs: []string{"--model"}},
		{name: "tokenize without TEXT", args: []string{"tokenize", "--model", "/nonexistent"}, code: 2, stderrSubs: []string{"TEXT"}},
		{name: "tokenize unknown flag", args: []string{"tokenize", "--modle", "x", "a cat"}, code: 2, stderrSubs: []string{"modle"}},
		{name: "tokenize flag without value", args: []string{"tokenize", "a cat", "--model"}, code: 2, stderrSubs: []string{"model"}},
		{name: "tokenize -h", args: []string{"tokenize", "-h"}, code: 0, stderrSubs: []string{"usage: pigment tokenize"}},
		{name: "tokenize bad model dir", args: []string{"tokenize", "--model", "/nonexistent", "x"}, code: 1,
			stderrSubs: []string{"pigment tokenize:", "/nonexistent", "--model"}},
		{name: "bench without name", args: []string{"bench"}, code: 2, stderrSubs: []string{"unet"}},
		{name: "bench unknown name", args: []string{"bench", "foo"}, code: 2, stderrSubs: []string{"foo", "unet"}},
		{name: "bench two names", args: []string{"bench", "unet", "vae"}, code: 2, stderrSubs: []string{"unet"}},
		{name: "bench width not multiple of 8", args: []string{"bench", "unet", "--width", "63"}, code: 2, stderrSubs: []string{"--width", "63"}},
		{name: "bench width zero", args: []string{"bench", "unet", "--width", "0"}, code: 2, stderrSubs: []string{"--width"}},
		{name: "bench negative height", args: []string{"bench", "--height", "-8", "unet"}, code: 2, stderrSubs: []string{"--height", "-8"}},
		{name: "bench zero batch", args: []string{"bench", "unet", "--batch", "0"}, code: 2, stderrSubs: []string{"--batch"}},
		{name: "bench zero runs", args: []string{"bench", "unet", "--runs", "0"}, code: 2, stderrSubs: []string{"--runs", "0"}},
		{name: "bench huge image", args: []string{"bench", "vae", "--width", "100000", "--height", "100000"}, code: 2, stderrSubs: []string{"--width", "100000x100000"}},
		{name: "bench too many pixels", args: []string{"bench", "unet", "--width", "2048", "--height", "2048"}, code: 2, stderrSubs: []string{"--height", "2048x2048"}},
		{name: "bench huge batch", args: []string{"bench", "text", "--batch", "100000"}, code: 2, stderrSubs: []string{"--batch", "100000"}},
		{name: "bench non-numeric width", args: []string{"bench", "unet", "--width", "wide"}, code: 2, stderrSubs: []string{"width"}},
		{name: "bench -h", args: []string{"bench", "-h"}, code: 0, stderrSubs: []string{"usage: pigment bench", "generate", "-dtype"}},
		{name: "bench bad dtype", args: []string{"bench", "unet", "--dtype", "f8"}, code: 2, stderrSubs: []string{"--dtype", "f8"}},
		{name: "bench bad config", args: []string{"bench", "vae", "--config", "sdxl"}, code: 2, stderrSubs: []string{"--config", "sdxl"}},
		{name: "bench generate zero steps", args: []string{"bench", "generate", "--steps", "0"}, code: 2, stderrSubs: []string{"--steps"}},
		{name: "bench generate bad sampler", args: []string{"bench", "generate", "--sampler", "nope"}, code: 2, stderrSubs: []string{"--sampler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d\nstderr: %s", tt.args, code, tt.code, stderr)
			}
			for _, s := range tt.stderrSubs {
				if !strings.Contains(stderr, s) {
					t.Errorf("run(%q): stderr %q does not mention %q", tt.args, stderr, s)
				}
			}
			if stdout != "" {
				t.Errorf("run(%q) wrote to stdout: %q", tt.args, stdout)
			}
		})
	}
}

// TestTokenizeReference runs `pigment tokenize` on every tokenizer case
// prompt of the reference pipelines and compares the printed ids with the
// reference input_ids.
func TestTokenizeReference(t *testing.T) {
	t.Parallel()
	for _, pipeline := range []string{"tiny-sd15", "tiny-sd2v"} {
		t.Run(pipeline, func(t *testing.T) {
			t.Parallel()
			dir := refcases.ModelDir(t, pipeline)
			set := refcases.Open(t, pipeline)
			cases := set.ByKind("tokenizer")
			if len(cases) == 0 {
				t.Fatalf("no tokenizer cases in %s", set.Dir)
			}
			found := false
			for _, c := range cases {
				prompt := c.String(t, "inputs", "prompt")
				found = found || prompt == "a photo of a cat"
				want := c.Ints(t, "outputs", "input_ids")
				code, stdout, stderr := runCLI(t, "tokenize", "--model", dir, prompt)
				if code != 0 {
					t.Errorf("case %s: tokenize %q = %d\nstderr: %s", c.ID, prompt, code, stderr)
					continue
				}
				if got := lastLineIDs(t, stdout); !slices.Equal(got, want) {
					t.Errorf("case %s: tokenize %q\n got %v\nwant %v", c.ID, prompt, got, want)
				}
				truncated, _ := c.Value(t, "outputs", "truncated").(bool)
				if warned := strings.Contains(stderr, "truncated"); warned != truncated {
					t.Errorf("case %s: truncation warning %v, reference truncated %v (stderr %q)", c.ID, warned, truncated, stderr)
				}
			}
			if !found {
				t.Errorf(`no tokenizer case has the prompt "a photo of a cat"`)
			}
		})
	}
}

// TestTokenizeArgForms checks that the flag may come before or after the
// text, that several words are joined with spaces, and that "--" ends the
// flags.
func TestTokenizeArgForms(t *testing.T) {
	t.Parallel()
	for _, pipeline := range []string{"tiny-sd15", "tiny-sd2v"} {
		t.Run(pipeline, func(t *testing.T) {
			t.Parallel()
			dir := refcases.ModelDir(t, pipeline)
			set := refcases.Open(t, pipeline)
			var want []int
			for _, c := range set.ByKind("tokenizer") {
				if c.String(t, "inputs", "prompt") == "a photo of a cat" {
					want = c.Ints(t, "outputs", "input_ids")
				}
			}
			if want == nil {
				t.Fatalf(`no tokenizer case has the prompt "a photo of a cat"`)
			}
			forms := []struct {
				name string
				args []string
			}{
				{"flag first", []string{"--model", dir, "a photo of a cat"}},
				{"flag last", []string{"a photo of a cat", "--model", dir}},
				{"flag with =", []string{"a photo of a cat", "--model=" + dir}},
				{"single dash", []string{"-model", dir, "a photo of a cat"}},
				{"words split", []string{"a", "photo", "--model", dir, "of", "a", "cat"}},
				{"double dash", []string{"--model", dir, "--", "a", "photo", "of", "a", "cat"}},
			}
			for _, f := range forms {
				t.Run(f.name, func(t *testing.T) {
					code, stdout, stderr := runCLI(t, append([]string{"tokenize"}, f.args...)...)
					if code != 0 {
						t.Fatalf("tokenize %q = %d\nstderr: %s", f.args, code, stderr)
					}
					if got := lastLineIDs(t, stdout); !slices.Equal(got, want) {
						t.Errorf("tokenize %q\n got %v\nwant %v", f.args, got, want)
					}
				})
			}
			// After "--", a flag-like word is text, not a flag.
			code, stdout, stderr := runCLI(t, "tokenize", "--model", dir, "--", "--model")
			if code != 0 {
				t.Fatalf(`tokenize -- --model = %d, stderr: %s`, code, stderr)
			}
			if ids := lastLineIDs(t, stdout); len(ids) != 77 || ids[0] != 49406 {
				t.Errorf(`tokenize -- --model printed %v, want 77 ids starting with BOS`, ids)
			}
		})
	}
}

// TestErrorsOneLine checks that an error joining several problems (every
// block a broken model config fails) is printed on one line.
func TestErrorsOneLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := tinymodel.Write(dir, 1); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "unet", "config.json")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["attention_head_dim"] = 3 // divides none of the blocks' channels
	if b, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "generate", "--model", dir, "--prompt", "x", "--output", filepath.Join(t.TempDir(), "x.png"))
	if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || strings.Count(stderr, "attention heads") < 2 {
		t.Errorf("exit %d, stderr %q: want one line with every block's problem", code, stderr)
	}
}

package tinymodel

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion"
)

func TestWriteLoadsAndGenerates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := Write(dir, 1); err != nil {
		t.Fatal(err)
	}
	m, err := diffusion.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.DefaultSize() != 16 || m.VAEScaleFactor() != 2 {
		t.Fatalf("default size %d, scale factor %d", m.DefaultSize(), m.VAEScaleFactor())
	}
	ids, _ := m.Tokenizer.EncodePadded("a red star")
	if ids[0] != m.Tokenizer.BOS || ids[11] != m.Tokenizer.EOS {
		t.Fatalf("ids %v", ids[:12])
	}
	res, err := m.Generate(context.Background(), diffusion.Request{Prompts: []string{"a red star"}, Steps: 2, GuidanceScale: 7.5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Images[0].Rect.Dx() != 16 {
		t.Fatalf("images %v", res.Images)
	}
}

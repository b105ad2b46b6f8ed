package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/train/shapes"
)

// shippedModel is the default model in the repository, from this package's
// folder.
var shippedModel = filepath.Join("..", "..", defaultModelDir)

// TestShippedModel loads the shipped pigment-tiny and checks that it draws
// what an easy prompt asks for (the analyser of `pigment eval` reads the
// image): the default model must stay loadable and useful.
func TestShippedModel(t *testing.T) {
	if _, err := os.Stat(filepath.Join(shippedModel, "model_index.json")); err != nil {
		t.Skipf("%s is not here (make model trains it)", shippedModel)
	}
	m, err := diffusion.LoadModel(shippedModel)
	if err != nil {
		t.Fatal(err)
	}
	if m.DefaultSize() != 64 {
		t.Errorf("default size %d, want 64", m.DefaultSize())
	}
	res, err := m.Generate(context.Background(), diffusion.Request{
		Prompts: []string{"a large yellow circle on a blue background, top left"}, Steps: 20, GuidanceScale: 3, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := shapes.Analyse(res.Images[0])
	if a.Background != "blue" || !a.Found || a.Colour != "yellow" || a.Position != "top left" {
		t.Errorf("analysed %+v, want a yellow object on blue, top left", a)
	}
}

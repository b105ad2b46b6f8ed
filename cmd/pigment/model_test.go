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
// what the README's quick-start prompts ask for, shape included except for
// the small circle (the analyser of `pigment eval` reads the images): the
// default model must stay loadable and useful, and the README true.
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
	// The README's quick start: the same four prompts, seed and guidance.
	cases := []struct {
		prompt string
		want   shapes.Analysis
	}{
		{"a large yellow star on a blue background, top left", shapes.Analysis{Colour: "yellow", Background: "blue", Position: "top left", Shape: "star", Size: "large"}},
		{"a small red circle on a white background, center", shapes.Analysis{Colour: "red", Background: "white", Position: "center", Size: "small"}},
		{"a large green heart on a black background, bottom right", shapes.Analysis{Colour: "green", Background: "black", Position: "bottom right", Shape: "heart", Size: "large"}},
		{"a large purple square on an orange background, top right", shapes.Analysis{Colour: "purple", Background: "orange", Position: "top right", Shape: "square", Size: "large"}},
	}
	var prompts []string
	for _, c := range cases {
		prompts = append(prompts, c.prompt)
	}
	res, err := m.Generate(context.Background(), diffusion.Request{Prompts: prompts, Steps: 20, GuidanceScale: 3, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		a := shapes.Analyse(res.Images[i])
		got := shapes.Analysis{Colour: a.Colour, Background: a.Background, Position: a.Position, Shape: a.Shape, Size: a.Size}
		if c.want.Shape == "" {
			got.Shape = ""
		}
		if !a.Found || got != c.want {
			t.Errorf("%q: analysed %+v, want %+v", c.prompt, a, c.want)
		}
	}
}

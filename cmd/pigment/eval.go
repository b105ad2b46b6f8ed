package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/train"
	"github.com/pigment-ai/pigment/diffusion/train/shapes"
)

// evalReport is the outcome of `pigment eval`.
type evalReport struct {
	Model    string             `json:"model"`
	Captions int                `json:"captions"`
	Steps    int                `json:"steps"`
	Sampler  string             `json:"sampler"`
	Guidance float64            `json:"guidance_scale"`
	Accuracy map[string]float64 `json:"accuracy"` // fraction of captions whose attribute is present
	// SecondsPerImage is wall time per generated 64x64 image, including
	// text encoding and VAE decoding.
	SecondsPerImage float64 `json:"seconds_per_image"`
}

// runEval generates an image for each held-out caption of the shapes data
// set and measures, with the deterministic analyser of package shapes, how
// often each attribute the caption asks for is present.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	model := fs.String("model", "models/pigment-tiny", "model directory trained on the shapes data set")
	n := fs.Int("captions", 200, "held-out captions to evaluate")
	steps := fs.Int("steps", 20, "denoising steps")
	guidance := fs.Float64("cfg-scale", 3, "classifier-free guidance scale, 0 to 100 (as generate's --cfg-scale)")
	fs.Float64Var(guidance, "guidance-scale", 3, "the same as --cfg-scale")
	samplerName := fs.String("sampler", "", "sampler (default: the model's)")
	batch := fs.Int("batch", 8, "captions generated together")
	outDir := fs.String("out", "", "folder to save every image and its analysis to (optional)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment eval [--model DIR] [--captions 200] [--json]")
		printDefaults(fs, stderr)
	}
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *n < 1 || *n > 10000 {
		return usagef("--captions must be in [1, 10000], got %d", *n)
	}
	if *batch < 1 || *batch > 64 {
		return usagef("--batch must be in [1, 64], got %d", *batch)
	}
	if *steps < 1 || *steps > diffusion.MaxSteps {
		return usagef("--steps must be in [1, %d], got %d", diffusion.MaxSteps, *steps)
	}
	if !(*guidance >= 0 && *guidance <= 100) {
		return usagef("--cfg-scale (--guidance-scale) must be between 0 and 100, got %g", *guidance)
	}
	var kind sampling.Kind
	if *samplerName != "" {
		k, err := sampling.ParseKind(*samplerName)
		if err != nil {
			return usagef("--sampler: %v", err)
		}
		kind = k
	}
	m, err := diffusion.LoadModel(*model)
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			return err
		}
	}
	scenes := shapes.EvalSet(*n)
	correct := map[string]int{}
	var used sampling.Kind
	start := time.Now()
	for first := 0; first < len(scenes); first += *batch {
		part := scenes[first:min(first+*batch, len(scenes))]
		prompts := make([]string, len(part))
		for i, s := range part {
			prompts[i] = shapes.CanonicalCaption(s.Objects[0], s.Background)
		}
		res, err := m.Generate(ctx, diffusion.Request{
			Prompts: prompts, Width: 64, Height: 64, Steps: *steps, GuidanceScale: *guidance,
			Sampler: kind, Seed: uint64(first),
		})
		if err != nil {
			return err
		}
		used = res.Sampler
		for i, img := range res.Images {
			verdict, a := train.Score(part[i], img)
			for k, ok := range verdict {
				if ok {
					correct[k]++
				}
			}
			if *outDir != "" {
				name := fmt.Sprintf("%03d", first+i)
				if err := saveEvalImage(filepath.Join(*outDir, name+".png"), img, prompts[i], a); err != nil {
					return err
				}
			}
		}
		fmt.Fprintf(stderr, "eval: %d/%d captions\n", first+len(part), len(scenes))
	}
	rep := evalReport{Model: *model, Captions: len(scenes), Steps: *steps, Sampler: string(used), Guidance: *guidance,
		Accuracy: map[string]float64{}, SecondsPerImage: time.Since(start).Seconds() / float64(len(scenes))}
	for _, a := range train.Attributes {
		rep.Accuracy[a] = float64(correct[a]) / float64(len(scenes))
	}
	if *asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	fmt.Fprintf(stdout, "model %s, %d held-out captions, %d steps of %s, guidance %.1f\n", rep.Model, rep.Captions, rep.Steps, rep.Sampler, rep.Guidance)
	fmt.Fprintf(stdout, "%-12s %s\n", "attribute", "present")
	for _, a := range train.Attributes {
		fmt.Fprintf(stdout, "%-12s %5.1f%%\n", a, 100*rep.Accuracy[a])
	}
	fmt.Fprintf(stdout, "time per 64x64 image: %.3f s\n", rep.SecondsPerImage)
	return nil
}

// saveEvalImage writes img with the prompt and the analyser's findings in
// its PNG text.
func saveEvalImage(path string, img image.Image, prompt string, a shapes.Analysis) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	found, _ := json.Marshal(a)
	if err := imageio.EncodePNG(f, img, map[string]string{"prompt": prompt, "analysis": string(found)}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

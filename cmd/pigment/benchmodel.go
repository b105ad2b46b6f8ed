package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/sampling"
)

// benchModelResult is the JSON of `pigment bench model`.
type benchModelResult struct {
	Model           string  `json:"model"`
	Width           int     `json:"width"`
	Height          int     `json:"height"`
	Steps           int     `json:"steps"`
	Sampler         string  `json:"sampler"`
	Guidance        float64 `json:"guidance_scale"`
	Batch           int     `json:"batch"`
	Images          int     `json:"images"`
	Seconds         float64 `json:"seconds"`
	ImagesPerSecond float64 `json:"images_per_second"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	Threads         int     `json:"threads"`
}

// benchModel generates images with the model in dir, batch prompts per
// Generate call (each with classifier-free guidance at 5), and reports the
// throughput after one untimed warm-up batch. A width of 512 (the flag's
// SD default) means the model's default size.
func benchModel(ctx context.Context, dir string, width, height, steps, batch, images int, kind sampling.Kind, log io.Writer) (benchModelResult, error) {
	m, err := diffusion.LoadModel(dir)
	if err != nil {
		return benchModelResult{}, fmt.Errorf("--model: %w", err)
	}
	if width == 512 && height == 512 {
		width, height = m.DefaultSize(), m.DefaultSize()
	}
	const guidance = 5
	req := func(n int, seed uint64) diffusion.Request {
		prompts := make([]string, n)
		for i := range prompts {
			prompts[i] = "a large red circle on a blue background, center"
		}
		return diffusion.Request{Prompts: prompts, Width: width, Height: height, Steps: steps, GuidanceScale: guidance, Sampler: kind, Seed: seed}
	}
	res, err := m.Generate(ctx, req(min(batch, images), 0)) // warm-up
	if err != nil {
		return benchModelResult{}, err
	}
	start := time.Now()
	for done := 0; done < images; done += batch {
		if _, err := m.Generate(ctx, req(min(batch, images-done), uint64(done+1))); err != nil {
			return benchModelResult{}, err
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(log, "generated %d images in %.2f s\n", images, secs)
	return benchModelResult{
		Model: dir, Width: width, Height: height, Steps: steps, Sampler: string(res.Sampler), Guidance: guidance,
		Batch: batch, Images: images, Seconds: secs, ImagesPerSecond: float64(images) / secs,
		PeakRSSMB: peakRSSMB(), Threads: runtime.GOMAXPROCS(0),
	}, nil
}

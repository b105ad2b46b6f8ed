package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
	"github.com/pigment-ai/pigment/internal/tinymodel"
)

// generateResult is what `pigment bench generate … --json` prints.
type generateResult struct {
	Name    string `json:"name"` // "generate"
	Config  string `json:"config"`
	DType   string `json:"dtype"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Steps   int    `json:"steps"`
	Sampler string `json:"sampler"`
	// UNetCalls is the number of denoising iterations, each one guided UNet
	// pass of batch 2 (PNDM runs steps+1 for more than one step).
	UNetCalls int `json:"unet_calls"`
	// Seconds is the whole generation: prompt encoding, denoising and VAE
	// decode, as the service runs it (model building excluded).
	Seconds float64 `json:"seconds"`
	// StepSeconds is the mean time of one denoising iteration after the
	// first (UNet pass, guidance and sampler update); with a single
	// iteration, that iteration.
	StepSeconds float64 `json:"seconds_per_step"`
	// FirstStepSeconds is from the start to the end of the first iteration,
	// so it includes prompt encoding and the initial latents.
	FirstStepSeconds float64 `json:"first_step_seconds"`
	// VAEDecodeSeconds is from the end of the last iteration to the end.
	VAEDecodeSeconds float64 `json:"vae_decode_seconds"`
	GFLOP            float64 `json:"gflop"` // through the BLAS interface, whole generation
	PeakRSSMB        float64 `json:"peak_rss_mb"`
	Threads          int     `json:"threads"`
	LoadSeconds      float64 `json:"load_seconds"` // building the random model
}

// benchPrompt is the prompt of bench generate; with the byte-level
// tokenizer each byte is one token.
const benchPrompt = "a photograph of an astronaut riding a horse"

// sd15SchedulerConfig is Stable Diffusion 1.5's scheduler/scheduler_config.json.
const sd15SchedulerConfig = `{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}`

// randomModel builds a diffusion.Model of configuration c with random
// weights (seeded with seed, seed+1, seed+2), SD 1.5's scheduler config and
// internal/tinymodel's byte-level tokenizer, whose ids fit any CLIP
// vocabulary.
func randomModel(c benchConfig, seed uint64) (*diffusion.Model, error) {
	tok, err := clip.NewTokenizer(tinymodel.Vocab(), nil, "")
	if err != nil {
		return nil, err
	}
	w := c.weights(seed)
	text := clip.NewTextModel(w, c.text)
	if err := w.Err(); err != nil {
		return nil, err
	}
	u, err := unet.New(c.weights(seed+1), c.unet)
	if err != nil {
		return nil, err
	}
	v, err := vae.New(c.weights(seed+2), c.vae)
	if err != nil {
		return nil, err
	}
	sched, err := sampling.ParseConfig([]byte(sd15SchedulerConfig))
	if err != nil {
		return nil, err
	}
	return diffusion.NewModel("random-"+c.name, tok, text, u, v, sched)
}

// benchGenerate builds a random model of c and times one txt2img generation
// of a width x height image with steps steps, guidance scale 7.5 and the
// given sampler ("" for the model's own).
func benchGenerate(ctx context.Context, c benchConfig, width, height, steps int, sampler sampling.Kind, seed uint64, log io.Writer) (generateResult, error) {
	t0 := time.Now()
	m, err := randomModel(c, seed)
	if err != nil {
		return generateResult{}, err
	}
	load := time.Since(t0)
	fmt.Fprintf(log, "built random %s model in %.1f s\n", c.name, load.Seconds())

	var marks []time.Time
	req := diffusion.Request{
		Prompts: []string{benchPrompt}, Width: width, Height: height, Steps: steps,
		GuidanceScale: 7.5, Sampler: sampler, Seed: seed,
		Progress: func(p diffusion.Progress) {
			marks = append(marks, time.Now())
			fmt.Fprintf(log, "step %d/%d: %.2f s\n", p.Step, p.Steps, marks[len(marks)-1].Sub(t0).Seconds())
		},
	}
	f0 := tensor.FLOPs()
	t0 = time.Now()
	res, err := m.Generate(ctx, req)
	if err != nil {
		return generateResult{}, err
	}
	end := time.Now()
	if len(marks) == 0 {
		return generateResult{}, fmt.Errorf("generate reported no steps")
	}
	dtype := "f32"
	for name, k := range benchDTypes {
		if k == c.dtype {
			dtype = name
		}
	}
	r := generateResult{
		Name: "generate", Config: c.name, DType: dtype, Width: width, Height: height, Steps: steps,
		Sampler: string(res.Sampler), UNetCalls: len(marks),
		Seconds:          end.Sub(t0).Seconds(),
		FirstStepSeconds: marks[0].Sub(t0).Seconds(),
		StepSeconds:      marks[0].Sub(t0).Seconds(),
		VAEDecodeSeconds: end.Sub(marks[len(marks)-1]).Seconds(),
		GFLOP:            float64(tensor.FLOPs()-f0) / 1e9,
		PeakRSSMB:        peakRSSMB(),
		Threads:          runtime.GOMAXPROCS(0),
		LoadSeconds:      load.Seconds(),
	}
	if n := len(marks); n > 1 {
		r.StepSeconds = marks[n-1].Sub(marks[0]).Seconds() / float64(n-1)
	}
	return r, nil
}

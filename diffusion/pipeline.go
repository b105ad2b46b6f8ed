package diffusion

import (
	"context"
	"fmt"
	"image"
	"math"

	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/rng"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Limits on a Request, shared by the CLI and the service.
const (
	MaxSteps          = 150
	MaxImagesPerBatch = 16
	MaxSide           = 2048 // pixels
)

// Request is one text-to-image or image-to-image generation, in the terms of
// diffusers' StableDiffusionPipeline / StableDiffusionImg2ImgPipeline.
type Request struct {
	Prompts []string
	// NegativePrompts is empty, one prompt for all, or one per prompt.
	NegativePrompts []string
	// NumImagesPerPrompt is diffusers' num_images_per_prompt (0 means 1).
	NumImagesPerPrompt int
	// Width and Height in pixels, multiples of the model's VAE scale
	// factor; 0 means the model's default size.
	Width, Height int
	Steps         int     // num_inference_steps, 1..MaxSteps
	GuidanceScale float64 // classifier-free guidance; ≤ 1 disables it
	// GuidanceRescale is diffusers' guidance_rescale (Lin et al. 2023,
	// "Common Diffusion Noise Schedules and Sample Steps are Flawed"), in [0, 1].
	GuidanceRescale float64
	// Sampler is the scheduler to use; "" means the model's own.
	Sampler sampling.Kind
	Seed    uint64
	// RNG is "cpu" (torch CPU generator, the default) or "cuda" (torch's
	// CUDA Philox generator).
	RNG string
	// ClipSkip has AUTOMATIC1111's meaning: 0 or 1 uses the text encoder's
	// last layer, 2 the penultimate, and so on (diffusers' clip_skip = N−1).
	ClipSkip int
	Eta      float64 // DDIM eta, ≥ 0

	// InitImage, when set, makes this an image-to-image request: an image
	// [1, 3, Height, Width] with values in [-1, 1] (imageio.ToTensor).
	InitImage *tensor.Tensor
	// Strength in (0, 1] is how much of the schedule img2img runs.
	Strength float64

	// Progress, if set, is called after every denoising step.
	Progress func(Progress)
}

// Progress reports one finished denoising step.
type Progress struct {
	Step, Steps int     // 1-based step just finished, and the total
	Timestep    float64 // the model timestep of that step
}

// Result is the outcome of Generate.
type Result struct {
	// Latents are the final latents [B, C, H/f, W/f] before VAE decoding.
	Latents *tensor.Tensor
	// Images are the decoded images in diffusers' order (prompt-major:
	// p0 img0, p0 img1, p1 img0, …).
	Images []*image.NRGBA
	// Parameters holds, per image, the AUTOMATIC1111-style description of
	// the generation (the PNG "parameters" text).
	Parameters []string
	Sampler    sampling.Kind
	Width      int
	Height     int
}

// FieldError is a Request validation error naming the offending field in
// the API's terms (prompt, steps, width, …).
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Resolve fills the model defaults into r (size, sampler) and validates
// every field against m, returning a *FieldError on the first bad one.
func (m *Model) Resolve(r *Request) error {
	f := m.VAEScaleFactor()
	if r.Width == 0 {
		r.Width = m.DefaultSize()
	}
	if r.Height == 0 {
		r.Height = m.DefaultSize()
	}
	if r.NumImagesPerPrompt == 0 {
		r.NumImagesPerPrompt = 1
	}
	if r.RNG == "" {
		r.RNG = "cpu"
	}
	maxSide, maxPixels := SizeLimits(m.DefaultSize())
	if r.Sampler == "" {
		k, err := sampling.DefaultKind(m.Scheduler)
		if err != nil {
			return fieldErr("sampler", "the model's scheduler: %v", err)
		}
		r.Sampler = k
	}
	switch {
	case len(r.Prompts) == 0:
		return fieldErr("prompt", "at least one prompt is required")
	case len(r.NegativePrompts) > 1 && len(r.NegativePrompts) != len(r.Prompts):
		return fieldErr("negative_prompt", "give one negative prompt for all prompts or one per prompt (%d prompts, %d negative prompts)", len(r.Prompts), len(r.NegativePrompts))
	case r.NumImagesPerPrompt < 0 || len(r.Prompts)*r.NumImagesPerPrompt > MaxImagesPerBatch:
		return fieldErr("n", "at most %d images per request (%d prompts × %d images)", MaxImagesPerBatch, len(r.Prompts), r.NumImagesPerPrompt)
	case r.Width <= 0 || r.Width%f != 0 || r.Width > maxSide:
		return fieldErr("width", "must be a positive multiple of %d up to %d, got %d", f, maxSide, r.Width)
	case r.Height <= 0 || r.Height%f != 0 || r.Height > maxSide:
		return fieldErr("height", "must be a positive multiple of %d up to %d, got %d", f, maxSide, r.Height)
	case r.Width*r.Height > maxPixels:
		return fieldErr("width", "%dx%d is more than this model's %d pixels (8x its default area)", r.Width, r.Height, maxPixels)
	case r.Steps < 1 || r.Steps > MaxSteps:
		return fieldErr("steps", "must be between 1 and %d, got %d", MaxSteps, r.Steps)
	case !finite(r.GuidanceScale) || r.GuidanceScale < 0 || r.GuidanceScale > 100:
		return fieldErr("guidance_scale", "must be between 0 and 100, got %g", r.GuidanceScale)
	case !finite(r.GuidanceRescale) || r.GuidanceRescale < 0 || r.GuidanceRescale > 1:
		return fieldErr("guidance_rescale", "must be between 0 and 1, got %g", r.GuidanceRescale)
	case r.ClipSkip < 0 || r.ClipSkip > m.TextEncoder.Config().NumHiddenLayers:
		return fieldErr("clip_skip", "must be between 1 and %d (the text encoder's layer count), got %d", m.TextEncoder.Config().NumHiddenLayers, r.ClipSkip)
	case !finite(r.Eta) || r.Eta < 0 || r.Eta > 10:
		return fieldErr("eta", "must be between 0 and 10, got %g", r.Eta)
	case r.RNG != "cpu" && r.RNG != "cuda":
		return fieldErr("rng", "must be cpu or cuda, got %q", r.RNG)
	}
	if r.InitImage != nil {
		if s := r.InitImage.Shape; len(s) != 4 || s[0] != 1 || s[1] != 3 || s[2] != r.Height || s[3] != r.Width {
			return fieldErr("init_image", "image tensor %v does not match the requested %dx%d", r.InitImage.Shape, r.Width, r.Height)
		}
		if !(r.Strength > 0 && r.Strength <= 1) {
			return fieldErr("strength", "must be in (0, 1], got %g", r.Strength)
		}
	}
	return nil
}

// SizeLimits returns the largest side and the largest width·height in
// pixels for a model whose default image size is defaultSize: sides up to 4×
// the default (at most MaxSide) and areas up to 8× the default area (for SD
// 1.5: 2048x1024 or 1448x1448). Attention cost grows with the square of the
// pixel count, so far larger images would tie a CPU worker up for hours.
func SizeLimits(defaultSize int) (maxSide, maxPixels int) {
	return min(4*defaultSize, MaxSide), 8 * defaultSize * defaultSize
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Generate runs the whole pipeline: encode the prompts, draw the initial
// latents (or encode and noise the init image), run the sampler with
// classifier-free guidance, decode with the VAE. It follows diffusers
// 0.27.2's StableDiffusionPipeline.__call__ and
// StableDiffusionImg2ImgPipeline.__call__ step for step, including the order
// of random draws, so the same seed gives the same image.
// It returns a *FieldError for an invalid request and ctx.Err() if ctx is
// cancelled (checked between denoising steps).
func (m *Model) Generate(ctx context.Context, r Request) (*Result, error) {
	if err := m.Resolve(&r); err != nil {
		return nil, err
	}
	sched, err := sampling.New(r.Sampler, m.Scheduler)
	if err != nil {
		return nil, fieldErr("sampler", "%v", err)
	}
	plan, err := sched.Plan(r.Steps)
	if err != nil {
		return nil, fieldErr("steps", "%v", err)
	}
	noise, err := rng.New(r.RNG, r.Seed)
	if err != nil {
		return nil, fieldErr("rng", "%v", err)
	}

	// 1. Encode the prompts: [negatives…, positives…] with guidance.
	cfg := r.GuidanceScale > 1
	n := r.NumImagesPerPrompt
	batch := len(r.Prompts) * n
	encoderHiddenStates, err := m.encodePrompts(r, cfg)
	if err != nil {
		return nil, err
	}

	// 2. Initial latents.
	f := m.VAEScaleFactor()
	scaling := float32(m.VAE.Config.ScalingFactor)
	start := 0
	var latents *tensor.Tensor
	if r.InitImage == nil {
		latents = noise.Randn(batch, m.UNet.Config.InChannels, r.Height/f, r.Width/f)
		if s := float32(plan.InitNoiseSigma); s != 1 {
			tensor.Scale(latents, s)
		}
	} else {
		if start, err = sched.Img2ImgStart(plan, r.Steps, r.Strength); err != nil {
			return nil, fieldErr("strength", "%v", err)
		}
		dist := m.VAE.Encode(r.InitImage)
		imageLatents := tensor.Scale(dist.Sample(noise.Randn(dist.Mean.Shape...)), scaling)
		imageLatents = tensor.Repeat(imageLatents, batch)
		latents = sched.AddNoise(imageLatents, noise.Randn(imageLatents.Shape...), plan, start)
	}

	// 3. Denoise.
	model := func(ctx context.Context, x *tensor.Tensor, t float64) (*tensor.Tensor, error) {
		return m.guidedNoisePred(x, t, encoderHiddenStates, r.GuidanceScale, r.GuidanceRescale, cfg), nil
	}
	total := len(plan.Timesteps) - start
	latents, err = sched.Sample(ctx, model, latents, plan, sampling.Options{
		Eta:   r.Eta,
		Noise: noise,
		Start: start,
		Callback: func(s sampling.Step) error {
			if r.Progress != nil {
				r.Progress(Progress{Step: s.I - start + 1, Steps: total, Timestep: s.T})
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}

	// 4. Decode, one image at a time to bound memory. The pooled
	// activations of the denoising loop are the UNet's sizes, not the
	// decoder's: drop them first so they do not add to its peak.
	tensor.DrainPool()
	res := &Result{Latents: latents, Sampler: r.Sampler, Width: r.Width, Height: r.Height}
	for i, one := range tensor.Split(latents, ones(batch)...) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		z := one.Clone()
		for j := range z.Data {
			z.Data[j] /= scaling
		}
		res.Images = append(res.Images, imageio.FromTensor(m.decode(z, r.Width, r.Height))...)
		p := i / n
		res.Parameters = append(res.Parameters, m.parameters(r, r.Prompts[p], negativeFor(r, p), i))
	}
	return res, nil
}

// TiledDecodePixels is the image size (width·height) above which the VAE
// decodes in tiles (vae.DecodeTiled), bounding its memory: beyond 1024x1024
// an SD decoder's activations would take gigabytes.
const TiledDecodePixels = 1024 * 1024

// decode runs the VAE decoder on z [1, C, h, w] (already divided by the
// scaling factor), tiling large images in tiles of the VAE's training size.
func (m *Model) decode(z *tensor.Tensor, width, height int) *tensor.Tensor {
	if width*height <= TiledDecodePixels {
		return m.VAE.Decode(z)
	}
	tile := max(m.VAE.Config.SampleSize/m.VAEScaleFactor(), 16)
	return m.VAE.DecodeTiled(z, tile)
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

func negativeFor(r Request, p int) string {
	switch len(r.NegativePrompts) {
	case 0:
		return ""
	case 1:
		return r.NegativePrompts[0]
	}
	return r.NegativePrompts[p]
}

// encodePrompts returns encoder_hidden_states [B·n (×2 with guidance), 77, D]
// as diffusers' encode_prompt builds them: each prompt's embedding repeated
// n times in place (p0, p0, p1, p1, …), negatives first. As in diffusers
// 0.27, clip skip applies to the prompts but not to the negative prompts.
func (m *Model) encodePrompts(r Request, cfg bool) (*tensor.Tensor, error) {
	clipSkip := max(r.ClipSkip-1, 0)
	pos, err := m.encodeText(r.Prompts, clipSkip, r.NumImagesPerPrompt)
	if err != nil {
		return nil, err
	}
	if !cfg {
		return pos, nil
	}
	negs := make([]string, len(r.Prompts))
	for i := range negs {
		negs[i] = negativeFor(r, i)
	}
	neg, err := m.encodeText(negs, 0, r.NumImagesPerPrompt)
	if err != nil {
		return nil, err
	}
	return tensor.Concat(0, neg, pos), nil
}

func (m *Model) encodeText(texts []string, clipSkip, n int) (*tensor.Tensor, error) {
	var ids []int
	for _, t := range texts {
		p, _ := m.Tokenizer.EncodePadded(t)
		for i := 0; i < n; i++ {
			ids = append(ids, p...)
		}
	}
	return m.TextEncoder.Forward(ids, len(texts)*n, clipSkip)
}

// guidedNoisePred runs the UNet on x [B, C, h, w] at timestep t and applies
// classifier-free guidance (Ho & Salimans 2022): with guidance, x is
// duplicated into one batch [x; x] against [negative; positive] embeddings,
// and noise_pred = uncond + scale·(text − uncond), then rescaled by
// guidance_rescale as diffusers' rescale_noise_cfg does. This is the only
// place guidance is wired.
func (m *Model) guidedNoisePred(x *tensor.Tensor, t float64, encoderHiddenStates *tensor.Tensor, scale, rescale float64, cfg bool) *tensor.Tensor {
	in := x
	if cfg {
		in = tensor.Concat(0, x, x)
	}
	noisePred := m.UNet.Forward(in, []float32{float32(t)}, encoderHiddenStates)
	if !cfg {
		return noisePred
	}
	b := x.Shape[0]
	parts := tensor.Split(noisePred, b, b)
	uncond, text := parts[0], parts[1]
	out := tensor.New(x.Shape...)
	s := float32(scale)
	for i := range out.Data {
		out.Data[i] = uncond.Data[i] + s*(text.Data[i]-uncond.Data[i])
	}
	if rescale > 0 {
		rescaleNoiseCFG(out, text, float32(rescale))
	}
	return out
}

// rescaleNoiseCFG is diffusers' rescale_noise_cfg: per batch item, the
// guided prediction is rescaled to the standard deviation of the text
// prediction, and the result mixed with the guided one by phi:
// cfg = phi·cfg·(std_text/std_cfg) + (1−phi)·cfg. std is torch's default
// unbiased estimate over all non-batch dimensions.
func rescaleNoiseCFG(cfg, text *tensor.Tensor, phi float32) {
	b := cfg.Shape[0]
	per := cfg.Len() / b
	for i := 0; i < b; i++ {
		c := cfg.Data[i*per : (i+1)*per]
		stdText := std(text.Data[i*per : (i+1)*per])
		stdCfg := std(c)
		ratio := stdText / stdCfg
		for j, v := range c {
			c[j] = phi*(v*ratio) + (1-phi)*v
		}
	}
}

func std(s []float32) float32 {
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	mean := sum / float64(len(s))
	var sq float64
	for _, v := range s {
		d := float64(v) - mean
		sq += d * d
	}
	return float32(math.Sqrt(sq / float64(len(s)-1)))
}

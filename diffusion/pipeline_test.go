package diffusion

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// The txt2img/img2img references are diffusers 0.27.2 pipelines run on CPU
// in float32 (../shared/refs/README.md, kinds txt2img and img2img):
//
//	pipe = StableDiffusionPipeline.from_pretrained(dir, safety_checker=None)
//	pipe.scheduler = Class.from_config(pipe.scheduler.config)
//	out = pipe(**inputs, generator=torch.Generator("cpu").manual_seed(seed))
//
// We compare the final latents (acceptance 1e-3) and the decoded uint8
// images (acceptance ±2 per pixel) and log the worst difference seen.
func TestPipelineGolden(t *testing.T) {
	for _, pipeline := range []string{"tiny-sd15", "tiny-sd2v", "tiny-sd15-fp16"} {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			m, err := LoadModel(refcases.ModelDir(t, pipeline))
			if err != nil {
				t.Fatal(err)
			}
			cases := append(set.ByKind("txt2img"), set.ByKind("img2img")...)
			if len(cases) == 0 {
				t.Fatal("no pipeline cases")
			}
			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					if testing.Short() && c.ID != "txt2img/default_4" {
						t.Skip("-short: only txt2img/default_4")
					}
					req := requestFromCase(t, set, c)
					res, err := m.Generate(context.Background(), req)
					if err != nil {
						t.Fatal(err)
					}
					want := set.CaseTensor(t, c, "outputs", "final_latents")
					d := refcases.Close(t, "final_latents", res.Latents, want, 1e-3)
					wantPx := set.CaseTensor(t, c, "outputs", "image_uint8")
					var got []float32
					for _, img := range res.Images {
						for y := 0; y < img.Rect.Dy(); y++ {
							for x := 0; x < img.Rect.Dx(); x++ {
								o := img.PixOffset(x, y)
								for ch := 0; ch < 3; ch++ {
									got = append(got, float32(img.Pix[o+ch]))
								}
							}
						}
					}
					px := refcases.Close(t, "image_uint8", tensor.FromData(got, wantPx.Shape...), wantPx, 2)
					off := 0
					for i, v := range got {
						if v != wantPx.Data[i] {
							off++
						}
					}
					t.Logf("%s: latents max abs diff %.3g, pixels max diff %g (%d of %d differ)", c.ID, d, px, off, len(got))
				})
			}
		})
	}
}

// requestFromCase turns a reference case's diffusers arguments into a
// Request. diffusers' clip_skip k is AUTOMATIC1111's k+1.
func requestFromCase(t *testing.T, set *refcases.Set, c refcases.Case) Request {
	t.Helper()
	r := Request{
		Prompts:            c.Strings(t, "inputs", "prompt"),
		Steps:              c.Int(t, "inputs", "num_inference_steps"),
		GuidanceScale:      c.Float(t, "inputs", "guidance_scale"),
		Seed:               uint64(c.Int(t, "params", "seed")),
		NumImagesPerPrompt: 1,
	}
	if c.Has("inputs", "negative_prompt") {
		r.NegativePrompts = c.Strings(t, "inputs", "negative_prompt")
	}
	if c.Has("inputs", "num_images_per_prompt") {
		r.NumImagesPerPrompt = c.Int(t, "inputs", "num_images_per_prompt")
	}
	if c.Has("inputs", "width") {
		r.Width, r.Height = c.Int(t, "inputs", "width"), c.Int(t, "inputs", "height")
	}
	if c.Has("inputs", "eta") {
		r.Eta = c.Float(t, "inputs", "eta")
	}
	if c.Has("inputs", "clip_skip") {
		r.ClipSkip = c.Int(t, "inputs", "clip_skip") + 1
	}
	if c.Has("inputs", "guidance_rescale") {
		r.GuidanceRescale = c.Float(t, "inputs", "guidance_rescale")
	}
	if s := c.String(t, "params", "scheduler"); s != "default" {
		k, err := sampling.ParseKind(s)
		if err != nil {
			t.Fatal(err)
		}
		r.Sampler = k
	}
	if c.Kind == "img2img" {
		f, err := os.Open(set.Path(c.String(t, "inputs", "image_png")))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, _, err := imageio.Decode(f, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		r.Width, r.Height = b.Dx(), b.Dy()
		r.InitImage = imageio.ToTensor(img, r.Width, r.Height)
		r.Strength = c.Float(t, "inputs", "strength")
	}
	return r
}

func TestGenerateValidation(t *testing.T) {
	m, err := LoadModel(refcases.ModelDir(t, "tiny-sd15"))
	if err != nil {
		t.Fatal(err)
	}
	ok := Request{Prompts: []string{"a cat"}, Steps: 2, GuidanceScale: 7.5}
	cases := []struct {
		field  string
		modify func(*Request)
	}{
		{"prompt", func(r *Request) { r.Prompts = nil }},
		{"steps", func(r *Request) { r.Steps = 0 }},
		{"steps", func(r *Request) { r.Steps = MaxSteps + 1 }},
		{"width", func(r *Request) { r.Width = 33 }},
		{"height", func(r *Request) { r.Height = -2 }},
		{"width", func(r *Request) { r.Width = MaxSide + 2 }},
		{"guidance_scale", func(r *Request) { r.GuidanceScale = math.NaN() }},
		{"guidance_rescale", func(r *Request) { r.GuidanceRescale = 1.5 }},
		{"negative_prompt", func(r *Request) { r.NegativePrompts = []string{"a", "b"} }},
		{"n", func(r *Request) { r.NumImagesPerPrompt = MaxImagesPerBatch + 1 }},
		{"clip_skip", func(r *Request) { r.ClipSkip = 99 }},
		{"eta", func(r *Request) { r.Eta = -1 }},
		{"rng", func(r *Request) { r.RNG = "gpu" }},
		{"strength", func(r *Request) { r.InitImage = tensor.New(1, 3, 32, 32); r.Strength = 0 }},
		{"strength", func(r *Request) { r.InitImage = tensor.New(1, 3, 32, 32); r.Strength = 1.01 }},
		{"init_image", func(r *Request) { r.InitImage = tensor.New(1, 3, 16, 32); r.Strength = 0.5 }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			r := ok
			c.modify(&r)
			_, err := m.Generate(context.Background(), r)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("err = %v, want a FieldError for %q", err, c.field)
			}
		})
	}
}

func TestGenerateCancel(t *testing.T) {
	m, err := LoadModel(refcases.ModelDir(t, "tiny-sd15"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	r := Request{Prompts: []string{"a cat"}, Steps: 50, GuidanceScale: 7.5, Progress: func(p Progress) {
		steps = p.Step
		if p.Step == 2 {
			cancel()
		}
	}}
	_, err = m.Generate(ctx, r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if steps != 2 {
		t.Fatalf("ran %d steps after cancelling at step 2", steps)
	}
}

func TestParametersText(t *testing.T) {
	m, err := LoadModel(refcases.ModelDir(t, "tiny-sd15"))
	if err != nil {
		t.Fatal(err)
	}
	r := Request{Prompts: []string{"a cat, sitting"}, NegativePrompts: []string{"blurry"}, Steps: 2, GuidanceScale: 7.5, Seed: 42, Sampler: "euler_a", ClipSkip: 2}
	res, err := m.Generate(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("a cat, sitting\nNegative prompt: blurry\nSteps: 2, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 32x32, Model: %s, Clip skip: 2, RNG: CPU", filepath.Base(m.Dir))
	if res.Parameters[0] != want {
		t.Fatalf("parameters =\n%s\nwant\n%s", res.Parameters[0], want)
	}
}

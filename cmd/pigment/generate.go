package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/sampling"
)

// maxInitPixels bounds the init image the CLI will decode (64 Mpx).
const maxInitPixels = 64 << 20

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ", ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// seedFlag accepts any uint64, or -1 for a random seed.
type seedFlag struct {
	value uint64
	set   bool
}

func (s *seedFlag) String() string {
	if !s.set {
		return "random"
	}
	return strconv.FormatUint(s.value, 10)
}

func (s *seedFlag) Set(v string) error {
	if v == "-1" {
		s.set = false
		return nil
	}
	u, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return errors.New("must be an integer from 0 to 18446744073709551615, or -1 for random")
	}
	s.value, s.set = u, true
	return nil
}

// flagOf maps a diffusion.FieldError field to the CLI flag that sets it.
var flagOf = map[string]string{
	"prompt": "--prompt", "negative_prompt": "--negative-prompt", "n": "--batch-size",
	"width": "--width", "height": "--height", "steps": "--steps", "guidance_scale": "--cfg-scale",
	"guidance_rescale": "--guidance-rescale", "sampler": "--sampler", "rng": "--rng",
	"clip_skip": "--clip-skip", "eta": "--eta", "init_image": "--init-image", "strength": "--strength",
}

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("generate", stderr)
	model := fs.String("model", "", "diffusers model directory (default: "+defaultModelDir+", the model shipped with Pigment)")
	var prompts, negatives stringList
	fs.Var(&prompts, "prompt", "prompt; repeat for a batch of prompts (required)")
	fs.Var(&negatives, "negative-prompt", "negative prompt, once for all prompts or once per prompt")
	var seed seedFlag
	fs.Var(&seed, "seed", "seed of the torch-compatible generator (default random, printed)")
	steps := fs.Int("steps", 20, "denoising steps (1-150)")
	cfgScale := fs.Float64("cfg-scale", 7.5, "classifier-free guidance scale (≤ 1 disables guidance)")
	samplerName := fs.String("sampler", "", "ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lms, pndm or an AUTOMATIC1111 name (default: the model's scheduler)")
	width := fs.Int("width", 0, "image width in pixels, a multiple of the VAE scale factor (default: the model's size)")
	height := fs.Int("height", 0, "image height in pixels (default: the model's size)")
	batchSize := fs.Int("batch-size", 1, "images per prompt")
	rngKind := fs.String("rng", "cpu", "noise generator: cpu (torch CPU, as diffusers/ComfyUI) or cuda (torch CUDA Philox, as AUTOMATIC1111)")
	clipSkip := fs.Int("clip-skip", 1, "CLIP skip as in AUTOMATIC1111: 1 = last layer, 2 = penultimate")
	eta := fs.Float64("eta", 0, "DDIM eta")
	rescale := fs.Float64("guidance-rescale", 0, "guidance rescale (0-1)")
	initImage := fs.String("init-image", "", "PNG, JPEG, WebP, GIF or BMP to start from (image-to-image)")
	strength := fs.Float64("strength", 0.8, "img2img strength in (0, 1]")
	output := fs.String("output", "out.png", "output PNG; with several images out-0.png, out-1.png, …")
	latentsOut := fs.String("latents-output", "", "also write the final latents (NCHW float32) to this safetensors file")
	quiet := fs.Bool("quiet", false, "no progress output")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment generate --model DIR --prompt TEXT [flags]")
		printDefaults(fs, stderr)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (use --prompt)", pos[0])
	}
	if *model == "" {
		if !isModelDir(defaultModelDir) {
			return usagef("--model is required (the default %s is not here; `make model` trains it)", defaultModelDir)
		}
		*model = defaultModelDir
	}
	if len(prompts) == 0 {
		return usagef("--prompt is required")
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if explicit["strength"] && *initImage == "" {
		return usagef("--strength needs --init-image")
	}
	if *steps < 1 || *steps > diffusion.MaxSteps {
		return usagef("--steps must be between 1 and %d, got %d", diffusion.MaxSteps, *steps)
	}
	if *batchSize < 1 {
		return usagef("--batch-size must be at least 1, got %d", *batchSize)
	}
	if *clipSkip < 1 {
		return usagef("--clip-skip must be at least 1, got %d", *clipSkip)
	}
	var kind sampling.Kind
	if *samplerName != "" {
		if kind, err = sampling.ParseKind(*samplerName); err != nil {
			return usagef("--sampler: %v", err)
		}
	}
	if *rngKind != "cpu" && *rngKind != "cuda" {
		return usagef("--rng must be cpu or cuda, got %q", *rngKind)
	}
	if !strings.EqualFold(filepath.Ext(*output), ".png") {
		return usagef("--output must name a .png file, got %q", *output)
	}
	for _, name := range []string{"width", "height"} {
		if v := fs.Lookup(name).Value.String(); explicit[name] && v == "0" {
			return usagef("--%s must be a positive multiple of the VAE scale factor, got 0", name)
		}
	}
	for i, p := range append(slices.Clone(prompts), negatives...) {
		if !utf8.ValidString(p) {
			flag := "--prompt"
			if i >= len(prompts) {
				flag = "--negative-prompt"
			}
			return usagef("%s is not valid UTF-8", flag)
		}
	}
	if err := checkOutputPath(*output); err != nil {
		return usagef("--output: %v", err)
	}
	if *latentsOut != "" {
		if err := checkOutputPath(*latentsOut); err != nil {
			return usagef("--latents-output: %v", err)
		}
	}
	if st, err := os.Stat(*model); err != nil || !st.IsDir() {
		return usagef("--model %q is not a directory", *model)
	}
	if !seed.set {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return err
		}
		seed.value = binary.LittleEndian.Uint64(b[:]) >> 32 // a 32-bit seed, easy to type back
	}

	t0 := time.Now()
	m, err := diffusion.LoadModel(*model)
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	req := diffusion.Request{
		Prompts: prompts, NegativePrompts: negatives, NumImagesPerPrompt: *batchSize,
		Width: *width, Height: *height, Steps: *steps, GuidanceScale: *cfgScale, GuidanceRescale: *rescale,
		Sampler: kind, Seed: seed.value, RNG: *rngKind, ClipSkip: *clipSkip, Eta: *eta,
	}
	if *initImage != "" {
		req.Strength = *strength
		if err := loadInitImage(&req, *initImage, m.VAEScaleFactor(), m.DefaultSize()); err != nil {
			return err
		}
	}
	if err := m.Resolve(&req); err != nil {
		return flagError(err)
	}
	fmt.Fprintf(stderr, "model %s loaded in %.1fs; seed %d, sampler %s, %d steps, %dx%d\n",
		m.Name, time.Since(t0).Seconds(), req.Seed, req.Sampler.DisplayName(), req.Steps, req.Width, req.Height)
	if !*quiet {
		req.Progress = func(p diffusion.Progress) {
			fmt.Fprintf(stderr, "step %d/%d (t=%g)\n", p.Step, p.Steps, p.Timestep)
		}
	}
	t1 := time.Now()
	res, err := m.Generate(ctx, req)
	if err != nil {
		return flagError(err)
	}
	fmt.Fprintf(stderr, "generated %d image(s) in %.1fs\n", len(res.Images), time.Since(t1).Seconds())
	for i, img := range res.Images {
		path := *output
		if len(res.Images) > 1 {
			ext := filepath.Ext(path)
			path = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), i, ext)
		}
		if err := writePNG(path, img, res.Parameters[i]); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		fmt.Fprintln(stdout, path)
	}
	if *latentsOut != "" {
		t := safetensors.Tensor{Name: "latents", Shape: res.Latents.Shape, Data: res.Latents.Data}
		if err := safetensors.WriteFile(*latentsOut, []safetensors.Tensor{t}, map[string]string{"seed": strconv.FormatUint(req.Seed, 10)}); err != nil {
			return fmt.Errorf("--latents-output: %w", err)
		}
	}
	return nil
}

// checkOutputPath fails if path cannot be written: its folder is missing
// or it names a folder. It runs before the model loads, so a typo does not
// cost a whole generation.
func checkOutputPath(path string) error {
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return fmt.Errorf("folder %q does not exist", filepath.Dir(path))
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%q is a folder", path)
	}
	return nil
}

// flagError turns a diffusion.FieldError into a usage error naming the flag.
func flagError(err error) error {
	var fe *diffusion.FieldError
	if errors.As(err, &fe) {
		name := flagOf[fe.Field]
		if name == "" {
			name = fe.Field
		}
		return usagef("%s %s", name, fe.Message)
	}
	return err
}

// loadInitImage decodes path and fits it to the requested size, or to its
// own size rounded down to a multiple of the VAE scale factor (as diffusers'
// image processor does) when --width/--height are not given.
func loadInitImage(req *diffusion.Request, path string, multiple, defaultSize int) error {
	f, err := os.Open(path)
	if err != nil {
		return usagef("--init-image: %v", err)
	}
	defer f.Close()
	img, _, err := imageio.Decode(f, maxInitPixels)
	if err != nil {
		return usagef("--init-image %s: %v", path, err)
	}
	w, h := req.Width, req.Height
	b := img.Bounds()
	if w == 0 {
		w = b.Dx() - b.Dx()%multiple
	}
	if h == 0 {
		h = b.Dy() - b.Dy()%multiple
	}
	if w <= 0 || h <= 0 {
		return usagef("--init-image %s: %dx%d is smaller than one %d-pixel block", path, b.Dx(), b.Dy(), multiple)
	}
	if req.Width == 0 || req.Height == 0 {
		maxSide, maxPixels := diffusion.SizeLimits(defaultSize)
		if w > maxSide || h > maxSide || w*h > maxPixels {
			return usagef("--init-image %s is %dx%d; this model takes sides up to %d and %d pixels in all: give --width and --height, or a smaller image", path, b.Dx(), b.Dy(), maxSide, maxPixels)
		}
	}
	req.Width, req.Height = w, h
	req.InitImage = imageio.ToTensor(img, w, h)
	return nil
}

// writePNG writes img to path through a temporary file in the same folder
// and a rename, so an interrupted write never leaves a truncated image. The
// temporary file is created 0666 less the umask, as os.Create would
// (os.CreateTemp would make it 0600).
func writePNG(path string, img image.Image, parameters string) error {
	tmp, err := createTemp(filepath.Dir(path), ".pigment-", ".png")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := imageio.EncodePNG(tmp, img, map[string]string{"parameters": parameters}); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// createTemp creates a new file dir/prefix<random>suffix with mode 0666
// less the umask.
func createTemp(dir, prefix, suffix string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, fmt.Sprintf("%s%d%s", prefix, rand.Uint64(), suffix))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("creating a temporary file in %s: too many names taken", dir)
}

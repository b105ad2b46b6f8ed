package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/pigment-ai/pigment/diffusion/train"
)

// The model Pigment ships (trained by `make model`), used when no other is
// named: by generate as its --model and by serve as its default model.
const (
	defaultModelName = "pigment-tiny"
	defaultModelDir  = "models/" + defaultModelName
)

// isModelDir reports whether dir holds a diffusers model_index.json.
func isModelDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "model_index.json"))
	return err == nil
}

// runTrain trains a text-to-image model (see package train): from scratch
// on the built-in synthetic shapes data set or a folder of captioned
// images, or fine-tuning an existing model directory (--from).
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", stderr)
	data := fs.String("data", "shapes", `training data: "shapes" (the synthetic scenes pigment-tiny learns) or a folder of images with same-named .txt captions`)
	out := fs.String("out", defaultModelDir, "model directory to write (diffusers layout)")
	work := fs.String("work", "", "directory for checkpoints; a rerun resumes from them (default OUT.work)")
	from := fs.String("from", "", "model directory to fine-tune (its UNet and text encoder are trained; autoencoder and tokenizer kept)")
	size := fs.Int("image-size", 64, "training image side in pixels")
	seed := fs.Uint64("seed", 1, "seed of initialisation, data order and noise")
	vaeSteps := fs.Int("vae-steps", 1200, "autoencoder steps (stage 1, from scratch only)")
	vaeBatch := fs.Int("vae-batch", 16, "autoencoder batch size")
	vaeLR := fs.Float64("vae-lr", 1e-3, "autoencoder peak learning rate")
	decSteps := fs.Int("decoder-steps", 1500, "decoder fine-tuning steps with the encoder frozen (stage 1b; 0 skips)")
	kl := fs.Float64("kl-weight", 1e-4, "weight of the autoencoder's KL term (per latent element)")
	steps := fs.Int("steps", 5000, "UNet and text-encoder steps (stage 2)")
	batch := fs.Int("batch", 32, "UNet batch size")
	lr := fs.Float64("lr", 6e-4, "UNet peak learning rate")
	warmup := fs.Int("warmup", 300, "learning-rate warm-up steps (both stages)")
	ema := fs.Float64("ema", 0.999, "EMA decay of the shipped weights")
	uncond := fs.Float64("uncond-prob", 0.1, "fraction of captions dropped, for classifier-free guidance")
	minSNR := fs.Float64("min-snr", 0, "Min-SNR loss weighting γ (0: plain MSE, right for pigment-tiny's zero-terminal-SNR v-prediction, where Min-SNR would give the noisiest steps no weight)")
	stages := fs.String("stages", "vae,decoder,unet", "stages to run now, comma-separated: vae (autoencoder), decoder (its fine-tuning), unet (UNet + text encoder); later stages need earlier ones finished")
	drills := fs.Float64("drills", 0.4, "with --data shapes: fraction of geometry drills (a single object, white on black) among the UNet's training scenes")
	colourDrills := fs.Float64("colour-drills", 0, "with --data shapes: fraction of the drills drawn in random palette colours instead of white on black")
	every := fs.Int("checkpoint-every", 500, "steps between checkpoints")
	export := fs.Bool("export", false, "write --out from the EMA weights of the last UNet checkpoint in --work and stop, without training (to try a run in progress)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment train [--data shapes|DIR] [--out DIR] [--from MODEL] [flags]")
		printDefaults(fs, stderr)
	}
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *size < 8 || *size%8 != 0 || *size > 1024 {
		return usagef("--image-size must be a multiple of 8 in [8, 1024], got %d", *size)
	}
	if *out == "" {
		return usagef("--out must not be empty")
	}
	if !(*kl >= 0) {
		return usagef("--kl-weight must not be negative, got %v", *kl)
	}
	if !(*uncond >= 0 && *uncond <= 1) {
		return usagef("--uncond-prob must be in [0, 1], got %v", *uncond)
	}
	if !(*minSNR >= 0) {
		return usagef("--min-snr must not be negative, got %v", *minSNR)
	}
	if !(*drills >= 0 && *drills <= 1) {
		return usagef("--drills must be in [0, 1], got %v", *drills)
	}
	if !(*colourDrills >= 0 && *colourDrills <= 1) {
		return usagef("--colour-drills must be in [0, 1], got %v", *colourDrills)
	}
	if *colourDrills > 0 && *drills == 0 {
		return usagef("--colour-drills %v is a fraction of the drills, and --drills is 0", *colourDrills)
	}
	if *every < 1 {
		return usagef("--checkpoint-every must be at least 1, got %d", *every)
	}
	skip := map[string]bool{"vae": true, "decoder": true, "unet": true}
	for _, st := range strings.Split(*stages, ",") {
		st = strings.TrimSpace(st)
		if _, ok := skip[st]; !ok {
			return usagef("--stages: unknown stage %q (want vae, decoder, unet)", st)
		}
		skip[st] = false
	}
	if st, err := os.Stat(*out); err == nil && !st.IsDir() {
		return usagef("--out %s is a file, not a model directory", *out)
	}
	if *work == "" {
		*work = filepath.Clean(*out) + ".work"
	}
	var ds, unetData train.Dataset
	if *data == "shapes" {
		ds = train.Shapes{Seed: *seed, ImageSize: *size}
		unetData = train.Shapes{Seed: *seed, ImageSize: *size, Drills: *drills, ColourDrills: *colourDrills}
	} else {
		st, err := os.Stat(*data)
		if err != nil || !st.IsDir() {
			return usagef(`--data must be "shapes" or a folder of captioned images: %q is not a folder`, *data)
		}
		f, err := train.LoadFolder(*data, *size, *seed)
		if err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		fmt.Fprintf(stderr, "data: %d captioned images from %s\n", f.Len(), *data)
		ds = f
	}
	if *from != "" {
		if !isModelDir(*from) {
			return usagef("--from %s is not a model directory (no model_index.json)", *from)
		}
	} else if *size != 64 {
		return usagef("--image-size must be 64 when training from scratch (the pigment-tiny architecture), got %d", *size)
	}
	base := train.Options{Warmup: *warmup, WeightDecay: 0.01, EMADecay: *ema, MaxGradNorm: 1, Seed: *seed, CheckpointEvery: *every, LogEvery: 50}
	vo, uo, do := base, base, base
	vo.Steps, vo.Batch, vo.LR = *vaeSteps, *vaeBatch, *vaeLR
	do.Steps, do.Batch, do.LR, do.Seed = *decSteps, *vaeBatch, *vaeLR/2, *seed+200
	uo.Steps, uo.Batch, uo.LR = *steps, *batch, *lr
	uo.Seed = *seed + 100
	if err := uo.Validate(); err != nil {
		return usagef("%v", err)
	}
	if err := vo.Validate(); err != nil && *from == "" {
		// Shared flags passed above; what is left is a --vae-* flag.
		return usagef("--vae-%s", strings.TrimPrefix(err.Error(), "--"))
	}
	if *decSteps < 0 {
		return usagef("--decoder-steps must not be negative, got %d", *decSteps)
	}
	if *warmup >= *steps && !*export {
		fmt.Fprintf(stderr, "note: --warmup %d is not shorter than --steps %d: the UNet's learning rate never reaches --lr\n", *warmup, *steps)
	}
	// Training allocates activations every step and holds little else: the
	// inference setting of main (GC at +25%) would collect several times a
	// step for nothing.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	r := &train.Recipe{
		Data: ds, UNetData: unetData, Out: *out, Work: *work, From: *from, Seed: *seed,
		VAE: vo, KLWeight: *kl, Decoder: do, UNet: uo, Skip: skip, UncondProb: *uncond, MinSNRGamma: *minSNR, Export: *export, Log: stderr,
	}
	return r.Run(ctx)
}

package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/internal/tinymodel"
)

func TestTrainEvalBadFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, flag string
		args       []string
	}{
		{"steps 0", "--steps", []string{"train", "--steps", "0"}},
		{"batch 0", "--batch", []string{"train", "--batch", "0"}},
		{"negative lr", "--lr", []string{"train", "--lr", "-1"}},
		{"nan lr", "--lr", []string{"train", "--lr", "NaN"}},
		{"vae steps 0", "--vae-steps", []string{"train", "--vae-steps", "0"}},
		{"vae batch", "--vae-batch", []string{"train", "--vae-batch", "-2"}},
		{"image size", "--image-size", []string{"train", "--image-size", "60"}},
		{"image size from scratch", "--image-size", []string{"train", "--image-size", "32"}},
		{"out is a file", "--out", []string{"train", "--out", "main.go"}},
		{"missing data folder", "--data", []string{"train", "--data", "/nonexistent/images"}},
		{"from not a model", "--from", []string{"train", "--from", "/nonexistent/model"}},
		{"uncond prob", "--uncond-prob", []string{"train", "--uncond-prob", "1.5"}},
		{"ema", "--ema", []string{"train", "--ema", "1"}},
		{"min snr", "--min-snr", []string{"train", "--min-snr", "-1"}},
		{"drills", "--drills", []string{"train", "--drills", "1.5"}},
		{"colour drills", "--colour-drills", []string{"train", "--colour-drills", "-0.1"}},
		{"colour drills nan", "--colour-drills", []string{"train", "--colour-drills", "NaN"}},
		{"colour drills without drills", "--colour-drills", []string{"train", "--drills", "0", "--colour-drills", "1"}},
		{"checkpoint every", "--checkpoint-every", []string{"train", "--checkpoint-every", "0"}},
		{"decoder steps", "--decoder-steps", []string{"train", "--decoder-steps", "-1"}},
		{"unknown stage", "--stages", []string{"train", "--stages", "vae,gan"}},
		{"train positional", "unexpected argument", []string{"train", "shapes"}},
		{"eval captions", "--captions", []string{"eval", "--captions", "0"}},
		{"eval steps", "--steps", []string{"eval", "--steps", "0"}},
		{"eval batch", "--batch", []string{"eval", "--batch", "100"}},
		{"eval sampler", "--sampler", []string{"eval", "--sampler", "bogus"}},
		{"eval cfg scale", "--cfg-scale", []string{"eval", "--cfg-scale", "-1"}},
		{"eval guidance scale", "--guidance-scale", []string{"eval", "--guidance-scale", "NaN"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, c.flag) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("stderr %q: want one line naming %s", stderr, c.flag)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	// A model directory that does not load is an error naming --model.
	code, _, stderr := runCLI(t, "eval", "--model", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "--model") {
		t.Errorf("eval of an empty folder: exit %d, %q", code, stderr)
	}
}

// writeCaptioned writes n solid-colour PNGs with captions into dir.
func writeCaptioned(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 24, 20))
		for p := range img.Pix {
			img.Pix[p] = uint8(40*i + p%3*60)
		}
		img.Set(3, 3, color.RGBA{255, 255, 255, 255})
		f, err := os.Create(filepath.Join(dir, "img"+string(rune('a'+i))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.WriteFile(filepath.Join(dir, "img"+string(rune('a'+i))+".txt"), []byte("a plain colour number "+string(rune('a'+i))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrainFineTuneFolder fine-tunes a tiny model on a folder of captioned
// images through the CLI, resumes the finished run, and generates with the
// result.
func TestTrainFineTuneFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	base := filepath.Join(t.TempDir(), "base")
	if err := tinymodel.Write(base, 5); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	writeCaptioned(t, data, 3)
	out := filepath.Join(t.TempDir(), "tuned")
	args := []string{"train", "--data", data, "--from", base, "--out", out, "--image-size", "16",
		"--steps", "4", "--batch", "2", "--warmup", "1", "--checkpoint-every", "2"}
	code, _, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"data: 3 captioned images", "step 4/4", "saved " + out} {
		if !strings.Contains(stderr, want) {
			t.Errorf("train output lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "note: --warmup") {
		t.Errorf("a warm-up shorter than the run got a note:\n%s", stderr)
	}
	m, err := diffusion.LoadModel(out)
	if err != nil {
		t.Fatalf("fine-tuned model does not load: %v", err)
	}
	if m.DefaultSize() != 16 {
		t.Errorf("default size %d, want 16", m.DefaultSize())
	}
	// Running again resumes at the last step and only saves.
	code, _, stderr = runCLI(t, args...)
	if code != 0 || !strings.Contains(stderr, "resumed") || strings.Contains(stderr, "step 2/4") {
		t.Fatalf("rerun: exit %d: %s", code, stderr)
	}
	// --export writes a model from the last checkpoint without training:
	// here the same weights the finished run saved.
	exported := filepath.Join(t.TempDir(), "exported")
	code, _, stderr = runCLI(t, append(slices.Clone(args), "--export", "--out", exported, "--work", out+".work")...)
	if code != 0 || !strings.Contains(stderr, "exporting step 4") || strings.Contains(stderr, "step 1/4") {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors"} {
		a, errA := os.ReadFile(filepath.Join(out, f))
		b, errB := os.ReadFile(filepath.Join(exported, f))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("exported %s differs from the trained one (%v, %v)", f, errA, errB)
		}
	}
	if code, _, stderr := runCLI(t, append(slices.Clone(args), "--export", "--work", t.TempDir())...); code == 0 || !strings.Contains(stderr, "export") {
		t.Errorf("export without a checkpoint: exit %d: %s", code, stderr)
	}
	img := filepath.Join(t.TempDir(), "o.png")
	if code, _, stderr := runCLI(t, "generate", "--model", out, "--prompt", "a plain colour", "--steps", "2", "--output", img, "--quiet"); code != 0 {
		t.Fatalf("generate with the fine-tuned model: %s", stderr)
	}
	// The saved model has fp16 weights; fine-tuning it again trains them in
	// float32. (A warm-up as long as the run is allowed, with a note.)
	again := filepath.Join(t.TempDir(), "again")
	if code, _, stderr := runCLI(t, "train", "--data", data, "--from", out, "--out", again, "--image-size", "16",
		"--steps", "2", "--batch", "2", "--warmup", "2"); code != 0 || !strings.Contains(stderr, "note: --warmup 2 is not shorter than --steps 2") {
		t.Fatalf("fine-tuning an fp16 model: exit %d: %s", code, stderr)
	}
	if _, err := diffusion.LoadModel(again); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/internal/refcases"
)

func readPNG(t *testing.T, path string) (*image.NRGBA, map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := imageio.Decode(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	text, err := imageio.ReadPNGText(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	out := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, img.At(x, y))
		}
	}
	return out, text
}

// TestGenerateReproducesReference checks that the command line alone
// (prompt, seed, sampler, steps, cfg, size) reproduces the reference PNGs
// diffusers wrote, within ±2 per channel, and that the PNG carries its
// parameters.
func TestGenerateReproducesReference(t *testing.T) {
	cases := []struct {
		pipeline, png string
		args          []string
	}{
		{"tiny-sd15", "txt2img_default_4_0.png", []string{"--prompt", "a photo of a cat", "--seed", "0", "--steps", "4", "--cfg-scale", "7.5"}},
		{"tiny-sd15", "txt2img_euler_a_20_nipp2_1.png", []string{"--prompt", "a photo of a cat", "--negative-prompt", "blurry, low quality", "--seed", "7", "--steps", "20", "--sampler", "Euler a", "--batch-size", "2"}},
		{"tiny-sd2v", "txt2img_ddim_4_clipskip1_0.png", []string{"--prompt", "a photo of a cat", "--seed", "5", "--steps", "4", "--sampler", "ddim", "--clip-skip", "2"}},
		{"tiny-sd2v", "img2img_dpmpp_2m_karras_10_s06_0.png", []string{"--prompt", "a photo of a cat", "--negative-prompt", "blurry, low quality", "--seed", "13", "--steps", "10", "--cfg-scale", "5", "--sampler", "dpmpp_2m_karras", "--init-image", "INIT", "--strength", "0.6"}},
	}
	for _, c := range cases {
		t.Run(c.pipeline+"/"+c.png, func(t *testing.T) {
			if testing.Short() {
				t.Skip("-short")
			}
			model := refcases.ModelDir(t, c.pipeline)
			set := refcases.Open(t, c.pipeline)
			out := filepath.Join(t.TempDir(), "out.png")
			args := append([]string{"generate", "--model", model, "--output", out, "--quiet"}, c.args...)
			for i, a := range args {
				if a == "INIT" {
					args[i] = set.Path("images/init_image.png")
				}
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			path := strings.TrimSpace(lines[len(lines)-1])
			if strings.Contains(c.png, "nipp2") {
				path = strings.TrimSuffix(out, ".png") + "-1.png"
			}
			got, text := readPNG(t, path)
			want, _ := readPNG(t, set.Path("images/"+c.png))
			if got.Rect != want.Rect {
				t.Fatalf("size %v, want %v", got.Rect, want.Rect)
			}
			worst := 0
			for i := range got.Pix {
				worst = max(worst, abs(int(got.Pix[i])-int(want.Pix[i])))
			}
			if worst > 2 {
				t.Fatalf("max pixel difference %d, want ≤ 2", worst)
			}
			t.Logf("max pixel difference %d", worst)
			p := text["parameters"]
			if !strings.HasPrefix(p, "a photo of a cat\n") || !strings.Contains(p, "Seed: ") || !strings.Contains(p, "Model: "+c.pipeline) {
				t.Errorf("parameters chunk = %q", p)
			}
		})
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestGenerateLatentsOutput(t *testing.T) {
	model := refcases.ModelDir(t, "tiny-sd15")
	dir := t.TempDir()
	lat := filepath.Join(dir, "lat.safetensors")
	code, _, stderr := runCLI(t, "generate", "--model", model, "--prompt", "a cat", "--steps", "1", "--seed", "3",
		"--output", filepath.Join(dir, "o.png"), "--latents-output", lat, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := safetensors.Open(lat)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, ok := f.Info("latents")
	if !ok || len(info.Shape) != 4 || info.Shape[0] != 1 || info.Shape[1] != 4 || info.Shape[2] != 16 || info.Shape[3] != 16 {
		t.Fatalf("latents tensor %+v", info)
	}
	if !strings.Contains(stderr, "seed 3") {
		t.Errorf("stderr does not report the seed: %s", stderr)
	}
}

func TestGenerateBadFlags(t *testing.T) {
	model := refcases.ModelDir(t, "tiny-sd15")
	notImage := filepath.Join(t.TempDir(), "x.png")
	if err := os.WriteFile(notImage, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, flag string
		args       []string
		code       int
	}{
		{"steps 0", "--steps", []string{"--steps", "0"}, 2},
		{"steps 151", "--steps", []string{"--steps", "151"}, 2},
		{"width not multiple", "--width", []string{"--width", "33"}, 2},
		{"height negative", "--height", []string{"--height", "-8"}, 2},
		{"unknown sampler", "--sampler", []string{"--sampler", "heun++"}, 2},
		{"strength 0", "--strength", []string{"--init-image", "IMG", "--strength", "0"}, 2},
		{"strength 1.5", "--strength", []string{"--init-image", "IMG", "--strength", "1.5"}, 2},
		{"strength without image", "--strength", []string{"--strength", "0.5"}, 2},
		{"undecodable init image", "--init-image", []string{"--init-image", notImage}, 2},
		{"missing init image", "--init-image", []string{"--init-image", "/nonexistent.png"}, 2},
		{"bad seed", "--seed", []string{"--seed", "abc"}, 2},
		{"bad rng", "--rng", []string{"--rng", "gpu"}, 2},
		{"clip skip 0", "--clip-skip", []string{"--clip-skip", "0"}, 2},
		{"clip skip too deep", "--clip-skip", []string{"--clip-skip", "9"}, 2},
		{"negative prompt count", "--negative-prompt", []string{"--negative-prompt", "a", "--negative-prompt", "b"}, 2},
		{"output not png", "--output", []string{"--output", "x.jpg"}, 2},
		{"guidance rescale", "--guidance-rescale", []string{"--guidance-rescale", "2"}, 2},
		{"missing model files", "--model", []string{"--model", t.TempDir()}, 1},
		{"model dir does not exist", "--model", []string{"--model", "/nonexistent/model"}, 2},
		{"explicit width 0", "--width", []string{"--width", "0"}, 2},
		{"output folder missing", "--output", []string{"--output", "/nonexistent/dir/x.png"}, 2},
		{"output is a folder", "--output", []string{"--output", t.TempDir() + "/sub.png"}, 0},
		{"latents output is a folder", "--latents-output", []string{"--latents-output", t.TempDir()}, 2},
		{"invalid UTF-8 prompt", "--prompt", []string{"--prompt", "a\xffb"}, 2},
		{"init image too large for the model", "--init-image", []string{"--init-image", "BIG"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"generate", "--model", model, "--prompt", "a cat", "--output", filepath.Join(t.TempDir(), "o.png"), "--quiet"}
			if c.code == 0 {
				// A folder named like the output file.
				if err := os.Mkdir(c.args[1], 0o755); err != nil {
					t.Fatal(err)
				}
				c.code = 2
			}
			for _, a := range c.args {
				switch a {
				case "IMG":
					a = refcases.Open(t, "tiny-sd15").Path("images/init_image.png")
				case "BIG":
					a = filepath.Join(t.TempDir(), "big.png")
					writeTestPNG(t, a, 300, 40)
				}
				args = append(args, a)
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, c.code, stderr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines != 0 {
				t.Errorf("error is %d lines, want one: %q", lines+1, stderr)
			}
			if !strings.Contains(stderr, c.flag) {
				t.Errorf("stderr %q does not name %s", stderr, c.flag)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// writeTestPNG writes a w×h grey PNG.
func writeTestPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img := image.NewGray(image.Rect(0, 0, w, h))
	if err := imageio.EncodePNG(f, img, nil); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/internal/tinymodel"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// lastJSON decodes the last line of out into v.
func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line of %q is not the JSON result: %v", out, err)
	}
}

// TestBenchGenerateTiny runs bench generate end to end on the tiny model at
// a tiny size (32x32, its largest allowed, one step; well under a second).
func TestBenchGenerateTiny(t *testing.T) {
	for _, dtype := range []string{"f32", "f16", "bf16"} {
		t.Run(dtype, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "bench", "generate", "--config", "tiny", "--width", "32", "--height", "32", "--steps", "1", "--dtype", dtype, "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var r generateResult
			lastJSON(t, stdout, &r)
			if r.Name != "generate" || r.Config != "tiny" || r.DType != dtype || r.Width != 32 || r.Height != 32 || r.Steps != 1 || r.Sampler != "pndm" || r.UNetCalls != 1 {
				t.Errorf("result %+v", r)
			}
			if !(r.Seconds > 0 && r.StepSeconds > 0 && r.VAEDecodeSeconds > 0 && r.FirstStepSeconds > 0 && r.GFLOP > 0 && r.PeakRSSMB > 0) {
				t.Errorf("missing figures: %+v", r)
			}
			if r.FirstStepSeconds+r.VAEDecodeSeconds > r.Seconds*1.0001 {
				t.Errorf("first step %.3g s + decode %.3g s exceed the total %.3g s", r.FirstStepSeconds, r.VAEDecodeSeconds, r.Seconds)
			}
		})
	}
	code, stdout, stderr := runCLI(t, "bench", "generate", "--config", "tiny", "--width", "16", "--height", "24", "--steps", "2", "--sampler", "euler")
	if code != 0 || !strings.Contains(stdout, "2 steps (2 UNet calls, euler)") {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
}

// TestBenchDType runs the single-model benchmarks on the tiny model with
// half-precision weights and checks the dtype is reported.
func TestBenchDType(t *testing.T) {
	for _, name := range []string{"unet", "vae", "text"} {
		// The sgemm peak (a 4096³ product) is measured once, with the UNet.
		code, stdout, stderr := runCLI(t, "bench", name, "--config", "tiny", "--width", "32", "--height", "32", "--dtype", "bf16", "--json", "--peak="+map[bool]string{true: "true", false: "false"}[name == "unet"])
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		var r benchResult
		lastJSON(t, stdout, &r)
		if r.DType != "bf16" || r.Config != "tiny" || r.Seconds <= 0 {
			t.Errorf("%s: result %+v", name, r)
		}
		if name == "unet" && !(r.PeakGFLOPS > 0 && r.FractionOfPeak > 0 && math.Abs(r.FractionOfPeak-r.GFLOPS/r.PeakGFLOPS) < 1e-9) {
			t.Errorf("peak figures %+v", r)
		}
	}
}

// TestBenchModel measures images/s of a real (tiny, random) model directory.
func TestBenchModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := tinymodel.Write(dir, 1); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "bench", "model", "--model", dir, "--images", "3", "--batch", "2", "--steps", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r benchModelResult
	lastJSON(t, stdout, &r)
	if r.Width != 16 || r.Images != 3 || r.Steps != 2 || !(r.ImagesPerSecond > 0) || r.PeakRSSMB <= 0 {
		t.Errorf("result %+v", r)
	}
	if code, _, stderr := runCLI(t, "bench", "model", "--model", t.TempDir()); code != 1 || !strings.Contains(stderr, "--model") {
		t.Errorf("bench model of an empty folder: exit %d, %q", code, stderr)
	}
	// Sizes are the model's to check (this one's factor is 8, its largest
	// side 64), and a refused one names the flag, as generate does.
	if code, _, stderr := runCLI(t, "bench", "model", "--model", dir, "--width", "100000", "--height", "16"); code != 2 || !strings.Contains(stderr, "--width") {
		t.Errorf("bench model --width 100000: exit %d, %q", code, stderr)
	}
}

// TestHalfSource checks that the benchmark's half-precision source rounds
// exactly as a checkpoint saved in that dtype, and only 2-D and 4-D tensors.
func TestHalfSource(t *testing.T) {
	for _, kind := range []tensor.HalfKind{tensor.F16, tensor.BF16} {
		src := halfSource{nn.NewRandomSource(3), kind}
		for _, shape := range [][]int{{5, 7}, {3, 2, 3, 3}, {9}, {2, 3, 4}} {
			name := "x.weight"
			got, err := src.Load(name, shape)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := nn.NewRandomSource(3).Load(name, shape)
			if half := len(shape) == 2 || len(shape) == 4; got.IsHalf() != half {
				t.Fatalf("%v %v: IsHalf %v", kind, shape, got.IsHalf())
			}
			if !got.IsHalf() {
				continue
			}
			for i, v := range want.Data {
				var w float32
				if kind == tensor.F16 {
					w = safetensors.F16ToFloat32(safetensors.Float32ToF16(v))
				} else {
					w = safetensors.BF16ToFloat32(safetensors.Float32ToBF16(v))
				}
				if g := got.Float32().Data[i]; math.Float32bits(g) != math.Float32bits(w) {
					t.Fatalf("%v %v [%d] = %v, want %v", kind, shape, i, g, w)
				}
			}
		}
	}
}

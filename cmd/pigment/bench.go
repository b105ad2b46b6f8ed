package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
	"github.com/pigment-ai/pigment/internal/tinymodel"
)

// benchResult is what `pigment bench … --json` prints on its last line.
type benchResult struct {
	Name    string  `json:"name"`
	Config  string  `json:"config"`
	Shape   []int   `json:"shape"`
	Seconds float64 `json:"seconds"` // per forward pass (mean over runs)
	GFLOP   float64 `json:"gflop"`   // per forward pass, convs and matmuls
	// GFLOPS is GFLOP/Seconds, an effective rate: convolutions computed by
	// Winograd count the direct convolution's FLOPs (tensor.FLOPs), so it
	// can pass the sgemm peak.
	GFLOPS     float64 `json:"gflops"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	Threads    int     `json:"threads"`
	Runs       int     `json:"runs"`
	LoadSecond float64 `json:"load_seconds"`
	// DType is the storage of the matrix and convolution weights: f32, or
	// f16/bf16 (--dtype) as an fp16/bf16 checkpoint loads.
	DType string `json:"dtype"`
	// PeakGFLOPS is the practical ceiling of this machine, a 4096³ sgemm
	// measured in the same process just before the pass, and
	// FractionOfPeak is GFLOPS / PeakGFLOPS (above 1 with Winograd).
	PeakGFLOPS     float64 `json:"peak_gflops"`
	FractionOfPeak float64 `json:"fraction_of_peak"`
}

// sgemmPeakGFLOPS times C = A·B for 4096x4096 float32 matrices through
// tensor.BLAS (best of two) and returns its GFLOP/s: the ceiling the
// engine's kernels are measured against.
func sgemmPeakGFLOPS() float64 {
	const n = 4096
	a, b := tensor.Full(0.5, n, n), tensor.Full(0.25, n, n)
	best := 0.0
	for range 2 {
		t0 := time.Now()
		tensor.MatMul(a, b)
		best = max(best, 2*n*n*n/time.Since(t0).Seconds()/1e9)
	}
	return best
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object with the figures on the last line")
	width := fs.Int("width", 512, "image width in pixels (latents are width/8)")
	height := fs.Int("height", 512, "image height in pixels (latents are height/8)")
	batch := fs.Int("batch", 2, "batch size (2 = one image with classifier-free guidance)")
	runs := fs.Int("runs", 1, "forward passes to time (after loading)")
	seed := fs.Uint64("seed", 1, "seed of the random weights")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed passes to this file")
	dtypeName := fs.String("dtype", "f32", "storage of the random matrix and convolution weights: f32, f16 or bf16 (as an fp16/bf16 checkpoint loads; results are computed in float32)")
	configName := fs.String("config", "sd15", "model configuration: sd15, or tiny (the small test model, for smoke tests)")
	steps := fs.Int("steps", 20, "generate: denoising steps")
	samplerName := fs.String("sampler", "", "generate, model: sampler (default: the model's scheduler)")
	peak := fs.Bool("peak", true, "unet, vae, text: also measure a 4096³ sgemm, the peak the pass is reported against")
	modelDir := fs.String("model", defaultModelDir, "model: the model directory to generate with")
	images := fs.Int("images", 16, "model: images to generate (in batches of --batch prompts)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment bench unet|vae|text|generate|model|load [flags]\n\nunet: one forward pass of a randomly initialised UNet2DConditionModel with the real\nStable Diffusion 1.5 configuration (320/640/1280/1280, cross_attention_dim 768).\nvae: one VAE decode (SD 1.5 AutoencoderKL, random weights) of --width x --height.\ntext: the SD 1.5 text encoder (CLIP ViT-L/14 text model) on --batch prompts.\ngenerate: a whole txt2img generation of one --width x --height image with --steps steps\nand guidance (text encoder, UNet, VAE decode; SD 1.5, random weights); --batch does not apply.\nmodel: images per second of a real model (--model, default the shipped pigment-tiny) at\n--width x --height (its default size when 512, the flag's default), --batch prompts at a time.\nload: submit --jobs jobs to a running gateway (--url) and report throughput and queue latency.")
		printDefaults(fs, stderr)
	}
	url := fs.String("url", "http://127.0.0.1:8080", "load: the gateway to load")
	jobs := fs.Int("jobs", 1000, "load: jobs in the burst")
	concurrency := fs.Int("concurrency", 16, "load: concurrent submitting clients")
	serial := fs.Int("serial", 50, "load: jobs submitted one at a time after the burst, to measure queue overhead")
	body := fs.String("body", `{"prompt": "a red star", "steps": 1}`, "load: the JSON body of every job")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !slices.Contains([]string{"unet", "vae", "text", "generate", "model", "load"}, pos[0]) {
		return usagef("want one benchmark name: unet, vae, text, generate, model or load (got %q)", pos)
	}
	if pos[0] == "load" {
		if *jobs < 1 || *concurrency < 1 || *serial < 0 {
			return usagef("--jobs and --concurrency must be positive, --serial not negative")
		}
		res, err := benchLoad(ctx, *url, *body, *jobs, *concurrency, *serial, stderr)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		fmt.Fprintf(stdout, "%d jobs: submit %.0f jobs/s; queue wait p50 %.0f ms p99 %.0f ms; end to end %.1f jobs/s; overhead (idle workers) p50 %.1f ms p99 %.1f ms; run p50 %.0f ms; %d failed\n",
			res.Jobs, res.SubmitPerSecond, res.QueueWaitP50Ms, res.QueueWaitP99Ms, res.EndToEndPerSec, res.OverheadP50Ms, res.OverheadP99Ms, res.RunP50Ms, res.Failed)
		return nil
	}
	sd := pos[0] != "model" // the SD 1.5-size benchmarks; a real model checks its own sizes
	switch {
	case *width <= 0 || sd && *width%8 != 0:
		return usagef("--width must be a positive multiple of 8, got %d", *width)
	case *height <= 0 || sd && *height%8 != 0:
		return usagef("--height must be a positive multiple of 8, got %d", *height)
	case *batch <= 0 || *batch > 2*diffusion.MaxImagesPerBatch:
		return usagef("--batch must be between 1 and %d, got %d", 2*diffusion.MaxImagesPerBatch, *batch)
	case sd && (*width > benchMaxSide || *height > benchMaxSide || *width**height > benchMaxPixels):
		return usagef("--width x --height must be at most %d on a side and %d pixels in all (SD 1.5's limits), got %dx%d", benchMaxSide, benchMaxPixels, *width, *height)
	case *runs <= 0:
		return usagef("--runs must be positive, got %d", *runs)
	case *steps < 1 || *steps > diffusion.MaxSteps:
		return usagef("--steps must be between 1 and %d, got %d", diffusion.MaxSteps, *steps)
	}
	dtype, ok := benchDTypes[*dtypeName]
	if !ok {
		return usagef("--dtype must be f32, f16 or bf16, got %q", *dtypeName)
	}
	cfg, ok := benchConfigs[*configName]
	if !ok {
		return usagef("--config must be sd15 or tiny, got %q", *configName)
	}
	cfg.dtype = dtype
	if pos[0] == "model" {
		if *images < 1 {
			return usagef("--images must be positive, got %d", *images)
		}
		var kind sampling.Kind
		if *samplerName != "" {
			if kind, err = sampling.ParseKind(*samplerName); err != nil {
				return usagef("--sampler: %v", err)
			}
		}
		res, err := benchModel(ctx, *modelDir, *width, *height, *steps, *batch, *images, kind, stderr)
		if err != nil {
			return flagError(err) // a size the model refuses names --width or --height
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		fmt.Fprintf(stdout, "model %s %dx%d, %d steps of %s, guidance %.1f, batch %d: %.2f images/s (%.3f s/image), peak RSS %.0f MB, %d threads\n",
			res.Model, res.Width, res.Height, res.Steps, res.Sampler, res.Guidance, res.Batch, res.ImagesPerSecond, 1/res.ImagesPerSecond, res.PeakRSSMB, res.Threads)
		return nil
	}
	if pos[0] == "generate" {
		var kind sampling.Kind
		if *samplerName != "" {
			if kind, err = sampling.ParseKind(*samplerName); err != nil {
				return usagef("--sampler: %v", err)
			}
		}
		res, err := benchGenerate(ctx, cfg, *width, *height, *steps, kind, *seed, stderr)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		fmt.Fprintf(stdout, "generate %s %s %dx%d, %d steps (%d UNet calls, %s): %.2f s total, %.2f s/step, VAE decode %.2f s, peak RSS %.0f MB, %d threads\n",
			res.Config, res.DType, res.Width, res.Height, res.Steps, res.UNetCalls, res.Sampler, res.Seconds, res.StepSeconds, res.VAEDecodeSeconds, res.PeakRSSMB, res.Threads)
		return nil
	}
	var b benchmark
	switch pos[0] {
	case "unet":
		b = unetBenchmark(cfg, *batch, *height/8, *width/8, *seed)
	case "vae":
		b = vaeBenchmark(cfg, *height/8, *width/8, *seed)
	case "text":
		b = textBenchmark(cfg, *batch, *seed)
	}
	res, err := b.run(ctx, *runs, *cpuProfile, stderr)
	if err != nil {
		return err
	}
	res.DType = *dtypeName
	if *peak {
		res.PeakGFLOPS = sgemmPeakGFLOPS()
		res.FractionOfPeak = res.GFLOPS / res.PeakGFLOPS
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "%s %s %s %v: %.2f s/pass, %.0f GFLOP, %.1f effective GFLOP/s (%.0f%% of the %.0f GFLOP/s sgemm peak), peak RSS %.0f MB, %d threads\n",
		res.Name, res.Config, res.DType, res.Shape, res.Seconds, res.GFLOP, res.GFLOPS, 100*res.FractionOfPeak, res.PeakGFLOPS, res.PeakRSSMB, res.Threads)
	return nil
}

// benchMaxSide and benchMaxPixels bound the SD 1.5-size benchmarks' images
// as generate bounds an SD 1.5 model's (diffusion.SizeLimits of 512).
var benchMaxSide, benchMaxPixels = diffusion.SizeLimits(512)

// benchDTypes maps --dtype to the half-precision kind (0 for f32).
var benchDTypes = map[string]tensor.HalfKind{"f32": 0, "f16": tensor.F16, "bf16": tensor.BF16}

// benchConfig is the model a benchmark builds with random weights.
type benchConfig struct {
	name  string
	text  clip.TextConfig
	unet  unet.Config
	vae   vae.Config
	dtype tensor.HalfKind // weight storage; 0 is float32
}

// benchConfigs are the --config choices. The tiny model is internal/tinymodel's
// (its text encoder has a byte-level vocabulary of 514 tokens).
var benchConfigs = func() map[string]benchConfig {
	text, u, v := tinymodel.Configs(tinymodel.Vocab())
	return map[string]benchConfig{
		"sd15": {name: "sd15", text: clip.ConfigSD15(), unet: unet.ConfigSD15(), vae: vae.ConfigSD15()},
		"tiny": {name: "tiny", text: text, unet: u, vae: v},
	}
}()

// weights returns the random weights of c seeded with seed: an
// nn.RandomSource, whose matrices and convolution kernels are rounded to
// c.dtype (nearest, ties to even) and stored in 16 bits when it is set.
func (c benchConfig) weights(seed uint64) nn.Weights {
	src := nn.Source(nn.NewRandomSource(seed))
	if c.dtype != 0 {
		src = halfSource{src, c.dtype}
	}
	return nn.NewWeights(src)
}

// halfSource rounds every 2-D and 4-D tensor of Source (matrices, embedding
// tables and convolution kernels: nearly all of a model's weights) to kind
// and returns it as a half-precision tensor, as FileSource returns the
// weights of an fp16 or bf16 checkpoint. Each float32 original becomes
// garbage at once, so the peak RSS of a benchmark reflects 16-bit storage
// (main sets GOGC to 25).
type halfSource struct {
	nn.Source
	kind tensor.HalfKind
}

func (s halfSource) Load(name string, shape []int) (*tensor.Tensor, error) {
	t, err := s.Source.Load(name, shape)
	if err != nil || (len(shape) != 2 && len(shape) != 4) {
		return t, err
	}
	round := safetensors.Float32ToF16
	if s.kind == tensor.BF16 {
		round = safetensors.Float32ToBF16
	}
	bits := make([]uint16, len(t.Data))
	const chunk = 1 << 16
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for lo := 0; lo < len(bits); lo += chunk {
		hi := min(lo+chunk, len(bits))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for i, v := range t.Data[lo:hi] {
				bits[lo+i] = round(v)
			}
		}()
	}
	wg.Wait()
	return tensor.FromHalf(bits, s.kind, shape...), nil
}

// benchmark is one model forward pass to time: build makes the randomly
// initialised model and returns the pass.
type benchmark struct {
	name, config string
	shape        []int
	build        func() (pass func(), err error)
}

func unetBenchmark(c benchConfig, batch, h, w int, seed uint64) benchmark {
	in := c.unet.InChannels
	return benchmark{"unet", c.name, []int{batch, in, h, w}, func() (func(), error) {
		u, err := unet.New(c.weights(seed), c.unet)
		if err != nil {
			return nil, err
		}
		sample := tensor.Full(0.1, batch, in, h, w)
		ehs := tensor.Full(0.01, batch, 77, u.Config.CrossAttentionDim[0])
		return func() { u.Forward(sample, []float32{999}, ehs) }, nil
	}}
}

func vaeBenchmark(c benchConfig, h, w int, seed uint64) benchmark {
	lc := c.vae.LatentChannels
	return benchmark{"vae_decode", c.name, []int{1, lc, h, w}, func() (func(), error) {
		v, err := vae.New(c.weights(seed), c.vae)
		if err != nil {
			return nil, err
		}
		z := tensor.Full(0.1, 1, lc, h, w)
		return func() { v.Decode(z) }, nil
	}}
}

func textBenchmark(c benchConfig, batch int, seed uint64) benchmark {
	return benchmark{"text_encoder", c.name, []int{batch, 77}, func() (func(), error) {
		w := c.weights(seed)
		m := clip.NewTextModel(w, c.text)
		if err := w.Err(); err != nil {
			return nil, err
		}
		ids := make([]int, batch*77)
		for i := range ids {
			ids[i] = (i * 7919) % c.text.VocabSize
		}
		return func() {
			if _, err := m.Forward(ids, batch, 0); err != nil {
				panic(err)
			}
		}, nil
	}}
}

// run builds the model, then times runs passes, counting the FLOPs issued
// through the BLAS interface.
func (b benchmark) run(ctx context.Context, runs int, cpuProfile string, log io.Writer) (benchResult, error) {
	start := time.Now()
	pass, err := b.build()
	if err != nil {
		return benchResult{}, err
	}
	load := time.Since(start)
	fmt.Fprintf(log, "built random %s %s in %.1f s\n", b.config, b.name, load.Seconds())
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return benchResult{}, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return benchResult{}, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var elapsed time.Duration
	var flops int64
	for i := 0; i < runs; i++ {
		if err := ctx.Err(); err != nil {
			return benchResult{}, err
		}
		f0, t0 := tensor.FLOPs(), time.Now()
		pass()
		elapsed += time.Since(t0)
		flops += tensor.FLOPs() - f0
		fmt.Fprintf(log, "pass %d: %.2f s\n", i+1, time.Since(t0).Seconds())
	}
	secs := elapsed.Seconds() / float64(runs)
	gflop := float64(flops) / float64(runs) / 1e9
	return benchResult{
		Name: b.name, Config: b.config, Shape: b.shape,
		Seconds: secs, GFLOP: gflop, GFLOPS: gflop / secs, PeakRSSMB: peakRSSMB(),
		Threads: runtime.GOMAXPROCS(0), Runs: runs, LoadSecond: load.Seconds(),
	}, nil
}

// peakRSSMB returns the process's peak resident set size in MB (getrusage
// ru_maxrss, which Linux reports in KiB).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) * 1024 / 1e6
}

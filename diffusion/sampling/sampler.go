package sampling

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Kind names a sampler. The values are the CLI/API names (DESIGN.md
// contract); DisplayName gives AUTOMATIC1111's.
type Kind string

// The samplers, each reproducing one diffusers 0.27.2 scheduler class.
const (
	DDIM          Kind = "ddim"            // DDIMScheduler
	Euler         Kind = "euler"           // EulerDiscreteScheduler
	EulerA        Kind = "euler_a"         // EulerAncestralDiscreteScheduler
	DPMPP2M       Kind = "dpmpp_2m"        // DPMSolverMultistepScheduler, dpmsolver++, order 2
	DPMPP2MKarras Kind = "dpmpp_2m_karras" // the same with use_karras_sigmas
	LMS           Kind = "lms"             // LMSDiscreteScheduler
	PNDM          Kind = "pndm"            // PNDMScheduler (PLMS when skip_prk_steps)
)

var kinds = []Kind{DDIM, Euler, EulerA, DPMPP2M, DPMPP2MKarras, LMS, PNDM}

var kindInfo = map[Kind]struct{ display, class string }{
	DDIM:          {"DDIM", "DDIMScheduler"},
	Euler:         {"Euler", "EulerDiscreteScheduler"},
	EulerA:        {"Euler a", "EulerAncestralDiscreteScheduler"},
	DPMPP2M:       {"DPM++ 2M", "DPMSolverMultistepScheduler"},
	DPMPP2MKarras: {"DPM++ 2M Karras", "DPMSolverMultistepScheduler"},
	LMS:           {"LMS", "LMSDiscreteScheduler"},
	PNDM:          {"PLMS", "PNDMScheduler"},
}

// aliases maps lower-cased alternative names to kinds (display names and
// class names are added by init).
var aliases = map[string]Kind{
	"euler_ancestral": EulerA,
	"k_euler_a":       EulerA,
	"k_euler":         Euler,
	"k_lms":           LMS,
	"dpm++_2m":        DPMPP2M,
	"dpm++_2m_karras": DPMPP2MKarras,
}

func init() {
	for _, k := range kinds {
		aliases[string(k)] = k
		aliases[strings.ToLower(kindInfo[k].display)] = k
	}
	for _, k := range []Kind{DDIM, Euler, EulerA, DPMPP2M, LMS, PNDM} {
		aliases[strings.ToLower(kindInfo[k].class)] = k
	}
}

// Kinds returns every sampler kind.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// DisplayName returns the name AUTOMATIC1111 writes in PNG parameters
// ("Euler a", "DPM++ 2M Karras", "PLMS", ...).
func (k Kind) DisplayName() string { return kindInfo[k].display }

// ClassName returns the diffusers scheduler class k reproduces.
func (k Kind) ClassName() string { return kindInfo[k].class }

// ParseKind resolves a sampler name case-insensitively: the kind names
// (euler_a), AUTOMATIC1111's display names ("Euler a", "DPM++ 2M Karras",
// "PLMS") and diffusers class names (EulerDiscreteScheduler; a
// DPMSolverMultistepScheduler is dpmpp_2m).
func ParseKind(name string) (Kind, error) {
	key := strings.ToLower(strings.Join(strings.Fields(name), " "))
	if k, ok := aliases[key]; ok {
		return k, nil
	}
	if k, ok := aliases[strings.NewReplacer(" ", "_", "-", "_").Replace(key)]; ok {
		return k, nil
	}
	valid := make([]string, 0, 2*len(kinds))
	for _, k := range kinds {
		valid = append(valid, string(k))
	}
	for _, k := range kinds {
		valid = append(valid, fmt.Sprintf("%q", k.DisplayName()))
	}
	return "", fmt.Errorf("sampling: unknown sampler %q (valid: %s)", name, strings.Join(valid, ", "))
}

// DefaultKind returns the sampler of the config's _class_name: the
// scheduler a model ships with. A DPMSolverMultistepScheduler with
// use_karras_sigmas is dpmpp_2m_karras.
func DefaultKind(c Config) (Kind, error) {
	switch c.ClassName {
	case "DDIMScheduler":
		return DDIM, nil
	case "PNDMScheduler":
		return PNDM, nil
	case "EulerDiscreteScheduler":
		return Euler, nil
	case "EulerAncestralDiscreteScheduler":
		return EulerA, nil
	case "LMSDiscreteScheduler":
		return LMS, nil
	case "DPMSolverMultistepScheduler":
		if c.Has("use_karras_sigmas") && c.UseKarrasSigmas {
			return DPMPP2MKarras, nil
		}
		return DPMPP2M, nil
	case "":
		return "", fmt.Errorf("sampling: scheduler config has no _class_name")
	}
	return "", fmt.Errorf("sampling: scheduler class %q not supported (supported: DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, LMSDiscreteScheduler, DPMSolverMultistepScheduler)", c.ClassName)
}

// classDefaults lists, per diffusers 0.27.2 class, every __init__ argument
// and its default, in signature order.
var classDefaults = func() map[string][]keyDefault {
	common := []keyDefault{
		{"num_train_timesteps", 1000}, {"beta_start", 0.0001}, {"beta_end", 0.02},
		{"beta_schedule", "linear"}, {"trained_betas", nil},
	}
	with := func(kds ...keyDefault) []keyDefault { return append(append([]keyDefault(nil), common...), kds...) }
	return map[string][]keyDefault{
		"DDIMScheduler": with(
			keyDefault{"clip_sample", true}, keyDefault{"set_alpha_to_one", true}, keyDefault{"steps_offset", 0},
			keyDefault{"prediction_type", "epsilon"}, keyDefault{"thresholding", false},
			keyDefault{"dynamic_thresholding_ratio", 0.995}, keyDefault{"clip_sample_range", 1.0},
			keyDefault{"sample_max_value", 1.0}, keyDefault{"timestep_spacing", "leading"},
			keyDefault{"rescale_betas_zero_snr", false}),
		"PNDMScheduler": with(
			keyDefault{"skip_prk_steps", false}, keyDefault{"set_alpha_to_one", false},
			keyDefault{"prediction_type", "epsilon"}, keyDefault{"timestep_spacing", "leading"},
			keyDefault{"steps_offset", 0}),
		"EulerDiscreteScheduler": with(
			keyDefault{"prediction_type", "epsilon"}, keyDefault{"interpolation_type", "linear"},
			keyDefault{"use_karras_sigmas", false}, keyDefault{"sigma_min", nil}, keyDefault{"sigma_max", nil},
			keyDefault{"timestep_spacing", "linspace"}, keyDefault{"timestep_type", "discrete"},
			keyDefault{"steps_offset", 0}, keyDefault{"rescale_betas_zero_snr", false}),
		"EulerAncestralDiscreteScheduler": with(
			keyDefault{"prediction_type", "epsilon"}, keyDefault{"timestep_spacing", "linspace"},
			keyDefault{"steps_offset", 0}, keyDefault{"rescale_betas_zero_snr", false}),
		"LMSDiscreteScheduler": with(
			keyDefault{"use_karras_sigmas", false}, keyDefault{"prediction_type", "epsilon"},
			keyDefault{"timestep_spacing", "linspace"}, keyDefault{"steps_offset", 0}),
		"DPMSolverMultistepScheduler": with(
			keyDefault{"solver_order", 2}, keyDefault{"prediction_type", "epsilon"},
			keyDefault{"thresholding", false}, keyDefault{"dynamic_thresholding_ratio", 0.995},
			keyDefault{"sample_max_value", 1.0}, keyDefault{"algorithm_type", "dpmsolver++"},
			keyDefault{"solver_type", "midpoint"}, keyDefault{"lower_order_final", true},
			keyDefault{"euler_at_final", false}, keyDefault{"use_karras_sigmas", false},
			keyDefault{"use_lu_lambdas", false}, keyDefault{"final_sigmas_type", "zero"},
			keyDefault{"lambda_min_clipped", math.Inf(-1)}, keyDefault{"variance_type", nil},
			keyDefault{"timestep_spacing", "linspace"}, keyDefault{"steps_offset", 0},
			keyDefault{"rescale_betas_zero_snr", false}),
	}
}()

type keyDefault struct {
	key   string
	value any
}

// Scheduler is one sampler configured as diffusers' Class.from_config(cfg)
// would be, with its training tables computed once. It holds no per-run
// state: Plan and Sample may be called concurrently.
type Scheduler struct {
	Kind Kind
	// Effective is the configuration the class ends up with: exactly the
	// class's own keys (all present), each from the file if it had it and
	// the class default otherwise, plus the overrides the kind implies
	// (DPM++ 2M: algorithm_type dpmsolver++, solver_order 2,
	// use_karras_sigmas false, or true for the Karras kind).
	Effective Config

	betas         []float32
	alphasCumprod []float32
	sigmas        []float32 // ((1-ᾱ)/ᾱ)^½ per training timestep, ascending in t
	logSigmas     []float32
	finalAlpha    float32 // DDIM/PNDM ᾱ past the last step
}

// New builds the sampler k from a scheduler config (typically the model's
// scheduler/scheduler_config.json), resolving absent keys to the defaults
// of k's diffusers class. It fails on settings it does not implement.
func New(k Kind, c Config) (*Scheduler, error) {
	class := k.ClassName()
	if class == "" {
		return nil, fmt.Errorf("sampling: unknown sampler kind %q", k)
	}
	var eff Config
	for _, kd := range classDefaults[class] {
		if c.Has(kd.key) {
			copyField(&eff, c, kd.key)
			continue
		}
		if err := eff.Set(kd.key, kd.value); err != nil {
			panic(err) // a bad classDefaults entry
		}
	}
	must := func(key string, v any) {
		if err := eff.Set(key, v); err != nil {
			panic(err)
		}
	}
	must("_class_name", class)
	switch k {
	case DPMPP2M, DPMPP2MKarras:
		must("algorithm_type", "dpmsolver++")
		must("solver_order", 2)
		must("use_karras_sigmas", k == DPMPP2MKarras)
	}
	s := &Scheduler{Kind: k, Effective: eff}
	if err := s.validate(); err != nil {
		return nil, err
	}
	rescale := eff.Has("rescale_betas_zero_snr")
	betas, err := betaTable(eff, rescale)
	if err != nil {
		return nil, err
	}
	s.betas = betas
	alphas := make([]float32, len(betas))
	for i, b := range betas {
		alphas[i] = 1 - b
	}
	s.alphasCumprod = cumprod(alphas)
	if rescale && eff.RescaleBetasZeroSNR && k != DDIM {
		// Euler, Euler a and DPM-Solver: "close to 0 without being 0 so
		// first sigma is not inf" (the fp16 smallest subnormal).
		s.alphasCumprod[len(s.alphasCumprod)-1] = 0x1p-24
	}
	s.sigmas = trainSigmas(s.alphasCumprod)
	s.logSigmas = logSigmas32(s.sigmas)
	s.finalAlpha = s.alphasCumprod[0]
	if eff.SetAlphaToOne && (k == DDIM || k == PNDM) {
		s.finalAlpha = 1
	}
	return s, nil
}

// validate rejects effective settings the samplers do not implement.
func (s *Scheduler) validate() error {
	e := s.Effective
	bad := func(format string, args ...any) error {
		return fmt.Errorf("sampling: %s: "+format, append([]any{s.Kind}, args...)...)
	}
	switch e.TimestepSpacing {
	case "linspace", "leading", "trailing":
	default:
		return bad("timestep_spacing %q not supported (want linspace, leading or trailing)", e.TimestepSpacing)
	}
	pred := map[string]bool{"epsilon": true, "v_prediction": true}
	switch s.Kind {
	case DDIM, Euler, LMS, DPMPP2M, DPMPP2MKarras:
		pred["sample"] = true
	}
	if !pred[e.PredictionType] {
		return bad("prediction_type %q not supported", e.PredictionType)
	}
	if e.Thresholding {
		return bad("thresholding (dynamic thresholding) not supported")
	}
	switch s.Kind {
	case Euler:
		if e.InterpolationType != "linear" {
			return bad("interpolation_type %q not supported (want linear)", e.InterpolationType)
		}
		if e.TimestepType != "discrete" && e.TimestepType != "continuous" {
			return bad("timestep_type %q not supported", e.TimestepType)
		}
	case DPMPP2M, DPMPP2MKarras:
		if e.SolverType != "midpoint" && e.SolverType != "heun" {
			return bad("solver_type %q not supported (want midpoint or heun)", e.SolverType)
		}
		if e.FinalSigmasType != "zero" && e.FinalSigmasType != "sigma_min" {
			return bad("final_sigmas_type %q not supported (want zero or sigma_min)", e.FinalSigmasType)
		}
		if e.VarianceType != "" {
			return bad("variance_type %q not supported", e.VarianceType)
		}
		if e.UseKarrasSigmas && e.UseLuLambdas {
			return bad("use_karras_sigmas and use_lu_lambdas are exclusive")
		}
	case DDIM:
		if e.ClipSampleRange <= 0 && e.ClipSample {
			return bad("clip_sample_range %g must be positive", e.ClipSampleRange)
		}
	}
	return nil
}

// AlphasCumprod returns a copy of the float32 cumulative product of
// alphas over the training timesteps (diffusers' alphas_cumprod).
func (s *Scheduler) AlphasCumprod() []float32 { return append([]float32(nil), s.alphasCumprod...) }

// Plan is what diffusers' set_timesteps(Steps) yields.
type Plan struct {
	// Timesteps are the model times of the loop iterations, descending
	// (PNDM with skip_prk_steps has Steps+1, its first repeated). Integer
	// valued except for Euler-type linspace/Karras schedules.
	Timesteps []float64
	// Sigmas are the noise levels (float32 values), one per timestep plus
	// a trailing 0; nil for DDIM and PNDM.
	Sigmas []float64
	// InitNoiseSigma scales unit-variance initial noise into the first
	// latents (float32 value).
	InitNoiseSigma float64
	// Steps is num_inference_steps; Order is the scheduler's order (1 for
	// every sampler here), the unit of img2img's start index.
	Steps, Order int
}

// Plan returns the timesteps (and sigmas) for steps inference steps,
// 1 <= steps <= num_train_timesteps.
func (s *Scheduler) Plan(steps int) (Plan, error) {
	if n := s.Effective.NumTrainTimesteps; steps < 1 || steps > n {
		return Plan{}, fmt.Errorf("sampling: %d steps, want 1 to %d", steps, n)
	}
	var p Plan
	var err error
	switch s.Kind {
	case DDIM:
		p, err = s.planDDIM(steps)
	case PNDM:
		p, err = s.planPNDM(steps)
	case Euler, EulerA, LMS:
		p, err = s.planDiscrete(steps)
	case DPMPP2M, DPMPP2MKarras:
		p, err = s.planDPM(steps)
	default:
		return Plan{}, fmt.Errorf("sampling: unknown sampler kind %q", s.Kind)
	}
	if err != nil {
		return Plan{}, err
	}
	p.Steps, p.Order = steps, 1
	return p, nil
}

// alphaAt returns alphas_cumprod[t] with Python's indexing (negative t
// counts from the end, as diffusers does for the -1 that "trailing"
// spacing can produce), or an error where diffusers raises IndexError.
func (s *Scheduler) alphaAt(t int) (float32, error) {
	n := len(s.alphasCumprod)
	if t < -n || t >= n {
		return 0, fmt.Errorf("sampling: timestep %d outside the %d training timesteps", t, n)
	}
	if t < 0 {
		t += n
	}
	return s.alphasCumprod[t], nil
}

// Model returns the raw UNet output (noise_pred: epsilon, v or sample per
// prediction_type, after any guidance) for the scaled model input x at
// timestep t. Euler-type timesteps may be fractional.
type Model func(ctx context.Context, x *tensor.Tensor, t float64) (*tensor.Tensor, error)

// NoiseSource draws standard normal noise of a shape (rng.Source has this
// method set).
type NoiseSource interface {
	Randn(shape ...int) *tensor.Tensor
}

// Step reports one finished loop iteration.
type Step struct {
	I int     // index into Plan.Timesteps
	T float64 // Plan.Timesteps[I]
	// X is the sample after the step (diffusers' prev_sample); Denoised is
	// the x0 estimate (pred_original_sample; DPM-Solver's data
	// prediction), nil for PNDM which has none. Both are fresh tensors the
	// callback may keep but must not modify (X is the next step's input).
	X, Denoised *tensor.Tensor
}

// Options tune one Sample run.
type Options struct {
	// Eta is DDIM's eta (0: deterministic DDIM, 1: DDPM-like); ignored
	// by the other samplers.
	Eta float64
	// Noise draws the ancestral noise (Euler a, every step) and DDIM's
	// variance noise (eta > 0, every step); unused otherwise and may then
	// be nil.
	Noise NoiseSource
	// Callback, if set, is called after every step; an error stops the
	// run and is returned.
	Callback func(Step) error
	// Start is the first loop index (img2img: Img2ImgStart).
	Start int
}

// Sample runs the denoising loop over plan.Timesteps[opts.Start:] and
// returns the final latents. x is the initial latents already multiplied by
// plan.InitNoiseSigma (txt2img) or noised with AddNoise (img2img); it is not
// modified. Sample checks ctx before each model call and returns ctx.Err()
// (context.Canceled) as soon as it is set.
func (s *Scheduler) Sample(ctx context.Context, model Model, x *tensor.Tensor, plan Plan, opts Options) (*tensor.Tensor, error) {
	if err := s.checkRun(x, plan, opts); err != nil {
		return nil, err
	}
	switch s.Kind {
	case DDIM:
		return sampleDDIM(ctx, s, model, x, plan, opts)
	case Euler:
		return sampleEuler(ctx, s, model, x, plan, opts)
	case EulerA:
		return sampleEulerAncestral(ctx, s, model, x, plan, opts)
	case DPMPP2M, DPMPP2MKarras:
		return sampleDPMPP2M(ctx, s, model, x, plan, opts)
	case LMS:
		return sampleLMS(ctx, s, model, x, plan, opts)
	case PNDM:
		return samplePNDM(ctx, s, model, x, plan, opts)
	}
	return nil, fmt.Errorf("sampling: unknown sampler kind %q", s.Kind)
}

func (s *Scheduler) checkRun(x *tensor.Tensor, plan Plan, opts Options) error {
	if x == nil || x.Len() == 0 {
		return fmt.Errorf("sampling: empty initial latents")
	}
	if len(plan.Timesteps) == 0 || plan.Steps < 1 {
		return fmt.Errorf("sampling: empty plan")
	}
	if opts.Start < 0 || opts.Start >= len(plan.Timesteps) {
		return fmt.Errorf("sampling: start index %d outside the plan's %d timesteps", opts.Start, len(plan.Timesteps))
	}
	switch s.Kind {
	case DDIM, PNDM:
	default:
		if len(plan.Sigmas) != len(plan.Timesteps)+1 {
			return fmt.Errorf("sampling: %s plan has %d sigmas for %d timesteps, want one more", s.Kind, len(plan.Sigmas), len(plan.Timesteps))
		}
	}
	if opts.Eta < 0 || math.IsNaN(opts.Eta) {
		return fmt.Errorf("sampling: eta %g, want >= 0", opts.Eta)
	}
	if opts.Noise == nil && (s.Kind == EulerA || (s.Kind == DDIM && opts.Eta > 0)) {
		return fmt.Errorf("sampling: %s needs a noise source", s.Kind)
	}
	return nil
}

// callModel checks ctx, runs the model and checks the output's shape.
func callModel(ctx context.Context, model Model, in *tensor.Tensor, i int, t float64) (*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := model(ctx, in, t)
	if err != nil {
		return nil, fmt.Errorf("sampling: model at step %d (t=%g): %w", i, t, err)
	}
	if out == nil || !tensor.SameShape(out, in) {
		var got []int
		if out != nil {
			got = out.Shape
		}
		return nil, fmt.Errorf("sampling: model at step %d returned shape %v for input %v", i, got, in.Shape)
	}
	return out, nil
}

// drawNoise draws noise shaped like x.
func drawNoise(src NoiseSource, x *tensor.Tensor) (*tensor.Tensor, error) {
	n := src.Randn(x.Shape...)
	if n == nil || n.Len() != x.Len() {
		return nil, fmt.Errorf("sampling: noise source returned %v for shape %v", n, x.Shape)
	}
	return n, nil
}

func (o Options) emit(st Step) error {
	if o.Callback == nil {
		return nil
	}
	return o.Callback(st)
}

// AddNoise noises original to the level of plan.Timesteps[index] as
// diffusers' add_noise does (img2img): DDIM and PNDM √ᾱ·x + √(1-ᾱ)·n;
// Euler, Euler a and LMS x + σ·n; DPM-Solver α_t·x + σ_t·n with
// α_t = 1/√(σ²+1), σ_t = σ·α_t. It panics if the shapes differ or index is
// outside the plan.
func (s *Scheduler) AddNoise(original, noise *tensor.Tensor, plan Plan, index int) *tensor.Tensor {
	if !tensor.SameShape(original, noise) {
		panic(fmt.Sprintf("sampling: AddNoise shapes %v and %v differ", original.Shape, noise.Shape))
	}
	if index < 0 || index >= len(plan.Timesteps) {
		panic(fmt.Sprintf("sampling: AddNoise index %d outside the plan's %d timesteps", index, len(plan.Timesteps)))
	}
	out := tensor.New(original.Shape...)
	o, n, y := original.Data, noise.Data, out.Data
	switch s.Kind {
	case DDIM, PNDM:
		a, err := s.alphaAt(int(plan.Timesteps[index]))
		if err != nil {
			panic(err)
		}
		sa, sb := sqrt32(a), sqrt32(1-a)
		for i := range y {
			y[i] = float32(sa*o[i]) + float32(sb*n[i])
		}
	case DPMPP2M, DPMPP2MKarras:
		alpha, sigma := dpmAlphaSigma(float32(plan.Sigmas[index]))
		for i := range y {
			y[i] = float32(alpha*o[i]) + float32(sigma*n[i])
		}
	default:
		sigma := float32(plan.Sigmas[index])
		for i := range y {
			y[i] = o[i] + float32(n[i]*sigma)
		}
	}
	return out
}

// Img2ImgStart returns the first loop index for img2img with the given
// strength, as diffusers 0.27's StableDiffusionImg2ImgPipeline.get_timesteps:
// init_timestep = min(int(steps*strength), steps), t_start = steps -
// init_timestep, index t_start*order. strength must be in (0, 1], and at
// least one denoising step must remain.
func (s *Scheduler) Img2ImgStart(plan Plan, steps int, strength float64) (int, error) {
	if !(strength > 0 && strength <= 1) {
		return 0, fmt.Errorf("sampling: strength %g, want 0 < strength <= 1", strength)
	}
	if steps < 1 {
		return 0, fmt.Errorf("sampling: %d steps, want at least 1", steps)
	}
	init := min(int(float64(steps)*strength), steps)
	if init < 1 {
		return 0, fmt.Errorf("sampling: strength %g with %d steps leaves no denoising step (steps*strength < 1)", strength, steps)
	}
	order := max(plan.Order, 1)
	start := max(steps-init, 0) * order
	if start >= len(plan.Timesteps) {
		return 0, fmt.Errorf("sampling: strength %g with %d steps leaves no denoising step", strength, steps)
	}
	return start, nil
}

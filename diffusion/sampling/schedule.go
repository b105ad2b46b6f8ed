package sampling

// Noise schedules and timestep spacings, computed as diffusers 0.27.2's
// schedulers compute them (scheduling_ddim.py, scheduling_euler_discrete.py,
// scheduling_dpmsolver_multistep.py, ... __init__ and set_timesteps).
//
// The reference mixes torch float32 and numpy float64 arithmetic; each
// helper says which it mirrors. The training tables (betas,
// alphas_cumprod, sigmas) are torch float32; timestep spacings and
// interpolation are numpy float64 (then cast). Where precision matters the
// float32 steps are written out one rounding at a time, with explicit
// float32(...) conversions so that Go never fuses a multiply-add the
// reference did not.

import (
	"fmt"
	"math"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// betaTable returns the float32 betas of cfg (diffusers' __init__):
// trained_betas, or beta_schedule linear / scaled_linear /
// squaredcos_cap_v2, then rescale_betas_zero_snr if set and rescale is
// true (only the classes that have that key pass it).
func betaTable(cfg Config, rescale bool) ([]float32, error) {
	n := cfg.NumTrainTimesteps
	if n < 2 {
		return nil, fmt.Errorf("sampling: num_train_timesteps %d, want at least 2", n)
	}
	var betas []float32
	switch {
	case cfg.TrainedBetas != nil:
		if len(cfg.TrainedBetas) != n {
			return nil, fmt.Errorf("sampling: %d trained_betas for num_train_timesteps %d", len(cfg.TrainedBetas), n)
		}
		betas = make([]float32, n)
		for i, b := range cfg.TrainedBetas {
			betas[i] = float32(b)
		}
	case cfg.BetaSchedule == "linear":
		betas = torchLinspace32(cfg.BetaStart, cfg.BetaEnd, n)
	case cfg.BetaSchedule == "scaled_linear":
		// torch.linspace(beta_start**0.5, beta_end**0.5, n) ** 2
		betas = torchLinspace32(math.Sqrt(cfg.BetaStart), math.Sqrt(cfg.BetaEnd), n)
		for i, b := range betas {
			betas[i] = b * b
		}
	case cfg.BetaSchedule == "squaredcos_cap_v2":
		betas = cosineBetas(n)
	default:
		return nil, fmt.Errorf("sampling: beta_schedule %q not supported (want linear, scaled_linear or squaredcos_cap_v2)", cfg.BetaSchedule)
	}
	if rescale && cfg.RescaleBetasZeroSNR {
		betas = rescaleZeroTerminalSNR(betas)
	}
	return betas, nil
}

// torchLinspace32 mirrors torch.linspace(start, end, steps,
// dtype=torch.float32) on a CPU with AVX2 (torch 1.13's linspace kernel):
// the first half counts up from start, the second half down from end, in
// 8-wide vectors whose lanes are base + j*step, all with fused
// multiply-adds (the AVX2 kernels are built with FMA contraction). Checked
// bit for bit against the reference alphas_cumprod.
func torchLinspace32(start, end float64, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = float32(start)
		return out
	}
	s, e := float32(start), float32(end)
	step := (e - s) / float32(steps-1)
	half := steps / 2
	fma := func(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }
	at := func(idx int) float32 { // the scalar kernel
		if idx < half {
			return fma(step, float32(idx), s)
		}
		return fma(-step, float32(steps-idx-1), e)
	}
	const vec = 8 // Vectorized<float>::size() with AVX2
	i := 0
	for ; i+2*vec <= steps; i += vec {
		// vectorized_loop runs two vectors per iteration; each vector's
		// base is chosen by its own first index.
		base := at(i)
		for j := 0; j < vec; j++ {
			out[i+j] = fma(float32(j), step, base)
		}
	}
	i = steps / (2 * vec) * (2 * vec)
	for ; i < steps; i++ {
		out[i] = at(i)
	}
	return out
}

// cosineBetas is diffusers' betas_for_alpha_bar (Glide's cosine schedule,
// max_beta 0.999), computed in float64 and stored as float32.
func cosineBetas(n int) []float32 {
	alphaBar := func(t float64) float64 {
		c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
		return c * c
	}
	betas := make([]float32, n)
	for i := range betas {
		t1 := float64(i) / float64(n)
		t2 := float64(i+1) / float64(n)
		betas[i] = float32(math.Min(1-alphaBar(t2)/alphaBar(t1), 0.999))
	}
	return betas
}

// rescaleZeroTerminalSNR is diffusers' rescale_zero_terminal_snr
// (https://arxiv.org/abs/2305.08891, Algorithm 1) in torch float32.
func rescaleZeroTerminalSNR(betas []float32) []float32 {
	alphas := make([]float32, len(betas))
	for i, b := range betas {
		alphas[i] = 1 - b
	}
	sq := cumprod(alphas)
	for i, a := range sq {
		sq[i] = sqrt32(a)
	}
	a0, aT := sq[0], sq[len(sq)-1]
	scale := a0 / (a0 - aT)
	for i := range sq {
		sq[i] = (sq[i] - aT) * scale
	}
	out := make([]float32, len(betas))
	prev := float32(0)
	for i, v := range sq {
		bar := v * v
		if i == 0 {
			out[i] = 1 - bar
		} else {
			out[i] = 1 - bar/prev
		}
		prev = bar
	}
	return out
}

// cumprod mirrors torch.cumprod on a float32 CPU tensor: the running
// product is kept in float64 (acc_type) and each output rounded to float32.
func cumprod(xs []float32) []float32 {
	out := make([]float32, len(xs))
	acc := 1.0
	for i, x := range xs {
		acc *= float64(x)
		out[i] = float32(acc)
	}
	return out
}

// trainSigmas returns ((1 - ᾱ)/ᾱ)^½ for each training timestep, in torch
// float32, ascending in t.
func trainSigmas(alphasCumprod []float32) []float32 {
	s := make([]float32, len(alphasCumprod))
	for i, a := range alphasCumprod {
		s[i] = sqrt32((1 - a) / a)
	}
	return s
}

// numpyLinspace mirrors np.linspace(start, stop, num) (float64, endpoint).
func numpyLinspace(start, stop float64, num int) []float64 {
	y := make([]float64, num)
	if num == 1 {
		y[0] = start
		return y
	}
	step := (stop - start) / float64(num-1)
	for i := range y {
		y[i] = float64(i)*step + start
	}
	y[num-1] = stop
	return y
}

// numpyArange mirrors np.arange(start, stop, step) called with Python
// numbers and a float step: length ceil((stop-start)/step), the second
// value start+step, and the rest start + i*(second-start). Its length can
// exceed the nominal count by one (e.g. arange(1000, 0, -1000/61) has 62
// values), which diffusers' "trailing" spacing inherits.
func numpyArange(start, stop, step float64) []float64 {
	n := int(math.Ceil((stop - start) / step))
	if n <= 0 {
		return nil
	}
	y := make([]float64, n)
	y[0] = start
	if n == 1 {
		return y
	}
	y[1] = start + step
	delta := y[1] - y[0]
	for i := 2; i < n; i++ {
		y[i] = start + float64(float64(i)*delta)
	}
	return y
}

// roundEven is numpy's round (half to even).
func roundEven(x float64) float64 { return math.RoundToEven(x) }

func reversed[T any](xs []T) []T {
	out := make([]T, len(xs))
	for i, x := range xs {
		out[len(xs)-1-i] = x
	}
	return out
}

// numpyInterp mirrors np.interp(x, arange(len(fp)), fp) in float64 (numpy
// 1.24's arr_interp: exact knots return fp[j], left/right clamp, otherwise
// slope*(x-j) + fp[j]).
func numpyInterp(x float64, fp []float32) float64 {
	n := len(fp)
	switch {
	case math.IsNaN(x):
		return x
	case x < 0:
		return float64(fp[0])
	case x >= float64(n-1):
		return float64(fp[n-1])
	}
	j := int(math.Floor(x))
	if float64(j) == x {
		return float64(fp[j])
	}
	slope := float64(fp[j+1]) - float64(fp[j]) // (fp[j+1]-fp[j]) / (xp[j+1]-xp[j]), xp step 1
	return float64(slope*(x-float64(j))) + float64(fp[j])
}

// karrasSigmas is diffusers' _convert_to_karras (Karras et al. 2022,
// https://arxiv.org/abs/2206.00364, eq. 5, rho = 7) in numpy float64.
func karrasSigmas(sigmaMin, sigmaMax float64, n int) []float64 {
	const rho = 7.0
	ramp := numpyLinspace(0, 1, n)
	minInv := math.Pow(sigmaMin, 1/rho)
	maxInv := math.Pow(sigmaMax, 1/rho)
	out := make([]float64, n)
	for i, r := range ramp {
		out[i] = math.Pow(maxInv+float64(r*(minInv-maxInv)), rho)
	}
	return out
}

// logSigmas32 is np.log of the float32 training sigmas (a float32 array).
func logSigmas32(sigmas []float32) []float32 {
	out := make([]float32, len(sigmas))
	for i, s := range sigmas {
		out[i] = log32(s)
	}
	return out
}

// sigmaToT is diffusers' _sigma_to_t: the fractional training timestep
// whose log-sigma, linearly interpolated in logSigmas (ascending), equals
// log(sigma). Under numpy 1.24's value-based casting the comparison and
// the interpolation weight are float32 (a float64 scalar meets a float32
// array) and the final blend float64.
func sigmaToT(sigma float64, logSigmas []float32) float64 {
	ls := float32(math.Log(math.Max(sigma, 1e-10)))
	n := len(logSigmas)
	low := 0 // last index with logSigmas[i] <= ls, or 0 if none
	for i, l := range logSigmas {
		if ls-l >= 0 {
			low = i
		}
	}
	low = min(low, n-2)
	high := low + 1
	lo, hi := logSigmas[low], logSigmas[high]
	w := (lo - ls) / (lo - hi)
	w = min(max(w, 0), 1)
	return float64(1-w)*float64(low) + float64(w)*float64(high)
}

// planDiscrete is set_timesteps of the k-diffusion style discrete
// schedulers (EulerDiscrete, EulerAncestralDiscrete, LMSDiscrete): float32
// timesteps by spacing, sigmas interpolated at them (np.interp, float64,
// then float32) or, with use_karras_sigmas (Euler, LMS), a Karras schedule
// between the interpolated ends (Euler's sigma_min/sigma_max override
// them) with timesteps recovered by sigmaToT; then a trailing 0.
// init_noise_sigma is max σ for linspace/trailing spacing, else √(max σ²+1).
func (s *Scheduler) planDiscrete(n int) (Plan, error) {
	e := s.Effective
	T := e.NumTrainTimesteps
	var ts []float32
	switch e.TimestepSpacing {
	case "linspace":
		for _, v := range reversed(numpyLinspace(0, float64(T-1), n)) {
			ts = append(ts, float32(v))
		}
	case "leading":
		ratio := T / n
		for i := n - 1; i >= 0; i-- {
			ts = append(ts, float32(i*ratio)+float32(e.StepsOffset))
		}
	case "trailing":
		for _, v := range numpyArange(float64(T), 0, -float64(T)/float64(n)) {
			ts = append(ts, float32(roundEven(v))-1)
		}
	}
	sig := make([]float64, len(ts))
	for i, t := range ts {
		sig[i] = numpyInterp(float64(t), s.sigmas)
	}
	if e.UseKarrasSigmas && (s.Kind == Euler || s.Kind == LMS) {
		lo, hi := sig[len(sig)-1], sig[0]
		if s.Kind == Euler && e.SigmaMin != nil {
			lo = *e.SigmaMin
		}
		if s.Kind == Euler && e.SigmaMax != nil {
			hi = *e.SigmaMax
		}
		sig = karrasSigmas(lo, hi, n)
		ts = ts[:0]
		for _, v := range sig {
			ts = append(ts, float32(sigmaToT(v, s.logSigmas)))
		}
	}
	p := Plan{Timesteps: make([]float64, len(ts)), Sigmas: make([]float64, len(sig)+1)}
	maxSigma := float32(0)
	for i, v := range sig {
		s32 := float32(v)
		p.Sigmas[i] = float64(s32)
		maxSigma = max(maxSigma, s32)
	}
	for i, t := range ts {
		p.Timesteps[i] = float64(t)
	}
	if s.Kind == Euler && e.TimestepType == "continuous" && e.PredictionType == "v_prediction" {
		for i := range p.Timesteps {
			p.Timesteps[i] = float64(0.25 * log32(float32(p.Sigmas[i])))
		}
	}
	p.InitNoiseSigma = float64(maxSigma)
	if e.TimestepSpacing == "leading" {
		p.InitNoiseSigma = float64(sqrt32(float32(maxSigma*maxSigma) + 1))
	}
	return p, nil
}

// sigmaScale is scale_model_input's divisor (σ²+1)^½ of the Euler-type
// schedulers, in float32.
func sigmaScale(sigma float32) float32 { return sqrt32(float32(sigma*sigma) + 1) }

// scaleInput returns x / (σ²+1)^½.
func scaleInput(x *tensor.Tensor, sigma float32) *tensor.Tensor {
	d := sigmaScale(sigma)
	out := tensor.New(x.Shape...)
	for i, v := range x.Data {
		out.Data[i] = v / d
	}
	return out
}

// sigmaDenoised is the x0 estimate of the Euler-type schedulers (σ-space,
// "c_skip/c_out" form): epsilon x - σ·m; v_prediction
// m·(-σ/(σ²+1)^½) + x/(σ²+1); sample m.
func sigmaDenoised(predictionType string, x, m *tensor.Tensor, sigma float32) *tensor.Tensor {
	out := tensor.New(x.Shape...)
	y, xs, ms := out.Data, x.Data, m.Data
	switch predictionType {
	case "epsilon":
		for i := range y {
			y[i] = xs[i] - float32(sigma*ms[i])
		}
	case "v_prediction":
		s2 := float32(sigma*sigma) + 1
		cOut := -sigma / sqrt32(s2)
		for i := range y {
			y[i] = float32(ms[i]*cOut) + xs[i]/s2
		}
	default: // sample
		copy(y, ms)
	}
	return out
}

package sampling

// DPM-Solver++(2M): Lu et al., "DPM-Solver++: Fast Solver for Guided
// Sampling of Diffusion Probabilistic Models", https://arxiv.org/abs/2211.01095,
// Algorithm 2 (multistep, data prediction) — as diffusers 0.27.2's
// DPMSolverMultistepScheduler with algorithm_type "dpmsolver++" and
// solver_order 2 (scheduling_dpmsolver_multistep.py) computes it: the
// coefficients from float32 σ, α_t = 1/(σ²+1)^½, σ_t = σ·α_t and
// λ = log α_t - log σ_t in torch float32; the first step, and the last when
// final_sigmas_type is "zero" (or lower_order_final with fewer than 15
// steps, or euler_at_final), are first order (DDIM-like).

import (
	"context"
	"math"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// planDPM is DPMSolverMultistepScheduler.set_timesteps: integer timesteps
// (rounded from Karras or Lu sigmas when those are used), float32 sigmas
// and a final sigma of 0 or the smallest training sigma. The timesteps stop
// where λ(t) falls below lambda_min_clipped.
func (s *Scheduler) planDPM(n int) (Plan, error) {
	e := s.Effective
	T := e.NumTrainTimesteps
	last := T
	if !math.IsInf(e.LambdaMinClipped, -1) {
		// searchsorted(flip(λ_t), lambda_min_clipped): how many λ (ascending
		// once flipped, i.e. from t = T-1 down) lie below the threshold.
		clipped := 0
		for t := T - 1; t >= 0; t-- {
			a := s.alphasCumprod[t]
			lambda := log32(sqrt32(a)) - log32(sqrt32(1-a))
			if float64(lambda) < e.LambdaMinClipped {
				clipped++
			}
		}
		last = T - clipped
	}
	var ts []float64
	switch e.TimestepSpacing {
	case "linspace":
		v := reversed(numpyLinspace(0, float64(last-1), n+1))
		for _, x := range v[:n] {
			ts = append(ts, roundEven(x))
		}
	case "leading":
		ratio := last / (n + 1)
		for i := n; i >= 1; i-- {
			ts = append(ts, float64(i*ratio+e.StepsOffset))
		}
	case "trailing":
		for _, v := range numpyArange(float64(last), 0, -float64(T)/float64(n)) {
			ts = append(ts, roundEven(v)-1)
		}
	}
	var sig []float64
	switch {
	case e.UseKarrasSigmas:
		sig = karrasSigmas(float64(s.sigmas[0]), float64(s.sigmas[T-1]), n)
	case e.UseLuLambdas:
		// _convert_to_lu over flip(log σ): λ_max + ramp·(λ_min - λ_max), then σ = e^λ.
		lmin, lmax := float64(s.logSigmas[0]), float64(s.logSigmas[T-1])
		for _, r := range numpyLinspace(0, 1, n) {
			sig = append(sig, math.Exp(lmax+float64(r*(lmin-lmax))))
		}
	default:
		for _, t := range ts {
			sig = append(sig, numpyInterp(t, s.sigmas))
		}
	}
	if e.UseKarrasSigmas || e.UseLuLambdas {
		ts = ts[:0]
		for _, v := range sig {
			ts = append(ts, roundEven(sigmaToT(v, s.logSigmas)))
		}
	}
	p := Plan{Timesteps: ts, Sigmas: make([]float64, len(sig)+1), InitNoiseSigma: 1}
	for i, v := range sig {
		p.Sigmas[i] = float64(float32(v))
	}
	if e.FinalSigmasType == "sigma_min" {
		p.Sigmas[len(sig)] = float64(s.sigmas[0])
	}
	return p, nil
}

// dpmAlphaSigma is _sigma_to_alpha_sigma_t in float32.
func dpmAlphaSigma(sigma float32) (alpha, sigmaT float32) {
	alpha = 1 / sigmaScale(sigma)
	return alpha, sigma * alpha
}

// dpmLambda is log α_t - log σ_t (+Inf at σ = 0).
func dpmLambda(alpha, sigmaT float32) float32 { return log32(alpha) - log32(sigmaT) }

// sampleDPMPP2M runs the multistep loop, keeping the previous data
// prediction (x0) for the second-order update.
func sampleDPMPP2M(ctx context.Context, s *Scheduler, model Model, x *tensor.Tensor, plan Plan, opts Options) (*tensor.Tensor, error) {
	e := s.Effective
	n := len(plan.Timesteps)
	var prev *tensor.Tensor // the previous step's x0, m1
	lowerOrderNums := 0
	for i := opts.Start; i < n; i++ {
		t := plan.Timesteps[i]
		out, err := callModel(ctx, model, x, i, t) // scale_model_input is the identity
		if err != nil {
			return nil, err
		}
		lowerOrderFinal := i == n-1 && (e.EulerAtFinal || (e.LowerOrderFinal && n < 15) || e.FinalSigmasType == "zero")

		// convert_model_output: the data prediction x0.
		alphaS0, sigmaS0 := dpmAlphaSigma(float32(plan.Sigmas[i]))
		denoised := tensor.New(x.Shape...)
		x0, xs, m := denoised.Data, x.Data, out.Data
		switch e.PredictionType {
		case "epsilon":
			for j := range x0 {
				x0[j] = (xs[j] - float32(sigmaS0*m[j])) / alphaS0
			}
		case "v_prediction":
			for j := range x0 {
				x0[j] = float32(alphaS0*xs[j]) - float32(sigmaS0*m[j])
			}
		default: // sample
			copy(x0, m)
		}

		alphaT, sigmaT := dpmAlphaSigma(float32(plan.Sigmas[i+1]))
		lambdaT, lambdaS0 := dpmLambda(alphaT, sigmaT), dpmLambda(alphaS0, sigmaS0)
		h := lambdaT - lambdaS0
		c1 := sigmaT / sigmaS0
		c2 := alphaT * (exp32(-h) - 1)
		next := tensor.New(x.Shape...)
		nx := next.Data
		if lowerOrderNums < 1 || lowerOrderFinal || prev == nil {
			// dpm_solver_first_order_update
			for j := range nx {
				nx[j] = float32(c1*xs[j]) - float32(c2*x0[j])
			}
		} else {
			// multistep_dpm_solver_second_order_update
			alphaS1, sigmaS1 := dpmAlphaSigma(float32(plan.Sigmas[i-1]))
			h0 := lambdaS0 - dpmLambda(alphaS1, sigmaS1)
			r0 := h0 / h
			inv := 1 / r0
			m1 := prev.Data
			if e.SolverType == "heun" {
				c3 := alphaT * ((exp32(-h)-1)/h + 1)
				for j := range nx {
					d1 := float32(inv * (x0[j] - m1[j]))
					nx[j] = float32(c1*xs[j]) - float32(c2*x0[j]) + float32(c3*d1)
				}
			} else { // midpoint
				c3 := 0.5 * c2
				for j := range nx {
					d1 := float32(inv * (x0[j] - m1[j]))
					nx[j] = float32(c1*xs[j]) - float32(c2*x0[j]) - float32(c3*d1)
				}
			}
		}
		if lowerOrderNums < 2 {
			lowerOrderNums++
		}
		prev = denoised
		x = next
		if err := opts.emit(Step{I: i, T: t, X: x, Denoised: denoised}); err != nil {
			return nil, err
		}
	}
	return x, nil
}

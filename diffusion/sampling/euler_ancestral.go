package sampling

// Euler ancestral: k-diffusion's sample_euler_ancestral (eta 1,
// get_ancestral_step) — as diffusers 0.27.2's
// EulerAncestralDiscreteScheduler (scheduling_euler_ancestral_discrete.py)
// computes it, torch float32. Noise is drawn at every step, the last
// included (where σ_up = 0).

import (
	"context"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// sampleEulerAncestral steps to σ_down with Euler, then adds σ_up·noise,
// where σ_up = (σ_to²(σ_from²-σ_to²)/σ_from²)^½ and σ_down = (σ_to²-σ_up²)^½.
func sampleEulerAncestral(ctx context.Context, s *Scheduler, model Model, x *tensor.Tensor, plan Plan, opts Options) (*tensor.Tensor, error) {
	for i := opts.Start; i < len(plan.Timesteps); i++ {
		t := plan.Timesteps[i]
		sigma := float32(plan.Sigmas[i])
		out, err := callModel(ctx, model, scaleInput(x, sigma), i, t)
		if err != nil {
			return nil, err
		}
		denoised := sigmaDenoised(s.Effective.PredictionType, x, out, sigma)
		from, to := sigma, float32(plan.Sigmas[i+1])
		from2, to2 := from*from, to*to
		sigmaUp := sqrt32(float32(to2*(from2-to2)) / from2)
		sigmaDown := sqrt32(to2 - float32(sigmaUp*sigmaUp))
		dt := sigmaDown - sigma
		next := tensor.New(x.Shape...)
		for j, v := range x.Data {
			d := (v - denoised.Data[j]) / sigma
			next.Data[j] = v + float32(d*dt)
		}
		noise, err := drawNoise(opts.Noise, x)
		if err != nil {
			return nil, err
		}
		for j, n := range noise.Data {
			next.Data[j] += float32(n * sigmaUp)
		}
		x = next
		if err := opts.emit(Step{I: i, T: t, X: x, Denoised: denoised}); err != nil {
			return nil, err
		}
	}
	return x, nil
}

package sampling

// Euler: Karras et al., "Elucidating the Design Space of Diffusion-Based
// Generative Models", https://arxiv.org/abs/2206.00364, Algorithm 2 with
// s_churn = 0 (k-diffusion's sample_euler) — as diffusers 0.27.2's
// EulerDiscreteScheduler (scheduling_euler_discrete.py) computes it, torch
// float32.

import (
	"context"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// sampleEuler runs x ← x + (x - x0)/σ_i · (σ_{i+1} - σ_i), the model
// seeing x/(σ_i²+1)^½.
func sampleEuler(ctx context.Context, s *Scheduler, model Model, x *tensor.Tensor, plan Plan, opts Options) (*tensor.Tensor, error) {
	for i := opts.Start; i < len(plan.Timesteps); i++ {
		t := plan.Timesteps[i]
		sigma := float32(plan.Sigmas[i])
		out, err := callModel(ctx, model, scaleInput(x, sigma), i, t)
		if err != nil {
			return nil, err
		}
		denoised := sigmaDenoised(s.Effective.PredictionType, x, out, sigma)
		dt := float32(plan.Sigmas[i+1]) - sigma
		next := tensor.New(x.Shape...)
		for j, v := range x.Data {
			d := (v - denoised.Data[j]) / sigma
			next.Data[j] = v + float32(d*dt)
		}
		x = next
		if err := opts.emit(Step{I: i, T: t, X: x, Denoised: denoised}); err != nil {
			return nil, err
		}
	}
	return x, nil
}

package sampling

// DDIM: Song et al., "Denoising Diffusion Implicit Models",
// https://arxiv.org/abs/2010.02502, eq. 12 — as diffusers 0.27.2's
// DDIMScheduler (scheduling_ddim.py: set_timesteps, step, _get_variance)
// computes it, torch float32 throughout.

import (
	"context"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// planDDIM is DDIMScheduler.set_timesteps: integer timesteps, no sigmas.
func (s *Scheduler) planDDIM(n int) (Plan, error) {
	e := s.Effective
	T := e.NumTrainTimesteps
	var ts []float64
	switch e.TimestepSpacing {
	case "linspace":
		for _, v := range reversed(numpyLinspace(0, float64(T-1), n)) {
			ts = append(ts, roundEven(v))
		}
	case "leading":
		ratio := T / n
		for i := n - 1; i >= 0; i-- {
			ts = append(ts, float64(i*ratio+e.StepsOffset))
		}
	case "trailing":
		for _, v := range numpyArange(float64(T), 0, -float64(T)/float64(n)) {
			ts = append(ts, roundEven(v)-1)
		}
	}
	for _, t := range ts {
		if _, err := s.alphaAt(int(t)); err != nil {
			return Plan{}, err
		}
	}
	return Plan{Timesteps: ts, InitNoiseSigma: 1}, nil
}

// sampleDDIM runs the DDIM loop. The previous timestep is always
// t - num_train_timesteps // steps (whatever the spacing), ᾱ past the end
// being final_alpha_cumprod. With eta > 0 it draws variance noise after
// computing each prev_sample, as diffusers does.
func sampleDDIM(ctx context.Context, s *Scheduler, model Model, x *tensor.Tensor, plan Plan, opts Options) (*tensor.Tensor, error) {
	e := s.Effective
	stride := e.NumTrainTimesteps / plan.Steps
	eta := float32(opts.Eta)
	clip := float32(e.ClipSampleRange)
	for i := opts.Start; i < len(plan.Timesteps); i++ {
		t := plan.Timesteps[i]
		out, err := callModel(ctx, model, x, i, t) // scale_model_input is the identity
		if err != nil {
			return nil, err
		}
		at, err := s.alphaAt(int(t))
		if err != nil {
			return nil, err
		}
		prevT := int(t) - stride
		atPrev := s.finalAlpha
		if prevT >= 0 {
			if atPrev, err = s.alphaAt(prevT); err != nil {
				return nil, err
			}
		}
		bt := 1 - at
		sqa, sqb := sqrt32(at), sqrt32(bt)

		denoised := tensor.New(x.Shape...)
		predEps := tensor.New(x.Shape...)
		xs, m, x0, eps := x.Data, out.Data, denoised.Data, predEps.Data
		switch e.PredictionType {
		case "epsilon":
			for j := range x0 {
				x0[j] = (xs[j] - float32(sqb*m[j])) / sqa
			}
			copy(eps, m)
		case "sample":
			copy(x0, m)
			for j := range eps {
				eps[j] = (xs[j] - float32(sqa*x0[j])) / sqb
			}
		case "v_prediction":
			for j := range x0 {
				x0[j] = float32(sqa*xs[j]) - float32(sqb*m[j])
				eps[j] = float32(sqa*m[j]) + float32(sqb*xs[j])
			}
		}
		if e.ClipSample {
			for j, v := range x0 {
				x0[j] = min(max(v, -clip), clip)
			}
		}

		// _get_variance, then std_dev_t = eta * variance ** 0.5.
		btPrev := 1 - atPrev
		variance := (btPrev / bt) * (1 - at/atPrev)
		std := eta * sqrt32(variance)
		dirCoef := sqrt32((1 - atPrev) - float32(std*std))
		sqaPrev := sqrt32(atPrev)

		next := tensor.New(x.Shape...)
		nx := next.Data
		for j := range nx {
			nx[j] = float32(sqaPrev*x0[j]) + float32(dirCoef*eps[j])
		}
		if opts.Eta > 0 {
			noise, err := drawNoise(opts.Noise, x)
			if err != nil {
				return nil, err
			}
			for j, v := range noise.Data {
				nx[j] += float32(std * v)
			}
		}
		x = next
		if err := opts.emit(Step{I: i, T: t, X: x, Denoised: denoised}); err != nil {
			return nil, err
		}
	}
	return x, nil
}

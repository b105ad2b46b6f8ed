// Package sampling holds Pigment's samplers (DDIM, Euler, Euler a,
// DPM++ 2M [Karras], LMS, PNDM/PLMS) and their noise schedules, reproducing
// diffusers 0.27.2's scheduler classes number for number.
//
// A Scheduler is one sampler configured from a model's
// scheduler_config.json as diffusers' Class.from_config would configure
// it (keys the file lacks take the class's own defaults). Plan gives what
// set_timesteps yields; Sample runs the whole denoising loop as one plain
// function per sampler (ddim.go, euler.go, ...), with the per-run state
// diffusers keeps on the scheduler object (step index, model output
// history) local to the loop:
//
//	s, err := sampling.New(sampling.EulerA, cfg)
//	plan, err := s.Plan(20)
//	x := noise scaled by plan.InitNoiseSigma               // [B, 4, H/8, W/8]
//	x, err = s.Sample(ctx, model, x, plan, sampling.Options{Noise: rng, Callback: progress})
//
// The model is called once per plan timestep with the scaled model input
// and returns the raw UNet prediction (after guidance); classifier-free
// guidance is the caller's business. Sample checks ctx before every model
// call.
//
// Numerics: the reference mixes torch float32 (training tables, every
// sampler update) and numpy float64 (timestep spacing, interpolation,
// Karras sigmas). This package follows each operation's precision and
// order, down to torch's FMA-built linspace and SLEEF log/exp, and matches
// the reference scheduler tensors in ../shared/refs bit for bit.
package sampling

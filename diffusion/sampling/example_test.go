package sampling_test

import (
	"context"
	"fmt"

	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Running Euler for 4 steps from an SD1.5 scheduler config, with a toy
// model that predicts zero noise.
func Example() {
	cfg, err := sampling.ParseConfig([]byte(`{"_class_name": "PNDMScheduler", "beta_start": 0.00085,
		"beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
		"set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1}`))
	if err != nil {
		panic(err)
	}
	s, err := sampling.New(sampling.Euler, cfg)
	if err != nil {
		panic(err)
	}
	plan, err := s.Plan(4)
	if err != nil {
		panic(err)
	}
	fmt.Println("timesteps:", plan.Timesteps)
	fmt.Printf("init_noise_sigma: %.4f\n", plan.InitNoiseSigma)

	x := tensor.Full(float32(plan.InitNoiseSigma), 1, 4, 2, 2)
	zero := func(ctx context.Context, x *tensor.Tensor, t float64) (*tensor.Tensor, error) {
		return tensor.New(x.Shape...), nil
	}
	x, err = s.Sample(context.Background(), zero, x, plan, sampling.Options{
		Callback: func(st sampling.Step) error {
			fmt.Printf("step %d t=%g x0=%.4f\n", st.I, st.T, st.Denoised.Data[0])
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("final: %.4f\n", x.Data[0])
	// Output:
	// timesteps: [999 666 333 0]
	// init_noise_sigma: 14.6146
	// step 0 t=999 x0=14.6146
	// step 1 t=666 x0=14.6146
	// step 2 t=333 x0=14.6146
	// step 3 t=0 x0=14.6146
	// final: 14.6146
}

// Package rng draws the standard normal noise of Stable Diffusion exactly as
// PyTorch does, so that a seed gives the same latents here as in diffusers,
// ComfyUI or AUTOMATIC1111's web UI.
//
// Two generators implement Source:
//
//   - CPU is torch.Generator("cpu"): ATen's mt19937 and its CPU normal
//     kernel (the AVX2 Box–Muller for 16 or more float32 values, a cached
//     double-precision Box–Muller below that). It is bit-exact: every
//     reference draw in ../shared/refs/cases/rng and every random draw
//     recorded in the txt2img/img2img reference runs matches to the bit.
//   - CUDA is torch.Generator("cuda"): Philox4x32-10 with curand's
//     counter/subsequence layout and torch's per-launch offset, as
//     AUTOMATIC1111's modules/rng_philox.py reimplements it on the CPU. The
//     Philox words are exact (Random123 known answers); the Box–Muller
//     follows rng_philox.py in float64, which agrees with a GPU to about
//     1e-6 but not to the bit, since the GPU uses float32 and the
//     __sincosf approximation. See CUDA for what was and was not verified.
//
// Neither generator is safe for concurrent use; a pipeline owns one per
// image batch and draws in diffusers' order (initial latents first, then
// the scheduler's per-step noise).
package rng

import (
	"fmt"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Source draws standard normal noise as torch.randn does.
type Source interface {
	// Randn returns a float32 tensor of the given shape filled with N(0,1)
	// draws (torch.randn(shape, generator=g)), advancing the generator.
	// It panics if a dimension is negative.
	Randn(shape ...int) *tensor.Tensor
}

// New returns the generator named by kind, seeded with seed: "cpu" for
// NewCPU, "cuda" for NewCUDA (the values of the --rng flag and the rng API
// field). Any other kind is an error.
func New(kind string, seed uint64) (Source, error) {
	switch kind {
	case "cpu":
		return NewCPU(seed), nil
	case "cuda":
		return NewCUDA(seed), nil
	}
	return nil, fmt.Errorf("rng: unknown generator %q (want \"cpu\" or \"cuda\")", kind)
}

// numel returns the number of elements of shape, panicking on a negative
// dimension as tensor.New does.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("rng: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

package sampling

import (
	"context"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

var sinkTensor *tensor.Tensor

// BenchmarkEulerStep_2x4x64x64 times one Euler step (scale the input, a
// no-op model, the update) on SD-sized latents with CFG batch 2.
func BenchmarkEulerStep_2x4x64x64(b *testing.B) { benchStep(b, Euler, 2, 4, 64, 64) }

func benchStep(b *testing.B, k Kind, shape ...int) {
	s, err := New(k, mustConfig(b, configSD15))
	if err != nil {
		b.Fatal(err)
	}
	full, err := s.Plan(20)
	if err != nil {
		b.Fatal(err)
	}
	// A one-step plan slice keeps the loop to a single step.
	p := full
	p.Timesteps, p.Sigmas = full.Timesteps[:1], full.Sigmas[:2]
	x := initialLatents(p, shape...)
	out := (&testNoise{}).Randn(shape...)
	model := func(context.Context, *tensor.Tensor, float64) (*tensor.Tensor, error) { return out, nil }
	ctx := context.Background()
	b.SetBytes(int64(4 * x.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		y, err := s.Sample(ctx, model, x, p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		sinkTensor = y
	}
}

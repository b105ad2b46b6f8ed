package unet

import (
	"math"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// TimestepEmbedding returns the sinusoidal embedding of timesteps
// (diffusers models/embeddings.py get_timestep_embedding, after Vaswani et
// al. 2017 and DDPM): for i < half = dim/2,
//
//	freq_i = exp(−ln(10000)·i / (half − freqShift))
//	emb = [sin(t·freq), cos(t·freq)]   (swapped to [cos, sin] with flipSinToCos)
//
// timesteps: [N] (fractional values allowed, as Euler-type samplers pass
// them); returns [N, dim]. Every step is rounded to float32 in torch's order,
// so the embedding of t = 999 matches torch's to the last bit or two.
func TimestepEmbedding(timesteps []float32, dim int, flipSinToCos bool, freqShift float64) *tensor.Tensor {
	half := dim / 2
	freqs := make([]float32, half)
	lnMax := float32(-math.Log(10000))
	denom := float32(float64(half) - freqShift)
	for i := range freqs {
		exponent := float32(i) * lnMax / denom
		freqs[i] = float32(math.Exp(float64(exponent)))
	}
	out := tensor.New(len(timesteps), dim)
	for n, t := range timesteps {
		row := out.Data[n*dim : (n+1)*dim]
		for i, f := range freqs {
			arg := float64(t * f)
			s, c := float32(math.Sin(arg)), float32(math.Cos(arg))
			if flipSinToCos {
				row[i], row[half+i] = c, s
			} else {
				row[i], row[half+i] = s, c
			}
		}
	}
	return out
}

// TimeEmbedding is diffusers' TimestepEmbedding MLP (key time_embedding):
// linear_1, SiLU, linear_2, mapping the sinusoidal embedding [N, in] to the
// time embedding temb [N, TimeEmbedDim] every ResnetBlock2D receives.
type TimeEmbedding struct {
	Linear1, Linear2 *nn.Linear
}

// NewTimeEmbedding loads linear_1 (in → dim) and linear_2 (dim → dim).
func NewTimeEmbedding(w nn.Weights, in, dim int) *TimeEmbedding {
	return &TimeEmbedding{
		Linear1: nn.NewLinear(w.Sub("linear_1"), in, dim, true),
		Linear2: nn.NewLinear(w.Sub("linear_2"), dim, dim, true),
	}
}

// Forward maps [N, in] to [N, dim].
func (t *TimeEmbedding) Forward(x *tensor.Tensor) *tensor.Tensor {
	return t.Linear2.Forward(tensor.SiLU(t.Linear1.Forward(x)))
}

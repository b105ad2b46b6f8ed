package tensor

import (
	"fmt"
	"math"
)

// SiLU applies x·sigmoid(x) (a.k.a. swish; Elfwing et al. 2017) in place and
// returns x.
func SiLU(x *Tensor) *Tensor {
	mapInPlace(x, func(v float32) float32 { return v / (1 + exp32(-v)) })
	return x
}

// GELU applies the exact Gaussian error linear unit x·Φ(x) =
// x/2·(1+erf(x/√2)) (Hendrycks & Gimpel 2016), torch's default
// approximate="none", in place, and returns x.
func GELU(x *Tensor) *Tensor {
	mapInPlace(x, gelu)
	return x
}

// QuickGELU applies x·sigmoid(1.702·x), the approximation OpenAI's CLIP was
// trained with (transformers' quick_gelu), in place, and returns x.
func QuickGELU(x *Tensor) *Tensor {
	mapInPlace(x, func(v float32) float32 { return v / (1 + exp32(-1.702*v)) })
	return x
}

// GEGLU is the gated GELU of Shazeer 2020 ("GLU Variants Improve
// Transformer") as diffusers' GEGLU computes it after its projection:
// x: [..., 2D] is split into hidden = x[..., :D] and gate = x[..., D:], and
// the result [..., D] is hidden·GELU(gate).
func GEGLU(x *Tensor) *Tensor {
	d2 := x.Dim(-1)
	if d2%2 != 0 {
		panic(fmt.Sprintf("tensor: GEGLU needs an even last dimension, got %v", x.Shape))
	}
	d := d2 / 2
	shape := append(append([]int(nil), x.Shape[:x.Dims()-1]...), d)
	out := New(shape...)
	rows := x.Len() / max(1, d2)
	parallelFor(rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src := x.Data[r*d2 : (r+1)*d2]
			dst := out.Data[r*d : (r+1)*d]
			for i := range dst {
				dst[i] = src[i] * gelu(src[d+i])
			}
		}
	})
	return out
}

// Activation returns the in-place activation named as in diffusers' and
// transformers' configs ("silu"/"swish", "gelu", "quick_gelu"), or an error.
func Activation(name string) (func(*Tensor) *Tensor, error) {
	switch name {
	case "silu", "swish":
		return SiLU, nil
	case "gelu":
		return GELU, nil
	case "quick_gelu":
		return QuickGELU, nil
	}
	return nil, fmt.Errorf("tensor: unsupported activation %q", name)
}

func gelu(v float32) float32 {
	return float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
}

func exp32(v float32) float32 { return float32(math.Exp(float64(v))) }

func mapInPlace(x *Tensor, f func(float32) float32) {
	parallelFor(x.Len(), 1<<14, func(lo, hi int) {
		s := x.Data[lo:hi]
		for i, v := range s {
			s[i] = f(v)
		}
	})
}

package tensor

import (
	"fmt"
	"math"
)

// SiLU applies x·sigmoid(x) (a.k.a. swish; Elfwing et al. 2017) in place and
// returns x.
// On amd64 with AVX-512 both directions run in vector assembly
// (softmax_amd64.s), within a few ulp of the Go code.
func SiLU(x *Tensor) *Tensor {
	mustFloat32("SiLU", x)
	mapInPlace(x, actKernels.silu, actKernels.siluGrad)
	return x
}

// actImpl is the elementwise activations over slices, in Go or vector
// assembly: silu sets dst[i] = SiLU(src[i]) (dst may be src) and siluGrad
// adds g[i]·SiLU′(x[i]) to acc[i]; geglu sets dst[i] =
// hidden[i]·GELU(gate[i]) and gegluGrad adds g[i]·GELU(gate[i]) to accH[i]
// and g[i]·hidden[i]·GELU′(gate[i]) to accGate[i].
type actImpl struct {
	name      string
	silu      func(dst, src []float32)
	siluGrad  func(acc, g, x []float32)
	geglu     func(dst, hidden, gate []float32)
	gegluGrad func(accH, accGate, g, hidden, gate []float32)
}

var actGo = actImpl{
	name: "go",
	silu: func(dst, src []float32) {
		for i, v := range src {
			dst[i] = v / (1 + expf(-v))
		}
	},
	siluGrad: func(acc, g, x []float32) {
		for i, v := range x {
			s := 1 / (1 + expf(-v))
			acc[i] += g[i] * s * (1 + v*(1-s))
		}
	},
	geglu: func(dst, hidden, gate []float32) {
		for i, v := range gate {
			dst[i] = hidden[i] * gelu(v)
		}
	},
	gegluGrad: func(accH, accGate, g, hidden, gate []float32) {
		for i, v := range gate {
			accH[i] += g[i] * gelu(v)
			accGate[i] += g[i] * hidden[i] * geluGrad(v)
		}
	},
}

// GELU applies the exact Gaussian error linear unit x·Φ(x) =
// x/2·(1+erf(x/√2)) (Hendrycks & Gimpel 2016), torch's default
// approximate="none", in place, and returns x.
func GELU(x *Tensor) *Tensor {
	mustFloat32("GELU", x)
	mapInPlace(x, mapScalar(gelu), gradScalar(geluGrad))
	return x
}

// QuickGELU applies x·sigmoid(1.702·x), the approximation OpenAI's CLIP was
// trained with (transformers' quick_gelu), in place, and returns x.
func QuickGELU(x *Tensor) *Tensor {
	mustFloat32("QuickGELU", x)
	mapInPlace(x, mapScalar(func(v float32) float32 { return v / (1 + expf(-1.702*v)) }), gradScalar(func(v float32) float32 {
		s := 1 / (1 + expf(-1.702*v))
		return s * (1 + 1.702*v*(1-s))
	}))
	return x
}

// GEGLU is the gated GELU of Shazeer 2020 ("GLU Variants Improve
// Transformer") as diffusers' GEGLU computes it after its projection:
// x: [..., 2D] is split into hidden = x[..., :D] and gate = x[..., D:], and
// the result [..., D] is hidden·GELU(gate). On amd64 with AVX-512 both
// directions run in vector assembly (softmax_amd64.s).
func GEGLU(x *Tensor) *Tensor {
	mustFloat32("GEGLU", x)
	d2 := x.Dim(-1)
	if d2%2 != 0 {
		panic(fmt.Sprintf("tensor: GEGLU needs an even last dimension, got %v", x.Shape))
	}
	d := d2 / 2
	shape := append(append([]int(nil), x.Shape[:x.Dims()-1]...), d)
	out := New(shape...)
	rows := x.Len() / max(1, d2)
	in := x.Data
	parallelFor(rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src := in[r*d2 : (r+1)*d2]
			actKernels.geglu(out.Data[r*d:(r+1)*d], src[:d], src[d:])
		}
	})
	record(out, []*Tensor{x}, func(g []float32, grads [][]float32) {
		dx := grads[0]
		parallelFor(rows, 16, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				src, dr := in[r*d2:(r+1)*d2], dx[r*d2:(r+1)*d2]
				actKernels.gegluGrad(dr[:d], dr[d:], g[r*d:(r+1)*d], src[:d], src[d:])
			}
		})
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
	return 0.5 * v * (1 + erf32(v*math.Sqrt2/2))
}

// geluGrad is d/dx x·Φ(x) = Φ(x) + x·φ(x).
func geluGrad(v float32) float32 {
	const invSqrt2Pi = 0.3989422804014327
	return 0.5*(1+erf32(v*math.Sqrt2/2)) + v*expf(-0.5*v*v)*invSqrt2Pi
}

// erf32 is the error function in float32 arithmetic, within 5e-7 of
// math.Erf: Abramowitz & Stegun 7.1.26, erf(x) = 1 − (a1·t + … + a5·t⁵)·e^(−x²)
// with t = 1/(1 + p·|x|), odd in x. It keeps GELU (and GEGLU, which the
// UNet's every feed-forward applies to millions of values) off float64
// math.Erf, which dominated training profiles.
func erf32(x float32) float32 {
	const (
		p  = 0.3275911
		a1 = 0.254829592
		a2 = -0.284496736
		a3 = 1.421413741
		a4 = -1.453152027
		a5 = 1.061405429
	)
	ax := x
	if ax < 0 {
		ax = -ax
	}
	if ax > 4 {
		return float32(math.Copysign(1, float64(x)))
	}
	t := 1 / (1 + p*ax)
	y := 1 - ((((a5*t+a4)*t+a3)*t+a2)*t+a1)*t*expf(-ax*ax)
	if x < 0 {
		return -y
	}
	return y
}

// mapInPlace applies f (over slices: dst[i] = f(src[i])) to every element of
// x in place. When x is tracked the result goes to a fresh slice (see Tape)
// and the backward step df adds the incoming gradient times the derivative
// at the saved input to dx.
func mapInPlace(x *Tensor, f func(dst, src []float32), df func(dx, g, x []float32)) {
	src := x.Data
	fresh := tracked(x)
	if fresh {
		x.Data = makeFloats(len(src))
	}
	dst := x.Data
	parallelFor(len(dst), 1<<14, func(lo, hi int) { f(dst[lo:hi], src[lo:hi]) })
	if !fresh {
		return
	}
	record(x, []*Tensor{x}, func(g []float32, grads [][]float32) {
		dx := grads[0]
		parallelFor(len(dx), 1<<14, func(lo, hi int) { df(dx[lo:hi], g[lo:hi], src[lo:hi]) })
	})
}

// mapScalar and gradScalar lift an element function and its derivative to
// mapInPlace's slice functions.
func mapScalar(f func(float32) float32) func(dst, src []float32) {
	return func(dst, src []float32) {
		for i, v := range src {
			dst[i] = f(v)
		}
	}
}

func gradScalar(df func(float32) float32) func(dx, g, x []float32) {
	return func(dx, g, x []float32) {
		for i, v := range x {
			dx[i] += g[i] * df(v)
		}
	}
}

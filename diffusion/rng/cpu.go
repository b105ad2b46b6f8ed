package rng

import (
	"math"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// CPU is torch.Generator("cpu").manual_seed(seed): ATen's CPUGeneratorImpl
// (aten/src/ATen/CPUGeneratorImpl.cpp) with its mt19937 engine and the
// cached second value of the double-precision Box–Muller.
//
// Randn reproduces torch.randn(shape, generator=g, dtype=torch.float32),
// i.e. normal_kernel in aten/src/ATen/native/cpu/DistributionTemplates.h
// (torch 1.13 through 2.x), on its two paths:
//
//   - numel >= 16 (normal_fill_AVX2): fill the tensor with float uniforms,
//     one engine word each, (w & (2^24-1)) * 2^-24
//     (at::uniform_real_distribution<float>, TransformationHelper.h
//     uniform_real); then turn each complete block of 16 into normals,
//     u1 = 1 - data[j] and u2 = data[j+8] for j < 8 giving
//     data[j] = sqrt(-2 log u1) cos(2π u2) and data[j+8] the same with sin;
//     if numel % 16 != 0, draw 16 fresh uniforms over the last 16 elements
//     and transform them again. The float math is avx_mathfun.h's
//     log256_ps and sincos256_ps with the multiply–adds that GCC contracts
//     into FMAs (see avxmathfun.go).
//   - numel < 16: each element is at::normal_distribution<double>
//     (aten/src/ATen/core/DistributionsHelper.h) cast to float32: if the
//     generator holds a cached normal, use it; else draw two double
//     uniforms u1, u2 of 53 bits each from random64 (two engine words, the
//     first one high), return sqrt(-2 log(1-u2)) cos(2π u1) and cache the
//     sin partner. The cache lives across calls (only manual_seed clears
//     it), so a randn(3) leaves one value for the next small draw; the
//     numel >= 16 path neither reads nor clears it.
//
// The vectorised path is the one torch runs on x86-64 CPUs with AVX2 (the
// reference data was made that way). A torch build or machine that
// dispatches the non-AVX2 kernel (aarch64, ATEN_CPU_CAPABILITY=default)
// draws the same uniforms but evaluates log, cos and sin with libm's float
// functions instead; computing them exactly rounded instead of as
// avx_mathfun does changes 39% of the reference values in the last bit or
// two, so expect about that many differences against such a build. The double path uses Go's math.Log/Cos/Sin where torch uses
// glibc's; the results differ at most in the last bit of the float64,
// which the cast to float32 hides except with probability ~1e-8 per value.
type CPU struct {
	engine mt19937
	// normal is the cached second Box–Muller value of the double path
	// (CPUGeneratorImpl::next_double_normal_sample_); valid if hasNormal.
	normal    float64
	hasNormal bool
}

// NewCPU returns a CPU generator seeded like
// torch.Generator("cpu").manual_seed(seed). Only the low 32 bits of seed
// matter (at::mt19937 seeds with seed & 0xffffffff).
func NewCPU(seed uint64) *CPU {
	g := &CPU{}
	g.engine.seed(seed)
	return g
}

// Randn implements Source. It returns a float32 tensor of the given shape
// with torch.randn's draws and advances the generator as torch does:
// numel words (plus 16 if numel%16 != 0) for numel >= 16, two words per
// pair of values below that. It panics if a dimension is negative.
func (g *CPU) Randn(shape ...int) *tensor.Tensor {
	n := numel(shape)
	t := tensor.New(shape...)
	if n >= 16 {
		g.normalFill(t.Data)
	} else {
		for i := range t.Data {
			t.Data[i] = float32(g.normalDouble())
		}
	}
	return t
}

// uniformFloat returns at::uniform_real_distribution<float>(0, 1): the low
// 24 bits of one engine word scaled by 2^-24, in [0, 1).
func (g *CPU) uniformFloat() float32 {
	return float32(g.engine.uint32()&(1<<24-1)) * (1.0 / (1 << 24))
}

// uniformDouble returns at::uniform_real_distribution<double>(0, 1): the
// low 53 bits of random64 scaled by 2^-53, in [0, 1).
func (g *CPU) uniformDouble() float64 {
	return float64(g.engine.uint64()&(1<<53-1)) * (1.0 / (1 << 53))
}

// normalFill is normal_fill_AVX2 with mean 0 and std 1; len(data) >= 16.
func (g *CPU) normalFill(data []float32) {
	n := len(data)
	for i := range data {
		data[i] = g.uniformFloat()
	}
	for i := 0; i+16 <= n; i += 16 {
		normalFill16(data[i : i+16])
	}
	if n%16 != 0 {
		last := data[n-16:]
		for i := range last {
			last[i] = g.uniformFloat()
		}
		normalFill16(last)
	}
}

// normalDouble is one at::normal_distribution<double>(0, 1) draw.
func (g *CPU) normalDouble() float64 {
	if g.hasNormal {
		g.hasNormal = false
		return plusZero(g.normal)
	}
	u1 := g.uniformDouble()
	u2 := g.uniformDouble()
	// torch 1.13 writes log(1 - u2), later versions log1p(-u2); 1 - u2 is
	// exact, and both agree to the float64 rounding that the cast hides.
	r := math.Sqrt(-2 * math.Log(1-u2))
	theta := 2 * math.Pi * u1
	g.normal = r * math.Sin(theta)
	g.hasNormal = true
	return plusZero(r * math.Cos(theta))
}

// plusZero returns v with -0 turned into +0, as torch's final
// "value * std + mean" with mean 0 does (-0 + 0 = +0).
func plusZero[F float32 | float64](v F) F {
	if v == 0 {
		return 0
	}
	return v
}

package sampling

// float32 elementary functions as the reference computes them.
//
// diffusers does its scheduler scalar math on 0-dim float32 torch tensors.
// On CPU, torch 1.13 computes sqrt exactly (IEEE), but log and exp through
// SLEEF's vectorized u10 routines (Sleef_logf8_u10 / Sleef_expf8_u10, the
// AVX2+FMA build; torch's vml maps even a single element through a
// partial vector), which are within 1 ulp but not correctly rounded. The
// DPM-Solver coefficients depend on differences of such logs, so to land
// on diffusers' numbers (not just near them) log32 and exp32 follow SLEEF's
// algorithms operation for operation: xlogf_u1 and xexpf in
// src/libm/sleefsimdsp.c and the double-float helpers of src/common/df.h
// (https://github.com/shibatch/sleef, Boost Software License 1.0), with
// fmaf wherever the AVX2 build uses a fused multiply-add.

import "math"

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// fmaf returns a*b + c rounded once to float32 (C's fmaf). The product is
// exact in float64; the float64 sum is corrected where rounding it again
// to float32 would break a tie the wrong way.
func fmaf(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	s := p + float64(c)
	r := float32(s)
	if math.IsInf(s, 0) || math.IsNaN(s) || float64(r) == s {
		return r
	}
	// Error of the float64 sum (TwoSum).
	bb := s - p
	err := (p - (s - bb)) + (float64(c) - bb)
	if err == 0 {
		return r
	}
	other := math.Nextafter32(r, float32(math.Inf(1)))
	if float64(r) > s {
		other = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if s-float64(r) != float64(other)-s {
		return r // not a tie: the float64 rounding did not matter
	}
	if (err > 0) == (other > r) {
		return other
	}
	return r
}

// df is SLEEF's double-float: an unevaluated sum x + y of float32s.
type df struct{ x, y float32 }

func dfAdd2FF(x, y float32) df { // dfadd2_vf2_vf_vf
	s := x + y
	v := s - x
	return df{s, (x - (s - v)) + (y - v)}
}

func dfAddDD(x, y df) df { // dfadd_vf2_vf2_vf2 (|x| >= |y|)
	s := x.x + y.x
	return df{s, (((x.x - s) + y.x) + x.y) + y.y}
}

func dfAddDF(x df, y float32) df { // dfadd_vf2_vf2_vf
	s := x.x + y
	return df{s, ((x.x - s) + y) + x.y}
}

func dfScale(d df, s float32) df { return df{d.x * s, d.y * s} } // dfscale_vf2_vf2_vf

func dfMulDF(x df, y float32) df { // dfmul_vf2_vf2_vf, FMA form
	s := x.x * y
	return df{s, fmaf(x.y, y, fmaf(x.x, y, -s))}
}

func dfDiv(n, d df) df { // dfdiv_vf2_vf2_vf2, FMA form
	t := 1 / d.x
	s := n.x * t
	u := fmaf(t, n.x, -s)
	v := fmaf(-d.y, t, fmaf(-d.x, t, 1))
	return df{s, fmaf(s, v, fmaf(n.y, t, u))}
}

func f32bits(f float32) int32     { return int32(math.Float32bits(f)) }
func f32frombits(b int32) float32 { return math.Float32frombits(uint32(b)) }

// pow2i returns 2^q for q in the normal exponent range.
func pow2i(q int32) float32 { return f32frombits((q + 0x7f) << 23) }

// ldexp2 is vldexp2_vf_vf_vi2: d·2^(q>>1)·2^(q-(q>>1)).
func ldexp2(d float32, q int32) float32 {
	return float32(d*pow2i(q>>1)) * pow2i(q-(q>>1))
}

// log32 mirrors Sleef_logf8_u10 (xlogf_u1).
func log32(d float32) float32 {
	switch {
	case math.IsNaN(float64(d)) || d < 0:
		return float32(math.NaN())
	case d == 0:
		return float32(math.Inf(-1))
	case math.IsInf(float64(d), 1):
		return d
	}
	tiny := d < 0x1p-126 // below FLT_MIN: scale subnormals up by 2^64
	if tiny {
		d *= 0x1p64
	}
	e := (f32bits(float32(d*float32(1.0/0.75)))>>23)&0xff - 0x7f // vilogb2k
	m := f32frombits(f32bits(d) + (-e << 23))                    // vldexp3
	if tiny {
		e -= 64
	}
	s := dfMulDF(df{0.69314718246459960938, -1.904654323148236017e-09}, float32(e))
	x := dfDiv(dfAdd2FF(-1, m), dfAdd2FF(1, m))
	x2 := x.x * x.x
	t := float32(0.3027294874)
	t = fmaf(t, x2, 0.3996108174)
	t = fmaf(t, x2, 0.6666694880)
	s = dfAddDD(s, dfScale(x, 2))
	s = dfAddDF(s, float32(float32(x2*x.x)*t))
	return s.x + s.y
}

// exp32 mirrors Sleef_expf8_u10 (xexpf).
func exp32(d float32) float32 {
	switch {
	case math.IsNaN(float64(d)):
		return d
	case d < -104:
		return 0
	case d > 100:
		return float32(math.Inf(1))
	}
	const (
		rLn2 = float32(1.442695040888963407359924681001892137426645954152985934135449406931)
		l2u  = float32(0.693145751953125)
		l2l  = float32(1.428606765330187045e-06)
	)
	q := int32(math.RoundToEven(float64(float32(d * rLn2)))) // vrint_vi2_vf
	qf := float32(q)
	s := fmaf(qf, -l2u, d)
	s = fmaf(qf, -l2l, s)
	u := float32(0.000198527617612853646278381)
	u = fmaf(u, s, 0.00139304355252534151077271)
	u = fmaf(u, s, 0.00833336077630519866943359)
	u = fmaf(u, s, 0.0416664853692054748535156)
	u = fmaf(u, s, 0.166666671633720397949219)
	u = fmaf(u, s, 0.5)
	u = 1 + fmaf(float32(s*s), u, s)
	return ldexp2(u, q)
}

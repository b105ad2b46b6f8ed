package rng

import "math"

// This file reproduces, bit for bit, the float32 Box–Muller of torch's
// normal_fill_16_AVX2 (aten/src/ATen/native/cpu/DistributionTemplates.h),
// which calls log256_ps and sincos256_ps from
// aten/src/ATen/native/cpu/avx_mathfun.h (Giovanni Garberoglio's AVX port
// of Julien Pommier's sse_mathfun, i.e. the Cephes logf/sinf/cosf
// polynomials). ATen compiles that kernel with -mavx2 -mfma, and GCC's
// default -ffp-contract=fast turns every multiply whose only use is an add
// into one fused multiply–add; fma32 marks each place where that happens.
// Without those contractions about 1% of the reference values differ in
// the last bit; with them all match.

// Constants of avx_mathfun.h, rounded to float32 as its _PS256_CONST
// tables are.
const (
	cephesSQRTHF = float32(0.707106781186547524)
	cephesLogQ1  = float32(-2.12194440e-4)
	cephesLogQ2  = float32(0.693359375)
	cephesFOPI   = float32(1.27323954473516) // 4/π
	minusDP1     = float32(-0.78515625)
	minusDP2     = float32(-2.4187564849853515625e-4)
	minusDP3     = float32(-3.77489497744594108e-8)
	sincofP0     = float32(-1.9515295891e-4)
	sincofP1     = float32(8.3321608736e-3)
	sincofP2     = float32(-1.6666654611e-1)
	coscofP0     = float32(2.443315711809948e-005)
	coscofP1     = float32(-1.388731625493765e-003)
	coscofP2     = float32(4.166664568298827e-002)
)

// cephesLogP are cephes_log_p0 … p8.
var cephesLogP = [9]float32{
	7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
	-1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
	2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
}

// twoPi is normal_fill_AVX2's _mm256_set1_ps(2.0f * c10::pi<double>): 2π
// rounded to double, then to float.
var twoPi = float32(float64(2 * math.Pi))

// normalFill16 turns 16 uniforms in [0, 1) into 16 standard normals in
// place, as normal_fill_16_AVX2 does with mean 0 and std 1: data[j] and
// data[j+8] become radius·cos θ and radius·sin θ with
// radius = sqrt(-2 log(1 - data[j])) and θ = 2π·data[j+8].
func normalFill16(data []float32) {
	_ = data[15]
	for j := 0; j < 8; j++ {
		u1 := 1 - data[j]
		u2 := data[j+8]
		radius := float32(math.Sqrt(float64(-2 * log256(u1))))
		sin, cos := sincos256(float32(twoPi * u2))
		// _mm256_fmadd_ps(n, std, mean) with std 1, mean +0: exact, but
		// -0 becomes +0.
		data[j] = plusZero(float32(radius * cos))
		data[j+8] = plusZero(float32(radius * sin))
	}
}

// log256 is one lane of log256_ps for x in (0, 1] (the only inputs
// normalFill16 gives it, so the NaN and denormal handling is left out).
func log256(x float32) float32 {
	bits := math.Float32bits(x)
	e := float32(int32(bits>>23)-0x7f) + 1
	x = math.Float32frombits(bits&^0x7f800000 | math.Float32bits(0.5))
	// if x < SQRTHF { e -= 1; x = x + x - 1 } else { x = x - 1 }, in
	// avx_mathfun's order: (x - 1) + (x or 0).
	if x < cephesSQRTHF {
		e -= 1
		x = (x - 1) + x
	} else {
		x = x - 1
	}
	z := float32(x * x)
	y := cephesLogP[0]
	for _, p := range cephesLogP[1:] {
		y = fma32(y, x, p)
	}
	y = float32(y * x)
	y = fma32(y, z, float32(e*cephesLogQ1))
	y = y - float32(z*0.5) // z*0.5 is exact, so contracting it changes nothing
	x = x + y
	return x + float32(e*cephesLogQ2) // e*q2 is exact (q2 = 355/512)
}

// sincos256 is one lane of sincos256_ps for x >= 0 (normalFill16 passes
// θ in [0, 2π)).
func sincos256(x float32) (sin, cos float32) {
	signSin := math.Float32bits(x) & 0x80000000
	x = math.Float32frombits(math.Float32bits(x) &^ 0x80000000)
	// j = (int(x * 4/π) + 1) & ^1: the octant, rounded up to even.
	j := (int32(float32(x*cephesFOPI)) + 1) &^ 1
	y := float32(j)
	swapSignSin := uint32(j&4) << 29
	sinPoly := j&2 == 0 // true: sin from the sine polynomial
	signCos := uint32(^(j-2)&4) << 29
	signSin ^= swapSignSin
	// Extended precision modular arithmetic: x = ((x - y·DP1) - y·DP2) - y·DP3.
	x = fma32(y, minusDP1, x)
	x = fma32(y, minusDP2, x)
	x = fma32(y, minusDP3, x)
	z := float32(x * x)

	c := fma32(coscofP0, z, coscofP1)
	c = fma32(c, z, coscofP2)
	c = float32(c * z)
	c = fma32(c, z, -float32(z*0.5))
	c = c + 1

	s := fma32(sincofP0, z, sincofP1)
	s = fma32(s, z, sincofP2)
	s = float32(s * z)
	s = fma32(s, x, x)

	if !sinPoly {
		s, c = c, s
	}
	sin = math.Float32frombits(math.Float32bits(s) ^ signSin)
	cos = math.Float32frombits(math.Float32bits(c) ^ signCos)
	return sin, cos
}

// fma32 returns a·b + c rounded once to float32, like vfmadd on float
// lanes. a·b is exact in float64, so s = a·b + c rounded to float64 is off
// from the exact sum by less than half a float64 ulp. Rounding s to
// float32 then gives the correctly rounded result unless s lies exactly
// halfway between two float32 values (no float32 midpoint, itself a
// float64, can lie strictly between the exact sum and its nearest float64)
// or in float32's subnormal range; those rare cases take fma32Slow.
func fma32(a, b, c float32) float32 {
	s := float64(float64(a)*float64(b)) + float64(c)
	// The 29 low mantissa bits are what float32 drops from a normal
	// result, 1<<28 alone being the halfway pattern; |s| < 2^-126 (the
	// sign shifted out) is float32's subnormal range.
	if bits := math.Float64bits(s); bits&(1<<29-1) == 1<<28 || bits<<1 < (1023-126)<<53 {
		return fma32Slow(a, b, c)
	}
	return float32(s)
}

// fma32Slow is fma32 by round-to-odd: the float64 sum, if inexact, is
// moved onto its odd neighbour towards the exact value, after which
// rounding to float32 is correct because float64 carries more than 24+1
// bits.
func fma32Slow(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact: 24+24 bits
	cc := float64(c)
	s := p + cc
	// Knuth's TwoSum: err is the exact rounding error of p + cc.
	bv := s - p
	err := (p - (s - bv)) + (cc - bv)
	if err != 0 {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			if (err > 0) == (s > 0) {
				bits++ // away from zero
			} else {
				bits-- // towards zero
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

package tensor

import "math"

// expf returns e^x in float32, within 2 ulp of the correctly rounded value
// for x in [-87.3, 88] (results below FLT_MIN flush to 0). It is the
// Cody–Waite range reduction x = q·ln2 + s, |s| ≤ ln2/2, with the degree-6
// minimax polynomial of SLEEF's expf (src/libm/sleefsp.c), evaluated in
// plain float32 arithmetic: several times faster than math.Exp in float64,
// which matters in softmax where every attention score is exponentiated.
func expf(x float32) float32 {
	switch {
	case x < -87.33654:
		return 0
	case x > 88:
		return float32(math.Exp(float64(x)))
	case x != x: // NaN
		return x
	}
	const (
		log2e = float32(1.442695040888963407359924681001892137426645954152985934135449406931)
		l2u   = float32(0.693145751953125)
		l2l   = float32(1.428606765330187045e-06)
	)
	qf := float32(math.Floor(float64(x*log2e) + 0.5))
	s := x - qf*l2u
	s -= qf * l2l
	u := float32(0.000198527617612853646278381)
	u = u*s + 0.00139304355252534151077271
	u = u*s + 0.00833336077630519866943359
	u = u*s + 0.0416664853692054748535156
	u = u*s + 0.166666671633720397949219
	u = u*s + 0.5
	u = 1 + (s*s*u + s)
	return u * math.Float32frombits(uint32(int32(qf)+127)<<23)
}

package sampling

// LMS: k-diffusion's sample_lms (linear multistep, order 4, coefficients
// by integrating the Lagrange basis over each σ interval) — as diffusers
// 0.27.2's LMSDiscreteScheduler (scheduling_lms_discrete.py) computes it.
// diffusers integrates with scipy.integrate.quad, whose first pass is the
// 21-point Gauss–Kronrod rule; the Lagrange integrand (a polynomial of
// degree ≤ 3) is integrated exactly by that rule, so lmsCoefficient applies
// it once, evaluating the integrand in float32 as diffusers' torch 0-dim
// tensors do.

import (
	"context"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// lmsOrder is diffusers' default step(order=4).
const lmsOrder = 4

// sampleLMS runs x ← x + Σ_k c_k·d_{i-k} over the last order derivatives
// d = (x - x0)/σ, the model seeing x/(σ²+1)^½. As in diffusers the order is
// min(i+1, 4) with i the absolute index, so a run started mid-plan
// (img2img) pairs its first derivatives with higher-order coefficients.
func sampleLMS(ctx context.Context, s *Scheduler, model Model, x *tensor.Tensor, plan Plan, opts Options) (*tensor.Tensor, error) {
	sigmas := make([]float32, len(plan.Sigmas))
	for i, v := range plan.Sigmas {
		sigmas[i] = float32(v)
	}
	var derivs []*tensor.Tensor // oldest first, at most lmsOrder
	for i := opts.Start; i < len(plan.Timesteps); i++ {
		t := plan.Timesteps[i]
		sigma := sigmas[i]
		out, err := callModel(ctx, model, scaleInput(x, sigma), i, t)
		if err != nil {
			return nil, err
		}
		denoised := sigmaDenoised(s.Effective.PredictionType, x, out, sigma)
		d := tensor.New(x.Shape...)
		for j, v := range x.Data {
			d.Data[j] = (v - denoised.Data[j]) / sigma
		}
		derivs = append(derivs, d)
		if len(derivs) > lmsOrder {
			derivs = derivs[1:]
		}
		order := min(i+1, lmsOrder)
		pairs := min(order, len(derivs)) // Python's zip stops at the shorter
		acc := make([]float32, x.Len())
		for k := 0; k < pairs; k++ {
			c := float32(lmsCoefficient(sigmas, order, i, k))
			dk := derivs[len(derivs)-1-k].Data
			for j := range acc {
				acc[j] += float32(c * dk[j])
			}
		}
		next := tensor.New(x.Shape...)
		for j, v := range x.Data {
			next.Data[j] = v + acc[j]
		}
		x = next
		if err := opts.emit(Step{I: i, T: t, X: x, Denoised: denoised}); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// lmsCoefficient is get_lms_coefficient: ∫_{σ_t}^{σ_{t+1}} Π_{k≠cur}
// (τ - σ_{t-k})/(σ_{t-cur} - σ_{t-k}) dτ over k < order. The integrand is
// evaluated as diffusers does (τ rounded to float32, float32 products).
func lmsCoefficient(sigmas []float32, order, t, cur int) float64 {
	f := func(tau float64) float64 {
		prod, tensorValued := float32(1), false
		for k := 0; k < order; k++ {
			if k == cur {
				continue
			}
			q := (float32(tau) - sigmas[t-k]) / (sigmas[t-cur] - sigmas[t-k])
			prod = prod * q
			tensorValued = true
		}
		if !tensorValued {
			return 1 // the Python float 1.0
		}
		return float64(prod)
	}
	return gaussKronrod21(f, float64(sigmas[t]), float64(sigmas[t+1]))
}

// Nodes and weights of the 21-point Kronrod rule and its embedded 10-point
// Gauss rule (QUADPACK dqk21; Piessens et al. 1983). xgk[1], xgk[3], ...
// are the Gauss nodes.
var (
	xgk21 = [11]float64{
		0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
		0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
		0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
		0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
		0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
		0,
	}
	wgk21 = [11]float64{
		0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
		0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
		0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
		0.123491976262065851077208980484090, 0.134709217311473325928054001771707,
		0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
		0.149445554002916905664936468389821,
	}
)

// gaussKronrod21 integrates f over [a, b] (b < a allowed) with the
// 21-point Kronrod rule, summing in dqk21's order (centre, then the Gauss
// abscissae, then the Kronrod-only ones). It is exact, up to rounding, for
// polynomials of degree ≤ 31.
func gaussKronrod21(f func(float64) float64, a, b float64) float64 {
	centr := 0.5 * (a + b)
	hlgth := 0.5 * (b - a)
	resk := wgk21[10] * f(centr)
	for _, j := range [...]int{1, 3, 5, 7, 9, 0, 2, 4, 6, 8} {
		absc := hlgth * xgk21[j]
		fsum := f(centr-absc) + f(centr+absc)
		resk += float64(wgk21[j] * fsum)
	}
	return resk * hlgth
}

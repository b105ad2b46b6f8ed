package sampling

// PNDM / PLMS: Liu et al., "Pseudo Numerical Methods for Diffusion Models
// on Manifolds", https://arxiv.org/abs/2202.09778 — as diffusers 0.27.2's
// PNDMScheduler (scheduling_pndm.py: set_timesteps, step_prk, step_plms,
// _get_prev_sample) computes it, torch float32. With skip_prk_steps (every
// Stable Diffusion config) the first timestep is repeated and the second
// call averages its model output with the first (a Heun-like start), then
// linear multistep of orders 2, 3 and 4 follows. Without it, 12 pseudo
// Runge–Kutta steps (three RK4 rounds) come first.

import (
	"context"
	"fmt"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// pndmOrder is PNDMScheduler.pndm_order.
const pndmOrder = 4

// planPNDM is PNDMScheduler.set_timesteps: the PRK timesteps (unless
// skip_prk_steps) followed by the PLMS ones; with skip_prk_steps the
// second-to-last spaced timestep is repeated, giving steps+1 of them.
func (s *Scheduler) planPNDM(n int) (Plan, error) {
	e := s.Effective
	T := e.NumTrainTimesteps
	var base []int // diffusers' _timesteps, ascending
	switch e.TimestepSpacing {
	case "linspace":
		for _, v := range numpyLinspace(0, float64(T-1), n) {
			base = append(base, int(roundEven(v)))
		}
	case "leading":
		ratio := T / n
		for i := 0; i < n; i++ {
			base = append(base, i*ratio+e.StepsOffset)
		}
	case "trailing":
		for _, v := range reversed(numpyArange(float64(T), 0, -float64(T)/float64(n))) {
			base = append(base, int(roundEven(v))-1)
		}
	}
	var ts []int
	if e.SkipPrkSteps {
		// concatenate([_timesteps[:-1], _timesteps[-2:-1], _timesteps[-1:]])[::-1]
		k := len(base)
		plms := append([]int(nil), base[:k-1]...)
		if k >= 2 {
			plms = append(plms, base[k-2])
		}
		plms = append(plms, base[k-1])
		ts = reversed(plms)
	} else {
		if len(base) < pndmOrder {
			return Plan{}, fmt.Errorf("sampling: pndm with skip_prk_steps false needs at least %d steps, got %d", pndmOrder, n)
		}
		// _timesteps[-4:].repeat(2) + tile([0, T//n//2], 4), drop the last,
		// repeat(2), drop the first and last, reverse.
		half := T / n / 2
		var pairs []int
		for _, t := range base[len(base)-pndmOrder:] {
			pairs = append(pairs, t, t+half)
		}
		pairs = pairs[:len(pairs)-1]
		var rep []int
		for _, t := range pairs {
			rep = append(rep, t, t)
		}
		ts = append(reversed(rep[1:len(rep)-1]), reversed(base[:len(base)-3])...)
	}
	p := Plan{Timesteps: make([]float64, len(ts)), InitNoiseSigma: 1}
	for i, t := range ts {
		if _, err := s.alphaAt(t); err != nil {
			return Plan{}, err
		}
		p.Timesteps[i] = float64(t)
	}
	return p, nil
}

// prkSteps is the number of pseudo Runge–Kutta steps at the start of a
// plan (len(prk_timesteps)).
func (s *Scheduler) prkSteps() int {
	if s.Effective.SkipPrkSteps {
		return 0
	}
	return 4*pndmOrder - 4
}

// pndmState is the scheduler state diffusers keeps between step calls
// (counter, ets, cur_sample, cur_model_output), local to one run.
type pndmState struct {
	counter     int
	ets         []*tensor.Tensor // raw model outputs, at most 4
	curSample   *tensor.Tensor
	curModelOut []float32 // PRK accumulator, nil for Python's 0
}

// samplePNDM runs the PRK/PLMS loop. The state starts fresh at opts.Start,
// as a diffusers scheduler does when img2img enters mid-plan.
func samplePNDM(ctx context.Context, s *Scheduler, model Model, x *tensor.Tensor, plan Plan, opts Options) (*tensor.Tensor, error) {
	T := s.Effective.NumTrainTimesteps
	stride := T / plan.Steps
	prk := s.prkSteps()
	st := &pndmState{}
	for i := opts.Start; i < len(plan.Timesteps); i++ {
		t := plan.Timesteps[i]
		out, err := callModel(ctx, model, x, i, t) // scale_model_input is the identity
		if err != nil {
			return nil, err
		}
		var next *tensor.Tensor
		if st.counter < prk {
			next, err = s.stepPRK(st, out, int(t), x, plan, stride)
		} else {
			next, err = s.stepPLMS(st, out, int(t), x, stride)
		}
		if err != nil {
			return nil, err
		}
		x = next
		if err := opts.emit(Step{I: i, T: t, X: x}); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// stepPRK is step_prk: four model calls per Runge–Kutta round, weights
// 1/6, 1/3, 1/3, 1/6, each call stepping from the round's start sample.
func (s *Scheduler) stepPRK(st *pndmState, out *tensor.Tensor, t int, x *tensor.Tensor, plan Plan, stride int) (*tensor.Tensor, error) {
	diffToPrev := stride / 2
	if st.counter%2 == 1 {
		diffToPrev = 0
	}
	prevT := t - diffToPrev
	t = int(plan.Timesteps[st.counter/4*4])
	m := out.Data
	const sixth, third = float32(1.0 / 6), float32(1.0 / 3)
	accumulate := func(w float32) {
		if st.curModelOut == nil {
			st.curModelOut = make([]float32, len(m))
		}
		for j, v := range m {
			st.curModelOut[j] += float32(w * v)
		}
	}
	modelOut := out
	switch st.counter % 4 {
	case 0:
		accumulate(sixth)
		st.ets = append(st.ets, out.Clone())
		st.curSample = x
	case 1, 2:
		accumulate(third)
	case 3:
		combined := tensor.New(out.Shape...)
		for j, v := range m {
			var acc float32
			if st.curModelOut != nil {
				acc = st.curModelOut[j]
			}
			combined.Data[j] = acc + float32(sixth*v)
		}
		modelOut = combined
		st.curModelOut = nil
	}
	cur := st.curSample
	if cur == nil {
		cur = x
	}
	next, err := s.pndmPrevSample(cur, t, prevT, modelOut)
	st.counter++
	return next, err
}

// stepPLMS is step_plms: the linear multistep combination of the last
// model outputs (orders 1 to 4), with the skip_prk start (counter 1 steps
// again from the first sample with the average of the first two outputs).
func (s *Scheduler) stepPLMS(st *pndmState, out *tensor.Tensor, t int, x *tensor.Tensor, stride int) (*tensor.Tensor, error) {
	if !s.Effective.SkipPrkSteps && len(st.ets) < 3 {
		return nil, fmt.Errorf("sampling: pndm: PLMS step with %d stored outputs; the PRK steps must run first", len(st.ets))
	}
	prevT := t - stride
	if st.counter != 1 {
		if len(st.ets) > 3 {
			st.ets = st.ets[len(st.ets)-3:]
		}
		st.ets = append(st.ets, out.Clone()) // the model may reuse its output buffer
	} else {
		prevT = t
		t += stride
	}
	m := out.Data
	combined := tensor.New(out.Shape...)
	c := combined.Data
	ets := st.ets
	e := func(k int) []float32 { return ets[len(ets)-k].Data } // e(1) = ets[-1]
	sample := x
	switch {
	case len(ets) == 1 && st.counter == 0:
		copy(c, m)
		st.curSample = x
	case len(ets) == 1 && st.counter == 1:
		e1 := e(1)
		for j := range c {
			c[j] = (m[j] + e1[j]) / 2
		}
		sample = st.curSample
		st.curSample = nil
	case len(ets) == 2:
		e1, e2 := e(1), e(2)
		for j := range c {
			c[j] = (float32(3*e1[j]) - e2[j]) / 2
		}
	case len(ets) == 3:
		e1, e2, e3 := e(1), e(2), e(3)
		for j := range c {
			c[j] = (float32(23*e1[j]) - float32(16*e2[j]) + float32(5*e3[j])) / 12
		}
	default:
		e1, e2, e3, e4 := e(1), e(2), e(3), e(4)
		const w = float32(1.0 / 24)
		for j := range c {
			c[j] = w * (float32(55*e1[j]) - float32(59*e2[j]) + float32(37*e3[j]) - float32(9*e4[j]))
		}
	}
	next, err := s.pndmPrevSample(sample, t, prevT, combined)
	st.counter++
	return next, err
}

// pndmPrevSample is _get_prev_sample, PNDM paper eq. 9: x_{t-δ} =
// (ᾱ_{t-δ}/ᾱ_t)^½ x_t - (ᾱ_{t-δ} - ᾱ_t) ε / (ᾱ_t(1-ᾱ_{t-δ})^½ +
// (ᾱ_t(1-ᾱ_t)ᾱ_{t-δ})^½), with v_prediction converted to ε first.
func (s *Scheduler) pndmPrevSample(x *tensor.Tensor, t, prevT int, modelOut *tensor.Tensor) (*tensor.Tensor, error) {
	at, err := s.alphaAt(t)
	if err != nil {
		return nil, err
	}
	atPrev := s.finalAlpha
	if prevT >= 0 {
		if atPrev, err = s.alphaAt(prevT); err != nil {
			return nil, err
		}
	}
	bt, btPrev := 1-at, 1-atPrev
	xs, m := x.Data, modelOut.Data
	if s.Effective.PredictionType == "v_prediction" {
		sqa, sqb := sqrt32(at), sqrt32(bt)
		eps := make([]float32, len(m))
		for j := range eps {
			eps[j] = float32(sqa*m[j]) + float32(sqb*xs[j])
		}
		m = eps
	}
	sampleCoeff := sqrt32(atPrev / at)
	denom := float32(at*sqrt32(btPrev)) + sqrt32(float32(at*bt)*atPrev)
	diff := atPrev - at
	next := tensor.New(x.Shape...)
	for j, v := range xs {
		next.Data[j] = float32(sampleCoeff*v) - float32(diff*m[j])/denom
	}
	return next, nil
}

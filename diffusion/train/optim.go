package train

import (
	"math"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter 2019,
// torch.optim.AdamW): for each parameter θ with gradient g at step t,
//
//	m = β1·m + (1−β1)·g,  v = β2·v + (1−β2)·g²
//	θ = θ − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε) − lr·λ·θ
//
// Weight decay λ applies to matrices and convolution kernels only, not to
// biases, norm scales or embeddings' 1-D tensors. State is kept per
// parameter in the order of the Params it was made for.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// Step is the number of updates applied (t above).
	Step int
	M, V [][]float32
}

// NewAdamW returns an optimiser for p with β = (0.9, 0.999), ε = 1e-8 and
// the given weight decay.
func NewAdamW(p Params, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay}
	for _, t := range p.Tensors {
		o.M = append(o.M, make([]float32, t.Len()))
		o.V = append(o.V, make([]float32, t.Len()))
	}
	return o
}

// Update applies one step of learning rate lr to every parameter of p that
// received a gradient (t.Grad() non-nil).
func (o *AdamW) Update(p Params, lr float64) {
	o.Step++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	stepSize := float32(lr / bc1)
	rbc2 := float32(1 / math.Sqrt(bc2))
	eps := float32(o.Eps)
	for i, t := range p.Tensors {
		g := t.Grad()
		if g == nil {
			continue
		}
		decay := float32(1)
		if t.Dims() >= 2 && o.WeightDecay > 0 {
			decay = float32(1 - lr*o.WeightDecay)
		}
		m, v, w := o.M[i], o.V[i], t.Data
		for j, gj := range g.Data {
			m[j] = b1*m[j] + (1-b1)*gj
			v[j] = b2*v[j] + (1-b2)*gj*gj
			w[j] = w[j]*decay - stepSize*m[j]/(float32(math.Sqrt(float64(v[j])))*rbc2+eps)
		}
	}
}

// ClipGradNorm scales every gradient of p so that their global L2 norm is
// at most maxNorm (torch.nn.utils.clip_grad_norm_) and returns the norm
// before clipping. A non-finite norm leaves the gradients unchanged; the
// caller should skip the step.
func ClipGradNorm(p Params, maxNorm float64) float64 {
	norm := math.Sqrt(gradSquares(p))
	if math.IsNaN(norm) || math.IsInf(norm, 0) || norm <= maxNorm {
		return norm
	}
	s := float32(maxNorm / (norm + 1e-6))
	for _, t := range p.Tensors {
		if g := t.Grad(); g != nil {
			for j := range g.Data {
				g.Data[j] *= s
			}
		}
	}
	return norm
}

// EMA keeps an exponential moving average of parameters (Polyak averaging;
// diffusers' EMAModel): shadow = d·shadow + (1−d)·θ after each update, with
// the warm-up d = min(Decay, (1+n)/(10+n)) at the n-th update so early
// averages are not dominated by the random initialisation. The averaged
// weights are the ones shipped.
type EMA struct {
	Decay   float64
	Updates int
	Shadow  [][]float32
}

// NewEMA starts an average at p's current values.
func NewEMA(p Params, decay float64) *EMA {
	e := &EMA{Decay: decay}
	for _, t := range p.Tensors {
		e.Shadow = append(e.Shadow, append([]float32(nil), t.Data...))
	}
	return e
}

// Update folds p's current values into the average.
func (e *EMA) Update(p Params) {
	n := float64(e.Updates)
	d := float32(min(e.Decay, (1+n)/(10+n)))
	e.Updates++
	for i, t := range p.Tensors {
		s := e.Shadow[i]
		for j, v := range t.Data {
			s[j] = d*s[j] + (1-d)*v
		}
	}
}

// Params returns the averaged weights as Params with p's names (new tensors
// sharing the shadow storage).
func (e *EMA) Params(p Params) Params {
	out := Params{Names: p.Names}
	for i, t := range p.Tensors {
		out.Tensors = append(out.Tensors, tensor.FromData(e.Shadow[i], t.Shape...))
	}
	return out
}

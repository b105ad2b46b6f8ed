package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
)

// batchImages gathers examples [first, first+n) of data into x [n, 3, S, S].
func batchImages(data Dataset, first, n int) (*tensor.Tensor, []Example) {
	s := data.Size()
	x := tensor.New(n, 3, s, s)
	exs := make([]Example, n)
	plane := 3 * s * s
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exs[i] = data.Example(first + i)
			copy(x.Data[i*plane:(i+1)*plane], exs[i].Image)
		}()
	}
	wg.Wait()
	return x, exs
}

// normal returns a tensor of the given shape from N(0, 1) drawn with r.
func normal(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

// stepRand is the generator of step k's noise: it depends on (seed, k) only.
func stepRand(seed uint64, step int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0xd1ff^uint64(step)))
}

// VAELoss is the autoencoder objective of Rombach et al. 2022 without its
// adversarial and perceptual terms: the mean squared reconstruction error of
// a posterior sample (drawn with noise) plus klWeight times the mean KL
// divergence to N(0, 1), which keeps the latents of a scale diffusion can
// use. x is [N, 3, H, W] in [-1, 1]; it returns the total and the two terms.
func VAELoss(m *vae.AutoencoderKL, x *tensor.Tensor, noise *rand.Rand, klWeight float64) (loss, rec, kl *tensor.Tensor) {
	dist := m.Encode(x)
	z := dist.Sample(normal(noise, dist.Mean.Shape...))
	rec = tensor.MSE(m.Decode(z), x)
	kl = dist.KL()
	return tensor.Add(rec, tensor.Scale(kl.Clone(), float32(klWeight))), rec, kl
}

// DecoderLoss is the objective of decoder fine-tuning with a frozen
// encoder (as Stable Diffusion's ft-MSE decoder was made): a posterior
// sample of x, decoded, against x with mean absolute plus mean squared
// error; L1 keeps edges sharp. Only the decoder's parameters should be
// watched, so the latents the UNet learned stay valid.
func DecoderLoss(m *vae.AutoencoderKL, x *tensor.Tensor, noise *rand.Rand) *tensor.Tensor {
	dist := m.Encode(x)
	z := dist.Sample(normal(noise, dist.Mean.Shape...)).Detach()
	y := m.Decode(z)
	return tensor.Add(l1(y, x), tensor.MSE(y, x))
}

// DecoderStage returns the LossFunc of decoder fine-tuning on data.
func DecoderStage(m *vae.AutoencoderKL, data Dataset, opts Options) LossFunc {
	return func(step int) (*tensor.Tensor, error) {
		x, _ := batchImages(data, step*opts.Batch, opts.Batch)
		return DecoderLoss(m, x, stepRand(opts.Seed, step)), nil
	}
}

// l1 returns mean|a − b| as a [1] tensor; b is a constant target.
func l1(a, b *tensor.Tensor) *tensor.Tensor {
	x, y := a.Data, b.Data
	var s float64
	for i := range x {
		s += math.Abs(float64(x[i]) - float64(y[i]))
	}
	n := float32(len(x))
	out := tensor.FromData([]float32{float32(s / float64(len(x)))}, 1)
	tensor.Record(out, []*tensor.Tensor{a}, func(g []float32, d [][]float32) {
		if d[0] == nil {
			return
		}
		k := g[0] / n
		for i := range x {
			switch {
			case x[i] > y[i]:
				d[0][i] += k
			case x[i] < y[i]:
				d[0][i] -= k
			}
		}
	})
	return out
}

// VAEStage returns the LossFunc of autoencoder training on data.
func VAEStage(m *vae.AutoencoderKL, data Dataset, opts Options, klWeight float64) LossFunc {
	return func(step int) (*tensor.Tensor, error) {
		x, _ := batchImages(data, step*opts.Batch, opts.Batch)
		loss, _, _ := VAELoss(m, x, stepRand(opts.Seed, step), klWeight)
		return loss, nil
	}
}

// LatentScale estimates the VAE's scaling_factor as Stable Diffusion's
// authors did: 1/std of the posterior means of n examples of data, so
// that latents·scaling_factor have unit variance for the UNet.
func LatentScale(m *vae.AutoencoderKL, data Dataset, n int) float32 {
	var sum, sq float64
	var count int
	for first := 0; first < n; first += 32 {
		x, _ := batchImages(data, first, min(32, n-first))
		for _, v := range m.Encode(x).Mean.Data {
			sum += float64(v)
			sq += float64(v) * float64(v)
			count++
		}
	}
	mean := sum / float64(count)
	return float32(1 / math.Sqrt(sq/float64(count)-mean*mean))
}

// Diffusion is what the second stage trains and uses: the tokenizer and
// text encoder, the UNet, and the frozen autoencoder whose latents
// (posterior means × ScalingFactor) it denoises.
type Diffusion struct {
	Tokenizer     *clip.Tokenizer
	Text          *clip.TextModel
	UNet          *unet.UNet2DConditionModel
	VAE           *vae.AutoencoderKL
	ScalingFactor float32
	// AlphasCumprod is ᾱ_t of the training noise schedule (1000 values).
	AlphasCumprod []float32
	// UncondProb is the fraction of captions replaced by "" so the model
	// also learns the unconditional prediction classifier-free guidance
	// needs (Ho & Salimans 2022); 0.1 is usual.
	UncondProb float64
	// VPrediction makes the UNet predict v = √ᾱ·ε − √(1−ᾱ)·z (Salimans &
	// Ho 2022) instead of ε: the target that stays meaningful at zero
	// terminal SNR, where ε-prediction carries no information.
	VPrediction bool
	// MinSNRGamma weights each sample's loss by min(SNR_t, γ)/SNR_t for ε
	// (min(SNR_t, γ)/(SNR_t+1) for v; Min-SNR weighting, Hang et al. 2023);
	// 0 disables it.
	MinSNRGamma float64

	mu      sync.Mutex
	latents map[string][]float32 // by Example.Key
}

// maxCachedLatents bounds the latent cache (entries).
const maxCachedLatents = 200_000

// Latents returns the scaled latents [n, C, h, w] of examples, encoding
// (without a tape) the ones not cached yet.
func (d *Diffusion) Latents(x *tensor.Tensor, exs []Example) *tensor.Tensor {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.latents == nil {
		d.latents = map[string][]float32{}
	}
	var missing []int
	for i, e := range exs {
		if _, ok := d.latents[e.Key]; !ok || e.Key == "" {
			missing = append(missing, i)
		}
	}
	fresh := map[int][]float32{}
	if len(missing) > 0 {
		s := x.Shape[2]
		plane := 3 * s * s
		sub := tensor.New(len(missing), 3, s, s)
		for j, i := range missing {
			copy(sub.Data[j*plane:(j+1)*plane], x.Data[i*plane:(i+1)*plane])
		}
		mean := d.VAE.Encode(sub).Mean
		lp := mean.Len() / len(missing)
		for j, i := range missing {
			z := append([]float32(nil), mean.Data[j*lp:(j+1)*lp]...)
			for k := range z {
				z[k] *= d.ScalingFactor
			}
			fresh[i] = z
			if exs[i].Key != "" && len(d.latents) < maxCachedLatents {
				d.latents[exs[i].Key] = z
			}
		}
	}
	var out *tensor.Tensor
	for i, e := range exs {
		z, ok := fresh[i]
		if !ok {
			z = d.latents[e.Key]
		}
		if out == nil {
			c := d.VAE.Config.LatentChannels
			side := int(math.Sqrt(float64(len(z) / c)))
			out = tensor.New(len(exs), c, side, side)
		}
		copy(out.Data[i*len(z):], z)
	}
	return out
}

// Loss is the denoising objective of Ho et al. 2020 on latents: for each
// example a timestep t ~ U{0..T−1} and noise ε ~ N(0, I) give x_t =
// √ᾱ_t·z + √(1−ᾱ_t)·ε, and the UNet, conditioned on the caption's
// encoder_hidden_states, predicts ε or v (noise_pred); the loss is the
// (Min-SNR weighted) mean squared error. Gradients reach the UNet and the
// text encoder.
func (d *Diffusion) Loss(x *tensor.Tensor, exs []Example, r *rand.Rand) (*tensor.Tensor, error) {
	z := d.Latents(x, exs)
	n := z.Shape[0]
	per := z.Len() / n
	eps := normal(r, z.Shape...)
	noisy := tensor.New(z.Shape...)
	target := eps
	if d.VPrediction {
		target = tensor.New(z.Shape...)
	}
	timesteps := make([]float32, n)
	weights := make([]float32, n)
	for i := range n {
		t := r.IntN(len(d.AlphasCumprod))
		timesteps[i] = float32(t)
		a := float64(d.AlphasCumprod[t])
		sa, sb := float32(math.Sqrt(a)), float32(math.Sqrt(1-a))
		for k := i * per; k < (i+1)*per; k++ {
			noisy.Data[k] = sa*z.Data[k] + sb*eps.Data[k]
			if d.VPrediction {
				target.Data[k] = sa*eps.Data[k] - sb*z.Data[k]
			}
		}
		weights[i] = 1
		if snr := a / (1 - a); d.MinSNRGamma > 0 && d.VPrediction {
			weights[i] = float32(min(snr, d.MinSNRGamma) / (snr + 1))
		} else if d.MinSNRGamma > 0 {
			weights[i] = float32(min(snr, d.MinSNRGamma) / snr)
		}
	}
	ids := make([]int, 0, n*d.Tokenizer.MaxLength)
	for _, e := range exs {
		caption := e.Caption
		if r.Float64() < d.UncondProb {
			caption = ""
		}
		p, _ := d.Tokenizer.EncodePadded(caption)
		ids = append(ids, p...)
	}
	ehs, err := d.Text.Forward(ids, n, 0)
	if err != nil {
		return nil, err
	}
	noisePred := d.UNet.Forward(noisy, timesteps, ehs)
	return weightedMSE(noisePred, target, weights), nil
}

// DiffusionStage returns the LossFunc of UNet and text-encoder training on
// data.
func (d *Diffusion) Stage(data Dataset, opts Options) LossFunc {
	return func(step int) (*tensor.Tensor, error) {
		x, exs := batchImages(data, step*opts.Batch, opts.Batch)
		return d.Loss(x, exs, stepRand(opts.Seed, step))
	}
}

// weightedMSE returns Σ_n w_n·mean((a_n − b_n)²) / N over the batch items n
// of a and b [N, ...], a [1] tensor; b is a constant target.
func weightedMSE(a, b *tensor.Tensor, w []float32) *tensor.Tensor {
	if !tensor.SameShape(a, b) || a.Shape[0] != len(w) {
		panic(fmt.Sprintf("train: weightedMSE of %v and %v with %d weights", a.Shape, b.Shape, len(w)))
	}
	n := len(w)
	per := a.Len() / n
	x, y := a.Data, b.Data
	var s float64
	for i := range n {
		var e float64
		for k := i * per; k < (i+1)*per; k++ {
			d := float64(x[k]) - float64(y[k])
			e += d * d
		}
		s += float64(w[i]) * e / float64(per)
	}
	out := tensor.FromData([]float32{float32(s / float64(n))}, 1)
	tensor.Record(out, []*tensor.Tensor{a}, func(g []float32, d [][]float32) {
		if d[0] == nil {
			return
		}
		for i := range n {
			k := 2 * g[0] * w[i] / float32(per*n)
			for j := i * per; j < (i+1)*per; j++ {
				d[0][j] += k * (x[j] - y[j])
			}
		}
	})
	return out
}

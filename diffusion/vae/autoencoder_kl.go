package vae

import (
	"fmt"
	"path/filepath"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// AutoencoderKL is diffusers' AutoencoderKL
// (models/autoencoders/autoencoder_kl.py, v0.27.2), the KL-regularised
// autoencoder of Rombach et al. 2022:
//
//	encode: image → encoder → quant_conv → DiagonalGaussian(mean, logvar)
//	decode: z → post_quant_conv → decoder → image
//
// Checkpoint keys: encoder, decoder, quant_conv, post_quant_conv (1x1
// convolutions; absent with use_quant_conv / use_post_quant_conv false).
// A loaded model is read-only, so Encode and Decode may run concurrently.
type AutoencoderKL struct {
	Encoder       *Encoder
	Decoder       *Decoder
	QuantConv     *nn.Conv2d // 2·latent → 2·latent, or nil
	PostQuantConv *nn.Conv2d // latent → latent, or nil
	Config        Config     // what the model was built from
}

// Load loads the AutoencoderKL in dir, the vae/ folder of a diffusers model:
// config.json and the weights (diffusion_pytorch_model.safetensors, its
// .fp16 variant or a sharded index, see nn.OpenComponent) in F32, F16 or
// BF16; F16 and BF16 weights stay in 16 bits in memory and are widened
// exactly when used (see nn.FileSource). Loading is strict: a missing tensor, a tensor of the
// wrong shape or a checkpoint tensor the model does not use is an error
// naming the full key.
func Load(dir string) (_ *AutoencoderKL, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("vae: load %s: %w", dir, err)
		}
	}()
	c, err := readConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	src, err := nn.OpenComponent(dir, "diffusion_pytorch_model")
	if err != nil {
		return nil, err
	}
	defer src.Close() // tensors are copied out as they load
	w := nn.NewWeights(src)
	m, err := build(w, c)
	if err != nil {
		return nil, err
	}
	return m, w.Strict(nil)
}

// New builds an AutoencoderKL for c from w, which is rooted at the VAE's
// keys (encoder.conv_in.weight, …). It returns an error if c is invalid or
// a tensor is missing or has the wrong shape; it does not check for unused
// keys (call w.Strict for that, as Load does). With an nn.RandomSource it
// builds a randomly initialised model.
func New(w nn.Weights, c Config) (*AutoencoderKL, error) {
	m, err := build(w, c)
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	return m, nil
}

// build is New without the package prefix on errors.
func build(w nn.Weights, c Config) (*AutoencoderKL, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m := &AutoencoderKL{
		Encoder: NewEncoder(w.Sub("encoder"), c),
		Decoder: NewDecoder(w.Sub("decoder"), c),
		Config:  c,
	}
	if c.UseQuantConv {
		m.QuantConv = nn.NewConv2d(w.Sub("quant_conv"), 2*c.LatentChannels, 2*c.LatentChannels, 1, 1, 0)
	}
	if c.UsePostQuantConv {
		m.PostQuantConv = nn.NewConv2d(w.Sub("post_quant_conv"), c.LatentChannels, c.LatentChannels, 1, 1, 0)
	}
	if err := w.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Encode maps images x [N, in_channels, H, W], pixel values scaled to
// [-1, 1], to the latent distribution over [N, latent_channels, H/f, W/f],
// f = Config.ScaleFactor(); H and W should be multiples of f (otherwise
// each halving rounds down). The pipeline scales a sample by
// scaling_factor before denoising. It panics if x is not of that form.
func (m *AutoencoderKL) Encode(x *tensor.Tensor) *DiagonalGaussian {
	if x.Dims() != 4 || x.Shape[1] != m.Config.InChannels || x.Shape[2] < m.Config.ScaleFactor() || x.Shape[3] < m.Config.ScaleFactor() {
		panic(fmt.Sprintf("vae: Encode of %v, want [N, %d, H ≥ %d, W ≥ %d]", x.Shape, m.Config.InChannels, m.Config.ScaleFactor(), m.Config.ScaleFactor()))
	}
	moments := m.Encoder.Forward(x)
	if m.QuantConv != nil {
		moments = m.QuantConv.Forward(moments)
	}
	return newDiagonalGaussian(moments)
}

// Decode maps latents z [N, latent_channels, h, w] to images
// [N, out_channels, h·f, w·f], f = Config.ScaleFactor() (8 for SD), with
// values nominally in [-1, 1] but not clamped.
//
// z is what diffusers' vae.decode receives: the caller (the pipeline) has
// already undone the latent scaling, z = latents/scaling_factor +
// shift_factor. It panics if z is not of that form.
//
// The decoder's activations (up to 268 MB each at 512x512) are recycled
// through the tensor pool with its limit raised to DecodePoolLimit for the
// call: fresh memory would cost a page fault per 4 KiB on first write.
func (m *AutoencoderKL) Decode(z *tensor.Tensor) *tensor.Tensor {
	if z.Dims() != 4 || z.Shape[1] != m.Config.LatentChannels {
		panic(fmt.Sprintf("vae: Decode of %v, want [N, %d, h, w]", z.Shape, m.Config.LatentChannels))
	}
	defer tensor.PoolLimit(tensor.PoolLimit(DecodePoolLimit))
	if m.PostQuantConv != nil {
		z = m.PostQuantConv.Forward(z)
	}
	return m.Decoder.Forward(z)
}

// DecodePoolLimit is the tensor pool limit (floats) during Decode: 1 GiB.
const DecodePoolLimit = 1 << 28

// DiagonalGaussian is diffusers” DiagonalGaussianDistribution
// (models/autoencoders/vae.py), the encoder's posterior: independent
// Gaussians per latent element. All tensors are [N, latent_channels, h, w].
type DiagonalGaussian struct {
	Mean   *tensor.Tensor
	LogVar *tensor.Tensor // clamped to [-30, 20]
	Std    *tensor.Tensor // exp(0.5·LogVar)
}

// newDiagonalGaussian splits moments [N, 2C, h, w] along channels into the
// mean and the log-variance, as torch.chunk(moments, 2, dim=1).
func newDiagonalGaussian(moments *tensor.Tensor) *DiagonalGaussian {
	c := moments.Shape[1] / 2
	d := &DiagonalGaussian{
		Mean:   tensor.Narrow(moments, 1, 0, c),
		LogVar: tensor.Clamp(tensor.Narrow(moments, 1, c, c), -30, 20),
	}
	d.Std = tensor.Exp(tensor.Scale(d.LogVar.Clone(), 0.5))
	return d
}

// KL returns the mean over elements of KL(N(Mean, Std²) ‖ N(0, 1)) =
// ½(Mean² + Std² − 1 − LogVar), a tensor of shape [1]; diffusers' kl()
// sums instead of averaging over the latent dimensions. The trainer adds it,
// weighted, to the reconstruction loss (Kingma & Welling 2014).
func (d *DiagonalGaussian) KL() *tensor.Tensor {
	v := tensor.Add(tensor.Mul(d.Mean, d.Mean), tensor.Mul(d.Std, d.Std))
	v = tensor.Sub(v, d.LogVar)
	kl := tensor.Scale(tensor.Mean(v), 0.5)
	kl.Data[0] -= 0.5 // the constant −1 has no gradient
	return kl
}

// Sample returns Mean + Std·noise, a draw from the distribution given
// standard normal noise of Mean's shape (diffusers draws it with
// torch.randn from the pipeline's generator). It panics if the shapes
// differ.
func (d *DiagonalGaussian) Sample(noise *tensor.Tensor) *tensor.Tensor {
	if !tensor.SameShape(noise, d.Mean) {
		panic(fmt.Sprintf("vae: Sample noise %v for a distribution of %v", noise.Shape, d.Mean.Shape))
	}
	// Mul rounds the product to float32 before the sum, as torch does.
	return tensor.Add(d.Mean, tensor.Mul(d.Std, noise))
}

// Mode returns the most likely latents, Mean (diffusers' mode()).
func (d *DiagonalGaussian) Mode() *tensor.Tensor { return d.Mean }

package vae

import (
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
)

// Encoder is diffusers' Encoder (models/autoencoders/vae.py) with
// double_z: it maps an image to the mean and log-variance of the latent
// distribution, stacked along channels.
//
//	conv_in → down_blocks.0 … down_blocks.{n-1} → mid_block
//	→ conv_norm_out → SiLU → conv_out
//
// Block i has block_out_channels[i] channels; every block but the last
// halves the size.
type Encoder struct {
	ConvIn      *nn.Conv2d
	DownBlocks  []*DownEncoderBlock2D
	MidBlock    *UNetMidBlock2D
	ConvNormOut *nn.GroupNorm
	ConvOut     *nn.Conv2d // → 2·latent_channels
}

// NewEncoder loads an Encoder for c, which must be valid.
func NewEncoder(w nn.Weights, c Config) *Encoder {
	ch := c.BlockOutChannels
	last := ch[len(ch)-1]
	e := &Encoder{ConvIn: nn.NewConv2d(w.Sub("conv_in"), c.InChannels, ch[0], 3, 1, 1)}
	out := ch[0]
	for i := range c.DownBlockTypes {
		in := out
		out = ch[i]
		e.DownBlocks = append(e.DownBlocks, NewDownEncoderBlock2D(w.SubIndex("down_blocks", i),
			c.LayersPerBlock, in, out, c.NormNumGroups, i < len(ch)-1))
	}
	e.MidBlock = NewUNetMidBlock2D(w.Sub("mid_block"), last, c.NormNumGroups, c.MidBlockAddAttention)
	e.ConvNormOut = nn.NewGroupNorm(w.Sub("conv_norm_out"), c.NormNumGroups, last, 1e-6)
	e.ConvOut = nn.NewConv2d(w.Sub("conv_out"), last, 2*c.LatentChannels, 3, 1, 1)
	return e
}

// Forward maps x [N, in_channels, H, W] to moments
// [N, 2·latent_channels, H/f, W/f] (mean, then log-variance), f the scale
// factor; each halving rounds down.
func (e *Encoder) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := e.ConvIn.Forward(x)
	for _, b := range e.DownBlocks {
		h = tensor.Replace(h, b.Forward(h))
	}
	h = tensor.Replace(h, e.MidBlock.Forward(h))
	h = tensor.SiLU(e.ConvNormOut.ForwardInPlace(h))
	return tensor.Replace(h, e.ConvOut.Forward(h))
}

// DownEncoderBlock2D is diffusers' DownEncoderBlock2D
// (models/unets/unet_2d_blocks.py): residual blocks without time embedding
// (eps 1e-6), then, except in the last block, a stride-2 convolution that
// pads bottom and right first (downsample_padding 0).
// Checkpoint keys: resnets.M, downsamplers.0.
type DownEncoderBlock2D struct {
	Resnets      []*unet.ResnetBlock2D
	Downsamplers []*unet.Downsample2D // one, or none in the last block
}

// NewDownEncoderBlock2D loads a block of layers residual blocks from in to
// out channels, with a downsampler if addDownsample.
func NewDownEncoderBlock2D(w nn.Weights, layers, in, out, groups int, addDownsample bool) *DownEncoderBlock2D {
	b := &DownEncoderBlock2D{}
	for i := 0; i < layers; i++ {
		b.Resnets = append(b.Resnets, unet.NewResnetBlock2D(w.SubIndex("resnets", i),
			unet.ResnetConfig{In: in, Out: out, Groups: groups, Eps: 1e-6}))
		in = out
	}
	if addDownsample {
		b.Downsamplers = append(b.Downsamplers, unet.NewDownsample2D(w.SubIndex("downsamplers", 0), out, out, 0))
	}
	return b
}

// Forward maps x [N, in, H, W] to [N, out, H/2, W/2] (rounded down), or
// [N, out, H, W] without a downsampler.
func (b *DownEncoderBlock2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := x
	for _, r := range b.Resnets {
		h = step(x, h, r.Forward(h, nil))
	}
	for _, d := range b.Downsamplers {
		h = step(x, h, d.Forward(h))
	}
	return h
}

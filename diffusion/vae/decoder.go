package vae

import (
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
)

// Decoder is diffusers' Decoder (models/autoencoders/vae.py) with
// norm_type "group": it maps latents back to an image.
//
//	conv_in → mid_block → up_blocks.0 … up_blocks.{n-1}
//	→ conv_norm_out → SiLU → conv_out
//
// It mirrors the encoder: up block i has reversed(block_out_channels)[i]
// channels and layers_per_block+1 residual blocks, and every block but the
// last doubles the size.
type Decoder struct {
	ConvIn      *nn.Conv2d
	MidBlock    *UNetMidBlock2D
	UpBlocks    []*UpDecoderBlock2D
	ConvNormOut *nn.GroupNorm
	ConvOut     *nn.Conv2d
}

// NewDecoder loads a Decoder for c, which must be valid.
func NewDecoder(w nn.Weights, c Config) *Decoder {
	ch := c.BlockOutChannels
	last := ch[len(ch)-1]
	d := &Decoder{
		ConvIn:   nn.NewConv2d(w.Sub("conv_in"), c.LatentChannels, last, 3, 1, 1),
		MidBlock: NewUNetMidBlock2D(w.Sub("mid_block"), last, c.NormNumGroups, c.MidBlockAddAttention),
	}
	out := last
	for i := range c.UpBlockTypes {
		in := out
		out = ch[len(ch)-1-i]
		d.UpBlocks = append(d.UpBlocks, NewUpDecoderBlock2D(w.SubIndex("up_blocks", i),
			c.LayersPerBlock+1, in, out, c.NormNumGroups, i < len(ch)-1))
	}
	d.ConvNormOut = nn.NewGroupNorm(w.Sub("conv_norm_out"), c.NormNumGroups, ch[0], 1e-6)
	d.ConvOut = nn.NewConv2d(w.Sub("conv_out"), ch[0], c.OutChannels, 3, 1, 1)
	return d
}

// Forward maps z [N, latent_channels, h, w] to [N, out_channels, h·f, w·f],
// f the scale factor.
func (d *Decoder) Forward(z *tensor.Tensor) *tensor.Tensor {
	h := d.ConvIn.Forward(z)
	h = tensor.Replace(h, d.MidBlock.Forward(h))
	for _, b := range d.UpBlocks {
		h = tensor.Replace(h, b.Forward(h))
	}
	h = tensor.SiLU(d.ConvNormOut.ForwardInPlace(h))
	return tensor.Replace(h, d.ConvOut.Forward(h))
}

// UpDecoderBlock2D is diffusers' UpDecoderBlock2D
// (models/unets/unet_2d_blocks.py): residual blocks without time embedding
// (eps 1e-6), then, except in the last block, nearest-neighbour ×2
// upsampling and a 3x3 convolution.
// Checkpoint keys: resnets.M, upsamplers.0.
type UpDecoderBlock2D struct {
	Resnets    []*unet.ResnetBlock2D
	Upsamplers []*unet.Upsample2D // one, or none in the last block
}

// NewUpDecoderBlock2D loads a block of layers residual blocks from in to out
// channels, with an upsampler if addUpsample.
func NewUpDecoderBlock2D(w nn.Weights, layers, in, out, groups int, addUpsample bool) *UpDecoderBlock2D {
	b := &UpDecoderBlock2D{}
	for i := 0; i < layers; i++ {
		b.Resnets = append(b.Resnets, unet.NewResnetBlock2D(w.SubIndex("resnets", i),
			unet.ResnetConfig{In: in, Out: out, Groups: groups, Eps: 1e-6}))
		in = out
	}
	if addUpsample {
		b.Upsamplers = append(b.Upsamplers, unet.NewUpsample2D(w.SubIndex("upsamplers", 0), out, out))
	}
	return b
}

// Forward maps x [N, in, H, W] to [N, out, 2H, 2W], or [N, out, H, W]
// without an upsampler.
func (b *UpDecoderBlock2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := x
	for _, r := range b.Resnets {
		h = step(x, h, r.Forward(h, nil))
	}
	for _, u := range b.Upsamplers {
		h = step(x, h, u.Forward(h, 0, 0))
	}
	return h
}

// step returns next, releasing the activation old it was computed from
// unless old is in, the block's input, which belongs to the caller.
func step(in, old, next *tensor.Tensor) *tensor.Tensor {
	if old == in {
		return next
	}
	return tensor.Replace(old, next)
}

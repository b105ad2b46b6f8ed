package unet

import (
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// blockConfig are the arguments diffusers' get_down_block/get_up_block pass
// to one UNet block.
type blockConfig struct {
	In, Out, PrevOut int // PrevOut: up blocks only
	Layers           int
	TembChannels     int
	CrossAttention   bool
	Heads            int
	TransformerDepth int
	CrossDim         int
	Groups           int
	Eps              float32
	OutputScale      float32
	LinearProjection bool
	Sample           bool // add a downsampler/upsampler
	DownsamplePad    int
}

func (c blockConfig) transformer(channels int) TransformerConfig {
	return TransformerConfig{
		Channels: channels, Heads: c.Heads, DimHead: channels / c.Heads, Layers: c.TransformerDepth,
		CrossAttentionDim: c.CrossDim, NormGroups: c.Groups, UseLinearProjection: c.LinearProjection,
	}
}

func (c blockConfig) resnet(in, out int) ResnetConfig {
	return ResnetConfig{In: in, Out: out, TembChannels: c.TembChannels, Groups: c.Groups, Eps: c.Eps, OutputScaleFactor: c.OutputScale}
}

// DownBlock is diffusers' CrossAttnDownBlock2D (Attentions non-empty) or
// DownBlock2D (models/unets/unet_2d_blocks.py): Layers ResnetBlock2D, each
// followed by a Transformer2DModel in the cross-attention variant, then an
// optional Downsample2D. Keys: resnets.N, attentions.N, downsamplers.0.
type DownBlock struct {
	Resnets      []*ResnetBlock2D
	Attentions   []*Transformer2DModel
	Downsamplers []*Downsample2D
}

func newDownBlock(w nn.Weights, c blockConfig) *DownBlock {
	b := &DownBlock{}
	for i := 0; i < c.Layers; i++ {
		in := c.Out
		if i == 0 {
			in = c.In
		}
		b.Resnets = append(b.Resnets, NewResnetBlock2D(w.SubIndex("resnets", i), c.resnet(in, c.Out)))
		if c.CrossAttention {
			b.Attentions = append(b.Attentions, NewTransformer2DModel(w.SubIndex("attentions", i), c.transformer(c.Out)))
		}
	}
	if c.Sample {
		b.Downsamplers = append(b.Downsamplers, NewDownsample2D(w.Sub("downsamplers.0"), c.Out, c.Out, c.DownsamplePad))
	}
	return b
}

// Forward maps x [N, In, H, W] to [N, Out, H', W'] and returns, in order,
// the output of every layer and of the downsampler: the skip connections
// the up blocks consume.
func (b *DownBlock) Forward(x, temb, encoderHiddenStates *tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
	var skips []*tensor.Tensor
	for i, r := range b.Resnets {
		x = r.Forward(x, temb)
		if len(b.Attentions) > 0 {
			x = tensor.Replace(x, b.Attentions[i].Forward(x, encoderHiddenStates))
		}
		skips = append(skips, x)
	}
	for _, d := range b.Downsamplers {
		x = d.Forward(x)
		skips = append(skips, x)
	}
	return x, skips
}

// MidBlock is diffusers' UNetMidBlock2DCrossAttn: resnets.0, then pairs of
// attentions.i and resnets.i+1.
type MidBlock struct {
	Resnets    []*ResnetBlock2D
	Attentions []*Transformer2DModel
}

func newMidBlock(w nn.Weights, c blockConfig) *MidBlock {
	m := &MidBlock{Resnets: []*ResnetBlock2D{NewResnetBlock2D(w.Sub("resnets.0"), c.resnet(c.In, c.In))}}
	for i := 0; i < c.Layers; i++ {
		m.Attentions = append(m.Attentions, NewTransformer2DModel(w.SubIndex("attentions", i), c.transformer(c.In)))
		m.Resnets = append(m.Resnets, NewResnetBlock2D(w.SubIndex("resnets", i+1), c.resnet(c.In, c.In)))
	}
	return m
}

// Forward maps [N, C, H, W] to [N, C, H, W].
func (m *MidBlock) Forward(x, temb, encoderHiddenStates *tensor.Tensor) *tensor.Tensor {
	x = m.Resnets[0].Forward(x, temb)
	for i, a := range m.Attentions {
		x = a.Forward(x, encoderHiddenStates)
		x = m.Resnets[i+1].Forward(x, temb)
	}
	return x
}

// UpBlock is diffusers' CrossAttnUpBlock2D (Attentions non-empty) or
// UpBlock2D: each layer concatenates the latest unused skip connection along
// channels, runs a ResnetBlock2D (and a Transformer2DModel), then an optional
// Upsample2D. Keys: resnets.N, attentions.N, upsamplers.0.
type UpBlock struct {
	Resnets    []*ResnetBlock2D
	Attentions []*Transformer2DModel
	Upsamplers []*Upsample2D
}

func newUpBlock(w nn.Weights, c blockConfig) *UpBlock {
	b := &UpBlock{}
	for i := 0; i < c.Layers; i++ {
		skip := c.Out
		if i == c.Layers-1 {
			skip = c.In
		}
		in := c.Out
		if i == 0 {
			in = c.PrevOut
		}
		b.Resnets = append(b.Resnets, NewResnetBlock2D(w.SubIndex("resnets", i), c.resnet(in+skip, c.Out)))
		if c.CrossAttention {
			b.Attentions = append(b.Attentions, NewTransformer2DModel(w.SubIndex("attentions", i), c.transformer(c.Out)))
		}
	}
	if c.Sample {
		b.Upsamplers = append(b.Upsamplers, NewUpsample2D(w.Sub("upsamplers.0"), c.Out, c.Out))
	}
	return b
}

// Forward consumes len(Resnets) skip connections from the end of skips and
// returns the block output and the remaining skips. The upsampler resizes to
// outH×outW (0: twice the input), the size of the next skip connection.
func (b *UpBlock) Forward(x, temb, encoderHiddenStates *tensor.Tensor, skips []*tensor.Tensor, outH, outW int) (*tensor.Tensor, []*tensor.Tensor) {
	// Each skip connection is used here for the last time, and every
	// activation after the input x is this block's own: they go back to
	// the tensor pool once consumed.
	in := x
	for i, r := range b.Resnets {
		skip := skips[len(skips)-1]
		skips = skips[:len(skips)-1]
		cat := tensor.Concat(1, x, skip)
		tensor.Release(skip)
		if x != in {
			tensor.Release(x)
		}
		x = tensor.Replace(cat, r.Forward(cat, temb))
		if len(b.Attentions) > 0 {
			x = tensor.Replace(x, b.Attentions[i].Forward(x, encoderHiddenStates))
		}
	}
	for _, u := range b.Upsamplers {
		next := u.Forward(x, outH, outW)
		if x != in {
			tensor.Release(x)
		}
		x = next
	}
	return x, skips
}

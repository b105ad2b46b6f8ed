package vae

import (
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
)

// UNetMidBlock2D is diffusers' UNetMidBlock2D (models/unets/unet_2d_blocks.py)
// as the VAE builds it, with one layer and no time embedding: a residual
// block, a single-head spatial self-attention with its own group norm and
// residual connection, and a second residual block, all at one width:
//
//	h = resnets.1(attentions.0(resnets.0(x)))
//
// Without mid_block_add_attention the attention is skipped (nil).
// Checkpoint keys: resnets.0, attentions.0, resnets.1.
type UNetMidBlock2D struct {
	Resnets    []*unet.ResnetBlock2D // 2
	Attentions []*unet.Attention     // 1, or none without attention
}

// NewUNetMidBlock2D loads a mid block of the given channels, with diffusers'
// VAE settings: resnet eps 1e-6, groups for both the resnets and the
// attention's group_norm, attention_head_dim = channels (so one head).
func NewUNetMidBlock2D(w nn.Weights, channels, groups int, addAttention bool) *UNetMidBlock2D {
	resnet := unet.ResnetConfig{In: channels, Out: channels, Groups: groups, Eps: 1e-6}
	m := &UNetMidBlock2D{Resnets: []*unet.ResnetBlock2D{unet.NewResnetBlock2D(w.SubIndex("resnets", 0), resnet)}}
	if addAttention {
		m.Attentions = append(m.Attentions, unet.NewAttention(w.SubIndex("attentions", 0), unet.AttentionConfig{
			QueryDim:           channels,
			Heads:              1,
			DimHead:            channels,
			Bias:               true,
			NormGroups:         groups,
			NormEps:            1e-6,
			ResidualConnection: true,
		}))
	}
	m.Resnets = append(m.Resnets, unet.NewResnetBlock2D(w.SubIndex("resnets", 1), resnet))
	return m
}

// Forward maps x [N, C, H, W] to [N, C, H, W].
func (m *UNetMidBlock2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := m.Resnets[0].Forward(x, nil)
	for i, r := range m.Resnets[1:] {
		if i < len(m.Attentions) {
			h = tensor.Replace(h, m.Attentions[i].ForwardSpatial(h))
		}
		h = tensor.Replace(h, r.Forward(h, nil))
	}
	return h
}

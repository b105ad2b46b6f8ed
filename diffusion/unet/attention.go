package unet

import (
	"math"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Attention is diffusers' Attention module (models/attention_processor.py)
// run by AttnProcessor: multi-head scaled dot-product attention with
// projections to_q, to_k, to_v and to_out.0 (Vaswani et al. 2017).
// In a transformer block it is self-attention (attn1) or cross-attention to
// the text encoder's hidden states (attn2); in the VAE's mid block it is a
// single-head spatial self-attention with its own group_norm and a residual
// connection.
type Attention struct {
	ToQ, ToK, ToV, ToOut0 *nn.Linear
	GroupNorm             *nn.GroupNorm // VAE only, else nil
	Heads                 int
	Scale                 float32 // dim_head^-0.5
	Residual              bool    // add the input back (VAE)
}

// AttentionConfig are the diffusers Attention constructor arguments Pigment
// uses.
type AttentionConfig struct {
	QueryDim           int
	CrossAttentionDim  int // 0 for self-attention
	Heads, DimHead     int
	Bias               bool    // bias on to_q/to_k/to_v (to_out.0 always has one)
	NormGroups         int     // > 0: a group_norm before attention (VAE)
	NormEps            float32 // eps of that group_norm
	ResidualConnection bool
}

// NewAttention loads an Attention from w.
func NewAttention(w nn.Weights, c AttentionConfig) *Attention {
	inner := c.Heads * c.DimHead
	kvDim := c.CrossAttentionDim
	if kvDim == 0 {
		kvDim = c.QueryDim
	}
	a := &Attention{
		ToQ:      nn.NewLinear(w.Sub("to_q"), c.QueryDim, inner, c.Bias),
		ToK:      nn.NewLinear(w.Sub("to_k"), kvDim, inner, c.Bias),
		ToV:      nn.NewLinear(w.Sub("to_v"), kvDim, inner, c.Bias),
		ToOut0:   nn.NewLinear(w.Sub("to_out.0"), inner, c.QueryDim, true),
		Heads:    c.Heads,
		Scale:    float32(1 / math.Sqrt(float64(c.DimHead))),
		Residual: c.ResidualConnection,
	}
	if c.NormGroups > 0 {
		a.GroupNorm = nn.NewGroupNorm(w.Sub("group_norm"), c.NormGroups, c.QueryDim, c.NormEps)
	}
	return a
}

// Forward attends x [B, L, QueryDim] to context [B, Lk, CrossAttentionDim]
// (nil: to itself) and returns [B, L, QueryDim].
func (a *Attention) Forward(x, context *tensor.Tensor) *tensor.Tensor {
	if context == nil {
		context = x
	}
	q := a.ToQ.Forward(x)
	k := a.ToK.Forward(context)
	v := a.ToV.Forward(context)
	attn := tensor.Attention(q, k, v, a.Heads, a.Scale, false)
	tensor.Release(q, k, v)
	out := tensor.Replace(attn, a.ToOut0.Forward(attn))
	if a.Residual {
		tensor.AddTo(out, out, x)
	}
	return out
}

// ForwardSpatial is the VAE mid-block use: x [B, C, H, W] is group-normed,
// flattened to H·W tokens, self-attended and reshaped back, with the residual
// taken from the un-normalised input. Returns [B, C, H, W].
func (a *Attention) ForwardSpatial(x *tensor.Tensor) *tensor.Tensor {
	b, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	hs := x
	if a.GroupNorm != nil {
		hs = a.GroupNorm.Forward(x)
	}
	tokens := tensor.Transpose(hs.Reshape(b, c, h*w)) // [B, HW, C]
	if hs != x {
		tensor.Release(hs)
	}
	q := a.ToQ.Forward(tokens)
	k := a.ToK.Forward(tokens)
	v := a.ToV.Forward(tokens)
	tensor.Release(tokens)
	attn := tensor.Attention(q, k, v, a.Heads, a.Scale, false)
	tensor.Release(q, k, v)
	out := tensor.Replace(attn, a.ToOut0.Forward(attn))
	out = tensor.Replace(out, tensor.Transpose(out)).Reshape(b, c, h, w)
	if a.Residual {
		tensor.AddTo(out, out, x)
	}
	return out
}

// FeedForward is diffusers' FeedForward with activation "geglu": net.0 is a
// GEGLU whose projection ("net.0.proj", dim → 2·inner) is split into hidden
// and gate, net.2 projects inner → dim (net.1 is dropout).
type FeedForward struct {
	Net0Proj, Net2 *nn.Linear
}

// NewFeedForward loads a FeedForward of width dim with inner = 4·dim.
func NewFeedForward(w nn.Weights, dim int) *FeedForward {
	inner := 4 * dim
	return &FeedForward{
		Net0Proj: nn.NewLinear(w.Sub("net.0.proj"), dim, 2*inner, true),
		Net2:     nn.NewLinear(w.Sub("net.2"), inner, dim, true),
	}
}

// Forward maps x [..., dim] to [..., dim].
func (f *FeedForward) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := f.Net0Proj.Forward(x)
	h = tensor.Replace(h, tensor.GEGLU(h))
	return tensor.Replace(h, f.Net2.Forward(h))
}

// BasicTransformerBlock is diffusers' BasicTransformerBlock with norm_type
// "layer_norm" (models/attention.py): pre-norm self-attention, cross-attention
// and feed-forward, each added back to the residual stream:
//
//	x = x + attn1(norm1(x))
//	x = x + attn2(norm2(x), encoder_hidden_states)
//	x = x + ff(norm3(x))
type BasicTransformerBlock struct {
	Norm1, Norm2, Norm3 *nn.LayerNorm
	Attn1, Attn2        *Attention
	FF                  *FeedForward
}

// NewBasicTransformerBlock loads a block of width dim = heads·dimHead
// attending to context vectors of crossDim.
func NewBasicTransformerBlock(w nn.Weights, dim, heads, dimHead, crossDim int) *BasicTransformerBlock {
	return &BasicTransformerBlock{
		Norm1: nn.NewLayerNorm(w.Sub("norm1"), dim, 1e-5),
		Attn1: NewAttention(w.Sub("attn1"), AttentionConfig{QueryDim: dim, Heads: heads, DimHead: dimHead}),
		Norm2: nn.NewLayerNorm(w.Sub("norm2"), dim, 1e-5),
		Attn2: NewAttention(w.Sub("attn2"), AttentionConfig{QueryDim: dim, CrossAttentionDim: crossDim, Heads: heads, DimHead: dimHead}),
		Norm3: nn.NewLayerNorm(w.Sub("norm3"), dim, 1e-5),
		FF:    NewFeedForward(w.Sub("ff"), dim),
	}
}

// Forward maps x [B, L, dim] with encoderHiddenStates [B, 77, crossDim] to
// [B, L, dim].
// Intermediate activations go back to the tensor pool as soon as they are
// used; x is left alone.
func (t *BasicTransformerBlock) Forward(x, encoderHiddenStates *tensor.Tensor) *tensor.Tensor {
	n := t.Norm1.Forward(x)
	h := tensor.Replace(n, t.Attn1.Forward(n, nil))
	tensor.AddTo(h, h, x) // h = x + attn1(norm1(x)), this block's own
	n = t.Norm2.Forward(h)
	a := tensor.Replace(n, t.Attn2.Forward(n, encoderHiddenStates))
	tensor.AddTo(h, h, a)
	tensor.Release(a)
	n = t.Norm3.Forward(h)
	f := tensor.Replace(n, t.FF.Forward(n))
	tensor.AddTo(h, h, f)
	tensor.Release(f)
	return h
}

// Transformer2DModel is diffusers' Transformer2DModel for continuous inputs
// (models/transformers/transformer_2d.py), the spatial transformer of
// Rombach et al. 2022: group norm, proj_in (1x1 conv, or a linear layer with
// use_linear_projection as in SD 2.x), transformer_blocks over the H·W
// tokens, proj_out, plus the input as residual.
type Transformer2DModel struct {
	Norm              *nn.GroupNorm
	ProjInConv        *nn.Conv2d // use_linear_projection false
	ProjOutConv       *nn.Conv2d
	ProjInLinear      *nn.Linear // use_linear_projection true
	ProjOutLinear     *nn.Linear
	TransformerBlocks []*BasicTransformerBlock
}

// TransformerConfig are the Transformer2DModel arguments a UNet block passes.
type TransformerConfig struct {
	Channels            int // in_channels = heads·dimHead
	Heads, DimHead      int
	Layers              int // transformer_layers_per_block
	CrossAttentionDim   int
	NormGroups          int
	UseLinearProjection bool
}

// NewTransformer2DModel loads a Transformer2DModel from w.
func NewTransformer2DModel(w nn.Weights, c TransformerConfig) *Transformer2DModel {
	inner := c.Heads * c.DimHead
	t := &Transformer2DModel{Norm: nn.NewGroupNorm(w.Sub("norm"), c.NormGroups, c.Channels, 1e-6)}
	if c.UseLinearProjection {
		t.ProjInLinear = nn.NewLinear(w.Sub("proj_in"), c.Channels, inner, true)
		t.ProjOutLinear = nn.NewLinear(w.Sub("proj_out"), inner, c.Channels, true)
	} else {
		t.ProjInConv = nn.NewConv2d(w.Sub("proj_in"), c.Channels, inner, 1, 1, 0)
		t.ProjOutConv = nn.NewConv2d(w.Sub("proj_out"), inner, c.Channels, 1, 1, 0)
	}
	for i := 0; i < c.Layers; i++ {
		t.TransformerBlocks = append(t.TransformerBlocks,
			NewBasicTransformerBlock(w.SubIndex("transformer_blocks", i), inner, c.Heads, c.DimHead, c.CrossAttentionDim))
	}
	return t
}

// Forward maps x [B, C, H, W] with encoderHiddenStates [B, 77, crossDim] to
// [B, C, H, W].
func (t *Transformer2DModel) Forward(x, encoderHiddenStates *tensor.Tensor) *tensor.Tensor {
	b, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	hs := t.Norm.Forward(x)
	if t.ProjInConv != nil {
		hs = tensor.Replace(hs, t.ProjInConv.Forward(hs))
	}
	inner := hs.Shape[1]
	hs = tensor.Replace(hs, tensor.Transpose(hs.Reshape(b, inner, h*w))) // [B, HW, inner]
	if t.ProjInLinear != nil {
		hs = tensor.Replace(hs, t.ProjInLinear.Forward(hs))
	}
	for _, block := range t.TransformerBlocks {
		hs = tensor.Replace(hs, block.Forward(hs, encoderHiddenStates))
	}
	if t.ProjOutLinear != nil {
		hs = tensor.Replace(hs, t.ProjOutLinear.Forward(hs))
	}
	hs = tensor.Replace(hs, tensor.Transpose(hs)).Reshape(b, hs.Shape[2], h, w)
	if t.ProjOutConv != nil {
		hs = tensor.Replace(hs, t.ProjOutConv.Forward(hs))
	}
	tensor.AddTo(hs, hs, x)
	return hs
}

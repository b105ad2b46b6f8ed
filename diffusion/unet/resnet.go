package unet

import (
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// ResnetBlock2D is diffusers' ResnetBlock2D (models/resnet.py) with
// time_embedding_norm "default", the residual block of both the UNet and
// the VAE (He et al. 2016, as used by Ho et al. 2020):
//
//	h = conv1(silu(norm1(x))) [+ time_emb_proj(silu(temb))]
//	h = conv2(silu(norm2(h)))
//	out = (conv_shortcut(x) or x + h) / OutputScaleFactor
//
// Checkpoint keys: norm1, conv1, time_emb_proj (absent in the VAE), norm2,
// conv2, conv_shortcut (1x1, present when in ≠ out channels).
type ResnetBlock2D struct {
	Norm1, Norm2      *nn.GroupNorm
	Conv1, Conv2      *nn.Conv2d
	TimeEmbProj       *nn.Linear // nil without a time embedding (VAE)
	ConvShortcut      *nn.Conv2d // nil when in == out
	OutputScaleFactor float32
}

// ResnetConfig are ResnetBlock2D's constructor arguments in diffusers.
type ResnetConfig struct {
	In, Out           int
	TembChannels      int // 0: no time embedding projection
	Groups            int
	Eps               float32
	OutputScaleFactor float32 // 0 means 1
}

// NewResnetBlock2D loads a ResnetBlock2D from w.
func NewResnetBlock2D(w nn.Weights, c ResnetConfig) *ResnetBlock2D {
	r := &ResnetBlock2D{
		Norm1:             nn.NewGroupNorm(w.Sub("norm1"), c.Groups, c.In, c.Eps),
		Conv1:             nn.NewConv2d(w.Sub("conv1"), c.In, c.Out, 3, 1, 1),
		Norm2:             nn.NewGroupNorm(w.Sub("norm2"), c.Groups, c.Out, c.Eps),
		Conv2:             nn.NewConv2d(w.Sub("conv2"), c.Out, c.Out, 3, 1, 1),
		OutputScaleFactor: c.OutputScaleFactor,
	}
	if r.OutputScaleFactor == 0 {
		r.OutputScaleFactor = 1
	}
	if c.TembChannels > 0 {
		r.TimeEmbProj = nn.NewLinear(w.Sub("time_emb_proj"), c.TembChannels, c.Out, true)
	}
	if c.In != c.Out {
		r.ConvShortcut = nn.NewConv2d(w.Sub("conv_shortcut"), c.In, c.Out, 1, 1, 0)
	}
	return r
}

// Forward maps x [N, In, H, W] and temb [N, TembChannels] (nil for the
// VAE) to [N, Out, H, W].
//
// Its intermediate activations go back to the tensor pool (tensor.Release)
// as soon as they are used; x is left alone.
func (r *ResnetBlock2D) Forward(x, temb *tensor.Tensor) *tensor.Tensor {
	h := r.Conv1.ForwardGroupNormSiLU(x, r.Norm1, false)
	if r.TimeEmbProj != nil && temb != nil {
		t := r.TimeEmbProj.Forward(tensor.SiLU(temb.Clone()))
		tensor.AddChannelBias(h, t)
	}
	h = r.Conv2.ForwardGroupNormSiLU(h, r.Norm2, true) // h is this block's own conv1 output
	shortcut := x
	if r.ConvShortcut != nil {
		shortcut = r.ConvShortcut.Forward(x)
	}
	tensor.AddTo(h, h, shortcut)
	if shortcut != x {
		tensor.Release(shortcut)
	}
	if r.OutputScaleFactor != 1 {
		tensor.Scale(h, 1/r.OutputScaleFactor)
	}
	return h
}

// Downsample2D is diffusers' Downsample2D with use_conv: a 3x3 stride-2
// convolution ("conv"). With padding 0 (the VAE encoder) the input is first
// padded by one row and column at the bottom and right.
type Downsample2D struct {
	Conv    *nn.Conv2d
	Padding int
}

// NewDownsample2D loads a Downsample2D of channels → out channels.
func NewDownsample2D(w nn.Weights, channels, out, padding int) *Downsample2D {
	return &Downsample2D{Conv: nn.NewConv2d(w.Sub("conv"), channels, out, 3, 2, padding), Padding: padding}
}

// Forward maps x [N, C, H, W] to [N, out, ⌈H/2⌉, ⌈W/2⌉] (padding 1) or
// [N, out, H/2, W/2] (padding 0, even sizes).
func (d *Downsample2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	if d.Padding == 0 {
		padded := tensor.PadBottomRight(x)
		return tensor.Replace(padded, d.Conv.Forward(padded))
	}
	return d.Conv.Forward(x)
}

// Upsample2D is diffusers' Upsample2D with use_conv: nearest-neighbour
// upsampling ×2 (or to an explicit size) followed by a 3x3 convolution
// ("conv").
type Upsample2D struct {
	Conv *nn.Conv2d
}

// NewUpsample2D loads an Upsample2D of channels → out channels.
func NewUpsample2D(w nn.Weights, channels, out int) *Upsample2D {
	return &Upsample2D{Conv: nn.NewConv2d(w.Sub("conv"), channels, out, 3, 1, 1)}
}

// Forward maps x [N, C, H, W] to [N, out, outH, outW]; outH, outW = 0 means
// 2H, 2W.
func (u *Upsample2D) Forward(x *tensor.Tensor, outH, outW int) *tensor.Tensor {
	if outH == 0 || outH == 2*x.Shape[2] && outW == 2*x.Shape[3] {
		return u.Conv.ForwardUpsampled2x(x)
	}
	up := tensor.UpsampleNearest(x, outH, outW)
	return tensor.Replace(up, u.Conv.Forward(up))
}

package unet

import (
	"fmt"
	"path/filepath"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// UNet2DConditionModel is the conditional denoising U-Net of latent
// diffusion (Rombach et al. 2022) as diffusers implements it in
// models/unets/unet_2d_condition.py. Field names mirror the checkpoint keys:
// conv_in, time_embedding, down_blocks.N, mid_block, up_blocks.N,
// conv_norm_out, conv_out.
type UNet2DConditionModel struct {
	Config        Resolved
	ConvIn        *nn.Conv2d
	TimeEmbedding *TimeEmbedding
	DownBlocks    []*DownBlock
	MidBlock      *MidBlock // nil when mid_block_type is null
	UpBlocks      []*UpBlock
	ConvNormOut   *nn.GroupNorm
	ConvOut       *nn.Conv2d
}

// Load reads a diffusers unet/ folder: config.json and the weights
// (diffusion_pytorch_model.safetensors, its .fp16 variant or a sharded
// index). Every checkpoint key must be used and have the configured shape.
// F16 and BF16 weights stay in 16 bits in memory and are widened exactly
// when used (see nn.FileSource).
func Load(dir string) (*UNet2DConditionModel, error) {
	c, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	src, err := nn.OpenComponent(dir, "diffusion_pytorch_model")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	w := nn.NewWeights(src)
	u, err := New(w, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if err := w.Strict(nil); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return u, nil
}

// New builds a UNet2DConditionModel from w (at the checkpoint root) for
// config c; with an nn.RandomSource it is a randomly initialised model.
func New(w nn.Weights, c Config) (*UNet2DConditionModel, error) {
	r, err := c.Resolve()
	if err != nil {
		return nil, err
	}
	ch := r.BlockOutChannels
	u := &UNet2DConditionModel{
		Config:        r,
		ConvIn:        nn.NewConv2d(w.Sub("conv_in"), r.InChannels, ch[0], r.ConvInKernel, 1, r.ConvInKernel/2),
		TimeEmbedding: NewTimeEmbedding(w.Sub("time_embedding"), ch[0], r.TimeEmbedDim),
	}
	base := blockConfig{TembChannels: r.TimeEmbedDim, Groups: r.NormNumGroups, Eps: float32(r.NormEps),
		OutputScale: float32(r.ResnetOutScaleFactor), LinearProjection: r.UseLinearProjection, DownsamplePad: r.DownsamplePadding}
	out := ch[0]
	for i, typ := range r.DownBlockTypes {
		c := base
		c.In, c.Out = out, ch[i]
		out = ch[i]
		c.Layers, c.Heads, c.CrossDim, c.TransformerDepth = r.LayersPerBlock[i], r.Heads[i], r.CrossAttentionDim[i], r.TransformerLayersPerBlock[i]
		c.CrossAttention = typ == "CrossAttnDownBlock2D"
		c.Sample = i < r.Blocks-1
		u.DownBlocks = append(u.DownBlocks, newDownBlock(w.SubIndex("down_blocks", i), c))
	}
	last := r.Blocks - 1
	if r.MidBlockType != nil {
		c := base
		c.In, c.Layers = ch[last], 1
		c.Heads, c.CrossDim, c.TransformerDepth = r.Heads[last], r.CrossAttentionDim[last], r.TransformerLayersPerBlock[last]
		c.OutputScale = float32(r.MidBlockScaleFactor)
		u.MidBlock = newMidBlock(w.Sub("mid_block"), c)
	}
	out = ch[last]
	for i, typ := range r.UpBlockTypes {
		j := last - i // the down block this up block mirrors
		c := base
		c.PrevOut, c.Out, c.In = out, ch[j], ch[max(j-1, 0)]
		out = ch[j]
		c.Layers, c.Heads, c.CrossDim, c.TransformerDepth = r.LayersPerBlock[j]+1, r.Heads[j], r.CrossAttentionDim[j], r.TransformerLayersPerBlock[j]
		c.CrossAttention = typ == "CrossAttnUpBlock2D"
		c.Sample = i < last
		u.UpBlocks = append(u.UpBlocks, newUpBlock(w.SubIndex("up_blocks", i), c))
	}
	u.ConvNormOut = nn.NewGroupNorm(w.Sub("conv_norm_out"), r.NormNumGroups, ch[0], float32(r.NormEps))
	u.ConvOut = nn.NewConv2d(w.Sub("conv_out"), ch[0], r.OutChannels, r.ConvOutKernel, 1, r.ConvOutKernel/2)
	return u, w.Err()
}

// Forward predicts the model output (noise_pred: ε or v, per the scheduler's
// prediction_type) for sample [N, in_channels, h, w] at timesteps (one value
// for the whole batch, or N values; fractional values are allowed) with
// encoderHiddenStates [N, 77, cross_attention_dim]. Returns
// [N, out_channels, h, w]. h and w need not be multiples of the total
// downsampling factor: each upsampler resizes to its skip connection's size.
// It panics on inconsistent shapes; the pipeline validates user sizes.
func (u *UNet2DConditionModel) Forward(sample *tensor.Tensor, timesteps []float32, encoderHiddenStates *tensor.Tensor) *tensor.Tensor {
	n := sample.Shape[0]
	if len(timesteps) == 1 && n > 1 {
		t := timesteps[0]
		timesteps = make([]float32, n)
		for i := range timesteps {
			timesteps[i] = t
		}
	}
	if len(timesteps) != n || encoderHiddenStates.Shape[0] != n {
		panic(fmt.Sprintf("unet: batch of %d samples with %d timesteps and encoder_hidden_states %v", n, len(timesteps), encoderHiddenStates.Shape))
	}
	c := u.Config
	// 1. time
	emb := u.TimeEmbedding.Forward(TimestepEmbedding(timesteps, c.BlockOutChannels[0], c.FlipSinToCos, c.FreqShift))

	// 2. pre-process
	if c.CenterInputSample {
		sample = sample.Clone()
		for i, v := range sample.Data {
			sample.Data[i] = 2*v - 1
		}
	}
	x := u.ConvIn.Forward(sample)

	// 3. down
	skips := []*tensor.Tensor{x}
	for _, b := range u.DownBlocks {
		var s []*tensor.Tensor
		x, s = b.Forward(x, emb, encoderHiddenStates)
		skips = append(skips, s...)
	}

	// 4. mid
	if u.MidBlock != nil {
		x = u.MidBlock.Forward(x, emb, encoderHiddenStates)
	}

	// 5. up
	for _, b := range u.UpBlocks {
		outH, outW := 0, 0
		if rest := len(skips) - len(b.Resnets); rest > 0 {
			next := skips[rest-1]
			outH, outW = next.Shape[2], next.Shape[3]
		}
		x, skips = b.Forward(x, emb, encoderHiddenStates, skips, outH, outW)
	}

	// 6. post-process
	x = tensor.SiLU(u.ConvNormOut.ForwardInPlace(x))
	return u.ConvOut.Forward(x)
}

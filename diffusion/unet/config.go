package unet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
)

// Config is a UNet2DConditionModel's config.json (diffusers
// models/unets/unet_2d_condition.py), restricted to the fields Stable
// Diffusion 1.x/2.x and their small variants use. Fields that take either one
// value or one per block (attention_head_dim, layers_per_block, ...) are
// IntList; Resolve expands them.
type Config struct {
	ClassName                  string   `json:"_class_name"`
	SampleSize                 int      `json:"sample_size"`
	InChannels                 int      `json:"in_channels"`
	OutChannels                int      `json:"out_channels"`
	CenterInputSample          bool     `json:"center_input_sample"`
	FlipSinToCos               bool     `json:"flip_sin_to_cos"`
	FreqShift                  float64  `json:"freq_shift"`
	DownBlockTypes             []string `json:"down_block_types"`
	MidBlockType               *string  `json:"mid_block_type"`
	UpBlockTypes               []string `json:"up_block_types"`
	OnlyCrossAttention         IntList  `json:"only_cross_attention"`
	BlockOutChannels           []int    `json:"block_out_channels"`
	LayersPerBlock             IntList  `json:"layers_per_block"`
	DownsamplePadding          int      `json:"downsample_padding"`
	MidBlockScaleFactor        float64  `json:"mid_block_scale_factor"`
	ActFn                      string   `json:"act_fn"`
	NormNumGroups              int      `json:"norm_num_groups"`
	NormEps                    float64  `json:"norm_eps"`
	CrossAttentionDim          IntList  `json:"cross_attention_dim"`
	TransformerLayersPerBlock  IntList  `json:"transformer_layers_per_block"`
	AttentionHeadDim           IntList  `json:"attention_head_dim"`
	NumAttentionHeads          IntList  `json:"num_attention_heads"`
	DualCrossAttention         bool     `json:"dual_cross_attention"`
	UseLinearProjection        bool     `json:"use_linear_projection"`
	UpcastAttention            bool     `json:"upcast_attention"`
	ResnetTimeScaleShift       string   `json:"resnet_time_scale_shift"`
	ResnetOutScaleFactor       float64  `json:"resnet_out_scale_factor"`
	TimeEmbeddingType          string   `json:"time_embedding_type"`
	TimeEmbeddingDim           *int     `json:"time_embedding_dim"`
	TimeEmbeddingActFn         *string  `json:"time_embedding_act_fn"`
	TimestepPostAct            *string  `json:"timestep_post_act"`
	TimeCondProjDim            *int     `json:"time_cond_proj_dim"`
	ConvInKernel               int      `json:"conv_in_kernel"`
	ConvOutKernel              int      `json:"conv_out_kernel"`
	ClassEmbedType             *string  `json:"class_embed_type"`
	AdditionEmbedType          *string  `json:"addition_embed_type"`
	NumClassEmbeds             *int     `json:"num_class_embeds"`
	EncoderHidDim              *int     `json:"encoder_hid_dim"`
	AttentionType              string   `json:"attention_type"`
	ReverseTransformerLayers   IntList  `json:"reverse_transformer_layers_per_block"`
	MidBlockOnlyCrossAttention *bool    `json:"mid_block_only_cross_attention"`
	CrossAttentionNorm         *string  `json:"cross_attention_norm"`
}

// IntList is a config value given either as one number (or boolean) or as
// one per block. A JSON null leaves it empty.
type IntList []int

// UnmarshalJSON accepts 8, [8, 16], true or null.
func (l *IntList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	case bytes.Equal(b, []byte("true")):
		*l = IntList{1}
		return nil
	case bytes.Equal(b, []byte("false")):
		*l = IntList{0}
		return nil
	case len(b) > 0 && b[0] == '[':
		var v []int
		if err := json.Unmarshal(b, &v); err != nil {
			var bools []bool
			if json.Unmarshal(b, &bools) != nil {
				return err
			}
			for _, x := range bools {
				if x {
					v = append(v, 1)
				} else {
					v = append(v, 0)
				}
			}
		}
		*l = v
		return nil
	}
	var v int
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = IntList{v}
	return nil
}

// perBlock expands l to n values: one value is repeated, n values are kept.
func (l IntList) perBlock(name string, n int) ([]int, error) {
	switch len(l) {
	case 1:
		out := make([]int, n)
		for i := range out {
			out[i] = l[0]
		}
		return out, nil
	case n:
		return slices.Clone(l), nil
	}
	return nil, fmt.Errorf("%s has %d values for %d blocks", name, len(l), n)
}

// DefaultConfig returns diffusers' UNet2DConditionModel defaults, which
// LoadConfig overlays with the file, so absent keys mean what they mean in
// diffusers.
func DefaultConfig() Config {
	mid := "UNetMidBlock2DCrossAttn"
	return Config{
		InChannels: 4, OutChannels: 4, FlipSinToCos: true,
		DownBlockTypes:            []string{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"},
		MidBlockType:              &mid,
		UpBlockTypes:              []string{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"},
		OnlyCrossAttention:        IntList{0},
		BlockOutChannels:          []int{320, 640, 1280, 1280},
		LayersPerBlock:            IntList{2},
		DownsamplePadding:         1,
		MidBlockScaleFactor:       1,
		ActFn:                     "silu",
		NormNumGroups:             32,
		NormEps:                   1e-5,
		CrossAttentionDim:         IntList{1280},
		TransformerLayersPerBlock: IntList{1},
		AttentionHeadDim:          IntList{8},
		ResnetTimeScaleShift:      "default",
		ResnetOutScaleFactor:      1,
		TimeEmbeddingType:         "positional",
		ConvInKernel:              3,
		ConvOutKernel:             3,
		AttentionType:             "default",
	}
}

// ConfigSD15 is the UNet of Stable Diffusion 1.5
// (https://huggingface.co/runwayml/stable-diffusion-v1-5/blob/main/unet/config.json):
// block_out_channels 320/640/1280/1280, 2 layers per block, 8 heads,
// cross_attention_dim 768, sample_size 64.
func ConfigSD15() Config {
	c := DefaultConfig()
	c.ClassName = "UNet2DConditionModel"
	c.SampleSize = 64
	c.CrossAttentionDim = IntList{768}
	return c
}

// LoadConfig reads a unet/config.json, applying diffusers' defaults for
// absent keys, and validates it; sample_size is required (diffusers'
// default is none).
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c := DefaultConfig()
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := c.Resolve(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	// The model's default and largest image sizes follow from it (a
	// missing or zero one would reject every --width as too large).
	if c.SampleSize <= 0 {
		return Config{}, fmt.Errorf("%s: sample_size must be positive, got %d", path, c.SampleSize)
	}
	return c, nil
}

// Resolved is a validated Config with every per-block value expanded.
type Resolved struct {
	Config
	Blocks                    int
	LayersPerBlock            []int
	Heads                     []int // attention heads per down block
	CrossAttentionDim         []int
	TransformerLayersPerBlock []int
	TimeEmbedDim              int
}

// Resolve validates c and expands its per-block values. diffusers' naming
// quirk is kept: when num_attention_heads is null, attention_head_dim holds
// the number of heads (https://github.com/huggingface/diffusers/issues/2011).
func (c Config) Resolve() (Resolved, error) {
	r := Resolved{Config: c, Blocks: len(c.BlockOutChannels)}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ClassName != "" && c.ClassName != "UNet2DConditionModel" {
		bad("unsupported UNet class %q (want UNet2DConditionModel)", c.ClassName)
	}
	if r.Blocks == 0 {
		bad("block_out_channels is empty")
	}
	if len(c.DownBlockTypes) != r.Blocks || len(c.UpBlockTypes) != r.Blocks {
		bad("down_block_types (%d), up_block_types (%d) and block_out_channels (%d) differ in length", len(c.DownBlockTypes), len(c.UpBlockTypes), r.Blocks)
	}
	for _, t := range c.DownBlockTypes {
		if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
			bad("unsupported down block type %q", t)
		}
	}
	for _, t := range c.UpBlockTypes {
		if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
			bad("unsupported up block type %q", t)
		}
	}
	if c.MidBlockType != nil && *c.MidBlockType != "UNetMidBlock2DCrossAttn" {
		bad("unsupported mid_block_type %q", *c.MidBlockType)
	}
	if c.ActFn != "silu" && c.ActFn != "swish" {
		bad("unsupported act_fn %q", c.ActFn)
	}
	if c.TimeEmbeddingType != "positional" {
		bad("unsupported time_embedding_type %q", c.TimeEmbeddingType)
	}
	if c.ResnetTimeScaleShift != "default" {
		bad("unsupported resnet_time_scale_shift %q", c.ResnetTimeScaleShift)
	}
	if c.AttentionType != "default" {
		bad("unsupported attention_type %q", c.AttentionType)
	}
	if c.DualCrossAttention {
		bad("dual_cross_attention is not supported")
	}
	for _, v := range c.OnlyCrossAttention {
		if v != 0 {
			bad("only_cross_attention is not supported")
			break
		}
	}
	for name, p := range map[string]*string{"class_embed_type": c.ClassEmbedType, "addition_embed_type": c.AdditionEmbedType,
		"time_embedding_act_fn": c.TimeEmbeddingActFn, "timestep_post_act": c.TimestepPostAct, "cross_attention_norm": c.CrossAttentionNorm} {
		if p != nil {
			bad("%s %q is not supported", name, *p)
		}
	}
	for name, p := range map[string]*int{"time_cond_proj_dim": c.TimeCondProjDim, "num_class_embeds": c.NumClassEmbeds, "encoder_hid_dim": c.EncoderHidDim} {
		if p != nil {
			bad("%s is not supported", name)
		}
	}
	if len(c.ReverseTransformerLayers) > 0 {
		bad("reverse_transformer_layers_per_block is not supported")
	}
	if c.ConvInKernel%2 != 1 || c.ConvOutKernel%2 != 1 {
		bad("conv_in_kernel and conv_out_kernel must be odd")
	}
	if c.NormNumGroups <= 0 {
		bad("norm_num_groups must be positive")
	}
	if c.InChannels <= 0 || c.OutChannels <= 0 {
		bad("in_channels and out_channels must be positive")
	}
	if len(errs) > 0 || r.Blocks == 0 {
		return r, errors.Join(errs...)
	}
	heads := c.NumAttentionHeads
	if len(heads) == 0 {
		heads = c.AttentionHeadDim
	}
	var err error
	if r.LayersPerBlock, err = c.LayersPerBlock.perBlock("layers_per_block", r.Blocks); err != nil {
		errs = append(errs, err)
	}
	if r.Heads, err = heads.perBlock("attention_head_dim", r.Blocks); err != nil {
		errs = append(errs, err)
	}
	if r.CrossAttentionDim, err = c.CrossAttentionDim.perBlock("cross_attention_dim", r.Blocks); err != nil {
		errs = append(errs, err)
	}
	if r.TransformerLayersPerBlock, err = c.TransformerLayersPerBlock.perBlock("transformer_layers_per_block", r.Blocks); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return r, errors.Join(errs...)
	}
	r.TimeEmbedDim = 4 * c.BlockOutChannels[0]
	if c.TimeEmbeddingDim != nil {
		r.TimeEmbedDim = *c.TimeEmbeddingDim
	}
	for i, ch := range c.BlockOutChannels {
		if ch <= 0 || ch%c.NormNumGroups != 0 {
			bad("block_out_channels[%d] = %d is not a positive multiple of norm_num_groups %d", i, ch, c.NormNumGroups)
		}
		if r.Heads[i] <= 0 || ch%r.Heads[i] != 0 {
			bad("block_out_channels[%d] = %d is not divisible by %d attention heads", i, ch, r.Heads[i])
		}
		if r.LayersPerBlock[i] <= 0 || r.CrossAttentionDim[i] <= 0 || r.TransformerLayersPerBlock[i] <= 0 {
			bad("block %d: layers_per_block, cross_attention_dim and transformer_layers_per_block must be positive", i)
		}
	}
	return r, errors.Join(errs...)
}

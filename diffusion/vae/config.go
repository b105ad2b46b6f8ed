// Package vae is the variational autoencoder of Stable Diffusion (Rombach et
// al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models"):
// diffusers' AutoencoderKL (models/autoencoders/autoencoder_kl.py and
// models/autoencoders/vae.py, v0.27.2). The encoder maps an image
// [N, 3, H, W] in [-1, 1] to a diagonal Gaussian over latents
// [N, 4, H/f, W/f]; the decoder maps latents back to an image. f is
// Config.ScaleFactor (8 for SD).
//
// Like diffusers' vae.py, which takes its blocks from unet_2d_blocks.py, the
// residual blocks, resamplers and attention come from package unet.
package vae

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
)

// Config is an AutoencoderKL config.json: the arguments of diffusers'
// AutoencoderKL.__init__. Keys absent from the file keep diffusers' defaults
// (see LoadConfig); keys Pigment does not use are ignored.
type Config struct {
	ClassName        string   `json:"_class_name"` // "AutoencoderKL" (or absent)
	InChannels       int      `json:"in_channels"`
	OutChannels      int      `json:"out_channels"`
	DownBlockTypes   []string `json:"down_block_types"` // "DownEncoderBlock2D" each
	UpBlockTypes     []string `json:"up_block_types"`   // "UpDecoderBlock2D" each
	BlockOutChannels []int    `json:"block_out_channels"`
	LayersPerBlock   int      `json:"layers_per_block"` // encoder; the decoder has one more
	ActFn            string   `json:"act_fn"`           // "silu" (or its alias "swish")
	LatentChannels   int      `json:"latent_channels"`
	NormNumGroups    int      `json:"norm_num_groups"`
	SampleSize       int      `json:"sample_size"` // image size the model was trained at
	// ScalingFactor and ShiftFactor map encoder latents to the unit-variance
	// latents the UNet works in: latents = (z - ShiftFactor)·ScalingFactor,
	// and back before decoding, z = latents/ScalingFactor + ShiftFactor.
	// The pipeline applies them; Encode and Decode do not.
	ScalingFactor float64 `json:"scaling_factor"`
	ShiftFactor   float64 `json:"shift_factor"` // null or absent: 0
	// LatentsMean and LatentsStd are per-channel latent statistics some
	// models publish instead of a scalar scaling (null in SD's configs).
	LatentsMean []float64 `json:"latents_mean"`
	LatentsStd  []float64 `json:"latents_std"`
	// ForceUpcast says the VAE overflows in float16; Pigment computes in
	// float32 anyway.
	ForceUpcast          bool `json:"force_upcast"`
	MidBlockAddAttention bool `json:"mid_block_add_attention"` // mid blocks hold attentions.0
	UseQuantConv         bool `json:"use_quant_conv"`          // quant_conv present
	UsePostQuantConv     bool `json:"use_post_quant_conv"`     // post_quant_conv present
}

// DefaultConfig returns the defaults of diffusers' AutoencoderKL.__init__
// (v0.27.2, plus the later mid_block_add_attention, use_quant_conv and
// use_post_quant_conv, all true), which LoadConfig starts from.
func DefaultConfig() Config {
	return Config{
		InChannels:           3,
		OutChannels:          3,
		DownBlockTypes:       []string{"DownEncoderBlock2D"},
		UpBlockTypes:         []string{"UpDecoderBlock2D"},
		BlockOutChannels:     []int{64},
		LayersPerBlock:       1,
		ActFn:                "silu",
		LatentChannels:       4,
		NormNumGroups:        32,
		SampleSize:           32,
		ScalingFactor:        0.18215,
		ForceUpcast:          true,
		MidBlockAddAttention: true,
		UseQuantConv:         true,
		UsePostQuantConv:     true,
	}
}

// ConfigSD15 is the VAE of Stable Diffusion 1.x and 2.x,
// https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/blob/main/vae/config.json
// (83.7M parameters, scale factor 8).
func ConfigSD15() Config {
	c := DefaultConfig()
	c.ClassName = "AutoencoderKL"
	c.DownBlockTypes = []string{"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}
	c.UpBlockTypes = []string{"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}
	c.BlockOutChannels = []int{128, 256, 512, 512}
	c.LayersPerBlock = 2
	c.SampleSize = 512
	return c
}

// LoadConfig reads an AutoencoderKL config.json (the vae/ folder of a
// diffusers model) over DefaultConfig and validates it.
func LoadConfig(path string) (Config, error) {
	c, err := readConfig(path)
	if err != nil {
		return Config{}, fmt.Errorf("vae: %w", err)
	}
	return c, nil
}

// readConfig is LoadConfig without the package prefix on errors.
func readConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c := DefaultConfig()
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate reports the first setting Pigment cannot build a model from.
func (c Config) Validate() error {
	if c.ClassName != "" && c.ClassName != "AutoencoderKL" {
		return fmt.Errorf("_class_name %q is not supported (want AutoencoderKL)", c.ClassName)
	}
	if c.InChannels < 1 || c.OutChannels < 1 || c.LatentChannels < 1 {
		return fmt.Errorf("in_channels %d, out_channels %d, latent_channels %d: all must be positive", c.InChannels, c.OutChannels, c.LatentChannels)
	}
	n := len(c.BlockOutChannels)
	if n == 0 {
		return errors.New("block_out_channels is empty")
	}
	if c.NormNumGroups < 1 {
		return fmt.Errorf("norm_num_groups %d must be positive", c.NormNumGroups)
	}
	for i, ch := range c.BlockOutChannels {
		if ch < 1 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("block_out_channels[%d] = %d is not a positive multiple of norm_num_groups %d", i, ch, c.NormNumGroups)
		}
	}
	if len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n {
		return fmt.Errorf("%d down_block_types and %d up_block_types for %d block_out_channels", len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	}
	for i, t := range c.DownBlockTypes {
		if t != "DownEncoderBlock2D" {
			return fmt.Errorf("down_block_types[%d] %q is not supported (want DownEncoderBlock2D)", i, t)
		}
	}
	for i, t := range c.UpBlockTypes {
		if t != "UpDecoderBlock2D" {
			return fmt.Errorf("up_block_types[%d] %q is not supported (want UpDecoderBlock2D)", i, t)
		}
	}
	if c.LayersPerBlock < 1 {
		return fmt.Errorf("layers_per_block %d must be positive", c.LayersPerBlock)
	}
	if c.ActFn != "silu" && c.ActFn != "swish" {
		return fmt.Errorf("act_fn %q is not supported (want silu)", c.ActFn)
	}
	if !(c.ScalingFactor > 0) || math.IsInf(c.ScalingFactor, 0) {
		return fmt.Errorf("scaling_factor %v must be positive and finite", c.ScalingFactor)
	}
	if math.IsNaN(c.ShiftFactor) || math.IsInf(c.ShiftFactor, 0) {
		return fmt.Errorf("shift_factor %v must be finite", c.ShiftFactor)
	}
	return nil
}

// ScaleFactor is the ratio of image to latent size,
// 2^(len(block_out_channels)-1): each block but the last halves the size.
// diffusers pipelines call it vae_scale_factor.
func (c Config) ScaleFactor() int { return 1 << (len(c.BlockOutChannels) - 1) }

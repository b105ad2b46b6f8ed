package train

import (
	"os"
	"path/filepath"

	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
)

// TinyMaxLength is pigment-tiny's context length (tokenizer
// model_max_length and text max_position_embeddings): its captions are
// short, and a short context keeps cross-attention cheap.
const TinyMaxLength = 32

// TinyVAEConfig is pigment-tiny's autoencoder: 64x64x3 images ↔ 16x16x4
// latents (scale factor 4), block_out_channels [16, 32, 64] with one
// ResnetBlock2D per encoder block, 8 norm groups. Flat-coloured scenes need
// little width at full resolution, and the 64x64 stage dominates the cost.
func TinyVAEConfig() vae.Config {
	c := vae.DefaultConfig()
	c.ClassName = "AutoencoderKL"
	c.BlockOutChannels = []int{16, 32, 64}
	c.DownBlockTypes = []string{"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}
	c.UpBlockTypes = []string{"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}
	c.LayersPerBlock = 1
	c.NormNumGroups = 8
	c.SampleSize = 64
	c.LatentChannels = 4
	return c
}

// TinyTextConfig is pigment-tiny's CLIPTextModel: width 64, 2 layers of 4
// heads, quick_gelu, over a word-level vocabulary of vocabSize tokens.
func TinyTextConfig(vocabSize, bos, eos int) clip.TextConfig {
	c := clip.DefaultTextConfig()
	c.ModelType = "clip_text_model"
	c.Architectures = []string{"CLIPTextModel"}
	c.VocabSize, c.HiddenSize, c.IntermediateSize = vocabSize, 64, 256
	c.NumHiddenLayers, c.NumAttentionHeads, c.ProjectionDim = 2, 4, 64
	c.MaxPositionEmbeddings = TinyMaxLength
	c.BOSTokenID, c.EOSTokenID = bos, eos
	return c
}

// TinyUNetConfig is pigment-tiny's UNet2DConditionModel on 16x16x4
// latents: block_out_channels [32, 64, 128], one layer per block,
// cross-attention (8 heads, as SD 1.5's attention_head_dim 8) at the 8x8 and
// 4x4 resolutions only, where it is cheap (the layout of a position is
// coarse), 16 norm groups, cross_attention_dim 64.
func TinyUNetConfig() unet.Config {
	c := unet.DefaultConfig()
	c.ClassName = "UNet2DConditionModel"
	c.SampleSize = 16
	c.BlockOutChannels = []int{32, 64, 128}
	c.DownBlockTypes = []string{"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"}
	c.UpBlockTypes = []string{"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"}
	c.LayersPerBlock = unet.IntList{1}
	c.CrossAttentionDim = unet.IntList{64}
	c.AttentionHeadDim = unet.IntList{8}
	c.NormNumGroups = 16
	return c
}

// SchedulerConfig is the training noise schedule (Stable Diffusion's:
// scaled_linear β from 0.00085 to 0.012 over 1000 steps, ε prediction)
// written as a DPMSolverMultistepScheduler config, so DPM++ 2M is the
// default sampler.
func SchedulerConfig() map[string]any {
	return map[string]any{
		"_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.27.2",
		"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
		"num_train_timesteps": 1000, "prediction_type": "epsilon", "steps_offset": 1,
		"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint",
		"lower_order_final": true, "timestep_spacing": "leading", "set_alpha_to_one": false,
		"clip_sample": false,
	}
}

// Parts are the components of a diffusers StableDiffusionPipeline
// directory with the weights to save (the EMA weights, normally).
type Parts struct {
	Vocab      *Vocab
	MaxLength  int
	TextConfig clip.TextConfig
	Text       Params
	UNetConfig unet.Config
	UNet       Params
	VAEConfig  vae.Config
	VAE        Params
}

// SaveModel writes p as a diffusers model directory at dir that
// diffusion.LoadModel (and diffusers' StableDiffusionPipeline) loads:
// model_index.json, scheduler, tokenizer, text_encoder, unet and vae, with
// weights in dtype (F16 halves the size; the engine computes in float32).
func SaveModel(dir string, p Parts, dtype safetensors.DType) error {
	for _, sub := range []string{"text_encoder", "unet", "vae", "scheduler"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	jsons := map[string]any{
		"model_index.json": map[string]any{
			"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.27.2",
			"scheduler": []string{"diffusers", "DPMSolverMultistepScheduler"}, "text_encoder": []string{"transformers", "CLIPTextModel"},
			"tokenizer": []string{"transformers", "CLIPTokenizer"}, "unet": []string{"diffusers", "UNet2DConditionModel"},
			"vae": []string{"diffusers", "AutoencoderKL"}, "safety_checker": []any{nil, nil}, "feature_extractor": []any{nil, nil},
			"requires_safety_checker": false,
		},
		"scheduler/scheduler_config.json": SchedulerConfig(),
		"text_encoder/config.json":        p.TextConfig,
		"unet/config.json":                p.UNetConfig,
		"vae/config.json":                 p.VAEConfig,
	}
	for name, v := range jsons {
		if err := writeJSON(filepath.Join(dir, name), v); err != nil {
			return err
		}
	}
	if err := p.Vocab.Write(filepath.Join(dir, "tokenizer"), p.MaxLength); err != nil {
		return err
	}
	meta := map[string]string{"format": "pt"}
	if err := p.Text.Save(filepath.Join(dir, "text_encoder", "model.safetensors"), dtype, meta); err != nil {
		return err
	}
	if err := p.UNet.Save(filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors"), dtype, meta); err != nil {
		return err
	}
	return p.VAE.Save(filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors"), dtype, meta)
}

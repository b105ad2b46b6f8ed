package train

import (
	"math"
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

// SchedulerConfig is pigment-tiny's noise schedule and the sampler config
// written with it: Stable Diffusion's scaled_linear β (0.00085 to 0.012
// over 1000 steps) rescaled to zero terminal SNR, v-prediction and
// "trailing" timesteps, as Lin et al. 2023 ("Common Diffusion Noise
// Schedules and Sample Steps are Flawed") prescribe. With SD's schedule
// ᾱ_999 is 0.0047, so the noisiest training input still carries 7% of the
// image: its mean colour leaks through, and at sampling time the random
// mean of the starting noise decides the background instead of the prompt
// (on 16x16 latents the noise mean is as large as that leak). The last ᾱ
// is 2⁻²⁴ rather than 0, as diffusers sets it for Euler and DPM-Solver so
// the first sigma is finite, and the betas are written out as trained_betas
// so every sampler, including those without rescale_betas_zero_snr (PNDM,
// LMS), uses exactly the training schedule. DPM++ 2M is the default sampler.
func SchedulerConfig() map[string]any {
	return map[string]any{
		"_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.27.2",
		"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
		"trained_betas":       zeroSNRBetas(0.00085, 0.012, 1000),
		"num_train_timesteps": 1000, "prediction_type": "v_prediction", "steps_offset": 0,
		"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint",
		"lower_order_final": true, "timestep_spacing": "trailing", "set_alpha_to_one": false,
		"clip_sample": false,
	}
}

// zeroSNRBetas returns scaled_linear betas rescaled so that √ᾱ falls
// linearly to 0 at the last step while √ᾱ_0 is kept (Lin et al. 2023,
// Algorithm 1, diffusers' rescale_zero_terminal_snr), with ᾱ_{n−1} then
// set to 2⁻²⁴. Computed in float64.
func zeroSNRBetas(start, end float64, n int) []float64 {
	abar := make([]float64, n)
	prod := 1.0
	for i := range n {
		b := math.Sqrt(start) + (math.Sqrt(end)-math.Sqrt(start))*float64(i)/float64(n-1)
		prod *= 1 - b*b
		abar[i] = prod
	}
	s0, sT := math.Sqrt(abar[0]), math.Sqrt(abar[n-1])
	for i := range abar {
		s := (math.Sqrt(abar[i]) - sT) * s0 / (s0 - sT)
		abar[i] = s * s
	}
	abar[n-1] = 0x1p-24
	betas := make([]float64, n)
	betas[0] = 1 - abar[0]
	for i := 1; i < n; i++ {
		betas[i] = 1 - abar[i]/abar[i-1]
	}
	return betas
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

package diffusion

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
)

// Model is a loaded Stable Diffusion 1.x/2.x pipeline in diffusers layout:
//
//	DIR/model_index.json
//	DIR/tokenizer/{vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json}
//	DIR/text_encoder/{config.json, model.safetensors}
//	DIR/unet/{config.json, diffusion_pytorch_model.safetensors}
//	DIR/vae/{config.json, diffusion_pytorch_model.safetensors}
//	DIR/scheduler/scheduler_config.json
type Model struct {
	Name        string // the directory's base name
	Dir         string
	Tokenizer   *clip.Tokenizer
	TextEncoder *clip.TextModel
	UNet        *unet.UNet2DConditionModel
	VAE         *vae.AutoencoderKL
	// Scheduler is scheduler/scheduler_config.json; each sampler reads the
	// keys its diffusers class knows from it (sampling.New).
	Scheduler sampling.Config
}

// componentClasses are the model_index.json entries Pigment can run.
var componentClasses = map[string][]string{
	"unet":         {"UNet2DConditionModel"},
	"vae":          {"AutoencoderKL"},
	"text_encoder": {"CLIPTextModel", "CLIPTextModelWithProjection"},
	"tokenizer":    {"CLIPTokenizer", "CLIPTokenizerFast"},
}

// pipelineClasses are the diffusers pipelines whose components Pigment
// implements (text-to-image and image-to-image use the same weights).
var pipelineClasses = []string{"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"}

// ReadModelIndex reads and checks DIR/model_index.json, returning an error
// that names the unsupported class for other pipelines (SDXL, inpainting,
// upscalers, …).
func ReadModelIndex(dir string) (map[string]json.RawMessage, error) {
	path := filepath.Join(dir, "model_index.json")
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a diffusers model directory: no model_index.json", dir)
		}
		return nil, err
	}
	var index map[string]json.RawMessage
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var class string
	if err := json.Unmarshal(index["_class_name"], &class); err != nil {
		return nil, fmt.Errorf("%s: _class_name missing or not a string", path)
	}
	supported := false
	for _, c := range pipelineClasses {
		supported = supported || c == class
	}
	if !supported {
		return nil, fmt.Errorf("%s: model type %q is not supported (Pigment runs Stable Diffusion 1.x/2.x: %s)", path, class, strings.Join(pipelineClasses, ", "))
	}
	for name, classes := range componentClasses {
		var entry []*string
		if err := json.Unmarshal(index[name], &entry); err != nil || len(entry) != 2 || entry[1] == nil {
			return nil, fmt.Errorf("%s: component %q missing or malformed", path, name)
		}
		ok := false
		for _, c := range classes {
			ok = ok || c == *entry[1]
		}
		if !ok {
			return nil, fmt.Errorf("%s: %s class %q is not supported (want %s)", path, name, *entry[1], strings.Join(classes, " or "))
		}
	}
	return index, nil
}

// LoadModel loads every component of the diffusers model directory dir.
// Errors name the file and, for weights, the tensor key at fault.
func LoadModel(dir string) (*Model, error) {
	if _, err := ReadModelIndex(dir); err != nil {
		return nil, err
	}
	m := &Model{Name: filepath.Base(filepath.Clean(dir)), Dir: dir}
	var err error
	if m.Tokenizer, err = clip.LoadTokenizer(filepath.Join(dir, "tokenizer")); err != nil {
		return nil, err
	}
	if m.TextEncoder, err = clip.LoadTextModel(filepath.Join(dir, "text_encoder")); err != nil {
		return nil, err
	}
	if m.UNet, err = unet.Load(filepath.Join(dir, "unet")); err != nil {
		return nil, err
	}
	if m.VAE, err = vae.Load(filepath.Join(dir, "vae")); err != nil {
		return nil, err
	}
	schedPath := filepath.Join(dir, "scheduler", "scheduler_config.json")
	b, err := os.ReadFile(schedPath)
	if err != nil {
		return nil, err
	}
	if m.Scheduler, err = sampling.ParseConfig(b); err != nil {
		return nil, fmt.Errorf("%s: %w", schedPath, err)
	}
	if _, err := sampling.DefaultKind(m.Scheduler); err != nil {
		return nil, fmt.Errorf("%s: %w", schedPath, err)
	}
	if err := m.checkComponents(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// NewModel assembles a Model from components already in memory (randomly
// initialised ones for a benchmark, say) and a scheduler config, with the
// checks LoadModel makes: the scheduler must be one Pigment runs, the text
// encoder's hidden size must equal the UNet's cross_attention_dim and the
// VAE's latent channels the UNet's in_channels. Dir is left empty.
func NewModel(name string, tok *clip.Tokenizer, text *clip.TextModel, u *unet.UNet2DConditionModel, v *vae.AutoencoderKL, sched sampling.Config) (*Model, error) {
	if tok == nil || text == nil || u == nil || v == nil {
		return nil, errors.New("diffusion: NewModel needs a tokenizer, text encoder, UNet and VAE")
	}
	m := &Model{Name: name, Tokenizer: tok, TextEncoder: text, UNet: u, VAE: v, Scheduler: sched}
	if _, err := sampling.DefaultKind(sched); err != nil {
		return nil, fmt.Errorf("diffusion: scheduler: %w", err)
	}
	if err := m.checkComponents(); err != nil {
		return nil, fmt.Errorf("diffusion: %w", err)
	}
	return m, nil
}

// checkComponents reports components whose shapes do not fit together.
func (m *Model) checkComponents() error {
	if got, want := m.TextEncoder.Config().HiddenSize, m.UNet.Config.CrossAttentionDim[0]; got != want {
		return fmt.Errorf("text encoder hidden_size %d does not match the UNet's cross_attention_dim %d", got, want)
	}
	if got, want := m.VAE.Config.LatentChannels, m.UNet.Config.InChannels; got != want {
		return fmt.Errorf("VAE latent_channels %d does not match the UNet's in_channels %d", got, want)
	}
	return nil
}

// VAEScaleFactor is the ratio of image to latent size:
// 2^(len(vae.block_out_channels)−1), 8 for Stable Diffusion.
func (m *Model) VAEScaleFactor() int { return m.VAE.Config.ScaleFactor() }

// DefaultSize is the image size the model was trained at:
// unet.sample_size × VAEScaleFactor (512 for SD 1.5).
func (m *Model) DefaultSize() int { return m.UNet.Config.SampleSize * m.VAEScaleFactor() }

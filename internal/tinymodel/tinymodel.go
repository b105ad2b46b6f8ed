// Package tinymodel writes a tiny, randomly initialised Stable Diffusion
// model in diffusers layout, so the service and CLI can be tested end to end
// on a fresh clone without downloading or shipping weights. Its tokenizer
// has CLIP's file format with a byte-level vocabulary (every byte alone and
// with </w>, plus the two special tokens) and no merges; it is not CLIP's
// vocabulary.
package tinymodel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
)

// recorder is a RandomSource that keeps every tensor it made.
type recorder struct {
	*nn.RandomSource
	mu      sync.Mutex
	tensors map[string]*tensor.Tensor
}

func (r *recorder) Load(name string, shape []int) (*tensor.Tensor, error) {
	t, err := r.RandomSource.Load(name, shape)
	r.mu.Lock()
	r.tensors[name] = t
	r.mu.Unlock()
	return t, err
}

func (r *recorder) save(path string) error {
	var ts []safetensors.Tensor
	for name, t := range r.tensors {
		ts = append(ts, safetensors.Tensor{Name: name, Shape: t.Shape, Data: t.Data})
	}
	slices.SortFunc(ts, func(a, b safetensors.Tensor) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return safetensors.WriteFile(path, ts, map[string]string{"format": "pt"})
}

func newRecorder(seed uint64) *recorder {
	return &recorder{RandomSource: nn.NewRandomSource(seed), tensors: map[string]*tensor.Tensor{}}
}

// bytesToUnicode is GPT-2/CLIP's reversible byte → printable rune table.
func bytesToUnicode() []rune {
	var bs []int
	for b := '!'; b <= '~'; b++ {
		bs = append(bs, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		bs = append(bs, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		bs = append(bs, b)
	}
	table := make([]rune, 256)
	in := map[int]bool{}
	for _, b := range bs {
		table[b] = rune(b)
		in[b] = true
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !in[b] {
			table[b] = rune(256 + n)
			n++
		}
	}
	return table
}

// Vocab returns the tokenizer vocabulary (token → id) of the tiny model:
// CLIP's byte alphabet, each symbol alone (ids 0–255) and with </w> (256–511),
// then <|startoftext|> (512) and <|endoftext|> (513). With no merges, every
// byte of a prompt is one token.
func Vocab() map[string]int {
	table := bytesToUnicode()
	vocab := map[string]int{}
	for _, r := range table {
		vocab[string(r)] = len(vocab)
	}
	for _, r := range table {
		vocab[string(r)+"</w>"] = len(vocab)
	}
	vocab["<|startoftext|>"] = len(vocab)
	vocab["<|endoftext|>"] = len(vocab)
	return vocab
}

// Configs returns the configurations of the tiny model's components for a
// tokenizer vocabulary vocab (Vocab): a text encoder of hidden size 32 with
// 2 layers, a UNet of 32/64 channels with cross-attention, and a VAE of
// scale factor 2 (a 16x16 default image).
func Configs(vocab map[string]int) (clip.TextConfig, unet.Config, vae.Config) {
	textCfg := clip.DefaultTextConfig()
	textCfg.ModelType = "clip_text_model"
	textCfg.Architectures = []string{"CLIPTextModel"}
	textCfg.VocabSize, textCfg.HiddenSize, textCfg.IntermediateSize = len(vocab), 32, 64
	textCfg.NumHiddenLayers, textCfg.NumAttentionHeads, textCfg.ProjectionDim = 2, 2, 32
	textCfg.BOSTokenID, textCfg.EOSTokenID = vocab["<|startoftext|>"], vocab["<|endoftext|>"]

	unetCfg := unet.DefaultConfig()
	unetCfg.ClassName = "UNet2DConditionModel"
	unetCfg.SampleSize = 8
	unetCfg.BlockOutChannels = []int{32, 64}
	unetCfg.DownBlockTypes = []string{"CrossAttnDownBlock2D", "DownBlock2D"}
	unetCfg.UpBlockTypes = []string{"UpBlock2D", "CrossAttnUpBlock2D"}
	unetCfg.LayersPerBlock = unet.IntList{1}
	unetCfg.CrossAttentionDim = unet.IntList{32}
	unetCfg.AttentionHeadDim = unet.IntList{4}

	vaeCfg := vae.DefaultConfig()
	vaeCfg.ClassName = "AutoencoderKL"
	vaeCfg.BlockOutChannels = []int{32, 32}
	vaeCfg.DownBlockTypes = []string{"DownEncoderBlock2D", "DownEncoderBlock2D"}
	vaeCfg.UpBlockTypes = []string{"UpDecoderBlock2D", "UpDecoderBlock2D"}
	vaeCfg.SampleSize = 16
	return textCfg, unetCfg, vaeCfg
}

// Write creates a complete diffusers model directory at dir: text encoder,
// UNet and VAE of Configs, PNDM scheduler config like SD 1.5's, and the
// byte-level tokenizer of Vocab. Its default image is 16x16 pixels. Weights
// depend only on seed.
func Write(dir string, seed uint64) error {
	vocab := Vocab()
	textCfg, unetCfg, vaeCfg := Configs(vocab)

	for _, sub := range []string{"tokenizer", "text_encoder", "unet", "vae", "scheduler"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	files := map[string]any{
		"model_index.json": map[string]any{
			"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.27.2",
			"scheduler": []string{"diffusers", "PNDMScheduler"}, "text_encoder": []string{"transformers", "CLIPTextModel"},
			"tokenizer": []string{"transformers", "CLIPTokenizer"}, "unet": []string{"diffusers", "UNet2DConditionModel"},
			"vae": []string{"diffusers", "AutoencoderKL"},
		},
		"scheduler/scheduler_config.json": map[string]any{
			"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
			"clip_sample": false, "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
		},
		"tokenizer/vocab.json":            vocab,
		"tokenizer/tokenizer_config.json": map[string]any{"model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"},
		"text_encoder/config.json":        textCfg,
		"unet/config.json":                unetCfg,
		"vae/config.json":                 vaeCfg,
	}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer/merges.txt"), []byte("#version: 0.2\n"), 0o644); err != nil {
		return err
	}

	text := newRecorder(seed)
	w := nn.NewWeights(text)
	clip.NewTextModel(w, textCfg)
	if err := w.Err(); err != nil {
		return fmt.Errorf("text encoder: %w", err)
	}
	u := newRecorder(seed + 1)
	if _, err := unet.New(nn.NewWeights(u), unetCfg); err != nil {
		return fmt.Errorf("unet: %w", err)
	}
	v := newRecorder(seed + 2)
	if _, err := vae.New(nn.NewWeights(v), vaeCfg); err != nil {
		return fmt.Errorf("vae: %w", err)
	}
	if err := text.save(filepath.Join(dir, "text_encoder/model.safetensors")); err != nil {
		return err
	}
	if err := u.save(filepath.Join(dir, "unet/diffusion_pytorch_model.safetensors")); err != nil {
		return err
	}
	return v.save(filepath.Join(dir, "vae/diffusion_pytorch_model.safetensors"))
}

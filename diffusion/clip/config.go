package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// TextConfig is the text_encoder/config.json of a CLIP text model
// (transformers models/clip/configuration_clip.py, CLIPTextConfig, 4.39),
// restricted to the fields the text transformer uses.
type TextConfig struct {
	ModelType             string   `json:"model_type"`
	Architectures         []string `json:"architectures"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	ProjectionDim         int      `json:"projection_dim"` // text_projection of CLIPTextModelWithProjection; unused here
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	HiddenAct             string   `json:"hidden_act"` // "quick_gelu" or "gelu"
	LayerNormEps          float64  `json:"layer_norm_eps"`
	PadTokenID            int      `json:"pad_token_id"`
	BOSTokenID            int      `json:"bos_token_id"`
	EOSTokenID            int      `json:"eos_token_id"` // 2 selects the legacy argmax pooling, see TextModel.Pooled
}

// textModelType is CLIPTextConfig.model_type.
const textModelType = "clip_text_model"

// textArchitectures are the transformers classes whose checkpoints hold a
// text_model.* tree this package loads.
var textArchitectures = []string{"CLIPTextModel", "CLIPTextModelWithProjection"}

// DefaultTextConfig returns CLIPTextConfig's constructor defaults, which
// LoadTextConfig overlays with the file, so absent keys mean what they mean
// in transformers.
func DefaultTextConfig() TextConfig {
	return TextConfig{
		VocabSize:             49408,
		HiddenSize:            512,
		IntermediateSize:      2048,
		ProjectionDim:         512,
		NumHiddenLayers:       12,
		NumAttentionHeads:     8,
		MaxPositionEmbeddings: 77,
		HiddenAct:             "quick_gelu",
		LayerNormEps:          1e-5,
		PadTokenID:            1,
		BOSTokenID:            49406,
		EOSTokenID:            49407,
	}
}

// ConfigSD15 is the text encoder of Stable Diffusion 1.x, the text half of
// openai/clip-vit-large-patch14
// (https://huggingface.co/openai/clip-vit-large-patch14/blob/main/config.json):
// hidden 768, 12 layers of 12 heads, intermediate 3072, quick_gelu, 77
// positions, vocabulary 49408, layer_norm_eps 1e-5.
func ConfigSD15() TextConfig {
	c := DefaultTextConfig()
	c.ModelType = textModelType
	c.Architectures = []string{"CLIPTextModel"}
	c.HiddenSize = 768
	c.IntermediateSize = 3072
	c.ProjectionDim = 768
	c.NumAttentionHeads = 12
	// That config.json still says eos_token_id 2 (hence the legacy pooling).
	c.BOSTokenID = 0
	c.EOSTokenID = 2
	return c
}

// LoadTextConfig reads a text_encoder/config.json, applying CLIPTextConfig's
// defaults for absent keys, and validates it.
func LoadTextConfig(path string) (TextConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TextConfig{}, fmt.Errorf("clip: %w", err)
	}
	c := DefaultTextConfig()
	if err := json.Unmarshal(b, &c); err != nil {
		return TextConfig{}, fmt.Errorf("clip: %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return TextConfig{}, fmt.Errorf("clip: %s: %w", path, err)
	}
	return c, nil
}

// Validate reports every reason c cannot describe a CLIP text model this
// package runs: a model_type or architecture other than a CLIP text model,
// an unsupported hidden_act, non-positive sizes, or a hidden_size that the
// heads do not divide.
func (c TextConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ModelType != "" && c.ModelType != textModelType {
		bad("model_type %q is not a CLIP text model (want %q)", c.ModelType, textModelType)
	}
	for _, a := range c.Architectures {
		ok := false
		for _, want := range textArchitectures {
			ok = ok || a == want
		}
		if !ok {
			bad("architecture %q is not a CLIP text model (want one of %v)", a, textArchitectures)
		}
	}
	if c.HiddenAct != "quick_gelu" && c.HiddenAct != "gelu" {
		bad("unsupported hidden_act %q (want quick_gelu or gelu)", c.HiddenAct)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize},
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
	} {
		if f.v <= 0 {
			bad("%s must be positive, got %d", f.name, f.v)
		}
	}
	if c.HiddenSize > 0 && c.NumAttentionHeads > 0 && c.HiddenSize%c.NumAttentionHeads != 0 {
		bad("hidden_size %d is not divisible by num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if !(c.LayerNormEps > 0) {
		bad("layer_norm_eps must be positive, got %g", c.LayerNormEps)
	}
	return errors.Join(errs...)
}

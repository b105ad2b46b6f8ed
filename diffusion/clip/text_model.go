package clip

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// TextModel is the CLIP text transformer (Radford et al. 2021), transformers'
// CLIPTextTransformer as loaded by CLIPTextModel (models/clip/modeling_clip.py,
// 4.39), whose weights live under "text_model.". It maps token ids
// [B, L] to hidden states [B, L, hidden_size], the encoderHiddenStates a
// Stable Diffusion UNet attends to:
//
//	h = token_embedding(inputIDs) + position_embedding(0..L-1)
//	h = encoder.layers[i](h) for each layer, with a causal mask
//	last_hidden_state = final_layer_norm(h)
type TextModel struct {
	Embeddings     *TextEmbeddings
	Encoder        *Encoder
	FinalLayerNorm *nn.LayerNorm

	config TextConfig
}

// TextEmbeddings is CLIPTextEmbeddings: a token table [vocab_size, hidden]
// and a learned position table [max_position_embeddings, hidden]. The
// position_ids buffer some checkpoints carry is always 0..max-1 and is not
// loaded.
type TextEmbeddings struct {
	TokenEmbedding    *nn.Embedding
	PositionEmbedding *nn.Embedding
}

// Encoder is CLIPEncoder: a stack of num_hidden_layers EncoderLayers.
type Encoder struct {
	Layers []*EncoderLayer
}

// EncoderLayer is CLIPEncoderLayer, a pre-norm transformer block:
//
//	h = h + self_attn(layer_norm1(h))
//	h = h + mlp(layer_norm2(h))
type EncoderLayer struct {
	LayerNorm1 *nn.LayerNorm
	SelfAttn   *Attention
	LayerNorm2 *nn.LayerNorm
	MLP        *MLP
}

// Attention is CLIPAttention: multi-head causal self-attention with
// projections q_proj, k_proj, v_proj and out_proj (all with bias), scaled
// by head_dim^-0.5.
type Attention struct {
	QProj, KProj, VProj, OutProj *nn.Linear
	Heads                        int
	Scale                        float32
}

// MLP is CLIPMLP: fc1 (hidden → intermediate), the hidden_act activation,
// fc2 (intermediate → hidden).
type MLP struct {
	FC1, FC2 *nn.Linear
	act      func(*tensor.Tensor) *tensor.Tensor
}

// NewTextModel loads a TextModel described by c from w, which is at the
// checkpoint root (the model's tensors are under "text_model."). If c is
// invalid, the error is recorded on w and NewTextModel returns nil; loading
// errors (missing keys, wrong shapes) are recorded on w too, so callers
// check w.Err (or w.Strict) before using the model.
func NewTextModel(w nn.Weights, c TextConfig) *TextModel {
	if err := c.Validate(); err != nil {
		w.Errorf("clip text config: %v", err)
		return nil
	}
	w = w.Sub("text_model")
	eps := float32(c.LayerNormEps)
	m := &TextModel{
		Embeddings:     newTextEmbeddings(w.Sub("embeddings"), c),
		Encoder:        &Encoder{Layers: make([]*EncoderLayer, c.NumHiddenLayers)},
		FinalLayerNorm: nn.NewLayerNorm(w.Sub("final_layer_norm"), c.HiddenSize, eps),
		config:         c,
	}
	layers := w.Sub("encoder")
	for i := range m.Encoder.Layers {
		m.Encoder.Layers[i] = newEncoderLayer(layers.SubIndex("layers", i), c)
	}
	return m
}

func newTextEmbeddings(w nn.Weights, c TextConfig) *TextEmbeddings {
	return &TextEmbeddings{
		TokenEmbedding:    nn.NewEmbedding(w.Sub("token_embedding"), c.VocabSize, c.HiddenSize),
		PositionEmbedding: nn.NewEmbedding(w.Sub("position_embedding"), c.MaxPositionEmbeddings, c.HiddenSize),
	}
}

func newEncoderLayer(w nn.Weights, c TextConfig) *EncoderLayer {
	eps := float32(c.LayerNormEps)
	return &EncoderLayer{
		LayerNorm1: nn.NewLayerNorm(w.Sub("layer_norm1"), c.HiddenSize, eps),
		SelfAttn:   newAttention(w.Sub("self_attn"), c),
		LayerNorm2: nn.NewLayerNorm(w.Sub("layer_norm2"), c.HiddenSize, eps),
		MLP:        newMLP(w.Sub("mlp"), c),
	}
}

func newAttention(w nn.Weights, c TextConfig) *Attention {
	d := c.HiddenSize
	return &Attention{
		QProj:   nn.NewLinear(w.Sub("q_proj"), d, d, true),
		KProj:   nn.NewLinear(w.Sub("k_proj"), d, d, true),
		VProj:   nn.NewLinear(w.Sub("v_proj"), d, d, true),
		OutProj: nn.NewLinear(w.Sub("out_proj"), d, d, true),
		Heads:   c.NumAttentionHeads,
		Scale:   float32(1 / math.Sqrt(float64(d/c.NumAttentionHeads))),
	}
}

func newMLP(w nn.Weights, c TextConfig) *MLP {
	act, err := tensor.Activation(c.HiddenAct)
	if err != nil { // Validate admits only quick_gelu and gelu
		panic("clip: " + err.Error())
	}
	return &MLP{
		FC1: nn.NewLinear(w.Sub("fc1"), c.HiddenSize, c.IntermediateSize, true),
		FC2: nn.NewLinear(w.Sub("fc2"), c.IntermediateSize, c.HiddenSize, true),
		act: act,
	}
}

// LoadTextModel loads a transformers text_encoder/ folder: config.json and
// model.safetensors (or model.fp16.safetensors, or a sharded checkpoint; see
// nn.OpenComponent) in F32, F16 or BF16; F16 and BF16 weights stay in 16
// bits in memory and are widened exactly when used (see nn.FileSource).
// Loading is strict: a checkpoint key the model does not use is an error, except
// text_model.embeddings.position_ids and a CLIPTextModelWithProjection's
// text_projection.weight.
func LoadTextModel(dir string) (*TextModel, error) {
	c, err := LoadTextConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err // names the file
	}
	src, err := nn.OpenComponent(dir, "model")
	if err != nil {
		return nil, fmt.Errorf("clip: load text model: %w", err)
	}
	defer src.Close() // loaded tensors are copies
	w := nn.NewWeights(src)
	m := NewTextModel(w, c)
	if err := w.Strict(ignoredKey); err != nil {
		return nil, fmt.Errorf("clip: load text model %s: %w", dir, err)
	}
	return m, nil
}

// ignoredKey reports the checkpoint keys a TextModel legitimately leaves
// unused.
func ignoredKey(key string) bool {
	return key == "text_model.embeddings.position_ids" || key == "text_projection.weight"
}

// Config returns the model's config.
func (m *TextModel) Config() TextConfig { return m.config }

// Forward encodes inputIDs, [batch, L] flattened row-major, and returns the
// encoderHiddenStates [batch, L, hidden_size] a diffusers pipeline passes to
// the UNet (StableDiffusionPipeline.encode_prompt). clipSkip is diffusers'
// clip_skip (A1111's "clip skip" minus one): 0 returns last_hidden_state;
// k ≥ 1 returns final_layer_norm(hidden_states[-(k+1)]), so the last k
// layers are not run. Invalid input — an empty or ragged batch, L above
// max_position_embeddings, an id outside the vocabulary, clipSkip outside
// [0, num_hidden_layers) — is an error. No padding mask is applied, as in
// the SD pipelines: only CLIP's causal mask.
func (m *TextModel) Forward(inputIDs []int, batch, clipSkip int) (*tensor.Tensor, error) {
	if n := len(m.Encoder.Layers); clipSkip < 0 || clipSkip >= n {
		return nil, fmt.Errorf("clip: clip skip %d out of range [0, %d) for %d layers", clipSkip, n, n)
	}
	h, err := m.Embeddings.forward(inputIDs, batch, m.config)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Encoder.Layers[:len(m.Encoder.Layers)-clipSkip] {
		h = l.Forward(h)
	}
	return m.FinalLayerNorm.Forward(h), nil
}

// HiddenStates returns transformers' output_hidden_states for inputIDs
// ([batch, L] flattened): num_hidden_layers+1 tensors [batch, L,
// hidden_size], index 0 the embeddings and index i the output of layer i,
// none with the final layer norm. It validates inputIDs as Forward does.
func (m *TextModel) HiddenStates(inputIDs []int, batch int) ([]*tensor.Tensor, error) {
	h, err := m.Embeddings.forward(inputIDs, batch, m.config)
	if err != nil {
		return nil, err
	}
	states := []*tensor.Tensor{h}
	for _, l := range m.Encoder.Layers {
		h = l.Forward(h)
		states = append(states, h)
	}
	return states, nil
}

// Pooled returns CLIPTextTransformer's pooler_output [batch, hidden_size]:
// the row of lastHidden [batch, L, hidden_size] at each sequence's end
// token in inputIDs ([batch, L] flattened, as given to Forward). With the
// legacy eos_token_id 2 of the original CLIP configs that is the position
// of the largest id (argmax, the first <|endoftext|> 49407); otherwise the
// first position of eos_token_id, or 0 if it does not occur. It panics if
// inputIDs does not have batch·L elements.
func (m *TextModel) Pooled(lastHidden *tensor.Tensor, inputIDs []int) *tensor.Tensor {
	b, l, d := lastHidden.Shape[0], lastHidden.Shape[1], lastHidden.Shape[2]
	if len(inputIDs) != b*l {
		panic(fmt.Sprintf("clip: Pooled of hidden states %v with %d ids", lastHidden.Shape, len(inputIDs)))
	}
	out := tensor.New(b, d)
	for i := range b {
		row := inputIDs[i*l : (i+1)*l]
		at := 0
		if m.config.EOSTokenID == 2 {
			for j, id := range row {
				if id > row[at] {
					at = j
				}
			}
		} else {
			for j, id := range row {
				if id == m.config.EOSTokenID {
					at = j
					break
				}
			}
		}
		copy(out.Data[i*d:(i+1)*d], lastHidden.Data[(i*l+at)*d:(i*l+at+1)*d])
	}
	return out
}

// forward validates inputIDs ([batch, L] flattened) against c and returns
// token plus position embeddings [batch, L, hidden_size].
func (e *TextEmbeddings) forward(inputIDs []int, batch int, c TextConfig) (*tensor.Tensor, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("clip: batch size %d must be positive", batch)
	}
	if len(inputIDs) == 0 || len(inputIDs)%batch != 0 {
		return nil, fmt.Errorf("clip: %d token ids do not form %d non-empty sequences of equal length", len(inputIDs), batch)
	}
	l := len(inputIDs) / batch
	if l > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("clip: %d tokens per sequence exceed the model's %d positions", l, c.MaxPositionEmbeddings)
	}
	var bad []string
	for i, id := range inputIDs {
		if id < 0 || id >= c.VocabSize {
			bad = append(bad, fmt.Sprintf("id %d at [%d, %d]", id, i/l, i%l))
			if len(bad) == 4 {
				break
			}
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("clip: token ids outside the vocabulary [0, %d): %s", c.VocabSize, strings.Join(bad, ", "))
	}
	positionIDs := make([]int, l)
	for i := range positionIDs {
		positionIDs[i] = i
	}
	pos := e.PositionEmbedding.Forward(positionIDs, 1)
	return tensor.Add(e.TokenEmbedding.Forward(inputIDs, batch), tensor.Repeat(pos, batch)), nil
}

// Forward maps h [B, L, hidden] to [B, L, hidden]; h is not modified.
func (l *EncoderLayer) Forward(h *tensor.Tensor) *tensor.Tensor {
	h = tensor.Add(h, l.SelfAttn.Forward(l.LayerNorm1.Forward(h)))
	tensor.AddTo(h, h, l.MLP.Forward(l.LayerNorm2.Forward(h)))
	return h
}

// Forward is causal self-attention over x [B, L, hidden], returning
// [B, L, hidden].
func (a *Attention) Forward(x *tensor.Tensor) *tensor.Tensor {
	q := a.QProj.Forward(x)
	k := a.KProj.Forward(x)
	v := a.VProj.Forward(x)
	return a.OutProj.Forward(tensor.Attention(q, k, v, a.Heads, a.Scale, true))
}

// Forward maps x [..., hidden] to [..., hidden].
func (m *MLP) Forward(x *tensor.Tensor) *tensor.Tensor {
	return m.FC2.Forward(m.act(m.FC1.Forward(x)))
}

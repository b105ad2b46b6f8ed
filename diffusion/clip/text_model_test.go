package clip

// The golden tensors are case text_encoder/0 of ../shared/refs/cases/<pipeline>
// (see its README.md), computed on the CPU in float32 with transformers
// 4.39, as
//
//	te = CLIPTextModel.from_pretrained(pipeline_dir, subfolder="text_encoder")
//	input_ids = tokenizer(prompts, padding="max_length", max_length=77, truncation=True).input_ids
//	out = te(input_ids, output_hidden_states=True)          # no attention mask
//	last_hidden_state = out.last_hidden_state
//	hidden_states = torch.stack(out.hidden_states)         # [layers+1, 3, 77, H]
//	hidden_states_m2 = out.hidden_states[-2]
//	clip_skip1_prompt_embeds = te.text_model.final_layer_norm(out.hidden_states[-2])
//	pooler_output = out.pooler_output                      # eos_token_id 2: argmax(input_ids)

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// referenceAtol is the agreed tolerance for a single module against the
// reference (refs README: ≤ 1e-4 for values of order 1–10).
const referenceAtol = 1e-4

func TestTextModel_Reference(t *testing.T) {
	for _, pipeline := range []string{"tiny-sd15", "tiny-sd15-fp16", "tiny-sd2v"} {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			m, err := LoadTextModel(filepath.Join(refcases.ModelDir(t, pipeline), "text_encoder"))
			if err != nil {
				t.Fatal(err)
			}
			c := set.Case(t, "text_encoder/0")
			idsT := set.CaseTensor(t, c, "inputs", "input_ids")
			batch := idsT.Shape[0]
			ids := make([]int, idsT.Len())
			for i, v := range idsT.Data {
				ids[i] = int(v)
			}
			want := func(key string) *tensor.Tensor { return set.CaseTensor(t, c, "outputs", key) }
			check := func(name string, got, want *tensor.Tensor) {
				t.Helper()
				d := refcases.Close(t, name, got, want, referenceAtol)
				t.Logf("%s/%s: max abs diff %.3g", pipeline, name, d)
			}

			last, err := m.Forward(ids, batch, 0)
			if err != nil {
				t.Fatal(err)
			}
			check("last_hidden_state", last, want("last_hidden_state"))

			skip1, err := m.Forward(ids, batch, 1)
			if err != nil {
				t.Fatal(err)
			}
			check("clip_skip1_prompt_embeds", skip1, want("penultimate_final_ln"))

			hs, err := m.HiddenStates(ids, batch)
			if err != nil {
				t.Fatal(err)
			}
			if n := m.Config().NumHiddenLayers + 1; len(hs) != n {
				t.Fatalf("HiddenStates returned %d tensors, want %d", len(hs), n)
			}
			check("hidden_states_m2", hs[len(hs)-2], want("penultimate"))
			if c.Has("outputs", "hidden_states") {
				stack := want("hidden_states")
				n := stack.Len() / stack.Shape[0]
				for i, h := range hs {
					check(fmt.Sprintf("hidden_states[%d]", i), h, tensor.FromData(stack.Data[i*n:(i+1)*n], stack.Shape[1:]...))
				}
			}

			check("pooler_output", m.Pooled(last, ids), want("pooler_output"))
		})
	}
}

// tinyConfig is a small text model for tests that need no reference data.
func tinyConfig() TextConfig {
	c := DefaultTextConfig()
	c.ModelType = "clip_text_model"
	c.Architectures = []string{"CLIPTextModel"}
	c.VocabSize, c.HiddenSize, c.IntermediateSize, c.ProjectionDim = 64, 8, 12, 8
	c.NumHiddenLayers, c.NumAttentionHeads, c.MaxPositionEmbeddings = 3, 2, 6
	c.BOSTokenID, c.EOSTokenID = 0, 2
	return c
}

// recordingSource is a RandomSource that keeps what it made up.
type recordingSource struct {
	*nn.RandomSource
	made nn.MapSource
}

func (r recordingSource) Load(name string, shape []int) (*tensor.Tensor, error) {
	x, err := r.RandomSource.Load(name, shape)
	r.made[name] = x
	return x, err
}

// randomTensors returns random weights for c under their checkpoint keys.
func randomTensors(t testing.TB, c TextConfig) nn.MapSource {
	t.Helper()
	src := recordingSource{nn.NewRandomSource(1), nn.MapSource{}}
	w := nn.NewWeights(src)
	NewTextModel(w, c)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	return src.made
}

// writeTextEncoder writes a text_encoder/ folder holding config (a
// TextConfig or raw JSON) and tensors as dtype, returning its path.
func writeTextEncoder(t *testing.T, config any, tensors nn.MapSource, dtype safetensors.DType) string {
	t.Helper()
	dir := t.TempDir()
	b, ok := config.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(config); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range tensors.Names() {
		x := tensors[name]
		ts = append(ts, safetensors.Tensor{Name: name, Shape: x.Shape, Data: x.Data, DType: dtype})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTextModel_StrictLoad(t *testing.T) {
	c := tinyConfig()
	with := func(extra map[string]*tensor.Tensor, drop ...string) nn.MapSource {
		m := nn.MapSource{}
		for k, v := range randomTensors(t, c) {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		for _, k := range drop {
			delete(m, k)
		}
		return m
	}
	positionIDs := tensor.New(1, c.MaxPositionEmbeddings)
	for i := range positionIDs.Data {
		positionIDs.Data[i] = float32(i)
	}
	tests := []struct {
		name    string
		tensors nn.MapSource
		dtype   safetensors.DType
		wantErr string // "" = loads
	}{
		{"exact", with(nil), safetensors.F32, ""},
		{"f16", with(nil), safetensors.F16, ""},
		{"position_ids", with(map[string]*tensor.Tensor{"text_model.embeddings.position_ids": positionIDs}), safetensors.F32, ""},
		{"text_projection", with(map[string]*tensor.Tensor{"text_projection.weight": tensor.New(c.ProjectionDim, c.HiddenSize)}), safetensors.F32, ""},
		{"unused key", with(map[string]*tensor.Tensor{"text_model.encoder.layers.3.mlp.fc1.bias": tensor.New(c.IntermediateSize)}), safetensors.F32,
			"text_model.encoder.layers.3.mlp.fc1.bias"},
		{"missing key", with(nil, "text_model.encoder.layers.1.self_attn.v_proj.weight"), safetensors.F32,
			"text_model.encoder.layers.1.self_attn.v_proj.weight"},
		{"wrong shape", with(map[string]*tensor.Tensor{"text_model.final_layer_norm.weight": tensor.New(c.HiddenSize + 1)}), safetensors.F32,
			"text_model.final_layer_norm.weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := LoadTextModel(writeTextEncoder(t, c, tt.tensors, tt.dtype))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("LoadTextModel: %v", err)
			case tt.wantErr == "":
				if m.Config().HiddenSize != c.HiddenSize || len(m.Encoder.Layers) != c.NumHiddenLayers {
					t.Errorf("loaded config %+v, want %+v", m.Config(), c)
				}
			case err == nil:
				t.Fatalf("LoadTextModel succeeded, want an error naming %s", tt.wantErr)
			case !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not name %s", err, tt.wantErr)
			}
		})
	}
}

func TestTextModel_Config(t *testing.T) {
	valid := `"model_type": "clip_text_model", "architectures": ["CLIPTextModel"], "vocab_size": 64, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 3, "num_attention_heads": 2, "max_position_embeddings": 6`
	tests := []struct {
		name, json string
		wantErr    string // "" = valid
	}{
		{"valid", `{` + valid + `, "hidden_act": "quick_gelu"}`, ""},
		{"gelu", `{` + valid + `, "hidden_act": "gelu"}`, ""},
		{"with projection", `{"model_type": "clip_text_model", "architectures": ["CLIPTextModelWithProjection"]}`, ""},
		{"defaults", `{}`, ""},
		{"bad hidden_act", `{` + valid + `, "hidden_act": "relu"}`, `hidden_act "relu"`},
		{"heads do not divide hidden", `{` + valid + `, "num_attention_heads": 3}`, "not divisible by num_attention_heads 3"},
		{"zero layers", `{` + valid + `, "num_hidden_layers": 0}`, "num_hidden_layers must be positive"},
		{"negative vocab", `{` + valid + `, "vocab_size": -1}`, "vocab_size must be positive"},
		{"zero eps", `{` + valid + `, "layer_norm_eps": 0}`, "layer_norm_eps"},
		{"vision model_type", `{"model_type": "clip_vision_model"}`, `model_type "clip_vision_model"`},
		{"full CLIP config", `{"model_type": "clip", "architectures": ["CLIPModel"]}`, `architecture "CLIPModel"`},
		{"other architecture", `{"architectures": ["T5EncoderModel"]}`, `architecture "T5EncoderModel"`},
		{"not JSON", `{"hidden_size": }`, "config.json"},
		{"wrong type", `{"hidden_size": "768"}`, "hidden_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := LoadTextConfig(path)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("LoadTextConfig: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("LoadTextConfig = %+v, want an error containing %q", c, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		if _, err := LoadTextConfig(filepath.Join(t.TempDir(), "config.json")); err == nil {
			t.Error("LoadTextConfig of a missing file succeeded")
		}
	})
	t.Run("sd15 preset", func(t *testing.T) {
		c := ConfigSD15()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.HiddenSize != 768 || c.NumHiddenLayers != 12 || c.NumAttentionHeads != 12 || c.IntermediateSize != 3072 ||
			c.HiddenAct != "quick_gelu" || c.MaxPositionEmbeddings != 77 || c.VocabSize != 49408 || c.LayerNormEps != 1e-5 {
			t.Errorf("ConfigSD15() = %+v", c)
		}
	})
	t.Run("invalid config through NewTextModel and LoadTextModel", func(t *testing.T) {
		bad := tinyConfig()
		bad.NumAttentionHeads = 3
		w := nn.NewWeights(nn.NewRandomSource(1))
		if m := NewTextModel(w, bad); m != nil || w.Err() == nil {
			t.Errorf("NewTextModel with 3 heads for hidden 8: model %v, error %v; want nil and an error", m, w.Err())
		}
		dir := writeTextEncoder(t, bad, randomTensors(t, tinyConfig()), safetensors.F32)
		if _, err := LoadTextModel(dir); err == nil || !strings.Contains(err.Error(), "num_attention_heads") {
			t.Errorf("LoadTextModel with 3 heads for hidden 8: error %v, want one naming num_attention_heads", err)
		}
	})
}

// tinyModel returns a randomly initialised tinyConfig model.
func tinyModel(t testing.TB) *TextModel {
	t.Helper()
	w := nn.NewWeights(nn.NewRandomSource(2))
	m := NewTextModel(w, tinyConfig())
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTextModel_Errors(t *testing.T) {
	m := tinyModel(t)
	c := m.Config()
	ids := func(n int, set map[int]int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = (i * 7) % c.VocabSize
		}
		for i, v := range set {
			out[i] = v
		}
		return out
	}
	tests := []struct {
		name     string
		inputIDs []int
		batch    int
		clipSkip int
		wantErr  string
	}{
		{"id too large", ids(10, map[int]int{7: c.VocabSize}), 2, 0, fmt.Sprintf("id %d at [1, 2]", c.VocabSize)},
		{"negative id", ids(5, map[int]int{0: -1}), 1, 0, "id -1 at [0, 0]"},
		{"too many tokens", ids(c.MaxPositionEmbeddings+1, nil), 1, 0, fmt.Sprintf("%d tokens per sequence exceed the model's %d positions", c.MaxPositionEmbeddings+1, c.MaxPositionEmbeddings)},
		{"clip skip = layers", ids(4, nil), 1, c.NumHiddenLayers, fmt.Sprintf("clip skip %d out of range", c.NumHiddenLayers)},
		{"negative clip skip", ids(4, nil), 1, -1, "clip skip -1 out of range"},
		{"ragged batch", ids(5, nil), 2, 0, "5 token ids do not form 2"},
		{"no tokens", nil, 1, 0, "0 token ids"},
		{"zero batch", ids(4, nil), 0, 0, "batch size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("Forward panicked: %v", r)
				}
			}()
			out, err := m.Forward(tt.inputIDs, tt.batch, tt.clipSkip)
			if err == nil {
				t.Fatalf("Forward returned %v, want an error containing %q", out, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if tt.clipSkip == 0 {
				if _, err := m.HiddenStates(tt.inputIDs, tt.batch); err == nil {
					t.Errorf("HiddenStates accepted the input Forward rejects")
				}
			}
		})
	}
}

// TestTextModel_ClipSkip checks Forward(clipSkip k) against
// final_layer_norm(hidden_states[-(k+1)]) for every k, without reference
// data.
func TestTextModel_ClipSkip(t *testing.T) {
	m := tinyModel(t)
	ids := []int{0, 5, 9, 63, 63, 1, 0, 2, 3, 4, 5, 6}
	hs, err := m.HiddenStates(ids, 2)
	if err != nil {
		t.Fatal(err)
	}
	for k := range m.Config().NumHiddenLayers {
		got, err := m.Forward(ids, 2, k)
		if err != nil {
			t.Fatal(err)
		}
		want := m.FinalLayerNorm.Forward(hs[len(hs)-1-k])
		if d, _ := tensor.MaxAbsDiff(got, want); d != 0 {
			t.Errorf("clip skip %d: max abs diff %g to final_layer_norm(hidden_states[%d])", k, d, -(k + 1))
		}
	}
	// Causality: changing the last token leaves earlier positions alone.
	a, _ := m.Forward([]int{0, 5, 9, 3}, 1, 0)
	b, _ := m.Forward([]int{0, 5, 9, 4}, 1, 0)
	d := a.Shape[2]
	for i := range 3 * d {
		if a.Data[i] != b.Data[i] {
			t.Fatalf("position %d depends on a later token", i/d)
		}
	}
}

func TestTextModel_Pooled(t *testing.T) {
	hidden := tensor.New(2, 4, 3) // value at [b, l, :] = 10b + l
	for i := range hidden.Data {
		hidden.Data[i] = float32(10*(i/12) + (i/3)%4)
	}
	ids := []int{49406, 320, 49407, 49407, 49406, 49407, 7, 49407}
	tests := []struct {
		name string
		eos  int
		want []float32 // pooled position per row, as 10b + l
	}{
		{"legacy eos 2: argmax", 2, []float32{2, 11}},
		{"eos 49407: first eos", 49407, []float32{2, 11}},
		{"eos 320", 320, []float32{1, 10}}, // absent in row 1: position 0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &TextModel{config: tinyConfig()}
			m.config.EOSTokenID = tt.eos
			got := m.Pooled(hidden, ids)
			if got.Shape[0] != 2 || got.Shape[1] != 3 {
				t.Fatalf("shape %v, want [2 3]", got.Shape)
			}
			for b, w := range tt.want {
				if got.Data[b*3] != w {
					t.Errorf("row %d pooled %v, want position value %v", b, got.Data[b*3], w)
				}
			}
		})
	}
}

// sd15Test is ConfigSD15 with fewer layers, to keep the test fast.
func sd15Test(layers int) TextConfig {
	c := ConfigSD15()
	c.NumHiddenLayers = layers
	return c
}

func TestTextModel_RandomSD15(t *testing.T) {
	layers := 2
	if testing.Short() {
		layers = 1
	}
	w := nn.NewWeights(nn.NewRandomSource(3))
	m := NewTextModel(w, sd15Test(layers))
	if err := w.Strict(nil); err != nil {
		t.Fatal(err)
	}
	ids := make([]int, 2*77)
	for i := range ids {
		ids[i] = (i * 997) % 49408
	}
	out, err := m.Forward(ids, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 77, 768}; !tensor.SameShape(out, tensor.New(want...)) {
		t.Fatalf("Forward shape %v, want %v", out.Shape, want)
	}
	for i, v := range out.Data {
		if v != v {
			t.Fatalf("NaN at %d", i)
		}
	}
}

var sinkTensor *tensor.Tensor

func BenchmarkTextModel_SD15(b *testing.B) { benchTextModel(b, ConfigSD15(), 2) }

func benchTextModel(b *testing.B, c TextConfig, batch int) {
	if testing.Short() {
		b.Skip("random-weight SD1.5 text encoder is slow; skipped in -short")
	}
	w := nn.NewWeights(nn.NewRandomSource(4))
	m := NewTextModel(w, c)
	if err := w.Err(); err != nil {
		b.Fatal(err)
	}
	ids := make([]int, batch*c.MaxPositionEmbeddings)
	for i := range ids {
		ids[i] = (i * 997) % c.VocabSize
	}
	b.ReportAllocs()
	for b.Loop() {
		out, err := m.Forward(ids, batch, 0)
		if err != nil {
			b.Fatal(err)
		}
		sinkTensor = out
	}
}

package diffusion

// Tests of LoadModel and ReadModelIndex on the public reference pipelines
// in ../shared/refs (read in place through internal/refcases; they skip
// when the data is absent). Expected figures come from the refs README
// table (vae_scale_factor 2, default image 32×32, pad ids) and from each
// case set's top-level "tokenizer" entry, which diffusers/transformers
// wrote with
//
//	{"pad_token_id": pipe.tokenizer.pad_token_id, ...}
//	"vae_scale_factor": pipe.vae_scale_factor
//
// Error cases run on edited copies of model_index.json (or on symlinks to
// the reference component folders) in t.TempDir(); the refs are never
// modified.

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/internal/refcases"
)

func TestLoadModelReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pipeline string
		pad      int
	}{
		{"tiny-sd15", 49407},
		{"tiny-sd15-fp16", 49407},
		{"tiny-sd2v", 0},
	}
	for _, tt := range tests {
		t.Run(tt.pipeline, func(t *testing.T) {
			t.Parallel()
			dir := refcases.ModelDir(t, tt.pipeline)
			m, err := LoadModel(dir)
			if err != nil {
				t.Fatalf("LoadModel(%s): %v", dir, err)
			}
			if m.Name != tt.pipeline || m.Dir != dir {
				t.Errorf("Name %q Dir %q, want %q and %q", m.Name, m.Dir, tt.pipeline, dir)
			}
			if m.Tokenizer == nil || m.TextEncoder == nil || m.UNet == nil || m.VAE == nil {
				t.Fatalf("LoadModel left a component nil: %+v", m)
			}
			if got := m.VAEScaleFactor(); got != 2 {
				t.Errorf("VAEScaleFactor() = %d, want 2", got)
			}
			if got := m.DefaultSize(); got != 32 {
				t.Errorf("DefaultSize() = %d, want 32", got)
			}
			if m.Tokenizer.Pad != tt.pad {
				t.Errorf("Tokenizer.Pad = %d, want %d", m.Tokenizer.Pad, tt.pad)
			}
			if m.Tokenizer.BOS != 49406 || m.Tokenizer.EOS != 49407 {
				t.Errorf("Tokenizer BOS/EOS = %d/%d, want 49406/49407", m.Tokenizer.BOS, m.Tokenizer.EOS)
			}
			if want := map[string]string{"tiny-sd15": "PNDMScheduler", "tiny-sd15-fp16": "PNDMScheduler", "tiny-sd2v": "DDIMScheduler"}[tt.pipeline]; m.Scheduler.ClassName != want {
				t.Errorf("Scheduler.ClassName = %q, want %q", m.Scheduler.ClassName, want)
			}

			// Cross-check with what the reference pipeline reported.
			set := refcases.Open(t, tt.pipeline)
			if f, ok := set.Meta["vae_scale_factor"].(float64); !ok || int(f) != m.VAEScaleFactor() {
				t.Errorf("reference vae_scale_factor %v, VAEScaleFactor() %d", set.Meta["vae_scale_factor"], m.VAEScaleFactor())
			}
			if h, ok := set.Meta["default_height"].(float64); !ok || int(h) != m.DefaultSize() {
				t.Errorf("reference default_height %v, DefaultSize() %d", set.Meta["default_height"], m.DefaultSize())
			}
			if tok, ok := set.Meta["tokenizer"].(map[string]any); ok {
				if id, ok := tok["pad_token_id"].(float64); !ok || int(id) != m.Tokenizer.Pad {
					t.Errorf("reference pad_token_id %v, Tokenizer.Pad %d", tok["pad_token_id"], m.Tokenizer.Pad)
				}
			} else {
				t.Errorf("cases.json has no tokenizer entry")
			}
		})
	}
}

// referenceIndex returns tiny-sd15's model_index.json decoded, skipping the
// test if the reference data is absent.
func referenceIndex(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refcases.ModelDir(t, "tiny-sd15"), "model_index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index map[string]any
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	return index
}

func TestReadModelIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// edit changes a copy of tiny-sd15's model_index.json; nil writes
		// no file at all. raw, if set, is written instead.
		edit    func(index map[string]any)
		raw     string
		noFile  bool
		errSubs []string // nil: must succeed
	}{
		{name: "unchanged", edit: func(map[string]any) {}},
		{name: "img2img pipeline", edit: func(ix map[string]any) { ix["_class_name"] = "StableDiffusionImg2ImgPipeline" }},
		{name: "fast tokenizer", edit: func(ix map[string]any) { ix["tokenizer"] = []any{"transformers", "CLIPTokenizerFast"} }},
		{name: "text encoder with projection", edit: func(ix map[string]any) {
			ix["text_encoder"] = []any{"transformers", "CLIPTextModelWithProjection"}
		}},
		{name: "no model_index.json", noFile: true, errSubs: []string{"not a diffusers model directory", "model_index.json"}},
		{name: "SDXL", edit: func(ix map[string]any) { ix["_class_name"] = "StableDiffusionXLPipeline" },
			errSubs: []string{`"StableDiffusionXLPipeline"`, "not supported", "model_index.json"}},
		{name: "inpainting", edit: func(ix map[string]any) { ix["_class_name"] = "StableDiffusionInpaintPipeline" },
			errSubs: []string{`"StableDiffusionInpaintPipeline"`, "not supported"}},
		{name: "no class name", edit: func(ix map[string]any) { delete(ix, "_class_name") },
			errSubs: []string{"_class_name"}},
		{name: "class name not a string", edit: func(ix map[string]any) { ix["_class_name"] = 3 },
			errSubs: []string{"_class_name"}},
		{name: "unknown unet class", edit: func(ix map[string]any) { ix["unet"] = []any{"diffusers", "UNetSpatioTemporalConditionModel"} },
			errSubs: []string{"unet", `"UNetSpatioTemporalConditionModel"`, "not supported", "UNet2DConditionModel"}},
		{name: "unknown vae class", edit: func(ix map[string]any) { ix["vae"] = []any{"diffusers", "AutoencoderTiny"} },
			errSubs: []string{"vae", `"AutoencoderTiny"`, "not supported"}},
		{name: "missing vae entry", edit: func(ix map[string]any) { delete(ix, "vae") },
			errSubs: []string{`"vae"`, "missing"}},
		{name: "missing tokenizer entry", edit: func(ix map[string]any) { delete(ix, "tokenizer") },
			errSubs: []string{`"tokenizer"`, "missing"}},
		{name: "null unet class", edit: func(ix map[string]any) { ix["unet"] = []any{nil, nil} },
			errSubs: []string{`"unet"`, "malformed"}},
		{name: "entry not a pair", edit: func(ix map[string]any) { ix["text_encoder"] = "CLIPTextModel" },
			errSubs: []string{`"text_encoder"`}},
		{name: "malformed JSON", raw: `{"_class_name": "StableDiffusionPipeline",`, errSubs: []string{"model_index.json"}},
		{name: "JSON array", raw: `[1, 2]`, errSubs: []string{"model_index.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			switch {
			case tt.noFile:
			case tt.raw != "":
				if err := os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(tt.raw), 0o644); err != nil {
					t.Fatal(err)
				}
			default:
				index := referenceIndex(t)
				tt.edit(index)
				b, err := json.MarshalIndent(index, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "model_index.json"), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			index, err := ReadModelIndex(dir)
			if tt.errSubs == nil {
				if err != nil {
					t.Fatalf("ReadModelIndex: %v", err)
				}
				if _, ok := index["unet"]; !ok {
					t.Errorf("index has no unet entry: %v", index)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadModelIndex succeeded, want an error mentioning %q", tt.errSubs)
			}
			for _, s := range tt.errSubs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
			// LoadModel stops at the same check.
			if _, err := LoadModel(dir); err == nil {
				t.Errorf("LoadModel succeeded on a directory ReadModelIndex rejects")
			}
		})
	}
}

// TestLoadModelMissingComponent builds a model directory of symlinks to
// tiny-sd15's files, leaving one component folder out.
func TestLoadModelMissingComponent(t *testing.T) {
	t.Parallel()
	components := []string{"tokenizer", "text_encoder", "unet", "vae", "scheduler"}
	tests := []struct {
		missing string
		file    string // the file the error must name, inside the missing folder
	}{
		{"tokenizer", "vocab.json"},
		{"text_encoder", "config.json"},
		{"unet", "config.json"},
		{"vae", "config.json"},
		{"scheduler", "scheduler_config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.missing, func(t *testing.T) {
			t.Parallel()
			ref := refcases.ModelDir(t, "tiny-sd15")
			dir := t.TempDir()
			for _, name := range append([]string{"model_index.json"}, components...) {
				if name == tt.missing {
					continue
				}
				if err := os.Symlink(filepath.Join(ref, name), filepath.Join(dir, name)); err != nil {
					t.Skipf("cannot make symlinks here: %v", err)
				}
			}
			_, err := LoadModel(dir)
			if err == nil {
				t.Fatalf("LoadModel succeeded without %s/", tt.missing)
			}
			want := filepath.Join(dir, tt.missing, tt.file)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q does not wrap fs.ErrNotExist", err)
			}
		})
	}
}

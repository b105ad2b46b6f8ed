package unet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// The references were produced by diffusers 0.27.2 on CPU in float32
// (../shared/refs/README.md, kind "unet"):
//
//	noise_pred = unet(sample, timestep, encoder_hidden_states).sample
//
// with the timestep passed as an int64 tensor per batch item, a python float
// (500.5) or a python int. The README measures the reference's own float32
// noise (float64 re-run vs stored) at ~4e-6 for these cases.
func TestUNetGolden(t *testing.T) {
	for _, pipeline := range []string{"tiny-sd15", "tiny-sd15-fp16", "tiny-sd2v"} {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			u, err := Load(filepath.Join(refcases.ModelDir(t, pipeline), "unet"))
			if err != nil {
				t.Fatal(err)
			}
			cases := set.ByKind("unet")
			if len(cases) == 0 {
				t.Fatal("no unet cases")
			}
			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					sample := set.CaseTensor(t, c, "inputs", "sample")
					ehs := set.CaseTensor(t, c, "inputs", "encoder_hidden_states")
					ts := set.CaseTensor(t, c, "inputs", "timestep")
					want := set.CaseTensor(t, c, "outputs", "noise_pred")
					got := u.Forward(sample, ts.Data, ehs)
					d := refcases.Close(t, c.ID+" noise_pred", got, want, 1e-4)
					t.Logf("%s: max abs diff %.3g", c.ID, d)
				})
			}
		})
	}
}

func TestLoadStrict(t *testing.T) {
	dir := filepath.Join(refcases.ModelDir(t, "tiny-sd15"), "unet")
	src, err := nn.OpenComponent(dir, "diffusion_pytorch_model")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	all := nn.MapSource{}
	for _, name := range src.Names() {
		info, _ := src.Load(name, shapeOf(t, src, name))
		all[name] = info
	}
	t.Run("all keys used", func(t *testing.T) {
		w := nn.NewWeights(all)
		if _, err := New(w, c); err != nil {
			t.Fatal(err)
		}
		if err := w.Strict(nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing key named", func(t *testing.T) {
		m := nn.MapSource{}
		for k, v := range all {
			m[k] = v
		}
		delete(m, "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight")
		_, err := New(nn.NewWeights(m), c)
		if err == nil || !strings.Contains(err.Error(), "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight") {
			t.Fatalf("err = %v, want the missing key named", err)
		}
	})
	t.Run("shape mismatch named", func(t *testing.T) {
		m := nn.MapSource{}
		for k, v := range all {
			m[k] = v
		}
		m["mid_block.resnets.1.conv1.weight"] = tensor.New(64, 64, 1, 1)
		_, err := New(nn.NewWeights(m), c)
		if err == nil || !strings.Contains(err.Error(), "mid_block.resnets.1.conv1.weight") {
			t.Fatalf("err = %v, want the key named", err)
		}
	})
	t.Run("unexpected key", func(t *testing.T) {
		m := nn.MapSource{"extra.weight": tensor.New(1)}
		for k, v := range all {
			m[k] = v
		}
		w := nn.NewWeights(m)
		if _, err := New(w, c); err != nil {
			t.Fatal(err)
		}
		if err := w.Strict(nil); err == nil || !strings.Contains(err.Error(), "extra.weight") {
			t.Fatalf("Strict = %v, want extra.weight reported", err)
		}
	})
}

func shapeOf(t *testing.T, src *nn.FileSource, name string) []int {
	t.Helper()
	shape, ok := src.Shape(name)
	if !ok {
		t.Fatalf("no tensor %q", name)
	}
	return shape
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, json, want string
	}{
		{"unknown down block", `{"down_block_types": ["AttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"], "block_out_channels": [32, 64]}`, `unsupported down block type "AttnDownBlock2D"`},
		{"lengths differ", `{"block_out_channels": [32, 64]}`, "differ in length"},
		{"class", `{"_class_name": "UNet2DModel"}`, "unsupported UNet class"},
		{"heads", `{"block_out_channels": [32, 64], "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"], "attention_head_dim": 5}`, "not divisible by 5 attention heads"},
		{"list length", `{"block_out_channels": [32, 64], "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"], "attention_head_dim": [2, 4, 8]}`, "attention_head_dim has 3 values for 2 blocks"},
		{"act", `{"act_fn": "relu"}`, `unsupported act_fn "relu"`},
		{"not json", `{"block_out_channels": [32,`, "unexpected end"},
		{"addition embed (SDXL)", `{"addition_embed_type": "text_time"}`, "addition_embed_type"},
		{"sample size zero", `{"sample_size": 0}`, "sample_size must be positive, got 0"},
		{"sample size missing", `{}`, "sample_size must be positive"},
		{"sample size negative", `{"sample_size": -4}`, "got -4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(p, []byte(c.json), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestRandomNonDivisible runs a random tiny UNet on latents whose size is
// not a multiple of the downsampling factor (a 72x40 image at VAE factor 8
// gives 9x5 latents), which the upsamplers must resize to the skip sizes.
func TestRandomNonDivisible(t *testing.T) {
	c := DefaultConfig()
	c.BlockOutChannels = []int{32, 64, 64}
	c.DownBlockTypes = []string{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}
	c.UpBlockTypes = []string{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}
	c.LayersPerBlock = IntList{1}
	c.CrossAttentionDim = IntList{16}
	c.AttentionHeadDim = IntList{2}
	u, err := New(nn.NewWeights(nn.NewRandomSource(1)), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, hw := range [][2]int{{9, 5}, {8, 8}, {1, 1}, {6, 10}} {
		x := tensor.Full(0.5, 2, 4, hw[0], hw[1])
		out := u.Forward(x, []float32{10, 900}, tensor.Full(0.1, 2, 77, 16))
		if !tensor.SameShape(out, x) {
			t.Fatalf("%v: output %v", hw, out.Shape)
		}
	}
}

var sink *tensor.Tensor

// BenchmarkUNetStep_tiny times one classifier-free-guidance step (batch 2)
// of the tiny-sd15 reference UNet at its default 16x16 latents.
func BenchmarkUNetStep_tiny(b *testing.B) {
	u, err := Load(filepath.Join(refcases.ModelDir(b, "tiny-sd15"), "unet"))
	if err != nil {
		b.Fatal(err)
	}
	x := tensor.Full(0.1, 2, 4, 16, 16)
	ehs := tensor.Full(0.1, 2, 77, 32)
	b.ReportAllocs()
	for b.Loop() {
		sink = u.Forward(x, []float32{500}, ehs)
	}
}

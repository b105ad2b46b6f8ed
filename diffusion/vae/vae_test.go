package vae

// The reference tensors (../shared/refs/cases/<pipeline>, diffusers 0.27.2,
// CPU float32; see its README.md) were produced by:
//
//	vae = AutoencoderKL.from_pretrained(f"{pipeline}/vae", torch_dtype=torch.float32)
//	# vae_decode
//	decoder_input = latents / vae.config.scaling_factor
//	image = vae.decode(decoder_input).sample                    # not clamped
//	# vae_encode
//	image = torch.from_numpy(png / 255 * 2 - 1).permute(2, 0, 1)[None]
//	dist = vae.encode(image).latent_dist
//	mean, std, logvar = dist.mean, dist.std, dist.logvar
//	sample_noise = torch.randn(mean.shape, generator=torch.Generator("cpu").manual_seed(31337))
//	sample = mean + std * sample_noise
//
// tiny-sd15-fp16 holds the tiny-sd15 weights rounded to float16, and its
// cases were computed from those rounded weights in float32.

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// refPipelines are the reference pipelines whose VAE cases are checked.
var refPipelines = []string{"tiny-sd15", "tiny-sd15-fp16", "tiny-sd2v"}

// refAtol is the acceptance for single modules suggested by the refs'
// README; the float32 noise of the reference itself is about 2e-6.
const refAtol = 1e-4

// loadRef loads the VAE of a reference pipeline, skipping if absent.
func loadRef(t testing.TB, pipeline string) *AutoencoderKL {
	t.Helper()
	m, err := Load(filepath.Join(refcases.ModelDir(t, pipeline), "vae"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecodeReference(t *testing.T) {
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			m := loadRef(t, pipeline)
			if f := set.Meta["vae_scale_factor"]; f != float64(m.Config.ScaleFactor()) {
				t.Errorf("ScaleFactor() = %d, reference vae_scale_factor %v", m.Config.ScaleFactor(), f)
			}
			cases := set.ByKind("vae_decode")
			if len(cases) == 0 {
				t.Fatal("no vae_decode cases")
			}
			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					latents := set.CaseTensor(t, c, "inputs", "latents")
					z := set.CaseTensor(t, c, "inputs", "decoder_input")
					want := set.CaseTensor(t, c, "outputs", "image")

					// The caller's side of the contract: z = latents / scaling_factor.
					scaled := tensor.Scale(latents.Clone(), float32(1/m.Config.ScalingFactor))
					refcases.Close(t, "latents/scaling_factor", scaled, z, 1e-5)

					got := m.Decode(z)
					d := refcases.Close(t, "image", got, want, refAtol)
					t.Logf("%s %s: image %v max |got-want| = %.3g", pipeline, c.ID, want.Shape, d)
				})
			}
		})
	}
}

func TestEncodeReference(t *testing.T) {
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			m := loadRef(t, pipeline)
			cases := set.ByKind("vae_encode")
			if len(cases) == 0 {
				t.Fatal("no vae_encode cases")
			}
			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					dist := m.Encode(set.CaseTensor(t, c, "inputs", "image"))
					for _, o := range []struct {
						name string
						got  *tensor.Tensor
					}{
						{"mean", dist.Mean},
						{"std", dist.Std},
						{"logvar", dist.LogVar},
						{"sample", dist.Sample(set.CaseTensor(t, c, "outputs", "sample_noise"))},
					} {
						want := set.CaseTensor(t, c, "outputs", o.name)
						d := refcases.Close(t, o.name, o.got, want, refAtol)
						t.Logf("%s %s: %s %v max |got-want| = %.3g", pipeline, c.ID, o.name, want.Shape, d)
					}
				})
			}
		})
	}
}

// TestLoadReferenceUsesEveryKey checks that the model definition and the
// reference checkpoints agree key for key (Load enforces it too).
func TestLoadReferenceUsesEveryKey(t *testing.T) {
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			dir := filepath.Join(refcases.ModelDir(t, pipeline), "vae")
			c, err := LoadConfig(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			src, err := nn.OpenSafetensors(filepath.Join(dir, "diffusion_pytorch_model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			w := nn.NewWeights(src)
			if _, err := New(w, c); err != nil {
				t.Fatal(err)
			}
			if unused := w.Unused(); len(unused) > 0 {
				t.Errorf("unused checkpoint keys: %v", unused)
			}
		})
	}
}

// tinyConfig is a two-level VAE small enough to build and run in
// milliseconds.
func tinyConfig() Config {
	c := DefaultConfig()
	c.ClassName = "AutoencoderKL"
	c.DownBlockTypes = []string{"DownEncoderBlock2D", "DownEncoderBlock2D"}
	c.UpBlockTypes = []string{"UpDecoderBlock2D", "UpDecoderBlock2D"}
	c.BlockOutChannels = []int{8, 16}
	c.NormNumGroups = 4
	return c
}

// recordingSource is a RandomSource that keeps what it made, to turn a
// random model into a checkpoint.
type recordingSource struct {
	*nn.RandomSource
	made nn.MapSource
}

func (r recordingSource) Load(name string, shape []int) (*tensor.Tensor, error) {
	t, err := r.RandomSource.Load(name, shape)
	r.made[name] = t
	return t, err
}

// randomCheckpoint returns the tensors of a random model for c.
func randomCheckpoint(t *testing.T, c Config) nn.MapSource {
	t.Helper()
	src := recordingSource{nn.NewRandomSource(1), nn.MapSource{}}
	if _, err := New(nn.NewWeights(src), c); err != nil {
		t.Fatal(err)
	}
	return src.made
}

// writeModel writes c and the checkpoint as a diffusers vae/ folder.
func writeModel(t *testing.T, c Config, ckpt nn.MapSource) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range slices.Sorted(maps.Keys(ckpt)) {
		x := ckpt[name]
		ts = append(ts, safetensors.Tensor{Name: name, Shape: x.Shape, Data: x.Data})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "diffusion_pytorch_model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadStrict(t *testing.T) {
	const (
		missing  = "decoder.up_blocks.1.resnets.0.conv_shortcut.weight"
		reshaped = "encoder.mid_block.attentions.0.to_q.weight"
		extra    = "encoder.mid_block.attentions.0.query.weight" // the deprecated name
	)
	tests := []struct {
		name    string
		edit    func(nn.MapSource)
		config  func(*Config) // edits the config.json written, not the model
		wantErr []string      // substrings; none means success
	}{
		{"complete", func(nn.MapSource) {}, nil, nil},
		{"missing key", func(m nn.MapSource) { delete(m, missing) }, nil, []string{missing, "missing"}},
		{"wrong shape", func(m nn.MapSource) { m[reshaped] = tensor.New(16, 8) }, nil, []string{reshaped, "[16 8]", "[16 16]"}},
		{"unused key", func(m nn.MapSource) { m[extra] = tensor.New(16, 16) }, nil, []string{extra, "unexpected"}},
		{"no post_quant_conv", func(m nn.MapSource) {
			delete(m, "post_quant_conv.weight")
			delete(m, "post_quant_conv.bias")
		}, nil, []string{"post_quant_conv.weight", "post_quant_conv.bias"}},
		{"act_fn", func(nn.MapSource) {}, func(c *Config) { c.ActFn = "mish" }, []string{"config.json", `act_fn "mish" is not supported`}},
		{"block type", func(nn.MapSource) {}, func(c *Config) { c.UpBlockTypes[1] = "AttnUpDecoderBlock2D" },
			[]string{"config.json", `up_block_types[1] "AttnUpDecoderBlock2D" is not supported`}},
	}
	c := tinyConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ckpt := randomCheckpoint(t, c)
			tt.edit(ckpt)
			onDisk := tinyConfig()
			if tt.config != nil {
				tt.config(&onDisk)
			}
			m, err := Load(writeModel(t, onDisk, ckpt))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Decode(tensor.New(1, 4, 3, 5)).Shape; !slices.Equal(got, []int{1, 3, 6, 10}) {
					t.Errorf("Decode shape %v, want [1 3 6 10]", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want an error mentioning %q", tt.wantErr)
			}
			t.Logf("error: %v", err)
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestOptionalModules(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Config)
		absent []string // key substrings that must not be in the checkpoint
	}{
		{"default", func(*Config) {}, nil},
		{"no mid-block attention", func(c *Config) { c.MidBlockAddAttention = false }, []string{"attentions"}},
		{"no quant convs", func(c *Config) { c.UseQuantConv, c.UsePostQuantConv = false, false }, []string{"quant_conv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tinyConfig()
			tt.edit(&c)
			ckpt := randomCheckpoint(t, c)
			for name := range ckpt {
				for _, a := range tt.absent {
					if strings.Contains(name, a) {
						t.Errorf("checkpoint has %s", name)
					}
				}
			}
			w := nn.NewWeights(ckpt)
			m, err := New(w, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Strict(nil); err != nil {
				t.Fatal(err)
			}
			if got := m.Encode(tensor.New(2, 3, 8, 6)).Mean.Shape; !slices.Equal(got, []int{2, 4, 4, 3}) {
				t.Errorf("Encode mean shape %v, want [2 4 4 3]", got)
			}
			if got := m.Decode(tensor.New(2, 4, 4, 3)).Shape; !slices.Equal(got, []int{2, 3, 8, 6}) {
				t.Errorf("Decode shape %v, want [2 3 8 6]", got)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(map[string]any)
		raw     string // the whole file instead of the edited ConfigSD15
		want    func(*Config)
		wantErr string
	}{
		{name: "sd15", edit: func(map[string]any) {}},
		{name: "defaults", raw: `{}`, want: func(c *Config) { *c = DefaultConfig() }},
		{name: "nulls", edit: func(m map[string]any) {
			m["shift_factor"], m["latents_mean"], m["latents_std"] = nil, nil, nil
		}},
		{name: "shift factor", edit: func(m map[string]any) { m["shift_factor"] = 0.1159 }, want: func(c *Config) { c.ShiftFactor = 0.1159 }},
		{name: "no mid attention", edit: func(m map[string]any) { m["mid_block_add_attention"] = false }, want: func(c *Config) { c.MidBlockAddAttention = false }},
		{name: "unknown keys ignored", edit: func(m map[string]any) { m["_diffusers_version"] = "0.27.2"; m["dropout"] = 0.0 }},
		{name: "unknown down block", edit: func(m map[string]any) {
			m["down_block_types"] = []string{"DownEncoderBlock2D", "AttnDownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}
		}, wantErr: `down_block_types[1] "AttnDownEncoderBlock2D" is not supported`},
		{name: "unknown up block", edit: func(m map[string]any) {
			m["up_block_types"] = []string{"UpBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}
		}, wantErr: `up_block_types[0] "UpBlock2D" is not supported`},
		{name: "act_fn", edit: func(m map[string]any) { m["act_fn"] = "gelu" }, wantErr: `act_fn "gelu" is not supported`},
		{name: "class", edit: func(m map[string]any) { m["_class_name"] = "AutoencoderTiny" }, wantErr: `_class_name "AutoencoderTiny"`},
		{name: "block count", edit: func(m map[string]any) { m["block_out_channels"] = []int{128, 256} }, wantErr: "4 down_block_types and 4 up_block_types for 2 block_out_channels"},
		{name: "groups", edit: func(m map[string]any) { m["norm_num_groups"] = 48 }, wantErr: "block_out_channels[0] = 128 is not a positive multiple of norm_num_groups 48"},
		{name: "layers", edit: func(m map[string]any) { m["layers_per_block"] = 0 }, wantErr: "layers_per_block 0"},
		{name: "scaling", edit: func(m map[string]any) { m["scaling_factor"] = 0 }, wantErr: "scaling_factor 0"},
		{name: "latent channels", edit: func(m map[string]any) { m["latent_channels"] = -4 }, wantErr: "latent_channels -4"},
		{name: "type", edit: func(m map[string]any) { m["block_out_channels"] = "128" }, wantErr: "cannot unmarshal"},
		{name: "syntax", raw: `{"in_channels": 3,`, wantErr: "unexpected end of JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			if tt.raw == "" {
				var m map[string]any
				b, _ := json.Marshal(ConfigSD15())
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				tt.edit(m)
				raw, _ = json.Marshal(m)
			}
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := LoadConfig(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, path, tt.wantErr)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := ConfigSD15()
			if tt.want != nil {
				tt.want(&want)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Errorf("got  %s\nwant %s", gb, wb)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}

func TestScaleFactor(t *testing.T) {
	for _, tt := range []struct {
		channels []int
		want     int
	}{{[]int{64}, 1}, {[]int{32, 64}, 2}, {[]int{128, 256, 512, 512}, 8}} {
		if got := (Config{BlockOutChannels: tt.channels}).ScaleFactor(); got != tt.want {
			t.Errorf("ScaleFactor of %v = %d, want %d", tt.channels, got, tt.want)
		}
	}
}

func TestDiagonalGaussian(t *testing.T) {
	// moments [1, 2·2, 1, 2]: mean channels 0-1, logvar channels 2-3.
	moments := tensor.FromData([]float32{
		1, 2, // mean c0
		3, 4, // mean c1
		0, -2, // logvar c0
		-100, 100, // logvar c1, clamped to -30 and 20
	}, 1, 4, 1, 2)
	d := newDiagonalGaussian(moments)
	want := func(v ...float32) *tensor.Tensor { return tensor.FromData(v, 1, 2, 1, 2) }
	e := func(x float64) float32 { return float32(math.Exp(x)) }
	refcases.Close(t, "mean", d.Mean, want(1, 2, 3, 4), 0)
	refcases.Close(t, "logvar", d.LogVar, want(0, -2, -30, 20), 0)
	refcases.CloseRel(t, "std", d.Std, want(1, e(-1), e(-15), e(10)), 0, 1e-6)
	refcases.CloseRel(t, "sample", d.Sample(want(1, -1, 0, 2)), want(2, 2-e(-1), 3, 4+2*e(10)), 0, 1e-6)
	if d.Mode() != d.Mean {
		t.Error("Mode is not Mean")
	}
}

func TestShapePanics(t *testing.T) {
	ckpt := randomCheckpoint(t, tinyConfig())
	m, err := New(nn.NewWeights(ckpt), tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"Encode channels":  func() { m.Encode(tensor.New(1, 4, 8, 8)) },
		"Encode too small": func() { m.Encode(tensor.New(1, 3, 1, 8)) },
		"Decode channels":  func() { m.Decode(tensor.New(1, 3, 4, 4)) },
		"Decode 3-D":       func() { m.Decode(tensor.New(4, 4, 4)) },
		"Sample shape":     func() { m.Encode(tensor.New(1, 3, 8, 8)).Sample(tensor.New(1, 4, 4, 5)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "vae: ") {
					t.Errorf("recovered %v, want a vae: panic", r)
				}
			}()
			f()
		})
	}
}

// TestRandomSD15 builds the full-size SD VAE with random weights and runs
// it on a small input.
func TestRandomSD15(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an 84M-parameter model")
	}
	m, err := New(nn.NewWeights(nn.NewRandomSource(7)), ConfigSD15())
	if err != nil {
		t.Fatal(err)
	}
	z := tensor.New(1, 4, 2, 3)
	for i := range z.Data {
		z.Data[i] = float32(i%7) - 3
	}
	img := m.Decode(z)
	if !slices.Equal(img.Shape, []int{1, 3, 16, 24}) {
		t.Fatalf("Decode shape %v, want [1 3 16 24]", img.Shape)
	}
	for _, v := range img.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("Decode produced %v", v)
		}
	}
	if got := m.Encode(img).Mean.Shape; !slices.Equal(got, []int{1, 4, 2, 3}) {
		t.Errorf("Encode mean shape %v, want [1 4 2 3]", got)
	}
}

var sink *tensor.Tensor

func BenchmarkDecode_tiny(b *testing.B) {
	set := refcases.Open(b, "tiny-sd15")
	m := loadRef(b, "tiny-sd15")
	z := set.Tensor(b, "vae/decode0/decoder_input")
	b.ReportAllocs()
	b.SetBytes(int64(4 * m.Decode(z).Len())) // image bytes made per op
	for b.Loop() {
		sink = m.Decode(z)
	}
}

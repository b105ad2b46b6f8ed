package vae

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// TestHalfWeights loads the fp16 reference VAE twice, keeping its weights in
// 16 bits (as Load does) and widened to float32, and checks that decoding
// and encoding give bit for bit the same results.
func TestHalfWeights(t *testing.T) {
	const pipeline = "tiny-sd15-fp16"
	set := refcases.Open(t, pipeline)
	dir := filepath.Join(refcases.ModelDir(t, pipeline), "vae")
	c, err := readConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	build := func(widen bool) *AutoencoderKL {
		src, err := nn.OpenComponent(dir, "diffusion_pytorch_model")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var s nn.Source = src
		if widen {
			s = nn.Float32Source(src)
		}
		m, err := New(nn.NewWeights(s), c)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	half, full := build(false), build(true)
	if !half.Decoder.ConvIn.Weight.IsHalf() || full.Decoder.ConvIn.Weight.IsHalf() {
		t.Fatal("decoder conv_in weight: want half when loaded, float32 when widened")
	}
	same := func(name string, got, want *tensor.Tensor) {
		t.Helper()
		for i := range want.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
				t.Fatalf("%s[%d] = %v with fp16 weights, %v widened", name, i, got.Data[i], want.Data[i])
			}
		}
	}
	for _, cs := range set.ByKind("vae_decode") {
		z := set.CaseTensor(t, cs, "inputs", "decoder_input")
		same(cs.ID+" image", half.Decode(z), full.Decode(z))
	}
	for _, cs := range set.ByKind("vae_encode") {
		x := set.CaseTensor(t, cs, "inputs", "image")
		gh, gf := half.Encode(x), full.Encode(x)
		same(cs.ID+" mean", gh.Mean, gf.Mean)
		same(cs.ID+" logvar", gh.LogVar, gf.LogVar)
	}
}

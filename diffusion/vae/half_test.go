package vae

import (
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
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
	build := func(s nn.Source) *AutoencoderKL {
		m, err := New(nn.NewWeights(s), c)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	hs, ws := refcases.HalfPair(t, dir, "diffusion_pytorch_model")
	half, full := build(hs), build(ws)
	if !half.Decoder.ConvIn.Weight.IsHalf() || full.Decoder.ConvIn.Weight.IsHalf() {
		t.Fatal("decoder conv_in weight: want half when loaded, float32 when widened")
	}
	for _, cs := range set.ByKind("vae_decode") {
		z := set.CaseTensor(t, cs, "inputs", "decoder_input")
		refcases.SameBits(t, cs.ID+" image", half.Decode(z), full.Decode(z))
	}
	for _, cs := range set.ByKind("vae_encode") {
		x := set.CaseTensor(t, cs, "inputs", "image")
		gh, gf := half.Encode(x), full.Encode(x)
		refcases.SameBits(t, cs.ID+" mean", gh.Mean, gf.Mean)
		refcases.SameBits(t, cs.ID+" logvar", gh.LogVar, gf.LogVar)
	}
}

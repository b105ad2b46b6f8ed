package unet

import (
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// TestUNetHalfWeights loads the fp16 reference UNet twice, keeping its
// weights in 16 bits (as Load does) and widened to float32, and checks that
// both give bit for bit the same noise prediction.
func TestUNetHalfWeights(t *testing.T) {
	const pipeline = "tiny-sd15-fp16"
	set := refcases.Open(t, pipeline)
	dir := filepath.Join(refcases.ModelDir(t, pipeline), "unet")
	c, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	build := func(s nn.Source) *UNet2DConditionModel {
		u, err := New(nn.NewWeights(s), c)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	hs, ws := refcases.HalfPair(t, dir, "diffusion_pytorch_model")
	half, full := build(hs), build(ws)
	if !half.ConvIn.Weight.IsHalf() || half.ConvIn.Bias.IsHalf() || full.ConvIn.Weight.IsHalf() {
		t.Fatalf("conv_in weight half %v bias half %v; widened weight half %v",
			half.ConvIn.Weight.IsHalf(), half.ConvIn.Bias.IsHalf(), full.ConvIn.Weight.IsHalf())
	}
	for _, cs := range set.ByKind("unet") {
		sample := set.CaseTensor(t, cs, "inputs", "sample")
		ehs := set.CaseTensor(t, cs, "inputs", "encoder_hidden_states")
		ts := set.CaseTensor(t, cs, "inputs", "timestep")
		got := half.Forward(sample, ts.Data, ehs)
		refcases.SameBits(t, cs.ID+" noise_pred", got, full.Forward(sample, ts.Data, ehs))
		d, _ := tensor.MaxAbsDiff(got, set.CaseTensor(t, cs, "outputs", "noise_pred"))
		t.Logf("%s: identical; max abs diff to the reference %.3g", cs.ID, d)
	}
}
